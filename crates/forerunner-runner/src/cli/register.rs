//! `forerunner register`: the official flags and environment variables, the
//! official prompts when stdin is a terminal, and the two flows:
//!
//! - a registration token (`-r`, `GR1348941…`) → `POST /api/v4/runners`
//!   creates a runner (legacy; the server may refuse with 410);
//! - a runner authentication token (`-t glrt-…`) → `POST /api/v4/runners/verify`;
//!   the runner already exists, so the server-side flags (tags, locked, …)
//!   are refused: they are set where the runner was created.
//!
//! A token already in config.toml updates that entry instead of appending a
//! duplicate. `--template-config` completes a new entry from a template's
//! `[[runners]]` (flags win). If the executor questions are interrupted
//! (Ctrl-C) or saving fails after the server registered the runner, the
//! runner is unregistered again unless `--leave-runner`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use chrono::{DateTime, Timelike, Utc};
use clap::builder::BoolishValueParser;
use clap::ArgAction;
use forerunner_protocol::runners::{
    RegisterRunnerRequest, RunnerAttributes, RunnerRegistrationDetails, VerifyRunnerRequest,
};
use forerunner_protocol::tokens::TokenKind;
use toml_edit::{Table, Value};

use crate::cli::settings::RunnerSettingsArgs;
use crate::cli::{load_system_id, save, short, ConfigArg};
use crate::client::{runner_info, ApiError, Client};
use crate::config::document::{datetime_value, load_template, NewRunner};
use crate::config::{ConfigDocument, RunnerConfig};
use crate::log::Logger;

/// Executors Forerunner can run.
const EXECUTORS: &[&str] = &["custom", "shell", "docker"];

const DEPRECATION: &str = "Support for registration tokens and runner parameters in the 'register' command has been deprecated in GitLab Runner 15.6 and will be replaced with support for authentication tokens. For more information, see https://docs.gitlab.com/ci/runners/new_creation_workflow/";

/// Register a runner with GitLab and save it in config.toml.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Run registration unattended: never prompt, fail on a missing value
    #[arg(short = 'n', long, env = "REGISTER_NON_INTERACTIVE", value_parser = BoolishValueParser::new(), action = ArgAction::SetTrue)]
    non_interactive: bool,
    /// Don't remove the runner from GitLab if registration fails after it was created
    #[arg(long, env = "REGISTER_LEAVE_RUNNER", value_parser = BoolishValueParser::new(), action = ArgAction::SetTrue)]
    leave_runner: bool,
    /// GitLab instance URL
    #[arg(short = 'u', long, env = "CI_SERVER_URL")]
    url: Option<String>,
    /// Runner authentication token (glrt-…) of a runner created in the UI or with POST /api/v4/user/runners
    #[arg(short = 't', long, env = "CI_SERVER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Registration token (legacy, GR1348941…)
    #[arg(short = 'r', long, env = "REGISTRATION_TOKEN", hide_env_values = true)]
    registration_token: Option<String>,
    /// Runner name, stored in config.toml (the description with a registration token)
    #[arg(long, visible_alias = "description", env = "RUNNER_NAME")]
    name: Option<String>,
    /// Tags, comma-separated (registration token only)
    #[arg(long, env = "RUNNER_TAG_LIST")]
    tag_list: Option<String>,
    /// Pick jobs without tags (registration token only)
    #[arg(long, env = "REGISTER_RUN_UNTAGGED", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    run_untagged: bool,
    /// Lock the runner to its current projects (registration token only)
    #[arg(long, env = "REGISTER_LOCKED", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    locked: bool,
    /// not_protected or ref_protected (registration token only)
    #[arg(long, env = "REGISTER_ACCESS_LEVEL")]
    access_level: Option<String>,
    /// Maximum job timeout in seconds (registration token only)
    #[arg(long, env = "REGISTER_MAXIMUM_TIMEOUT")]
    maximum_timeout: Option<i64>,
    /// Register the runner paused (registration token only)
    #[arg(long, env = "REGISTER_PAUSED", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    paused: bool,
    /// Maintenance note (registration token only)
    #[arg(long, env = "REGISTER_MAINTENANCE_NOTE")]
    maintenance_note: Option<String>,
    /// A config.toml with one [[runners]] whose settings complete the new entry
    #[arg(long, env = "TEMPLATE_CONFIG_FILE", value_name = "FILE")]
    template_config: Option<std::path::PathBuf>,
    #[command(flatten)]
    settings: RunnerSettingsArgs,
}

/// How the prompts behave.
struct Prompter {
    interactive: bool,
}

impl Prompter {
    /// Returns `given` (when non-empty), else asks `question` when
    /// interactive; `None` when nothing was given.
    fn ask(&self, given: Option<&str>, question: &str, default: Option<&str>) -> Option<String> {
        if let Some(v) = given.map(str::trim).filter(|v| !v.is_empty()) {
            return Some(v.to_owned());
        }
        if !self.interactive {
            return default.map(str::to_owned);
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{question}");
        // As the official runner: the default in brackets, else nothing.
        if let Some(d) = default {
            let _ = write!(out, "[{d}]: ");
        }
        let _ = out.flush();
        drop(out);
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).is_err() {
            return default.map(str::to_owned);
        }
        let line = line.trim();
        if line.is_empty() {
            default.map(str::to_owned)
        } else {
            Some(line.to_owned())
        }
    }

    /// Like [`Prompter::ask`] but fails when no value results.
    fn require(
        &self,
        given: Option<&str>,
        question: &str,
        default: Option<&str>,
        what: &str,
        how: &str,
    ) -> anyhow::Result<String> {
        self.ask(given, question, default)
            .ok_or_else(|| anyhow::anyhow!("the {what} needs to be entered: pass {how}"))
    }
}

/// How the runner gets its id and authentication token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Registration token → `POST /runners`.
    Legacy,
    /// `glrt-` token → `POST /runners/verify`; `from_token_flag` tells
    /// whether it came through `--token` (server-side flags are then an error).
    Authentication { from_token_flag: bool },
    /// A legacy runner authentication token given to `--token`: verified
    /// only, as the official runner does.
    VerifyLegacyToken,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "forerunner".to_owned())
}

/// The server-side flags that differ from their defaults.
fn server_side_flags(args: &RegisterArgs) -> Vec<&'static str> {
    let mut set = Vec::new();
    if !args.locked {
        set.push("--locked");
    }
    if args.access_level.as_deref().is_some_and(|s| !s.is_empty()) {
        set.push("--access-level");
    }
    if args.run_untagged {
        set.push("--run-untagged");
    }
    if args.maximum_timeout.is_some_and(|t| t != 0) {
        set.push("--maximum-timeout");
    }
    if args.paused {
        set.push("--paused");
    }
    if args.tag_list.as_deref().is_some_and(|s| !s.is_empty()) {
        set.push("--tag-list");
    }
    if args
        .maintenance_note
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        set.push("--maintenance-note");
    }
    set
}

fn wrong_token_kind(flag: &str, kind: TokenKind, url: &str) -> anyhow::Error {
    let text = match kind {
        TokenKind::PersonalAccess => format!(
            "{flag} got a personal access token (glpat-…), which cannot register a runner: create the runner first, in the GitLab UI (Settings > CI/CD > Runners > New runner) or with `curl --request POST --header \"PRIVATE-TOKEN: <personal access token>\" --data runner_type=instance_type {url}/api/v4/user/runners`, then register it with `forerunner register --url {url} --token glrt-…`"
        ),
        TokenKind::Job => format!(
            "{flag} got a CI job token (glcbt-…), which cannot register a runner: use a runner authentication token (glrt-…) with --token, or a registration token (GR1348941…) with --registration-token"
        ),
        TokenKind::Registration => format!(
            "{flag} got a registration token (GR1348941…): registration tokens go to --registration-token (-r): `forerunner register --url {url} --registration-token GR1348941…`"
        ),
        _ => format!("{flag} got a {}", kind.describe()),
    };
    anyhow::anyhow!(text)
}

pub(crate) async fn run(args: RegisterArgs) -> anyhow::Result<ExitCode> {
    let log = Logger::stderr();
    log.runtime_platform();
    let config_path = args.config.path();
    let prompter = Prompter {
        interactive: !args.non_interactive && std::io::stdin().is_terminal(),
    };
    let mut doc = ConfigDocument::load(&config_path)?;
    let typed = doc.typed()?;
    // A bad template must fail before anything is created on the server.
    let template = match &args.template_config {
        Some(path) => Some(load_template(path)?),
        None => None,
    };

    let url = prompter.require(
        args.url.as_deref(),
        "Enter the GitLab instance URL (for example, https://gitlab.com/):",
        None,
        "GitLab instance URL",
        "--url or set CI_SERVER_URL",
    )?;
    let client = Client::for_runner(&RunnerConfig {
        url: url.clone(),
        tls_ca_file: args.settings.tls_ca_file.clone(),
        tls_cert_file: args.settings.tls_cert_file.clone(),
        tls_key_file: args.settings.tls_key_file.clone(),
        ..Default::default()
    })
    .map_err(|e| anyhow::anyhow!("{e}: check --url and the --tls-* files"))?;
    let base = client.base_url().to_owned();

    // Decide the flow before any request, so mistakes cost nothing.
    let given_token = args
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let (token, flow) = match given_token {
        Some(t) => match TokenKind::of(t) {
            TokenKind::CreatedRunner => (
                t.to_owned(),
                Flow::Authentication {
                    from_token_flag: true,
                },
            ),
            kind @ (TokenKind::Registration | TokenKind::PersonalAccess | TokenKind::Job) => {
                return Err(wrong_token_kind("--token", kind, &base))
            }
            _ => {
                log.info("Token specified trying to verify runner...", &[]);
                log.warn("If you want to register use the '-r' instead of '-t'.", &[]);
                (t.to_owned(), Flow::VerifyLegacyToken)
            }
        },
        None => {
            let t = prompter.require(
                args.registration_token.as_deref(),
                "Enter the registration token:",
                None,
                "registration token",
                "--token glrt-… (runner authentication token) or --registration-token (legacy), or set CI_SERVER_TOKEN or REGISTRATION_TOKEN",
            )?;
            match TokenKind::of(&t) {
                TokenKind::CreatedRunner => (
                    t,
                    Flow::Authentication {
                        from_token_flag: false,
                    },
                ),
                kind @ (TokenKind::PersonalAccess | TokenKind::Job) => {
                    return Err(wrong_token_kind("--registration-token", kind, &base))
                }
                _ => (t, Flow::Legacy),
            }
        }
    };

    if let Flow::Authentication { from_token_flag } = flow {
        let set = server_side_flags(&args);
        if !set.is_empty() {
            if from_token_flag {
                bail!(
                    "runner configuration other than name and executor configuration is reserved and cannot be specified when registering with a runner authentication token (glrt-…): {} given (mind REGISTER_LOCKED, REGISTER_RUN_UNTAGGED, RUNNER_TAG_LIST and the other REGISTER_* variables too). These settings are set where the runner was created: in the GitLab UI (Settings > CI/CD > Runners > edit the runner) or with `POST /api/v4/user/runners`; run the command again without them",
                    set.join(", ")
                );
            }
            log.warn(
                &format!(
                    "You have specified an authentication token in the legacy parameter --registration-token. This has triggered the 'legacy-compatible registration process' which has resulted in the following command line parameters being ignored: {}. These settings are set where the runner was created (GitLab UI or POST /api/v4/user/runners); use --token next time",
                    set.join(", ")
                ),
                &[],
            );
        }
    }

    let system_id = load_system_id(&config_path, &log);
    let existing: Vec<usize> = typed
        .runners
        .iter()
        .enumerate()
        .filter(|(_, r)| r.token == token && !token.is_empty())
        .map(|(i, _)| i)
        .collect();

    let (details, name) = match flow {
        Flow::Legacy => {
            let name = prompter
                .ask(
                    args.name.as_deref(),
                    "Enter a description for the runner:",
                    Some(&hostname()),
                )
                .unwrap_or_else(hostname);
            let tags = prompter
                .ask(
                    args.tag_list.as_deref(),
                    "Enter tags for the runner (comma-separated):",
                    None,
                )
                .unwrap_or_default();
            let note = prompter.ask(
                args.maintenance_note.as_deref(),
                "Enter optional maintenance note for the runner:",
                None,
            );
            let tag_list: Vec<String> = tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            log.warn(DEPRECATION, &[]);
            if let Some(level) = args.access_level.as_deref().filter(|l| !l.is_empty()) {
                if !matches!(level, "not_protected" | "ref_protected") {
                    bail!("given access-level {level:?} is not valid: use --access-level=not_protected or --access-level=ref_protected");
                }
            }
            let request = RegisterRunnerRequest {
                token: token.clone(),
                attributes: RunnerAttributes {
                    description: Some(name.clone()),
                    maintenance_note: note.filter(|n| !n.is_empty()),
                    run_untagged: Some(args.run_untagged || tag_list.is_empty()),
                    tag_list: (!tag_list.is_empty()).then_some(tag_list),
                    locked: Some(args.locked),
                    access_level: args.access_level.clone().filter(|l| !l.is_empty()),
                    maximum_timeout: args.maximum_timeout.filter(|t| *t != 0),
                    paused: Some(args.paused),
                    ..Default::default()
                },
                info: Some(runner_info(None, None)),
            };
            let details = match client.register_runner(&request).await {
                Ok(d) => {
                    log.info(
                        "Registering runner... succeeded",
                        &[("runner", &short(&token))],
                    );
                    d
                }
                Err(err) => return Err(legacy_error(&err, &base, &token)),
            };
            (details, name)
        }
        Flow::Authentication { .. } | Flow::VerifyLegacyToken => {
            let request = VerifyRunnerRequest {
                token: token.clone(),
                system_id: Some(system_id.clone()),
                info: Some(runner_info(
                    args.settings.executor.as_deref(),
                    args.settings.shell.as_deref(),
                )),
            };
            let details = match client.verify_runner(&request).await {
                Ok(d) if d.id != 0 || flow == Flow::VerifyLegacyToken => {
                    let state = if flow == Flow::VerifyLegacyToken {
                        "is alive"
                    } else {
                        "is valid"
                    };
                    log.info(
                        &format!("Verifying runner... {state}"),
                        &[("runner", &short(&token))],
                    );
                    d
                }
                Ok(_) => bail!("failed to verify the runner: the server at {base} answered with runner id 0; is it a GitLab server?"),
                Err(err) if err.is_forbidden() => bail!(
                    "verifying runner... is not valid: the server at {base} does not know the runner authentication token {}… (the runner was deleted, or its token was reset or has expired). Create a runner in the GitLab UI or with `POST /api/v4/user/runners` and register with its new token",
                    short(&token)
                ),
                Err(err) if err.status() == Some(404) => bail!(
                    "failed to verify the runner: {err}: is --url the GitLab base URL (like https://gitlab.example.com, without /api/v4)?"
                ),
                Err(err) => bail!(
                    "failed to verify the runner; you may be having network problems: {err} (check --url and that the server is reachable)"
                ),
            };
            if !existing.is_empty() {
                log.warn(
                    "A runner with this system ID and token has already been registered.",
                    &[("runner", &short(&token))],
                );
            }
            let name = prompter
                .ask(
                    args.name.as_deref(),
                    "Enter a name for the runner. This is stored only in the local config.toml file:",
                    Some(&hostname()),
                )
                .unwrap_or_else(hostname);
            (details, name)
        }
    };
    // The official runner keeps the glrt- token as given (not the echoed one).
    let stored_token = if flow == Flow::Legacy {
        details.token.clone()
    } else {
        token.clone()
    };

    // The executor questions may wait on the terminal: Ctrl-C there must
    // not leave an orphan runner on the server.
    let leave_runner = args.leave_runner;
    let (limit, request_concurrency) = (args.settings.limit, args.settings.request_concurrency);
    let runners = typed.runners.clone();
    let token_for_finish = stored_token.clone();
    let finishing = tokio::task::spawn_blocking(move || {
        finish(
            &args,
            &prompter,
            &mut doc,
            &runners,
            Registered {
                url: &url,
                name: &name,
                details: &details,
                token: &token_for_finish,
            },
            template.as_ref(),
            &log,
        )
    });
    let outcome = tokio::select! {
        joined = finishing => joined.unwrap_or_else(|e| Err(anyhow::anyhow!("registration failed: {e}"))),
        _ = tokio::signal::ctrl_c() => {
            log.warn("Interrupted; config.toml was not changed", &[]);
            if !leave_runner {
                undo_registration(&client, flow, &stored_token, &system_id, &log).await;
            }
            // The prompt's blocking read cannot be cancelled: leave now.
            std::process::exit(1);
        }
    };
    if let Err(err) = outcome {
        if !leave_runner {
            undo_registration(&client, flow, &stored_token, &system_id, &log).await;
        }
        return Err(err);
    }

    log.info(
        "Runner registered successfully. Feel free to start it, but if it's running already the config should be automatically reloaded!",
        &[],
    );
    log.info(
        &format!(
            "Configuration (with the authentication token) was saved in {:?}",
            config_path.display().to_string()
        ),
        &[],
    );
    let concurrent = typed.concurrent();
    if limit.is_some_and(|l| l > concurrent) {
        log.warn(&format!("The specified runner job concurrency limit is greater than current global concurrent limit ({concurrent}); the runner will never run more than {concurrent} jobs at once (raise `concurrent` in {})", config_path.display()), &[]);
    }
    if request_concurrency.is_some_and(|l| l > concurrent) {
        log.warn(&format!("The specified runner request concurrency is greater than current global concurrent limit ({concurrent})"), &[]);
    }
    Ok(ExitCode::SUCCESS)
}

/// The error for a failed legacy registration, with cause and fix.
fn legacy_error(err: &ApiError, base: &str, token: &str) -> anyhow::Error {
    let short = short(token);
    match err.status() {
        Some(403) => anyhow::anyhow!(
            "registering runner... forbidden (check registration token): the server at {base} did not accept {short}… as a registration token ({err}). --registration-token (-r) takes the registration token (GR1348941…) of an instance, group or project; a personal access token (glpat-…) is not one (it creates runners with `POST /api/v4/user/runners`), and a runner authentication token (glrt-…) of a runner created in the UI or with `POST /api/v4/user/runners` goes to --token: `forerunner register --url {base} --token glrt-…`"
        ),
        Some(410) => anyhow::anyhow!(
            "registering runner... failed: the server at {base} has registration tokens disabled ({err}). Create the runner in the GitLab UI (Settings > CI/CD > Runners > New runner) or with `POST /api/v4/user/runners`, then register it with `forerunner register --url {base} --token glrt-…`"
        ),
        Some(404) => anyhow::anyhow!(
            "registering runner... failed: {err}: is --url the GitLab base URL (like https://gitlab.example.com, without /api/v4)?"
        ),
        Some(400) => anyhow::anyhow!(
            "registering runner... failed: the server rejected the runner's settings: {err} (fix the flags named in the message, e.g. give --tag-list or --run-untagged)"
        ),
        _ => anyhow::anyhow!(
            "failed to register the runner: {err} (check --url and that the server is reachable)"
        ),
    }
}

/// Unregisters a runner whose registration could not be completed.
async fn undo_registration(
    client: &Client,
    flow: Flow,
    token: &str,
    system_id: &str,
    log: &Logger,
) {
    let result = match flow {
        Flow::Authentication { .. } => client.unregister_manager(token, system_id).await,
        Flow::Legacy => client.unregister_runner(token).await,
        // Nothing was created.
        Flow::VerifyLegacyToken => return,
    };
    match result {
        Ok(()) => log.warn(
            "Registration failed; the runner was unregistered from GitLab again (use --leave-runner to keep it)",
            &[("runner", &short(token))],
        ),
        Err(err) => log.error(
            &format!("Registration failed and unregistering the runner failed too: {err}; remove it in the GitLab UI"),
            &[("runner", &short(token))],
        ),
    }
}

fn now_seconds() -> DateTime<Utc> {
    let now = Utc::now();
    now.with_nanosecond(0).unwrap_or(now)
}

/// What the server registered.
struct Registered<'a> {
    url: &'a str,
    name: &'a str,
    details: &'a RunnerRegistrationDetails,
    token: &'a str,
}

/// A string value of the template's entry (`section` is `None` for the entry itself).
fn template_str(template: Option<&Table>, section: Option<&str>, key: &str) -> Option<String> {
    let table = template?;
    let table = match section {
        Some(s) => table.get(s)?.as_table()?,
        None => table,
    };
    table.get(key)?.as_str().map(str::to_owned)
}

/// Executor questions, the new or updated entry, and the save.
fn finish(
    args: &RegisterArgs,
    prompter: &Prompter,
    doc: &mut ConfigDocument,
    runners: &[RunnerConfig],
    registered: Registered<'_>,
    template: Option<&Table>,
    log: &Logger,
) -> anyhow::Result<()> {
    let Registered {
        url,
        name,
        details,
        token,
    } = registered;
    let template_executor = template_str(template, None, "executor");
    let executor = prompter.require(
        args.settings.executor.as_deref(),
        &format!("Enter an executor: {}:", EXECUTORS.join(", ")),
        template_executor.as_deref(),
        "executor",
        "--executor shell|docker|custom or set RUNNER_EXECUTOR",
    )?;
    if !EXECUTORS.contains(&executor.as_str()) {
        bail!(
            "executor {executor:?} is not supported by forerunner: use --executor shell, docker or custom"
        );
    }
    let docker_image = if executor == "docker" {
        let template_image = template_str(template, Some("docker"), "image");
        Some(prompter.require(
            args.settings.docker.image.as_deref(),
            "Enter the default Docker image (for example, ruby:3.3):",
            template_image.as_deref(),
            "default Docker image",
            "--docker-image or set DOCKER_IMAGE",
        )?)
    } else {
        args.settings.docker.image.clone()
    };
    if executor == "custom" && args.settings.custom.run_exec.is_none() {
        log.warn(
            "The custom executor needs run_exec: set it in [runners.custom] or register with --custom-run-exec",
            &[],
        );
    }

    let mut keys: Vec<(String, Value)> = vec![
        ("name".into(), Value::from(name)),
        ("url".into(), Value::from(url)),
        ("id".into(), Value::from(details.id)),
        ("token".into(), Value::from(token)),
        (
            "token_obtained_at".into(),
            datetime_value(Some(now_seconds())),
        ),
        (
            "token_expires_at".into(),
            datetime_value(details.token_expires_at),
        ),
        ("executor".into(), Value::from(executor.as_str())),
    ];
    // The official runner's docker defaults, unless a template's
    // [runners.docker] provides the settings (flags still win).
    let template_has_docker = template.is_some_and(|t| t.get("docker").is_some());
    let (settings, sections) = args.settings.entry(
        &executor,
        docker_image.as_deref(),
        executor == "docker" && !template_has_docker,
    );
    keys.extend(settings);

    let same: Vec<usize> = runners
        .iter()
        .enumerate()
        .filter(|(_, r)| r.token == token)
        .map(|(i, _)| i)
        .collect();
    if let Some(&first) = same.first() {
        for (k, v) in &keys {
            doc.set_runner_value(first, None, k, v.clone())?;
        }
        for (section, pairs) in &sections {
            for (k, v) in pairs {
                doc.set_runner_value(first, Some(section), k, v.clone())?;
            }
        }
        // Extra copies of the same token poll as one runner manager: drop them.
        doc.remove_runners(&same[1..]);
        log.info(
            &format!(
                "Updated the existing entry #{} for this token in {} instead of adding a duplicate{}",
                first + 1,
                doc.path().display(),
                if same.len() > 1 {
                    format!(" (and removed {} more copies of it)", same.len() - 1)
                } else {
                    String::new()
                }
            ),
            &[("name", name), ("runner", &short(token))],
        );
        if template.is_some() {
            log.warn(
                "--template-config completes new entries only; the existing entry keeps its other settings",
                &[],
            );
        }
    } else {
        let new = NewRunner { keys, sections };
        match template {
            Some(t) => doc.append_runner_with_template(&new, t)?,
            None => doc.append_runner(&new)?,
        }
    }
    save(doc).context("the runner was registered but config.toml could not be saved")
}
