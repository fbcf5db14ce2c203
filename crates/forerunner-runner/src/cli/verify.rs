//! `forerunner verify [--delete] [--name N] [--url U --token T]`: asks each
//! entry's server whether it still knows the token (`POST /runners/verify`)
//! and reports per entry: alive, deleted on server (403) or unreachable.
//!
//! `--delete` removes exactly the entries the server answered 403 — never on
//! network errors, 5xx or any other answer — and leaves every other byte of
//! config.toml as it was. Entries whose token is empty (e.g. an unset
//! `$VAR`) are skipped, not deleted.

use std::process::ExitCode;

use forerunner_protocol::runners::VerifyRunnerRequest;
use forerunner_protocol::tokens::TokenKind;

use crate::cli::{load_existing, load_system_id, save, short, ConfigArg, Selector};
use crate::client::{runner_info, ApiError, Client};
use crate::config::RunnerConfig;
use crate::log::Logger;

/// Check that the servers still know the runners in config.toml.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Only the runners with this name
    #[arg(short = 'n', long)]
    name: Option<String>,
    /// Only the runner with this URL (with --token)
    #[arg(short = 'u', long)]
    url: Option<String>,
    /// Only the runner with this token
    #[arg(short = 't', long)]
    token: Option<String>,
    /// Remove the entries whose runner the server no longer knows (403)
    #[arg(long)]
    delete: bool,
}

/// What the server said about one entry.
#[derive(Debug, Clone)]
pub(crate) enum Check {
    /// 200: the server knows the token.
    Alive,
    /// 403: the server does not know the token (runner deleted, token reset or expired).
    Deleted,
    /// No usable answer (network error, 5xx, bad URL…): nothing is known.
    Unreachable(ApiError),
    /// Not checked: the token is empty.
    EmptyToken,
}

/// Asks the entry's server about its token.
pub(crate) async fn check(runner: &RunnerConfig, system_id: &str) -> Check {
    if runner.token.trim().is_empty() {
        return Check::EmptyToken;
    }
    let client = match Client::for_runner(runner) {
        Ok(c) => c,
        Err(e) => return Check::Unreachable(e),
    };
    let request = VerifyRunnerRequest {
        token: runner.token.clone(),
        system_id: Some(system_id.to_owned()),
        info: Some(runner_info(Some(&runner.executor), runner.shell.as_deref())),
    };
    match client.verify_runner(&request).await {
        Ok(_) => Check::Alive,
        Err(e) if e.is_forbidden() => Check::Deleted,
        Err(e) => Check::Unreachable(e),
    }
}

pub(crate) async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let log = Logger::stderr();
    log.runtime_platform();
    let path = args.config.path();
    let (mut doc, config) = load_existing(&path)?;
    let selector = Selector {
        name: args.name.clone(),
        url: args.url.clone(),
        token: args.token.clone(),
    };
    let selected: Vec<usize> = (0..config.runners.len())
        .filter(|&i| selector.is_empty() || selector.matches_verify(&config.runners[i]))
        .collect();
    if !selector.is_empty() && selected.is_empty() {
        anyhow::bail!(
            "no runner matches the filtering parameters ({}) in {} (see `forerunner list --config {}`)",
            selector.describe(),
            path.display(),
            path.display()
        );
    }
    let system_id = load_system_id(&path, &log);
    let file = path.display().to_string();

    let mut deleted = Vec::new();
    let (mut alive, mut unreachable, mut skipped) = (0, 0, 0);
    for &i in &selected {
        let r = &config.runners[i];
        let number = (i + 1).to_string();
        let runner = short(&r.token);
        let created = TokenKind::of(&r.token) == TokenKind::CreatedRunner;
        let fields = [
            ("entry", number.as_str()),
            ("name", r.name.as_str()),
            ("runner", runner.as_str()),
            ("url", r.url.as_str()),
        ];
        match check(r, &system_id).await {
            Check::Alive => {
                alive += 1;
                let state = if created { "is valid" } else { "is alive" };
                log.info(&format!("Verifying runner... {state}"), &fields);
            }
            Check::Deleted => {
                deleted.push(i);
                if created {
                    log.info("Verifying runner... is not valid", &fields);
                } else {
                    log.error("Verifying runner... is removed", &fields);
                }
            }
            Check::Unreachable(err) => {
                unreachable += 1;
                let err = err.to_string();
                let mut f = fields.to_vec();
                f.push(("error", err.as_str()));
                log.warn(
                    "Verifying runner... failed (server unreachable, entry kept)",
                    &f,
                );
            }
            Check::EmptyToken => {
                skipped += 1;
                log.warn(
                    "Verifying runner... skipped: the token is empty (is the variable it names set?)",
                    &fields,
                );
            }
        }
    }
    let summary = format!(
        "alive: {alive}, deleted on server: {}, unreachable: {unreachable}, not checked: {skipped}",
        deleted.len()
    );
    log.info("Verification finished", &[("result", &summary)]);
    if deleted.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if !args.delete {
        log.error(
            &format!(
                "Failed to verify runners: {} entries are no longer known to their server; remove them with `forerunner verify --delete --config {file}`",
                deleted.len()
            ),
            &[],
        );
        return Ok(ExitCode::FAILURE);
    }
    doc.remove_runners(&deleted);
    save(&mut doc)?;
    for &i in &deleted {
        let r = &config.runners[i];
        log.info(
            "Removed entry deleted on server",
            &[
                ("entry", &(i + 1).to_string()),
                ("name", &r.name),
                ("runner", &short(&r.token)),
                ("url", &r.url),
            ],
        );
    }
    log.info(&format!("Updated {file}"), &[]);
    Ok(ExitCode::SUCCESS)
}
