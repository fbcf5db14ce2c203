//! `forerunner run`: the job loop over every `[[runners]]` entry of
//! config.toml, as `gitlab-runner run`.
//!
//! Flags as the official runner: `-c/--config` (`CONFIG_FILE`),
//! `-d/--working-directory` (builds and caches go there unless the entry
//! says otherwise), `--listen-address` (`LISTEN_ADDRESS`, the metrics
//! server). `-n/--service` is accepted for service files written for
//! gitlab-runner and ignored; `-u/--user` is refused with an explanation.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::ConfigArg;
use crate::log::Logger;
use crate::run::{ConfigSource, RunOptions};

/// Run the jobs of every runner in config.toml until stopped.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Working directory: relative builds_dir and cache_dir are resolved against it
    #[arg(short = 'd', long = "working-directory", value_name = "DIR")]
    working_directory: Option<PathBuf>,
    /// Metrics server address (host:port; port 9252 when omitted); overrides listen_address
    #[arg(long = "listen-address", env = "LISTEN_ADDRESS", value_name = "ADDR")]
    listen_address: Option<String>,
    /// Service name (accepted for gitlab-runner service files; unused)
    #[arg(short = 'n', long = "service", value_name = "NAME")]
    service: Option<String>,
    /// Run jobs as this user (not supported: jobs run as the user forerunner runs as)
    #[arg(short = 'u', long = "user", value_name = "USER")]
    user: Option<String>,
    /// Print debug lines too
    #[arg(long = "debug", env = "RUNNER_DEBUG")]
    debug: bool,
}

pub(super) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let logger = Logger::stderr();
    let path = std::path::absolute(args.config.path())
        .context("failed to resolve the config file path")?;
    if let Some(user) = &args.user {
        anyhow::bail!(
            "--user {user} is not supported: forerunner runs jobs as the user it runs as (start it as {user} instead, e.g. with `User={user}` in the systemd unit)"
        );
    }
    let _ = &args.service;
    if let Some(dir) = &args.working_directory {
        std::env::set_current_dir(dir).with_context(|| {
            format!(
                "failed to change to the working directory {} (create it or pass another --working-directory)",
                dir.display()
            )
        })?;
    }
    logger.runtime_platform();
    if !path.exists() {
        anyhow::bail!(
            "config file {} does not exist (register a runner first with `forerunner register --config {}`, or pass the right --config)",
            path.display(),
            path.display()
        );
    }
    let system_id = super::load_system_id(&path, &logger);
    logger.info(
        &format!("Starting multi-runner from {}...", path.display()),
        &[("builds", "0")],
    );
    let ended = crate::run::run(RunOptions {
        config: ConfigSource::File(path),
        system_id,
        listen_address: args.listen_address,
        max_builds: 0,
        wait_timeout: None,
        shutdown_timeout: None,
        debug: args.debug,
        stop: None,
        log_file: None,
    })
    .await?;
    Ok(super::exit_after(ended))
}
