//! The signals the job loop obeys: `SIGTERM`, `SIGINT` and `SIGQUIT` stop
//! it (what a first and a second one do is the supervisor's business),
//! `SIGHUP` reloads config.toml. A caller embedding the loop (`forerunner
//! exec`) passes a [`RunStop`] instead: no handler is installed and its two
//! tokens play the first and the second stop signal.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Programmatic stop requests for a loop run in-process: what the first and
/// the second stop signal do for `forerunner run`.
#[derive(Debug, Clone, Default)]
pub struct RunStop {
    /// Stop asking for jobs and wait for the running ones (a first signal).
    pub drain: CancellationToken,
    /// Abort the running jobs, which are still reported failed (a second
    /// signal). Cancelling it alone also drains first.
    pub abort: CancellationToken,
}

/// A signal, as the loop sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Stop (`SIGTERM`, `SIGINT` or `SIGQUIT`, by name).
    Stop(&'static str),
    /// Reload the configuration (`SIGHUP`).
    Reload,
}

/// Where stop requests come from: the installed OS handlers (while they
/// exist, these signals no longer kill the process) or a [`RunStop`].
#[derive(Debug)]
pub(crate) enum Signals {
    Os {
        term: tokio::signal::unix::Signal,
        int: tokio::signal::unix::Signal,
        quit: tokio::signal::unix::Signal,
        hup: tokio::signal::unix::Signal,
    },
    /// How many of the two stop requests were already delivered.
    Requests { stop: RunStop, delivered: u8 },
}

impl Signals {
    /// Installs the handlers.
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Self::Os {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Stop requests from `stop` instead of OS signals.
    pub(crate) fn requests(stop: RunStop) -> Self {
        Self::Requests { stop, delivered: 0 }
    }

    /// The next signal.
    pub(crate) async fn recv(&mut self) -> Signal {
        match self {
            Self::Os {
                term,
                int,
                quit,
                hup,
            } => tokio::select! {
                _ = term.recv() => Signal::Stop("terminated"),
                _ = int.recv() => Signal::Stop("interrupt"),
                _ = quit.recv() => Signal::Stop("quit"),
                _ = hup.recv() => Signal::Reload,
            },
            Self::Requests { stop, delivered } => {
                match *delivered {
                    0 => tokio::select! {
                        _ = stop.drain.cancelled() => {}
                        _ = stop.abort.cancelled() => {}
                    },
                    1 => stop.abort.cancelled().await,
                    _ => std::future::pending().await,
                }
                *delivered += 1;
                Signal::Stop(if *delivered == 1 {
                    "drain request"
                } else {
                    "abort request"
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn next(signals: &mut Signals) -> Option<Signal> {
        tokio::time::timeout(Duration::from_millis(50), signals.recv())
            .await
            .ok()
    }

    #[tokio::test]
    async fn requests_act_as_first_and_second_signal() {
        let stop = RunStop::default();
        let mut signals = Signals::requests(stop.clone());
        assert_eq!(next(&mut signals).await, None, "nothing requested yet");
        stop.drain.cancel();
        assert_eq!(
            next(&mut signals).await,
            Some(Signal::Stop("drain request"))
        );
        assert_eq!(next(&mut signals).await, None, "a drain is delivered once");
        stop.abort.cancel();
        assert_eq!(
            next(&mut signals).await,
            Some(Signal::Stop("abort request"))
        );
        assert_eq!(next(&mut signals).await, None, "nothing after the abort");
    }

    #[tokio::test]
    async fn an_abort_alone_drains_then_aborts() {
        let stop = RunStop::default();
        let mut signals = Signals::requests(stop.clone());
        stop.abort.cancel();
        assert_eq!(
            next(&mut signals).await,
            Some(Signal::Stop("drain request"))
        );
        assert_eq!(
            next(&mut signals).await,
            Some(Signal::Stop("abort request"))
        );
    }
}
