//! `forerunner`: one binary for both halves of the GitLab Runner protocol.
//!
//! This file only parses the command line and dispatches: the coordinator's
//! commands live in `forerunner-coordinator`, the runner's in
//! `forerunner-runner`, `exec` (both together) in `forerunner-exec`. Errors are printed with their whole context chain
//! (`{:#}`), never as a panic or a debug dump.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "forerunner", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the coordinator: a GitLab-compatible server for runners.
    Serve(forerunner_coordinator::cli::ServeArgs),
    /// Administer a coordinator's data directory (users, tokens, groups, projects).
    Admin(forerunner_coordinator::cli::AdminArgs),
    /// Run this repository's .gitlab-ci.yml here, through an embedded coordinator and runner.
    Exec(forerunner_exec::ExecArgs),
    #[command(flatten)]
    Runner(forerunner_runner::cli::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("forerunner: failed to start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => forerunner_coordinator::cli::serve(args).await,
            Command::Admin(args) => forerunner_coordinator::cli::admin(args).await,
            Command::Exec(args) => forerunner_exec::exec(args).await,
            Command::Runner(cmd) => forerunner_runner::cli::run(cmd).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("forerunner: {err:#}");
            ExitCode::FAILURE
        }
    }
}
