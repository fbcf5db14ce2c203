//! Running one stage script as a child process: own process group, stdout
//! and stderr through one pipe (so their order is the order they were
//! written), and a kill of the whole group on cancel or timeout.
//!
//! Cancellation is graceful first: `SIGTERM` to the process group, then
//! `SIGKILL` after `kill_grace`. A stage that outlives its timeout is killed
//! the same way and reported as [`Exit::TimedOut`].

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

/// How a stage process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exited by itself with this code (a signal death is 128 + signal).
    Code(i32),
    /// Killed because it ran past its timeout.
    TimedOut,
    /// Killed because the job was cancelled.
    Cancelled,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct StageCommand {
    /// The interpreter, e.g. `bash`.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Fed on stdin (the generated script).
    pub stdin: Vec<u8>,
    /// Working directory.
    pub dir: PathBuf,
    /// Extra environment on top of the runner's own.
    pub env: Vec<(String, String)>,
    /// Kill after this long.
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
}

/// Runs `cmd`, passing every chunk of its combined output to `on_output` as
/// it arrives, until it exits, times out or `cancel` fires.
pub async fn run_stage(
    cmd: StageCommand,
    cancel: CancellationToken,
    mut on_output: impl FnMut(&[u8]),
) -> std::io::Result<Exit> {
    let (read_end, write_end) = nix::unistd::pipe().map_err(std::io::Error::from)?;
    let stderr_end = write_end.try_clone()?;
    let mut child = tokio::process::Command::new(&cmd.program)
        .args(&cmd.args)
        .current_dir(&cmd.dir)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(stderr_end))
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let pgid = Pid::from_raw(child.id().map(|id| id as i32).unwrap_or(0));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let script = cmd.stdin;
    let feed = tokio::spawn(async move {
        // A script that exits before reading everything closes the pipe;
        // that is not an error of ours.
        let _ = stdin.write_all(&script).await;
        let _ = stdin.shutdown().await;
    });
    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(read_end)?;

    let deadline = tokio::time::sleep(cmd.timeout);
    tokio::pin!(deadline);
    let mut buf = vec![0u8; 16 * 1024];
    let mut stop: Option<Exit> = None;
    let mut eof = false;
    let status = loop {
        tokio::select! {
            read = pipe.read(&mut buf), if !eof => match read {
                Ok(0) => eof = true,
                Ok(n) => on_output(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => eof = true,
            },
            status = child.wait(), if eof || stop.is_some() => break status?,
            _ = &mut deadline, if stop.is_none() => {
                stop = Some(Exit::TimedOut);
                terminate(pgid, cmd.kill_grace);
            }
            _ = cancel.cancelled(), if stop.is_none() => {
                stop = Some(Exit::Cancelled);
                terminate(pgid, cmd.kill_grace);
            }
        }
    };
    // Drain what is left in the pipe (a killed group may leave children
    // holding it; they were killed too, so this ends).
    if !eof {
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(200), pipe.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            on_output(&buf[..n]);
        }
    }
    feed.abort();
    Ok(match stop {
        Some(exit) => exit,
        None => Exit::Code(status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt as _;
            128 + status.signal().unwrap_or(0)
        })),
    })
}

/// SIGTERM to the process group now, SIGKILL after `grace` unless it is gone.
fn terminate(pgid: Pid, grace: Duration) {
    if pgid.as_raw() <= 0 {
        return;
    }
    let _ = killpg(pgid, Signal::SIGTERM);
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        let _ = killpg(pgid, Signal::SIGKILL);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bash(script: &str, timeout: Duration) -> StageCommand {
        StageCommand {
            program: "bash".into(),
            args: vec![],
            stdin: script.as_bytes().to_vec(),
            dir: std::env::temp_dir(),
            env: vec![("STAGE_VAR".into(), "v1".into())],
            timeout,
            kill_grace: Duration::from_secs(2),
        }
    }

    async fn collect(cmd: StageCommand, cancel: CancellationToken) -> (Exit, String) {
        let mut out = Vec::new();
        let exit = run_stage(cmd, cancel, |b| out.extend_from_slice(b))
            .await
            .unwrap();
        (exit, String::from_utf8_lossy(&out).into_owned())
    }

    #[tokio::test]
    async fn exit_code_and_ordered_output() {
        let (exit, out) = collect(
            bash(
                "echo out1; echo err1 >&2; echo out2; echo $STAGE_VAR; exit 3",
                Duration::from_secs(10),
            ),
            CancellationToken::new(),
        )
        .await;
        assert_eq!(exit, Exit::Code(3));
        assert_eq!(out, "out1\nerr1\nout2\nv1\n");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let pidfile = tempfile::NamedTempFile::new().unwrap();
        let path = pidfile.path().to_str().unwrap().to_owned();
        // The group leader records its pid (= the group id), then leaves a
        // background child that ignores SIGTERM: only SIGKILL ends it.
        let script = format!("echo $$ > {path}; (trap '' TERM; sleep 30) & sleep 30");
        let mut cmd = bash(&script, Duration::from_millis(300));
        cmd.kill_grace = Duration::from_millis(300);
        let start = std::time::Instant::now();
        let (exit, _) = collect(cmd, CancellationToken::new()).await;
        assert_eq!(exit, Exit::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(10));
        let pgid: i32 = std::fs::read_to_string(&path)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut gone = false;
        for _ in 0..50 {
            if killpg(Pid::from_raw(pgid), None).is_err() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(gone, "a process of group {pgid} survived the timeout");
    }

    #[tokio::test]
    async fn cancel_is_graceful_first() {
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c2.cancel();
        });
        let (exit, out) = collect(
            bash(
                "trap 'echo got-term; exit 143' TERM; echo started; sleep 30 & wait",
                Duration::from_secs(30),
            ),
            cancel,
        )
        .await;
        assert_eq!(exit, Exit::Cancelled);
        assert!(out.contains("started") && out.contains("got-term"), "{out}");
    }

    #[tokio::test]
    async fn large_output_is_complete() {
        let (exit, out) = collect(
            bash(
                "for i in $(seq 1 20000); do echo \"line $i\"; done",
                Duration::from_secs(30),
            ),
            CancellationToken::new(),
        )
        .await;
        assert_eq!(exit, Exit::Code(0));
        assert_eq!(out.lines().count(), 20000);
        assert!(out.ends_with("line 20000\n"));
    }
}
