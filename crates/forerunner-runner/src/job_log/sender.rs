//! Getting every trace byte to the coordinator exactly once.
//!
//! [`TraceSender`] owns the sent offset and talks to the coordinator through
//! a [`TraceTransport`] (HTTP in production, fakes in tests). Its rules, from
//! the official runner:
//! - a patch carries the bytes from the sent offset to the end of the buffer
//!   (at most `max_patch` bytes) with `Content-Range: start-end`, end inclusive;
//! - `202` moves the offset past the patch;
//! - `416` moves the offset to the length the server reports (`Range: 0-N`),
//!   so the next patch resumes exactly where the server is;
//! - a transport error or another status leaves the offset alone: the same
//!   bytes are sent again later, and the server's offset check makes a
//!   duplicate impossible;
//! - `Job-Status: canceling` asks for a graceful cancel; `canceled`, `failed`
//!   or a `403` abort the job.

use std::time::Duration;

/// What the coordinator said about one patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchReply {
    /// HTTP status.
    pub status: u16,
    /// `Range: 0-N` as the server's current trace length.
    pub server_len: Option<u64>,
    /// `Job-Status`.
    pub job_status: Option<String>,
    /// `X-GitLab-Trace-Update-Interval` in seconds.
    pub update_interval: Option<u64>,
}

/// Where the sender reads the trace from: the job log, or a byte slice in
/// tests.
pub trait TraceSource {
    /// Bytes held.
    fn trace_len(&self) -> u64;
    /// Up to `max` bytes from `offset`.
    fn trace_since(&self, offset: u64, max: usize) -> Vec<u8>;
}

impl TraceSource for [u8] {
    fn trace_len(&self) -> u64 {
        self.len() as u64
    }
    fn trace_since(&self, offset: u64, max: usize) -> Vec<u8> {
        let start = (offset as usize).min(self.len());
        self[start..self.len().min(start + max)].to_vec()
    }
}

impl TraceSource for crate::job_log::JobLog {
    fn trace_len(&self) -> u64 {
        self.len()
    }
    fn trace_since(&self, offset: u64, max: usize) -> Vec<u8> {
        let mut v = self.since(offset);
        v.truncate(max);
        v
    }
}

/// Sends one trace patch. Errors are transport failures (connection reset,
/// timeout): the patch may or may not have arrived.
#[allow(async_fn_in_trait)]
pub trait TraceTransport {
    /// `PATCH /api/v4/jobs/:id/trace` with `bytes` at `offset`.
    async fn patch(&self, offset: u64, bytes: &[u8]) -> Result<PatchReply, String>;
}

/// What the job should do after a patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Nothing special.
    Continue,
    /// The server asked for a graceful cancel (`Job-Status: canceling`).
    Cancel,
    /// The job is over on the server (`canceled`/`failed`/403/404): stop it.
    Abort,
}

impl Signal {
    /// What a reply's `Job-Status` header asks of the running job.
    pub fn from_job_status(job_status: Option<&str>) -> Signal {
        match job_status {
            Some("canceled" | "failed") => Signal::Abort,
            Some("canceling") => Signal::Cancel,
            _ => Signal::Continue,
        }
    }
}

/// Outcome of one [`TraceSender::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Sent (or nothing to send).
    Sent(Signal),
    /// Not sent this time; try again after a pause.
    Retry(String),
}

/// Longest patch the official runner sends: 1 MiB.
pub const MAX_PATCH: usize = 1024 * 1024;
/// Default pause between patches.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3);
/// Upper bound on the server-requested pause.
pub const MAX_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// The sending side of one job's trace.
#[derive(Debug)]
pub struct TraceSender {
    sent: u64,
    interval: Duration,
    /// Whether `interval` is the server's (`X-GitLab-Trace-Update-Interval`).
    interval_from_server: bool,
    max_patch: usize,
}

impl Default for TraceSender {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceSender {
    /// A sender that has sent nothing yet.
    pub fn new() -> Self {
        Self {
            sent: 0,
            interval: DEFAULT_INTERVAL,
            interval_from_server: false,
            max_patch: MAX_PATCH,
        }
    }

    /// Sets the largest patch (tests use tiny ones).
    pub fn with_max_patch(mut self, max_patch: usize) -> Self {
        self.max_patch = max_patch.max(1);
        self
    }

    /// Bytes the server is known to hold.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Sends everything again from offset 0 at the next patch: the server
    /// dropped the trace (`412` to the final update, the official
    /// `UpdateTraceValidationFailed`). A server that kept it answers `416`
    /// with its length, so nothing is stored twice.
    pub fn restart(&mut self) {
        self.sent = 0;
    }

    /// Pause before the next patch, as the server last asked.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The interval the server asked for, if it did.
    pub fn server_interval(&self) -> Option<Duration> {
        self.interval_from_server.then_some(self.interval)
    }

    /// Sends the next patch of `trace` (the whole trace so far).
    pub async fn send<S: TraceSource + ?Sized>(
        &mut self,
        transport: &impl TraceTransport,
        trace: &S,
    ) -> SendOutcome {
        let total = trace.trace_len();
        if self.sent >= total {
            return SendOutcome::Sent(Signal::Continue);
        }
        let chunk = trace.trace_since(self.sent, self.max_patch);
        let end = self.sent + chunk.len() as u64;
        let reply = match transport.patch(self.sent, &chunk).await {
            Ok(r) => r,
            Err(e) => return SendOutcome::Retry(e),
        };
        if let Some(secs) = reply.update_interval.filter(|s| *s > 0) {
            self.interval = Duration::from_secs(secs).min(MAX_INTERVAL);
            self.interval_from_server = true;
        }
        let signal = Signal::from_job_status(reply.job_status.as_deref());
        match reply.status {
            202 => {
                self.sent = end;
                SendOutcome::Sent(signal)
            }
            403 | 404 => SendOutcome::Sent(Signal::Abort),
            416 => match reply.server_len {
                Some(n) if n <= total => {
                    self.sent = n;
                    SendOutcome::Retry(format!("range mismatch: the server has {n} bytes"))
                }
                Some(n) => SendOutcome::Retry(format!(
                    "range mismatch: the server claims {n} bytes but the job produced {total}"
                )),
                None => SendOutcome::Retry("range mismatch without a Range header".into()),
            },
            _ if signal == Signal::Abort => SendOutcome::Sent(Signal::Abort),
            status => SendOutcome::Retry(format!("unexpected status {status}")),
        }
    }

    /// Sends until the server holds all of `trace`, or the job is aborted,
    /// or `attempts` sends in a row fail. `pause` is awaited between failed
    /// attempts (tests pass a no-op).
    pub async fn flush<S: TraceSource + ?Sized, F, Fut>(
        &mut self,
        transport: &impl TraceTransport,
        trace: &S,
        attempts: usize,
        mut pause: F,
    ) -> Result<Signal, String>
    where
        F: FnMut(Duration) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut failures = 0;
        let mut signal = Signal::Continue;
        while self.sent < trace.trace_len() {
            match self.send(transport, trace).await {
                SendOutcome::Sent(Signal::Abort) => return Ok(Signal::Abort),
                SendOutcome::Sent(s) => {
                    failures = 0;
                    if s == Signal::Cancel {
                        signal = s;
                    }
                }
                SendOutcome::Retry(e) => {
                    failures += 1;
                    if failures >= attempts {
                        return Err(e);
                    }
                    pause(Duration::from_millis(100 * (1 << failures.min(8)))).await;
                }
            }
        }
        Ok(signal)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A coordinator-side trace that applies GitLab's append rule, with a
    /// script of faults to inject before answering.
    #[derive(Default)]
    struct FakeServer {
        stored: RefCell<Vec<u8>>,
        faults: RefCell<Vec<Fault>>,
        patches: RefCell<usize>,
    }

    #[derive(Clone, Copy)]
    enum Fault {
        /// The connection drops before the server sees the patch.
        DropBefore,
        /// The server appends, then the connection drops before the reply.
        DropAfter,
        /// 500 without appending.
        ServerError,
        /// Someone else appended bytes: the server is ahead (416 path).
        Status(&'static str),
    }

    impl TraceTransport for FakeServer {
        async fn patch(&self, offset: u64, bytes: &[u8]) -> Result<PatchReply, String> {
            *self.patches.borrow_mut() += 1;
            let fault = {
                let mut f = self.faults.borrow_mut();
                (!f.is_empty()).then(|| f.remove(0))
            };
            let mut stored = self.stored.borrow_mut();
            let reply = |status, len: usize, job_status: Option<&str>| PatchReply {
                status,
                server_len: Some(len as u64),
                job_status: job_status.map(str::to_owned),
                update_interval: Some(3),
            };
            match fault {
                Some(Fault::DropBefore) => return Err("connection reset".into()),
                Some(Fault::ServerError) => return Ok(reply(500, stored.len(), None)),
                _ => {}
            }
            if offset as usize != stored.len() {
                return Ok(reply(416, stored.len(), Some("running")));
            }
            stored.extend_from_slice(bytes);
            match fault {
                Some(Fault::DropAfter) => Err("connection reset after write".into()),
                Some(Fault::Status(s)) => Ok(reply(202, stored.len(), Some(s))),
                _ => Ok(reply(202, stored.len(), Some("running"))),
            }
        }
    }

    async fn no_pause(_: Duration) {}

    fn trace(n: usize) -> Vec<u8> {
        (0..n).map(|i| b'a' + (i % 26) as u8).collect()
    }

    #[tokio::test]
    async fn every_fault_still_gives_an_identical_trace() {
        let faults = [Fault::DropBefore, Fault::DropAfter, Fault::ServerError];
        for (i, fault) in faults.iter().enumerate() {
            for at in 0..6 {
                let server = FakeServer::default();
                let data = trace(1000 + i);
                let mut faults = vec![Fault::Status("running"); at];
                faults.push(*fault);
                faults.push(*fault);
                *server.faults.borrow_mut() = faults;
                let mut sender = TraceSender::new().with_max_patch(97);
                // Stream the trace in growing prefixes, as a running job does.
                for cut in [100, 350, 351, 800, data.len()] {
                    let _ = sender.send(&server, &data[..cut]).await;
                }
                let signal = sender
                    .flush(&server, &data[..], 10, no_pause)
                    .await
                    .unwrap();
                assert_eq!(signal, Signal::Continue);
                assert_eq!(*server.stored.borrow(), data, "fault #{i} at patch {at}");
                assert_eq!(sender.sent(), data.len() as u64);
            }
        }
    }

    #[tokio::test]
    async fn resumes_from_the_server_length_on_416() {
        let server = FakeServer::default();
        server.stored.borrow_mut().extend_from_slice(b"abcdef");
        let data = trace(20);
        let mut sender = TraceSender::new();
        // The sender believes 0 was sent, the server has 6 bytes of the same
        // trace (a reply lost earlier): 416 rewinds to 6, nothing repeats.
        let first = sender.send(&server, &data[..]).await;
        assert!(matches!(first, SendOutcome::Retry(_)));
        assert_eq!(sender.sent(), 6);
        sender.flush(&server, &data[..], 3, no_pause).await.unwrap();
        assert_eq!(*server.stored.borrow(), data);
    }

    #[tokio::test]
    async fn restart_sends_everything_again_and_a_server_that_kept_it_says_where_it_is() {
        let server = FakeServer::default();
        let data = trace(300);
        let mut sender = TraceSender::new().with_max_patch(100);
        sender.flush(&server, &data[..], 3, no_pause).await.unwrap();
        // The server dropped the trace (412 to the final update).
        server.stored.borrow_mut().clear();
        sender.restart();
        sender.flush(&server, &data[..], 3, no_pause).await.unwrap();
        assert_eq!(*server.stored.borrow(), data);
        // A server that kept it: one 416 moves the sender back to the end.
        sender.restart();
        let before = *server.patches.borrow();
        sender.flush(&server, &data[..], 3, no_pause).await.unwrap();
        assert_eq!(*server.stored.borrow(), data);
        assert_eq!(*server.patches.borrow() - before, 1);
    }

    #[tokio::test]
    async fn job_status_signals() {
        let server = FakeServer::default();
        *server.faults.borrow_mut() = vec![Fault::Status("canceling")];
        let mut sender = TraceSender::new();
        assert_eq!(
            sender.send(&server, &b"x"[..]).await,
            SendOutcome::Sent(Signal::Cancel)
        );
        *server.faults.borrow_mut() = vec![Fault::Status("canceled")];
        assert_eq!(
            sender.send(&server, &b"xy"[..]).await,
            SendOutcome::Sent(Signal::Abort)
        );
        assert_eq!(sender.interval(), Duration::from_secs(3));
    }

    #[tokio::test]
    async fn gives_up_after_the_attempt_limit() {
        let server = FakeServer::default();
        *server.faults.borrow_mut() = vec![Fault::ServerError; 10];
        let mut sender = TraceSender::new();
        let err = sender
            .flush(&server, &b"data"[..], 3, no_pause)
            .await
            .unwrap_err();
        assert!(err.contains("500"), "{err}");
        assert_eq!(*server.patches.borrow(), 3);
    }
}
