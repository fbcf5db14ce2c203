//! Helpers for the runner CLI tests: run the `forerunner` binary with a
//! config file in a temp dir (never blocking the runtime the in-process
//! coordinator serves on), scan its output for full tokens, and a tiny
//! fault-injecting HTTP server for "server down" and 5xx cases, and
//! [`Runner`]: the binary running in the background (`run`, `run-single`)
//! with its output collected.
//!
//! The fake server only stands in where the real coordinator cannot fail on
//! purpose; every success path runs against the real coordinator.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use forerunner_testkit::{clean_command, TestCoordinator};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A temp dir holding `config.toml`, plus every secret the test has seen
/// (so that each command's output can be scanned for them).
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: PathBuf,
    secrets: Mutex<Vec<String>>,
}

/// What a command printed.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// stdout and stderr together.
    pub(crate) fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub(crate) fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "command failed:\n{}", self.all());
        self
    }

    #[track_caller]
    pub(crate) fn fails(&self) -> &Self {
        assert_ne!(self.code, 0, "command succeeded:\n{}", self.all());
        self
    }

    #[track_caller]
    pub(crate) fn says(&self, needle: &str) -> &Self {
        assert!(
            self.all().contains(needle),
            "output lacks {needle:?}:\n{}",
            self.all()
        );
        self
    }
}

impl Env {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        Env {
            dir,
            config,
            secrets: Mutex::new(Vec::new()),
        }
    }

    /// Remembers a token that must never appear in full in any output.
    pub(crate) fn secret(&self, token: &str) {
        if !token.is_empty() {
            self.secrets.lock().unwrap().push(token.to_owned());
        }
    }

    /// Remembers the coordinator's tokens.
    pub(crate) fn secrets_of(&self, c: &TestCoordinator) {
        self.secret(&c.root_token);
        self.secret(&c.registration_token);
    }

    pub(crate) fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config).unwrap_or_default()
    }

    pub(crate) fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    /// Every token in config.toml becomes a secret too.
    fn learn_config_tokens(&self) {
        for line in self.config_text().lines() {
            if let Some(v) = line.trim().strip_prefix("token = \"") {
                let v = v.split('"').next().unwrap_or_default();
                // `$VAR` references are not secrets.
                if !v.starts_with('$') {
                    self.secret(v);
                }
            }
        }
    }

    /// Runs `forerunner <args> --config <dir>/config.toml` with a clean
    /// environment plus `env`, and checks that no output line contains a
    /// full token (`list` excepted, which prints them as the official runner).
    pub(crate) async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.learn_config_tokens();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_forerunner"));
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().await.expect("failed to run forerunner");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.learn_config_tokens();
        if args.first() != Some(&"list") {
            self.assert_no_full_token(&run.all());
        }
        run
    }

    /// Fails if `text` contains any remembered secret in full.
    #[track_caller]
    pub(crate) fn assert_no_full_token(&self, text: &str) {
        for secret in self.secrets.lock().unwrap().iter() {
            // Placeholder tokens shorter than a real secret are not secrets.
            if secret.len() < 16 {
                continue;
            }
            assert!(
                !text.contains(secret.as_str()),
                "full token {}… printed:\n{text}",
                &secret[..secret.len().min(10)]
            );
        }
    }
}

/// Creates a runner as root with `POST /user/runners`; returns (id, glrt- token).
pub(crate) async fn create_user_runner(c: &TestCoordinator, body: Value) -> (i64, String) {
    let r = c
        .root_request(reqwest::Method::POST, "/user/runners", Some(body))
        .await
        .unwrap();
    (
        r["id"].as_i64().unwrap(),
        r["token"].as_str().unwrap().to_owned(),
    )
}

/// `GET /runners/:id` as root: `Some(details)` or `None` when it answers non-2xx.
pub(crate) async fn runner_details(c: &TestCoordinator, id: i64) -> Option<Value> {
    c.root_request(reqwest::Method::GET, &format!("/runners/{id}"), None)
        .await
        .ok()
}

/// An instance runner created with `POST /user/runners`: (id, `glrt-` token).
pub(crate) async fn instance_runner(c: &TestCoordinator) -> (i64, String) {
    create_user_runner(c, json!({"runner_type": "instance_type"})).await
}

/// A runner registered with the registration token (`POST /runners`): (id, token).
pub(crate) async fn legacy_runner(c: &TestCoordinator) -> (i64, String) {
    let resp = c
        .client()
        .post(c.api("/runners"))
        .json(&json!({"token": c.registration_token, "description": "legacy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let r: Value = resp.json().await.unwrap();
    (
        r["id"].as_i64().unwrap(),
        r["token"].as_str().unwrap().to_owned(),
    )
}

/// Deletes a runner on the server, as an administrator would in the UI.
pub(crate) async fn delete_runner(c: &TestCoordinator, id: i64) {
    c.root_request(reqwest::Method::DELETE, &format!("/runners/{id}"), None)
        .await
        .unwrap();
}

/// `POST /runners/verify` with `token`: the HTTP status.
pub(crate) async fn verify_status(c: &TestCoordinator, token: &str) -> u16 {
    c.client()
        .post(c.api("/runners/verify"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A URL where nothing listens.
pub(crate) async fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// A fake server answering every request with one status and JSON body,
/// recording `METHOD /path` of each request.
pub(crate) struct FakeServer {
    pub(crate) url: String,
    pub(crate) requests: Arc<Mutex<Vec<String>>>,
}

impl FakeServer {
    pub(crate) async fn start(status: u16, body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let body = body.to_owned();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Read the head, then the body by Content-Length.
                    let head_end = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let request_line = head.lines().next().unwrap_or_default();
                    let mut parts = request_line.split_whitespace();
                    let method = parts.next().unwrap_or_default();
                    let path = parts.next().unwrap_or_default();
                    seen.lock().unwrap().push(format!("{method} {path}"));
                    let reason = match status {
                        200 => "OK",
                        201 => "Created",
                        204 => "No Content",
                        403 => "Forbidden",
                        404 => "Not Found",
                        410 => "Gone",
                        500 => "Internal Server Error",
                        502 => "Bad Gateway",
                        503 => "Service Unavailable",
                        _ => "Status",
                    };
                    let resp = format!(
                        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        FakeServer { url, requests }
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// The `forerunner` binary with [`clean_command`]'s environment.
pub(crate) fn forerunner(home: &Path) -> tokio::process::Command {
    clean_command(env!("CARGO_BIN_EXE_forerunner"), home)
}

/// The `forerunner` binary running in the background (`run`,
/// `run-single`), its stdout and stderr collected line by line (echoed with
/// `TEST_LOG=1`). Killed when dropped; a failing test shows its output.
pub(crate) struct Runner {
    child: tokio::process::Child,
    output: Arc<Mutex<String>>,
}

impl Runner {
    /// Starts `forerunner <args>` in `home` with a clean environment:
    /// `PATH`, `HOME=home`, no git configuration, and `DOCKER_HOST` when the
    /// test process has it.
    pub(crate) fn spawn<S: AsRef<std::ffi::OsStr>>(args: &[S], home: &Path) -> Runner {
        let mut cmd = forerunner(home);
        cmd.args(args).current_dir(home);
        let mut child = cmd.spawn().expect("failed to start forerunner");
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for reader in [
            Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            Box::new(stderr),
        ] {
            let output = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(reader).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if std::env::var_os("TEST_LOG").is_some() {
                        eprintln!("runner: {line}");
                    }
                    let mut o = output.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Runner { child, output }
    }

    /// Everything it printed so far (stdout and stderr, line by line).
    pub(crate) fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub(crate) async fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.output().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.id().expect("the runner is running");
        let st = std::process::Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Waits for the process to exit; panics with its output on timeout.
    pub(crate) async fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(st) => {
                // Let the readers drain the pipes.
                tokio::time::sleep(Duration::from_millis(100)).await;
                st.unwrap()
            }
            Err(_) => panic!("the runner did not exit:\n{}", self.output()),
        }
    }

    /// Sends `SIGKILL` and reaps the process: a runner that dies without
    /// cleaning up.
    pub(crate) async fn kill(&mut self) {
        self.child.start_kill().expect("failed to kill the runner");
        let _ = self.child.wait().await;
    }

    /// Sends `SIGTERM` (the runner finishes its jobs, then exits) and waits
    /// up to `timeout` for the exit; panics with the output otherwise.
    pub(crate) async fn stop(mut self, timeout: Duration) -> std::process::ExitStatus {
        self.signal("TERM");
        self.wait_exit(timeout).await
    }
}

impl Drop for Runner {
    /// A failing test shows what the runner printed.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- forerunner output ---\n{}--- end ---", self.output());
        }
    }
}
