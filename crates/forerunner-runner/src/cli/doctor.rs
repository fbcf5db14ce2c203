//! `forerunner doctor [--config P] [--offline] [--fix]` (Forerunner's own
//! command): finds what makes runners fail silently and prints one line per
//! finding with the exact command that fixes it. Exit code 0 when clean, 1
//! when something needs action.
//!
//! Checks, without a server: duplicate tokens, duplicate names, a
//! registration token (or personal access / job token) stored as `token`,
//! empty tokens and tokens naming unset `$VARIABLES`, and different
//! spellings of the same server URL (trailing slash, `/api/v4`, `/ci`).
//! With the server (unless `--offline`): tokens the server rejects with 403
//! (stale entries), tokens expiring soon, unreachable servers.
//!
//! `--fix` applies the fixes that can never lose a working runner: it
//! removes second copies of a token and entries holding a token that cannot
//! authenticate a runner, rewrites URLs to one spelling and makes names
//! unique. Stale entries are removed by `forerunner verify --delete`, which
//! asks the server first.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};
use forerunner_protocol::tokens::TokenKind;
use toml_edit::Value;

use crate::cli::verify::{check, Check};
use crate::cli::{load_existing, load_system_id, save, short, ConfigArg};
use crate::config::{canonical_server_url, Config, RunnerConfig};
use crate::log::Logger;
use crate::rotation::token_reset_at;

/// Tokens expiring within this window are reported.
const EXPIRY_WARNING: Duration = Duration::days(7);

/// Find stale, duplicate and broken entries in config.toml, with the command that fixes each.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Only check the file; do not contact any server
    #[arg(long)]
    offline: bool,
    /// Apply the safe fixes (duplicates, wrong token kinds, URL spellings, names)
    #[arg(long)]
    fix: bool,
}

/// One problem found in config.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// 0-based entry index, when the finding is about one entry.
    pub entry: Option<usize>,
    /// What is wrong and what it causes.
    pub problem: String,
    /// The command (or action) that fixes it.
    pub fix: String,
}

/// A fix `--fix` can apply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Repair {
    Remove(usize),
    SetUrl(usize, String),
    Rename(usize, String),
}

fn describe(i: usize, r: &RunnerConfig) -> String {
    format!("entry #{} {r}", i + 1)
}

/// The findings that need no server, and the repairs `--fix` would make.
fn lint(config: &Config, path: &Path) -> (Vec<Finding>, Vec<Repair>) {
    let file = path.display();
    let fix_cmd = format!("forerunner doctor --fix --config {file}");
    let mut findings = Vec::new();
    let mut repairs = Vec::new();
    let runners = &config.runners;
    let mut removed = vec![false; runners.len()];

    // Tokens that can never authenticate a runner.
    for (i, r) in runners.iter().enumerate() {
        let server = canonical_server_url(&r.url);
        if let Some(raw) = &r.expansion.raw_token {
            if !r.expansion.missing.is_empty() {
                findings.push(Finding {
                    entry: Some(i),
                    problem: format!(
                        "token {raw:?} names unset environment variable(s) {}; the runner skips this entry",
                        r.expansion.missing.join(", ")
                    ),
                    fix: format!(
                        "set {} in the environment of `forerunner run` (e.g. `export {}=glrt-…`)",
                        r.expansion.missing.join(", "),
                        r.expansion.missing[0]
                    ),
                });
                continue;
            }
        }
        if r.token.trim().is_empty() {
            findings.push(Finding {
                entry: Some(i),
                problem: "token is empty; the runner skips this entry".to_owned(),
                fix: format!("{fix_cmd} (removes it), then `forerunner register --config {file} --url {server} --token glrt-…`"),
            });
            repairs.push(Repair::Remove(i));
            removed[i] = true;
            continue;
        }
        let kind = TokenKind::of(&r.token);
        if matches!(
            kind,
            TokenKind::Registration | TokenKind::PersonalAccess | TokenKind::Job
        ) {
            findings.push(Finding {
                entry: Some(i),
                problem: format!(
                    "token is a {}, not a runner authentication token; every job request gets 403 Forbidden",
                    kind.describe()
                ),
                fix: format!(
                    "{fix_cmd} (removes it), then register properly: `forerunner register --config {file} --url {server} --registration-token GR1348941…` or `--token glrt-…`"
                ),
            });
            repairs.push(Repair::Remove(i));
            removed[i] = true;
        }
    }

    // Second copies of a token on the same server.
    let mut first_of: HashMap<(String, String), usize> = HashMap::new();
    for (i, r) in runners.iter().enumerate() {
        if removed[i] || r.token.is_empty() {
            continue;
        }
        let key = (r.token.clone(), canonical_server_url(&r.url));
        match first_of.get(&key) {
            Some(&first) => {
                findings.push(Finding {
                    entry: Some(i),
                    problem: format!(
                        "duplicate of entry #{} (same token on the same server): both poll as one runner manager and double the requests",
                        first + 1
                    ),
                    fix: format!("{fix_cmd} (removes this copy, keeps entry #{})", first + 1),
                });
                repairs.push(Repair::Remove(i));
                removed[i] = true;
            }
            None => {
                first_of.insert(key, i);
            }
        }
    }

    // Different spellings of one server.
    let mut spellings: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in runners.iter().enumerate() {
        if !removed[i] && !r.url.is_empty() {
            spellings
                .entry(canonical_server_url(&r.url))
                .or_default()
                .push(i);
        }
    }
    for (canonical, entries) in &spellings {
        for &i in entries {
            let url = &runners[i].url;
            let raw = runners[i].expansion.raw_url.is_some();
            if url == canonical || raw {
                continue;
            }
            let problem = if url.trim_end_matches('/').ends_with("/api/v4") {
                format!("url {url:?} ends in /api/v4: requests go to …/api/v4/api/v4/… and fail with 404")
            } else {
                let others: Vec<String> = entries
                    .iter()
                    .filter(|&&j| j != i)
                    .map(|j| format!("#{}", j + 1))
                    .collect();
                if others.is_empty() {
                    // One spelling of a server is harmless.
                    continue;
                } else {
                    format!(
                        "url {url:?} is another spelling of {canonical:?}, the server of entries {}; duplicates are hard to spot",
                        others.join(", ")
                    )
                }
            };
            findings.push(Finding {
                entry: Some(i),
                problem,
                fix: format!("{fix_cmd} (writes url = {canonical:?})"),
            });
            repairs.push(Repair::SetUrl(i, canonical.clone()));
        }
    }

    // Names shared by several entries.
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in runners.iter().enumerate() {
        if !removed[i] {
            by_name.entry(r.name.as_str()).or_default().push(i);
        }
    }
    let mut taken: Vec<String> = runners.iter().map(|r| r.name.clone()).collect();
    for (name, entries) in by_name {
        if entries.len() < 2 {
            continue;
        }
        for &i in &entries[1..] {
            let mut new_name = format!("{name}-{}", short(&runners[i].token));
            let mut n = 2;
            while taken.contains(&new_name) {
                new_name = format!("{name}-{}-{n}", short(&runners[i].token));
                n += 1;
            }
            taken.push(new_name.clone());
            findings.push(Finding {
                entry: Some(i),
                problem: format!(
                    "name {name:?} is also used by entry #{}; logs, `list` and `unregister --name` cannot tell them apart",
                    entries[0] + 1
                ),
                fix: format!("{fix_cmd} (renames it to {new_name:?})"),
            });
            repairs.push(Repair::Rename(i, new_name));
        }
    }
    findings.extend(settings(config, path, &removed));
    findings.sort_by_key(|f| f.entry);
    (findings, repairs)
}

/// Settings that keep `forerunner run` from running jobs.
fn settings(config: &Config, path: &Path, removed: &[bool]) -> Vec<Finding> {
    let file = path.display();
    let mut findings = Vec::new();
    if config.concurrent.is_some_and(|c| c < 1) {
        findings.push(Finding {
            entry: None,
            problem: "`concurrent` is less than 1: no job will ever run".to_owned(),
            fix: format!("set `concurrent = 1` (or more) at the top of {file}"),
        });
    }
    for (i, r) in config.runners.iter().enumerate() {
        if removed.get(i).copied().unwrap_or(false) {
            continue;
        }
        let problem = match r.executor.as_str() {
            "shell" => None,
            "docker" => r
                .docker
                .as_ref()
                .and_then(|d| d.image.as_deref())
                .filter(|i| !i.is_empty())
                .is_none()
                .then(|| {
                    (
                        "the docker executor has no default image; jobs without `image:` fail".to_owned(),
                        format!("set `image = \"…\"` in this entry's [runners.docker] in {file}"),
                    )
                }),
            "custom" => r
                .custom
                .as_ref()
                .and_then(|c| c.run_exec.as_deref())
                .filter(|e| !e.is_empty())
                .is_none()
                .then(|| {
                    (
                        "the custom executor has no run_exec; every job fails".to_owned(),
                        format!("set `run_exec = \"/path/to/run\"` in this entry's [runners.custom] in {file}"),
                    )
                }),
            "" => Some((
                "no executor is set; every job fails".to_owned(),
                format!("set `executor = \"shell\"` (or docker, custom) in this entry in {file}"),
            )),
            other => Some((
                format!("forerunner cannot run the {other:?} executor; jobs picked by this entry fail"),
                format!(
                    "register the runner again with `forerunner register --config {file} --executor shell|docker|custom`, or keep this entry for gitlab-runner"
                ),
            )),
        };
        if let Some((problem, fix)) = problem {
            findings.push(Finding {
                entry: Some(i),
                problem,
                fix,
            });
        }
        if r.limit > 0 && r.limit > config.concurrent() {
            findings.push(Finding {
                entry: Some(i),
                problem: format!(
                    "limit = {} is more than the global concurrent = {}; the runner never runs more than {} jobs at once",
                    r.limit,
                    config.concurrent(),
                    config.concurrent()
                ),
                fix: format!("raise `concurrent` at the top of {file}, or lower this entry's `limit`"),
            });
        }
    }
    findings
}

/// Whether a token is worth asking the server about.
fn checkable(r: &RunnerConfig) -> bool {
    !r.token.trim().is_empty()
        && !matches!(
            TokenKind::of(&r.token),
            TokenKind::Registration | TokenKind::PersonalAccess | TokenKind::Job
        )
}

/// The findings that need the servers.
async fn online(config: &Config, path: &Path, system_id: &str, now: DateTime<Utc>) -> Vec<Finding> {
    let file = path.display();
    let mut findings = Vec::new();
    let mut seen: HashMap<(String, String), Check> = HashMap::new();
    let mut unreachable: BTreeMap<String, (String, Vec<usize>)> = BTreeMap::new();
    let names: Vec<&str> = config.runners.iter().map(|r| r.name.as_str()).collect();
    for (i, r) in config.runners.iter().enumerate() {
        // A URL ending in /api/v4 is already reported; asking it would only 404.
        if !checkable(r) || r.url.trim_end_matches('/').ends_with("/api/v4") {
            continue;
        }
        let key = (r.token.clone(), canonical_server_url(&r.url));
        let result = match seen.get(&key) {
            Some(c) => c.clone(),
            None => {
                let c = check(r, system_id).await;
                seen.insert(key, c.clone());
                c
            }
        };
        match result {
            Check::Deleted => findings.push(Finding {
                entry: Some(i),
                problem: "the server rejects the token with 403 Forbidden: the runner was deleted or its token was reset or expired (stale entry)".to_owned(),
                fix: format!("forerunner verify --delete --config {file}"),
            }),
            Check::Unreachable(err) => {
                let what = match err.status() {
                    None => format!("is unreachable ({err})"),
                    Some(_) => format!("answered with an error ({err})"),
                };
                unreachable
                    .entry(canonical_server_url(&r.url))
                    .or_insert_with(|| (what, Vec::new()))
                    .1
                    .push(i);
            }
            Check::Alive => {
                if let Some(expires) = r.token_expires_at {
                    let rotate_at = token_reset_at(r.token_obtained_at, Some(expires));
                    if expires - now < EXPIRY_WARNING || rotate_at.is_some_and(|t| t <= now) {
                        let unique = names.iter().filter(|n| **n == r.name).count() == 1;
                        let cmd = if unique {
                            format!("forerunner reset-token --config {file} --name {:?}", r.name)
                        } else {
                            format!("forerunner doctor --fix --config {file}, then `forerunner reset-token --config {file} --name <its new name>`")
                        };
                        findings.push(Finding {
                            entry: Some(i),
                            problem: format!(
                                "token expires at {} (in {} h); once expired every request gets 403",
                                expires.to_rfc3339(),
                                (expires - now).num_hours()
                            ),
                            fix: cmd,
                        });
                    }
                }
            }
            Check::EmptyToken => {}
        }
    }
    for (server, (err, entries)) in unreachable {
        let list: Vec<String> = entries.iter().map(|i| format!("#{}", i + 1)).collect();
        findings.push(Finding {
            entry: None,
            problem: format!(
                "server {server} {err}; entries {} were not checked",
                list.join(", ")
            ),
            fix: format!(
                "check the URL and the network, then run `forerunner doctor --config {file}` again"
            ),
        });
    }
    findings
}

fn render(config: &Config, f: &Finding) -> String {
    let subject = match f.entry {
        Some(i) => describe(i, &config.runners[i]),
        None => "config".to_owned(),
    };
    format!("{subject}: {}; fix: {}", f.problem, f.fix)
}

pub(crate) async fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let log = Logger::stderr();
    let path = args.config.path();
    let file = path.display().to_string();
    let (mut doc, config) = load_existing(&path)?;
    let (mut findings, repairs) = lint(&config, &path);
    if !args.offline {
        let system_id = load_system_id(&path, &log);
        findings.extend(online(&config, &path, &system_id, Utc::now()).await);
    }
    findings.sort_by_key(|f| f.entry.unwrap_or(usize::MAX));

    if args.fix && !repairs.is_empty() {
        let mut remove = Vec::new();
        for repair in &repairs {
            match repair {
                Repair::Remove(i) => remove.push(*i),
                Repair::SetUrl(i, url) => {
                    doc.set_runner_value(*i, None, "url", Value::from(url.as_str()))?
                }
                Repair::Rename(i, name) => {
                    doc.set_runner_value(*i, None, "name", Value::from(name.as_str()))?
                }
            }
        }
        doc.remove_runners(&remove);
        save(&mut doc)?;
        println!(
            "fixed {} problem(s) in {file} ({} entries removed); run `forerunner doctor --config {file}` again",
            repairs.len(),
            remove.len()
        );
    }

    if findings.is_empty() {
        println!(
            "{file}: no problems found in {} runner entries",
            config.runners.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for f in &findings {
        println!("{}", render(&config, f));
    }
    println!(
        "{file}: {} problem(s) need action; run the commands above",
        findings.len()
    );
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(Path::new("/c/config.toml"), text, &|n| {
            (n == "SET").then(|| "glrt-fromenv000000000".to_owned())
        })
        .unwrap()
    }

    #[test]
    fn finds_every_offline_problem() {
        let c = config(
            r#"
[[runners]]
  name = "my-runner"
  url = "https://gitlab.example.com"
  token = "glrt-t1_aaaaaaaaaaaaaaaaaaaa"
  executor = "shell"
[[runners]]
  name = "my-runner"
  url = "https://gitlab.example.com/"
  token = "glrt-t1_aaaaaaaaaaaaaaaaaaaa"
  executor = "shell"
[[runners]]
  name = "reg"
  url = "https://gitlab.example.com/api/v4"
  token = "GR1348941abcdefghijklmnop"
  executor = "shell"
[[runners]]
  name = "env"
  url = "https://gitlab.example.com"
  token = "$UNSET_TOKEN"
  executor = "shell"
[[runners]]
  name = "my-runner"
  url = "https://gitlab.example.com/api/v4/"
  token = "glrt-t1_bbbbbbbbbbbbbbbbbbbb"
  executor = "docker"
[[runners]]
  name = "empty"
  url = "https://gitlab.example.com"
  token = ""
  executor = "shell"
"#,
        );
        let (findings, repairs) = lint(&c, Path::new("/c/config.toml"));
        let text: Vec<String> = findings.iter().map(|f| render(&c, f)).collect();
        let all = text.join("\n");
        assert!(
            all.contains("entry #2") && all.contains("duplicate of entry #1"),
            "{all}"
        );
        assert!(all.contains("registration token"), "{all}");
        assert!(all.contains("UNSET_TOKEN"), "{all}");
        assert!(all.contains("ends in /api/v4"), "{all}");
        assert!(all.contains("token is empty"), "{all}");
        assert!(
            all.contains("name \"my-runner\" is also used by entry #1"),
            "{all}"
        );
        for line in &text {
            assert!(line.contains("; fix: "), "{line}");
            assert!(
                !line.contains("aaaaaaaaaaaaaaaaaaaa"),
                "full token in {line}"
            );
            assert!(
                !line.contains("GR1348941abcdefghijklmnop"),
                "full token in {line}"
            );
        }
        assert!(repairs.contains(&Repair::Remove(1)));
        assert!(repairs.contains(&Repair::Remove(2)));
        assert!(repairs.contains(&Repair::Remove(5)));
        assert!(repairs.contains(&Repair::SetUrl(4, "https://gitlab.example.com".into())));
        assert!(repairs
            .iter()
            .any(|r| matches!(r, Repair::Rename(4, n) if n == "my-runner-t1_bbbbbb")));
    }

    #[test]
    fn settings_that_stop_jobs() {
        let c = config(
            r#"
concurrent = 0
[[runners]]
  name = "k8s"
  url = "https://gitlab.example.com"
  token = "glrt-t1_kkkkkkkkkkkkkkkkkkkk"
  executor = "kubernetes"
[[runners]]
  name = "custom"
  url = "https://gitlab.example.com"
  token = "glrt-t1_cccccccccccccccccccc"
  executor = "custom"
  limit = 4
[[runners]]
  name = "docker"
  url = "https://gitlab.example.com"
  token = "glrt-t1_dddddddddddddddddddd"
  executor = "docker"
"#,
        );
        let (findings, _) = lint(&c, Path::new("/c/config.toml"));
        let all: Vec<String> = findings.iter().map(|f| render(&c, f)).collect();
        let all = all.join("\n");
        assert!(all.contains("`concurrent` is less than 1"), "{all}");
        assert!(
            all.contains("cannot run the \"kubernetes\" executor"),
            "{all}"
        );
        assert!(all.contains("no run_exec"), "{all}");
        assert!(
            all.contains("limit = 4 is more than the global concurrent = 0"),
            "{all}"
        );
        assert!(all.contains("no default image"), "{all}");
    }

    #[test]
    fn clean_file_has_no_findings() {
        let c = config(
            r#"
[[runners]]
  name = "a"
  url = "https://gitlab.example.com"
  token = "$SET"
  executor = "shell"
"#,
        );
        assert!(lint(&c, Path::new("c")).0.is_empty());
    }
}
