//! The job queue as runners see it: a version that changes whenever a job
//! becomes pending, and the pick of one pending job for one runner.
//!
//! Long polling (`POST /jobs/request`) waits on [`Queue::subscribe`]: every
//! enqueue bumps the version and wakes every waiter, which then tries to
//! pick. The version, as a string, is the `X-GitLab-Last-Update` value.
//!
//! Exactly-once dispatch: picks run one at a time in this process (a mutex;
//! SQLite serialises writes anyway, so this costs no throughput and spares
//! concurrent pollers from racing for the same row), and the claim itself is
//! a conditional write that only succeeds on a still-pending job, so even a
//! second process on the same database could not hand a job out twice.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use forerunner_protocol::runners::{AccessLevel, RunnerType};
use tokio::sync::watch;

use crate::domain::matching::{can_pick, effective_timeout, JobFacts, RunnerFacts, Scope};
use crate::domain::{QueuedJob, Runner};
use crate::store::{Store, StoreResult};

/// Timeout of a job without `timeout:` (GitLab's project default, 1 hour).
pub const DEFAULT_JOB_TIMEOUT: i64 = 3600;
/// Pending jobs read by the first store round trip while looking for a
/// match (usually the oldest pending job fits), and by later ones.
const FIRST_BATCH: i64 = 16;
const NEXT_BATCH: i64 = 256;

/// The result of [`Queue::pick`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// This job is now the runner's.
    Job(i64),
    /// No pending job fits the runner.
    Nothing,
    /// The fitting job was taken by someone else between the read and the
    /// claim (another coordinator process on the same database); GitLab
    /// answers `409 Conflict` and the runner asks again.
    Conflict,
}

/// The queue version and the dispatch lock.
pub struct Queue {
    version: watch::Sender<u64>,
    dispatch: tokio::sync::Mutex<()>,
}

impl Default for Queue {
    fn default() -> Self {
        Self::new()
    }
}

impl Queue {
    /// A queue whose version starts at the current time in milliseconds, so
    /// a `last_update` from before a restart never equals the new version.
    pub fn new() -> Queue {
        let start = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(1);
        Queue {
            version: watch::Sender::new(start),
            dispatch: tokio::sync::Mutex::new(()),
        }
    }

    /// The current version (`X-GitLab-Last-Update`).
    pub fn version(&self) -> String {
        self.version.borrow().to_string()
    }

    /// A receiver that sees every later bump.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Announces that jobs became pending.
    pub fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Claims the oldest pending job `runner` may run, storing the job
    /// token's digest.
    pub async fn pick(
        &self,
        store: &Store,
        runner: &Runner,
        features: &BTreeSet<String>,
        token_digest: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Pick> {
        let facts = runner_facts(runner, features);
        let _turn = self.dispatch.lock().await;
        let mut groups: HashMap<i64, BTreeSet<i64>> = HashMap::new();
        let mut after = 0;
        let mut batch_size = FIRST_BATCH;
        loop {
            let batch = store.ci.queued_jobs(after, batch_size).await?;
            batch_size = NEXT_BATCH;
            let Some(last) = batch.last() else {
                return Ok(Pick::Nothing);
            };
            after = last.id;
            for job in &batch {
                let project_groups = match (job.group_id, &facts.scope) {
                    (Some(g), Scope::Group(_)) => match groups.get(&g) {
                        Some(chain) => chain.clone(),
                        None => {
                            let chain: BTreeSet<i64> = store
                                .namespaces
                                .group_and_ancestors(g)
                                .await?
                                .iter()
                                .map(|g| g.id)
                                .collect();
                            groups.insert(g, chain.clone());
                            chain
                        }
                    },
                    _ => BTreeSet::new(),
                };
                if can_pick(&facts, &job_facts(job, project_groups)).is_err() {
                    continue;
                }
                let spec_timeout = store
                    .ci
                    .job_by_id(job.id)
                    .await?
                    .and_then(|j| j.spec.timeout)
                    .and_then(|t| i64::try_from(t).ok())
                    .unwrap_or(DEFAULT_JOB_TIMEOUT);
                let timeout = effective_timeout(spec_timeout, runner.maximum_timeout);
                return Ok(
                    if store
                        .ci
                        .claim_job(job.id, runner.id, token_digest, timeout, now)
                        .await?
                    {
                        Pick::Job(job.id)
                    } else {
                        Pick::Conflict
                    },
                );
            }
        }
    }
}

/// The runner's side of matching.
pub fn runner_facts(runner: &Runner, features: &BTreeSet<String>) -> RunnerFacts {
    RunnerFacts {
        scope: match runner.runner_type {
            RunnerType::InstanceType => Scope::Instance,
            RunnerType::GroupType => Scope::Group(runner.group_id.unwrap_or(-1)),
            RunnerType::ProjectType => {
                Scope::Projects(runner.project_ids.iter().copied().collect())
            }
        },
        tags: runner.tags.iter().cloned().collect(),
        run_untagged: runner.run_untagged,
        paused: !runner.active,
        ref_protected: runner.access_level == AccessLevel::RefProtected,
        features: features.clone(),
    }
}

fn job_facts(job: &QueuedJob, project_groups: BTreeSet<i64>) -> JobFacts {
    JobFacts {
        project_id: job.project_id,
        project_groups,
        shared_runners_enabled: job.shared_runners_enabled,
        group_runners_enabled: job.group_runners_enabled,
        tags: job.tags.iter().cloned().collect(),
        protected: job.protected,
        required_features: BTreeSet::new(),
    }
}
