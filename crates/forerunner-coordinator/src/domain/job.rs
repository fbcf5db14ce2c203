//! Pipelines, jobs and CI/CD variables as the coordinator stores them.
//!
//! A job's definition from the YAML ([`JobSpec`]) is written once when the
//! pipeline is created and stored as one JSON document; everything that
//! changes while the job moves through its life (status, runner, times,
//! artifacts) is a field of [`Job`]. Job tokens exist in clear only in the
//! payload handed to the runner; the store keeps their digest.

use chrono::{DateTime, Utc};
use forerunner_protocol::jobs::{ArtifactSpec, CacheSpec, Image};
use serde::{Deserialize, Serialize};

use crate::domain::job_status::JobStatus;

/// A pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Id.
    pub id: i64,
    /// Number within the project.
    pub iid: i64,
    /// Project.
    pub project_id: i64,
    /// Branch or tag name.
    pub ref_name: String,
    /// Whether `ref_name` is a tag.
    pub tag: bool,
    /// Commit.
    pub sha: String,
    /// The commit before (`0000…` when unknown).
    pub before_sha: String,
    /// `api`, `push`, `web`, …
    pub source: String,
    /// Composite status of its jobs.
    pub status: JobStatus,
    /// Whether the ref is protected.
    pub protected: bool,
    /// Who created it.
    pub user_id: Option<i64>,
    /// `workflow:name`.
    pub name: Option<String>,
    /// Variables given at creation.
    pub variables: Vec<PipelineVariable>,
    /// The commit's author, time and message.
    pub commit: CommitDetails,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When its first job started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A variable given when creating a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineVariable {
    /// Name.
    pub key: String,
    /// Value.
    pub value: String,
    /// `env_var` or `file`.
    #[serde(default = "env_var")]
    pub variable_type: String,
}

fn env_var() -> String {
    "env_var".into()
}

/// What creating a pipeline needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPipeline {
    /// Project.
    pub project_id: i64,
    /// Branch or tag.
    pub ref_name: String,
    /// Whether it is a tag.
    pub tag: bool,
    /// Commit.
    pub sha: String,
    /// Previous commit.
    pub before_sha: String,
    /// Source.
    pub source: String,
    /// Protected ref.
    pub protected: bool,
    /// Creator.
    pub user_id: Option<i64>,
    /// `workflow:name`.
    pub name: Option<String>,
    /// Variables given at creation.
    pub variables: Vec<PipelineVariable>,
    /// The commit's author, time and message.
    pub commit: CommitDetails,
}

/// What the pipeline's commit says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitDetails {
    /// Full message.
    pub message: String,
    /// `Name <email>`.
    pub author: String,
    /// ISO 8601 commit time.
    pub timestamp: String,
}

/// One `needs:` entry of a stored job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeedSpec {
    /// Name of the needed job.
    pub job: String,
    /// Whether its artifacts are downloaded.
    pub artifacts: bool,
    /// Whether the need is ignored when the job is absent.
    pub optional: bool,
}

/// A YAML variable of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct YamlVariable {
    /// Name.
    pub key: String,
    /// Value.
    pub value: String,
    /// `expand: false`.
    #[serde(default)]
    pub raw: bool,
}

/// `retry:` of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrySpec {
    /// Retries after the first attempt (0 to 2).
    pub max: u8,
    /// Failure reasons that trigger a retry; empty means any (`always`).
    #[serde(default)]
    pub when: Vec<String>,
    /// Exit codes that trigger a retry.
    #[serde(default)]
    pub exit_codes: Vec<i64>,
}

impl RetrySpec {
    /// Whether a job that failed with `reason` (and `exit_code`) on attempt
    /// `attempt` (0 for the first run) is retried automatically.
    pub fn retries(&self, attempt: i64, reason: &str, exit_code: Option<i32>) -> bool {
        if attempt >= i64::from(self.max) {
            return false;
        }
        let by_reason =
            self.when.is_empty() || self.when.iter().any(|w| w == "always" || w == reason);
        let by_code = self.exit_codes.is_empty()
            || exit_code.is_some_and(|c| self.exit_codes.contains(&i64::from(c)));
        by_reason && by_code
    }
}

/// The YAML-derived definition of a job, stored as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// `needs:`; `None` when the job waits for earlier stages.
    #[serde(default)]
    pub needs: Option<Vec<NeedSpec>>,
    /// `dependencies:`; `None` for every earlier job.
    #[serde(default)]
    pub dependencies: Option<Vec<String>>,
    /// `image:`.
    #[serde(default)]
    pub image: Option<Image>,
    /// `services:`.
    #[serde(default)]
    pub services: Vec<Image>,
    /// YAML variables (global, job, matrix).
    #[serde(default)]
    pub variables: Vec<YamlVariable>,
    /// `before_script:`.
    #[serde(default)]
    pub before_script: Vec<String>,
    /// `script:`.
    #[serde(default)]
    pub script: Vec<String>,
    /// `after_script:`.
    #[serde(default)]
    pub after_script: Vec<String>,
    /// Artifacts to upload.
    #[serde(default)]
    pub artifacts: Vec<ArtifactSpec>,
    /// Caches.
    #[serde(default)]
    pub cache: Vec<CacheSpec>,
    /// `timeout:` in seconds.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// `retry:`.
    #[serde(default)]
    pub retry: RetrySpec,
    /// `allow_failure: exit_codes:`.
    #[serde(default)]
    pub allow_failure_exit_codes: Vec<i64>,
    /// `start_in:` of a delayed job, in seconds.
    #[serde(default)]
    pub start_in: Option<u64>,
    /// `environment: name`.
    #[serde(default)]
    pub environment: Option<String>,
    /// `(CI_NODE_INDEX, CI_NODE_TOTAL)` of a parallel job.
    #[serde(default)]
    pub parallel: Option<(u32, u32)>,
}

/// An uploaded artifacts archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactsArchive {
    /// File name as uploaded (`artifacts.zip`).
    pub filename: String,
    /// Size in bytes.
    pub size: i64,
    /// Expiry, if any.
    pub expire_at: Option<DateTime<Utc>>,
}

/// A job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Id.
    pub id: i64,
    /// Pipeline.
    pub pipeline_id: i64,
    /// Project.
    pub project_id: i64,
    /// Name (with the parallel suffix).
    pub name: String,
    /// Stage.
    pub stage: String,
    /// Stage position.
    pub stage_index: i64,
    /// Status.
    pub status: JobStatus,
    /// `on_success`, `on_failure`, `always`, `manual`, `delayed`.
    pub when: String,
    /// Whether its failure only warns.
    pub allow_failure: bool,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// YAML definition.
    pub spec: JobSpec,
    /// Whether a newer attempt replaced it.
    pub retried: bool,
    /// Attempt number (0 for the first run).
    pub attempt: i64,
    /// The runner that took it.
    pub runner_id: Option<i64>,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Exit code reported with a failure.
    pub exit_code: Option<i32>,
    /// Timeout it was given, in seconds.
    pub timeout: Option<i64>,
    /// Who created or played it.
    pub user_id: Option<i64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it became pending.
    pub queued_at: Option<DateTime<Utc>>,
    /// When a delayed job becomes pending.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// When a runner took it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed.
    pub finished_at: Option<DateTime<Utc>>,
    /// Last trace patch or update.
    pub last_contact_at: Option<DateTime<Utc>>,
    /// The uploaded archive.
    pub artifacts: Option<ArtifactsArchive>,
}

impl Job {
    /// The job's `duration` in seconds, as GitLab computes it.
    pub fn duration(&self, now: DateTime<Utc>) -> Option<f64> {
        let start = self.started_at?;
        let end = self.finished_at.unwrap_or(now);
        Some((end - start).num_milliseconds() as f64 / 1000.0)
    }
}

/// What creating a job needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Name.
    pub name: String,
    /// Stage.
    pub stage: String,
    /// Stage position.
    pub stage_index: i64,
    /// `when`.
    pub when: String,
    /// Allow failure.
    pub allow_failure: bool,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// Definition.
    pub spec: JobSpec,
    /// Attempt.
    pub attempt: i64,
    /// Creator.
    pub user_id: Option<i64>,
}

/// A pending job with what runner matching needs about it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedJob {
    /// Job id.
    pub id: i64,
    /// Project.
    pub project_id: i64,
    /// The project's group.
    pub group_id: Option<i64>,
    /// Job tags.
    pub tags: Vec<String>,
    /// Whether the pipeline's ref is protected.
    pub protected: bool,
    /// Project setting.
    pub shared_runners_enabled: bool,
    /// Project setting.
    pub group_runners_enabled: bool,
}

/// Fields a status change sets besides the status; `None` leaves a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobChange {
    /// Failure reason.
    pub failure_reason: Option<String>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Queued time.
    pub queued_at: Option<DateTime<Utc>>,
    /// Scheduled time.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Finish time.
    pub finished_at: Option<DateTime<Utc>>,
    /// Who played it.
    pub user_id: Option<i64>,
    /// Allow the failure after all (`allow_failure: exit_codes` matched).
    pub allow_failure: Option<bool>,
}

/// Who owns a CI/CD variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariableOwner {
    /// A project.
    Project(i64),
    /// A group.
    Group(i64),
}

/// A project or group CI/CD variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiVariable {
    /// Name.
    pub key: String,
    /// Value.
    pub value: String,
    /// `env_var` or `file`.
    pub variable_type: String,
    /// Only for protected refs.
    pub protected: bool,
    /// Masked in job logs.
    pub masked: bool,
    /// Not expanded.
    pub raw: bool,
    /// Environment scope (`*`).
    pub environment_scope: String,
    /// Description.
    pub description: Option<String>,
}
