//! `forerunner run-single`: the job loop for one runner given on the
//! command line (or picked from config.toml with `-c` and `-r`), without
//! reloads or token rotation, as `gitlab-runner run-single`.
//!
//! `--max-builds N` exits after N jobs, `--wait-timeout S` after S seconds
//! without a job; `--shutdown-timeout` bounds the wait for running jobs on
//! a stop signal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use toml_edit::Value;

use crate::cli::settings::RunnerSettingsArgs;
use crate::config::document::NewRunner;
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
    /// Runner name (shown in job logs)
    #[arg(long = "name", env = "RUNNER_NAME", value_name = "NAME")]
    name: Option<String>,
    #[command(flatten)]
    settings: RunnerSettingsArgs,
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
            .settings
            .executor
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("executor", "--executor", "RUNNER_EXECUTOR"))?;
        // The entry `register` would write for these flags, read back by
        // the typed reader: one flag means the same in both commands.
        let (settings, sections) =
            self.settings
                .entry(&executor, self.settings.docker.image.as_deref(), false);
        let mut keys = vec![
            (
                "name".to_owned(),
                Value::from(self.name.as_deref().unwrap_or("run-single")),
            ),
            ("url".to_owned(), Value::from(url)),
            ("token".to_owned(), Value::from(token)),
            ("executor".to_owned(), Value::from(executor)),
        ];
        keys.extend(settings);
        let text = NewRunner { keys, sections }.render();
        let config = Config::parse(Path::new("the command line"), &text, &|_| None)
            .context("the run-single flags do not make a valid runner entry")?;
        config
            .runners
            .into_iter()
            .next()
            .context("the run-single flags gave no runner entry")
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
        stop: None,
        log_file: None,
    })
    .await?;
    Ok(super::exit_after(ended))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: RunSingleArgs,
    }

    fn runner(args: &[&str]) -> anyhow::Result<RunnerConfig> {
        let cli = Cli::try_parse_from(std::iter::once("run-single").chain(args.iter().copied()))?;
        cli.args.runner()
    }

    #[test]
    fn flags_give_the_entry_register_would_write() {
        let r = runner(&[
            "--url",
            "http://127.0.0.1:1",
            "--token",
            "glrt-t1_abc",
            "--executor",
            "docker",
            "--docker-image",
            "alpine:3",
            "--docker-cap-add",
            "NET_ADMIN",
            "--docker-pull-policy",
            "never",
            "--docker-memory-swap",
            "-1",
            "--docker-oom-kill-disable",
            "--docker-cpu-shares",
            "512",
            "--docker-devices",
            "/dev/net/tun,/dev/fuse",
            "--docker-security-opt",
            "no-new-privileges",
            "--docker-userns",
            "host",
            "--docker-services_privileged=false",
            "--docker-service-memory",
            "256m",
            "--docker-service-cpu-shares",
            "128",
            "--builds-dir",
            "/b",
            "--env",
            "A=1",
            "--output-limit",
            "64",
        ])
        .unwrap();
        assert_eq!(r.name, "run-single");
        assert_eq!(r.executor, "docker");
        assert_eq!(r.builds_dir.as_deref(), Some("/b"));
        assert_eq!(r.environment, ["A=1"]);
        assert_eq!(r.output_limit, Some(64));
        let docker = r
            .docker
            .expect("[runners.docker] from the --docker-* flags");
        assert_eq!(docker.image.as_deref(), Some("alpine:3"));
        assert_eq!(docker.cap_add, ["NET_ADMIN"]);
        assert_eq!(docker.memory_swap.as_deref(), Some("-1"));
        assert!(docker.oom_kill_disable);
        assert_eq!(docker.cpu_shares, Some(512));
        assert_eq!(docker.devices, ["/dev/net/tun", "/dev/fuse"]);
        assert_eq!(docker.security_opt, ["no-new-privileges"]);
        assert_eq!(docker.userns_mode.as_deref(), Some("host"));
        assert_eq!(docker.services_privileged, Some(false));
        assert_eq!(docker.service_memory.as_deref(), Some("256m"));
        assert_eq!(docker.service_cpu_shares, Some(128));
        // run-single does not add register's defaults (the /cache volume).
        assert!(docker.volumes.is_empty(), "{:?}", docker.volumes);

        let r = runner(&[
            "-u",
            "http://127.0.0.1:1",
            "-t",
            "glrt-t1_abc",
            "--executor",
            "custom",
            "--custom-run-exec",
            "/x/run.sh",
            "--custom-run-args",
            "a,b",
        ])
        .unwrap();
        let custom = r
            .custom
            .expect("[runners.custom] from the --custom-* flags");
        assert_eq!(custom.run_exec.as_deref(), Some("/x/run.sh"));
        assert_eq!(custom.run_args, ["a", "b"]);
    }

    #[test]
    fn missing_flags_say_which_and_how() {
        let err = runner(&["--url", "http://127.0.0.1:1", "--token", "t"]).unwrap_err();
        assert!(err.to_string().contains("--executor"), "{err}");
        let err = runner(&["--executor", "shell"]).unwrap_err();
        assert!(err.to_string().contains("--url"), "{err}");
    }
}
