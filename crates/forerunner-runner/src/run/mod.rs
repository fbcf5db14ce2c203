//! The job loop of `forerunner run` and `forerunner run-single`: ask the
//! servers in config.toml for jobs and run them, as the official runner's
//! `run` does.
//!
//! # Shape
//!
//! - Every `[[runners]]` entry gets `request_concurrency` pollers. A poller
//!   checks the entry's health, takes one of the entry's `limit` places and
//!   one of the global `concurrent` slots (a request waiting in a long poll
//!   holds a slot, as in the official runner), asks for a job, and on `201`
//!   hands the job, the slot and the place to a job task and asks again at
//!   once (unless `strict_check_interval`). After a `204` it waits
//!   `check_interval`, or not at all when the server held the request (long
//!   polling).
//! - Config.toml is reloaded when its modification time changes (checked
//!   every 3 s) or on `SIGHUP`; a reload resets the health table, resizes
//!   `concurrent` and starts or stops pollers. Tokens are rotated at 75 % of
//!   their lifetime and the new token is saved with [`ConfigDocument`].
//! - Stopping: the first `SIGTERM`, `SIGINT` or `SIGQUIT` stops asking for
//!   jobs (cancelling requests in flight) and waits for running jobs up to
//!   `shutdown_timeout`; a second signal, or the timeout, aborts them — each
//!   aborted job is still reported `failed` (`runner_interrupted`, mapped to
//!   what the server supports) — and the loop waits `shutdown_timeout` more
//!   for those reports. A third signal exits at once.
//!   A caller running the loop in-process (`forerunner exec`) passes
//!   [`RunOptions::stop`]: its [`RunStop`] tokens act as the first and the
//!   second signal, and no signal handler is installed.
//!
//! `run-single` uses the same loop with a fixed one-entry configuration,
//! `concurrent = 1`, and the same stop semantics (the official `run-single`
//! aborts on the first `SIGTERM`; here the first one drains, as in `run`).
//!
//! What it deliberately does not do: the interactive web terminal
//! (`[session_server]`), `--user` (jobs run as the runner's user), syslog,
//! the `/debug` endpoints; `listen_address` is read at start only; entries
//! are polled every `check_interval` each (the official runner spreads one
//! `check_interval` over all entries).

mod pickup;
pub mod request;
mod signals;
mod telemetry;

pub use signals::RunStop;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use forerunner_protocol::tokens::short_token;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::config::{Config, ConfigDocument, RunnerConfig};
use crate::health::{health_key, Health, HealthPolicy, RequestHealth, Verdict};
use crate::job_api::ApiObserver;
use crate::metrics::Metrics;
use crate::run::request::Answer;
use crate::run::signals::{Signal, Signals};
use crate::run::telemetry::{EntryLabels, RunLog};

/// How often config.toml's modification time is checked.
pub const RELOAD_CONFIG_INTERVAL: Duration = Duration::from_secs(3);

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// config.toml, watched and reloaded (`run`).
    File(PathBuf),
    /// A configuration built from flags (`run-single`): never reloaded, tokens
    /// never rotated.
    Fixed(Box<Config>),
}

/// How to run the loop.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The configuration.
    pub config: ConfigSource,
    /// The runner manager's `system_id`.
    pub system_id: String,
    /// Metrics address; overrides `listen_address` of config.toml.
    pub listen_address: Option<String>,
    /// Stop after this many jobs (0: never).
    pub max_builds: u64,
    /// Stop after this long without a job (run-single `--wait-timeout`).
    pub wait_timeout: Option<Duration>,
    /// Overrides `shutdown_timeout` of the configuration.
    pub shutdown_timeout: Option<Duration>,
    /// Print debug lines.
    pub debug: bool,
    /// Stop requests from the caller instead of OS signals (no handler is
    /// installed): for a loop embedded in another command.
    pub stop: Option<RunStop>,
    /// Append the loop's log lines to this file (without colour) instead of
    /// printing them on stderr.
    pub log_file: Option<PathBuf>,
}

/// Locks a mutex whose data stays consistent even if a holder panicked
/// (every critical section here is a single update).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `text` with `token` replaced by its short form.
pub(crate) fn redact(text: &str, token: &str) -> String {
    if token.len() < 4 {
        return text.to_owned();
    }
    text.replace(token, &short_token(token))
}

/// Borrows owned log fields.
fn pairs<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Identifies an entry by its credentials (never printed).
fn entry_key(runner: &RunnerConfig) -> String {
    format!("{}\n{}", runner.url, runner.token)
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every job finished and was reported.
    Cleanly,
    /// Jobs were still running (a third signal, or aborted jobs that did not
    /// report in time): the caller should exit at once, as waiting for them
    /// could take forever.
    Forced,
}

/// Runs the loop until it is stopped by a signal, `max_builds` or
/// `wait_timeout`.
pub async fn run(opts: RunOptions) -> anyhow::Result<Ended> {
    let (config, path) = match &opts.config {
        ConfigSource::File(path) => (Config::load(path)?, Some(path.clone())),
        ConfigSource::Fixed(config) => ((**config).clone(), None),
    };
    if config.concurrent() < 1 {
        anyhow::bail!(
            "current configuration 'concurrent = {}' means that no jobs will be processed (set `concurrent = 1` or more in {})",
            config.concurrent(),
            path.as_ref()
                .map_or_else(|| "the configuration".to_owned(), |p| p.display().to_string())
        );
    }
    let metrics = Metrics::new();
    let debug = opts.debug
        || config
            .log_level
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case("debug"));
    let log = match &opts.log_file {
        None => {
            // Executors report what happens outside a job's log through
            // `tracing`: to stderr, beside the loop's own lines.
            crate::log::install_tracing(debug);
            RunLog::new(metrics.clone(), debug)
        }
        Some(path) => RunLog::to_file(metrics.clone(), debug, path)?,
    };
    // Signals first: a signal arriving while pollers start must not kill
    // the process with jobs in flight.
    let signals = match &opts.stop {
        Some(stop) => Signals::requests(stop.clone()),
        None => Signals::new().context("failed to install the signal handlers")?,
    };
    let listen = opts
        .listen_address
        .clone()
        .or_else(|| config.listen_address.clone())
        .filter(|a| !a.trim().is_empty());
    let metrics_stop = CancellationToken::new();
    match &listen {
        Some(address) => {
            let address = with_default_port(address.trim());
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .with_context(|| {
                    format!("failed to listen on {address} for metrics (check listen_address or --listen-address)")
                })?;
            let bound = listener
                .local_addr()
                .map_or(address.clone(), |a| a.to_string());
            tokio::spawn(crate::metrics::serve(
                listener,
                metrics.clone(),
                metrics_stop.clone(),
            ));
            log.info("Metrics server listening", &[("address", &bound)]);
        }
        None => log.info(
            "listen_address not defined, metrics & debug endpoints disabled",
            &[("builds", "0")],
        ),
    }
    let manager = Arc::new(Manager::new(opts, path, metrics, log));
    manager.install(config);
    let ended = manager.clone().supervise(signals).await;
    metrics_stop.cancel();
    Ok(ended)
}

/// `host:port`, with the official default port 9252 when none is given.
fn with_default_port(address: &str) -> String {
    if address.parse::<std::net::SocketAddr>().is_ok() || address.rsplit_once(':').is_some() {
        address.to_owned()
    } else {
        format!("{address}:9252")
    }
}

/// One entry's share of the loop: jobs running or being asked for (for
/// `limit`), and the numbers given to its running jobs.
#[derive(Debug, Default)]
struct EntryState {
    inner: Mutex<EntryCounts>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct EntryCounts {
    reserved: usize,
    concurrent_ids: BTreeSet<usize>,
    project_ids: HashMap<String, BTreeSet<usize>>,
}

fn lowest_free(used: &BTreeSet<usize>) -> usize {
    (0..).find(|i| !used.contains(i)).unwrap_or(0)
}

/// A place among the entry's `limit`; released on drop.
#[derive(Debug)]
struct Reservation {
    state: Arc<EntryState>,
}

impl EntryState {
    fn try_reserve(self: &Arc<Self>, limit: i64) -> Option<Reservation> {
        let mut c = lock(&self.inner);
        if limit > 0 && c.reserved >= limit as usize {
            return None;
        }
        c.reserved += 1;
        Some(Reservation {
            state: self.clone(),
        })
    }
}

impl Reservation {
    /// The lowest free `CI_CONCURRENT_ID` and `CI_CONCURRENT_PROJECT_ID`
    /// for a job of `project`, held until the returned value is dropped.
    fn assign(&self, project: &str) -> Numbers {
        let mut c = lock(&self.state.inner);
        let concurrent_id = lowest_free(&c.concurrent_ids);
        c.concurrent_ids.insert(concurrent_id);
        let ids = c.project_ids.entry(project.to_owned()).or_default();
        let project_id = lowest_free(ids);
        ids.insert(project_id);
        Numbers {
            state: self.state.clone(),
            project: project.to_owned(),
            concurrent_id,
            project_id,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        lock(&self.state.inner).reserved -= 1;
        self.state.changed.notify_waiters();
    }
}

/// A running job's `CI_CONCURRENT_ID` and `CI_CONCURRENT_PROJECT_ID`.
#[derive(Debug)]
struct Numbers {
    state: Arc<EntryState>,
    project: String,
    concurrent_id: usize,
    project_id: usize,
}

impl Drop for Numbers {
    fn drop(&mut self) {
        let mut c = lock(&self.state.inner);
        c.concurrent_ids.remove(&self.concurrent_id);
        if let Some(ids) = c.project_ids.get_mut(&self.project) {
            ids.remove(&self.project_id);
            if ids.is_empty() {
                c.project_ids.remove(&self.project);
            }
        }
    }
}

/// Counts a running job; on drop, tells the supervisor.
#[derive(Debug)]
struct Running {
    manager: Arc<Manager>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.manager.running.fetch_sub(1, Ordering::SeqCst);
        *lock(&self.manager.last_activity) = Instant::now();
        self.manager.jobs_changed.notify_one();
    }
}

/// Where the loop is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Asking for jobs.
    Running,
    /// Not asking any more; waiting for running jobs (until the deadline).
    Draining { deadline: Option<Instant> },
    /// Running jobs were aborted; waiting for their reports.
    Aborting { deadline: Instant },
}

/// Everything the pollers, the job tasks and the supervisor share.
#[derive(Debug)]
struct Manager {
    path: Option<PathBuf>,
    /// The file named in hints (`forerunner verify --config …`).
    config_label: String,
    system_id: String,
    max_builds: u64,
    wait_timeout: Option<Duration>,
    shutdown_timeout_override: Option<Duration>,
    log: RunLog,
    metrics: Metrics,
    /// The current configuration and its generation (bumped on reload).
    config: Mutex<(Arc<Config>, u64)>,
    health: Mutex<Health>,
    /// `X-GitLab-Last-Update` per entry key.
    last_update: Mutex<HashMap<String, String>>,
    /// HTTP clients per entry (URL, token and TLS files).
    clients: Mutex<HashMap<String, Client>>,
    entries: Mutex<HashMap<String, Arc<EntryState>>>,
    pollers: Mutex<HashMap<(String, usize), CancellationToken>>,
    /// The `concurrent` slots, and how many permits exist in total.
    slots: Arc<Semaphore>,
    slot_total: Mutex<usize>,
    /// Stop asking for jobs (first signal, `max_builds`, `wait_timeout`).
    stop_requests: CancellationToken,
    /// Abort running jobs (second signal or shutdown timeout).
    abort_jobs: CancellationToken,
    running: AtomicUsize,
    jobs_changed: Notify,
    received: AtomicU64,
    limit_reached: AtomicBool,
    wait_timed_out: AtomicBool,
    last_activity: Mutex<Instant>,
    /// When a failed token rotation may be tried again, per entry key.
    rotation_retry: Mutex<HashMap<String, Instant>>,
    default_shell: String,
}

impl Manager {
    fn new(opts: RunOptions, path: Option<PathBuf>, metrics: Metrics, log: RunLog) -> Self {
        let default_shell = crate::executors::shell::ShellExecutor::new(PathBuf::new())
            .shell()
            .file_name()
            .map_or_else(|| "bash".to_owned(), |n| n.to_string_lossy().into_owned());
        Self {
            config_label: path.as_ref().map_or_else(
                || "(run-single flags)".to_owned(),
                |p| p.display().to_string(),
            ),
            path,
            system_id: opts.system_id,
            max_builds: opts.max_builds,
            wait_timeout: opts.wait_timeout,
            shutdown_timeout_override: opts.shutdown_timeout,
            log,
            metrics,
            config: Mutex::new((Arc::new(Config::default()), 0)),
            health: Mutex::new(Health::new()),
            last_update: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            entries: Mutex::new(HashMap::new()),
            pollers: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(0)),
            slot_total: Mutex::new(0),
            stop_requests: CancellationToken::new(),
            abort_jobs: CancellationToken::new(),
            running: AtomicUsize::new(0),
            jobs_changed: Notify::new(),
            received: AtomicU64::new(0),
            limit_reached: AtomicBool::new(false),
            wait_timed_out: AtomicBool::new(false),
            last_activity: Mutex::new(Instant::now()),
            rotation_retry: Mutex::new(HashMap::new()),
            default_shell,
        }
    }

    fn snapshot(&self) -> (Arc<Config>, u64) {
        let g = lock(&self.config);
        (g.0.clone(), g.1)
    }

    fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout_override
            .unwrap_or_else(|| self.snapshot().0.shutdown_timeout())
    }

    fn labels(&self, runner: &RunnerConfig) -> EntryLabels {
        EntryLabels {
            runner: short_token(&runner.token),
            runner_name: runner.name.clone(),
            system_id: self.system_id.clone(),
        }
    }

    fn observer(&self, runner: &RunnerConfig) -> ApiObserver {
        ApiObserver {
            metrics: self.metrics.clone(),
            runner: short_token(&runner.token),
            system_id: self.system_id.clone(),
        }
    }

    fn entry_state(&self, key: &str) -> Arc<EntryState> {
        lock(&self.entries)
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    /// The HTTP client of an entry, built once per URL, token and TLS files.
    fn client(&self, runner: &RunnerConfig) -> Result<Client, crate::client::ApiError> {
        let key = format!(
            "{}\n{}\n{:?}\n{:?}\n{:?}",
            runner.url, runner.token, runner.tls_ca_file, runner.tls_cert_file, runner.tls_key_file
        );
        if let Some(c) = lock(&self.clients).get(&key) {
            return Ok(c.clone());
        }
        let client = Client::for_runner(runner)?;
        lock(&self.clients).insert(key, client.clone());
        Ok(client)
    }

    /// Takes `config` as the current configuration: health reset, slots
    /// resized, metrics updated, pollers started and stopped.
    fn install(self: &Arc<Self>, config: Config) {
        let concurrent = config.concurrent().max(1) as usize;
        for r in &config.runners {
            if r.token.trim().is_empty() {
                self.log.warn(
                    "Runner token is empty or whitespace; this runner will be skipped during job polling. Check `token` (and the environment variable it names) in config.toml",
                    &[("runner_name", &r.name)],
                );
            }
        }
        let entries: Vec<(EntryLabels, i64)> = config
            .runners
            .iter()
            .map(|r| (self.labels(r), r.limit))
            .collect();
        telemetry::describe(&self.metrics, concurrent as i64, &entries);
        {
            let mut g = lock(&self.config);
            g.0 = Arc::new(config);
            g.1 += 1;
        }
        lock(&self.health).reset();
        self.clean_docker_leftovers();
        self.resize_slots(concurrent);
        let running = self.running.load(Ordering::SeqCst).to_string();
        self.log.info(
            "Configuration loaded",
            &[
                ("builds", &running),
                ("max_builds", &concurrent.to_string()),
            ],
        );
        self.reconcile();
    }

    /// Removes, in the background and once per process, what earlier
    /// processes of the docker entries left on their daemons (a runner
    /// killed mid-job leaves containers, networks and volumes). A job of the
    /// entry that starts meanwhile waits for it.
    fn clean_docker_leftovers(&self) {
        let (config, _) = self.snapshot();
        for runner in config.runners.iter().filter(|r| r.executor == "docker") {
            let (runner, log) = (runner.clone(), self.log.clone());
            tokio::spawn(async move {
                // What was removed is logged where it is removed.
                if let Err(e) = crate::executors::docker::cleanup_leftovers_at_start(&runner).await
                {
                    log.warn(
                        "Failed to remove Docker leftovers of an earlier run; the runner's next job tries again",
                        &[("error", &e.to_string()), ("runner", &short_token(&runner.token))],
                    );
                }
            });
        }
    }

    fn resize_slots(&self, wanted: usize) {
        let mut total = lock(&self.slot_total);
        if wanted > *total {
            self.slots.add_permits(wanted - *total);
        } else if wanted < *total {
            // Fewer slots: take the surplus as soon as jobs release it.
            let surplus = (*total - wanted) as u32;
            let slots = self.slots.clone();
            tokio::spawn(async move {
                if let Ok(p) = slots.acquire_many_owned(surplus).await {
                    p.forget();
                }
            });
        }
        *total = wanted;
    }

    /// Starts the pollers the configuration wants and stops the others.
    fn reconcile(self: &Arc<Self>) {
        if self.stop_requests.is_cancelled() {
            return;
        }
        let (config, _) = self.snapshot();
        let mut wanted = HashSet::new();
        for r in &config.runners {
            if r.token.trim().is_empty() {
                continue;
            }
            for i in 0..r.request_concurrency() as usize {
                wanted.insert((entry_key(r), i));
            }
        }
        let mut pollers = lock(&self.pollers);
        pollers.retain(|k, stop| {
            let keep = wanted.contains(k) && !stop.is_cancelled();
            if !keep {
                stop.cancel();
            }
            keep
        });
        for (key, index) in wanted {
            if pollers.contains_key(&(key.clone(), index)) {
                continue;
            }
            let stop = CancellationToken::new();
            pollers.insert((key.clone(), index), stop.clone());
            tokio::spawn(self.clone().poll_loop(key, index, stop));
        }
    }

    /// Sleeps `d`; true when the poller must stop.
    async fn pause(&self, d: Duration, stop: &CancellationToken) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = stop.cancelled() => true,
            _ = self.stop_requests.cancelled() => true,
        }
    }

    async fn poll_loop(self: Arc<Self>, key: String, index: usize, stop: CancellationToken) {
        // Spread the pollers of one entry so request_concurrency > 1 does
        // not ask in bursts.
        if index > 0
            && self
                .pause(Duration::from_millis(200 * index as u64), &stop)
                .await
        {
            return;
        }
        let mut executor_check: Option<(u64, Result<(), String>)> = None;
        loop {
            if stop.is_cancelled() || self.stop_requests.is_cancelled() {
                return;
            }
            let (config, generation) = self.snapshot();
            let Some(entry) = config.runners.iter().find(|r| entry_key(r) == key) else {
                return;
            };
            let pause = self
                .poll_once(&config, entry, &key, generation, &mut executor_check, &stop)
                .await;
            match pause {
                None => return,
                Some(d) if d.is_zero() => {}
                Some(d) => {
                    if self.pause(d, &stop).await {
                        return;
                    }
                }
            }
        }
    }

    /// Records the health outcome of a request of `runner`; prints the
    /// parked lines (with `hint` instead of the default fix when given).
    fn mark(&self, runner: &RunnerConfig, outcome: RequestHealth, hint: Option<String>) {
        if outcome != RequestHealth::Healthy {
            telemetry::health_failure(&self.metrics, &self.labels(runner));
        }
        let parked = lock(&self.health).record(runner, &self.config_label, outcome, Instant::now());
        if let Some(mut parked) = parked {
            if let Some(hint) = hint {
                parked.hint = hint;
            }
            self.log.parked(&parked);
        }
    }

    /// One turn of a poller. Returns how long to wait before the next one,
    /// `None` to stop.
    async fn poll_once(
        self: &Arc<Self>,
        config: &Config,
        entry: &RunnerConfig,
        key: &str,
        generation: u64,
        executor_check: &mut Option<(u64, Result<(), String>)>,
        stop: &CancellationToken,
    ) -> Option<Duration> {
        let interval = config.check_interval();
        let short = short_token(&entry.token);
        match lock(&self.health).check(&health_key(entry), HealthPolicy::of(entry), Instant::now())
        {
            Verdict::Parked => return Some(interval),
            Verdict::Forced { message } => self.log.warn(&message, &[]),
            Verdict::Healthy => {}
        }
        // An executor Forerunner cannot create makes the entry unhealthy,
        // as an unknown executor does in the official runner.
        if executor_check.as_ref().map(|(g, _)| *g) != Some(generation) {
            let check = crate::executors::for_runner(entry, 0)
                .map(|_| ())
                .map_err(|e| e.0);
            *executor_check = Some((generation, check));
        }
        if let Some((_, Err(e))) = executor_check.as_ref() {
            self.log.error(
                &format!(
                    "Executor {:?} is not known; marking Runner as unhealthy",
                    entry.executor
                ),
                &[("error", e), ("runner", &short)],
            );
            let hint = format!(
                "runner {entry} in {} is parked: {e}; fix `executor` in that entry (shell, docker or custom) and save the file",
                self.config_label
            );
            self.mark(entry, RequestHealth::ClientError, Some(hint));
            return Some(interval);
        }
        let client = match self.client(entry) {
            Ok(c) => c,
            Err(e) => {
                self.log.error(
                    "Checking for jobs... client error",
                    &[("runner", &short), ("status", &e.to_string())],
                );
                self.mark(entry, RequestHealth::ClientError, None);
                return Some(interval);
            }
        };
        let state = self.entry_state(key);
        let Some(reservation) = state.try_reserve(entry.limit) else {
            self.log.debug(
                "Failed to request job, runner limit met",
                &[("runner", &short)],
            );
            tokio::select! {
                _ = state.changed.notified() => {}
                _ = tokio::time::sleep(interval) => {}
                _ = stop.cancelled() => return None,
                _ = self.stop_requests.cancelled() => return None,
            }
            return Some(Duration::ZERO);
        };
        let permit = tokio::select! {
            p = self.slots.clone().acquire_owned() => p.ok()?,
            _ = stop.cancelled() => return None,
            _ = self.stop_requests.cancelled() => return None,
        };
        let shell = entry
            .shell
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.default_shell.clone());
        let info = request::info(&entry.executor, &shell, &config.labels);
        let last_update = lock(&self.last_update).get(key).cloned();
        let body = request::body(&entry.token, &self.system_id, last_update, info.clone());
        self.log
            .debug("Checking for jobs...", &[("runner", &short)]);
        let reply = tokio::select! {
            r = request::request_job(&client, &body) => r,
            // Stopping cancels a request in flight, as the official runner does.
            _ = self.stop_requests.cancelled() => return None,
        };
        self.observer(entry)
            .record("request_job", "post", reply.status);
        if let Some(value) = &reply.last_update {
            lock(&self.last_update).insert(key.to_owned(), value.clone());
        }
        let outcome = match reply.answer {
            Answer::Forbidden => RequestHealth::Forbidden,
            _ => RequestHealth::Healthy,
        };
        // The official lines carry the server's request id; without one the
        // field is left out rather than printed empty.
        let correlation = reply.correlation_id.clone();
        let with_id = |mut fields: Vec<(&'static str, String)>| {
            if let Some(id) = &correlation {
                fields.push(("correlation_id", id.clone()));
            }
            fields
        };
        // The request's own line comes first, then the health verdict (the
        // parked lines), in the official runner's order.
        let pause = match reply.answer {
            Answer::Job(job) => {
                let id = job.id.to_string();
                let repo = request::without_credentials(&job.git_info.repo_url);
                let fields = with_id(vec![("job", id), ("repo_url", repo), ("runner", short)]);
                self.log
                    .info("Checking for jobs... received", &pairs(&fields));
                self.running.fetch_add(1, Ordering::SeqCst);
                let running = Running {
                    manager: self.clone(),
                };
                let received = self.received.fetch_add(1, Ordering::SeqCst) + 1;
                if self.max_builds > 0 && received >= self.max_builds {
                    self.limit_reached.store(true, Ordering::SeqCst);
                    self.stop_requests.cancel();
                }
                let job_task = pickup::Pickup {
                    manager: self.clone(),
                    entry: entry.clone(),
                    client,
                    info,
                    labels: self.labels(entry),
                    permit,
                    reservation,
                    running,
                };
                // The job runs as its own task; the driver's future is
                // `Send` with a boxed executor (checked at compile time in
                // `job`).
                tokio::spawn(job_task.run(*job));
                Some(if entry.strict_check_interval {
                    interval
                } else {
                    Duration::ZERO
                })
            }
            Answer::NoJob { .. } => {
                self.log
                    .debug("Checking for jobs... no content", &[("runner", &short)]);
                Some(reply.pause(interval))
            }
            Answer::Forbidden => {
                let fields = with_id(vec![
                    ("runner", short.clone()),
                    ("status", reply.status_text.clone()),
                ]);
                self.log
                    .error("Checking for jobs... forbidden", &pairs(&fields));
                Some(interval)
            }
            Answer::Unavailable => {
                let fields = with_id(vec![
                    ("runner", short.clone()),
                    ("status", reply.status_text.clone()),
                ]);
                self.log.warn(
                    "Checking for jobs... GitLab instance currently unavailable",
                    &pairs(&fields),
                );
                Some(interval)
            }
            Answer::Failed => {
                let fields = with_id(vec![
                    ("runner", short.clone()),
                    ("status", reply.status_text.clone()),
                ]);
                self.log
                    .warn("Checking for jobs... failed", &pairs(&fields));
                Some(interval)
            }
        };
        self.mark(entry, outcome, None);
        pause
    }

    /// Reloads config.toml; a file that does not load keeps the old
    /// configuration.
    fn reload(self: &Arc<Self>) {
        let Some(path) = &self.path else { return };
        match Config::load(path) {
            Ok(config) if config.concurrent() < 1 => self.log.error(
                "Failed to load config",
                &[(
                    "error",
                    &format!(
                        "concurrent = {} would process no jobs; keeping the previous configuration",
                        config.concurrent()
                    ),
                )],
            ),
            Ok(config) => self.install(config),
            Err(e) => self.log.error(
                "Failed to load config",
                &[("error", &format!("{e}; keeping the previous configuration"))],
            ),
        }
    }

    /// Rotates tokens at 75 % of their lifetime, saving the new ones.
    async fn rotate_tokens(self: &Arc<Self>) {
        let Some(path) = self.path.clone() else {
            return;
        };
        let (config, _) = self.snapshot();
        let now = chrono::Utc::now();
        let mut rotated = false;
        for entry in &config.runners {
            let key = entry_key(entry);
            if entry.token.trim().is_empty()
                || !crate::rotation::is_rotation_due(
                    entry.token_obtained_at,
                    entry.token_expires_at,
                    now,
                )
                || lock(&self.rotation_retry)
                    .get(&key)
                    .is_some_and(|at| *at > Instant::now())
            {
                continue;
            }
            let short = short_token(&entry.token);
            let result = match self.client(entry) {
                Ok(client) => client
                    .reset_token(&entry.token)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let saved = result.and_then(|new| {
                let mut doc = ConfigDocument::load(&path).map_err(|e| e.to_string())?;
                doc.replace_token(&entry.token, &new.token, now, new.token_expires_at)
                    .map_err(|e| e.to_string())?;
                doc.save().map_err(|e| {
                    format!("{e} (the new token is lost: reset it with `forerunner reset-token --pat …`)")
                })
            });
            match saved {
                Ok(()) => {
                    self.log.info(
                        "Resetting runner authentication token... succeeded",
                        &[("runner", &short)],
                    );
                    rotated = true;
                }
                Err(e) => {
                    self.log.warn(
                        "Resetting runner authentication token... failed",
                        &[("error", &e), ("runner", &short)],
                    );
                    lock(&self.rotation_retry)
                        .insert(key, Instant::now() + Duration::from_secs(60));
                }
            }
        }
        if rotated {
            self.reload();
        }
    }

    fn mtime(&self) -> Option<SystemTime> {
        self.path
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .and_then(|m| m.modified().ok())
    }

    /// Stops asking for jobs, and aborts running jobs after the shutdown
    /// timeout.
    fn start_graceful(&self, why: &str) -> Phase {
        let timeout = self.shutdown_timeout();
        self.log.warn(
            "Starting graceful shutdown, waiting for builds to finish",
            &[
                (
                    "shutdown-timeout",
                    &crate::config::duration::format_go_duration(timeout),
                ),
                ("signal", why),
            ],
        );
        self.stop_requests.cancel();
        Phase::Draining {
            deadline: Some(Instant::now() + timeout),
        }
    }

    /// Aborts running jobs (they are reported failed) and gives them the
    /// shutdown timeout to report.
    fn start_forceful(&self, why: &str) -> Phase {
        let timeout = self.shutdown_timeout();
        self.log.warn(
            "Starting forceful shutdown",
            &[
                ("builds", &self.running.load(Ordering::SeqCst).to_string()),
                ("reason", why),
            ],
        );
        self.stop_requests.cancel();
        self.abort_jobs.cancel();
        Phase::Aborting {
            deadline: Instant::now() + timeout,
        }
    }

    /// Watches signals, config.toml, token lifetimes and the stop
    /// conditions until the loop is over.
    async fn supervise(self: Arc<Self>, mut signals: Signals) -> Ended {
        let mut phase = Phase::Running;
        let mut ended = Ended::Cleanly;
        let mut mtime = self.mtime();
        let mut last_check = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let running = self.running.load(Ordering::SeqCst);
            match phase {
                Phase::Running if self.stop_requests.is_cancelled() => {
                    // max_builds or wait_timeout: no deadline, jobs finish.
                    phase = Phase::Draining { deadline: None };
                    continue;
                }
                Phase::Draining { .. } | Phase::Aborting { .. } if running == 0 => break,
                _ => {}
            }
            let changed = self.jobs_changed.notified();
            tokio::select! {
                _ = tick.tick() => {
                    let now = Instant::now();
                    match phase {
                        Phase::Running => {
                            if now.duration_since(last_check) >= RELOAD_CONFIG_INTERVAL {
                                last_check = now;
                                let current = self.mtime();
                                if current.is_some() && current != mtime {
                                    mtime = current;
                                    self.reload();
                                }
                                self.rotate_tokens().await;
                            }
                            if let Some(wait) = self.wait_timeout {
                                if running == 0 && lock(&self.last_activity).elapsed() > wait {
                                    self.wait_timed_out.store(true, Ordering::SeqCst);
                                    self.stop_requests.cancel();
                                }
                            }
                        }
                        Phase::Draining { deadline: Some(d) } if now >= d => {
                            phase = self.start_forceful("shutdown timeout exceeded");
                        }
                        Phase::Aborting { deadline } if now >= deadline => {
                            self.log.error(
                                "Forced exit: aborted jobs did not report within the shutdown timeout",
                                &[("builds", &running.to_string())],
                            );
                            ended = Ended::Forced;
                            break;
                        }
                        _ => {}
                    }
                }
                signal = signals.recv() => match (signal, phase) {
                    (Signal::Reload, Phase::Running) => {
                        self.log.info("Reloading configuration", &[("signal", "hangup")]);
                        mtime = self.mtime();
                        self.reload();
                    }
                    (Signal::Reload, _) => {}
                    (Signal::Stop(name), Phase::Running) => phase = self.start_graceful(name),
                    (Signal::Stop(name), Phase::Draining { .. }) => {
                        phase = self.start_forceful(&format!("second signal ({name})"));
                    }
                    (Signal::Stop(name), Phase::Aborting { .. }) => {
                        self.log.error(
                            "Forced exit with stop signal",
                            &[("builds", &running.to_string()), ("signal", name)],
                        );
                        ended = Ended::Forced;
                        break;
                    }
                },
                _ = changed => {}
                _ = self.stop_requests.cancelled(), if phase == Phase::Running => {}
            }
        }
        for stop in lock(&self.pollers).values() {
            stop.cancel();
        }
        if self.limit_reached.load(Ordering::SeqCst) {
            self.log.info(
                "This runner has processed its build limit, so now exiting",
                &[],
            );
        } else if self.wait_timed_out.load(Ordering::SeqCst) {
            let secs = self.wait_timeout.unwrap_or_default().as_secs().to_string();
            self.log.info(
                "This runner has not received a job within the wait timeout, so now exiting",
                &[("wait-timeout", &secs)],
            );
        }
        if ended == Ended::Cleanly {
            self.log.info("All workers stopped. Can exit now", &[]);
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_metrics_port() {
        assert_eq!(with_default_port("127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(with_default_port("0.0.0.0"), "0.0.0.0:9252");
        assert_eq!(with_default_port("localhost"), "localhost:9252");
    }

    #[test]
    fn numbers_are_the_lowest_free_and_released() {
        let state = Arc::new(EntryState::default());
        let a = state.try_reserve(2).unwrap();
        let b = state.try_reserve(2).unwrap();
        assert!(state.try_reserve(2).is_none(), "limit 2");
        let na = a.assign("g/p");
        let nb = b.assign("g/p");
        assert_eq!((na.concurrent_id, na.project_id), (0, 0));
        assert_eq!((nb.concurrent_id, nb.project_id), (1, 1));
        drop(na);
        let other = a.assign("g/q");
        assert_eq!((other.concurrent_id, other.project_id), (0, 0));
        drop(other);
        drop(a);
        assert!(state.try_reserve(2).is_some());
        assert!(state.try_reserve(0).is_some(), "0 = unlimited");
    }

    #[test]
    fn redacts_tokens() {
        let t = "glrt-t1_abcdefghijklmnop";
        assert_eq!(redact(&format!("x {t} y"), t), "x t1_abcdef y");
    }
}
