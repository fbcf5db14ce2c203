//! `forerunner list`: the configured runners, in the official format on
//! stderr — `Listing configured runners  ConfigFile=…` then one line per
//! entry with `Executor`, `Token` and `URL`.
//!
//! The official command prints the full token here (and only here); so do
//! we, so that scripts parsing its output keep working. A file that cannot
//! be loaded is a warning and exit code 0, as in the official runner.

use std::process::ExitCode;

use crate::cli::ConfigArg;
use crate::config::Config;
use crate::log::Logger;

/// List the runners in config.toml (on stderr, as gitlab-runner does).
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    config: ConfigArg,
}

pub(crate) fn run(args: ListArgs) -> anyhow::Result<ExitCode> {
    let log = Logger::stderr();
    log.runtime_platform();
    let path = args.config.path();
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(err) => {
            log.warn(&err.to_string(), &[]);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let file = path.display().to_string();
    log.info("Listing configured runners", &[("ConfigFile", &file)]);
    for runner in &config.runners {
        log.info(
            &runner.name,
            &[
                ("Executor", &runner.executor),
                ("Token", &runner.token),
                ("URL", &runner.url),
            ],
        );
    }
    Ok(ExitCode::SUCCESS)
}
