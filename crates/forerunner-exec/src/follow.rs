//! Following a running pipeline: job starts and ends, their logs as the
//! traces grow, manual jobs named on the command line played, a progress
//! line, and Ctrl-C.
//!
//! Everything is observed through the coordinator: job and pipeline state
//! from its store, traces through [`Ci::read_trace_from`] from the last
//! offset read (so a long log is never read twice), actions (play, cancel)
//! through its REST API as a user would. A job's trace is complete when
//! its status is final: the runner sends the last bytes before it reports.
//!
//! Ctrl-C (or SIGTERM): the first cancels the pipeline through the API, so
//! running jobs stop gracefully and run their `after_script`; the second
//! aborts the runner's jobs (killed, reported failed); the third stops
//! following at once.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use forerunner_coordinator::ci::Ci;
use forerunner_coordinator::domain::{Job, JobStatus};
use forerunner_coordinator::store::Store;
use forerunner_runner::run::RunStop;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::embedded::Api;
use crate::printer::Printer;
use crate::report::{self, JobRow, Status, Verdict};
use crate::style::{CYAN, DIM, GREEN, RED, YELLOW};
use crate::trace::TraceRenderer;

/// How often state and traces are read.
const TICK: Duration = Duration::from_millis(150);

/// SIGINT and SIGTERM, as a stream of interrupts.
pub(crate) struct Interrupts {
    int: Signal,
    term: Signal,
}

impl Interrupts {
    /// Installs the handlers (from then on, Ctrl-C no longer kills exec).
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// The next interrupt.
    pub(crate) async fn next(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// What following a pipeline found.
pub(crate) struct Followed {
    /// How the pipeline ended.
    pub(crate) verdict: Verdict,
    /// Whether Ctrl-C was pressed.
    pub(crate) interrupted: bool,
    /// Whether a third Ctrl-C cut waiting short.
    pub(crate) forced: bool,
    /// The summary rows, in pipeline order.
    pub(crate) rows: Vec<JobRow>,
    /// Manual jobs nobody played.
    pub(crate) unplayed_manual: Vec<String>,
}

/// One job as exec has shown it so far.
struct Shown {
    offset: u64,
    renderer: TraceRenderer,
    started: bool,
    finished: bool,
    played: bool,
}

/// What [`follow`] works with.
pub(crate) struct Context<'a> {
    /// The coordinator's CI service.
    pub(crate) ci: &'a Ci,
    /// Its store.
    pub(crate) store: &'a Store,
    /// Its REST API.
    pub(crate) api: &'a Api,
    /// The project.
    pub(crate) project_id: i64,
    /// The pipeline.
    pub(crate) pipeline_id: i64,
    /// Names of the manual jobs to play (named on the command line).
    pub(crate) play: HashSet<String>,
    /// The embedded runner's stop.
    pub(crate) runner_stop: &'a RunStop,
    /// Show every log line.
    pub(crate) verbose: bool,
    /// Keep colours in logs.
    pub(crate) color: bool,
    /// When exec started (for the progress line).
    pub(crate) started: Instant,
}

/// Follows the pipeline until it is over (or blocked by a manual job).
pub(crate) async fn follow(
    cx: Context<'_>,
    printer: &mut Printer,
    interrupts: &mut Interrupts,
) -> anyhow::Result<Followed> {
    let mut shown: HashMap<i64, Shown> = HashMap::new();
    let mut interrupts_seen = 0u32;
    let mut abort_deadline: Option<Instant> = None;
    let mut forced = false;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut spinner = 0usize;
    let jobs = loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = interrupts.next() => {
                interrupts_seen += 1;
                match interrupts_seen {
                    1 => {
                        printer.status(
                            YELLOW,
                            "Canceling",
                            "the pipeline: running jobs stop and run their after_script (Ctrl-C again to abort them)",
                        );
                        if let Err(e) = cx.api.cancel_pipeline(cx.project_id, cx.pipeline_id).await {
                            printer.status(RED, "Error", &format!("{e:#}"));
                            cx.runner_stop.abort.cancel();
                        }
                    }
                    2 => {
                        printer.status(
                            RED,
                            "Aborting",
                            "running jobs are killed now (Ctrl-C again to quit without waiting)",
                        );
                        cx.runner_stop.abort.cancel();
                        abort_deadline = Some(Instant::now() + Duration::from_secs(20));
                    }
                    _ => {
                        forced = true;
                    }
                }
            }
        }
        // The pipeline before its jobs: a job's status is stored before the
        // pipeline's is derived from it, so a pipeline read as over has
        // every job over in the read that follows (the other order could
        // end the run with a job still shown running).
        let pipeline = cx
            .store
            .ci
            .pipeline_by_id(cx.pipeline_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the pipeline disappeared"))?;
        let jobs = cx.store.ci.pipeline_jobs(cx.pipeline_id).await?;
        // A job played in this round is not manual any more, though the
        // pipeline read above still says so.
        let mut played_now = false;
        for job in &jobs {
            let entry = shown.entry(job.id).or_insert_with(|| Shown {
                offset: 0,
                renderer: TraceRenderer::new(cx.verbose, cx.color),
                started: false,
                finished: false,
                played: false,
            });
            played_now |= step(&cx, printer, job, entry).await?;
        }
        let latest: Vec<&Job> = jobs.iter().filter(|j| !j.retried).collect();
        let waiting_for_play = played_now
            || latest.iter().any(|j| {
                j.status == JobStatus::Manual
                    && cx.play.contains(&j.name)
                    && !shown.get(&j.id).is_some_and(|s| s.played)
            });
        let executing = latest.iter().any(|j| j.status.is_executing());
        // Over when nothing runs or waits to be played, and the pipeline
        // (read before the jobs) is completed or blocked on a manual job.
        // A manual job allowed to fail leaves a pipeline `success`, so a
        // job played just now must be waited for whatever it said.
        let over = !waiting_for_play
            && !executing
            && (pipeline.status.is_completed() || pipeline.status == JobStatus::Manual);
        if over || forced || abort_deadline.is_some_and(|d| Instant::now() >= d) {
            break jobs;
        }
        if interrupts_seen == 0 || executing {
            spinner += 1;
            printer.progress(&progress_text(&latest, cx.started.elapsed(), spinner));
        }
    };
    printer.clear_progress();
    printer.flush();
    let pipeline = cx.store.ci.pipeline_by_id(cx.pipeline_id).await?;
    let status = pipeline.map_or(JobStatus::Failed, |p| p.status);
    let verdict = match status {
        JobStatus::Success | JobStatus::Skipped => Verdict::Passed,
        JobStatus::Manual => Verdict::Blocked,
        JobStatus::Failed => Verdict::Failed,
        _ if interrupts_seen > 0 => Verdict::Canceled,
        _ => Verdict::Failed,
    };
    let latest: Vec<&Job> = jobs.iter().filter(|j| !j.retried).collect();
    let unplayed_manual = latest
        .iter()
        .filter(|j| j.status == JobStatus::Manual)
        .map(|j| j.name.clone())
        .collect();
    Ok(Followed {
        verdict,
        interrupted: interrupts_seen > 0,
        forced,
        rows: latest.iter().map(|j| row(j)).collect(),
        unplayed_manual,
    })
}

/// Shows what changed for one job since the last tick, playing it when it
/// is a manual job named on the command line; whether it played it.
async fn step(
    cx: &Context<'_>,
    printer: &mut Printer,
    job: &Job,
    entry: &mut Shown,
) -> anyhow::Result<bool> {
    if entry.finished {
        return Ok(false);
    }
    let mut played = false;
    if job.status == JobStatus::Manual && cx.play.contains(&job.name) && !entry.played {
        entry.played = true;
        match cx.api.play_job(cx.project_id, job.id).await {
            Ok(()) => {
                played = true;
                printer.status(CYAN, "Playing", &format!("manual job {}", job.name));
            }
            Err(e) => printer.status(RED, "Error", &format!("could not play {}: {e:#}", job.name)),
        }
    }
    let ran = job.status.is_executing() || job.started_at.is_some();
    if ran && !entry.started {
        entry.started = true;
        let what = if job.attempt > 0 {
            format!(
                "{} (stage {}, attempt {})",
                job.name,
                job.stage,
                job.attempt + 1
            )
        } else {
            format!("{} (stage {})", job.name, job.stage)
        };
        printer.status(GREEN, "Started", &what);
    }
    if entry.started {
        let bytes = cx.ci.read_trace_from(job.id, entry.offset).await?;
        if !bytes.is_empty() {
            entry.offset += bytes.len() as u64;
            for line in entry.renderer.push(&bytes) {
                printer.job_line(&job.name, &line);
            }
        }
    }
    if job.status.is_completed() {
        entry.finished = true;
        if entry.started {
            for line in entry.renderer.finish() {
                printer.job_line(&job.name, &line);
            }
        }
        let r = row(job);
        let took = r
            .duration
            .map(|d| format!(" in {}", report::duration(d)))
            .unwrap_or_default();
        match r.status {
            Status::Passed => printer.status(GREEN, "Passed", &format!("{}{took}", job.name)),
            Status::Failed | Status::FailedAllowed => {
                let why = match (job.exit_code, &r.reason) {
                    (_, Some(reason)) => format!(": {}", reason.replace('_', " ")),
                    (Some(code), None) => format!(": exit code {code}"),
                    (None, None) => String::new(),
                };
                let allowed = if r.status == Status::FailedAllowed {
                    " (allowed to fail)"
                } else {
                    ""
                };
                let code = if r.status == Status::FailedAllowed {
                    YELLOW
                } else {
                    RED
                };
                printer.status(code, "Failed", &format!("{}{took}{why}{allowed}", job.name));
            }
            Status::Canceled => printer.status(YELLOW, "Canceled", &format!("{}{took}", job.name)),
            Status::Skipped => printer.status(DIM, "Skipped", &job.name),
            _ => {}
        }
    }
    Ok(played)
}

/// The summary row of a job.
pub(crate) fn row(job: &Job) -> JobRow {
    let status = match job.status {
        JobStatus::Success => Status::Passed,
        JobStatus::Failed if job.allow_failure => Status::FailedAllowed,
        JobStatus::Failed => Status::Failed,
        JobStatus::Canceled | JobStatus::Canceling => Status::Canceled,
        JobStatus::Skipped => Status::Skipped,
        JobStatus::Manual => Status::Manual,
        JobStatus::Running => Status::Running,
        _ => Status::NotStarted,
    };
    let duration = match (job.started_at, job.finished_at) {
        (Some(s), Some(f)) => (f - s).to_std().ok(),
        _ => None,
    };
    let reason = job.failure_reason.clone().filter(|r| {
        matches!(status, Status::Failed | Status::FailedAllowed) && r != "script_failure"
    });
    let exit_code = match status {
        Status::Passed => Some(job.exit_code.unwrap_or(0)),
        _ => job.exit_code,
    };
    JobRow {
        name: job.name.clone(),
        stage: job.stage.clone(),
        status,
        reason,
        duration,
        exit_code,
        attempts: u32::try_from(job.attempt + 1).unwrap_or(1),
    }
}

/// `⠋ 2/5 done · running build, lint · 0:42`.
fn progress_text(jobs: &[&Job], elapsed: Duration, spinner: usize) -> String {
    const FRAMES: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let done = jobs.iter().filter(|j| j.status.is_completed()).count();
    let running: Vec<&str> = jobs
        .iter()
        .filter(|j| j.status.is_executing())
        .map(|j| j.name.as_str())
        .collect();
    let doing = if running.is_empty() {
        "waiting for a job to start".to_owned()
    } else {
        format!("running {}", running.join(", "))
    };
    format!(
        "{} {done}/{} done · {doing} · {}",
        FRAMES[spinner % FRAMES.len()],
        jobs.len(),
        report::duration(elapsed)
    )
}
