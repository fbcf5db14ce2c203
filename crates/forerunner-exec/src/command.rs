//! `forerunner exec` from start to end: find the repository, pick the commit
//! (or snapshot the work tree), start the embedded coordinator, plan the
//! pipeline exactly as it would (stopping on `.gitlab-ci.yml` errors), start
//! the embedded runner, create the pipeline, follow it, and summarise.
//!
//! Where things live:
//! - the data directory (temporary, or `--keep-data DIR`): the coordinator's
//!   database, traces and artifacts (`coordinator/`), the source repository
//!   it imports (`source.git`), and the logs of both halves (`exec.log`,
//!   `runner.log`);
//! - the runner's directory, kept between runs per repository
//!   (`$XDG_CACHE_HOME/forerunner/exec/<name>-<hash>`, else
//!   `~/.cache/…`): `cache/` for `cache:` and `builds/` for checkouts.
//!   Checkouts of a run are removed when it ends (unless `--keep-data`);
//!   anything else jobs put under `$CI_BUILDS_DIR` stays, so a job can keep
//!   e.g. a build tree there from one run to the next.

use std::collections::BTreeSet;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use forerunner_coordinator::ci::create::PipelineRequest;
use forerunner_coordinator::ci::CiError;
use forerunner_coordinator::domain::{PipelineVariable, Project};
use forerunner_pipeline::model::When;
use forerunner_pipeline::{Diagnostic, NotCreated};
use forerunner_protocol::tokens::short_token;

use crate::args::{Environment, ExecArgs, ExecutorKind, Options, Source};
use crate::diagnostics;
use crate::embedded::{Coordinator, Runner, RunnerSetup};
use crate::follow::{self, Interrupts};
use crate::order::may_run_side_by_side;
use crate::printer::{Layout, Printer};
use crate::repo::{Repo, SourceRepo, Target};
use crate::report::{self, Verdict};
use crate::style::{Style, CYAN, GREEN, RED, YELLOW};

/// The configuration file exec looks for.
const CI_FILE: &str = ".gitlab-ci.yml";

/// The pipeline variable that tells rules and jobs they run under exec.
pub const EXEC_VARIABLE: &str = "FORERUNNER_EXEC";

/// Exit status: nothing ran.
const NOT_RUN: u8 = 2;
/// Exit status: interrupted.
const INTERRUPTED: u8 = 130;

/// Why exec stops before running anything (exit status 2).
enum NotRun {
    /// A problem explained by `message`, with an optional `help` line.
    Explained {
        message: String,
        help: Option<String>,
    },
    /// Diagnostics were printed already.
    Printed,
    /// Ctrl-C during the preparation.
    Interrupted,
}

impl From<anyhow::Error> for NotRun {
    fn from(e: anyhow::Error) -> Self {
        NotRun::Explained {
            message: format!("{e:#}"),
            help: None,
        }
    }
}

impl From<crate::repo::RepoError> for NotRun {
    fn from(e: crate::repo::RepoError) -> Self {
        NotRun::Explained {
            message: e.to_string(),
            help: None,
        }
    }
}

fn not_run(message: impl Into<String>, help: Option<String>) -> NotRun {
    NotRun::Explained {
        message: message.into(),
        help,
    }
}

/// Messages on stderr: `error:`, `warning:`, `note:`, `help:`.
#[derive(Clone, Copy)]
struct Messages {
    style: Style,
}

impl Messages {
    /// Writes to stderr; a closed stderr is not worth a panic.
    fn raw(&self, text: &str) {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
    fn print(&self, label: &str, code: &str, text: &str) {
        self.raw(&format!(
            "{}{} {text}\n",
            self.style.paint(code, label),
            self.style.paint(crate::style::BOLD, ":")
        ));
    }
    fn error(&self, text: &str) {
        self.print("error", RED, text);
    }
    fn warning(&self, text: &str) {
        self.print("warning", YELLOW, text);
    }
    fn note(&self, text: &str) {
        self.print("note", CYAN, text);
    }
    fn help(&self, text: &str) {
        self.print("help", CYAN, text);
    }
}

/// Where the coordinator's data goes.
enum DataDir {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            DataDir::Temporary(t) => t.path(),
            DataDir::Kept(p) => p,
        }
    }

    fn create(keep: Option<&Path>) -> Result<DataDir, NotRun> {
        match keep {
            None => tempfile::Builder::new()
                .prefix("forerunner-exec-")
                .tempdir()
                .map(DataDir::Temporary)
                .map_err(|e| not_run(format!("failed to create a temporary directory: {e}"), None)),
            Some(dir) => {
                let empty = match std::fs::read_dir(dir) {
                    Ok(mut entries) => entries.next().is_none(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                    Err(e) => {
                        return Err(not_run(
                            format!("cannot use {} for --keep-data: {e}", dir.display()),
                            None,
                        ))
                    }
                };
                if !empty {
                    return Err(not_run(
                        format!("--keep-data {} is not empty", dir.display()),
                        Some(
                            "give a new directory (each run keeps a whole coordinator there)"
                                .into(),
                        ),
                    ));
                }
                std::fs::create_dir_all(dir).map_err(|e| {
                    not_run(format!("failed to create {}: {e}", dir.display()), None)
                })?;
                Ok(DataDir::Kept(dir.to_owned()))
            }
        }
    }
}

/// Runs `forerunner exec`; the exit status is documented in `--help`.
pub async fn exec(args: ExecArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let var = |k: &str| std::env::var(k).ok();
    let env = Environment {
        var: &var,
        stdout_tty: std::io::stdout().is_terminal(),
        current_dir: std::env::current_dir().context("failed to read the current directory")?,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let color_choice = args.color;
    let messages = Messages {
        style: Style {
            color: match color_choice {
                crate::args::ColorChoice::Always => true,
                crate::args::ColorChoice::Never => false,
                crate::args::ColorChoice::Auto => {
                    std::io::stderr().is_terminal()
                        && var("NO_COLOR").is_none_or(|v| v.is_empty())
                        && var("TERM").as_deref() != Some("dumb")
                }
            },
        },
    };
    let opts = match Options::resolve(args, &env) {
        Ok(o) => o,
        Err(e) => {
            messages.error(&e.0);
            return Ok(ExitCode::from(NOT_RUN));
        }
    };
    let mut interrupts = Interrupts::install().context("failed to install the Ctrl-C handler")?;
    match run(&opts, messages, &mut interrupts, started).await {
        Ok(code) => Ok(code),
        Err(NotRun::Printed) => Ok(ExitCode::from(NOT_RUN)),
        Err(NotRun::Interrupted) => {
            messages.note("interrupted before any job started");
            Ok(ExitCode::from(INTERRUPTED))
        }
        Err(NotRun::Explained { message, help }) => {
            messages.error(&message);
            if let Some(help) = help {
                messages.help(&help);
            }
            Ok(ExitCode::from(NOT_RUN))
        }
    }
}

/// Races `f` against Ctrl-C during the preparation.
async fn unless_interrupted<T>(
    interrupts: &mut Interrupts,
    f: impl std::future::Future<Output = Result<T, NotRun>>,
) -> Result<T, NotRun> {
    tokio::select! {
        r = f => r,
        _ = interrupts.next() => Err(NotRun::Interrupted),
    }
}

async fn run(
    opts: &Options,
    messages: Messages,
    interrupts: &mut Interrupts,
    started: Instant,
) -> Result<ExitCode, NotRun> {
    let repo = Repo::discover(&opts.directory).await?;
    let data = DataDir::create(opts.keep_data.as_deref())?;
    init_logging(&data.path().join("exec.log"));
    let source = SourceRepo::create(&data.path().join("source.git"), &repo).await?;
    let target = unless_interrupted(interrupts, async {
        Ok(match &opts.source {
            Source::Head => repo.head_target().await?,
            Source::Ref(name) => repo.ref_target(name).await?,
            Source::WorkingTree => {
                source
                    .snapshot(&repo, &data.path().join("snapshot.index"))
                    .await?
            }
        })
    })
    .await?;
    source.publish(&target).await?;
    if source.file_at(&target.sha, CI_FILE).await.is_none() {
        return Err(missing_ci_file(&repo, &target, &opts.source));
    }
    if opts.source == Source::Head {
        let changes = repo.uncommitted_changes().await;
        if changes > 0 {
            messages.note(&format!(
                "{changes} uncommitted change{} {} not included; pass --working-tree to run {}",
                if changes == 1 { "" } else { "s" },
                if changes == 1 { "is" } else { "are" },
                if changes == 1 { "it" } else { "them" },
            ));
        }
    }
    if opts.source == Source::WorkingTree && !target.snapshot {
        messages.note("the working tree has no uncommitted change: running HEAD");
    }

    let coordinator = unless_interrupted(interrupts, async {
        Ok(Coordinator::start(&data.path().join("coordinator")).await?)
    })
    .await?;
    let session = Session {
        opts,
        messages,
        started,
        repo,
        data,
        source,
        target,
    };
    let result = session.with_coordinator(&coordinator, interrupts).await;
    coordinator.stop().await;
    match &session.data {
        DataDir::Kept(dir) => messages.note(&format!(
            "kept the coordinator's data in {} (database, traces, artifacts, exec.log, runner.log)",
            dir.display()
        )),
        DataDir::Temporary(_) => {}
    }
    result
}

/// What the run knows once the commit is chosen.
struct Session<'a> {
    opts: &'a Options,
    messages: Messages,
    started: Instant,
    repo: Repo,
    data: DataDir,
    source: SourceRepo,
    target: Target,
}

impl Session<'_> {
    /// Plans, runs and reports the pipeline on a started coordinator.
    async fn with_coordinator(
        &self,
        coordinator: &Coordinator,
        interrupts: &mut Interrupts,
    ) -> Result<ExitCode, NotRun> {
        let Session {
            opts,
            messages,
            started,
            repo,
            data,
            source,
            target,
        } = self;
        let (opts, messages, started) = (*opts, *messages, *started);
        let style = Style { color: opts.color };
        let default_branch = repo.default_branch().await;
        let project_id = coordinator
            .api
            .create_project(&repo.project_path(), &source.path, &default_branch)
            .await?;
        let project: Project = coordinator
            .store
            .namespaces
            .project_by_id(project_id)
            .await
            .map_err(anyhow::Error::from)?
            .ok_or_else(|| {
                not_run(
                    "the embedded coordinator lost the project it just created",
                    None,
                )
            })?;
        let root = coordinator
            .store
            .users
            .user_by_username(forerunner_coordinator::bootstrap::ROOT_USERNAME)
            .await
            .map_err(anyhow::Error::from)?;
        let request = PipelineRequest {
            ref_name: target.ref_name.clone(),
            // `FORERUNNER_EXEC=true`, so rules and jobs can tell a local
            // run (unless a --variable sets it).
            variables: std::iter::once((EXEC_VARIABLE.to_owned(), "true".to_owned()))
                .filter(|(k, _)| !opts.variables.iter().any(|(given, _)| given == k))
                .chain(opts.variables.iter().cloned())
                .map(|(key, value)| PipelineVariable {
                    key,
                    value,
                    variable_type: "env_var".into(),
                })
                .collect(),
            user_id: root.map(|u| u.id),
            source: "push".into(),
            selection: opts.selection.clone(),
        };
        let prepared = unless_interrupted(interrupts, async {
            match coordinator.ci.prepare_pipeline(&project, &request).await {
                Ok(p) => Ok(p),
                Err(e) => Err(explain_refusal(e, source, target, messages).await),
            }
        })
        .await?;
        print_diagnostics(&prepared.warnings, source, &target.sha, messages).await;

        let plan = &prepared.plan;
        let header = format!(
            "{} ({} job{} in {} stage{}{})",
            target.describe(),
            plan.jobs.len(),
            if plan.jobs.len() == 1 { "" } else { "s" },
            plan.stages.len(),
            if plan.stages.len() == 1 { "" } else { "s" },
            if target.snapshot {
                ", uncommitted changes included"
            } else {
                ""
            },
        );
        if opts.list {
            let mut out = String::new();
            out.push_str(&style.status(GREEN, "Planned", &format!("pipeline for {header}")));
            out.push('\n');
            if opts.verbose {
                out.push('\n');
                out.push_str(&plan.to_string());
            } else {
                out.push_str(&report::list(plan, &opts.selection, style));
            }
            // A closed stdout (`| head`) is not worth a panic.
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
            note_unplayed(plan, &opts.selection, messages);
            return Ok(ExitCode::SUCCESS);
        }

        if opts.executor == ExecutorKind::Docker {
            if let Err(e) = forerunner_runner::executors::docker::Engine::connect(None).await {
                return Err(not_run(
                    format!("the docker executor needs a Docker engine: {e}"),
                    Some("start Docker (or set DOCKER_HOST), or run with --executor shell".into()),
                ));
            }
        }
        let home = runner_home(repo, data.path());
        let builds_dir = home.join("builds");
        let cache_dir = home.join("cache");
        for dir in [&builds_dir, &cache_dir] {
            std::fs::create_dir_all(dir)
                .map_err(|e| not_run(format!("failed to create {}: {e}", dir.display()), None))?;
        }
        // The docker executor keeps its host-side builds under the working
        // directory: make that the runner's directory, not the user's.
        if opts.executor == ExecutorKind::Docker {
            std::env::set_current_dir(&home)
                .map_err(|e| not_run(format!("failed to enter {}: {e}", home.display()), None))?;
        }
        let tags: BTreeSet<String> = plan
            .jobs
            .iter()
            .flat_map(|j| j.tags.iter().cloned())
            .collect();
        let token = coordinator
            .api
            .create_runner(&tags.into_iter().collect::<Vec<_>>())
            .await?;
        let setup = RunnerSetup {
            url: coordinator.base_url.clone(),
            token: token.clone(),
            executor: opts.executor.as_str().into(),
            concurrency: opts.concurrency,
            builds_dir: builds_dir.clone(),
            cache_dir,
            docker_image: opts.docker_image.clone(),
            log_file: data.path().join("runner.log"),
        };
        let runner = Runner::start(&setup);
        let play = plan
            .jobs
            .iter()
            .filter(|j| j.when == When::Manual && opts.selection.names(j))
            .map(|j| j.name.clone())
            .collect();
        let layout = Layout::for_jobs(
            may_run_side_by_side(plan, opts.concurrency),
            plan.jobs.iter().map(|j| j.name.as_str()),
        );
        let mut printer = Printer::new(style, opts.tty, layout);
        let pipeline = match coordinator
            .ci
            .create_prepared(&project, request, prepared.clone())
            .await
        {
            Ok(p) => p,
            Err(e) => {
                let _ = runner.stop(Duration::from_secs(1)).await;
                return Err(anyhow::Error::from(e)
                    .context("failed to create the pipeline")
                    .into());
            }
        };
        printer.status(
            GREEN,
            "Running",
            &format!(
                "pipeline #{} for {header} with the {} executor",
                pipeline.id,
                opts.executor.as_str()
            ),
        );
        if runner.is_finished() {
            let e = runner.failure().await;
            return Err(e.context("the embedded runner did not start").into());
        }
        let followed = follow::follow(
            follow::Context {
                ci: &coordinator.ci,
                store: &coordinator.store,
                api: &coordinator.api,
                project_id,
                pipeline_id: pipeline.id,
                play,
                runner_stop: &runner.stop,
                verbose: opts.verbose,
                color: opts.color,
                started,
            },
            &mut printer,
            interrupts,
        )
        .await;
        let grace = if matches!(&followed, Ok(f) if f.forced) {
            Duration::ZERO
        } else {
            Duration::from_secs(10)
        };
        if let Err(e) = runner.stop(grace).await {
            messages.warning(&format!("{e:#}"));
        }
        if !matches!(data, DataDir::Kept(_)) {
            // This run's checkouts (the runner names them by its token).
            let short = short_token(&token);
            let _ = std::fs::remove_dir_all(builds_dir.join(&short));
            let _ = std::fs::remove_dir_all(home.join("docker-builds").join(&short));
        }
        let followed = match followed {
            Ok(f) => f,
            Err(e) => {
                messages.error(&format!("lost track of the pipeline: {e:#}"));
                return Ok(ExitCode::FAILURE);
            }
        };
        printer.line("");
        let mut text = report::summary(&followed.rows, style);
        text.push('\n');
        text.push_str(&report::closing(
            followed.verdict,
            started.elapsed(),
            &followed.rows,
            style,
        ));
        printer.line(&text);
        printer.flush();
        if !followed.unplayed_manual.is_empty() {
            let names = followed.unplayed_manual.join(", ");
            let quoted: Vec<String> = followed
                .unplayed_manual
                .iter()
                .map(|n| shell_quote(n))
                .collect();
            messages.note(&format!(
                "manual job{} not run: {names}; name {} to run {}: forerunner exec {}",
                if followed.unplayed_manual.len() == 1 {
                    ""
                } else {
                    "s"
                },
                if followed.unplayed_manual.len() == 1 {
                    "it"
                } else {
                    "them"
                },
                if followed.unplayed_manual.len() == 1 {
                    "it"
                } else {
                    "them"
                },
                quoted.join(" ")
            ));
        }
        Ok(match followed.verdict {
            _ if followed.interrupted => ExitCode::from(INTERRUPTED),
            Verdict::Passed => ExitCode::SUCCESS,
            Verdict::Failed | Verdict::Canceled | Verdict::Blocked => ExitCode::FAILURE,
        })
    }
}

/// A name as typed in a shell.
fn shell_quote(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':'))
    {
        name.to_owned()
    } else {
        format!("'{}'", name.replace('\'', "'\\''"))
    }
}

fn note_unplayed(
    plan: &forerunner_pipeline::Plan,
    selection: &forerunner_pipeline::Selection,
    messages: Messages,
) {
    let unplayed: Vec<String> = plan
        .jobs
        .iter()
        .filter(|j| j.when == When::Manual && !selection.names(j))
        .map(|j| shell_quote(&j.name))
        .collect();
    if !unplayed.is_empty() {
        messages.note(&format!(
            "manual jobs run only when named: forerunner exec {}",
            unplayed.join(" ")
        ));
    }
}

/// Why there is no `.gitlab-ci.yml` to run, and what to do.
fn missing_ci_file(repo: &Repo, target: &Target, source: &Source) -> NotRun {
    let at = target.describe();
    if repo.has_work_tree_file(CI_FILE) && *source != Source::WorkingTree {
        not_run(
            format!("{CI_FILE} is in the working tree but not in {at}"),
            Some("commit it, or pass --working-tree to run the files as they are".into()),
        )
    } else {
        not_run(
            format!(
                "there is no {CI_FILE} at the top of {} ({at})",
                repo.toplevel.display()
            ),
            Some(format!(
                "forerunner exec runs the pipeline a repository defines in {CI_FILE}; see https://docs.gitlab.com/ci/yaml/"
            )),
        )
    }
}

/// Prints diagnostics with their source lines.
async fn print_diagnostics(
    diagnostics: &[Diagnostic],
    source: &SourceRepo,
    sha: &str,
    messages: Messages,
) {
    for d in diagnostics {
        let text = source.file_at(sha, &d.mark.file).await;
        messages.raw(&diagnostics::render(d, text.as_deref(), messages.style));
    }
}

/// Turns a refused pipeline into what the user reads.
async fn explain_refusal(
    e: CiError,
    source: &SourceRepo,
    target: &Target,
    messages: Messages,
) -> NotRun {
    match e {
        CiError::Config(diagnostics) => {
            print_diagnostics(&diagnostics, source, &target.sha, messages).await;
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            messages.error(&format!(
                "{CI_FILE} has {errors} error{}; nothing was run",
                if errors == 1 { "" } else { "s" }
            ));
            NotRun::Printed
        }
        CiError::NotCreated(NotCreated::WorkflowRules) => not_run(
            format!("no pipeline for {}: workflow:rules leave it out", target.describe()),
            Some("exec creates push pipelines; a rule waiting for another source can be met with e.g. --variable CI_PIPELINE_SOURCE=merge_request_event".into()),
        ),
        CiError::NotCreated(NotCreated::NoJobs) => not_run(
            format!("no pipeline for {}: the rules of every job leave it out", target.describe()),
            Some("see which rules apply with --list --ref REF, or set the variables they test with --variable".into()),
        ),
        CiError::Selection(e) => not_run(e.to_string(), Some("see the jobs with forerunner exec --list".into())),
        CiError::Rejected(messages) => not_run(messages.join("; "), None),
        other => not_run(format!("failed to plan the pipeline: {other}"), None),
    }
}

/// The runner's directory for `repo`, kept between runs (see the module
/// docs); inside the data directory when there is no home.
fn runner_home(repo: &Repo, data: &Path) -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = var("XDG_CACHE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| h.join(".cache")));
    match base {
        Some(base) => base.join("forerunner").join("exec").join(format!(
            "{}-{:016x}",
            repo.project_path(),
            fnv1a(repo.toplevel.as_os_str().as_encoded_bytes())
        )),
        None => data.join("runner"),
    }
}

/// FNV-1a: a hash that stays the same across Rust versions (the runner's
/// directory must not move when exec is rebuilt).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Sends the coordinator's and runner's `tracing` events to `path` (once per
/// process; later calls keep the first file).
fn init_logging(path: &Path) {
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FORERUNNER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("deploy"), "deploy");
        assert_eq!(shell_quote("test 1/2"), "'test 1/2'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn the_hash_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
