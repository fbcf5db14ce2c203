//! The coordinator's domain model: users and their tokens, groups and
//! projects, runners and the machines (managers) using them, pipelines,
//! jobs and CI/CD variables.
//!
//! These types are plain data without serde: the API layer converts them to
//! the wire entities of `forerunner-protocol`, the store converts them to and
//! from rows. Rules that do not need I/O (runner status, token formats,
//! permissions) live here so they can be unit-tested.

pub mod job;
pub mod job_status;
pub mod matching;
pub mod namespace;
pub mod runner;
pub mod secret;
pub mod settings;
pub mod user;

pub use job::{
    ArtifactsArchive, CiVariable, CommitDetails, Job, JobChange, JobSpec, NeedSpec, NewJob,
    NewPipeline, Pipeline, PipelineVariable, QueuedJob, RetrySpec, VariableOwner, YamlVariable,
};
pub use job_status::JobStatus;
pub use namespace::{Group, NewGroup, NewProject, Project, ProjectUpdate};
pub use runner::{
    ManagerHeartbeat, NewRunner, RegistrationType, Runner, RunnerFilter, RunnerManager,
    RunnerScope, RunnerUpdate, StatusFilter,
};
pub use secret::{digest, Secret};
pub use settings::AppSettings;
pub use user::{Auth, NewPersonalAccessToken, NewUser, PersonalAccessToken, Scope, User};

use chrono::{DateTime, TimeZone, Utc};

/// A window of a list: `offset` rows skipped, at most `limit` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub offset: i64,
    /// Maximum rows to return.
    pub limit: i64,
}

impl Page {
    /// Everything (for internal callers such as the admin CLI).
    pub const ALL: Page = Page {
        offset: 0,
        limit: i64::MAX,
    };
}

/// One page of a list and the size of the whole list.
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    /// The rows of the page.
    pub items: Vec<T>,
    /// Number of rows in the whole (filtered) list.
    pub total: i64,
}

/// Milliseconds since the epoch, the store's time representation.
pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`to_millis`]; out-of-range values clamp to the epoch.
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// The current time truncated to milliseconds, so values survive a round
/// trip through the store unchanged.
pub fn now() -> DateTime<Utc> {
    from_millis(Utc::now().timestamp_millis())
}
