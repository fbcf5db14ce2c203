//! The background sweep: fails running jobs past their timeout plus
//! [`crate::config::CiSettings::timeout_grace`] (`job_execution_timeout`:
//! the runner enforces the timeout and reports it; this is for a runner
//! that cannot) and jobs whose runner went silent for
//! [`crate::config::CiSettings::runner_vanish_timeout`]
//! (`runner_system_failure`; both retried when `retry:` allows), and
//! starts delayed jobs whose time has come.

use chrono::Duration;
use tokio_util::sync::CancellationToken;

use crate::ci::{Ci, CiError};
use crate::domain::{now, JobStatus};

impl Ci {
    /// One pass of the sweep.
    pub async fn sweep(&self) -> Result<(), CiError> {
        let t = now();
        let vanish = Duration::from_std(self.settings().runner_vanish_timeout)
            .unwrap_or_else(|_| Duration::hours(1));
        let grace = Duration::from_std(self.settings().timeout_grace)
            .unwrap_or_else(|_| Duration::minutes(15));
        let running = self
            .store()
            .ci
            .jobs_in(&[JobStatus::Running, JobStatus::Canceling])
            .await?;
        for job in running {
            let timeout = Duration::seconds(job.timeout.unwrap_or(i64::MAX / 2_000).max(0));
            let timed_out = job.started_at.is_some_and(|s| s + timeout + grace < t);
            let silent = job
                .last_contact_at
                .or(job.started_at)
                .is_some_and(|c| c + vanish < t);
            if timed_out {
                self.fail_job(&job, "job_execution_timeout").await?;
            } else if silent {
                self.fail_job(&job, "runner_system_failure").await?;
            }
        }
        self.start_due_jobs().await
    }

    /// Runs [`Ci::sweep`] every `sweep_interval` until `stop` is cancelled.
    pub fn spawn_monitor(&self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let ci = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ci.settings().sweep_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(err) = ci.sweep().await {
                            tracing::error!(error = %format!("{err:#}"), "job sweep failed");
                        }
                    }
                }
            }
        })
    }
}
