//! The job log: what executors and the runner write, masked, then kept in
//! the trace buffer until the coordinator has it.
//!
//! Every write goes through the [`Masker`] before it reaches the
//! [`TraceBuffer`], so a secret never exists in the buffer, in memory sent
//! to the server, or on disk. Section markers and runner messages use the
//! same path as script output.

pub mod buffer;
pub mod masker;
pub mod sender;

use std::sync::{Arc, Mutex};

use forerunner_protocol::jobs::JobResponse;

use crate::job_log::buffer::TraceBuffer;
use crate::job_log::masker::Masker;

/// Shared handle to a job's log. Cloning shares the log.
#[derive(Debug, Clone)]
pub struct JobLog {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    masker: Masker,
    buffer: TraceBuffer,
    sections: bool,
}

/// ANSI colours of runner messages, as the official runner prints them.
pub mod ansi {
    /// Bold green: success lines.
    pub const GREEN: &str = "\x1b[32;1m";
    /// Bold yellow: warnings.
    pub const YELLOW: &str = "\x1b[0;33m";
    /// Bold red: errors.
    pub const RED: &str = "\x1b[31;1m";
    /// Bold cyan: section headers.
    pub const CYAN: &str = "\x1b[36;1m";
    /// Back to normal.
    pub const RESET: &str = "\x1b[0;m";
    /// Clear to end of line (after section markers).
    pub const CLEAR: &str = "\x1b[0K";
}

impl JobLog {
    /// A log masking `masked_values` and the token prefixes, keeping up to
    /// `limit` bytes; `sections` enables `section_start`/`section_end`
    /// markers (the payload's `features.trace_sections`).
    pub fn new(masker: Masker, limit: usize, sections: bool) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                masker,
                buffer: TraceBuffer::new(limit),
                sections,
            })),
        }
    }

    /// The log of `job`: masks its masked variables, the git credentials
    /// the runner derives from its job token (`base64("gitlab-ci-token:…")`,
    /// printed by `set -x` under `CI_DEBUG_TRACE`) and the payload's token
    /// prefixes; keeps up to `limit` bytes; section markers as the payload
    /// says.
    pub fn for_job(job: &JobResponse, limit: usize) -> Self {
        let mut secrets: Vec<String> = job
            .variables
            .iter()
            .filter(|v| v.masked)
            .map(|v| v.value.clone())
            .collect();
        let job_tokens = job
            .variables
            .iter()
            .filter(|v| v.key == "CI_JOB_TOKEN")
            .map(|v| v.value.as_str())
            .chain([job.token.as_str()])
            .filter(|t| !t.is_empty());
        secrets.extend(job_tokens.map(crate::shells::bash::git_basic_credentials));
        Self::new(
            Masker::new(secrets, &job.features.token_mask_prefixes),
            limit,
            job.features.trace_sections,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the buffer torn (each
        // write is one append), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes raw output (script stdout/stderr).
    pub fn write(&self, bytes: &[u8]) {
        let mut g = self.lock();
        let masked = g.masker.write(bytes);
        g.buffer.append(&masked);
    }

    /// Writes a runner message line in a colour.
    pub fn line(&self, colour: &str, text: &str) {
        self.write(format!("{colour}{text}{}\n", ansi::RESET).as_bytes());
    }

    /// Writes a plain runner message line.
    pub fn info(&self, text: &str) {
        self.write(format!("{text}\n").as_bytes());
    }

    /// Opens a collapsible section with a header line.
    pub fn section_start(&self, name: &str, header: &str) {
        let sections = self.lock().sections;
        if sections {
            let ts = chrono::Utc::now().timestamp();
            self.write(format!("section_start:{ts}:{name}\r{}", ansi::CLEAR).as_bytes());
        }
        self.line(ansi::CYAN, header);
    }

    /// Closes a section.
    pub fn section_end(&self, name: &str) {
        let sections = self.lock().sections;
        if sections {
            let ts = chrono::Utc::now().timestamp();
            self.write(format!("section_end:{ts}:{name}\r{}", ansi::CLEAR).as_bytes());
        }
    }

    /// Flushes what the masker held back; call once, when the job is over.
    pub fn finish(&self) {
        let mut g = self.lock();
        let rest = g.masker.finish();
        g.buffer.append(&rest);
    }

    /// Bytes from `offset` on (a copy, so the lock is not held while sending).
    pub fn since(&self, offset: u64) -> Vec<u8> {
        self.lock().buffer.since(offset as usize).to_vec()
    }

    /// Bytes in the log.
    pub fn len(&self) -> u64 {
        self.lock().buffer.len() as u64
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `crc32:…` of the whole log.
    pub fn checksum(&self) -> String {
        self.lock().buffer.checksum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_before_buffering_and_marks_sections() {
        let log = JobLog::new(
            Masker::new(["hunter22"], std::iter::empty::<&str>()),
            1 << 20,
            true,
        );
        log.section_start(
            "step_script",
            "Executing \"step_script\" stage of the job script",
        );
        log.write(b"pass: hun");
        log.write(b"ter22\n");
        log.section_end("step_script");
        log.finish();
        let text = String::from_utf8(log.since(0)).unwrap();
        assert!(text.contains("pass: [MASKED]\n"), "{text:?}");
        assert!(!text.contains("hunter22"));
        assert!(text.starts_with("section_start:"));
        assert!(text.contains(":step_script\r\x1b[0K"));
        assert_eq!(
            log.checksum(),
            format!("crc32:{:08x}", crc32fast::hash(text.as_bytes()))
        );
    }
}
