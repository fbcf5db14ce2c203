//! Running the `git` CLI: one place that sets the environment every git
//! process of the coordinator gets, spawns it without a terminal, and turns
//! a failed run into a [`GitError`] with redacted arguments and output.
//!
//! It knows nothing about what the commands mean; [`crate::git::mirror`] and
//! [`crate::git::http_backend`] build the argument lists.
use std::{
    ffi::{OsStr, OsString},
    io,
    path::{Path, PathBuf},
    process::{Output, Stdio},
    sync::Arc,
};

use tokio::{io::AsyncWriteExt, process::Command};

use crate::git::{redact_credentials, GitError};

/// How to start git: the program and the extra environment variables.
#[derive(Clone, Debug)]
pub(crate) struct Git {
    program: OsString,
    env: Arc<[(OsString, OsString)]>,
}

impl Git {
    /// Runs `git` from `PATH` with the given extra environment.
    pub(crate) fn new(env: Vec<(OsString, OsString)>) -> Self {
        Self {
            program: OsString::from("git"),
            env: env.into(),
        }
    }

    /// The extra environment variables, in the order they were added.
    pub(crate) fn env(&self) -> &[(OsString, OsString)] {
        &self.env
    }

    /// A `git` command that never prompts, with `--git-dir` set when given.
    ///
    /// Stdin is null and stdout/stderr are piped; the process is killed if
    /// the future waiting on it is dropped (e.g. on a timeout).
    pub(crate) fn command(&self, git_dir: Option<&Path>) -> Command {
        self.command_for(&self.program, git_dir)
    }

    /// Like [`Git::command`], but runs `program` (one of git's own helper
    /// programs, e.g. `<exec-path>/git-http-backend`) with git's
    /// environment.
    pub(crate) fn command_for(&self, program: &OsStr, git_dir: Option<&Path>) -> Command {
        let mut command = Command::new(program);
        // Credentials come from the URL or not at all: a server must not wait
        // on a terminal or an askpass dialog.
        command
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "")
            .env("SSH_ASKPASS", "");
        for (key, value) in self.env.iter() {
            command.env(key, value);
        }
        if let Some(dir) = git_dir {
            let mut arg = OsString::from("--git-dir=");
            arg.push(dir);
            command.arg(arg);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Where git keeps its helper programs (`git --exec-path`), if git
    /// answers.
    pub(crate) async fn exec_path(&self) -> Option<PathBuf> {
        let output = self.run(None, &["--exec-path"], None).await.ok()?;
        let path = String::from_utf8(output.stdout).ok()?;
        let path = path.trim();
        (output.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
    }

    /// Runs `git <args>` (in `git_dir` when given), feeding `stdin` when
    /// given, and returns its output whatever the exit status.
    pub(crate) async fn run<S: AsRef<OsStr>>(
        &self,
        git_dir: Option<&Path>,
        args: &[S],
        stdin: Option<&[u8]>,
    ) -> Result<Output, GitError> {
        let mut command = self.command(git_dir);
        command.args(args);
        if stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().map_err(spawn_error)?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A process that exits early closes the pipe; its exit status and
            // stderr then tell the real story, so a broken pipe is ignored.
            match pipe.write_all(input).await {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {}
                Err(err) => return Err(spawn_error(err)),
            }
        }
        child.wait_with_output().await.map_err(spawn_error)
    }

    /// Like [`Git::run`], but a non-zero exit status becomes
    /// [`GitError::Command`]. Returns stdout.
    pub(crate) async fn run_ok<S: AsRef<OsStr>>(
        &self,
        git_dir: &Path,
        args: &[S],
        stdin: Option<&[u8]>,
    ) -> Result<Vec<u8>, GitError> {
        let output = self.run(Some(git_dir), args, stdin).await?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(command_failed(git_dir, args, &output))
        }
    }
}

/// The error for a git command that exited unsuccessfully.
pub(crate) fn command_failed<S: AsRef<OsStr>>(dir: &Path, args: &[S], output: &Output) -> GitError {
    GitError::Command {
        command: display_args(args),
        dir: PathBuf::from(dir),
        stderr: stderr_text(output),
    }
}

/// Git's stderr as one trimmed, redacted string, or the exit status when
/// git printed nothing.
pub(crate) fn stderr_text(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr);
    let text = text.trim();
    if text.is_empty() {
        format!("git exited with {}", output.status)
    } else {
        redact_credentials(text).into_owned()
    }
}

fn display_args<S: AsRef<OsStr>>(args: &[S]) -> String {
    let joined = args
        .iter()
        .map(|arg| arg.as_ref().to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    redact_credentials(&joined).into_owned()
}

fn spawn_error(source: io::Error) -> GitError {
    GitError::GitUnavailable { source }
}
