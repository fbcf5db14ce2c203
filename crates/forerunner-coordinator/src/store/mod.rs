//! Persistence behind one interface, split per aggregate.
//!
//! Handlers only see [`Store`], a bundle of trait objects ([`UserStore`],
//! [`NamespaceStore`], [`RunnerStore`], [`SettingsStore`], [`CiStore`]). The SQLite backend
//! ([`sqlite::SqliteStore`]) implements all of them; a PostgreSQL backend
//! will implement the same traits and be chosen in [`Store::open`] without
//! touching a handler.
//!
//! Contract shared by every backend: methods are safe to call concurrently,
//! each method is atomic (multi-row writes run in one transaction), tokens
//! arrive and are matched only as SHA-256 digests, and times round-trip with
//! millisecond precision.

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod conformance_ci;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    AppSettings, Auth, Group, ManagerHeartbeat, NewGroup, NewPersonalAccessToken, NewProject,
    NewRunner, NewUser, Page, Paged, PersonalAccessToken, Project, ProjectUpdate, Runner,
    RunnerFilter, RunnerManager, RunnerUpdate, User,
};
use crate::domain::{
    CiVariable, Job, JobChange, JobStatus, NewJob, NewPipeline, Pipeline, QueuedJob, VariableOwner,
};

/// Errors of every store method.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness rule was violated (`what` says which, e.g. "username").
    #[error("{0} has already been taken")]
    Conflict(String),
    /// A row the operation needs does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The backend failed.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result of store methods.
pub type StoreResult<T> = Result<T, StoreError>;

/// Users and personal access tokens.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user; `Conflict("username")` if the name is taken.
    async fn create_user(&self, new: NewUser) -> StoreResult<User>;
    /// A user by id.
    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>>;
    /// A user by login name.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// Users ordered by id.
    async fn list_users(&self, page: Page) -> StoreResult<Paged<User>>;
    /// Creates a personal access token.
    async fn create_token(&self, new: NewPersonalAccessToken) -> StoreResult<PersonalAccessToken>;
    /// The user and token whose digest is `token_digest`, expired and
    /// revoked ones included (the caller decides).
    async fn authenticate(&self, token_digest: &str) -> StoreResult<Option<Auth>>;
}

/// Groups and projects, with their registration tokens.
#[async_trait]
pub trait NamespaceStore: Send + Sync {
    /// Creates a group; `NotFound("parent group")` or `Conflict("path")`.
    async fn create_group(&self, new: NewGroup) -> StoreResult<Group>;
    /// A group by id.
    async fn group_by_id(&self, id: i64) -> StoreResult<Option<Group>>;
    /// A group by full path.
    async fn group_by_full_path(&self, full_path: &str) -> StoreResult<Option<Group>>;
    /// Groups ordered by id; `owner` limits to groups that user created.
    async fn list_groups(&self, owner: Option<i64>, page: Page) -> StoreResult<Paged<Group>>;
    /// The group and its ancestors, nearest first.
    async fn group_and_ancestors(&self, id: i64) -> StoreResult<Vec<Group>>;
    /// Creates a project; `Conflict("path")` if the full path is taken.
    async fn create_project(&self, new: NewProject) -> StoreResult<Project>;
    /// A project by id.
    async fn project_by_id(&self, id: i64) -> StoreResult<Option<Project>>;
    /// A project by full path.
    async fn project_by_full_path(&self, full_path: &str) -> StoreResult<Option<Project>>;
    /// Applies `update` to a project; `NotFound("project")` if it does not exist.
    async fn update_project(&self, id: i64, update: ProjectUpdate) -> StoreResult<Project>;
    /// Projects ordered by id; `owner` limits to projects that user created
    /// or whose group that user created.
    async fn list_projects(&self, owner: Option<i64>, page: Page) -> StoreResult<Paged<Project>>;
    /// Sets (or clears) a group's registration token (digest, short form).
    async fn set_group_runners_token(
        &self,
        group_id: i64,
        token: Option<(String, String)>,
    ) -> StoreResult<()>;
    /// Sets (or clears) a project's registration token (digest, short form).
    async fn set_project_runners_token(
        &self,
        project_id: i64,
        token: Option<(String, String)>,
    ) -> StoreResult<()>;
    /// The group whose registration token has this digest.
    async fn group_by_runners_token(&self, digest: &str) -> StoreResult<Option<Group>>;
    /// The project whose registration token has this digest.
    async fn project_by_runners_token(&self, digest: &str) -> StoreResult<Option<Project>>;
}

/// Runners and their managers.
#[async_trait]
pub trait RunnerStore: Send + Sync {
    /// Creates a runner with its tags (and its project, for project runners).
    async fn create_runner(&self, new: NewRunner) -> StoreResult<Runner>;
    /// A runner by id.
    async fn runner_by_id(&self, id: i64) -> StoreResult<Option<Runner>>;
    /// The runner whose token has this digest, unless the token expired at `now`.
    async fn runner_by_token(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Runner>>;
    /// Runners matching `filter` (status judged at `now`), ordered by id.
    async fn list_runners(
        &self,
        filter: &RunnerFilter,
        now: DateTime<Utc>,
        page: Page,
    ) -> StoreResult<Paged<Runner>>;
    /// Applies `update` and bumps the runner's queue version.
    async fn update_runner(&self, id: i64, update: RunnerUpdate) -> StoreResult<Runner>;
    /// Deletes a runner with its managers; `false` if it did not exist.
    async fn delete_runner(&self, id: i64) -> StoreResult<bool>;
    /// Replaces the runner's token.
    async fn set_runner_token(
        &self,
        id: i64,
        digest: &str,
        short: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// Records a contact: upserts the manager `(runner, system_id)` with the
    /// heartbeat's details and sets `contacted_at` on both.
    async fn heartbeat(
        &self,
        runner_id: i64,
        heartbeat: ManagerHeartbeat,
        now: DateTime<Utc>,
    ) -> StoreResult<RunnerManager>;
    /// The runner's managers ordered by id.
    async fn managers(&self, runner_id: i64) -> StoreResult<Vec<RunnerManager>>;
    /// Deletes one manager; clears the runner's `contacted_at` when it was the
    /// last one. `false` if there was no such manager.
    async fn delete_manager(&self, runner_id: i64, system_id: &str) -> StoreResult<bool>;
    /// Assigns a project runner to one more project; `false` if it already was.
    async fn assign_project(&self, runner_id: i64, project_id: i64) -> StoreResult<bool>;
    /// Removes a project assignment; `false` if there was none.
    async fn unassign_project(&self, runner_id: i64, project_id: i64) -> StoreResult<bool>;
}

/// Instance-wide settings.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The current settings.
    async fn settings(&self) -> StoreResult<AppSettings>;
    /// Allows or disallows registration with registration tokens.
    async fn set_allow_runner_registration_token(&self, allow: bool) -> StoreResult<AppSettings>;
    /// Replaces the instance registration token (digest, short form).
    async fn set_registration_token(&self, digest: &str, short: &str) -> StoreResult<()>;
}

/// Filters of pipeline and job lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    /// Only these statuses (empty: any).
    pub statuses: Vec<JobStatus>,
    /// Include attempts that were retried.
    pub include_retried: bool,
    /// Only this ref (pipelines).
    pub ref_name: Option<String>,
}

/// Pipelines, jobs and CI/CD variables.
#[async_trait]
pub trait CiStore: Send + Sync {
    /// Creates a pipeline (numbering it within its project) and its jobs in
    /// `created` status, in one transaction.
    async fn create_pipeline(
        &self,
        new: NewPipeline,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Pipeline, Vec<Job>)>;
    /// A pipeline by id.
    async fn pipeline_by_id(&self, id: i64) -> StoreResult<Option<Pipeline>>;
    /// A project's pipelines, newest first.
    async fn list_pipelines(
        &self,
        project_id: i64,
        filter: &JobFilter,
        page: Page,
    ) -> StoreResult<Paged<Pipeline>>;
    /// Sets a pipeline's status and times (`None` keeps a time).
    async fn set_pipeline_status(
        &self,
        id: i64,
        status: JobStatus,
        started_at: Option<DateTime<Utc>>,
        finished_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Every job of a pipeline (retried attempts included), by id.
    async fn pipeline_jobs(&self, pipeline_id: i64) -> StoreResult<Vec<Job>>;
    /// Latest attempts of a pipeline's jobs in stages below `below_stage`.
    async fn jobs_before_stage(&self, pipeline_id: i64, below_stage: i64) -> StoreResult<Vec<Job>>;
    /// A job by id.
    async fn job_by_id(&self, id: i64) -> StoreResult<Option<Job>>;
    /// The job whose token has this digest.
    async fn job_by_token(&self, digest: &str) -> StoreResult<Option<Job>>;
    /// Jobs of a project (`pipeline_id`: of one pipeline), newest first.
    async fn list_jobs(
        &self,
        project_id: i64,
        pipeline_id: Option<i64>,
        filter: &JobFilter,
        page: Page,
    ) -> StoreResult<Paged<Job>>;
    /// Pending jobs with id above `after`, oldest first, at most `limit`.
    async fn queued_jobs(&self, after: i64, limit: i64) -> StoreResult<Vec<QueuedJob>>;
    /// Gives a pending job to a runner: `false` unless the job was still
    /// pending (the single conditional write that makes dispatch
    /// exactly-once).
    async fn claim_job(
        &self,
        job_id: i64,
        runner_id: i64,
        token_digest: &str,
        timeout: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Moves a job to `to` if its status is one of `from`; `false` if not.
    async fn transition_job(
        &self,
        job_id: i64,
        from: &[JobStatus],
        to: JobStatus,
        change: JobChange,
    ) -> StoreResult<bool>;
    /// Moves each of `job_ids` whose status is `created` to its status in
    /// one transaction (progression starting many jobs at once); returns
    /// how many moved.
    async fn start_jobs(&self, changes: &[(i64, JobStatus, JobChange)]) -> StoreResult<usize>;
    /// Records runner activity on a job.
    async fn touch_job(&self, job_id: i64, now: DateTime<Utc>) -> StoreResult<()>;
    /// Records a job's uploaded archive.
    async fn set_job_artifacts(
        &self,
        job_id: i64,
        filename: &str,
        size: i64,
        expire_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// Marks `job_id` retried and creates its next attempt (status `created`).
    async fn retry_job(&self, job_id: i64, next: NewJob, now: DateTime<Utc>) -> StoreResult<Job>;
    /// Jobs in any of `statuses`, oldest first (for the timeout sweeper).
    async fn jobs_in(&self, statuses: &[JobStatus]) -> StoreResult<Vec<Job>>;
    /// CI/CD variables of a project or group, by key.
    async fn variables(&self, owner: VariableOwner) -> StoreResult<Vec<CiVariable>>;
    /// Creates a variable; `Conflict("key")` if it exists.
    async fn create_variable(&self, owner: VariableOwner, var: CiVariable) -> StoreResult<()>;
    /// Replaces a variable; `NotFound("variable")` if it does not exist.
    async fn update_variable(&self, owner: VariableOwner, var: CiVariable) -> StoreResult<()>;
    /// Deletes a variable; `false` if it did not exist.
    async fn delete_variable(&self, owner: VariableOwner, key: &str) -> StoreResult<bool>;
}

/// The coordinator's persistence, one trait object per aggregate.
#[derive(Clone)]
pub struct Store {
    /// Users and tokens.
    pub users: Arc<dyn UserStore>,
    /// Groups and projects.
    pub namespaces: Arc<dyn NamespaceStore>,
    /// Runners and managers.
    pub runners: Arc<dyn RunnerStore>,
    /// Application settings.
    pub settings: Arc<dyn SettingsStore>,
    /// Pipelines, jobs and variables.
    pub ci: Arc<dyn CiStore>,
}

impl Store {
    /// Opens (creating if needed) the SQLite database in `data_dir` and
    /// applies pending migrations.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Store> {
        let sqlite = sqlite::SqliteStore::open(&data_dir.join(sqlite::DATABASE_FILE)).await?;
        Ok(Store::from_backend(Arc::new(sqlite)))
    }

    /// Bundles one backend implementing every aggregate trait.
    pub fn from_backend<B>(backend: Arc<B>) -> Store
    where
        B: UserStore + NamespaceStore + RunnerStore + SettingsStore + CiStore + 'static,
    {
        Store {
            users: backend.clone(),
            namespaces: backend.clone(),
            runners: backend.clone(),
            settings: backend.clone(),
            ci: backend,
        }
    }
}
