//! config.toml, compatible with the file the official `gitlab-runner` writes.
//!
//! The file has two views:
//! - [`Config`], a typed, read-only view for the commands and the job loop:
//!   the keys Forerunner understands, with the official defaults available
//!   through accessor methods, `url`/`token` already `$VAR`-expanded. Keys it
//!   does not know are ignored, as the official runner ignores them.
//! - [`ConfigDocument`] (in [`document`]), the editable TOML document: every
//!   change goes through it so that comments, key order and unknown keys
//!   survive a rewrite byte for byte, and saving is atomic.
//!
//! Loading never talks to a server and never writes; it fails with a
//! [`ConfigError`] that names the file, the line and the key.

pub mod document;
pub mod duration;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

pub use document::ConfigDocument;

/// Default number of 403 answers after which a runner entry is parked.
pub const DEFAULT_UNHEALTHY_REQUESTS_LIMIT: u32 = 3;
/// Default time a parked runner entry waits before it is tried again.
pub const DEFAULT_UNHEALTHY_INTERVAL: Duration = Duration::from_secs(3600);
/// Default `check_interval` when the file says 0 or less.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(3);
/// Default `shutdown_timeout` when the file says 0 or less.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `output_limit` in KiB.
pub const DEFAULT_OUTPUT_LIMIT_KIB: i64 = 4096;

/// Where config.toml is when neither `--config` nor `CONFIG_FILE` says:
/// `/etc/forerunner/config.toml` for root, `~/.forerunner/config.toml` for
/// other users, `./config.toml` when there is no home directory (the official
/// runner's rule with Forerunner's name).
pub fn default_config_path() -> PathBuf {
    if is_root() {
        return PathBuf::from("/etc/forerunner/config.toml");
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".forerunner").join("config.toml"),
        None => PathBuf::from("config.toml"),
    }
}

/// Whether the process runs as root: `/proc/self` is owned by the effective uid.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Why config.toml could not be loaded. The message always names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key has a value of the wrong type.
    #[error("{}", render_parse_error(path, *line, key.as_deref(), message))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// Dotted path of the offending key (`runners[2].docker.privileged`), when known.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The file could not be written.
    #[error("failed to write {path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed, with the fix when known.
        message: String,
    },
}

fn render_parse_error(
    path: &Path,
    line: Option<usize>,
    key: Option<&str>,
    message: &str,
) -> String {
    let mut s = format!("failed to parse {}", path.display());
    if let Some(line) = line {
        s.push_str(&format!(", line {line}"));
    }
    if let Some(key) = key {
        s.push_str(&format!(", key `{key}`"));
    }
    s.push_str(&format!(
        ": {message} (fix the file by hand or restore a backup)"
    ));
    s
}

impl ConfigError {
    /// Builds a parse error from a byte span into `text`.
    pub(crate) fn parse_at(
        path: &Path,
        text: &str,
        span: Option<std::ops::Range<usize>>,
        message: &str,
    ) -> Self {
        let message = message.trim().to_owned();
        let Some(span) = span else {
            return Self::Parse {
                path: path.to_owned(),
                line: None,
                key: None,
                message,
            };
        };
        let start = span.start.min(text.len());
        let line_no = text[..start].matches('\n').count() + 1;
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line_text = &text[line_start..line_end];
        let key = key_path_at(&text[..line_start], line_text);
        Self::Parse {
            path: path.to_owned(),
            line: Some(line_no),
            key,
            message,
        }
    }
}

/// The dotted key path of `line` given everything before it: the nearest
/// table header (with the `[[runners]]` index) plus the key left of `=`.
fn key_path_at(before: &str, line: &str) -> Option<String> {
    let trimmed = line.trim();
    let key = if trimmed.starts_with('[') {
        None
    } else {
        trimmed
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_owned())
    };
    let mut header: Option<String> = None;
    let mut runners = 0usize;
    for l in before.lines() {
        let l = l.trim();
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim();
            if name == "runners" {
                runners += 1;
            }
            header = Some(name.to_owned());
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            header = Some(name.trim().to_owned());
        }
    }
    if trimmed.starts_with('[') {
        return trimmed
            .trim_start_matches('[')
            .split(']')
            .next()
            .map(|s| s.trim().to_owned());
    }
    let section = header.map(|h| match h.strip_prefix("runners") {
        Some(rest) if runners > 0 && (rest.is_empty() || rest.starts_with('.')) => {
            format!("runners[{}]{rest}", runners)
        }
        _ => h,
    });
    match (section, key) {
        (Some(s), Some(k)) => Some(format!("{s}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(s), None) => Some(s),
        (None, None) => None,
    }
}

/// The typed view of config.toml (global section).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Maximum jobs running at once across all runners (`concurrent`).
    pub concurrent: Option<i64>,
    /// Seconds between job requests; see [`Config::check_interval`].
    pub check_interval: Option<i64>,
    /// `debug`, `info`, `warn`, `error`, `fatal`, `panic`.
    pub log_level: Option<String>,
    /// `runner`, `text` or `json`.
    pub log_format: Option<String>,
    /// Metrics/debug server address (`host:port`).
    pub listen_address: Option<String>,
    /// Seconds to wait for jobs on shutdown; see [`Config::shutdown_timeout`].
    pub shutdown_timeout: Option<i64>,
    /// Go duration after which idle connections are closed.
    pub connection_max_age: Option<String>,
    /// Sentry DSN (not used by Forerunner; kept for completeness).
    pub sentry_dsn: Option<String>,
    /// User that runs shell-executor jobs.
    pub user: Option<String>,
    /// Default labels for all runners.
    pub labels: BTreeMap<String, String>,
    /// `[session_server]`.
    pub session_server: Option<SessionServer>,
    /// `[[runners]]`, in file order.
    pub runners: Vec<RunnerConfig>,
}

impl Config {
    /// `concurrent`, 1 when absent (values < 1 are the `run` loop's fatal error).
    pub fn concurrent(&self) -> i64 {
        self.concurrent.unwrap_or(1)
    }

    /// `check_interval`, the official 3 s when ≤ 0 or absent.
    pub fn check_interval(&self) -> Duration {
        positive_secs(self.check_interval).unwrap_or(DEFAULT_CHECK_INTERVAL)
    }

    /// `shutdown_timeout`, the official 30 s when ≤ 0 or absent.
    pub fn shutdown_timeout(&self) -> Duration {
        positive_secs(self.shutdown_timeout).unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT)
    }

    /// Parses config.toml text. `path` is only used in error messages;
    /// `env` resolves `$VAR` in `url` and `token`.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        // Syntax first, with toml_edit's precise spans.
        if let Err(err) = text.parse::<toml_edit::DocumentMut>() {
            return Err(ConfigError::parse_at(path, text, err.span(), err.message()));
        }
        let mut config: Config = toml::from_str(text)
            .map_err(|err| ConfigError::parse_at(path, text, err.span(), err.message()))?;
        for runner in &mut config.runners {
            runner.expand(env);
        }
        Ok(config)
    }

    /// Reads and parses config.toml, expanding `$VAR` from the process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }
}

fn positive_secs(v: Option<i64>) -> Option<Duration> {
    v.filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s.unsigned_abs()))
}

/// `[session_server]`: the interactive web terminal (not implemented by
/// Forerunner; read so that files using it load).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SessionServer {
    /// Internal listen address.
    pub listen_address: Option<String>,
    /// Address advertised to GitLab.
    pub advertise_address: Option<String>,
    /// Seconds a session stays open after the job (default 1800).
    pub session_timeout: Option<i64>,
}

/// One `[[runners]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RunnerConfig {
    /// Local name (the runner's description at legacy registration).
    pub name: String,
    /// GitLab URL, `$VAR`-expanded.
    pub url: String,
    /// Runner id from registration (0 when unknown).
    pub id: i64,
    /// Runner authentication token, `$VAR`-expanded.
    pub token: String,
    /// When the token was obtained (`None` for Go's zero time).
    #[serde(deserialize_with = "opt_datetime")]
    pub token_obtained_at: Option<DateTime<Utc>>,
    /// When the token expires (`None`: never, or Go's zero time).
    #[serde(deserialize_with = "opt_datetime")]
    pub token_expires_at: Option<DateTime<Utc>>,
    /// CA bundle for the GitLab server.
    #[serde(rename = "tls-ca-file")]
    pub tls_ca_file: Option<String>,
    /// Client certificate.
    #[serde(rename = "tls-cert-file")]
    pub tls_cert_file: Option<String>,
    /// Client key.
    #[serde(rename = "tls-key-file")]
    pub tls_key_file: Option<String>,
    /// `shell`, `docker`, `custom`, … (others load but cannot run).
    pub executor: String,
    /// `bash`, `sh`, … (empty: the executor's default).
    pub shell: Option<String>,
    /// Where builds are checked out.
    pub builds_dir: Option<String>,
    /// Where local caches go.
    pub cache_dir: Option<String>,
    /// Overrides the URL used to clone repositories.
    pub clone_url: Option<String>,
    /// Jobs this entry runs at once (0 = unlimited).
    pub limit: i64,
    /// Concurrent job requests; see [`RunnerConfig::request_concurrency`].
    pub request_concurrency: Option<i64>,
    /// Whether to keep `check_interval` strictly per runner.
    pub strict_check_interval: bool,
    /// Job log limit in KiB; see [`RunnerConfig::output_limit_kib`].
    pub output_limit: Option<i64>,
    /// `["KEY=VALUE", …]` added to every job.
    pub environment: Vec<String>,
    /// Script run before fetching sources.
    pub pre_get_sources_script: Option<String>,
    /// Script run after fetching sources.
    pub post_get_sources_script: Option<String>,
    /// Script run before the job script.
    pub pre_build_script: Option<String>,
    /// Script run after the job script.
    pub post_build_script: Option<String>,
    /// Whether `CI_DEBUG_TRACE` is ignored.
    pub debug_trace_disabled: bool,
    /// 403 answers before the entry is parked; see [`RunnerConfig::unhealthy_requests_limit`].
    pub unhealthy_requests_limit: Option<i64>,
    /// Go duration an entry stays parked; see [`RunnerConfig::unhealthy_interval`].
    pub unhealthy_interval: Option<String>,
    /// Retries of the final job update (default 10).
    pub job_status_final_update_retry_limit: Option<i64>,
    /// `[runners.feature_flags]`: `FF_NAME = bool`.
    pub feature_flags: BTreeMap<String, bool>,
    /// `[runners.custom_build_dir]`.
    pub custom_build_dir: Option<CustomBuildDir>,
    /// `[runners.cache]`.
    pub cache: Option<CacheConfig>,
    /// `[runners.docker]`.
    pub docker: Option<DockerConfig>,
    /// `[runners.custom]`.
    pub custom: Option<CustomConfig>,
    /// The raw `url` and `token` when they contained `$` (before expansion),
    /// and the variables that were missing from the environment.
    #[serde(skip)]
    pub expansion: Expansion,
}

/// What `$VAR` expansion did to an entry's `url` and `token`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The `url` as written, when it contained `$`.
    pub raw_url: Option<String>,
    /// The `token` as written, when it contained `$`.
    pub raw_token: Option<String>,
    /// Variables referenced by `url` or `token` that are not set.
    pub missing: Vec<String>,
}

impl RunnerConfig {
    fn expand(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        if self.url.contains('$') {
            let (value, missing) = expand_env(&self.url, env);
            self.expansion.raw_url = Some(std::mem::replace(&mut self.url, value));
            self.expansion.missing.extend(missing);
        }
        if self.token.contains('$') {
            let (value, missing) = expand_env(&self.token, env);
            self.expansion.raw_token = Some(std::mem::replace(&mut self.token, value));
            self.expansion.missing.extend(missing);
        }
    }

    /// `request_concurrency`, at least 1.
    pub fn request_concurrency(&self) -> i64 {
        self.request_concurrency.unwrap_or(1).max(1)
    }

    /// `output_limit` in KiB, 4096 when absent or ≤ 0.
    pub fn output_limit_kib(&self) -> i64 {
        self.output_limit
            .filter(|v| *v > 0)
            .unwrap_or(DEFAULT_OUTPUT_LIMIT_KIB)
    }

    /// `unhealthy_requests_limit`, 3 when absent or < 1.
    pub fn unhealthy_requests_limit(&self) -> u32 {
        self.unhealthy_requests_limit
            .filter(|v| *v >= 1)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(DEFAULT_UNHEALTHY_REQUESTS_LIMIT)
    }

    /// `unhealthy_interval`, 1 h when absent or not a Go duration.
    pub fn unhealthy_interval(&self) -> Duration {
        self.unhealthy_interval
            .as_deref()
            .and_then(duration::parse_go_duration)
            .unwrap_or(DEFAULT_UNHEALTHY_INTERVAL)
    }

    /// The `environment` entries split at the first `=`; entries without `=`
    /// are ignored, as the official runner ignores them.
    pub fn environment_pairs(&self) -> Vec<(String, String)> {
        self.environment
            .iter()
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Whether feature flag `name` is set to true in `[runners.feature_flags]`.
    pub fn feature_flag(&self, name: &str) -> Option<bool> {
        self.feature_flags.get(name).copied()
    }
}

/// `[runners.custom_build_dir]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CustomBuildDir {
    /// Whether jobs may set `GIT_CLONE_PATH`.
    pub enabled: Option<bool>,
}

/// `[runners.docker]`: the keys the docker executor uses. Other keys load
/// and are kept in the file, but are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DockerConfig {
    /// Docker endpoint (`DOCKER_HOST` or the local socket when empty).
    pub host: Option<String>,
    /// Default job image.
    pub image: Option<String>,
    /// Run containers privileged.
    pub privileged: bool,
    /// Linux capabilities added to build containers (`["NET_ADMIN"]`).
    pub cap_add: Vec<String>,
    /// Linux capabilities dropped from build containers (`["DAC_OVERRIDE"]`).
    pub cap_drop: Vec<String>,
    /// Extra volumes, `docker -v` syntax.
    pub volumes: Vec<String>,
    /// Disable the automatic cache volume.
    pub disable_cache: bool,
    /// Where Docker caches are stored.
    pub cache_dir: Option<String>,
    /// `never` | `if-not-present` | `always`; one string or a list.
    #[serde(deserialize_with = "string_or_list")]
    pub pull_policy: Vec<String>,
    /// Images jobs may use (wildcards).
    pub allowed_images: Vec<String>,
    /// Services jobs may use (wildcards).
    pub allowed_services: Vec<String>,
    /// Pull policies jobs may ask for.
    pub allowed_pull_policies: Vec<String>,
    /// Container network mode.
    pub network_mode: Option<String>,
    /// Helper image override.
    pub helper_image: Option<String>,
    /// Memory limit (`128m`).
    pub memory: Option<String>,
    /// CPU limit (`"2"`).
    pub cpus: Option<String>,
    /// Extra `/etc/hosts` entries.
    pub extra_hosts: Vec<String>,
    /// DNS servers.
    pub dns: Vec<String>,
    /// User inside the container.
    pub user: Option<String>,
    /// Seconds to wait for services (`-1` disables).
    pub wait_for_services_timeout: Option<i64>,
    /// Shared memory size in bytes.
    pub shm_size: Option<i64>,
    /// Memory plus swap limit (`1g`; `-1` for unlimited swap).
    pub memory_swap: Option<String>,
    /// Soft memory limit (`512m`).
    pub memory_reservation: Option<String>,
    /// Do not kill processes when the container is out of memory.
    pub oom_kill_disable: bool,
    /// CPUs the container may run on (`0-3`, `0,1`).
    pub cpuset_cpus: Option<String>,
    /// Relative CPU weight.
    pub cpu_shares: Option<i64>,
    /// Host devices, `host[:container[:permissions]]` (`/dev/net/tun`).
    pub devices: Vec<String>,
    /// Security options (`no-new-privileges`, `seccomp=unconfined`).
    pub security_opt: Vec<String>,
    /// `[runners.docker.sysctls]`: kernel parameters of the container.
    pub sysctls: BTreeMap<String, String>,
    /// `[runners.docker.tmpfs]`: tmpfs mounts of build containers, path → mount options.
    pub tmpfs: BTreeMap<String, String>,
    /// DNS search domains.
    pub dns_search: Vec<String>,
    /// Additional groups of the container's user.
    pub group_add: Vec<String>,
    /// User namespace mode (`host`).
    pub userns_mode: Option<String>,
    /// OCI runtime (`runc`, `runsc`).
    pub runtime: Option<String>,
    /// `[runners.docker.ulimit]`: resource limits of build containers, name → `soft[:hard]`
    /// (`nofile = "1024:2048"`).
    pub ulimit: BTreeMap<String, String>,
    /// Service containers privileged or not (else as `privileged`).
    pub services_privileged: Option<bool>,
    /// Security options of service containers.
    pub services_security_opt: Vec<String>,
    /// `[runners.docker.services_tmpfs]`: tmpfs mounts of service containers.
    pub services_tmpfs: BTreeMap<String, String>,
    /// Memory limit of service containers (`512m`).
    pub service_memory: Option<String>,
    /// Memory plus swap limit of service containers (`-1` unlimited).
    pub service_memory_swap: Option<String>,
    /// Soft memory limit of service containers.
    pub service_memory_reservation: Option<String>,
    /// CPU limit of service containers (`"0.5"`).
    pub service_cpus: Option<String>,
    /// CPUs service containers may run on.
    pub service_cpuset_cpus: Option<String>,
    /// Relative CPU weight of service containers.
    pub service_cpu_shares: Option<i64>,
    /// `[[runners.docker.services]]`: services started for every job, before the job's own.
    pub services: Vec<DockerService>,
}

/// One `[[runners.docker.services]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DockerService {
    /// The service image.
    pub name: String,
    /// Host names of the service on the job network, space or comma separated (besides the
    /// ones derived from the image name).
    pub alias: Option<String>,
    /// Overrides the image's command.
    pub command: Vec<String>,
    /// Overrides the image's entrypoint.
    pub entrypoint: Vec<String>,
    /// `["KEY=VALUE", …]` for the service container (entries without `=` are ignored).
    pub environment: Vec<String>,
}

/// `[runners.custom]`: the custom executor's executables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CustomConfig {
    /// Executable returning a JSON config override.
    pub config_exec: Option<String>,
    /// Its first arguments.
    pub config_args: Vec<String>,
    /// Its timeout in seconds (default 3600).
    pub config_exec_timeout: Option<i64>,
    /// Executable preparing the environment.
    pub prepare_exec: Option<String>,
    /// Its first arguments.
    pub prepare_args: Vec<String>,
    /// Its timeout in seconds (default 3600).
    pub prepare_exec_timeout: Option<i64>,
    /// Executable running each stage script (required to run jobs).
    pub run_exec: Option<String>,
    /// Its first arguments.
    pub run_args: Vec<String>,
    /// Executable cleaning up.
    pub cleanup_exec: Option<String>,
    /// Its first arguments.
    pub cleanup_args: Vec<String>,
    /// Its timeout in seconds (default 3600).
    pub cleanup_exec_timeout: Option<i64>,
    /// Seconds between SIGTERM and SIGKILL (default 600).
    pub graceful_kill_timeout: Option<i64>,
    /// Seconds after SIGKILL before giving up (default 600).
    pub force_kill_timeout: Option<i64>,
}

/// `[runners.cache]`, with the official runner's Capitalized keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    /// `s3`, `gcs` or `azure` (empty: local cache only).
    #[serde(rename = "Type")]
    pub cache_type: Option<String>,
    /// Prefix of cache object paths.
    #[serde(rename = "Path")]
    pub path: Option<String>,
    /// Share the cache between runners.
    #[serde(rename = "Shared")]
    pub shared: bool,
    /// Upload size limit in bytes (0: none).
    #[serde(rename = "MaxUploadedArchiveSize")]
    pub max_uploaded_archive_size: Option<i64>,
    /// `[runners.cache.s3]`.
    pub s3: Option<CacheS3>,
    /// `[runners.cache.gcs]`.
    pub gcs: Option<CacheGcs>,
    /// `[runners.cache.azure]`.
    pub azure: Option<CacheAzure>,
}

/// `[runners.cache.s3]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CacheS3 {
    /// `host:port` of the S3 server.
    #[serde(rename = "ServerAddress")]
    pub server_address: Option<String>,
    /// Access key.
    #[serde(rename = "AccessKey")]
    pub access_key: Option<String>,
    /// Secret key.
    #[serde(rename = "SecretKey")]
    pub secret_key: Option<String>,
    /// Session token.
    #[serde(rename = "SessionToken")]
    pub session_token: Option<String>,
    /// Bucket.
    #[serde(rename = "BucketName")]
    pub bucket_name: Option<String>,
    /// Region.
    #[serde(rename = "BucketLocation")]
    pub bucket_location: Option<String>,
    /// Plain HTTP.
    #[serde(rename = "Insecure")]
    pub insecure: bool,
    /// `iam` or `access-key`.
    #[serde(rename = "AuthenticationType")]
    pub authentication_type: Option<String>,
}

/// `[runners.cache.gcs]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CacheGcs {
    /// Service account JSON file.
    #[serde(rename = "CredentialsFile")]
    pub credentials_file: Option<String>,
    /// Service account email.
    #[serde(rename = "AccessID")]
    pub access_id: Option<String>,
    /// Private key.
    #[serde(rename = "PrivateKey")]
    pub private_key: Option<String>,
    /// Bucket.
    #[serde(rename = "BucketName")]
    pub bucket_name: Option<String>,
}

/// `[runners.cache.azure]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CacheAzure {
    /// Storage account.
    #[serde(rename = "AccountName")]
    pub account_name: Option<String>,
    /// Account key.
    #[serde(rename = "AccountKey")]
    pub account_key: Option<String>,
    /// Container.
    #[serde(rename = "ContainerName")]
    pub container_name: Option<String>,
    /// Storage domain.
    #[serde(rename = "StorageDomain")]
    pub storage_domain: Option<String>,
}

/// A TOML datetime (or RFC 3339 string); Go's zero time
/// `0001-01-01T00:00:00Z` reads as `None`.
fn opt_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Datetime(toml::value::Datetime),
        Text(String),
    }
    let text = match Option::<Raw>::deserialize(d)? {
        None => return Ok(None),
        Some(Raw::Datetime(dt)) => dt.to_string(),
        Some(Raw::Text(s)) if s.trim().is_empty() => return Ok(None),
        Some(Raw::Text(s)) => s,
    };
    let parsed = DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            // A local datetime without offset: read it as UTC.
            chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|n| n.and_utc())
        })
        .map_err(|e| serde::de::Error::custom(format!("invalid datetime {text:?}: {e}")))?;
    Ok(if is_go_zero_time(parsed) {
        None
    } else {
        Some(parsed)
    })
}

/// Whether `t` is Go's zero `time.Time` (year 1), which the official runner
/// writes for "no value".
pub fn is_go_zero_time(t: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    t.year() <= 1
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        None => Vec::new(),
        Some(Raw::One(s)) if s.is_empty() => Vec::new(),
        Some(Raw::One(s)) => vec![s],
        Some(Raw::Many(v)) => v,
    })
}

/// Expands `$VAR` and `${VAR}` as Go's `os.ExpandEnv` does (unset variables
/// become empty). Returns the value and the names that were not set.
pub fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let rest = &text[i + 1..];
        let (name, consumed) = if let Some(inner) = rest.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => {
                    out.push(c);
                    continue;
                }
            }
        } else {
            let len = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .unwrap_or(rest.len());
            (&rest[..len], len)
        };
        if name.is_empty() {
            out.push(c);
            continue;
        }
        match env(name) {
            Some(v) => out.push_str(&v),
            None => missing.push(name.to_owned()),
        }
        for _ in 0..consumed {
            chars.next();
        }
    }
    (out, missing)
}

/// The URL as the official runner's `fixCIURL` sees it: trimmed, trailing
/// slashes and a legacy `/ci` suffix removed. Requests go to
/// `<this>/api/v4/…`.
pub fn base_url(url: &str) -> String {
    let mut u = url.trim().trim_end_matches('/').to_owned();
    if let Some(stripped) = u.strip_suffix("/ci") {
        u = stripped.trim_end_matches('/').to_owned();
    }
    u
}

/// The canonical spelling of a server URL for comparing entries: like
/// [`base_url`], plus a mistaken `/api/v4` suffix removed and the scheme and
/// host lowercased.
pub fn canonical_server_url(url: &str) -> String {
    let mut u = base_url(url);
    if let Some(stripped) = u.strip_suffix("/api/v4") {
        u = stripped.trim_end_matches('/').to_owned();
    }
    match url::Url::parse(&u) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            let path = parsed.path().trim_end_matches('/');
            format!("{}://{host}{port}{path}", parsed.scheme())
        }
        Err(_) => u,
    }
}

impl fmt::Display for RunnerConfig {
    /// `"name" (token <short>, <url>)`: the loggable identity of an entry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = if self.token.is_empty() {
            "none".to_owned()
        } else {
            forerunner_protocol::tokens::short_token(&self.token)
        };
        write!(f, "\"{}\" (token {token}, {})", self.name, self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("glrt-secret".to_owned()),
            "HOST" => Some("gitlab.example.com".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn expands_env_like_go() {
        assert_eq!(expand_env("$TOKEN", &env), ("glrt-secret".into(), vec![]));
        assert_eq!(
            expand_env("https://${HOST}/", &env),
            ("https://gitlab.example.com/".into(), vec![])
        );
        assert_eq!(
            expand_env("$NOPE", &env),
            (String::new(), vec!["NOPE".to_owned()])
        );
        assert_eq!(expand_env("a$", &env), ("a$".into(), vec![]));
    }

    #[test]
    fn typed_view_with_defaults_and_expansion() {
        let text = r#"
concurrent = 4
check_interval = 0

[[runners]]
  name = "a"
  url = "https://${HOST}/"
  token = "$TOKEN"
  token_obtained_at = 2024-01-01T00:00:00Z
  token_expires_at = 0001-01-01T00:00:00Z
  executor = "docker"
  unhealthy_interval = "30m"
  environment = ["A=1", "broken", "B=x=y"]
  [runners.feature_flags]
    FF_USE_FASTZIP = true
  [runners.docker]
    image = "alpine"
    pull_policy = "if-not-present"
    cap_add = ["NET_ADMIN", "SYS_TIME"]
    cap_drop = ["DAC_OVERRIDE"]
    [[runners.docker.services]]
      name = "postgres:16"
      alias = "db, pg"
      environment = ["POSTGRES_PASSWORD=x"]
    [[runners.docker.services]]
      name = "busybox"
      entrypoint = ["/bin/sh", "-c"]
      command = ["exec httpd -f"]
  [runners.cache]
    Type = "s3"
    Shared = true
    [runners.cache.s3]
      BucketName = "b"
"#;
        let c = Config::parse(Path::new("config.toml"), text, &env).unwrap();
        assert_eq!(c.concurrent(), 4);
        assert_eq!(c.check_interval(), DEFAULT_CHECK_INTERVAL);
        let r = &c.runners[0];
        assert_eq!(r.url, "https://gitlab.example.com/");
        assert_eq!(r.token, "glrt-secret");
        assert_eq!(r.expansion.raw_token.as_deref(), Some("$TOKEN"));
        assert!(r.token_obtained_at.is_some());
        assert!(r.token_expires_at.is_none());
        assert_eq!(r.unhealthy_interval(), Duration::from_secs(1800));
        assert_eq!(r.unhealthy_requests_limit(), 3);
        assert_eq!(r.request_concurrency(), 1);
        assert_eq!(r.output_limit_kib(), 4096);
        assert_eq!(
            r.environment_pairs(),
            [("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        assert_eq!(r.feature_flag("FF_USE_FASTZIP"), Some(true));
        let d = r.docker.as_ref().unwrap();
        assert_eq!(d.pull_policy, ["if-not-present"]);
        assert_eq!(d.cap_add, ["NET_ADMIN", "SYS_TIME"]);
        assert_eq!(d.cap_drop, ["DAC_OVERRIDE"]);
        assert_eq!(d.services.len(), 2);
        assert_eq!(d.services[0].name, "postgres:16");
        assert_eq!(d.services[0].alias.as_deref(), Some("db, pg"));
        assert_eq!(d.services[0].environment, ["POSTGRES_PASSWORD=x"]);
        assert_eq!(d.services[1].entrypoint, ["/bin/sh", "-c"]);
        assert_eq!(d.services[1].command, ["exec httpd -f"]);
        let cache = r.cache.as_ref().unwrap();
        assert_eq!(cache.cache_type.as_deref(), Some("s3"));
        assert!(cache.shared);
        assert_eq!(cache.s3.as_ref().unwrap().bucket_name.as_deref(), Some("b"));
    }

    #[test]
    fn parse_errors_name_file_line_and_key() {
        let text = "concurrent = 1\n\n[[runners]]\n  name = \"a\"\n\n[[runners]]\n  name = \"b\"\n  [runners.docker]\n    privileged = \"yes\"\n";
        let err = Config::parse(Path::new("/etc/x/config.toml"), text, &env).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/etc/x/config.toml"), "{msg}");
        assert!(msg.contains("line 9"), "{msg}");
        assert!(msg.contains("runners[2].docker.privileged"), "{msg}");

        let err = Config::parse(Path::new("c.toml"), "concurrent = = 1\n", &env).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn default_path_follows_the_official_rule() {
        let path = default_config_path();
        if is_root() {
            assert_eq!(path, PathBuf::from("/etc/forerunner/config.toml"));
        } else {
            assert!(
                path.ends_with(".forerunner/config.toml"),
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn url_spellings() {
        assert_eq!(base_url("https://g.example.com/"), "https://g.example.com");
        assert_eq!(
            base_url("https://g.example.com/ci"),
            "https://g.example.com"
        );
        assert_eq!(
            canonical_server_url("HTTPS://G.example.com/api/v4/"),
            "https://g.example.com"
        );
        assert_eq!(
            canonical_server_url("https://g.example.com/gitlab/"),
            "https://g.example.com/gitlab"
        );
    }
}
