//! `forerunner reset-token --name N | --token T | --all-runners`: asks the
//! server for a new runner authentication token
//! (`POST /runners/reset_authentication_token`) and writes it, with
//! `token_obtained_at` and `token_expires_at`, into every entry that shared
//! the old one. The old token stops working at once, so a failed save is
//! reported loudly.

use std::process::ExitCode;

use crate::cli::{load_existing, same_credentials, save, short, ConfigArg};
use crate::client::Client;
use crate::log::Logger;
use chrono::{Timelike, Utc};

/// Arguments of `reset-token`.
#[derive(Debug, clap::Args)]
pub struct ResetTokenArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Name of the runner
    #[arg(short = 'n', long)]
    name: Option<String>,
    /// GitLab URL (informational: the entry's own URL is used)
    #[arg(short = 'u', long)]
    url: Option<String>,
    /// Current token of the runner
    #[arg(short = 't', long)]
    token: Option<String>,
    /// Reset the tokens of every runner in config.toml
    #[arg(long)]
    all_runners: bool,
}

pub(crate) async fn run(args: ResetTokenArgs) -> anyhow::Result<ExitCode> {
    let log = Logger::stderr();
    log.runtime_platform();
    let path = args.config.path();
    let file = path.display().to_string();
    let (mut doc, config) = load_existing(&path)?;
    let runners = &config.runners;
    let name = args.name.as_deref().filter(|n| !n.is_empty());
    let token = args.token.as_deref().filter(|t| !t.is_empty());
    let targets: Vec<usize> = if args.all_runners {
        (0..runners.len()).collect()
    } else {
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
            None => anyhow::bail!("no runner in {file} matches the given --name/--token; see `forerunner list --config {file}`"),
        }
    };

    let mut done: Vec<usize> = Vec::new();
    let mut failed = 0usize;
    for &i in &targets {
        if done.contains(&i) {
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
        let result = match Client::new(&r.url) {
            Ok(client) => client.reset_token(&r.token).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(resp) => {
                let now = Utc::now();
                let now = now.with_nanosecond(0).unwrap_or(now);
                let same: Vec<usize> = runners
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| same_credentials(o, r))
                    .map(|(j, _)| j)
                    .collect();
                // Entries are matched on the raw token, so `$VAR` entries
                // (which cannot be rewritten) are left alone.
                doc.replace_token(&r.token, &resp.token, now, resp.token_expires_at)?;
                done.extend(same);
                let new_short = short(&resp.token);
                let mut f = fields.to_vec();
                f.push(("new_runner", new_short.as_str()));
                log.info("Resetting runner authentication token... succeeded", &f);
            }
            Err(e) if e.is_forbidden() => {
                failed += 1;
                log.error(
                    &format!("Resetting runner authentication token... failed (check used token): the server no longer knows it; remove stale entries with `forerunner verify --delete --config {file}`"),
                    &fields,
                );
            }
            Err(e) => {
                failed += 1;
                let err = e.to_string();
                let mut f = fields.to_vec();
                f.push(("error", err.as_str()));
                log.error("Resetting runner authentication token... failed", &f);
            }
        }
    }
    if !done.is_empty() {
        save(&mut doc).map_err(|e| {
            e.context("the server issued new tokens and the old ones no longer work, but they could not be saved: register the affected runners again")
        })?;
        log.info(&format!("Updated {file}"), &[]);
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
