//! Executors: what runs a job's stages somewhere — a shell on this host
//! ([`shell`]), a Docker container ([`docker`], so far the Engine layer), a
//! custom driver (to come).
//!
//! # Lifecycle
//!
//! For each job the runner creates one executor value and calls, in order:
//! 1. [`Executor::prepare`] once — make the environment ready (directories,
//!    images, services). A failure here is a `runner_system_failure`.
//! 2. [`Executor::run`] once per stage, in the job's stage order
//!    (`get_sources`, `step_script`, `after_script`, …). Each call gets the
//!    generated script, a timeout and a cancellation token; it streams the
//!    stage's output to the given sink as it arrives and returns how the
//!    stage ended. A non-zero exit is a normal [`Exit::Code`], not an error.
//! 3. [`Executor::cleanup`] exactly once, whatever happened before — also
//!    after a failed `prepare` or a cancelled job.
//!
//! Executors are used by one job at a time and need not be `Sync`.

pub mod docker;
pub mod process;
pub mod shell;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use crate::executors::process::Exit;

/// An executor could not do its part (not a script failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorError(pub String);

impl std::fmt::Display for ExecutorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExecutorError {}

/// One stage to run.
#[derive(Debug, Clone)]
pub struct Stage<'a> {
    /// Official stage name (`get_sources`, `step_script`, `after_script`, …).
    pub name: &'a str,
    /// The generated script.
    pub script: String,
    /// Kill the stage after this long.
    pub timeout: Duration,
}

/// Where output of a stage goes.
pub type OutputSink<'a> = &'a mut (dyn FnMut(&[u8]) + Send);

/// Runs a job's stages somewhere: on this host, in a container, through
/// user scripts. See the module documentation for the lifecycle.
#[async_trait]
pub trait Executor: Send {
    /// `shell`, `docker`, `custom`.
    fn name(&self) -> &'static str;
    /// The builds directory as the job sees it (`CI_BUILDS_DIR`).
    fn builds_dir(&self) -> String;
    /// Whether jobs share this environment (shell) or get a fresh one.
    fn shared_environment(&self) -> bool;
    /// Where a path the job sees is on the runner's host, for the runner's
    /// own work on the files (cache, artifacts).
    fn host_path(&self, job_path: &str) -> PathBuf;
    /// Makes the environment ready for the job.
    async fn prepare(&mut self, project_dir: &str) -> Result<(), ExecutorError>;
    /// Runs one stage.
    async fn run(
        &mut self,
        stage: Stage<'_>,
        cancel: CancellationToken,
        output: OutputSink<'_>,
    ) -> Result<Exit, ExecutorError>;
    /// Releases everything `prepare` and `run` created.
    async fn cleanup(&mut self);
}
