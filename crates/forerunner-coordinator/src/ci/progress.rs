//! Pipeline progression, GitLab's rules:
//!
//! - a job without `needs:` waits for every job of earlier stages; a job
//!   with `needs:` waits only for those jobs (`needs: []` starts at once);
//! - a manual job that is not allowed to fail blocks what waits for it;
//! - once what it waits for is complete, a job runs according to `when`:
//!   `on_success` if their composite status is success (allowed failures
//!   count as success) or skipped, `on_failure` if it is failed, `always`
//!   in any case; otherwise it is skipped. `manual` jobs become `manual`,
//!   `delayed` ones `scheduled`;
//! - a failed job is retried automatically while `retry:` allows;
//! - the pipeline's status is the composite of its latest jobs.
//!
//! Every change re-evaluates the whole pipeline under one lock, so rules
//! never see a half-applied change.

use std::collections::HashMap;

use chrono::Duration;

use crate::ci::{Ci, CiError};
use crate::domain::job_status::composite;
use crate::domain::{now, Job, JobChange, JobStatus, NewJob};

/// Statuses in which a job has not started yet and can simply be canceled.
const NOT_STARTED: &[JobStatus] = &[
    JobStatus::Created,
    JobStatus::WaitingForResource,
    JobStatus::Preparing,
    JobStatus::Pending,
    JobStatus::Manual,
    JobStatus::Scheduled,
];

/// The outcome a runner reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The job passed.
    Success,
    /// The job failed for `reason`.
    Failed {
        /// GitLab failure reason.
        reason: String,
        /// Exit code of the failing script.
        exit_code: Option<i32>,
    },
}

fn latest(jobs: &[Job]) -> Vec<&Job> {
    jobs.iter().filter(|j| !j.retried).collect()
}

/// Whether a prerequisite no longer holds back what waits for it.
fn settled(job: &Job) -> bool {
    job.status.is_completed() || (job.status == JobStatus::Manual && job.allow_failure)
}

/// The jobs `job` waits for: its `needs:`, or every job of earlier stages.
fn prerequisites<'a>(job: &Job, jobs: &[&'a Job]) -> Vec<&'a Job> {
    match &job.spec.needs {
        Some(needs) => jobs
            .iter()
            .filter(|other| needs.iter().any(|n| n.job == other.name))
            .copied()
            .collect(),
        None => jobs
            .iter()
            .filter(|other| other.stage_index < job.stage_index)
            .copied()
            .collect(),
    }
}

/// The composite status of what a job waits for, or `None` while one of
/// them has not settled.
fn before_status(prerequisites: &[&Job]) -> Option<JobStatus> {
    if !prerequisites.iter().all(|p| settled(p)) {
        return None;
    }
    Some(
        composite(prerequisites.iter().map(|p| (p.status, p.allow_failure)))
            .map_or(JobStatus::Success, |(s, _)| s),
    )
}

/// What a `created` job becomes once what it waits for ended `before`.
fn decide_after(job: &Job, before: JobStatus) -> JobStatus {
    let passed = matches!(before, JobStatus::Success | JobStatus::Skipped);
    let runs = match job.when.as_str() {
        "on_failure" => before == JobStatus::Failed,
        "always" => true,
        _ => passed,
    };
    if !runs {
        JobStatus::Skipped
    } else {
        match job.when.as_str() {
            "manual" => JobStatus::Manual,
            "delayed" => JobStatus::Scheduled,
            _ => JobStatus::Pending,
        }
    }
}

/// What a `created` job becomes, or `None` while it must wait.
#[cfg(test)]
fn decide(job: &Job, jobs: &[&Job]) -> Option<JobStatus> {
    before_status(&prerequisites(job, jobs)).map(|before| decide_after(job, before))
}

/// The next attempt of `job`.
pub fn next_attempt(job: &Job, user_id: Option<i64>) -> NewJob {
    NewJob {
        name: job.name.clone(),
        stage: job.stage.clone(),
        stage_index: job.stage_index,
        when: job.when.clone(),
        allow_failure: job.allow_failure,
        tags: job.tags.clone(),
        spec: job.spec.clone(),
        attempt: job.attempt + 1,
        user_id: user_id.or(job.user_id),
    }
}

impl Ci {
    /// Re-evaluates a pipeline: starts what may start, skips what will not
    /// run, and updates the pipeline's status.
    pub async fn advance(&self, pipeline_id: i64) -> Result<(), CiError> {
        let _one_at_a_time = self.inner.progress.lock().await;
        self.advance_locked(pipeline_id).await
    }

    async fn advance_locked(&self, pipeline_id: i64) -> Result<(), CiError> {
        let store = &self.store().ci;
        let mut enqueued = false;
        // Each round settles at least one job, or stops.
        loop {
            let jobs = store.pipeline_jobs(pipeline_id).await?;
            let current = latest(&jobs);
            // Jobs without `needs:` of one stage wait for the same jobs.
            let mut by_stage: HashMap<i64, Option<JobStatus>> = HashMap::new();
            let mut changes = Vec::new();
            for job in current.iter().filter(|j| j.status == JobStatus::Created) {
                let before = if job.spec.needs.is_none() {
                    *by_stage
                        .entry(job.stage_index)
                        .or_insert_with(|| before_status(&prerequisites(job, &current)))
                } else {
                    before_status(&prerequisites(job, &current))
                };
                let Some(next) = before.map(|b| decide_after(job, b)) else {
                    continue;
                };
                let t = now();
                let change = match next {
                    JobStatus::Pending => JobChange {
                        queued_at: Some(t),
                        ..JobChange::default()
                    },
                    JobStatus::Scheduled => JobChange {
                        scheduled_at: Some(
                            t + Duration::seconds(
                                i64::try_from(job.spec.start_in.unwrap_or(0)).unwrap_or(0),
                            ),
                        ),
                        ..JobChange::default()
                    },
                    JobStatus::Skipped => JobChange {
                        finished_at: Some(t),
                        ..JobChange::default()
                    },
                    _ => JobChange::default(),
                };
                enqueued |= next == JobStatus::Pending;
                changes.push((job.id, next, change));
            }
            let changed = !changes.is_empty() && store.start_jobs(&changes).await? > 0;
            if !changed {
                self.update_pipeline_status(pipeline_id, &current).await?;
                break;
            }
        }
        if enqueued {
            self.queue().bump();
        }
        Ok(())
    }

    async fn update_pipeline_status(
        &self,
        pipeline_id: i64,
        current: &[&Job],
    ) -> Result<(), CiError> {
        let status = composite(current.iter().map(|j| (j.status, j.allow_failure)))
            .map_or(JobStatus::Skipped, |(s, _)| s);
        let started = current.iter().filter_map(|j| j.started_at).min();
        let finished = status
            .is_completed()
            .then(|| current.iter().filter_map(|j| j.finished_at).max())
            .flatten()
            .or_else(|| status.is_completed().then(now));
        self.store()
            .ci
            .set_pipeline_status(pipeline_id, status, started, finished, now())
            .await?;
        Ok(())
    }

    /// Records what a runner reports at the end of a job. A job being
    /// canceled ends `canceled` whatever the runner says; a failure that
    /// `retry:` covers starts the next attempt.
    pub async fn finish_job(&self, job: &Job, outcome: Outcome) -> Result<JobStatus, CiError> {
        let store = &self.store().ci;
        let t = now();
        let (to, change) = if job.status == JobStatus::Canceling {
            (
                JobStatus::Canceled,
                JobChange {
                    finished_at: Some(t),
                    ..JobChange::default()
                },
            )
        } else {
            match &outcome {
                Outcome::Success => (
                    JobStatus::Success,
                    JobChange {
                        finished_at: Some(t),
                        ..JobChange::default()
                    },
                ),
                Outcome::Failed { reason, exit_code } => (
                    JobStatus::Failed,
                    JobChange {
                        finished_at: Some(t),
                        failure_reason: Some(reason.clone()),
                        exit_code: *exit_code,
                        // `allow_failure: exit_codes:` allows this failure.
                        allow_failure: exit_code
                            .is_some_and(|c| {
                                job.spec.allow_failure_exit_codes.contains(&i64::from(c))
                            })
                            .then_some(true),
                        ..JobChange::default()
                    },
                ),
            }
        };
        let from = [JobStatus::Running, JobStatus::Canceling];
        if !store.transition_job(job.id, &from, to, change).await? {
            return Err(CiError::NotAllowed("Job is not running".into()));
        }
        if let (JobStatus::Failed, Outcome::Failed { reason, exit_code }) = (to, &outcome) {
            if job.spec.retry.retries(job.attempt, reason, *exit_code) {
                let next = store
                    .retry_job(job.id, next_attempt(job, None), now())
                    .await?;
                tracing::info!(
                    job_id = job.id,
                    next = next.id,
                    reason,
                    "retrying a failed job"
                );
            }
        }
        self.advance(job.pipeline_id).await?;
        Ok(to)
    }

    /// Fails a running job on the coordinator's side (timeout, vanished
    /// runner), retrying it when `retry:` allows.
    pub async fn fail_job(&self, job: &Job, reason: &str) -> Result<(), CiError> {
        tracing::warn!(job_id = job.id, reason, "failing a job");
        match self
            .finish_job(
                job,
                Outcome::Failed {
                    reason: reason.to_owned(),
                    exit_code: None,
                },
            )
            .await
        {
            Ok(_) | Err(CiError::NotAllowed(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Cancels a job: one that has not started is canceled at once, a
    /// running one becomes `canceling` until its runner reports back.
    /// Completed jobs are left as they are.
    pub async fn cancel_job(&self, job: &Job) -> Result<(), CiError> {
        let store = &self.store().ci;
        let done = JobChange {
            finished_at: Some(now()),
            ..JobChange::default()
        };
        if NOT_STARTED.contains(&job.status) {
            store
                .transition_job(job.id, NOT_STARTED, JobStatus::Canceled, done)
                .await?;
        } else if job.status == JobStatus::Running {
            store
                .transition_job(
                    job.id,
                    &[JobStatus::Running],
                    JobStatus::Canceling,
                    JobChange::default(),
                )
                .await?;
        }
        self.advance(job.pipeline_id).await
    }

    /// Retries a completed job: a new attempt that starts when its
    /// prerequisites allow; skipped jobs after it are reconsidered.
    pub async fn retry_job(&self, job: &Job, user_id: Option<i64>) -> Result<Job, CiError> {
        if job.retried
            || !matches!(
                job.status,
                JobStatus::Success | JobStatus::Failed | JobStatus::Canceled
            )
        {
            return Err(CiError::NotAllowed("Job is not retryable".into()));
        }
        let store = &self.store().ci;
        let next = store
            .retry_job(job.id, next_attempt(job, user_id), now())
            .await?;
        self.reset_skipped_after(job.pipeline_id, job.stage_index)
            .await?;
        self.advance(job.pipeline_id).await?;
        Ok(store.job_by_id(next.id).await?.unwrap_or(next))
    }

    async fn reset_skipped_after(&self, pipeline_id: i64, stage_index: i64) -> Result<(), CiError> {
        let store = &self.store().ci;
        for job in store.pipeline_jobs(pipeline_id).await? {
            if !job.retried && job.status == JobStatus::Skipped && job.stage_index >= stage_index {
                store
                    .retry_job(job.id, next_attempt(&job, None), now())
                    .await?;
            }
        }
        Ok(())
    }

    /// Starts a manual job.
    pub async fn play_job(&self, job: &Job, user_id: Option<i64>) -> Result<(), CiError> {
        let change = JobChange {
            queued_at: Some(now()),
            user_id,
            ..JobChange::default()
        };
        if !self
            .store()
            .ci
            .transition_job(job.id, &[JobStatus::Manual], JobStatus::Pending, change)
            .await?
        {
            return Err(CiError::NotAllowed("Unplayable Job".into()));
        }
        self.queue().bump();
        self.advance(job.pipeline_id).await
    }

    /// Cancels every job of a pipeline that has not completed.
    pub async fn cancel_pipeline(&self, pipeline_id: i64) -> Result<(), CiError> {
        for job in self.store().ci.pipeline_jobs(pipeline_id).await? {
            if !job.retried && !job.status.is_completed() {
                self.cancel_job(&job).await?;
            }
        }
        self.advance(pipeline_id).await
    }

    /// Retries every failed or canceled job of a pipeline.
    pub async fn retry_pipeline(
        &self,
        pipeline_id: i64,
        user_id: Option<i64>,
    ) -> Result<(), CiError> {
        let store = &self.store().ci;
        let jobs = store.pipeline_jobs(pipeline_id).await?;
        let mut first_stage = None;
        for job in jobs
            .iter()
            .filter(|j| !j.retried && matches!(j.status, JobStatus::Failed | JobStatus::Canceled))
        {
            store
                .retry_job(job.id, next_attempt(job, user_id), now())
                .await?;
            first_stage =
                Some(first_stage.map_or(job.stage_index, |s: i64| s.min(job.stage_index)));
        }
        if let Some(stage) = first_stage {
            self.reset_skipped_after(pipeline_id, stage).await?;
        }
        self.advance(pipeline_id).await
    }

    /// Starts delayed jobs whose time has come.
    pub async fn start_due_jobs(&self) -> Result<(), CiError> {
        let t = now();
        for job in self.store().ci.jobs_in(&[JobStatus::Scheduled]).await? {
            if job.scheduled_at.is_some_and(|at| at <= t) {
                let change = JobChange {
                    queued_at: Some(t),
                    ..JobChange::default()
                };
                if self
                    .store()
                    .ci
                    .transition_job(job.id, &[JobStatus::Scheduled], JobStatus::Pending, change)
                    .await?
                {
                    self.queue().bump();
                    self.advance(job.pipeline_id).await?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{JobSpec, NeedSpec};

    fn job(id: i64, name: &str, stage: i64, status: JobStatus, when: &str) -> Job {
        Job {
            id,
            pipeline_id: 1,
            project_id: 1,
            name: name.into(),
            stage: format!("s{stage}"),
            stage_index: stage,
            status,
            when: when.into(),
            allow_failure: false,
            tags: vec![],
            spec: JobSpec::default(),
            retried: false,
            attempt: 0,
            runner_id: None,
            failure_reason: None,
            exit_code: None,
            timeout: None,
            user_id: None,
            created_at: now(),
            queued_at: None,
            scheduled_at: None,
            started_at: None,
            finished_at: None,
            last_contact_at: None,
            artifacts: None,
        }
    }

    #[test]
    fn stages_wait_and_when_decides() {
        use JobStatus::*;
        let build = job(1, "build", 0, Running, "on_success");
        let test = job(2, "test", 1, Created, "on_success");
        let all = [&build, &test];
        assert_eq!(decide(&test, &all), None, "waits for the earlier stage");
        let failed = job(1, "build", 0, Failed, "on_success");
        let on_failure = job(3, "cleanup", 1, Created, "on_failure");
        let all = [&failed, &test, &on_failure];
        assert_eq!(decide(&test, &all), Some(Skipped));
        assert_eq!(decide(&on_failure, &all), Some(Pending));
        let mut allowed = failed.clone();
        allowed.allow_failure = true;
        let all = [&allowed, &test, &on_failure];
        assert_eq!(decide(&test, &all), Some(Pending), "allowed failures pass");
        assert_eq!(decide(&on_failure, &all), Some(Skipped));
    }

    #[test]
    fn needs_skip_the_stage_order() {
        use JobStatus::*;
        let a = job(1, "a", 0, Success, "on_success");
        let slow = job(2, "slow", 0, Running, "on_success");
        let mut b = job(3, "b", 1, Created, "on_success");
        b.spec.needs = Some(vec![NeedSpec {
            job: "a".into(),
            artifacts: true,
            optional: false,
        }]);
        assert_eq!(decide(&b, &[&a, &slow, &b]), Some(Pending));
        let manual = job(4, "deploy", 2, Created, "manual");
        let done_b = job(3, "b", 1, Success, "on_success");
        let done_slow = job(2, "slow", 0, Success, "on_success");
        assert_eq!(decide(&manual, &[&a, &done_slow, &done_b]), Some(Manual));
    }
}
