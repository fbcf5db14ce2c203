//! The runner's subcommands, one module each, flattened into `forerunner`'s
//! command list by the binary.
//!
//! Flag names, environment variables and log lines follow `gitlab-runner`;
//! where the official tool leaves users stuck (stale entries, duplicate
//! entries, the wrong kind of token) the messages say what happened and the
//! exact command that fixes it. No full token is ever printed, except by
//! `list`, which prints it as the official runner does.

mod doctor;
mod list;
mod register;
mod reset_token;
mod run;
mod run_single;
mod settings;
mod unregister;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use forerunner_protocol::tokens::short_token;

use crate::config::{canonical_server_url, Config, ConfigDocument, RunnerConfig};

/// The runner's subcommands, flattened into `forerunner`'s command list.
/// Their arguments are defined only for the subcommand that runs (`defer`).
#[derive(Debug, clap::Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Register a runner with GitLab and save it in config.toml.
    Register(Box<register::RegisterArgs>),
    /// List the runners in config.toml (on stderr, as gitlab-runner does).
    List(list::ListArgs),
    /// Check that the servers still know the runners in config.toml.
    Verify(verify::VerifyArgs),
    /// Unregister runners from GitLab and remove them from config.toml.
    Unregister(unregister::UnregisterArgs),
    /// Reset runner authentication tokens and save the new ones in config.toml.
    ResetToken(reset_token::ResetTokenArgs),
    /// Find stale, duplicate and broken entries in config.toml, with the command that fixes each.
    Doctor(doctor::DoctorArgs),
    /// Run the jobs of every runner in config.toml until stopped.
    Run(run::RunArgs),
    /// Run jobs for one runner given by flags, without a config file.
    RunSingle(Box<run_single::RunSingleArgs>),
}

/// Runs a runner subcommand.
pub async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Register(args) => register::run(*args).await,
        Command::List(args) => list::run(args),
        Command::Verify(args) => verify::run(args).await,
        Command::Unregister(args) => unregister::run(args).await,
        Command::ResetToken(args) => reset_token::run(args).await,
        Command::Doctor(args) => doctor::run(args).await,
        Command::Run(args) => run::run(args).await,
        Command::RunSingle(args) => run_single::run(*args).await,
    }
}

/// `-c/--config` (env `CONFIG_FILE`), shared by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Config file [default: /etc/forerunner/config.toml as root, ~/.forerunner/config.toml otherwise]
    #[arg(short = 'c', long = "config", env = "CONFIG_FILE", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// The config file to use.
    pub fn path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(crate::config::default_config_path)
    }
}

/// Loads config.toml as a document and its typed view; a missing file is an
/// error for every command but `register`.
fn load_existing(path: &std::path::Path) -> anyhow::Result<(ConfigDocument, Config)> {
    let doc = ConfigDocument::load(path)?;
    if !doc.existed() {
        anyhow::bail!(
            "config file {} does not exist (register a runner first with `forerunner register --config {}`, or pass the right --config)",
            path.display(),
            path.display()
        );
    }
    let typed = doc.typed()?;
    Ok((doc, typed))
}

/// Which entries a command acts on: `--name`, `--url`, `--token`.
#[derive(Debug, Clone, Default)]
struct Selector {
    name: Option<String>,
    url: Option<String>,
    token: Option<String>,
}

impl Selector {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.url.is_none() && self.token.is_none()
    }

    /// The official `verify` rule: the name matches, or the token matches
    /// and the URL matches (an empty URL or `*` matches any).
    fn matches_verify(&self, r: &RunnerConfig) -> bool {
        if self.name.as_deref() == Some(r.name.as_str()) {
            return true;
        }
        match &self.token {
            Some(token) if *token == r.token => match self.url.as_deref() {
                None | Some("") | Some("*") => true,
                Some(url) => canonical_server_url(url) == canonical_server_url(&r.url),
            },
            _ => false,
        }
    }

    /// Describes the selector for messages, with the token shortened.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = &self.name {
            parts.push(format!("--name {n:?}"));
        }
        if let Some(u) = &self.url {
            parts.push(format!("--url {u}"));
        }
        if let Some(t) = &self.token {
            parts.push(format!("--token {}…", short_token(t)));
        }
        parts.join(" ")
    }
}

/// The same credentials (token, and the same server however spelled).
fn same_credentials(a: &RunnerConfig, b: &RunnerConfig) -> bool {
    a.token == b.token && canonical_server_url(&a.url) == canonical_server_url(&b.url)
}

/// Short token for log fields.
fn short(token: &str) -> String {
    short_token(token)
}

/// Reads config for a command, adding the file name to errors.
fn load_system_id(path: &std::path::Path, log: &crate::log::Logger) -> String {
    let id = crate::system_id::load_or_create(path);
    if id.created {
        log.info("Created missing unique system ID", &[("system_id", &id.id)]);
    }
    if let Some(err) = &id.save_error {
        log.warn(
            "Couldn't save new system ID on disk",
            &[("error", err), ("system_id", &id.id)],
        );
    }
    id.id
}

/// The exit code after the job loop. A forced end exits the process at
/// once: jobs still running on blocking threads would otherwise keep the
/// runtime from shutting down.
fn exit_after(ended: crate::run::Ended) -> ExitCode {
    if ended == crate::run::Ended::Forced {
        use std::io::Write as _;
        let _ = std::io::stderr().flush();
        std::process::exit(1);
    }
    ExitCode::SUCCESS
}

/// Saves the document, with context naming the file.
fn save(doc: &mut ConfigDocument) -> anyhow::Result<()> {
    let path = doc.path().display().to_string();
    doc.save().with_context(|| format!("failed to save {path}"))
}

#[cfg(test)]
mod tests {
    use clap::Subcommand as _;

    #[test]
    fn command_line_definition_is_consistent() {
        let cmd = super::Command::augment_subcommands(clap::Command::new("forerunner"));
        cmd.debug_assert();
    }
}
