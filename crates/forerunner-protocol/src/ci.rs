//! Pipelines, jobs and CI/CD variables of the REST API, as GitLab's
//! entities present them (`Entities::Ci::Pipeline`, `Entities::Ci::Job`,
//! `Entities::Ci::Variable`) and python-gitlab reads them.
//!
//! Times are RFC 3339 with milliseconds; fields GitLab always sends are
//! present (as `null` when empty) so clients indexing them do not fail.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::management::UserBasic;

/// `Entities::Ci::PipelineBasic` plus the detail fields of
/// `GET /projects/:id/pipelines/:pipeline_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Pipeline id.
    pub id: i64,
    /// Number within the project.
    pub iid: i64,
    /// Project.
    pub project_id: i64,
    /// Commit.
    pub sha: String,
    /// Branch or tag.
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// Composite status.
    pub status: String,
    /// `api`, `push`, `web`, …
    pub source: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// `<project url>/-/pipelines/<id>`.
    pub web_url: String,
    /// `workflow:name`.
    #[serde(default)]
    pub name: Option<String>,
    /// Previous commit.
    #[serde(default)]
    pub before_sha: String,
    /// Whether `ref` is a tag.
    #[serde(default)]
    pub tag: bool,
    /// Creator.
    #[serde(default)]
    pub user: Option<UserBasic>,
    /// When the first job started.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Seconds between start and finish.
    #[serde(default)]
    pub duration: Option<i64>,
    /// Seconds from creation to start.
    #[serde(default)]
    pub queued_duration: Option<i64>,
    /// Coverage, unused.
    #[serde(default)]
    pub coverage: Option<String>,
    /// `{"status": …, "text": …, …}` as GitLab's detailed status.
    #[serde(default)]
    pub detailed_status: Option<DetailedStatus>,
}

/// The parts of GitLab's `detailed_status` clients read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetailedStatus {
    /// Status icon name, e.g. `status_success`.
    pub icon: String,
    /// Status text, e.g. `passed`.
    pub text: String,
    /// Label.
    pub label: String,
    /// Group (the status, or `success-with-warnings`).
    pub group: String,
}

/// The pipeline of a job entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPipeline {
    /// Pipeline id.
    pub id: i64,
    /// Project.
    pub project_id: i64,
    /// Branch or tag.
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// Commit.
    pub sha: String,
    /// Status.
    pub status: String,
}

/// One artifact file of a job entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobArtifact {
    /// `archive`, `trace`, `junit`, …
    pub file_type: String,
    /// Size in bytes.
    pub size: i64,
    /// File name.
    pub filename: String,
    /// `zip`, `gzip`, `raw`.
    pub file_format: Option<String>,
}

/// `artifacts_file` of a job entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobArtifactsFile {
    /// File name.
    pub filename: String,
    /// Size in bytes.
    pub size: i64,
}

/// The runner of a job entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRunner {
    /// Runner id.
    pub id: i64,
    /// Description.
    pub description: Option<String>,
    /// Whether it is active.
    pub active: bool,
    /// Whether it is paused.
    pub paused: bool,
    /// Whether it is an instance runner.
    pub is_shared: bool,
    /// `instance_type`, `group_type`, `project_type`.
    pub runner_type: String,
    /// Name.
    pub name: Option<String>,
}

/// `Entities::Ci::Job`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Job id.
    pub id: i64,
    /// Status.
    pub status: String,
    /// Stage.
    pub stage: String,
    /// Name.
    pub name: String,
    /// Branch or tag.
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// Whether `ref` is a tag.
    pub tag: bool,
    /// Coverage, unused.
    pub coverage: Option<f64>,
    /// Whether a failure only warns.
    pub allow_failure: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Start time.
    pub started_at: Option<DateTime<Utc>>,
    /// Finish time.
    pub finished_at: Option<DateTime<Utc>>,
    /// When it was erased, never here.
    pub erased_at: Option<DateTime<Utc>>,
    /// Seconds it ran.
    pub duration: Option<f64>,
    /// Seconds it waited for a runner.
    pub queued_duration: Option<f64>,
    /// Who created or played it.
    pub user: Option<UserBasic>,
    /// Its pipeline.
    pub pipeline: JobPipeline,
    /// `<project url>/-/jobs/<id>`.
    pub web_url: String,
    /// Its files (archive, trace).
    pub artifacts: Vec<JobArtifact>,
    /// The archive, if uploaded.
    pub artifacts_file: Option<JobArtifactsFile>,
    /// When the archive expires.
    pub artifacts_expire_at: Option<DateTime<Utc>>,
    /// The runner that took it.
    pub runner: Option<JobRunner>,
    /// Tags.
    pub tag_list: Vec<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Whether it is retried (a newer attempt exists).
    pub retried: bool,
    /// `when: manual`, `delayed`, …
    pub when: String,
}

/// `Entities::Ci::Variable`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variable {
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
    /// Hidden in the UI, never here.
    #[serde(default)]
    pub hidden: bool,
    /// Not expanded.
    pub raw: bool,
    /// Environment scope.
    pub environment_scope: String,
    /// Description.
    pub description: Option<String>,
}
