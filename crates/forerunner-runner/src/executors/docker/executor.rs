//! [`DockerExecutor`]: the docker executor, jobs in containers through the [`Engine`] layer and
//! no helper image.
//!
//! What the job sees matches the official docker executor: the job's `image` (or `[runners.docker]
//! image`), `CI_BUILDS_DIR=/builds`, `CI_PROJECT_DIR=/builds/<namespace>/<project>`, its
//! `services` reachable by their aliases on a network of the job's own, `/cache` unless
//! `disable_cache`. Each stage runs in a fresh container of the job image that mounts the same
//! builds directory, so files persist between stages as they do with the official executor.
//!
//! What differs, deliberately: there is no helper image. `/builds` is a directory of the runner's
//! host per concurrent slot (`<root>/concurrent-<slot>`), bind-mounted into every build container
//! and into the services, so the runner fetches the sources (on the host, with the host's git:
//! [`crate::executors::Executor::sources_on_host`]), restores caches and archives artifacts there
//! itself. This needs the runner and the daemon on the same host (a remote `DOCKER_HOST` cannot
//! see the runner's directories).
//!
//! Every container, network and volume carries the job's labels ([`JobLabels`]) and is removed in
//! `cleanup` — after success, failure, timeout or cancel — and, should the runner die, by
//! [`cleanup_leftovers_at_start`] when the job loop starts again (or, failing that, by
//! [`cleanup_leftovers_once`] before the next job of the same runner starts).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use forerunner_protocol::jobs::{Image, JobVariable};
use forerunner_protocol::tokens::short_token;
use tokio_util::sync::CancellationToken;

use crate::config::RunnerConfig;
use crate::executors::docker::{
    image_allowed, not_allowed_message, parse_cpus, parse_device, parse_memory, parse_memory_swap,
    parse_ulimit, service_aliases, ContainerSpec, Engine, EngineError, HostOptions, ImageSource,
    JobLabels, LabelledObjects, NetworkAttachment, PullPolicy, ScriptOutcome, ServiceReadiness,
    ServiceSpec,
};
use crate::executors::{absolute, Executor, ExecutorError, Exit, JobContext, OutputSink, Stage};

/// `[runners.docker]` and the runner entry, validated for the docker executor.
#[derive(Debug, Clone)]
pub struct DockerSettings {
    /// `[runners.docker] host`; `DOCKER_HOST` or the local socket when `None`.
    pub host: Option<String>,
    /// The runner's short token (`CI_RUNNER_SHORT_TOKEN`): labels and leftover cleanup.
    pub runner_short_token: String,
    /// The builds directory inside containers (`[[runners]] builds_dir`, default `/builds`).
    pub builds_dir: String,
    /// This slot's builds directory on the host, bind-mounted at [`DockerSettings::builds_dir`].
    pub host_builds_dir: PathBuf,
    /// The cache directory inside containers (`[[runners]] cache_dir`, default `/cache`).
    pub cache_dir: String,
    /// Where the `/cache` directories live on the host (one per project below it).
    pub host_cache_dir: PathBuf,
    /// `[runners.docker] image`: the image of jobs that name none.
    pub default_image: Option<String>,
    /// `pull_policy`, tried in order; empty means `always`.
    pub pull_policy: Vec<PullPolicy>,
    /// `allowed_pull_policies`: what a job's `image: pull_policy` may ask for (empty: the
    /// runner's `pull_policy`).
    pub allowed_pull_policies: Vec<PullPolicy>,
    /// `allowed_images` patterns (empty: any).
    pub allowed_images: Vec<String>,
    /// `allowed_services` patterns (empty: any).
    pub allowed_services: Vec<String>,
    /// Build and service containers run privileged.
    pub privileged: bool,
    /// Extra volumes: `host:container[:mode]` binds, or a bare `/path` for a volume that lives as
    /// long as the job. The cache directory is special: bare, it means the runner's own cache
    /// mount (what `register` writes); bound, it replaces that mount.
    pub volumes: Vec<String>,
    /// No `/cache` mount.
    pub disable_cache: bool,
    /// Capabilities to add.
    pub cap_add: Vec<String>,
    /// Capabilities to drop.
    pub cap_drop: Vec<String>,
    /// `[[runners.docker.services]]`: started for every job before the job's own services, and
    /// exempt from `allowed_services` (as are job services of the same image).
    pub services: Vec<Image>,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// CPU limit in billionths of a CPU.
    pub nano_cpus: Option<i64>,
    /// DNS servers.
    pub dns: Vec<String>,
    /// Extra `/etc/hosts` entries (`host:ip`).
    pub extra_hosts: Vec<String>,
    /// Network mode of build containers (services stay on the job network).
    pub network_mode: Option<String>,
    /// User the build containers run as.
    pub user: Option<String>,
    /// How long to wait for services to listen; `None` disables waiting.
    pub wait_for_services: Option<Duration>,
    /// Everything else of `[runners.docker]` the build containers get as written.
    pub options: HostOptions,
    /// Service containers run privileged (`services_privileged`, else `privileged`).
    pub service_privileged: bool,
    /// Memory limit of service containers in bytes (`service_memory`).
    pub service_memory: Option<i64>,
    /// CPU limit of service containers in billionths of a CPU (`service_cpus`).
    pub service_nano_cpus: Option<i64>,
    /// The `services_*`/`service_*` keys and those build and service containers share.
    pub service_options: HostOptions,
    /// Between SIGTERM and SIGKILL when a stage is cancelled or times out.
    pub stop_grace: Duration,
}

impl DockerSettings {
    /// Settings with the official defaults for a runner with short token `runner_short_token`
    /// whose slot keeps its builds in `host_builds_dir` and caches below `host_cache_dir`.
    pub fn new(
        runner_short_token: impl Into<String>,
        host_builds_dir: PathBuf,
        host_cache_dir: PathBuf,
    ) -> Self {
        Self {
            host: None,
            runner_short_token: runner_short_token.into(),
            builds_dir: "/builds".into(),
            host_builds_dir,
            cache_dir: "/cache".into(),
            host_cache_dir,
            default_image: None,
            pull_policy: Vec::new(),
            allowed_pull_policies: Vec::new(),
            allowed_images: Vec::new(),
            allowed_services: Vec::new(),
            privileged: false,
            volumes: Vec::new(),
            disable_cache: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            services: Vec::new(),
            memory: None,
            nano_cpus: None,
            dns: Vec::new(),
            extra_hosts: Vec::new(),
            network_mode: None,
            user: None,
            wait_for_services: Some(Duration::from_secs(30)),
            options: HostOptions::default(),
            service_privileged: false,
            service_memory: None,
            service_nano_cpus: None,
            service_options: HostOptions::default(),
            stop_grace: Duration::from_secs(10),
        }
    }

    /// Settings from a `[[runners]]` entry for concurrent slot `slot`. On the host, builds go to
    /// `<cwd>/docker-builds/<short token>/concurrent-<slot>` and caches to `[runners.docker]
    /// cache_dir` (relative to `cwd`), else `<cwd>/docker-cache/<short token>`.
    pub fn from_config(
        runner: &RunnerConfig,
        cwd: &Path,
        slot: usize,
    ) -> Result<Self, ExecutorError> {
        let docker = runner.docker.clone().unwrap_or_default();
        let short = short_token(&runner.token);
        let host_builds = cwd
            .join("docker-builds")
            .join(&short)
            .join(format!("concurrent-{slot}"));
        let host_cache = match docker.cache_dir.as_deref().filter(|d| !d.trim().is_empty()) {
            Some(d) => absolute(cwd, d),
            None => cwd.join("docker-cache").join(&short),
        };
        let mut s = Self::new(short, host_builds, host_cache);
        let invalid = |e: EngineError| ExecutorError(format!("[runners.docker]: {e}"));
        s.host = docker.host.filter(|h| !h.trim().is_empty());
        if let Some(b) = runner
            .builds_dir
            .as_deref()
            .filter(|b| !b.trim().is_empty())
        {
            s.builds_dir = b.trim_end_matches('/').to_owned();
        }
        if let Some(c) = runner.cache_dir.as_deref().filter(|c| !c.trim().is_empty()) {
            s.cache_dir = c.trim_end_matches('/').to_owned();
        }
        s.default_image = docker.image.filter(|i| !i.trim().is_empty());
        s.pull_policy = parse_policies(&docker.pull_policy).map_err(invalid)?;
        s.allowed_pull_policies = parse_policies(&docker.allowed_pull_policies).map_err(invalid)?;
        s.allowed_images = docker.allowed_images;
        s.allowed_services = docker.allowed_services;
        s.privileged = docker.privileged;
        s.cap_add = docker.cap_add;
        s.cap_drop = docker.cap_drop;
        s.services = docker
            .services
            .into_iter()
            .filter(|svc| !svc.name.trim().is_empty())
            .map(|svc| Image {
                name: svc.name.trim().to_owned(),
                alias: svc.alias.filter(|a| !a.trim().is_empty()),
                command: svc.command,
                entrypoint: svc.entrypoint,
                pull_policy: Vec::new(),
                variables: svc
                    .environment
                    .iter()
                    .filter_map(|e| e.split_once('='))
                    .map(|(key, value)| JobVariable {
                        key: key.to_owned(),
                        value: value.to_owned(),
                        ..JobVariable::default()
                    })
                    .collect(),
            })
            .collect();
        s.volumes = docker.volumes;
        s.disable_cache = docker.disable_cache;
        // An optional quantity (memory size, CPUs) parsed by `parse`; empty means unset.
        let quantity = |v: &Option<String>, parse: fn(&str) -> Result<i64, EngineError>| {
            v.as_deref()
                .filter(|v| !v.trim().is_empty())
                .map(parse)
                .transpose()
                .map_err(invalid)
        };
        let text = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        s.memory = quantity(&docker.memory, parse_memory)?;
        s.nano_cpus = quantity(&docker.cpus, parse_cpus)?;
        s.dns = docker.dns;
        s.extra_hosts = docker.extra_hosts;
        s.network_mode = text(docker.network_mode);
        s.user = text(docker.user);
        s.wait_for_services = match docker.wait_for_services_timeout {
            Some(t) if t < 0 => None,
            Some(0) | None => Some(Duration::from_secs(30)),
            Some(t) => Some(Duration::from_secs(t as u64)),
        };
        s.options = HostOptions {
            // 0, what `register` writes, is the engine's default.
            shm_size: docker.shm_size.filter(|&n| n > 0),
            memory_swap: quantity(&docker.memory_swap, parse_memory_swap)?,
            memory_reservation: quantity(&docker.memory_reservation, parse_memory)?,
            oom_kill_disable: docker.oom_kill_disable,
            cpuset_cpus: text(docker.cpuset_cpus),
            cpu_shares: docker.cpu_shares.filter(|&n| n > 0),
            devices: docker
                .devices
                .iter()
                .filter(|d| !d.trim().is_empty())
                .map(|d| parse_device(d))
                .collect::<Result<_, _>>()
                .map_err(invalid)?,
            security_opt: docker.security_opt,
            sysctls: docker.sysctls.into_iter().collect(),
            tmpfs: docker.tmpfs.into_iter().collect(),
            dns_search: docker.dns_search,
            group_add: docker.group_add,
            userns_mode: text(docker.userns_mode),
            runtime: text(docker.runtime),
            ulimits: docker
                .ulimit
                .iter()
                .map(|(name, value)| parse_ulimit(name, value))
                .collect::<Result<_, _>>()
                .map_err(invalid)?,
        };
        // As the official runner: services share shm_size, dns_search, userns_mode and
        // runtime with build containers, and have limits and options of their own.
        s.service_privileged = docker.services_privileged.unwrap_or(docker.privileged);
        s.service_memory = quantity(&docker.service_memory, parse_memory)?;
        s.service_nano_cpus = quantity(&docker.service_cpus, parse_cpus)?;
        s.service_options = HostOptions {
            shm_size: s.options.shm_size,
            memory_swap: quantity(&docker.service_memory_swap, parse_memory_swap)?,
            memory_reservation: quantity(&docker.service_memory_reservation, parse_memory)?,
            cpuset_cpus: text(docker.service_cpuset_cpus),
            cpu_shares: docker.service_cpu_shares.filter(|&n| n > 0),
            security_opt: docker.services_security_opt,
            tmpfs: docker.services_tmpfs.into_iter().collect(),
            dns_search: s.options.dns_search.clone(),
            userns_mode: s.options.userns_mode.clone(),
            runtime: s.options.runtime.clone(),
            ..HostOptions::default()
        };
        Ok(s)
    }
}

/// How `[runners.docker] volumes` become mounts, next to the cache directory's own mount.
#[derive(Debug, Default, PartialEq, Eq)]
struct VolumePlan {
    /// `host:container[:mode]` binds, as written.
    binds: Vec<String>,
    /// Bare container paths that get a volume living as long as the job.
    temporary: Vec<String>,
    /// A bind (or named volume) targets the cache directory: no default cache mount.
    cache_bound: bool,
    /// The host directory bound at the cache directory, when it is a host path.
    cache_host_dir: Option<PathBuf>,
}

/// Sorts `volumes` into binds and temporary volumes. A bare path equal to `cache_dir` (the
/// `volumes = ["/cache"]` that `register` writes, as the official runner does) is the cache
/// itself, mounted from the host unless `disable_cache`, so it gets no volume of its own: two
/// mounts at one path are refused by the daemon ("Duplicate mount point").
fn plan_volumes(volumes: &[String], cache_dir: &str) -> VolumePlan {
    let cache_dir = cache_dir.trim_end_matches('/');
    let mut plan = VolumePlan::default();
    for volume in volumes.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        match volume.split_once(':') {
            Some((source, rest)) => {
                let target = rest.split(':').next().unwrap_or_default();
                if target.trim_end_matches('/') == cache_dir {
                    plan.cache_bound = true;
                    if Path::new(source).is_absolute() {
                        plan.cache_host_dir = Some(PathBuf::from(source));
                    }
                }
                plan.binds.push(volume.to_owned());
            }
            None if volume.trim_end_matches('/') == cache_dir => {}
            None => plan.temporary.push(volume.to_owned()),
        }
    }
    plan
}

fn parse_policies(values: &[String]) -> Result<Vec<PullPolicy>, EngineError> {
    values
        .iter()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.parse())
        .collect()
}

/// Runs [`Engine::cleanup_leftovers`] for `runner_short_token` once per process and daemon:
/// the job loop at start-up ([`cleanup_leftovers_at_start`]) or the first job of a runner,
/// whichever comes first, removes what a runner that crashed left behind; concurrent callers
/// wait for that one cleanup, later ones return its report at once. A failed cleanup is tried
/// again by the next caller.
pub async fn cleanup_leftovers_once(
    engine: &Engine,
    runner_short_token: &str,
) -> Result<LabelledObjects, EngineError> {
    type Cells = HashMap<String, Arc<tokio::sync::OnceCell<LabelledObjects>>>;
    // Held only to look up the cell, never across an await.
    static DONE: Mutex<Option<Cells>> = Mutex::new(None);
    let cell = {
        let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
        done.get_or_insert_with(HashMap::new)
            .entry(format!("{} {runner_short_token}", engine.host()))
            .or_default()
            .clone()
    };
    cell.get_or_try_init(|| engine.cleanup_leftovers(runner_short_token))
        .await
        .cloned()
}

/// For the job loop at start-up (and after a reload): connects to the daemon of a docker
/// `[[runners]]` entry and removes, once per process, what an earlier process of the same runner
/// left behind — a runner killed mid-job leaves its containers, network and volumes — before
/// any job of the entry starts. `Ok(None)` for entries of other executors.
pub async fn cleanup_leftovers_at_start(
    runner: &RunnerConfig,
) -> Result<Option<LabelledObjects>, EngineError> {
    if runner.executor != "docker" || runner.token.trim().is_empty() {
        return Ok(None);
    }
    let host = runner
        .docker
        .as_ref()
        .and_then(|d| d.host.as_deref())
        .filter(|h| !h.trim().is_empty());
    let engine = Engine::connect(host).await?;
    cleanup_leftovers_once(&engine, &short_token(&runner.token))
        .await
        .map(Some)
}

/// The docker executor for one job. See the module documentation.
#[derive(Debug)]
pub struct DockerExecutor {
    settings: DockerSettings,
    engine: Option<Engine>,
    labels: Option<JobLabels>,
    image: String,
    entrypoint: Option<Vec<String>>,
    network: Option<String>,
    binds: Vec<String>,
    host_cache: Option<PathBuf>,
    /// The job's variables as the build containers' environment (file variables excluded:
    /// the stage scripts write and export those), as the official executor sets it.
    env: Vec<(String, String)>,
    cleaned: bool,
}

impl DockerExecutor {
    /// An executor that connects to the daemon when it prepares a job.
    pub fn new(settings: DockerSettings) -> Self {
        Self {
            settings,
            engine: None,
            labels: None,
            image: String::new(),
            entrypoint: None,
            network: None,
            binds: Vec::new(),
            host_cache: None,
            env: Vec::new(),
            cleaned: false,
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &DockerSettings {
        &self.settings
    }

    /// The labels of the job's Docker objects, once `prepare` has started.
    pub fn labels(&self) -> Option<&JobLabels> {
        self.labels.as_ref()
    }

    /// The policies for an image of the job: its own `pull_policy` if it sets one (each must be
    /// allowed), else the runner's.
    fn policies_for(&self, image: Option<&Image>) -> Result<Vec<PullPolicy>, ExecutorError> {
        let asked = image.map(|i| i.pull_policy.as_slice()).unwrap_or_default();
        if asked.is_empty() {
            return Ok(self.settings.pull_policy.clone());
        }
        let asked = parse_policies(asked).map_err(|e| ExecutorError(e.to_string()))?;
        let allowed = if !self.settings.allowed_pull_policies.is_empty() {
            self.settings.allowed_pull_policies.clone()
        } else if !self.settings.pull_policy.is_empty() {
            self.settings.pull_policy.clone()
        } else {
            vec![PullPolicy::Always]
        };
        if let Some(p) = asked.iter().find(|p| !allowed.contains(p)) {
            let allowed: Vec<&str> = allowed.iter().map(|p| p.as_str()).collect();
            return Err(ExecutorError(format!(
                "pull_policy {p} of the job is not allowed by this runner (allowed: {}; set \
                 `[runners.docker] allowed_pull_policies` to accept it)",
                allowed.join(", ")
            )));
        }
        Ok(asked)
    }

    async fn pull(
        &self,
        engine: &Engine,
        image: &str,
        policies: &[PullPolicy],
        output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<(), ExecutorError> {
        if policies.first() != Some(&PullPolicy::Always) && !policies.is_empty() {
            say(
                output,
                &format!(
                    "Using locally found image version if present due to \"{}\" pull policy",
                    policies[0]
                ),
            );
        } else {
            say(output, &format!("Pulling docker image {image} ..."));
        }
        let prepared = engine
            .ensure_image(image, policies)
            .await
            .map_err(|e| ExecutorError(e.to_string()))?;
        let how = match prepared.source {
            ImageSource::Local => "found locally",
            ImageSource::Pulled => "pulled",
        };
        say(
            output,
            &format!("Using docker image {} for {image} ({how}) ...", prepared.id),
        );
        Ok(())
    }

    async fn start_services(
        &mut self,
        engine: &Engine,
        job: &JobContext<'_>,
        output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<(), ExecutorError> {
        let labels = self.labels.clone().expect("labels are set before services");
        let network = self.network.clone().expect("a network exists for services");
        let builds_bind = self.binds.first().cloned();
        let job_env: Vec<(String, String)> = job
            .variables
            .iter()
            .filter(|v| !v.file)
            .map(|v| (v.key.clone(), v.value.clone()))
            .collect();
        let mut started = Vec::new();
        // The runner's own services come first and need no allowing, nor do job services of the
        // same images (the official runner's rule).
        let internal: Vec<&str> = self
            .settings
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        for (service, from_job) in self
            .settings
            .services
            .iter()
            .map(|s| (s, false))
            .chain(job.job.services.iter().map(|s| (s, true)))
        {
            if from_job && !image_allowed(&service.name, &self.settings.allowed_services, &internal)
            {
                output(
                    not_allowed_message(&service.name, "services", &self.settings.allowed_services)
                        .as_bytes(),
                );
                return Err(ExecutorError(format!(
                    "the service image {:?} is not allowed by `[runners.docker] allowed_services`",
                    service.name
                )));
            }
            let policies = self.policies_for(Some(service))?;
            self.pull(engine, &service.name, &policies, output).await?;
            let mut env = job_env.clone();
            env.extend(
                service
                    .variables
                    .iter()
                    .map(|v| (v.key.clone(), v.value.clone())),
            );
            let spec = ServiceSpec {
                image: service.name.clone(),
                aliases: service_aliases(&service.name, service.alias.as_deref()),
                entrypoint: (!service.entrypoint.is_empty()).then(|| service.entrypoint.clone()),
                command: (!service.command.is_empty()).then(|| service.command.clone()),
                env,
                binds: builds_bind.iter().cloned().collect(),
                privileged: self.settings.service_privileged,
                memory: self.settings.service_memory,
                nano_cpus: self.settings.service_nano_cpus,
                dns: self.settings.dns.clone(),
                extra_hosts: self.settings.extra_hosts.clone(),
                options: self.settings.service_options.clone(),
            };
            say(
                output,
                &format!(
                    "Starting service {} (aliases: {}) ...",
                    service.name,
                    spec.aliases.join(", ")
                ),
            );
            let name = engine
                .start_service(&labels, &spec, &network)
                .await
                .map_err(|e| ExecutorError(e.to_string()))?;
            started.push((service.name.clone(), name));
        }
        let Some(timeout) = self
            .settings
            .wait_for_services
            .filter(|_| !started.is_empty())
        else {
            return Ok(());
        };
        say(
            output,
            &format!(
                "Waiting for services to be up and running (timeout {} seconds)...",
                timeout.as_secs()
            ),
        );
        for (image, name) in started {
            let readiness = engine
                .wait_for_service(&name, timeout)
                .await
                .map_err(|e| ExecutorError(e.to_string()))?;
            if !matches!(readiness, ServiceReadiness::Ready { .. }) {
                let logs = engine.container_logs(&name, 50).await.unwrap_or_default();
                say(
                    output,
                    &format!(
                        "*** WARNING: Service {name} ({image}) probably didn't start properly \
                         ({readiness:?}).\n\nService container logs:\n{logs}\n*********"
                    ),
                );
            }
        }
        Ok(())
    }
}

/// One line of executor output in the job log.
fn say(output: &mut (dyn FnMut(&[u8]) + Send), line: &str) {
    output(format!("{line}\n").as_bytes());
}

#[async_trait]
impl Executor for DockerExecutor {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn builds_dir(&self) -> String {
        self.settings.builds_dir.clone()
    }

    fn builds_dir_is_shared(&self) -> bool {
        false
    }

    fn shared_environment(&self) -> bool {
        false
    }

    fn sources_on_host(&self) -> bool {
        true
    }

    fn host_path(&self, job_path: &str) -> PathBuf {
        let under = |root: &str| -> Option<String> {
            let rest = job_path.strip_prefix(root)?;
            (rest.is_empty() || rest.starts_with('/'))
                .then(|| rest.trim_start_matches('/').to_owned())
        };
        if let Some(rest) = under(&self.settings.builds_dir) {
            return self.settings.host_builds_dir.join(rest);
        }
        if let (Some(rest), Some(cache)) = (under(&self.settings.cache_dir), &self.host_cache) {
            return cache.join(rest);
        }
        PathBuf::from(job_path)
    }

    async fn prepare(
        &mut self,
        job: &JobContext<'_>,
        output: OutputSink<'_>,
    ) -> Result<(), ExecutorError> {
        let s = &self.settings;
        let image = job
            .job
            .image
            .as_ref()
            .map(|i| i.name.trim())
            .filter(|n| !n.is_empty())
            .or(s.default_image.as_deref())
            .ok_or_else(|| {
                ExecutorError(
                    "the job names no image and the runner has no default (set `image:` in \
                     .gitlab-ci.yml or `[runners.docker] image` in config.toml)"
                        .into(),
                )
            })?
            .to_owned();
        say(
            output,
            &format!("Using Docker executor with image {image} ..."),
        );
        let internal: Vec<&str> = s.default_image.iter().map(String::as_str).collect();
        if !image_allowed(&image, &s.allowed_images, &internal) {
            output(not_allowed_message(&image, "images", &s.allowed_images).as_bytes());
            return Err(ExecutorError(format!(
                "the image {image:?} is not allowed by `[runners.docker] allowed_images`"
            )));
        }
        let engine = Engine::connect(s.host.as_deref())
            .await
            .map_err(|e| ExecutorError(e.to_string()))?
            .with_stop_grace(s.stop_grace);
        cleanup_leftovers_once(&engine, &s.runner_short_token)
            .await
            .map(|_| ())
            .map_err(|e| {
                ExecutorError(format!(
                    "failed to remove the leftovers of an earlier run: {e}"
                ))
            })?;
        self.engine = Some(engine.clone());
        self.labels = Some(JobLabels::new(
            s.runner_short_token.clone(),
            u64::try_from(job.job.id).unwrap_or_default(),
        ));
        let labels = self.labels.clone().expect("just set");

        let host_builds = s.host_builds_dir.clone();
        tokio::fs::create_dir_all(&host_builds).await.map_err(|e| {
            ExecutorError(format!(
                "failed to create the builds directory {} on the host: {e}",
                host_builds.display()
            ))
        })?;
        let mut binds = vec![format!("{}:{}", host_builds.display(), s.builds_dir)];
        let mounts = plan_volumes(&s.volumes, &s.cache_dir);
        if let Some(host) = mounts.cache_host_dir {
            // `volumes` maps the cache directory itself: that wins, as in the official runner.
            self.host_cache = Some(host);
        } else if !s.disable_cache && !mounts.cache_bound {
            let dir = s
                .host_cache_dir
                .join(format!("project-{}", job.job.job_info.project_id));
            tokio::fs::create_dir_all(&dir).await.map_err(|e| {
                ExecutorError(format!(
                    "failed to create the cache directory {} on the host: {e}",
                    dir.display()
                ))
            })?;
            binds.push(format!("{}:{}", dir.display(), s.cache_dir));
            self.host_cache = Some(dir);
        }
        binds.extend(mounts.binds);
        for path in mounts.temporary {
            let name = engine
                .create_volume(&labels, "volume")
                .await
                .map_err(|e| ExecutorError(e.to_string()))?;
            binds.push(format!("{name}:{path}"));
        }
        self.binds = binds;

        let policies = self.policies_for(job.job.image.as_ref())?;
        self.pull(&engine, &image, &policies, output).await?;
        self.entrypoint = job
            .job
            .image
            .as_ref()
            .filter(|i| !i.entrypoint.is_empty())
            .map(|i| i.entrypoint.clone());
        self.image = image;
        self.env = job
            .variables
            .iter()
            .filter(|v| !v.file)
            .map(|v| (v.key.clone(), v.value.clone()))
            .collect();

        let has_services = !job.job.services.is_empty() || !self.settings.services.is_empty();
        if self.settings.network_mode.is_none() || has_services {
            let network = engine
                .create_network(&labels)
                .await
                .map_err(|e| ExecutorError(e.to_string()))?;
            self.network = Some(network);
        }
        self.start_services(&engine, job, output).await
    }

    async fn run(
        &mut self,
        stage: Stage<'_>,
        cancel: CancellationToken,
        output: OutputSink<'_>,
    ) -> Result<Exit, ExecutorError> {
        let (Some(engine), Some(labels)) = (&self.engine, &self.labels) else {
            return Err(ExecutorError(format!(
                "the docker executor cannot run stage {} before it is prepared",
                stage.name
            )));
        };
        let s = &self.settings;
        let spec = ContainerSpec {
            image: self.image.clone(),
            entrypoint: self.entrypoint.clone(),
            command: Vec::new(),
            env: self.env.clone(),
            working_dir: Some(s.builds_dir.clone()),
            binds: self.binds.clone(),
            privileged: s.privileged,
            cap_add: s.cap_add.clone(),
            cap_drop: s.cap_drop.clone(),
            memory: s.memory,
            nano_cpus: s.nano_cpus,
            dns: s.dns.clone(),
            extra_hosts: s.extra_hosts.clone(),
            network_mode: s.network_mode.clone(),
            user: s.user.clone(),
            network: self.network.clone().map(|network| NetworkAttachment {
                network,
                aliases: Vec::new(),
            }),
            options: s.options.clone(),
        };
        let outcome = engine
            .run_script(
                labels,
                &spec,
                &stage.script,
                |b| output(b),
                &cancel,
                stage.timeout,
            )
            .await
            .map_err(|e| ExecutorError(format!("stage {}: {e}", stage.name)))?;
        Ok(match outcome {
            ScriptOutcome::Exited { code } => Exit::Code(i32::try_from(code).unwrap_or(1)),
            ScriptOutcome::Cancelled => Exit::Cancelled,
            ScriptOutcome::TimedOut => Exit::TimedOut,
        })
    }

    async fn cleanup(&mut self) {
        if let (Some(engine), Some(labels)) = (&self.engine, &self.labels) {
            if let Err(e) = engine.cleanup_job(labels).await {
                tracing::warn!(
                    job = labels.job_id(),
                    error = %e,
                    "failed to remove the job's Docker objects; the next start of this runner \
                     removes them"
                );
            }
        }
        self.cleaned = true;
    }
}

impl Drop for DockerExecutor {
    /// A job future dropped before `cleanup` (a runner stopping hard) still removes its
    /// containers, network and volumes, on the runtime if one is running.
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let (Some(engine), Some(labels)) = (self.engine.take(), self.labels.take()) else {
            return;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = engine.cleanup_job(&labels).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executor() -> DockerExecutor {
        let mut e = DockerExecutor::new(DockerSettings::new(
            "tok",
            PathBuf::from("/srv/db/concurrent-1"),
            PathBuf::from("/srv/dc"),
        ));
        e.host_cache = Some(PathBuf::from("/srv/dc/project-3"));
        e
    }

    #[test]
    fn job_paths_map_to_the_slot_directory() {
        let e = executor();
        assert_eq!(
            e.host_path("/builds/g/p"),
            PathBuf::from("/srv/db/concurrent-1/g/p")
        );
        assert_eq!(
            e.host_path("/builds"),
            PathBuf::from("/srv/db/concurrent-1")
        );
        assert_eq!(
            e.host_path("/cache/x"),
            PathBuf::from("/srv/dc/project-3/x")
        );
        assert_eq!(e.host_path("/buildsx/y"), PathBuf::from("/buildsx/y"));
    }

    #[test]
    fn job_pull_policies_must_be_allowed() {
        let mut e = executor();
        e.settings.pull_policy = vec![PullPolicy::IfNotPresent];
        let image = |p: &[&str]| Image {
            name: "i".into(),
            pull_policy: p.iter().map(|s| s.to_string()).collect(),
            ..Image::default()
        };
        assert_eq!(
            e.policies_for(None).unwrap(),
            vec![PullPolicy::IfNotPresent]
        );
        assert_eq!(
            e.policies_for(Some(&image(&["if-not-present"]))).unwrap(),
            vec![PullPolicy::IfNotPresent]
        );
        let err = e.policies_for(Some(&image(&["always"]))).unwrap_err();
        assert!(err.0.contains("allowed_pull_policies"), "{err}");
    }

    #[test]
    fn the_cache_directory_in_volumes_is_the_cache_mount() {
        let v = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // What `register` writes: the cache mount covers it, no second mount at /cache.
        let plan = plan_volumes(&v(&["/scratch", "/cache", "/srv/data:/data:ro"]), "/cache");
        assert_eq!(
            plan,
            VolumePlan {
                binds: v(&["/srv/data:/data:ro"]),
                temporary: v(&["/scratch"]),
                cache_bound: false,
                cache_host_dir: None,
            }
        );
        // A bind at the cache directory replaces the runner's own cache mount.
        let plan = plan_volumes(&v(&["/srv/cache:/cache/"]), "/cache/");
        assert!(plan.cache_bound);
        assert_eq!(plan.cache_host_dir, Some(PathBuf::from("/srv/cache")));
        assert_eq!(plan.binds, v(&["/srv/cache:/cache/"]));
        let plan = plan_volumes(&v(&["named-cache:/cache"]), "/cache");
        assert!(plan.cache_bound && plan.cache_host_dir.is_none());
        // Another cache directory: /cache is an ordinary temporary volume then.
        let plan = plan_volumes(&v(&["/cache", " "]), "/ci-cache");
        assert_eq!(plan.temporary, v(&["/cache"]));
    }

    /// The settings of a docker runner entry whose `[runners.docker]` section holds `docker`,
    /// for concurrent slot `slot` with `/w` as working directory.
    fn settings(docker: &str, slot: usize) -> Result<DockerSettings, ExecutorError> {
        let toml = format!(
            "[[runners]]\nname = \"d\"\nurl = \"https://gitlab.example.com\"\n\
             token = \"glrt-abcdefghijklmnop\"\nexecutor = \"docker\"\n\
             [runners.docker]\n{docker}"
        );
        let config = crate::config::Config::parse(Path::new("config.toml"), &toml, &|_| None)
            .expect("a valid config.toml");
        DockerSettings::from_config(&config.runners[0], Path::new("/w"), slot)
    }

    #[test]
    fn settings_come_from_the_runner_entry() {
        let s = settings(
            r#"
            image = "alpine:3"
            pull_policy = ["if-not-present", "never"]
            memory = "64m"
            cpus = "0.5"
            wait_for_services_timeout = -1
            cap_add = ["NET_ADMIN"]
            cap_drop = ["DAC_OVERRIDE", "KILL"]
            [[runners.docker.services]]
            name = "postgres:16"
            alias = "db"
            environment = ["POSTGRES_PASSWORD=secret=1", "IGNORED"]
            [[runners.docker.services]]
            name = " "
        "#,
            2,
        )
        .unwrap();
        assert_eq!(s.builds_dir, "/builds");
        assert_eq!(
            s.host_builds_dir,
            PathBuf::from("/w/docker-builds/abcdefghi/concurrent-2")
        );
        assert_eq!(s.default_image.as_deref(), Some("alpine:3"));
        assert_eq!(
            s.pull_policy,
            vec![PullPolicy::IfNotPresent, PullPolicy::Never]
        );
        assert_eq!(s.memory, Some(64 << 20));
        assert_eq!(s.nano_cpus, Some(500_000_000));
        assert_eq!(s.wait_for_services, None);
        assert_eq!(s.cap_add, ["NET_ADMIN"]);
        assert_eq!(s.cap_drop, ["DAC_OVERRIDE", "KILL"]);
        assert_eq!(s.services.len(), 1, "a service without a name is dropped");
        let db = &s.services[0];
        assert_eq!(
            (db.name.as_str(), db.alias.as_deref()),
            ("postgres:16", Some("db"))
        );
        assert_eq!(db.variables.len(), 1);
        assert_eq!(
            (db.variables[0].key.as_str(), db.variables[0].value.as_str()),
            ("POSTGRES_PASSWORD", "secret=1")
        );
        assert_eq!(s.options, HostOptions::default(), "nothing else asked for");
    }

    #[test]
    fn host_options_come_from_the_runner_entry() {
        let o = settings(
            r#"
            image = "alpine:3"
            shm_size = 300000
            memory_swap = "-1"
            memory_reservation = "32m"
            oom_kill_disable = true
            cpuset_cpus = "0,1"
            cpu_shares = 512
            devices = ["/dev/net/tun", "/dev/zero:/dev/nothing:r"]
            security_opt = ["no-new-privileges"]
            dns_search = ["example.com"]
            group_add = ["audio"]
            userns_mode = "host"
            runtime = "runc"
            [runners.docker.sysctls]
            "net.ipv4.ip_forward" = "1"
            [runners.docker.tmpfs]
            "/scratch" = "rw,size=16m"
            [runners.docker.ulimit]
            nofile = "1024:2048"
        "#,
            0,
        )
        .unwrap()
        .options;
        let u = &o.ulimits[0];
        assert_eq!(
            (u.name.as_deref(), u.soft, u.hard),
            (Some("nofile"), Some(1024), Some(2048))
        );
        assert_eq!(o.shm_size, Some(300_000));
        assert_eq!(o.memory_swap, Some(-1));
        assert_eq!(o.memory_reservation, Some(32 << 20));
        assert!(o.oom_kill_disable);
        assert_eq!(o.cpuset_cpus.as_deref(), Some("0,1"));
        assert_eq!(o.cpu_shares, Some(512));
        let devices: Vec<_> = o
            .devices
            .iter()
            .map(|d| {
                (
                    d.path_on_host.as_deref().unwrap(),
                    d.path_in_container.as_deref().unwrap(),
                    d.cgroup_permissions.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            devices,
            [
                ("/dev/net/tun", "/dev/net/tun", "rwm"),
                ("/dev/zero", "/dev/nothing", "r")
            ]
        );
        assert_eq!(o.security_opt, ["no-new-privileges"]);
        assert_eq!(o.sysctls["net.ipv4.ip_forward"], "1");
        assert_eq!(o.tmpfs["/scratch"], "rw,size=16m");
        assert_eq!(o.dns_search, ["example.com"]);
        assert_eq!(o.group_add, ["audio"]);
        assert_eq!(o.userns_mode.as_deref(), Some("host"));
        assert_eq!(o.runtime.as_deref(), Some("runc"));
    }

    #[test]
    fn service_containers_have_settings_of_their_own() {
        let s = settings(
            r#"
            privileged = true
            services_privileged = false
            shm_size = 1024
            security_opt = ["no-new-privileges"]
            services_security_opt = ["seccomp=unconfined"]
            dns_search = ["example.com"]
            service_memory = "128m"
            service_memory_swap = "256m"
            service_cpus = "0.5"
            service_cpu_shares = 256
            [runners.docker.tmpfs]
            "/build-tmp" = "rw"
            [runners.docker.services_tmpfs]
            "/var/lib/postgresql/data" = "rw,size=64m"
        "#,
            0,
        )
        .unwrap();
        assert!(s.privileged && !s.service_privileged);
        assert_eq!(s.service_memory, Some(128 << 20));
        assert_eq!(s.service_nano_cpus, Some(500_000_000));
        let o = &s.service_options;
        assert_eq!(o.memory_swap, Some(256 << 20));
        assert_eq!(o.cpu_shares, Some(256));
        assert_eq!(o.security_opt, ["seccomp=unconfined"]);
        assert_eq!(
            o.tmpfs.keys().collect::<Vec<_>>(),
            ["/var/lib/postgresql/data"]
        );
        // Shared with build containers, as the official runner does.
        assert_eq!(
            (o.shm_size, o.dns_search.as_slice()),
            (Some(1024), &["example.com".to_owned()][..])
        );
        // Build containers keep their own.
        assert_eq!(s.options.security_opt, ["no-new-privileges"]);
        assert_eq!(s.options.tmpfs.keys().collect::<Vec<_>>(), ["/build-tmp"]);
        assert_eq!(s.options.memory_swap, None);
        // Without services_privileged, services follow privileged.
        assert!(
            settings("privileged = true\n", 0)
                .unwrap()
                .service_privileged
        );
    }

    #[test]
    fn a_bad_host_option_names_the_section_and_the_value() {
        for (key, value, says) in [
            ("memory_swap", "\"lots\"", "lots"),
            ("devices", "[\"dev/tun\"]", "absolute"),
            ("devices", "[\"/dev/a:/dev/b:rx\"]", "r, w and m"),
        ] {
            let err = settings(&format!("{key} = {value}\n"), 0)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("[runners.docker]") && err.contains(says),
                "{key} = {value}: {err}"
            );
        }
    }
}
