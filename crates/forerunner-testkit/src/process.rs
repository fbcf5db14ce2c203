//! Programs started as a user would start them.

use std::path::Path;
use std::process::Stdio;

/// `program` started as a user would start it, with a clean environment:
/// `PATH`, `HOME=home`, no git configuration, `DOCKER_HOST` when the test
/// process has it; no stdin, stdout and stderr piped, killed when dropped.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>, home: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(host) = std::env::var_os("DOCKER_HOST") {
        cmd.env("DOCKER_HOST", host);
    }
    cmd
}
