//! [`TestCoordinator`]: spawn the real coordinator in process.

use anyhow::{bail, Context as _};
use forerunner_coordinator::config::{CiSettings, Settings};
use forerunner_coordinator::domain::{
    ManagerHeartbeat, NewPersonalAccessToken, NewUser, Scope, Secret,
};
use forerunner_coordinator::startup::Application;
use forerunner_coordinator::store::Store;
use forerunner_coordinator::telemetry;
use forerunner_protocol::tokens::{PERSONAL_ACCESS_TOKEN_PREFIX, REGISTRATION_TOKEN_PREFIX};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// A running coordinator with a fresh data directory.
///
/// The server runs on its own runtime in a background thread, so a test may
/// block (for example on `std::process::Command::output` running the
/// `forerunner` binary against it) without starving the server. Dropping
/// it stops the server; [`TestCoordinator::stop`] also waits for a clean
/// shutdown.
pub struct TestCoordinator {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    /// Root's personal access token (`glpat-…`, scopes api, create_runner, read_api).
    pub root_token: String,
    /// The instance registration token (`GR1348941…`).
    pub registration_token: String,
    /// The data directory (database, token files); removed on drop.
    pub data_dir: tempfile::TempDir,
    store: Store,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    stopped: Option<oneshot::Receiver<anyhow::Result<()>>>,
}

/// A user created by [`TestCoordinator::create_user`].
#[derive(Debug, Clone)]
pub struct TestUser {
    /// User id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Personal access token (`glpat-…`).
    pub token: String,
}

impl TestCoordinator {
    /// Starts a coordinator on `127.0.0.1:0`. Panics if it cannot start
    /// (tests have nothing better to do).
    pub async fn spawn() -> TestCoordinator {
        Self::try_spawn()
            .await
            .expect("failed to start the test coordinator")
    }

    /// Starts a coordinator on `127.0.0.1:0`.
    pub async fn try_spawn() -> anyhow::Result<TestCoordinator> {
        Self::try_spawn_with(CiSettings::default()).await
    }

    /// Starts a coordinator with these job queue settings (short long-poll
    /// or vanish timeouts for tests). Panics if it cannot start.
    pub async fn spawn_with(ci: CiSettings) -> TestCoordinator {
        Self::try_spawn_with(ci)
            .await
            .expect("failed to start the test coordinator")
    }

    /// Starts a coordinator with these job queue settings.
    pub async fn try_spawn_with(ci: CiSettings) -> anyhow::Result<TestCoordinator> {
        if std::env::var_os("TEST_LOG").is_some() {
            telemetry::init();
        }
        let data_dir = tempfile::Builder::new()
            .prefix("forerunner-test-")
            .tempdir()
            .context("failed to create a temporary data directory")?;
        let root_token = Secret::generate(PERSONAL_ACCESS_TOKEN_PREFIX);
        let registration_token = Secret::generate(REGISTRATION_TOKEN_PREFIX);
        let settings = Settings {
            listen: "127.0.0.1:0".into(),
            data_dir: data_dir.path().to_path_buf(),
            root_token: Some(root_token.clone()),
            registration_token: Some(registration_token.clone()),
            ci,
        };
        let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<(String, Store)>>();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped_rx) = oneshot::channel::<anyhow::Result<()>>();
        std::thread::Builder::new()
            .name("test-coordinator".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let app = match Application::build(settings).await {
                        Ok(app) => app,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok((app.base_url(), app.store().clone())));
                    let result = app
                        .run_until_stopped(async {
                            let _ = shutdown_rx.await;
                        })
                        .await;
                    let _ = stopped_tx.send(result);
                });
            })
            .context("failed to start the coordinator thread")?;
        let (url, store) = ready_rx
            .await
            .context("the coordinator thread died while starting")??;
        Ok(TestCoordinator {
            url,
            root_token: root_token.expose().to_owned(),
            registration_token: registration_token.expose().to_owned(),
            data_dir,
            store,
            client: reqwest::Client::new(),
            shutdown: Some(shutdown_tx),
            stopped: Some(stopped_rx),
        })
    }

    /// A plain HTTP client (no default headers).
    pub fn client(&self) -> reqwest::Client {
        self.client.clone()
    }

    /// `{url}/api/v4{path}`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v4{path}", self.url)
    }

    /// The coordinator's store, for arranging state the API cannot create.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            stopped
                .await
                .context("the coordinator thread died before stopping")??;
        }
        Ok(())
    }

    /// Sends `method path` as root with an optional JSON body and returns the
    /// JSON answer; fails unless the status is 2xx.
    pub async fn root_request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .client
            .request(method.clone(), self.api(path))
            .header("PRIVATE-TOKEN", &self.root_token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("failed to send {method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {text}");
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {path} answered non-JSON: {text}"))
    }

    /// Creates a group owned by root; returns its JSON (`id`, `full_path`, …).
    pub async fn create_group(&self, name: &str) -> Value {
        self.root_request(
            reqwest::Method::POST,
            "/groups",
            Some(json!({"name": name})),
        )
        .await
        .expect("failed to create a group")
    }

    /// Creates a project owned by root, in `group` (an id) or in root's
    /// namespace; returns its JSON.
    pub async fn create_project(&self, name: &str, group: Option<i64>) -> Value {
        let mut body = json!({"name": name});
        if let Some(group) = group {
            body["namespace_id"] = json!(group);
        }
        self.root_request(reqwest::Method::POST, "/projects", Some(body))
            .await
            .expect("failed to create a project")
    }

    /// Creates a user with a personal access token of `scopes`.
    pub async fn create_user(&self, username: &str, is_admin: bool, scopes: &[&str]) -> TestUser {
        let user = self
            .store
            .users
            .create_user(NewUser {
                username: username.into(),
                name: username.into(),
                email: Some(format!("{username}@example.com")),
                is_admin,
            })
            .await
            .expect("failed to create a user");
        let token = Secret::generate(PERSONAL_ACCESS_TOKEN_PREFIX);
        let scopes = scopes
            .iter()
            .map(|s| Scope::parse(s).unwrap_or_else(|| panic!("unknown scope {s}")))
            .collect();
        self.store
            .users
            .create_token(NewPersonalAccessToken {
                user_id: user.id,
                name: "test".into(),
                token_digest: token.digest(),
                token_short: token.short(),
                scopes,
                expires_at: None,
            })
            .await
            .expect("failed to create a token");
        TestUser {
            id: user.id,
            username: user.username,
            token: token.expose().to_owned(),
        }
    }

    /// Creates a runner with root's token through `POST /user/runners`
    /// (`attributes` as python-gitlab would send them, `runner_type`
    /// included); returns `(id, glrt-token)`.
    pub async fn create_runner(&self, attributes: Value) -> (i64, String) {
        let v = self
            .root_request(reqwest::Method::POST, "/user/runners", Some(attributes))
            .await
            .expect("failed to create a runner");
        (
            v["id"].as_i64().expect("runner id"),
            v["token"].as_str().expect("runner token").to_owned(),
        )
    }

    /// Creates an instance runner that takes untagged jobs; returns `(id, glrt-t1_… token)`.
    pub async fn create_instance_runner(&self) -> (i64, String) {
        self.create_runner(json!({"runner_type": "instance_type", "run_untagged": true}))
            .await
    }

    /// Records a contact of `runner_id` from machine `system_id` that
    /// happened `ago` (to make a runner offline without waiting).
    pub async fn record_contact(&self, runner_id: i64, system_id: &str, ago: std::time::Duration) {
        let ago = chrono::Duration::from_std(ago).expect("duration out of range");
        self.store
            .runners
            .heartbeat(
                runner_id,
                ManagerHeartbeat {
                    system_id: system_id.into(),
                    ..Default::default()
                },
                chrono::Utc::now() - ago,
            )
            .await
            .expect("failed to record a contact");
    }

    /// A fresh registration token of a group (`POST /groups/:id/runners/reset_registration_token`).
    pub async fn group_registration_token(&self, group_id: i64) -> String {
        let v = self
            .root_request(
                reqwest::Method::POST,
                &format!("/groups/{group_id}/runners/reset_registration_token"),
                None,
            )
            .await
            .expect("failed to reset a group registration token");
        v["token"].as_str().expect("token").to_owned()
    }

    /// A fresh registration token of a project.
    pub async fn project_registration_token(&self, project_id: i64) -> String {
        let v = self
            .root_request(
                reqwest::Method::POST,
                &format!("/projects/{project_id}/runners/reset_registration_token"),
                None,
            )
            .await
            .expect("failed to reset a project registration token");
        v["token"].as_str().expect("token").to_owned()
    }
}

impl Drop for TestCoordinator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
