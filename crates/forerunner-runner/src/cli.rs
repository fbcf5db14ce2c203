//! Runner subcommands.
use std::process::ExitCode;

/// The runner's subcommands, flattened into `forerunner`'s command list.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the runners in config.toml.
    List,
}

/// Runs a runner subcommand.
pub async fn run(_cmd: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
