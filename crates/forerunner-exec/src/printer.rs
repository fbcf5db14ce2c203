//! Everything `exec` writes on stdout while a pipeline runs: status lines,
//! job log lines (with a job-name prefix when jobs can run side by side),
//! and, on a terminal, a progress line kept at the bottom.
//!
//! The progress line is redrawn in place (`\r` + erase line); any other
//! output first erases it, so it never mixes with a log line. Write errors
//! (a closed pipe) are ignored: the pipeline keeps running and is still
//! cancelled properly.

use std::collections::HashMap;
use std::io::Write as _;

use crate::style::{Style, CYAN, DIM, JOB_COLOURS};
use crate::trace::Line;

/// Longest job-name prefix; longer names are shortened with `…`.
const MAX_PREFIX: usize = 28;

/// How job log lines are shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One job at a time: lines as they are.
    Sequential,
    /// Jobs may run side by side: `name │ line`, names padded to `width`.
    Prefixed {
        /// Width of the name column.
        width: usize,
    },
}

impl Layout {
    /// [`Layout::Prefixed`] when `parallel`, sized for `names`.
    pub fn for_jobs<'a>(parallel: bool, names: impl Iterator<Item = &'a str>) -> Layout {
        if parallel {
            Layout::Prefixed {
                width: names
                    .map(|n| n.chars().count())
                    .max()
                    .unwrap_or(0)
                    .min(MAX_PREFIX),
            }
        } else {
            Layout::Sequential
        }
    }
}

/// The stdout writer.
pub struct Printer {
    style: Style,
    tty: bool,
    layout: Layout,
    /// Colour of each job's prefix, given in order of appearance.
    colours: HashMap<String, &'static str>,
    progress_shown: bool,
    columns: usize,
    out: std::io::Stdout,
}

impl Printer {
    /// A printer; `tty` enables the progress line.
    pub fn new(style: Style, tty: bool, layout: Layout) -> Self {
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .filter(|c: &usize| *c >= 20)
            .unwrap_or(80);
        Self {
            style,
            tty,
            layout,
            colours: HashMap::new(),
            progress_shown: false,
            columns,
            out: std::io::stdout(),
        }
    }

    /// The style in use.
    pub fn style(&self) -> Style {
        self.style
    }

    fn write(&mut self, text: &str) {
        let mut out = self.out.lock();
        if self.progress_shown {
            let _ = out.write_all(b"\r\x1b[2K");
            self.progress_shown = false;
        }
        let _ = out.write_all(text.as_bytes());
    }

    /// Writes `text` (which ends with a newline, or gets one).
    pub fn line(&mut self, text: &str) {
        if text.ends_with('\n') {
            self.write(text);
        } else {
            self.write(&format!("{text}\n"));
        }
    }

    /// A cargo-style status line.
    pub fn status(&mut self, code: &str, verb: &str, text: &str) {
        let line = self.style.status(code, verb, text);
        self.line(&line);
    }

    /// One line of a job's log.
    pub fn job_line(&mut self, job: &str, line: &Line) {
        let body = format_job_line(line, self.style);
        let text = match &self.layout {
            Layout::Sequential => body,
            Layout::Prefixed { width } => {
                let next = JOB_COLOURS[self.colours.len() % JOB_COLOURS.len()];
                let colour = *self.colours.entry(job.to_owned()).or_insert(next);
                format!(
                    "{} {} {body}",
                    self.style.paint(colour, &prefix(job, *width)),
                    self.style.paint(DIM, "│")
                )
            }
        };
        self.line(&text);
    }

    /// Draws the progress line (terminals only).
    pub fn progress(&mut self, text: &str) {
        if !self.tty {
            return;
        }
        let text: String = text.chars().take(self.columns.saturating_sub(1)).collect();
        let mut out = self.out.lock();
        let _ = out.write_all(b"\r\x1b[2K");
        let _ = out.write_all(self.style.paint(CYAN, &text).as_bytes());
        let _ = out.flush();
        self.progress_shown = true;
    }

    /// Erases the progress line.
    pub fn clear_progress(&mut self) {
        if self.progress_shown {
            let _ = self.out.lock().write_all(b"\r\x1b[2K");
            self.progress_shown = false;
        }
    }

    /// Flushes stdout.
    pub fn flush(&mut self) {
        let _ = self.out.lock().flush();
    }
}

/// A job log line without prefix: headers as `▸ title` (the runner's own
/// dimmed), text as it is.
pub fn format_job_line(line: &Line, style: Style) -> String {
    match line {
        Line::Header { title, runner } => {
            style.paint(if *runner { DIM } else { CYAN }, &format!("▸ {title}"))
        }
        Line::Text(text) => text.clone(),
    }
}

/// `name` padded or shortened to `width` characters.
pub fn prefix(name: &str, width: usize) -> String {
    let count = name.chars().count();
    if count <= width {
        format!("{name:<width$}")
    } else {
        let mut short: String = name.chars().take(width.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_padded_or_shortened() {
        assert_eq!(prefix("build", 8), "build   ");
        assert_eq!(prefix("unit: [linux, 1.85]", 8), "unit: […");
        assert_eq!(prefix("exact", 5), "exact");
    }

    #[test]
    fn layouts() {
        assert_eq!(
            Layout::for_jobs(false, ["a", "bbb"].into_iter()),
            Layout::Sequential
        );
        assert_eq!(
            Layout::for_jobs(true, ["a", "bbb"].into_iter()),
            Layout::Prefixed { width: 3 }
        );
        let long = "x".repeat(50);
        assert_eq!(
            Layout::for_jobs(true, [long.as_str()].into_iter()),
            Layout::Prefixed { width: MAX_PREFIX }
        );
    }

    #[test]
    fn headers_are_marked_and_text_is_kept() {
        let plain = Style { color: false };
        let script = Line::Header {
            title: "Executing \"step_script\" stage of the job script".into(),
            runner: false,
        };
        assert_eq!(
            format_job_line(&script, plain),
            "▸ Executing \"step_script\" stage of the job script"
        );
        let runner = Line::Header {
            title: "Getting source from Git repository".into(),
            runner: true,
        };
        assert_eq!(
            format_job_line(&runner, Style { color: true }),
            "\x1b[2m▸ Getting source from Git repository\x1b[0m"
        );
        assert_eq!(
            format_job_line(&Line::Text("$ make".into()), plain),
            "$ make"
        );
    }
}
