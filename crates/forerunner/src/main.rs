//! `forerunner`: one binary for both halves of the GitLab Runner protocol.
//!
//! This file only parses the command line and dispatches: the coordinator's
//! commands live in `forerunner-coordinator`, the runner's in
//! `forerunner-runner`. Errors are printed with their whole context chain
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
    #[command(flatten)]
    Runner(forerunner_runner::cli::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The coordinator serves many clients at once: a worker per core. The
    // runner's commands wait on the network and on job processes (CPU work
    // such as zipping goes to the blocking pool), so one thread runs them:
    // no idle worker threads with their stacks and malloc arenas.
    let mut builder = match cli.command {
        Command::Serve(_) | Command::Admin(_) => tokio::runtime::Builder::new_multi_thread(),
        Command::Runner(_) => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
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
