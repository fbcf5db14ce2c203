//! `forerunner run-single`: the job loop for one runner given on the
//! command line (or picked from config.toml with `-c` and `-r`), without
//! reloads or token rotation, as `gitlab-runner run-single`.
//!
//! `--max-builds N` exits after N jobs, `--wait-timeout S` after S seconds
//! without a job; `--shutdown-timeout` bounds the wait for running jobs on
//! a stop signal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{Config, RunnerConfig};
use crate::log::Logger;
use crate::run::{ConfigSource, RunOptions};

/// Run jobs for one runner given by flags, without a config file.
#[derive(Debug, clap::Args)]
pub struct RunSingleArgs {
    /// GitLab URL
    #[arg(short = 'u', long = "url", env = "CI_SERVER_URL", value_name = "URL")]
    url: Option<String>,
    /// Runner authentication token
    #[arg(
        short = 't',
        long = "token",
        env = "CI_SERVER_TOKEN",
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// Executor: shell, docker or custom
    #[arg(long = "executor", env = "RUNNER_EXECUTOR", value_name = "NAME")]
    executor: Option<String>,
    /// Runner name (shown in job logs)
    #[arg(long = "name", env = "RUNNER_NAME", value_name = "NAME")]
    name: Option<String>,
    /// Directory where builds are stored
    #[arg(long = "builds-dir", env = "RUNNER_BUILDS_DIR", value_name = "DIR")]
    builds_dir: Option<String>,
    /// Directory where build caches are stored
    #[arg(long = "cache-dir", env = "RUNNER_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<String>,
    /// Shell to generate scripts for
    #[arg(long = "shell", env = "RUNNER_SHELL", value_name = "SHELL")]
    shell: Option<String>,
    /// Maximum job log size in KiB
    #[arg(long = "output-limit", env = "RUNNER_OUTPUT_LIMIT", value_name = "KIB")]
    output_limit: Option<i64>,
    /// Custom environment variables injected into the build environment (KEY=VALUE)
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// CA bundle for the GitLab server
    #[arg(
        long = "tls-ca-file",
        env = "CI_SERVER_TLS_CA_FILE",
        value_name = "FILE"
    )]
    tls_ca_file: Option<String>,
    /// Client certificate for the GitLab server
    #[arg(
        long = "tls-cert-file",
        env = "CI_SERVER_TLS_CERT_FILE",
        value_name = "FILE"
    )]
    tls_cert_file: Option<String>,
    /// Client key for the GitLab server
    #[arg(
        long = "tls-key-file",
        env = "CI_SERVER_TLS_KEY_FILE",
        value_name = "FILE"
    )]
    tls_key_file: Option<String>,
    /// Take the runner from this config file (with --runner-name) instead of the flags
    #[arg(short = 'c', long = "config", env = "CONFIG_FILE", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Name of the [[runners]] entry to use from --config
    #[arg(short = 'r', long = "runner-name", value_name = "NAME")]
    runner_name: Option<String>,
    /// How many jobs to process before exiting (0: no limit)
    #[arg(long = "max-builds", default_value_t = 0, value_name = "N")]
    max_builds: u64,
    /// Exit after this many seconds without a job (0: never)
    #[arg(long = "wait-timeout", default_value_t = 0, value_name = "SECONDS")]
    wait_timeout: u64,
    /// Seconds to wait for running jobs after a stop signal (default 30)
    #[arg(long = "shutdown-timeout", default_value_t = 0, value_name = "SECONDS")]
    shutdown_timeout: u64,
    /// Print debug lines too
    #[arg(long = "debug", env = "RUNNER_DEBUG")]
    debug: bool,
}

impl RunSingleArgs {
    /// The runner entry: from config.toml (`-c` + `-r`) or from the flags.
    fn runner(&self) -> anyhow::Result<RunnerConfig> {
        if let Some(name) = &self.runner_name {
            let path = self
                .config
                .clone()
                .unwrap_or_else(crate::config::default_config_path);
            let config = Config::load(&path)?;
            return config
                .runners
                .into_iter()
                .find(|r| &r.name == name)
                .with_context(|| {
                    format!(
                        "there is no runner named {name:?} in {} (see `forerunner list --config {}`)",
                        path.display(),
                        path.display()
                    )
                });
        }
        let missing = |what: &str, flag: &str, env: &str| {
            anyhow::anyhow!("missing {what}: pass {flag} (or set {env}), or pick an entry of config.toml with --config and --runner-name")
        };
        let url = self
            .url
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("URL", "--url", "CI_SERVER_URL"))?;
        let token = self
            .token
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("token", "--token", "CI_SERVER_TOKEN"))?;
        let executor = self
            .executor
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("executor", "--executor", "RUNNER_EXECUTOR"))?;
        Ok(RunnerConfig {
            name: self.name.clone().unwrap_or_else(|| "run-single".to_owned()),
            url,
            token,
            executor,
            shell: self.shell.clone(),
            builds_dir: self.builds_dir.clone(),
            cache_dir: self.cache_dir.clone(),
            output_limit: self.output_limit,
            environment: self.env.clone(),
            tls_ca_file: self.tls_ca_file.clone(),
            tls_cert_file: self.tls_cert_file.clone(),
            tls_key_file: self.tls_key_file.clone(),
            ..RunnerConfig::default()
        })
    }
}

pub(super) async fn run(args: RunSingleArgs) -> anyhow::Result<ExitCode> {
    let logger = Logger::stderr();
    logger.runtime_platform();
    let runner = args.runner()?;
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(crate::config::default_config_path);
    let system_id = super::load_system_id(&config_path, &logger);
    let config = Config {
        concurrent: Some(1),
        runners: vec![runner],
        ..Config::default()
    };
    logger.info(
        "Starting runner for",
        &[
            ("executor", &config.runners[0].executor),
            ("runner", &super::short(&config.runners[0].token)),
            ("url", &config.runners[0].url),
        ],
    );
    let ended = crate::run::run(RunOptions {
        config: ConfigSource::Fixed(Box::new(config)),
        system_id,
        listen_address: None,
        max_builds: args.max_builds,
        wait_timeout: (args.wait_timeout > 0).then(|| Duration::from_secs(args.wait_timeout)),
        shutdown_timeout: (args.shutdown_timeout > 0)
            .then(|| Duration::from_secs(args.shutdown_timeout)),
        debug: args.debug,
    })
    .await?;
    Ok(super::exit_after(ended))
}
