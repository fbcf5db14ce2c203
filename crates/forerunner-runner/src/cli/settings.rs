//! The runner-settings flags that `register` and `run-single` share, as the
//! official runner shares them (both embed its `RunnerSettings`): executor,
//! shell, directories, limits, `--env`, the `--tls-*` files, and the
//! `[runners.docker]`, `[runners.custom]` and `[runners.cache]` flags.
//!
//! [`RunnerSettingsArgs::entry`] turns them into the keys and sub-tables of
//! a `[[runners]]` entry: `register` writes that entry to config.toml, and
//! `run-single` reads the very same entry back through the typed config
//! reader, so one flag means one thing in both commands.

use clap::builder::BoolishValueParser;
use clap::ArgAction;
use toml_edit::{Array, Value};

/// A `[runners.<name>]` sub-table: its name and its pairs, in order.
pub(super) type Section = (String, Vec<(String, Value)>);

/// Runner settings given as flags (with the official environment variables).
#[derive(Debug, Default, clap::Args)]
pub(super) struct RunnerSettingsArgs {
    /// CA bundle to trust for the GitLab server
    #[arg(
        long = "tls-ca-file",
        env = "CI_SERVER_TLS_CA_FILE",
        value_name = "FILE"
    )]
    pub(super) tls_ca_file: Option<String>,
    /// Client certificate for the GitLab server
    #[arg(
        long = "tls-cert-file",
        env = "CI_SERVER_TLS_CERT_FILE",
        value_name = "FILE"
    )]
    pub(super) tls_cert_file: Option<String>,
    /// Client key for the GitLab server
    #[arg(
        long = "tls-key-file",
        env = "CI_SERVER_TLS_KEY_FILE",
        value_name = "FILE"
    )]
    pub(super) tls_key_file: Option<String>,
    /// Executor: shell, docker or custom
    #[arg(long, env = "RUNNER_EXECUTOR")]
    pub(super) executor: Option<String>,
    /// Shell to generate scripts for (bash, sh)
    #[arg(long, env = "RUNNER_SHELL")]
    pub(super) shell: Option<String>,
    /// Maximum number of jobs this runner handles at once (0: unlimited)
    #[arg(long, env = "RUNNER_LIMIT")]
    pub(super) limit: Option<i64>,
    /// Maximum concurrent job requests
    #[arg(long, env = "RUNNER_REQUEST_CONCURRENCY")]
    pub(super) request_concurrency: Option<i64>,
    /// Maximum job log size in KiB
    #[arg(long, env = "RUNNER_OUTPUT_LIMIT")]
    pub(super) output_limit: Option<i64>,
    /// Directory where builds are stored
    #[arg(long, env = "RUNNER_BUILDS_DIR")]
    pub(super) builds_dir: Option<String>,
    /// Directory where build caches are stored
    #[arg(long, env = "RUNNER_CACHE_DIR")]
    pub(super) cache_dir: Option<String>,
    /// URL used to clone repositories instead of the GitLab URL
    #[arg(long, env = "CLONE_URL")]
    pub(super) clone_url: Option<String>,
    /// Custom environment variable for jobs, KEY=VALUE (repeatable)
    #[arg(long = "env", env = "RUNNER_ENV", value_delimiter = ',')]
    pub(super) env: Vec<String>,
    #[command(flatten)]
    pub(super) docker: DockerArgs,
    #[command(flatten)]
    pub(super) custom: CustomArgs,
    #[command(flatten)]
    pub(super) cache: CacheArgs,
}

impl RunnerSettingsArgs {
    /// The `[[runners]]` keys (after the identity keys: name, url, token, …)
    /// and the sub-tables these flags give an entry of `executor`.
    /// `docker_defaults` adds the official runner's `[runners.docker]`
    /// defaults (`register` without a template's `[runners.docker]`).
    pub(super) fn entry(
        &self,
        executor: &str,
        docker_image: Option<&str>,
        docker_defaults: bool,
    ) -> (Vec<(String, Value)>, Vec<Section>) {
        let mut keys: Vec<(String, Value)> = Vec::new();
        let mut opt_str = |k: &str, v: &Option<String>| {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                keys.push((k.into(), Value::from(v)));
            }
        };
        opt_str("tls-ca-file", &self.tls_ca_file);
        opt_str("tls-cert-file", &self.tls_cert_file);
        opt_str("tls-key-file", &self.tls_key_file);
        opt_str("shell", &self.shell);
        opt_str("builds_dir", &self.builds_dir);
        opt_str("cache_dir", &self.cache_dir);
        opt_str("clone_url", &self.clone_url);
        for (k, v) in [
            ("limit", self.limit),
            ("request_concurrency", self.request_concurrency),
            ("output_limit", self.output_limit),
        ] {
            if let Some(v) = v {
                keys.push((k.into(), Value::from(v)));
            }
        }
        if !self.env.is_empty() {
            keys.push(("environment".into(), str_array(&self.env)));
        }

        let mut sections = Vec::new();
        if let Some(cache) = cache_section(&self.cache) {
            sections.extend(cache);
        }
        if executor == "docker" || docker_given(&self.docker) {
            sections.push((
                "docker".to_owned(),
                docker_section(&self.docker, docker_image, docker_defaults),
            ));
        }
        let custom = custom_section(&self.custom);
        if executor == "custom" || !custom.is_empty() {
            sections.push(("custom".to_owned(), custom));
        }
        (keys, sections)
    }
}

/// `[runners.docker]` flags, named as the official runner names them.
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Docker executor")]
pub(super) struct DockerArgs {
    /// Docker daemon address
    #[arg(long = "docker-host", env = "DOCKER_HOST")]
    host: Option<String>,
    /// Default Docker image for jobs
    #[arg(long = "docker-image", env = "DOCKER_IMAGE")]
    pub(super) image: Option<String>,
    /// Run containers in privileged mode
    #[arg(long = "docker-privileged", env = "DOCKER_PRIVILEGED", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    privileged: Option<bool>,
    /// Add a Linux capability to build containers (repeatable)
    #[arg(long = "docker-cap-add", env = "DOCKER_CAP_ADD", value_delimiter = ',')]
    cap_add: Vec<String>,
    /// Drop a Linux capability from build containers (repeatable)
    #[arg(
        long = "docker-cap-drop",
        env = "DOCKER_CAP_DROP",
        value_delimiter = ','
    )]
    cap_drop: Vec<String>,
    /// Bind-mount a volume (repeatable)
    #[arg(long = "docker-volumes", env = "DOCKER_VOLUMES", value_delimiter = ',')]
    volumes: Vec<String>,
    /// Image pull policy: never, if-not-present, always (repeatable)
    #[arg(
        long = "docker-pull-policy",
        env = "DOCKER_PULL_POLICY",
        value_delimiter = ','
    )]
    pull_policy: Vec<String>,
    /// Disable the automatic cache volume
    #[arg(long = "docker-disable-cache", env = "DOCKER_DISABLE_CACHE", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    disable_cache: Option<bool>,
    /// Directory for Docker caches
    #[arg(
        id = "docker_cache_dir",
        long = "docker-cache-dir",
        env = "DOCKER_CACHE_DIR"
    )]
    cache_dir: Option<String>,
    /// Container network mode
    #[arg(long = "docker-network-mode", env = "DOCKER_NETWORK_MODE")]
    network_mode: Option<String>,
    /// Helper image override
    #[arg(long = "docker-helper-image", env = "DOCKER_HELPER_IMAGE")]
    helper_image: Option<String>,
    /// Images jobs may use (repeatable)
    #[arg(
        long = "docker-allowed-images",
        env = "DOCKER_ALLOWED_IMAGES",
        value_delimiter = ','
    )]
    allowed_images: Vec<String>,
    /// Services jobs may use (repeatable)
    #[arg(
        long = "docker-allowed-services",
        env = "DOCKER_ALLOWED_SERVICES",
        value_delimiter = ','
    )]
    allowed_services: Vec<String>,
    /// Pull policies jobs may ask for (repeatable)
    #[arg(
        long = "docker-allowed-pull-policies",
        env = "DOCKER_ALLOWED_PULL_POLICIES",
        value_delimiter = ','
    )]
    allowed_pull_policies: Vec<String>,
    /// Memory limit (e.g. 512m)
    #[arg(long = "docker-memory", env = "DOCKER_MEMORY")]
    memory: Option<String>,
    /// Number of CPUs
    #[arg(long = "docker-cpus", env = "DOCKER_CPUS")]
    cpus: Option<String>,
    /// Extra host-to-IP mappings (repeatable)
    #[arg(
        long = "docker-extra-hosts",
        env = "DOCKER_EXTRA_HOSTS",
        value_delimiter = ','
    )]
    extra_hosts: Vec<String>,
    /// DNS servers (repeatable)
    #[arg(long = "docker-dns", env = "DOCKER_DNS", value_delimiter = ',')]
    dns: Vec<String>,
    /// User inside the container
    #[arg(long = "docker-user", env = "DOCKER_USER")]
    user: Option<String>,
    /// Seconds to wait for services
    #[arg(
        long = "docker-wait-for-services-timeout",
        env = "DOCKER_WAIT_FOR_SERVICES_TIMEOUT"
    )]
    wait_for_services_timeout: Option<i64>,
    /// Shared memory size in bytes
    #[arg(long = "docker-shm-size", env = "DOCKER_SHM_SIZE")]
    shm_size: Option<i64>,
    /// Memory plus swap limit (e.g. 1g; -1 for unlimited swap)
    #[arg(
        long = "docker-memory-swap",
        env = "DOCKER_MEMORY_SWAP",
        allow_hyphen_values = true
    )]
    memory_swap: Option<String>,
    /// Soft memory limit (e.g. 256m)
    #[arg(long = "docker-memory-reservation", env = "DOCKER_MEMORY_RESERVATION")]
    memory_reservation: Option<String>,
    /// Do not kill processes when a container runs out of memory
    #[arg(long = "docker-oom-kill-disable", env = "DOCKER_OOM_KILL_DISABLE", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    oom_kill_disable: Option<bool>,
    /// CPUs containers may run on (e.g. 0-3)
    #[arg(long = "docker-cpuset-cpus", env = "DOCKER_CPUSET_CPUS")]
    cpuset_cpus: Option<String>,
    /// Relative CPU weight
    #[arg(long = "docker-cpu-shares", env = "DOCKER_CPU_SHARES")]
    cpu_shares: Option<i64>,
    /// Host devices, host[:container[:permissions]] (repeatable)
    #[arg(long = "docker-devices", env = "DOCKER_DEVICES", value_delimiter = ',')]
    devices: Vec<String>,
    /// Security options (repeatable)
    #[arg(
        long = "docker-security-opt",
        env = "DOCKER_SECURITY_OPT",
        value_delimiter = ','
    )]
    security_opt: Vec<String>,
    /// DNS search domains (repeatable)
    #[arg(
        long = "docker-dns-search",
        env = "DOCKER_DNS_SEARCH",
        value_delimiter = ','
    )]
    dns_search: Vec<String>,
    /// Additional groups of the container's user (repeatable)
    #[arg(
        long = "docker-group-add",
        env = "DOCKER_GROUP_ADD",
        value_delimiter = ','
    )]
    group_add: Vec<String>,
    /// User namespace mode
    #[arg(long = "docker-userns", env = "DOCKER_USERNS_MODE")]
    userns_mode: Option<String>,
    /// OCI runtime (e.g. runc)
    #[arg(long = "docker-runtime", env = "DOCKER_RUNTIME")]
    runtime: Option<String>,
    /// Service containers privileged or not (default: as --docker-privileged)
    #[arg(long = "docker-services_privileged", env = "DOCKER_SERVICES_PRIVILEGED", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    services_privileged: Option<bool>,
    /// Security options of service containers (repeatable)
    #[arg(
        long = "docker-services-security-opt",
        env = "DOCKER_SERVICES_SECURITY_OPT",
        value_delimiter = ','
    )]
    services_security_opt: Vec<String>,
    /// Memory limit of service containers (e.g. 512m)
    #[arg(long = "docker-service-memory", env = "DOCKER_SERVICE_MEMORY")]
    service_memory: Option<String>,
    /// Memory plus swap limit of service containers (-1 for unlimited swap)
    #[arg(
        long = "docker-service-memory-swap",
        env = "DOCKER_SERVICE_MEMORY_SWAP",
        allow_hyphen_values = true
    )]
    service_memory_swap: Option<String>,
    /// Soft memory limit of service containers
    #[arg(
        long = "docker-service-memory-reservation",
        env = "DOCKER_SERVICE_MEMORY_RESERVATION"
    )]
    service_memory_reservation: Option<String>,
    /// Number of CPUs of service containers
    #[arg(long = "docker-service-cpus", env = "DOCKER_SERVICE_CPUS")]
    service_cpus: Option<String>,
    /// CPUs service containers may run on
    #[arg(
        long = "docker-service-cpuset-cpus",
        env = "DOCKER_SERVICE_CPUSET_CPUS"
    )]
    service_cpuset_cpus: Option<String>,
    /// Relative CPU weight of service containers
    #[arg(long = "docker-service-cpu-shares", env = "DOCKER_SERVICE_CPU_SHARES")]
    service_cpu_shares: Option<i64>,
}

/// `[runners.custom]` flags, named as the official runner names them.
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Custom executor")]
pub(super) struct CustomArgs {
    /// Executable that returns a JSON config override
    #[arg(long = "custom-config-exec", env = "CUSTOM_CONFIG_EXEC")]
    config_exec: Option<String>,
    /// Arguments for the config executable (repeatable)
    #[arg(
        long = "custom-config-args",
        env = "CUSTOM_CONFIG_ARGS",
        value_delimiter = ','
    )]
    config_args: Vec<String>,
    /// Timeout of the config executable in seconds
    #[arg(
        long = "custom-config-exec-timeout",
        env = "CUSTOM_CONFIG_EXEC_TIMEOUT"
    )]
    config_exec_timeout: Option<i64>,
    /// Executable that prepares the environment
    #[arg(long = "custom-prepare-exec", env = "CUSTOM_PREPARE_EXEC")]
    prepare_exec: Option<String>,
    /// Arguments for the prepare executable (repeatable)
    #[arg(
        long = "custom-prepare-args",
        env = "CUSTOM_PREPARE_ARGS",
        value_delimiter = ','
    )]
    prepare_args: Vec<String>,
    /// Timeout of the prepare executable in seconds
    #[arg(
        long = "custom-prepare-exec-timeout",
        env = "CUSTOM_PREPARE_EXEC_TIMEOUT"
    )]
    prepare_exec_timeout: Option<i64>,
    /// Executable that runs each script (required for the custom executor)
    #[arg(long = "custom-run-exec", env = "CUSTOM_RUN_EXEC")]
    pub(super) run_exec: Option<String>,
    /// Arguments for the run executable (repeatable)
    #[arg(
        long = "custom-run-args",
        env = "CUSTOM_RUN_ARGS",
        value_delimiter = ','
    )]
    run_args: Vec<String>,
    /// Executable that cleans up
    #[arg(long = "custom-cleanup-exec", env = "CUSTOM_CLEANUP_EXEC")]
    cleanup_exec: Option<String>,
    /// Arguments for the cleanup executable (repeatable)
    #[arg(
        long = "custom-cleanup-args",
        env = "CUSTOM_CLEANUP_ARGS",
        value_delimiter = ','
    )]
    cleanup_args: Vec<String>,
    /// Timeout of the cleanup executable in seconds
    #[arg(
        long = "custom-cleanup-exec-timeout",
        env = "CUSTOM_CLEANUP_EXEC_TIMEOUT"
    )]
    cleanup_exec_timeout: Option<i64>,
    /// Seconds between SIGTERM and SIGKILL
    #[arg(
        long = "custom-graceful-kill-timeout",
        env = "CUSTOM_GRACEFUL_KILL_TIMEOUT"
    )]
    graceful_kill_timeout: Option<i64>,
    /// Seconds to wait after SIGKILL
    #[arg(long = "custom-force-kill-timeout", env = "CUSTOM_FORCE_KILL_TIMEOUT")]
    force_kill_timeout: Option<i64>,
}

/// `[runners.cache]` flags, named as the official runner names them.
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Distributed cache")]
pub(super) struct CacheArgs {
    /// Cache type: s3, gcs or azure
    #[arg(long = "cache-type", env = "CACHE_TYPE")]
    cache_type: Option<String>,
    /// Prefix of cache object paths
    #[arg(long = "cache-path", env = "CACHE_PATH")]
    path: Option<String>,
    /// Share the cache between runners
    #[arg(long = "cache-shared", env = "CACHE_SHARED", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    shared: Option<bool>,
    /// S3 server address (host:port)
    #[arg(long = "cache-s3-server-address", env = "CACHE_S3_SERVER_ADDRESS")]
    s3_server_address: Option<String>,
    /// S3 access key
    #[arg(
        long = "cache-s3-access-key",
        env = "CACHE_S3_ACCESS_KEY",
        hide_env_values = true
    )]
    s3_access_key: Option<String>,
    /// S3 secret key
    #[arg(
        long = "cache-s3-secret-key",
        env = "CACHE_S3_SECRET_KEY",
        hide_env_values = true
    )]
    s3_secret_key: Option<String>,
    /// S3 bucket
    #[arg(long = "cache-s3-bucket-name", env = "CACHE_S3_BUCKET_NAME")]
    s3_bucket_name: Option<String>,
    /// S3 region
    #[arg(long = "cache-s3-bucket-location", env = "CACHE_S3_BUCKET_LOCATION")]
    s3_bucket_location: Option<String>,
    /// Use plain HTTP for S3
    #[arg(long = "cache-s3-insecure", env = "CACHE_S3_INSECURE", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    s3_insecure: Option<bool>,
    /// S3 authentication: iam or access-key
    #[arg(
        long = "cache-s3-authentication_type",
        env = "CACHE_S3_AUTHENTICATION_TYPE"
    )]
    s3_authentication_type: Option<String>,
}

fn docker_given(d: &DockerArgs) -> bool {
    d.image.is_some()
        || d.privileged.is_some()
        || !d.volumes.is_empty()
        || !d.pull_policy.is_empty()
        || d.host.is_some()
}

fn docker_section(d: &DockerArgs, image: Option<&str>, defaults: bool) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut push = |k: &str, v: Value| out.push((k.to_owned(), v));
    if let Some(h) = &d.host {
        push("host", Value::from(h.as_str()));
    }
    if defaults {
        push("tls_verify", Value::from(false));
    }
    if let Some(i) = image {
        push("image", Value::from(i));
    }
    if defaults || d.privileged.is_some() {
        push("privileged", Value::from(d.privileged.unwrap_or(false)));
    }
    if defaults {
        push("disable_entrypoint_overwrite", Value::from(false));
    }
    if defaults || d.oom_kill_disable.is_some() {
        push(
            "oom_kill_disable",
            Value::from(d.oom_kill_disable.unwrap_or(false)),
        );
    }
    let disable_cache = d.disable_cache.unwrap_or(false);
    if defaults || d.disable_cache.is_some() {
        push("disable_cache", Value::from(disable_cache));
    }
    let mut volumes = d.volumes.clone();
    // As the official runner: a /cache volume unless caching is disabled.
    if defaults && !disable_cache && !volumes.iter().any(|v| v.split(':').any(|p| p == "/cache")) {
        volumes.push("/cache".to_owned());
    }
    if defaults || !volumes.is_empty() {
        push("volumes", str_array(&volumes));
    }
    match d.pull_policy.as_slice() {
        [] => {}
        [one] => push("pull_policy", Value::from(one.as_str())),
        many => push("pull_policy", str_array(many)),
    }
    for (k, v) in [
        ("cache_dir", &d.cache_dir),
        ("network_mode", &d.network_mode),
        ("helper_image", &d.helper_image),
        ("memory", &d.memory),
        ("memory_swap", &d.memory_swap),
        ("memory_reservation", &d.memory_reservation),
        ("cpus", &d.cpus),
        ("cpuset_cpus", &d.cpuset_cpus),
        ("user", &d.user),
        ("userns_mode", &d.userns_mode),
        ("runtime", &d.runtime),
        ("service_memory", &d.service_memory),
        ("service_memory_swap", &d.service_memory_swap),
        ("service_memory_reservation", &d.service_memory_reservation),
        ("service_cpus", &d.service_cpus),
        ("service_cpuset_cpus", &d.service_cpuset_cpus),
    ] {
        if let Some(v) = v {
            push(k, Value::from(v.as_str()));
        }
    }
    for (k, v) in [
        ("cap_add", &d.cap_add),
        ("cap_drop", &d.cap_drop),
        ("allowed_images", &d.allowed_images),
        ("allowed_services", &d.allowed_services),
        ("allowed_pull_policies", &d.allowed_pull_policies),
        ("extra_hosts", &d.extra_hosts),
        ("dns", &d.dns),
        ("dns_search", &d.dns_search),
        ("devices", &d.devices),
        ("security_opt", &d.security_opt),
        ("group_add", &d.group_add),
        ("services_security_opt", &d.services_security_opt),
    ] {
        if !v.is_empty() {
            push(k, str_array(v));
        }
    }
    for (k, v) in [
        ("wait_for_services_timeout", d.wait_for_services_timeout),
        ("cpu_shares", d.cpu_shares),
        ("service_cpu_shares", d.service_cpu_shares),
    ] {
        if let Some(v) = v {
            push(k, Value::from(v));
        }
    }
    if let Some(p) = d.services_privileged {
        push("services_privileged", Value::from(p));
    }
    if defaults || d.shm_size.is_some() {
        push("shm_size", Value::from(d.shm_size.unwrap_or(0)));
    }
    out
}

fn custom_section(c: &CustomArgs) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut exec = |k: &str,
                    v: &Option<String>,
                    args_key: &str,
                    args: &[String],
                    timeout: Option<(&str, Option<i64>)>| {
        if let Some(v) = v {
            out.push((k.to_owned(), Value::from(v.as_str())));
        }
        if !args.is_empty() {
            out.push((args_key.to_owned(), str_array(args)));
        }
        if let Some((tk, Some(t))) = timeout {
            out.push((tk.to_owned(), Value::from(t)));
        }
    };
    exec(
        "config_exec",
        &c.config_exec,
        "config_args",
        &c.config_args,
        Some(("config_exec_timeout", c.config_exec_timeout)),
    );
    exec(
        "prepare_exec",
        &c.prepare_exec,
        "prepare_args",
        &c.prepare_args,
        Some(("prepare_exec_timeout", c.prepare_exec_timeout)),
    );
    exec("run_exec", &c.run_exec, "run_args", &c.run_args, None);
    exec(
        "cleanup_exec",
        &c.cleanup_exec,
        "cleanup_args",
        &c.cleanup_args,
        Some(("cleanup_exec_timeout", c.cleanup_exec_timeout)),
    );
    if let Some(t) = c.graceful_kill_timeout {
        out.push(("graceful_kill_timeout".into(), Value::from(t)));
    }
    if let Some(t) = c.force_kill_timeout {
        out.push(("force_kill_timeout".into(), Value::from(t)));
    }
    out
}

fn cache_section(c: &CacheArgs) -> Option<Vec<Section>> {
    let mut cache: Vec<(String, Value)> = Vec::new();
    if let Some(t) = &c.cache_type {
        cache.push(("Type".into(), Value::from(t.as_str())));
    }
    if let Some(p) = &c.path {
        cache.push(("Path".into(), Value::from(p.as_str())));
    }
    if let Some(s) = c.shared {
        cache.push(("Shared".into(), Value::from(s)));
    }
    let mut s3: Vec<(String, Value)> = Vec::new();
    for (k, v) in [
        ("ServerAddress", &c.s3_server_address),
        ("AccessKey", &c.s3_access_key),
        ("SecretKey", &c.s3_secret_key),
        ("BucketName", &c.s3_bucket_name),
        ("BucketLocation", &c.s3_bucket_location),
        ("AuthenticationType", &c.s3_authentication_type),
    ] {
        if let Some(v) = v {
            s3.push((k.into(), Value::from(v.as_str())));
        }
    }
    if let Some(i) = c.s3_insecure {
        s3.push(("Insecure".into(), Value::from(i)));
    }
    if cache.is_empty() && s3.is_empty() {
        return None;
    }
    let mut out = vec![("cache".to_owned(), cache)];
    if !s3.is_empty() {
        out.push(("cache.s3".to_owned(), s3));
    }
    Some(out)
}

pub(super) fn str_array(items: &[String]) -> Value {
    let mut a = Array::new();
    for i in items {
        a.push(i.as_str());
    }
    Value::Array(a)
}
