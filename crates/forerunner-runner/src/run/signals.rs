//! The signals the job loop obeys: `SIGTERM`, `SIGINT` and `SIGQUIT` stop
//! it (what a first and a second one do is the supervisor's business),
//! `SIGHUP` reloads config.toml.

use tokio::signal::unix::{signal, SignalKind};

/// A signal, as the loop sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Stop (`SIGTERM`, `SIGINT` or `SIGQUIT`, by name).
    Stop(&'static str),
    /// Reload the configuration (`SIGHUP`).
    Reload,
}

/// The installed handlers. While they exist, these signals no longer kill
/// the process.
#[derive(Debug)]
pub(crate) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers.
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal.
    pub(crate) async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop("terminated"),
            _ = self.int.recv() => Signal::Stop("interrupt"),
            _ = self.quit.recv() => Signal::Stop("quit"),
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}
