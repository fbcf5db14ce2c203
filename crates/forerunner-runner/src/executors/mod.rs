//! Executors: what runs a job's stages somewhere — a shell on this host
//! ([`shell`]), a fresh Docker container per stage ([`docker`]), or a
//! user-provided driver of four executables ([`custom`]). [`for_runner`] is
//! the one place that turns a `[[runners]]` entry into an executor.
//!
//! # Lifecycle
//!
//! For each job the runner creates one executor value and calls, in order:
//! 1. [`Executor::configure`] once, before the job's directories are known:
//!    an executor whose builds directory depends on the job (the custom
//!    executor's `config_exec`) decides it here. Afterwards the driver reads
//!    [`Executor::builds_dir`], [`Executor::builds_dir_is_shared`] and
//!    [`Executor::shared_environment`] to lay out the job.
//! 2. [`Executor::prepare`] once — make the environment ready (directories,
//!    images, network, services). Its output goes to the job log. A failure
//!    of `configure` or `prepare` is a `runner_system_failure`.
//! 3. [`Executor::run`] once per stage, in the job's stage order
//!    (`get_sources`, `step_script`, `after_script`, …). Each call gets the
//!    generated script, a timeout and a cancellation token; it streams the
//!    stage's output to the given sink as it arrives and returns how the
//!    stage ended. A non-zero exit is a normal [`Exit::Code`], not an error;
//!    an [`ExecutorError`] is a system failure. When
//!    [`Executor::sources_on_host`] says so, the driver runs `get_sources`
//!    on the runner's host itself instead (with host paths), and `run` never
//!    sees that stage.
//! 4. [`Executor::cleanup`] exactly once, whatever happened before — also
//!    after a failed `configure`/`prepare` or a cancelled job.
//!
//! Caches and artifacts are handled by the runner on its host, through
//! [`Executor::host_path`]. Executors are used by one job at a time and need
//! not be `Sync`.

pub mod custom;
pub mod docker;
pub mod process;
pub mod shell;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use forerunner_protocol::jobs::{JobResponse, JobVariable};
use tokio_util::sync::CancellationToken;

use crate::config::RunnerConfig;
pub use crate::executors::process::Exit;
use crate::job::env::JobDirs;

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

/// What an executor is told about the job when it prepares.
#[derive(Debug, Clone, Copy)]
pub struct JobContext<'a> {
    /// The job payload (image, services, variables as sent, …).
    pub job: &'a JobResponse,
    /// The job's directories as the job sees them.
    pub dirs: &'a JobDirs,
    /// All job variables in the official order, expanded (the runner's own
    /// included).
    pub variables: &'a [JobVariable],
}

/// Runs a job's stages somewhere: on this host, in a container, through
/// user scripts. See the module documentation for the lifecycle.
#[async_trait]
pub trait Executor: Send {
    /// `shell`, `docker`, `custom`.
    fn name(&self) -> &'static str;
    /// The builds directory as the job sees it (`CI_BUILDS_DIR`). Read after
    /// [`Executor::configure`].
    fn builds_dir(&self) -> String;
    /// Whether the builds directory is shared between concurrent jobs, so
    /// project directories need the runner's short token and the concurrent
    /// project id in their path (shell: yes; docker: no, each concurrent slot
    /// has its own `/builds`). Read after [`Executor::configure`].
    fn builds_dir_is_shared(&self) -> bool {
        self.shared_environment()
    }
    /// Whether jobs share this environment (shell) or get a fresh one.
    fn shared_environment(&self) -> bool;
    /// Where a path the job sees is on the runner's host, for the runner's
    /// own work on the files (sources when [`Executor::sources_on_host`],
    /// cache, artifacts).
    fn host_path(&self, job_path: &str) -> PathBuf;
    /// Whether the driver runs `get_sources` on the runner's host, with a
    /// local shell and the [`Executor::host_path`]s of the project and temp
    /// directories, instead of through [`Executor::run`]. For executors whose
    /// environment cannot be assumed to have git (the docker executor runs
    /// any image). Default: no.
    fn sources_on_host(&self) -> bool {
        false
    }
    /// Decides what depends on the job before its directories are computed
    /// (`variables` are computed with the runner's configured builds
    /// directory). Output goes to the job log. Default: nothing to do.
    async fn configure(
        &mut self,
        job: &JobResponse,
        variables: &[JobVariable],
        output: OutputSink<'_>,
    ) -> Result<(), ExecutorError> {
        let _ = (job, variables, output);
        Ok(())
    }
    /// Makes the environment ready for the job; output goes to the job log.
    async fn prepare(
        &mut self,
        job: &JobContext<'_>,
        output: OutputSink<'_>,
    ) -> Result<(), ExecutorError>;
    /// Runs one stage.
    async fn run(
        &mut self,
        stage: Stage<'_>,
        cancel: CancellationToken,
        output: OutputSink<'_>,
    ) -> Result<Exit, ExecutorError>;
    /// Releases everything `configure`, `prepare` and `run` created.
    async fn cleanup(&mut self);
}

/// The executor for one job of the `[[runners]]` entry `runner`, running in
/// concurrent slot `slot` (`CI_CONCURRENT_ID`, 0-based). The job loop calls
/// this once per job; the executor's name is matched here and only here.
/// Jobs running at the same time must have different slots: the docker
/// executor keeps one builds directory per slot, bind-mounted at `/builds`.
///
/// Relative directories are resolved against the process's working directory
/// (`run -d`), as the official runner does.
pub fn for_runner(runner: &RunnerConfig, slot: usize) -> Result<Box<dyn Executor>, ExecutorError> {
    let cwd = std::env::current_dir().map_err(|e| {
        ExecutorError(format!(
            "failed to read the working directory to resolve builds_dir: {e}"
        ))
    })?;
    match runner.executor.as_str() {
        "shell" => {
            let builds = absolute(&cwd, runner.builds_dir.as_deref().unwrap_or("builds"));
            Ok(Box::new(shell::ShellExecutor::new(builds)))
        }
        "docker" => {
            let settings = docker::DockerSettings::from_config(runner, &cwd, slot)?;
            Ok(Box::new(docker::DockerExecutor::new(settings)))
        }
        "custom" => {
            let settings = custom::CustomSettings::from_config(runner, &cwd)?;
            Ok(Box::new(custom::CustomExecutor::new(settings)))
        }
        "" => Err(ExecutorError(
            "the runner entry has no executor (set `executor = \"shell\"`, \"docker\" or \"custom\" in config.toml)"
                .into(),
        )),
        other => Err(ExecutorError(format!(
            "executor {other:?} is not supported by forerunner (use shell, docker or custom)"
        ))),
    }
}

/// `path` made absolute against `base` when it is relative.
pub(crate) fn absolute(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(executor: &str, extra: &str) -> RunnerConfig {
        let toml = format!(
            "[[runners]]\nname = \"r\"\nurl = \"https://gitlab.example.com\"\n\
             token = \"glrt-abcdefghijklmnop\"\nexecutor = \"{executor}\"\n{extra}"
        );
        let config = crate::config::Config::parse(Path::new("config.toml"), &toml, &|_| None)
            .expect("valid config");
        config.runners[0].clone()
    }

    #[test]
    fn for_runner_matches_the_executor_name() {
        let shell = for_runner(&entry("shell", ""), 0).unwrap();
        assert_eq!(shell.name(), "shell");
        assert!(shell.builds_dir_is_shared());
        let docker = for_runner(
            &entry("docker", "[runners.docker]\nimage = \"alpine\"\n"),
            1,
        )
        .unwrap();
        assert_eq!(docker.name(), "docker");
        assert_eq!(docker.builds_dir(), "/builds");
        assert!(!docker.builds_dir_is_shared() && docker.sources_on_host());
        assert!(docker
            .host_path("/builds/g/p")
            .ends_with("docker-builds/abcdefghi/concurrent-1/g/p"));
        let custom = for_runner(
            &entry(
                "custom",
                "builds_dir = \"/b\"\n[runners.custom]\nrun_exec = \"/r.sh\"\n",
            ),
            0,
        )
        .unwrap();
        assert_eq!(custom.name(), "custom");
        assert_eq!(custom.builds_dir(), "/b");
        let err = for_runner(&entry("custom", ""), 0).err().unwrap();
        assert!(err.0.contains("run_exec"), "{err}");
        let err = for_runner(&entry("kubernetes", ""), 0).err().unwrap();
        assert_eq!(
            err.0,
            "executor \"kubernetes\" is not supported by forerunner (use shell, docker or custom)"
        );
        let err = for_runner(
            &entry("docker", "[runners.docker]\npull_policy = \"sometimes\"\n"),
            0,
        )
        .err()
        .unwrap();
        assert!(
            err.0.starts_with("[runners.docker]: invalid pull_policy"),
            "{err}"
        );
    }
}
