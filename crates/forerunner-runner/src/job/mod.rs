//! Running one job: the stages in the official order, the live trace, and
//! the final report.
//!
//! Stage order (as the official runner): prepare the executor, get the
//! sources, restore caches, download dependency artifacts, `step_script`,
//! `after_script` (always, with its own timeout and `CI_JOB_STATUS`), save
//! caches, upload artifacts, clean up. The first failing stage decides the
//! outcome; cache and artifact problems after the script are reported in the
//! log and fail the job only through artifacts (as GitLab's runner does).
//!
//! Sources, caches and artifacts are the runner's work on the host, through
//! [`Executor::host_path`]; when [`Executor::sources_on_host`] says so (the
//! docker executor), `get_sources` runs there too, with a local shell.
//!
//! Two ways to stop a job: a graceful cancel (the server said `canceling`)
//! stops the script with SIGTERM and still runs `after_script`; an abort
//! (the server said `canceled`/`failed`, or the runner is shutting down
//! hard) kills everything and skips what is left. Who aborted decides the
//! report: a job the server ended is over there and gets no final update
//! (it ends `job_canceled` locally); a job the runner aborted is reported
//! `failed` with `runner_interrupted`.

pub mod archive;
pub mod env;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use forerunner_protocol::failure::FailureReason;
use forerunner_protocol::jobs::{
    ArtifactSpec, Dependency, JobResponse, JobState, JobTraceOutput, StepName, UpdateJobRequest,
    When,
};
use tokio_util::sync::CancellationToken;

use crate::executors::shell::ShellExecutor;
use crate::executors::{Executor, Exit, JobContext, Stage};
use crate::job::env::{BuildSettings, JobDirs, RunnerSide};
use crate::job_log::sender::{PatchReply, SendOutcome, Signal, TraceSender, TraceTransport};
use crate::job_log::{ansi, JobLog};
use crate::shells::bash::{self, GitSources, ScriptEnv, ScriptVar};

/// What the coordinator said about a job update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateReply {
    /// HTTP status (200 accepted, 202 retry later, …).
    pub status: u16,
    /// `Job-Status`.
    pub job_status: Option<String>,
    /// `X-GitLab-Trace-Update-Interval`.
    pub update_interval: Option<u64>,
}

/// The job endpoints of the coordinator, for one job.
#[async_trait]
pub trait JobApi: Send + Sync {
    /// `PUT /api/v4/jobs/:id`.
    async fn update(&self, update: &UpdateJobRequest) -> Result<UpdateReply, String>;
    /// `PATCH /api/v4/jobs/:id/trace`.
    async fn patch_trace(&self, offset: u64, bytes: &[u8]) -> Result<PatchReply, String>;
    /// `GET /api/v4/jobs/:dep/artifacts` into the file `to`.
    async fn download_artifacts(&self, dependency: &Dependency, to: &Path) -> Result<(), String>;
    /// `POST /api/v4/jobs/:id/artifacts` of the zip `file`.
    async fn upload_artifacts(&self, spec: &ArtifactSpec, file: &Path) -> Result<(), String>;
}

/// Adapts a [`JobApi`] to the trace sender.
struct Patcher<'a, A: ?Sized>(&'a A);

impl<A: JobApi + ?Sized> TraceTransport for Patcher<'_, A> {
    async fn patch(&self, offset: u64, bytes: &[u8]) -> Result<PatchReply, String> {
        self.0.patch_trace(offset, bytes).await
    }
}

/// How a job ended, as reported in the final update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    /// `success` or `failed`.
    pub state: JobState,
    /// Why it failed.
    pub failure_reason: Option<FailureReason>,
    /// Exit code of the failing script.
    pub exit_code: Option<i32>,
}

impl JobOutcome {
    fn success() -> Self {
        Self {
            state: JobState::Success,
            failure_reason: None,
            exit_code: None,
        }
    }

    fn failed(reason: FailureReason, exit_code: Option<i32>) -> Self {
        Self {
            state: JobState::Failed,
            failure_reason: Some(reason),
            exit_code,
        }
    }
}

/// Ways to stop a running job from outside.
#[derive(Debug, Clone, Default)]
pub struct StopSignals {
    /// Stop the script gracefully; `after_script` still runs.
    pub cancel: CancellationToken,
    /// Kill everything now. On its own: the runner aborts the job (forceful
    /// shutdown), which is reported `failed` with `runner_interrupted`.
    pub abort: CancellationToken,
    /// Set (before `abort`) when the coordinator ended the job (`Job-Status:
    /// canceled|failed`, `403`, `404`): the job is over on the server, so it
    /// ends as canceled and no final state contradicts the server's.
    pub ended_by_server: CancellationToken,
}

impl StopSignals {
    /// The coordinator ended the job: kill it, remembering who did.
    pub fn end_by_server(&self) {
        self.ended_by_server.cancel();
        self.cancel.cancel();
        self.abort.cancel();
    }

    /// How a stage killed by `abort` ended the job.
    fn aborted(&self) -> JobOutcome {
        if self.ended_by_server.is_cancelled() {
            JobOutcome::failed(FailureReason::Other("job_canceled".into()), None)
        } else {
            JobOutcome::failed(FailureReason::RunnerInterrupted, None)
        }
    }
}

/// What the runner knows that the job payload does not.
#[derive(Debug, Clone)]
pub struct RunContext<'a> {
    /// Runner facts for variables and directories. Its `builds_dir`,
    /// `executor` and `shared_environment` only serve the variables given to
    /// [`Executor::configure`]: afterwards the executor's own answers
    /// ([`Executor::builds_dir`], [`Executor::builds_dir_is_shared`], …)
    /// lay out the job.
    pub runner: RunnerSide<'a>,
    /// Runner name and system id for the header line.
    pub runner_name: &'a str,
    /// `s_…`/`r_…`.
    pub system_id: &'a str,
    /// Local cache directory (`cache_dir`).
    pub cache_dir: &'a Path,
}

fn step<'j>(job: &'j JobResponse, name: &StepName) -> Option<&'j [String]> {
    job.steps
        .iter()
        .find(|s| &s.name == name)
        .map(|s| s.script.as_slice())
}

fn when_applies(when: When, success: bool) -> bool {
    match when {
        When::Always => true,
        When::OnSuccess => success,
        When::OnFailure => !success,
    }
}

/// The URL without `user:password@`.
fn strip_credentials(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Cache keys become one directory name: no separators, no `..`.
fn cache_key_dir(key: &str) -> String {
    let k: String = key
        .chars()
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    if k.is_empty() || k == "." || k == ".." {
        "default".into()
    } else {
        k
    }
}

/// Runs `job` with `exec`, writing its log to `log`, and returns the
/// outcome. The trace is not sent here: see [`run_and_report`].
pub async fn run_job<E: Executor + ?Sized, A: JobApi + ?Sized>(
    job: &JobResponse,
    ctx: &RunContext<'_>,
    exec: &mut E,
    api: &A,
    log: &JobLog,
    stop: &StopSignals,
) -> JobOutcome {
    let started = Instant::now();
    log.line(
        ansi::RESET,
        &format!(
            "Running with forerunner {} ({})",
            ctx.runner.version, ctx.runner.revision
        ),
    );
    log.info(&format!(
        "  on {} {}, system ID: {}",
        ctx.runner_name,
        forerunner_protocol::tokens::short_token(ctx.runner.token),
        ctx.system_id
    ));

    // Settings come from the job's variables; a bad one fails the job before
    // the executor does anything.
    let configured_dirs = env::job_dirs(job, &ctx.runner, exec.builds_dir_is_shared());
    let configured_vars = env::job_variables(job, &ctx.runner, &configured_dirs);
    let settings = match env::build_settings(job, &configured_vars) {
        Ok(s) => s,
        Err(e) => {
            log.line(ansi::RED, &format!("ERROR: Job failed: {}", e.0));
            return JobOutcome::failed(FailureReason::RunnerConfigurationError, None);
        }
    };

    log.section_start(
        "prepare_executor",
        &format!("Preparing the \"{}\" executor", exec.name()),
    );
    let mut sink = |bytes: &[u8]| log.write(bytes);
    let configured = exec.configure(job, &configured_vars, &mut sink).await;
    // The executor, once configured, decides where builds go and whether
    // that directory is shared (the custom executor's config_exec may say).
    let builds_dir = exec.builds_dir();
    let runner = RunnerSide {
        builds_dir: &builds_dir,
        executor: exec.name(),
        shared_environment: exec.shared_environment(),
        ..ctx.runner.clone()
    };
    let dirs = env::job_dirs(job, &runner, exec.builds_dir_is_shared());
    let mut vars = env::job_variables(job, &runner, &dirs);
    let prepared = match configured {
        Err(e) => Err(e),
        Ok(()) => {
            let job_ctx = JobContext {
                job,
                dirs: &dirs,
                variables: &vars,
            };
            exec.prepare(&job_ctx, &mut sink).await
        }
    };
    log.section_end("prepare_executor");
    let outcome = match prepared {
        Err(e) => {
            log.line(ansi::RED, &format!("ERROR: Preparation failed: {e}"));
            JobOutcome::failed(FailureReason::RunnerSystemFailure, None)
        }
        Ok(()) => {
            run_stages(
                job, ctx, exec, api, log, stop, &dirs, &mut vars, &settings, started,
            )
            .await
        }
    };
    cleanup(ctx, exec, log, &dirs).await;
    match (&outcome.state, &outcome.failure_reason, outcome.exit_code) {
        (JobState::Success, _, _) => log.line(ansi::GREEN, "Job succeeded"),
        (_, Some(FailureReason::JobExecutionTimeout), _) => log.line(
            ansi::RED,
            &format!(
                "ERROR: Job failed: execution took longer than {} seconds",
                crate::config::duration::format_go_duration(settings.job_timeout)
            ),
        ),
        (_, _, Some(code)) => log.line(ansi::RED, &format!("ERROR: Job failed: exit code {code}")),
        (_, Some(reason), None) => log.line(
            ansi::RED,
            &format!("ERROR: Job failed: {}", reason.as_str()),
        ),
        _ => log.line(ansi::RED, "ERROR: Job failed"),
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn run_stages<E: Executor + ?Sized, A: JobApi + ?Sized>(
    job: &JobResponse,
    ctx: &RunContext<'_>,
    exec: &mut E,
    api: &A,
    log: &JobLog,
    stop: &StopSignals,
    dirs: &JobDirs,
    vars: &mut Vec<forerunner_protocol::jobs::JobVariable>,
    settings: &BuildSettings,
    started: Instant,
) -> JobOutcome {
    let remaining = |cap: Duration| cap.min(settings.job_timeout.saturating_sub(started.elapsed()));
    let script_vars = |vars: &[forerunner_protocol::jobs::JobVariable]| -> Vec<ScriptVar> {
        vars.iter()
            .map(|v| ScriptVar {
                key: v.key.clone(),
                value: v.value.clone(),
                file: v.file,
            })
            .collect()
    };
    let host_project = exec.host_path(&dirs.project_dir);

    // Sources, caches and artifacts: any failure here fails the job before
    // its script runs.
    let mut outcome: Option<JobOutcome> = None;
    {
        // Executors that cannot count on git in the job's environment have
        // the sources fetched here, on the host, into the same directory.
        let on_host = exec.sources_on_host();
        let (project_dir, tmp_dir) = if on_host {
            (
                host_project.to_string_lossy().into_owned(),
                exec.host_path(&dirs.tmp_dir).to_string_lossy().into_owned(),
            )
        } else {
            (dirs.project_dir.clone(), dirs.tmp_dir.clone())
        };
        let sv = script_vars(vars);
        let env = ScriptEnv {
            variables: &sv,
            project_dir: &project_dir,
            tmp_dir: &tmp_dir,
            debug_trace: settings.debug_trace,
        };
        let repo_url = strip_credentials(&job.git_info.repo_url);
        let script = bash::get_sources(
            &env,
            &GitSources {
                strategy: settings.git_strategy,
                repo_url: &repo_url,
                refspecs: &job.git_info.refspecs,
                sha: &job.git_info.sha,
                ref_name: &job.git_info.ref_name,
                depth: settings.git_depth,
                checkout: settings.git_checkout,
                clean_flags: &settings.git_clean_flags,
                submodules: settings.submodules,
                token_var: "CI_JOB_TOKEN",
            },
        );
        log.section_start("get_sources", "Getting source from Git repository");
        let timeout = remaining(settings.job_timeout);
        let exit = if on_host {
            let mut host = ShellExecutor::new(exec.host_path(&dirs.builds_dir));
            run_stage(
                &mut host,
                log,
                stop,
                "get_sources",
                script,
                timeout,
                &stop.abort,
            )
            .await
        } else {
            run_stage(exec, log, stop, "get_sources", script, timeout, &stop.abort).await
        };
        if let Err(e) = &exit {
            log.line(ansi::RED, &format!("ERROR: {e}"));
        }
        log.section_end("get_sources");
        if let Some(o) = stage_failure(exit, FailureReason::RunnerSystemFailure, stop) {
            outcome = Some(o);
        }
    }
    if outcome.is_none() {
        restore_caches(job, ctx, log, &host_project).await;
        if let Err(o) = download_artifacts(job, api, log, &host_project).await {
            outcome = Some(o);
        }
    }

    // The user's script.
    let mut status = "success";
    if outcome.is_none() {
        if let Some(lines) = step(job, &StepName::Script) {
            let sv = script_vars(vars);
            let env = ScriptEnv {
                variables: &sv,
                project_dir: &dirs.project_dir,
                tmp_dir: &dirs.tmp_dir,
                debug_trace: settings.debug_trace,
            };
            let script = bash::user_script(&env, lines);
            log.section_start(
                "step_script",
                "Executing \"step_script\" stage of the job script",
            );
            let exit = run_stage(
                exec,
                log,
                stop,
                "step_script",
                script,
                remaining(settings.script_timeout),
                &stop.cancel,
            )
            .await;
            log.section_end("step_script");
            (outcome, status) = match exit {
                Ok(Exit::Code(0)) => (None, "success"),
                Ok(Exit::Code(code)) => (
                    Some(JobOutcome::failed(FailureReason::ScriptFailure, Some(code))),
                    "failed",
                ),
                Ok(Exit::TimedOut) => (
                    Some(JobOutcome::failed(FailureReason::JobExecutionTimeout, None)),
                    "timedout",
                ),
                Ok(Exit::Cancelled) if stop.abort.is_cancelled() => {
                    (Some(stop.aborted()), "canceled")
                }
                Ok(Exit::Cancelled) => (
                    Some(JobOutcome::failed(
                        FailureReason::Other("job_canceled".into()),
                        None,
                    )),
                    "canceled",
                ),
                Err(e) => {
                    log.line(ansi::RED, &format!("ERROR: {e}"));
                    (
                        Some(JobOutcome::failed(FailureReason::RunnerSystemFailure, None)),
                        "failed",
                    )
                }
            };
        }
    } else {
        status = "failed";
    }

    // after_script: always, unless the job is being killed.
    if let Some(lines) = step(job, &StepName::AfterScript).filter(|l| !l.is_empty()) {
        if !stop.abort.is_cancelled() {
            vars.push(forerunner_protocol::jobs::JobVariable {
                key: "CI_JOB_STATUS".into(),
                value: status.into(),
                public: true,
                ..Default::default()
            });
            let sv = script_vars(vars);
            let env = ScriptEnv {
                variables: &sv,
                project_dir: &dirs.project_dir,
                tmp_dir: &dirs.tmp_dir,
                debug_trace: settings.debug_trace,
            };
            let script = bash::user_script(&env, lines);
            log.section_start("after_script", "Running after_script");
            let exit = run_stage(
                exec,
                log,
                stop,
                "after_script",
                script,
                settings.after_script_timeout,
                &stop.abort,
            )
            .await;
            match exit {
                Ok(Exit::Code(0)) => {}
                Ok(Exit::Code(code)) => log.line(
                    ansi::YELLOW,
                    &format!("WARNING: after_script failed with exit code {code}, ignored"),
                ),
                Ok(Exit::TimedOut) => {
                    log.line(ansi::YELLOW, "WARNING: after_script timed out, ignored")
                }
                Ok(Exit::Cancelled) => {}
                Err(e) => log.line(
                    ansi::YELLOW,
                    &format!("WARNING: after_script could not run: {e}"),
                ),
            }
            log.section_end("after_script");
        }
    }

    let success = outcome.is_none();
    if !stop.abort.is_cancelled() {
        save_caches(job, ctx, log, &host_project, success).await;
        if let Err(o) = upload_artifacts(
            job,
            api,
            log,
            &host_project,
            exec.host_path(&dirs.tmp_dir),
            success,
        )
        .await
        {
            outcome.get_or_insert(o);
        }
    }
    outcome.unwrap_or_else(JobOutcome::success)
}

/// Runs one stage, streaming its output into the log; `stop_on` is the
/// token that stops it (graceful cancel for the script, abort otherwise).
#[allow(clippy::too_many_arguments)]
async fn run_stage<E: Executor + ?Sized>(
    exec: &mut E,
    log: &JobLog,
    stop: &StopSignals,
    name: &str,
    script: String,
    timeout: Duration,
    stop_on: &CancellationToken,
) -> Result<Exit, crate::executors::ExecutorError> {
    // The stage stops on its own token or on abort, whichever comes first.
    let token = CancellationToken::new();
    let child = token.clone();
    let (a, b) = (stop_on.clone(), stop.abort.clone());
    let relay = tokio::spawn(async move {
        tokio::select! {
            _ = a.cancelled() => {}
            _ = b.cancelled() => {}
        }
        child.cancel();
    });
    let mut sink = |bytes: &[u8]| log.write(bytes);
    let result = exec
        .run(
            Stage {
                name,
                script,
                timeout,
            },
            token,
            &mut sink,
        )
        .await;
    relay.abort();
    result
}

fn stage_failure(
    exit: Result<Exit, crate::executors::ExecutorError>,
    reason: FailureReason,
    stop: &StopSignals,
) -> Option<JobOutcome> {
    match exit {
        Ok(Exit::Code(0)) => None,
        Ok(Exit::Code(code)) => Some(JobOutcome::failed(reason, Some(code))),
        Ok(Exit::TimedOut) => Some(JobOutcome::failed(FailureReason::JobExecutionTimeout, None)),
        Ok(Exit::Cancelled) => Some(stop.aborted()),
        Err(_) => Some(JobOutcome::failed(FailureReason::RunnerSystemFailure, None)),
    }
}

fn cache_archive(ctx: &RunContext<'_>, job: &JobResponse, key: &str) -> PathBuf {
    ctx.cache_dir
        .join(job.job_info.project_full_path.replace("..", "_"))
        .join(cache_key_dir(key))
        .join("cache.zip")
}

async fn restore_caches(job: &JobResponse, ctx: &RunContext<'_>, log: &JobLog, project: &Path) {
    let pulls: Vec<_> = job
        .cache
        .iter()
        .filter(|c| c.policy != "push" && !c.paths.is_empty())
        .collect();
    if pulls.is_empty() {
        return;
    }
    log.section_start("restore_cache", "Restoring cache");
    for cache in pulls {
        let keys = std::iter::once(&cache.key).chain(cache.fallback_keys.iter());
        let mut restored = false;
        for key in keys {
            let path = cache_archive(ctx, job, key);
            log.info(&format!("Checking cache for {key}..."));
            let project = project.to_path_buf();
            let result = tokio::task::spawn_blocking(move || {
                let f = std::fs::File::open(&path).map_err(|e| e.to_string())?;
                archive::extract_zip(f, &project).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match result {
                Ok(_) => {
                    log.info(&format!("Successfully extracted cache for {key}"));
                    restored = true;
                    break;
                }
                Err(e) => log.line(
                    ansi::YELLOW,
                    &format!("WARNING: cache {key} not restored: {e}"),
                ),
            }
        }
        if !restored {
            log.info("Failed to extract cache");
        }
    }
    log.section_end("restore_cache");
}

async fn save_caches(
    job: &JobResponse,
    ctx: &RunContext<'_>,
    log: &JobLog,
    project: &Path,
    success: bool,
) {
    let pushes: Vec<_> = job
        .cache
        .iter()
        .filter(|c| c.policy != "pull" && !c.paths.is_empty() && when_applies(c.when, success))
        .collect();
    if pushes.is_empty() {
        return;
    }
    let name = if success {
        "archive_cache"
    } else {
        "archive_cache_on_failure"
    };
    log.section_start(
        name,
        if success {
            "Saving cache for successful job"
        } else {
            "Saving cache for failed job"
        },
    );
    for cache in pushes {
        let path = cache_archive(ctx, job, &cache.key);
        let project = project.to_path_buf();
        let (paths, untracked) = (cache.paths.clone(), cache.untracked);
        log.info(&format!("Creating cache {}...", cache.key));
        let result =
            tokio::task::spawn_blocking(move || -> Result<(usize, Vec<String>), String> {
                let untracked_files = if untracked {
                    untracked_files(&project)
                } else {
                    Vec::new()
                };
                let (files, unmatched) =
                    archive::select(&project, &paths, &[], &untracked_files).map_err(|e| e.0)?;
                let dir = path.parent().expect("cache path has a parent");
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
                let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
                let file =
                    archive::write_zip(&project, &files, tmp.reopen().map_err(|e| e.to_string())?)
                        .map_err(|e| e.0)?;
                file.sync_all().map_err(|e| e.to_string())?;
                tmp.persist(&path).map_err(|e| e.to_string())?;
                Ok((files.len(), unmatched))
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match result {
            Ok((n, unmatched)) => {
                for p in unmatched {
                    log.line(ansi::YELLOW, &format!("WARNING: {p}: no matching files"));
                }
                log.info(&format!("Created cache {} with {n} files", cache.key));
            }
            Err(e) => log.line(
                ansi::YELLOW,
                &format!("WARNING: Failed to create cache: {e}"),
            ),
        }
    }
    log.section_end(name);
}

/// Files git does not track in `project` (ignored ones included, as GitLab's
/// `untracked: true`).
fn untracked_files(project: &Path) -> Vec<String> {
    std::process::Command::new("git")
        .args(["ls-files", "--others", "-z"])
        .current_dir(project)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            o.stdout
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn download_artifacts<A: JobApi + ?Sized>(
    job: &JobResponse,
    api: &A,
    log: &JobLog,
    project: &Path,
) -> Result<(), JobOutcome> {
    let deps: Vec<_> = job
        .dependencies
        .iter()
        .filter(|d| {
            d.artifacts_file
                .as_ref()
                .is_some_and(|f| !f.filename.is_empty())
        })
        .collect();
    if deps.is_empty() {
        return Ok(());
    }
    log.section_start("download_artifacts", "Downloading artifacts");
    let mut result = Ok(());
    for dep in deps {
        log.info(&format!(
            "Downloading artifacts for {} ({})...",
            dep.name, dep.id
        ));
        let tmp = match tempfile::NamedTempFile::new() {
            Ok(t) => t,
            Err(e) => {
                log.line(
                    ansi::RED,
                    &format!("ERROR: failed to create a temporary file: {e}"),
                );
                result = Err(JobOutcome::failed(FailureReason::RunnerSystemFailure, None));
                break;
            }
        };
        let got = match api.download_artifacts(dep, tmp.path()).await {
            Ok(()) => {
                let project = project.to_path_buf();
                let path = tmp.path().to_path_buf();
                tokio::task::spawn_blocking(move || {
                    let f = std::fs::File::open(&path).map_err(|e| e.to_string())?;
                    archive::extract_zip(f, &project).map_err(|e| e.to_string())
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
            }
            Err(e) => Err(e),
        };
        match got {
            Ok(n) => log.info(&format!(
                "Downloading artifacts from coordinator... ok ({n} entries)"
            )),
            Err(e) => {
                log.line(
                    ansi::RED,
                    &format!("ERROR: Downloading artifacts of {} failed: {e}", dep.name),
                );
                result = Err(JobOutcome::failed(
                    FailureReason::MissingDependencyFailure,
                    None,
                ));
                break;
            }
        }
    }
    log.section_end("download_artifacts");
    result
}

/// Zips and uploads the job's artifacts. Takes host paths, not the
/// executor: holding `&E` across an await would make the job future `!Send`
/// for executors that are not `Sync`.
async fn upload_artifacts<A: JobApi + ?Sized>(
    job: &JobResponse,
    api: &A,
    log: &JobLog,
    project: &Path,
    tmp_host: PathBuf,
    success: bool,
) -> Result<(), JobOutcome> {
    let specs: Vec<_> = job
        .artifacts
        .iter()
        .filter(|a| when_applies(a.when, success) && (!a.paths.is_empty() || a.untracked))
        .collect();
    if specs.is_empty() {
        return Ok(());
    }
    let name = if success {
        "upload_artifacts_on_success"
    } else {
        "upload_artifacts_on_failure"
    };
    log.section_start(
        name,
        if success {
            "Uploading artifacts for successful job"
        } else {
            "Uploading artifacts for failed job"
        },
    );
    let mut result = Ok(());
    for spec in specs {
        let project = project.to_path_buf();
        let (paths, exclude, untracked) =
            (spec.paths.clone(), spec.exclude.clone(), spec.untracked);
        let tmp_host = tmp_host.clone();
        let zipped = tokio::task::spawn_blocking(
            move || -> Result<(tempfile::NamedTempFile, usize, Vec<String>), String> {
                let untracked_files = if untracked {
                    untracked_files(&project)
                } else {
                    Vec::new()
                };
                let (files, unmatched) =
                    archive::select(&project, &paths, &exclude, &untracked_files)
                        .map_err(|e| e.0)?;
                std::fs::create_dir_all(&tmp_host).map_err(|e| e.to_string())?;
                let tmp = tempfile::NamedTempFile::new_in(&tmp_host).map_err(|e| e.to_string())?;
                archive::write_zip(&project, &files, tmp.reopen().map_err(|e| e.to_string())?)
                    .map_err(|e| e.0)?;
                Ok((tmp, files.len(), unmatched))
            },
        )
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let (tmp, n, unmatched) = match zipped {
            Ok(z) => z,
            Err(e) => {
                log.line(
                    ansi::RED,
                    &format!("ERROR: failed to archive artifacts: {e}"),
                );
                result = Err(JobOutcome::failed(FailureReason::ScriptFailure, None));
                continue;
            }
        };
        for p in unmatched {
            log.line(ansi::YELLOW, &format!("WARNING: {p}: no matching files. Ensure that the artifact path is relative to the working directory"));
        }
        if n == 0 {
            log.line(ansi::RED, "ERROR: No files to upload");
            continue;
        }
        log.info(&format!(
            "Uploading artifacts as \"{}\" to coordinator... ({n} files)",
            spec.artifact_type
        ));
        match api.upload_artifacts(spec, tmp.path()).await {
            Ok(()) => log.info("Uploading artifacts to coordinator... 201 Created"),
            Err(e) => {
                log.line(
                    ansi::RED,
                    &format!("ERROR: Uploading artifacts to coordinator... failed: {e}"),
                );
                result = Err(JobOutcome::failed(FailureReason::ScriptFailure, None));
            }
        }
    }
    log.section_end(name);
    result
}

async fn cleanup<E: Executor + ?Sized>(
    _ctx: &RunContext<'_>,
    exec: &mut E,
    log: &JobLog,
    dirs: &JobDirs,
) {
    log.section_start(
        "cleanup_file_variables",
        "Cleaning up project directory and file based variables",
    );
    let tmp = exec.host_path(&dirs.tmp_dir);
    let _ = tokio::fs::remove_dir_all(&tmp).await;
    exec.cleanup().await;
    log.section_end("cleanup_file_variables");
}

/// Maps a failure reason to one the server understands, as the official
/// runner does with `features.failure_reasons`.
pub fn map_failure_reason(reason: FailureReason, supported: &[String]) -> FailureReason {
    let always = [
        "script_failure",
        "runner_system_failure",
        "job_execution_timeout",
    ];
    let ok = |r: &str| always.contains(&r) || supported.iter().any(|s| s == r);
    if ok(reason.as_str()) {
        return reason;
    }
    let compat = match reason {
        FailureReason::ImagePullFailure => FailureReason::RunnerSystemFailure,
        FailureReason::RunnerConfigurationError => FailureReason::ScriptFailure,
        _ => FailureReason::UnknownFailure,
    };
    if ok(compat.as_str()) {
        compat
    } else {
        FailureReason::UnknownFailure
    }
}

/// How long nothing may reach the coordinator before the trace watcher
/// touches the job with a `PUT state=running` (the official
/// `forceSendInterval`).
pub const FORCE_SEND_INTERVAL: Duration = Duration::from_secs(30);

/// Runs the job while streaming its trace, then sends the rest of the trace
/// and the final update until the coordinator accepts it.
///
/// The trace watcher is the official runner's: every interval it sends what
/// is new; when nothing reached the server for [`FORCE_SEND_INTERVAL`] (a
/// silent job; or for the server's trace update interval when that is
/// shorter — a deliberate difference, so a cancel of a silent job is seen as
/// soon as one with output), it touches the job with a keep-alive `PUT state=running`
/// carrying the trace's checksum and size, so the job's `Job-Status` comes
/// back anyway. `canceling` cancels the script gracefully; `canceled`,
/// `failed`, `403` or `404` end the job ([`StopSignals::end_by_server`]):
/// it is killed and, being over on the server, gets no final update.
///
/// A `412` to the final update (the official `UpdateTraceValidationFailed`:
/// the server found the trace does not match the checksum and dropped it)
/// sends the whole trace again from offset 0, then the final update.
pub async fn run_and_report<E: Executor + ?Sized, A: JobApi + ?Sized>(
    job: &JobResponse,
    ctx: &RunContext<'_>,
    exec: &mut E,
    api: &A,
    log: &JobLog,
    stop: &StopSignals,
    first_patch_after: Duration,
) -> Result<JobOutcome, String> {
    let done = CancellationToken::new();
    let patcher = Patcher(api);
    // The watcher owns the sender while the job runs and hands it back, so
    // the final flush continues from the offset the server acknowledged.
    let watch = async {
        let mut sender = TraceSender::new();
        let mut wait = first_patch_after;
        let mut last_contact = Instant::now();
        loop {
            tokio::select! {
                _ = done.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            let before = sender.sent();
            let outcome = sender.send(&patcher, log).await;
            wait = sender.interval();
            if sender.sent() != before {
                last_contact = Instant::now();
            }
            // A server asking for a trace more often than every 30 s
            // (live traces: `forerunner exec`, GitLab while someone watches
            // the log) hears from a silent job at that pace too, so its
            // cancel is seen within the interval.
            let force_send = sender
                .server_interval()
                .map_or(FORCE_SEND_INTERVAL, |i| i.min(FORCE_SEND_INTERVAL));
            let signal = match outcome {
                SendOutcome::Sent(Signal::Continue) if last_contact.elapsed() >= force_send => {
                    let (signal, accepted) = touch(job, api, log).await;
                    if accepted {
                        last_contact = Instant::now();
                    }
                    signal
                }
                SendOutcome::Sent(signal) => signal,
                SendOutcome::Retry(_) => Signal::Continue,
            };
            match signal {
                Signal::Cancel => stop.cancel.cancel(),
                Signal::Abort => stop.end_by_server(),
                Signal::Continue => {}
            }
        }
        sender
    };
    let work = async {
        let o = run_job(job, ctx, exec, api, log, stop).await;
        done.cancel();
        o
    };
    let (outcome, mut sender) = tokio::join!(work, watch);
    log.finish();
    if stop.ended_by_server.is_cancelled() {
        // The job is over on the server: nothing more to report.
        return Ok(outcome);
    }
    let sleep = |d| tokio::time::sleep(d);
    if sender.flush(&patcher, log, 10, sleep).await? == Signal::Abort {
        return Ok(outcome);
    }
    let update = UpdateJobRequest {
        token: job.token.clone(),
        state: outcome.state,
        failure_reason: outcome
            .failure_reason
            .clone()
            .map(|r| map_failure_reason(r, &job.features.failure_reasons)),
        exit_code: outcome.exit_code,
        checksum: Some(log.checksum()),
        output: Some(JobTraceOutput {
            checksum: log.checksum(),
            bytesize: log.len(),
        }),
        info: None,
    };
    let mut delay = Duration::from_secs(1);
    for _ in 0..30 {
        match api.update(&update).await {
            Ok(r) if r.status == 200 => return Ok(outcome),
            Ok(r) if r.status == 403 || r.status == 404 => return Ok(outcome),
            Ok(r) if matches!(r.job_status.as_deref(), Some("canceled" | "failed")) => {
                return Ok(outcome)
            }
            Ok(r) if r.status == 412 => {
                sender.restart();
                if sender.flush(&patcher, log, 10, sleep).await? == Signal::Abort {
                    return Ok(outcome);
                }
            }
            Ok(r) => {
                if let Some(s) = r.update_interval.filter(|s| *s > 0) {
                    delay = Duration::from_secs(s.min(60));
                }
            }
            Err(_) => delay = (delay * 2).min(Duration::from_secs(60)),
        }
        tokio::time::sleep(delay).await;
    }
    Err("the coordinator did not accept the final job update".into())
}

/// The keep-alive `PUT state=running` (the official `touchJob`): what the
/// server said, and whether it accepted the touch.
async fn touch<A: JobApi + ?Sized>(job: &JobResponse, api: &A, log: &JobLog) -> (Signal, bool) {
    let touch = UpdateJobRequest {
        token: job.token.clone(),
        state: JobState::Running,
        failure_reason: None,
        exit_code: None,
        checksum: None,
        output: Some(JobTraceOutput {
            checksum: log.checksum(),
            bytesize: log.len(),
        }),
        info: None,
    };
    match api.update(&touch).await {
        Ok(r) if matches!(r.status, 403 | 404) => (Signal::Abort, false),
        Ok(r) => match Signal::from_job_status(r.job_status.as_deref()) {
            Signal::Abort => (Signal::Abort, false),
            signal => (signal, r.status == 200),
        },
        Err(_) => (Signal::Continue, false),
    }
}

/// The job future must be `Send` with a boxed executor, so the job loop can
/// spawn it on the multi-threaded runtime.
#[allow(dead_code)]
fn assert_send_with_boxed_executor<A: JobApi>(
    job: &JobResponse,
    ctx: &RunContext<'_>,
    exec: &mut Box<dyn Executor>,
    api: &A,
    log: &JobLog,
    stop: &StopSignals,
) {
    fn is_send<T: Send>(_: T) {}
    is_send(run_job(job, ctx, exec.as_mut(), api, log, stop));
}
