//! The shell executor: stages run as `bash` (or `sh` when bash is missing)
//! processes on this host, each in its own process group, with the
//! runner's environment. Jobs share the host, so `CI_SHARED_ENVIRONMENT`
//! is set and the builds directory is shared between jobs.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::executors::process::{run_stage, StageCommand};
use crate::executors::{Executor, ExecutorError, Exit, JobContext, OutputSink, Stage};

/// The shell executor: stages run as `bash` (or `sh`) processes on this host,
/// each in its own process group, with the runner's environment.
#[derive(Debug, Clone)]
pub struct ShellExecutor {
    builds_dir: PathBuf,
    shell: PathBuf,
    kill_grace: Duration,
}

impl ShellExecutor {
    /// A shell executor using `builds_dir` (made absolute by the caller) and
    /// `bash`, falling back to `sh` when bash is not installed.
    pub fn new(builds_dir: PathBuf) -> Self {
        let shell = which("bash").unwrap_or_else(|| PathBuf::from("sh"));
        Self {
            builds_dir,
            shell,
            kill_grace: Duration::from_secs(10),
        }
    }

    /// The interpreter in use.
    pub fn shell(&self) -> &std::path::Path {
        &self.shell
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

#[async_trait]
impl Executor for ShellExecutor {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn builds_dir(&self) -> String {
        self.builds_dir.to_string_lossy().into_owned()
    }

    fn shared_environment(&self) -> bool {
        true
    }

    fn host_path(&self, job_path: &str) -> PathBuf {
        PathBuf::from(job_path)
    }

    async fn prepare(
        &mut self,
        job: &JobContext<'_>,
        _output: OutputSink<'_>,
    ) -> Result<(), ExecutorError> {
        let parent = std::path::Path::new(&job.dirs.project_dir)
            .parent()
            .unwrap_or(&self.builds_dir);
        tokio::fs::create_dir_all(parent).await.map_err(|e| {
            ExecutorError(format!(
                "failed to create the builds directory {}: {e}",
                parent.display()
            ))
        })
    }

    async fn run(
        &mut self,
        stage: Stage<'_>,
        cancel: CancellationToken,
        output: OutputSink<'_>,
    ) -> Result<Exit, ExecutorError> {
        let cmd = StageCommand {
            program: self.shell.clone(),
            args: Vec::new(),
            stdin: stage.script.into_bytes(),
            dir: self.builds_dir.clone(),
            env: Vec::new(),
            timeout: stage.timeout,
            kill_grace: self.kill_grace,
        };
        run_stage(cmd, cancel, output)
            .await
            .map_err(|e| ExecutorError(format!("failed to start {}: {e}", self.shell.display())))
    }

    async fn cleanup(&mut self) {}
}
