//! [`Engine`]: the Docker Engine API calls the docker executor needs, and nothing else.
//!
//! One job's life on the engine, as the docker executor is meant to drive it:
//!
//! 1. [`Engine::connect`] once per runner, then [`Engine::cleanup_leftovers`] at start-up.
//! 2. [`Engine::ensure_image`] for the job image and each service image.
//! 3. [`Engine::create_network`] and, if needed, [`Engine::create_volume`].
//! 4. [`Engine::start_service`] for each service.
//! 5. [`Engine::run_script`] once per stage, each time in a fresh build container that shares
//!    the builds and cache mounts; its output goes to a callback as it arrives.
//! 6. [`Engine::cleanup_job`], whatever happened: success, failure, cancel or timeout.
//!
//! Every object is labelled through [`JobLabels`], so cleanup finds what to remove by asking the
//! daemon rather than trusting in-memory bookkeeping that a crash would lose.
//!
//! This file holds the connection, images, networks, volumes and build scripts; the service
//! methods live in `services.rs` and the cleanup methods in `cleanup.rs`, as further `impl
//! Engine` blocks.

use std::time::Duration;

use bollard::container::{AttachContainerResults, LogOutput};
use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker, API_DEFAULT_VERSION};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::executors::docker::{ContainerSpec, EngineError, JobLabels, PullPolicy};

/// Where the Docker daemon listens when neither `[runners.docker] host` nor `DOCKER_HOST` say.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// The old Engine API version used to ask a daemon that refuses bollard's which version it speaks.
const PROBE_API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 24,
};

/// How long connecting and each ordinary API call may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the first call may take before the daemon counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to one Docker daemon. Cheap to clone; clones share the connection settings.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    host: String,
    stop_grace: Duration,
}

/// Where the image used by a job came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource {
    /// It was already on this host.
    Local,
    /// It was pulled just now.
    Pulled,
}

/// An image made available by [`Engine::ensure_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedImage {
    /// The image id, `sha256:…` (for the job log's "Using docker image …" line).
    pub id: String,
    /// Whether it was already there or pulled.
    pub source: ImageSource,
}

/// How a script run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptOutcome {
    /// The script's shell exited with this code (0 is success).
    Exited {
        /// The exit code of the container's main process.
        code: i64,
    },
    /// The cancellation token fired; the container was stopped.
    Cancelled,
    /// The timeout passed; the container was stopped.
    TimedOut,
}

impl Engine {
    /// The daemon address to use: `[runners.docker] host` if set, else `DOCKER_HOST`, else
    /// [`DEFAULT_DOCKER_HOST`]. Empty values count as unset.
    pub fn resolve_host(configured: Option<&str>, docker_host_env: Option<&str>) -> String {
        configured
            .filter(|h| !h.trim().is_empty())
            .or(docker_host_env.filter(|h| !h.trim().is_empty()))
            .unwrap_or(DEFAULT_DOCKER_HOST)
            .trim()
            .to_owned()
    }

    /// Connects to the daemon chosen by [`Engine::resolve_host`] from `configured_host` and the
    /// `DOCKER_HOST` environment variable.
    pub async fn connect(configured_host: Option<&str>) -> Result<Self, EngineError> {
        let env = std::env::var("DOCKER_HOST").ok();
        Self::connect_to(&Self::resolve_host(configured_host, env.as_deref())).await
    }

    /// Connects to the daemon at `host` (`unix:///…`, `tcp://…` or `http://…`), checks that it
    /// answers and agrees on the newest API version both sides speak.
    pub async fn connect_to(host: &str) -> Result<Self, EngineError> {
        let probe = |version: &ClientVersion| {
            client(host, version)
                .map(|c| c.with_timeout(CONNECT_TIMEOUT))
                .map_err(|e| EngineError::from_connect(host, e))
        };
        // Newer daemons refuse old API versions and older daemons refuse newer ones (with 400):
        // ask with bollard's version first, then with an old one.
        let version = match probe(API_DEFAULT_VERSION)?.version().await {
            Ok(v) => v,
            Err(e) if status_code(&e) == Some(400) => probe(&PROBE_API_VERSION)?
                .version()
                .await
                .map_err(|e| EngineError::from_connect(host, e))?,
            Err(e) => return Err(EngineError::from_connect(host, e)),
        };
        let server = version
            .api_version
            .as_deref()
            .and_then(parse_api_version)
            .unwrap_or(PROBE_API_VERSION);
        let chosen = if server < *API_DEFAULT_VERSION {
            server
        } else {
            *API_DEFAULT_VERSION
        };
        let docker = client(host, &chosen)
            .map_err(|e| EngineError::from_connect(host, e))?
            .with_timeout(REQUEST_TIMEOUT);
        tracing::debug!(
            host,
            api_version = %format!("{}.{}", chosen.major_version, chosen.minor_version),
            "connected to the Docker daemon"
        );
        Ok(Self {
            docker,
            host: host.to_owned(),
            stop_grace: Duration::from_secs(10),
        })
    }

    /// The daemon address this engine talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sets how long a stopped container gets between SIGTERM and SIGKILL (default 10 s).
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// The underlying bollard client, for the rare call this layer does not wrap.
    pub(crate) fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Whether `image` is present on this host.
    pub async fn image_exists(&self, image: &str) -> Result<bool, EngineError> {
        Ok(self.image_id(image).await?.is_some())
    }

    /// The id (`sha256:…`) of `image` on this host, if it is present.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(info) => Ok(Some(info.id.unwrap_or_default())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspect image {image:?}"), e)),
        }
    }

    /// Makes `image` available, trying `policies` in order (an empty list means `[always]`, the
    /// official default): `always` pulls, `if-not-present` uses the local image or pulls,
    /// `never` only uses the local image. The first policy that succeeds wins.
    pub async fn ensure_image(
        &self,
        image: &str,
        policies: &[PullPolicy],
    ) -> Result<PreparedImage, EngineError> {
        let policies = if policies.is_empty() {
            &[PullPolicy::Always][..]
        } else {
            policies
        };
        let mut attempts = Vec::new();
        for &policy in policies {
            if policy != PullPolicy::Always {
                if let Some(id) = self.image_id(image).await? {
                    return Ok(PreparedImage {
                        id,
                        source: ImageSource::Local,
                    });
                }
            }
            if policy == PullPolicy::Never {
                attempts.push("pull_policy \"never\": not found locally".to_owned());
                continue;
            }
            match self.pull(image).await {
                Ok(()) => {
                    let id = self.image_id(&with_default_tag(image)).await?;
                    return Ok(PreparedImage {
                        id: id.unwrap_or_default(),
                        source: ImageSource::Pulled,
                    });
                }
                Err(reason) => {
                    tracing::debug!(image, %policy, %reason, "pull failed");
                    attempts.push(format!(
                        "pull_policy \"{policy}\": failed to pull: {reason}"
                    ));
                }
            }
        }
        if policies.iter().all(|p| *p == PullPolicy::Never) {
            return Err(EngineError::ImageNotFoundLocally {
                image: image.to_owned(),
            });
        }
        Err(EngineError::ImageUnavailable {
            image: image.to_owned(),
            attempts,
        })
    }

    /// Pulls `image` (adding `:latest` when it has neither tag nor digest, so that not every tag
    /// is pulled). Returns the daemon's reason on failure.
    async fn pull(&self, image: &str) -> Result<(), String> {
        let reference = with_default_tag(image);
        let options = CreateImageOptionsBuilder::default()
            .from_image(&reference)
            .build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(item) = progress.next().await {
            item.map_err(|e| api_message(&e))?;
        }
        Ok(())
    }

    /// Creates the per-job bridge network and returns its name.
    pub async fn create_network(&self, job: &JobLabels) -> Result<String, EngineError> {
        let name = job.object_name("network");
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".to_owned()),
            labels: Some(job.for_role("network")),
            ..NetworkCreateRequest::default()
        };
        self.docker
            .create_network(request)
            .await
            .map_err(|e| EngineError::api(format!("create network {name}"), e))?;
        Ok(name)
    }

    /// Creates a named volume for the job (for example a temporary builds or cache volume) and
    /// returns its name; `purpose` becomes part of the name.
    pub async fn create_volume(
        &self,
        job: &JobLabels,
        purpose: &str,
    ) -> Result<String, EngineError> {
        let name = job.object_name(purpose);
        let request = VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(job.for_role("volume")),
            ..VolumeCreateRequest::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map_err(|e| EngineError::api(format!("create volume {name}"), e))?;
        Ok(name)
    }

    /// Runs `script` in a fresh build container made from `spec`: the script is written to the
    /// standard input of the container's command (`sh` by default), stdout and stderr are passed
    /// to `on_output` as they arrive, and the container is removed afterwards.
    ///
    /// When `cancel` fires or `timeout` passes first, the container is stopped (SIGTERM, then
    /// SIGKILL after the stop grace) and the outcome says which. The image must be available
    /// already (see [`Engine::ensure_image`]).
    pub async fn run_script(
        &self,
        job: &JobLabels,
        spec: &ContainerSpec,
        script: &str,
        on_output: impl FnMut(&[u8]) + Send,
        cancel: &CancellationToken,
        timeout: Duration,
    ) -> Result<ScriptOutcome, EngineError> {
        let name = job.object_name("build");
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        self.docker
            .create_container(
                Some(options),
                spec.to_create_body(job.for_role("build"), true),
            )
            .await
            .map_err(|e| {
                EngineError::api(
                    format!("create build container {name} from image {:?}", spec.image),
                    e,
                )
            })?;
        let outcome = self
            .run_in_created(&name, script, on_output, cancel, timeout)
            .await;
        let removed = self.remove_container(&name).await;
        let outcome = outcome?;
        removed?;
        Ok(outcome)
    }

    async fn run_in_created(
        &self,
        name: &str,
        script: &str,
        mut on_output: impl FnMut(&[u8]) + Send,
        cancel: &CancellationToken,
        timeout: Duration,
    ) -> Result<ScriptOutcome, EngineError> {
        let attach = AttachContainerOptionsBuilder::default()
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .stream(true)
            .build();
        let AttachContainerResults {
            mut output,
            mut input,
        } = self
            .docker
            .attach_container(name, Some(attach))
            .await
            .map_err(|e| EngineError::api(format!("attach to build container {name}"), e))?;
        self.docker
            .start_container(name, None)
            .await
            .map_err(|e| EngineError::api(format!("start build container {name}"), e))?;

        let feed = async {
            // A script that exits before reading all its input closes the pipe; the exit code,
            // not this write, tells what happened.
            if let Err(e) = input.write_all(script.as_bytes()).await {
                tracing::debug!(container = name, error = %e, "script not fully written");
            }
            if let Err(e) = input.shutdown().await {
                tracing::debug!(container = name, error = %e, "closing script input failed");
            }
        };
        let stream = async {
            while let Some(item) = output.next().await {
                match item {
                    Ok(LogOutput::StdOut { message })
                    | Ok(LogOutput::StdErr { message })
                    | Ok(LogOutput::Console { message }) => on_output(&message),
                    Ok(LogOutput::StdIn { .. }) => {}
                    Err(e) => {
                        return Err(EngineError::api(
                            format!("read the output of build container {name}"),
                            e,
                        ))
                    }
                }
            }
            Ok(())
        };
        let run = async {
            let ((), streamed) = tokio::join!(feed, stream);
            streamed
        };

        tokio::select! {
            streamed = run => {
                streamed?;
                let code = self.wait_exit_code(name).await?;
                Ok(ScriptOutcome::Exited { code })
            }
            () = cancel.cancelled() => {
                self.stop_container(name).await?;
                Ok(ScriptOutcome::Cancelled)
            }
            () = tokio::time::sleep(timeout) => {
                self.stop_container(name).await?;
                Ok(ScriptOutcome::TimedOut)
            }
        }
    }

    /// Waits for the container to stop and returns its exit code.
    async fn wait_exit_code(&self, name: &str) -> Result<i64, EngineError> {
        let options = WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut wait = self.docker.wait_container(name, Some(options));
        match wait.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(EngineError::api(
                format!("wait for build container {name}"),
                e,
            )),
            None => Err(EngineError::Api {
                action: format!("wait for build container {name}"),
                source: bollard::errors::Error::DockerStreamError {
                    error: "the daemon closed the wait stream without an exit code".to_owned(),
                },
            }),
        }
    }

    /// Stops a container: SIGTERM, then SIGKILL once the stop grace has passed.
    async fn stop_container(&self, name: &str) -> Result<(), EngineError> {
        let grace = i32::try_from(self.stop_grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::default().t(grace).build();
        match self.docker.stop_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            // 304: already stopped; 404: already gone.
            Err(e) if is_not_found(&e) || status_code(&e) == Some(304) => Ok(()),
            Err(e) => Err(EngineError::api(format!("stop container {name}"), e)),
        }
    }

    /// Removes a container, killing it if it still runs, with its anonymous volumes.
    pub(super) async fn remove_container(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            // 404: already gone; 409: removal already in progress.
            Err(e) if is_not_found(&e) || status_code(&e) == Some(409) => Ok(()),
            Err(e) => Err(EngineError::api(format!("remove container {name}"), e)),
        }
    }
}

/// A bollard client for `host` speaking API `version`. Connecting is lazy: errors about the
/// daemon itself show up on the first call.
fn client(host: &str, version: &ClientVersion) -> Result<Docker, bollard::errors::Error> {
    let timeout = REQUEST_TIMEOUT.as_secs();
    if host.starts_with("unix://") {
        Docker::connect_with_unix(host, timeout, version)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, timeout, version)
    } else {
        Err(bollard::errors::Error::UnsupportedURISchemeError {
            uri: host.to_owned(),
        })
    }
}

/// Parses an API version such as `1.41`.
fn parse_api_version(s: &str) -> Option<ClientVersion> {
    let (major, minor) = s.split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// `image` with `:latest` appended when it names neither a tag nor a digest.
fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

fn status_code(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

pub(super) fn is_not_found(e: &bollard::errors::Error) -> bool {
    status_code(e) == Some(404)
}

/// The daemon's own message for an API error, without bollard's prefix.
fn api_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_comes_from_config_then_env_then_default() {
        assert_eq!(
            Engine::resolve_host(Some("tcp://d:2375"), Some("unix:///e.sock")),
            "tcp://d:2375"
        );
        assert_eq!(
            Engine::resolve_host(Some(" "), Some("unix:///e.sock")),
            "unix:///e.sock"
        );
        assert_eq!(Engine::resolve_host(None, None), DEFAULT_DOCKER_HOST);
        assert_eq!(Engine::resolve_host(None, Some("")), DEFAULT_DOCKER_HOST);
    }

    #[test]
    fn untagged_images_are_pulled_as_latest() {
        assert_eq!(with_default_tag("alpine"), "alpine:latest");
        assert_eq!(with_default_tag("alpine:3"), "alpine:3");
        assert_eq!(
            with_default_tag("registry:5000/group/img"),
            "registry:5000/group/img:latest"
        );
        assert_eq!(with_default_tag("img@sha256:abc"), "img@sha256:abc");
    }

    #[test]
    fn api_versions_parse() {
        let v = parse_api_version("1.41").unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(parse_api_version("x").is_none());
    }

    #[tokio::test]
    async fn unsupported_host_scheme_is_reported() {
        let err = Engine::connect_to("ftp://d").await.unwrap_err();
        assert!(
            matches!(err, EngineError::UnsupportedHost { .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn missing_socket_is_unreachable() {
        let err = Engine::connect_to("unix:///nonexistent/forerunner-docker.sock")
            .await
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "cannot reach the Docker daemon at unix:///nonexistent/forerunner-docker.sock: \
                 socket /nonexistent/forerunner-docker.sock does not exist"
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn closed_tcp_port_is_unreachable() {
        // Bind then drop a listener: the port is very likely closed right afterwards.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("tcp://127.0.0.1:{port}");
        let err = Engine::connect_to(&host).await.unwrap_err();
        assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("cannot reach the Docker daemon at {host}: ")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn dead_socket_is_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let host = format!("unix://{}", path.display());
        let err = Engine::connect_to(&host).await.unwrap_err();
        assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains("refused"), "{err}");
    }
}
