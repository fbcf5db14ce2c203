//! One received job, from the acknowledgement to the last report.
//!
//! 1. Two-phase commit: `PUT state=running`. A `403`/`404`, `409` or
//!    `Job-Status: canceled|failed` means the job is not ours any more: it is
//!    dropped quietly. `canceling` fails it at once (`job_canceled`).
//! 2. The executor is created by [`crate::executors::for_runner`] (the one
//!    place that matches executor names); the job log masks the job's masked
//!    variables and `features.token_mask_prefixes`, keeps `output_limit`.
//! 3. [`crate::job::run_and_report`] runs the stages, streams the trace
//!    (with the official keep-alive `PUT state=running` for silent jobs) and
//!    sends the final update.
//! 4. Safety net: when the coordinator neither accepted a final state nor
//!    took the job back (the driver gave up, or the runner aborted the job
//!    at a moment the driver does not report), the job is reported `failed`
//!    here, so no job stays `running` on the server without a runner.

use std::sync::Arc;
use std::time::{Duration, Instant};

use forerunner_protocol::failure::FailureReason;
use forerunner_protocol::jobs::{JobResponse, JobState, JobTraceOutput, UpdateJobRequest};
use forerunner_protocol::runners::RunnerInfo;
use forerunner_protocol::tokens::short_token;
use tokio::sync::OwnedSemaphorePermit;

use crate::client::Client;
use crate::config::RunnerConfig;
use crate::job::env::RunnerSide;
use crate::job::{
    map_failure_reason, run_and_report, JobApi as _, JobOutcome, RunContext, StopSignals,
};
use crate::job_api::HttpJobApi;
use crate::job_log::sender::{Signal, TraceSender};
use crate::job_log::{ansi, JobLog};
use crate::run::telemetry::{self, EntryLabels};
use crate::run::{Manager, Reservation, Running};

/// A job handed over by a poller, with the slot, the entry's place and the
/// running count it holds until it is over.
pub(crate) struct Pickup {
    pub(crate) manager: Arc<Manager>,
    pub(crate) entry: RunnerConfig,
    pub(crate) client: Client,
    pub(crate) info: RunnerInfo,
    pub(crate) labels: EntryLabels,
    pub(crate) permit: OwnedSemaphorePermit,
    pub(crate) reservation: Reservation,
    pub(crate) running: Running,
}

/// How the acknowledgement went.
enum Ack {
    /// Run it; the first trace patch after this long.
    Run(Duration),
    /// Not ours any more: drop quietly.
    Dropped,
    /// The server is already canceling it.
    Canceling,
    /// No acknowledgement possible.
    Failed(String),
}

/// How a job ended, for the log line and the metrics.
enum Ended {
    Dropped,
    Succeeded,
    Failed(String, Option<i32>),
}

impl Pickup {
    pub(crate) async fn run(self, job: JobResponse) {
        let started = Instant::now();
        telemetry::job_started(&self.manager.metrics, &self.labels);
        let api = HttpJobApi::new(self.client.clone(), &job, Some(self.info.clone()))
            .with_observer(self.manager.observer(&self.entry));
        let ended = self.process(&job, &api).await;
        let seconds = started.elapsed().as_secs_f64();
        let failure = match &ended {
            Ended::Failed(reason, _) => Some(reason.as_str()),
            _ => None,
        };
        telemetry::job_finished(&self.manager.metrics, &self.labels, seconds, failure);
        let duration = format!("{seconds:.3}");
        let id = job.id.to_string();
        let project = job.job_info.project_id.to_string();
        let runner = short_token(&self.entry.token);
        let fields = [
            ("duration_s", duration.as_str()),
            ("job", id.as_str()),
            ("project", project.as_str()),
            ("runner", runner.as_str()),
        ];
        match ended {
            Ended::Dropped => {}
            Ended::Succeeded => self.manager.log.info("Job succeeded", &fields),
            Ended::Failed(reason, code) => {
                let what = match code {
                    Some(code) => format!("Job failed: exit code {code}"),
                    None => format!("Job failed: {reason}"),
                };
                self.manager.log.warn(&what, &fields);
            }
        }
        // The slot, the entry's place and the running count go last.
        drop(self.permit);
        drop(self.reservation);
        drop(self.running);
    }

    fn job_log(&self, job: &JobResponse) -> JobLog {
        let limit = usize::try_from(self.entry.output_limit_kib())
            .unwrap_or(4096)
            .saturating_mul(1024);
        JobLog::for_job(job, limit)
    }

    async fn acknowledge(&self, job: &JobResponse, api: &HttpJobApi) -> Ack {
        let update = UpdateJobRequest {
            token: job.token.clone(),
            state: JobState::Running,
            failure_reason: None,
            exit_code: None,
            checksum: None,
            output: None,
            info: None,
        };
        let log = &self.manager.log;
        let id = job.id.to_string();
        let runner = short_token(&self.entry.token);
        let mut last = String::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
            }
            let reply = match api.update(&update).await {
                Ok(r) => r,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let status = reply.status.to_string();
            let fields = [
                ("code", status.as_str()),
                ("job", id.as_str()),
                ("job-status", reply.job_status.as_deref().unwrap_or("")),
                ("runner", runner.as_str()),
            ];
            match (reply.status, reply.job_status.as_deref()) {
                (403, _) | (_, Some("canceled" | "failed")) => {
                    log.warn("Submitting job to coordinator... job failed", &fields);
                    return Ack::Dropped;
                }
                (404, _) => {
                    log.warn("Submitting job to coordinator... not found", &fields);
                    return Ack::Dropped;
                }
                (409, _) => {
                    log.warn(
                        "Submitting job to coordinator... conflict: another runner manager holds the job",
                        &fields,
                    );
                    return Ack::Dropped;
                }
                (_, Some("canceling")) => return Ack::Canceling,
                (200, _) => {
                    log.debug("Submitting job to coordinator... ok", &fields);
                    // The first patch comes sooner than the default
                    // interval, unless the server asked for more.
                    let first = match reply.update_interval {
                        Some(s) if s > 3 => Duration::from_secs(s.min(15 * 60)),
                        _ => Duration::from_secs(1),
                    };
                    return Ack::Run(first);
                }
                (s, _) => last = format!("status {s}"),
            }
        }
        Ack::Failed(last)
    }

    async fn process(&self, job: &JobResponse, api: &HttpJobApi) -> Ended {
        let first_patch = match self.acknowledge(job, api).await {
            Ack::Run(first) => first,
            Ack::Dropped => return Ended::Dropped,
            Ack::Canceling => {
                let log = self.job_log(job);
                log.line(
                    ansi::YELLOW,
                    "WARNING: the job was canceled before it started",
                );
                let reason = FailureReason::Other("job_canceled".into());
                self.report(api, &log, job, &failed(reason.clone())).await;
                return Ended::Failed(reason.as_str().to_owned(), None);
            }
            Ack::Failed(e) => {
                self.manager.log.warn(
                    "Submitting job to coordinator... failed",
                    &[
                        ("error", &e),
                        ("job", &job.id.to_string()),
                        ("runner", &short_token(&self.entry.token)),
                    ],
                );
                let log = self.job_log(job);
                log.line(
                    ansi::RED,
                    &format!("ERROR: the runner could not acknowledge the job: {e}"),
                );
                self.report(api, &log, job, &failed(FailureReason::RunnerSystemFailure))
                    .await;
                return Ended::Failed("runner_system_failure".into(), None);
            }
        };
        let log = self.job_log(job);
        let numbers = self.reservation.assign(&job.job_info.project_full_path);
        let mut exec = match crate::executors::for_runner(&self.entry, numbers.concurrent_id) {
            Ok(e) => e,
            Err(e) => {
                log.line(ansi::RED, &format!("ERROR: Preparation failed: {e}"));
                let outcome = failed(FailureReason::RunnerSystemFailure);
                self.report(api, &log, job, &outcome).await;
                return Ended::Failed("runner_system_failure".into(), None);
            }
        };
        let builds_dir = exec.builds_dir();
        // The local cache lives where the executor keeps `cache_dir` on
        // this host (the same path for shell, a volume's host directory for
        // docker).
        let cache_dir = exec.host_path(
            &crate::executors::absolute(
                &std::env::current_dir().unwrap_or_default(),
                self.entry.cache_dir.as_deref().unwrap_or("cache"),
            )
            .to_string_lossy(),
        );
        let ctx = RunContext {
            runner: RunnerSide {
                builds_dir: &builds_dir,
                token: &self.entry.token,
                concurrent_id: numbers.concurrent_id,
                concurrent_project_id: numbers.project_id,
                executor: exec.name(),
                shared_environment: exec.shared_environment(),
                version: crate::VERSION,
                revision: crate::REVISION,
                environment: &self.entry.environment,
            },
            runner_name: &self.entry.name,
            system_id: &self.manager.system_id,
            cache_dir: &cache_dir,
        };
        let stop = StopSignals {
            abort: self.manager.abort_jobs.child_token(),
            ..StopSignals::default()
        };
        let result = run_and_report(job, &ctx, &mut *exec, api, &log, &stop, first_patch).await;
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                self.manager.log.warn(
                    "Submitting job to coordinator... failed",
                    &[
                        ("error", &e),
                        ("job", &job.id.to_string()),
                        ("runner", &short_token(&self.entry.token)),
                    ],
                );
                failed(FailureReason::RunnerSystemFailure)
            }
        };
        if !api.final_accepted() && !api.taken_back() {
            // Not reported yet: a job the runner aborted outside its script,
            // or a final update the driver gave up on.
            let outcome = if self.manager.abort_jobs.is_cancelled() {
                failed(FailureReason::RunnerInterrupted)
            } else {
                outcome.clone()
            };
            self.report(api, &log, job, &outcome).await;
        }
        // The log line and the metrics keep the runner's own reason (a job
        // the server ended is `job_canceled`); only what is sent to the
        // server is mapped to the reasons it supports.
        match (outcome.state, outcome.failure_reason) {
            (JobState::Success, _) => Ended::Succeeded,
            (_, reason) => Ended::Failed(
                reason
                    .unwrap_or(FailureReason::ScriptFailure)
                    .as_str()
                    .to_owned(),
                outcome.exit_code,
            ),
        }
    }

    /// Sends what is left of the trace and the final state, a few times at
    /// most; used when the job driver did not get its report through.
    async fn report(
        &self,
        api: &HttpJobApi,
        log: &JobLog,
        job: &JobResponse,
        outcome: &JobOutcome,
    ) {
        log.finish();
        let mut sender = TraceSender::new();
        // A sender that starts at 0 resumes from the server's length on the
        // first 416, so nothing is sent twice.
        if let Ok(Signal::Abort) = sender.flush(api, log, 5, tokio::time::sleep).await {
            return;
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
        for attempt in 0..5u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
            }
            if api.update(&update).await.is_ok() && (api.final_accepted() || api.taken_back()) {
                return;
            }
        }
        self.manager.log.error(
            "Submitting job to coordinator... failed: the job may stay running on the server",
            &[
                ("job", &job.id.to_string()),
                ("runner", &short_token(&self.entry.token)),
            ],
        );
    }
}

fn failed(reason: FailureReason) -> JobOutcome {
    JobOutcome {
        state: JobState::Failed,
        failure_reason: Some(reason),
        exit_code: None,
    }
}
