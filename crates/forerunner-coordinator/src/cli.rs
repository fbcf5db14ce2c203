//! `forerunner serve` and `forerunner admin`.
use std::process::ExitCode;

/// Arguments of `forerunner serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Arguments of `forerunner admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {}

/// Runs `forerunner serve`.
pub async fn serve(_args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

/// Runs `forerunner admin`.
pub async fn admin(_args: AdminArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
