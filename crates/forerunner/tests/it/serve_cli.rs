//! `forerunner serve` and `forerunner admin` as processes: the bound address
//! is logged, probes answer, generated tokens are printed once and saved
//! with mode 0600, SIGTERM stops the server cleanly, and admin commands work
//! on the data directory.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_forerunner");

/// A `forerunner serve` child process and its bound URL.
struct Served {
    child: Child,
    url: String,
    stdout: String,
    /// Everything the server logged so far.
    logs: Arc<Mutex<String>>,
}

impl Drop for Served {
    /// A failed assertion must not leave a server running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `forerunner serve --listen 127.0.0.1:0 --data-dir DIR` and waits
/// for the "listening on" log line.
fn serve(data_dir: &Path, envs: &[(&str, &str)]) -> Served {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("FORERUNNER_ROOT_TOKEN")
        .env_remove("FORERUNNER_REGISTRATION_TOKEN")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("failed to start forerunner serve");
    let stderr = child.stderr.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let logs = Arc::new(Mutex::new(String::new()));
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve did not log its bound address");
    // Generated tokens are printed before the server listens.
    let (otx, orx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = otx.send(all.clone());
        }
    });
    let stdout = orx
        .recv_timeout(Duration::from_millis(300))
        .unwrap_or_default();
    Served {
        child,
        url: format!("http://{addr}"),
        stdout,
        logs,
    }
}

/// Stops the server and returns its whole log.
fn sigterm_and_wait(mut served: Served) -> String {
    let status = Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..200 {
        if let Some(status) = served.child.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status}");
            // Let the reader thread drain the pipe.
            std::thread::sleep(Duration::from_millis(100));
            return served.logs.lock().unwrap().clone();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = served.child.kill();
    panic!("serve did not stop within 10 s of SIGTERM");
}

fn admin(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("admin")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_generates_tokens_answers_probes_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &[]);
    let client = reqwest::Client::new();
    for probe in ["/-/health", "/-/readiness", "/-/liveness"] {
        let resp = client
            .get(format!("{}{probe}", served.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{probe}");
    }
    let root_token = std::fs::read_to_string(dir.path().join("root-token"))
        .unwrap()
        .trim()
        .to_owned();
    let registration = std::fs::read_to_string(dir.path().join("registration-token"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(root_token.starts_with("glpat-"));
    assert!(registration.starts_with("GR1348941"));
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir.path().join("root-token")), 0o600);
        assert_eq!(mode(&dir.path().join("registration-token")), 0o600);
    }
    assert!(served.stdout.contains(&root_token), "{}", served.stdout);
    assert_eq!(
        admin(dir.path(), &["registration-token", "show"]).trim(),
        registration
    );
    let me: serde_json::Value = client
        .get(format!("{}/api/v4/user", served.url))
        .header("PRIVATE-TOKEN", &root_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "root");
    let resp = client
        .post(format!("{}/api/v4/runners", served.url))
        .json(&json!({"token": registration}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let legacy: serde_json::Value = resp.json().await.unwrap();
    let legacy_token = legacy["token"].as_str().unwrap().to_owned();
    // Exercise every way a token travels, then check none reached the log.
    let created: serde_json::Value = client
        .post(format!(
            "{}/api/v4/user/runners?private_token={root_token}",
            served.url
        ))
        .form(&[("runner_type", "instance_type")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let glrt = created["token"].as_str().unwrap().to_owned();
    for token in [&glrt, &legacy_token, &root_token, &registration] {
        let _ = client
            .post(format!("{}/api/v4/runners/verify", served.url))
            .json(&json!({"token": token, "system_id": "s_000000000001"}))
            .send()
            .await
            .unwrap();
        let _ = client
            .post(format!("{}/api/v4/runners", served.url))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
    }
    let reset: serde_json::Value = client
        .post(format!(
            "{}/api/v4/runners/reset_authentication_token",
            served.url
        ))
        .json(&json!({"token": glrt}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rotated = reset["token"].as_str().unwrap().to_owned();
    let resp = client
        .delete(format!("{}/api/v4/runners?token={rotated}", served.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let logs = sigterm_and_wait(served);
    assert!(logs.contains("received SIGTERM"), "{logs}");
    for secret in [&root_token, &registration, &legacy_token, &glrt, &rotated] {
        assert!(
            !logs.contains(secret.as_str()),
            "{secret} leaked into the log:\n{logs}"
        );
    }
    assert!(
        logs.contains(&glrt[5..14]),
        "short form of {glrt} missing:\n{logs}"
    );

    // A restart keeps the data and prints no new tokens.
    let served = serve(dir.path(), &[]);
    assert!(!served.stdout.contains("glpat-"), "{}", served.stdout);
    let resp = client
        .get(format!("{}/api/v4/runners/all", served.url))
        .header("PRIVATE-TOKEN", &root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The two legacy registrations survived the restart; the deleted runner did not.
    let runners: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(runners.as_array().unwrap().len(), 2);
    sigterm_and_wait(served);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_uses_tokens_from_the_environment_and_admin_manages_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let pat = "glpat-fromtheenvironment0";
    let reg = "GR1348941fromtheenvironment";
    let served = serve(
        dir.path(),
        &[
            ("FORERUNNER_ROOT_TOKEN", pat),
            ("FORERUNNER_REGISTRATION_TOKEN", reg),
        ],
    );
    assert!(!dir.path().join("root-token").exists());
    assert!(!served.stdout.contains(pat));
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{}/api/v4/user", served.url))
        .header("PRIVATE-TOKEN", pat)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // admin works next to a running server.
    assert!(admin(
        dir.path(),
        &["user", "create", "alice", "--email", "a@example.com"]
    )
    .contains("created user alice"));
    let alice_token = admin(
        dir.path(),
        &[
            "token",
            "create",
            "alice",
            "--scopes",
            "api,read_api",
            "--expires-at",
            "2999-01-01",
        ],
    )
    .trim()
    .to_owned();
    assert!(alice_token.starts_with("glpat-"));
    let expired = admin(
        dir.path(),
        &["token", "create", "alice", "--expires-at", "2000-01-01"],
    )
    .trim()
    .to_owned();
    assert!(admin(
        dir.path(),
        &["group", "create", "Ops Team", "--owner", "alice"]
    )
    .contains("created group ops-team"));
    assert!(admin(
        dir.path(),
        &[
            "project",
            "create",
            "infra",
            "--group",
            "ops-team",
            "--owner",
            "alice",
            "--import-url",
            "/srv/git/infra.git"
        ],
    )
    .contains("created project ops-team/infra"));
    assert!(admin(dir.path(), &["user", "list"]).contains("alice"));
    assert!(admin(dir.path(), &["group", "list"]).contains("ops-team"));
    assert!(admin(dir.path(), &["project", "list"]).contains("/srv/git/infra.git"));
    assert!(admin(
        dir.path(),
        &["registration-token", "show", "--group", "ops-team"]
    )
    .contains("no registration token"));
    let group_reg = admin(
        dir.path(),
        &["registration-token", "reset", "--group", "ops-team"],
    )
    .trim()
    .to_owned();
    assert!(group_reg.starts_with("GR1348941"));
    assert!(admin(
        dir.path(),
        &["registration-token", "show", "--group", "ops-team"]
    )
    .contains(&group_reg[..17]));
    assert!(admin(dir.path(), &["registration-token", "show"]).contains(&reg[..17]));

    let projects: serde_json::Value = client
        .get(format!("{}/api/v4/projects", served.url))
        .header("PRIVATE-TOKEN", &alice_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(projects[0]["path_with_namespace"], "ops-team/infra");
    assert_eq!(projects[0]["import_url"], "/srv/git/infra.git");
    let resp = client
        .get(format!("{}/api/v4/user", served.url))
        .header("PRIVATE-TOKEN", &expired)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    let resp = client
        .post(format!("{}/api/v4/runners", served.url))
        .form(&[("token", group_reg.as_str()), ("description", "ops")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    sigterm_and_wait(served);

    // Errors name the fix.
    let out = Command::new(BIN)
        .args(["admin", "--data-dir"])
        .arg(dir.path().join("missing"))
        .args(["user", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("forerunner serve --data-dir"));
}
