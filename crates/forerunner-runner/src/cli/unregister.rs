//! `forerunner unregister --name N | --token T [--url U] | --all-runners`:
//! unregisters runners from GitLab and removes their entries.
//!
//! A `glrt-` token removes only this machine's runner manager
//! (`DELETE /runners/managers`, the runner stays in GitLab, as with the
//! official runner); any other token deletes the runner (`DELETE /runners`).
//! An entry is removed only when the server call succeeded or the server
//! says the token is already gone (403, or 404 "runner manager not found");
//! on network errors and other answers it is kept. Like the official runner,
//! `--url` does not select entries; the entry's own URL is used.

use std::process::ExitCode;

use forerunner_protocol::tokens::TokenKind;

use crate::cli::{load_existing, load_system_id, same_credentials, save, short, ConfigArg};
use crate::client::Client;
use crate::log::Logger;

/// Unregister runners from GitLab and remove them from config.toml.
#[derive(Debug, clap::Args)]
pub struct UnregisterArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Name of the runner to unregister
    #[arg(short = 'n', long)]
    name: Option<String>,
    /// GitLab URL (informational: the entry's own URL is used)
    #[arg(short = 'u', long, env = "CI_SERVER_URL")]
    url: Option<String>,
    /// Token of the runner to unregister
    #[arg(short = 't', long, env = "CI_SERVER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Unregister every runner in config.toml
    #[arg(long)]
    all_runners: bool,
}

pub(crate) async fn run(args: UnregisterArgs) -> anyhow::Result<ExitCode> {
    let log = Logger::stderr();
    log.runtime_platform();
    let path = args.config.path();
    let file = path.display().to_string();
    let (mut doc, config) = load_existing(&path)?;
    let runners = &config.runners;

    let targets: Vec<usize> = if args.all_runners {
        log.warn("Unregistering all runners", &[]);
        (0..runners.len()).collect()
    } else {
        let name = args.name.as_deref().filter(|n| !n.is_empty());
        let token = args.token.as_deref().filter(|t| !t.is_empty());
        let found = match (name, token) {
            (Some(n), Some(t)) => runners.iter().position(|r| r.name == n && r.token == t),
            (None, Some(t)) => runners.iter().position(|r| r.token == t),
            (Some(n), None) => runners.iter().position(|r| r.name == n),
            (None, None) => anyhow::bail!(
                "at least one of --name or --token must be specified (or --all-runners); see `forerunner list --config {file}`"
            ),
        };
        match found {
            Some(i) => vec![i],
            None => anyhow::bail!(
                "no runner in {file} matches {}{}; see `forerunner list --config {file}`",
                name.map(|n| format!("--name {n:?} ")).unwrap_or_default(),
                token
                    .map(|t| format!("--token {}…", short(t)))
                    .unwrap_or_default()
            ),
        }
    };
    if targets.is_empty() {
        log.info(&format!("No runners in {file}"), &[]);
        return Ok(ExitCode::SUCCESS);
    }
    let system_id = load_system_id(&path, &log);

    let mut remove: Vec<usize> = Vec::new();
    let mut failed = 0usize;
    for &i in &targets {
        if remove.contains(&i) {
            continue;
        }
        let r = &runners[i];
        let runner = short(&r.token);
        let number = (i + 1).to_string();
        let fields = [
            ("entry", number.as_str()),
            ("name", r.name.as_str()),
            ("runner", runner.as_str()),
            ("url", r.url.as_str()),
        ];
        let manager = TokenKind::of(&r.token) == TokenKind::CreatedRunner;
        let what = if manager {
            "Unregistering runner manager from GitLab"
        } else {
            "Unregistering runner from GitLab"
        };
        let result = if r.token.trim().is_empty() {
            log.warn(
                &format!("{what} skipped: the token is empty; the entry is removed"),
                &fields,
            );
            Ok(())
        } else {
            match Client::for_runner(r) {
                Ok(client) if manager => client.unregister_manager(&r.token, &system_id).await,
                Ok(client) => client.unregister_runner(&r.token).await,
                Err(e) => Err(e),
            }
        };
        let gone = match &result {
            Ok(()) => {
                log.info(&format!("{what} succeeded"), &fields);
                true
            }
            Err(e) if e.is_forbidden() => {
                log.warn(
                    &format!("{what} forbidden: the server no longer knows this token; removing the entry"),
                    &fields,
                );
                true
            }
            Err(e) if manager && e.status() == Some(404) => {
                log.warn(
                    &format!("{what}: runner manager not found (this machine never used this token); removing the entry"),
                    &fields,
                );
                true
            }
            Err(e) => {
                failed += 1;
                let err = e.to_string();
                let mut f = fields.to_vec();
                f.push(("error", err.as_str()));
                log.error(
                    &format!(
                        "{what} failed; the entry is kept (try again when the server is reachable)"
                    ),
                    &f,
                );
                false
            }
        };
        if gone {
            // Every entry with the same credentials goes with it.
            remove.extend(
                runners
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| same_credentials(o, r))
                    .map(|(j, _)| j),
            );
        }
    }
    if !remove.is_empty() {
        doc.remove_runners(&remove);
        save(&mut doc)?;
        log.info(&format!("Updated {file}"), &[]);
    }
    if failed > 0 {
        log.error(
            "Failed to unregister runners",
            &[("failed", &failed.to_string())],
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
