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

/// Each subcommand's arguments are defined only when it runs (`defer`): a
/// runner does not build `serve`'s or `register`'s options, and does not
/// touch their code.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
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
    // The coordinator serves many clients at once: a worker per core (exec
    // embeds a coordinator and a runner in one process). The runner's
    // commands wait on the network and on job processes (CPU work such as
    // zipping goes to the blocking pool), so one thread runs them: no idle
    // worker threads with their stacks and malloc arenas.
    let mut builder = match cli.command {
        Command::Serve(_) | Command::Admin(_) | Command::Exec(_) => {
            tokio::runtime::Builder::new_multi_thread()
        }
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// A deferred subcommand gets its `Args` (and their doc comment as its
    /// about) when it runs, after the variant's doc comment: both must say
    /// the same, or `forerunner X --help` would not match the command list.
    #[test]
    fn deferred_subcommands_keep_the_about_of_the_command_list() {
        let cmd = super::Cli::command();
        let about = |c: &clap::Command| c.get_about().map(ToString::to_string);
        let listed: Vec<(String, Option<String>)> = cmd
            .get_subcommands()
            .map(|s| (s.get_name().to_owned(), about(s)))
            .collect();
        assert!(listed.len() >= 10, "{listed:?}");
        let mut built = cmd;
        built.build();
        for (name, listed_about) in listed {
            let sub = built.find_subcommand(&name).expect("subcommand");
            assert_eq!(about(sub), listed_about, "about of `{name}`");
            assert!(listed_about.is_some(), "`{name}` has no about");
        }
        // Once built, a deferred subcommand has its arguments.
        let run = built.find_subcommand("run").expect("run");
        assert!(run
            .get_arguments()
            .any(|a| a.get_id() == "working_directory"));
    }
}
