//! `forerunner reset-token --name N | --token T | --all-runners`: asks the
//! server for a new runner authentication token
//! (`POST /runners/reset_authentication_token`) and writes it, with
//! `token_obtained_at` and `token_expires_at`, into every entry that shared
//! the old one. The old token stops working at once, so a failed save is
//! reported loudly. With `--pat`, the reset goes through
//! `POST /runners/:id/reset_authentication_token` with a personal access
//! token, which also revives a runner whose own token has expired.

use std::process::ExitCode;

use crate::cli::{load_existing, same_credentials, save, short, ConfigArg};
use crate::client::Client;
use crate::log::Logger;
use chrono::{Timelike, Utc};

/// Reset runner authentication tokens and save the new ones in config.toml.
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
    /// Reset with this personal access token instead of the runner's own
    /// token (works when the runner token has expired)
    #[arg(long, env = "PAT", hide_env_values = true)]
    pat: Option<String>,
    /// Runner id to reset with --pat (default: the entry's `id`)
    #[arg(long)]
    id: Option<i64>,
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
        let pat = args.pat.as_deref().filter(|p| !p.is_empty());
        let runner_id = args.id.filter(|_| targets.len() == 1).unwrap_or(r.id);
        if pat.is_some() && runner_id == 0 {
            failed += 1;
            log.error(
                "Resetting runner authentication token... failed: the entry has no runner id; pass --id (see the runner in GitLab)",
                &fields,
            );
            continue;
        }
        let result = match (Client::for_runner(r), pat) {
            (Ok(client), Some(pat)) => client.reset_token_with_pat(runner_id, pat).await,
            (Ok(client), None) => client.reset_token(&r.token).await,
            (Err(e), _) => Err(e),
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
                let hint = if pat.is_some() {
                    "the personal access token may not update this runner (it needs the api scope and owner or admin rights)".to_owned()
                } else {
                    format!("the server no longer knows it; reset it with a personal access token (`forerunner reset-token --config {file} --name {:?} --pat <token>`) if the runner still exists, or remove stale entries with `forerunner verify --delete --config {file}`", r.name)
                };
                log.error(
                    &format!("Resetting runner authentication token... failed (check used token): {hint}"),
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
