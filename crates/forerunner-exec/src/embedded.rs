//! The embedded halves: the coordinator (`Application` on `127.0.0.1:0`
//! with its own data directory, bootstrapped with tokens exec generates),
//! the REST calls exec makes to it as a user would, and the runner's job
//! loop (`run::run` with a fixed configuration and a programmatic stop),
//! which takes jobs over HTTP like any other runner.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use forerunner_coordinator::ci::Ci;
use forerunner_coordinator::config::{CiSettings, Settings};
use forerunner_coordinator::domain::Secret;
use forerunner_coordinator::startup::Application;
use forerunner_coordinator::store::Store;
use forerunner_protocol::tokens::{PERSONAL_ACCESS_TOKEN_PREFIX, REGISTRATION_TOKEN_PREFIX};
use forerunner_runner::config::{Config, DockerConfig, RunnerConfig};
use forerunner_runner::run::{ConfigSource, Ended, RunOptions, RunStop};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running coordinator.
pub(crate) struct Coordinator {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base_url: String,
    /// Its CI service (prepare pipelines, read traces).
    pub(crate) ci: Ci,
    /// Its store (read jobs and pipelines).
    pub(crate) store: Store,
    /// Root's token for the REST API.
    pub(crate) api: Api,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Coordinator {
    /// Starts a coordinator keeping its data in `data_dir`.
    pub(crate) async fn start(data_dir: &Path) -> anyhow::Result<Coordinator> {
        let root_token = Secret::generate(PERSONAL_ACCESS_TOKEN_PREFIX);
        let settings = Settings {
            listen: "127.0.0.1:0".into(),
            data_dir: data_dir.to_path_buf(),
            root_token: Some(root_token.clone()),
            registration_token: Some(Secret::generate(REGISTRATION_TOKEN_PREFIX)),
            ci: CiSettings {
                // Runners send their trace every second: logs are live
                // and a cancel is seen within a second.
                trace_update_interval: 1,
                // Delayed jobs start on time.
                sweep_interval: Duration::from_secs(1),
                ..CiSettings::default()
            },
        };
        let app = Application::build(settings)
            .await
            .context("failed to start the embedded coordinator")?;
        let base_url = app.base_url();
        let ci = app.ci().clone();
        let store = app.store().clone();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let server = tokio::spawn(app.run_until_stopped(async move { stop.cancelled().await }));
        Ok(Coordinator {
            api: Api::new(&base_url, root_token.expose())?,
            base_url,
            ci,
            store,
            shutdown,
            server,
        })
    }

    /// Stops serving and waits (a few seconds at most) for it to finish.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
    }
}

/// The REST calls exec makes, as root.
#[derive(Clone)]
pub(crate) struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(base_url: &str, token: &str) -> anyhow::Result<Api> {
        Ok(Api {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .context("failed to build an HTTP client")?,
            base: format!("{base_url}/api/v4"),
            token: token.to_owned(),
        })
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("PRIVATE-TOKEN", &self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("the embedded coordinator did not answer POST {path}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("the embedded coordinator refused POST {path} ({status}): {text}");
        }
        serde_json::from_str(&text)
            .with_context(|| format!("the embedded coordinator answered POST {path} with: {text}"))
    }

    /// `POST /projects`: a project importing `import_url`; its id.
    pub(crate) async fn create_project(
        &self,
        path: &str,
        import_url: &Path,
        default_branch: &str,
    ) -> anyhow::Result<i64> {
        let v = self
            .post(
                "/projects",
                json!({
                    "name": path,
                    "path": path,
                    "import_url": import_url.display().to_string(),
                    "default_branch": default_branch,
                }),
            )
            .await?;
        v["id"].as_i64().context("the created project has no id")
    }

    /// `POST /user/runners`: an instance runner taking untagged jobs and
    /// jobs with these tags; its `glrt-` token.
    pub(crate) async fn create_runner(&self, tags: &[String]) -> anyhow::Result<String> {
        let v = self
            .post(
                "/user/runners",
                json!({
                    "runner_type": "instance_type",
                    "description": "forerunner exec",
                    "run_untagged": true,
                    "tag_list": tags.join(","),
                }),
            )
            .await?;
        v["token"]
            .as_str()
            .map(str::to_owned)
            .context("the created runner has no token")
    }

    /// `POST /projects/:id/pipelines/:pipeline_id/cancel`.
    pub(crate) async fn cancel_pipeline(&self, project: i64, pipeline: i64) -> anyhow::Result<()> {
        self.post(
            &format!("/projects/{project}/pipelines/{pipeline}/cancel"),
            json!({}),
        )
        .await
        .map(drop)
    }

    /// `POST /projects/:id/jobs/:job_id/play`.
    pub(crate) async fn play_job(&self, project: i64, job: i64) -> anyhow::Result<()> {
        self.post(&format!("/projects/{project}/jobs/{job}/play"), json!({}))
            .await
            .map(drop)
    }
}

/// How the embedded runner runs jobs.
#[derive(Debug, Clone)]
pub(crate) struct RunnerSetup {
    /// The coordinator.
    pub(crate) url: String,
    /// The runner's `glrt-` token.
    pub(crate) token: String,
    /// `shell` or `docker`.
    pub(crate) executor: String,
    /// Jobs at once.
    pub(crate) concurrency: usize,
    /// Builds directory (shell executor).
    pub(crate) builds_dir: PathBuf,
    /// Cache directory.
    pub(crate) cache_dir: PathBuf,
    /// Default image (docker executor).
    pub(crate) docker_image: String,
    /// Where the loop's log lines go.
    pub(crate) log_file: PathBuf,
}

impl RunnerSetup {
    /// The one-entry configuration.
    pub(crate) fn config(&self) -> Config {
        let docker = self.executor == "docker";
        Config {
            concurrent: Some(i64::try_from(self.concurrency).unwrap_or(i64::MAX)),
            shutdown_timeout: Some(10),
            runners: vec![RunnerConfig {
                name: "forerunner-exec".into(),
                url: self.url.clone(),
                token: self.token.clone(),
                executor: self.executor.clone(),
                // The docker executor keeps `/builds` inside containers and
                // its host side under the working directory.
                builds_dir: (!docker).then(|| self.builds_dir.display().to_string()),
                cache_dir: (!docker).then(|| self.cache_dir.display().to_string()),
                docker: docker.then(|| DockerConfig {
                    image: Some(self.docker_image.clone()),
                    // Local images are used as they are; missing ones pulled.
                    pull_policy: vec!["if-not-present".into()],
                    cache_dir: Some(self.cache_dir.display().to_string()),
                    ..DockerConfig::default()
                }),
                ..RunnerConfig::default()
            }],
            ..Config::default()
        }
    }
}

/// The embedded runner's job loop.
pub(crate) struct Runner {
    /// Drain or abort it.
    pub(crate) stop: RunStop,
    task: JoinHandle<anyhow::Result<Ended>>,
}

impl Runner {
    /// Starts the loop.
    pub(crate) fn start(setup: &RunnerSetup) -> Runner {
        let stop = RunStop::default();
        let options = RunOptions {
            config: ConfigSource::Fixed(Box::new(setup.config())),
            system_id: forerunner_runner::system_id::random(),
            listen_address: None,
            max_builds: 0,
            wait_timeout: None,
            shutdown_timeout: Some(Duration::from_secs(10)),
            debug: false,
            stop: Some(stop.clone()),
            log_file: Some(setup.log_file.clone()),
        };
        Runner {
            stop,
            task: tokio::spawn(forerunner_runner::run::run(options)),
        }
    }

    /// Whether the loop ended by itself (it failed to start).
    pub(crate) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops asking for jobs and waits for the loop (running jobs get
    /// `grace` to finish, then they are aborted).
    pub(crate) async fn stop(self, grace: Duration) -> anyhow::Result<()> {
        self.stop.drain.cancel();
        let mut task = self.task;
        let ended = match tokio::time::timeout(grace, &mut task).await {
            Ok(joined) => joined,
            Err(_) => {
                self.stop.abort.cancel();
                match tokio::time::timeout(Duration::from_secs(15), &mut task).await {
                    Ok(joined) => joined,
                    Err(_) => {
                        task.abort();
                        bail!("the embedded runner did not stop");
                    }
                }
            }
        };
        match ended {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(anyhow::anyhow!("the embedded runner crashed: {e}")),
        }
    }

    /// The loop's error, once it ended by itself.
    pub(crate) async fn failure(self) -> anyhow::Error {
        match self.task.await {
            Ok(Ok(_)) => anyhow::anyhow!("the embedded runner stopped unexpectedly"),
            Ok(Err(e)) => e,
            Err(e) => anyhow::anyhow!("the embedded runner crashed: {e}"),
        }
    }
}
