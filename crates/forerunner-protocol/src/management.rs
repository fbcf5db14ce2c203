//! Management REST entities: runners, runner managers, users, projects,
//! groups, application settings and the version, as GitLab's Grape entities
//! expose them (`shared/research/server-api.md` §5).
//!
//! These are what python-gitlab and the management endpoints exchange with a
//! personal access token; the runner-token endpoints live in
//! [`crate::runners`]. Output types carry the fields clients read; request
//! types decode leniently (see [`crate::de`]) because parameters may arrive in
//! the query string, a form body or a JSON body.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::de;
use crate::runners::RunnerType;

/// A runner's REST status (GitLab's `deprecated_rest_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerStatus {
    /// Contacted within the last 2 hours.
    Online,
    /// Contacted before, but not within the last 2 hours.
    Offline,
    /// Created and last contacted 7 days ago or more.
    Stale,
    /// Never contacted the coordinator.
    NeverContacted,
    /// Contacted, but paused by a user.
    Paused,
}

impl RunnerStatus {
    /// The wire name (`online`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
            Self::Stale => "stale",
            Self::NeverContacted => "never_contacted",
            Self::Paused => "paused",
        }
    }
}

/// Whether a runner is running a job right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobExecutionStatus {
    /// At least one job is running.
    Active,
    /// No job is running.
    Idle,
}

/// `Entities::Ci::Runner`: one element of `GET /runners`, `/runners/all`,
/// `/projects/:id/runners` and `/groups/:id/runners`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Runner {
    /// Runner id.
    pub id: i64,
    /// Description given at creation or registration.
    #[serde(default)]
    pub description: Option<String>,
    /// Always `null` on current GitLab (see managers for addresses).
    #[serde(default)]
    pub ip_address: Option<String>,
    /// Deprecated inverse of `paused`.
    pub active: bool,
    /// Whether the runner is paused.
    pub paused: bool,
    /// Whether this is an instance (shared) runner.
    pub is_shared: bool,
    /// Scope of the runner.
    pub runner_type: RunnerType,
    /// Program name the runner reported (`info.name`).
    #[serde(default)]
    pub name: Option<String>,
    /// Contacted within the last 2 hours.
    pub online: bool,
    /// The creating user, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserBasic>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// REST status.
    pub status: RunnerStatus,
    /// Whether a job is running.
    pub job_execution_status: JobExecutionStatus,
}

/// `Entities::Ci::RunnerDetails`: `GET/PUT /runners/:id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerDetails {
    /// The fields of [`Runner`].
    #[serde(flatten)]
    pub runner: Runner,
    /// Tags, sorted.
    pub tag_list: Vec<String>,
    /// Whether the runner takes untagged jobs.
    pub run_untagged: bool,
    /// Whether the runner is locked to its current projects.
    pub locked: bool,
    /// Maximum job timeout in seconds, `null` when unset.
    #[serde(default)]
    pub maximum_timeout: Option<i64>,
    /// `not_protected` or `ref_protected`.
    pub access_level: String,
    /// Version of the most recently contacted manager.
    #[serde(default)]
    pub version: Option<String>,
    /// Revision of the most recently contacted manager.
    #[serde(default)]
    pub revision: Option<String>,
    /// Platform of the most recently contacted manager.
    #[serde(default)]
    pub platform: Option<String>,
    /// Architecture of the most recently contacted manager.
    #[serde(default)]
    pub architecture: Option<String>,
    /// Last contact of any manager.
    #[serde(default)]
    pub contacted_at: Option<DateTime<Utc>>,
    /// Note for administrators.
    #[serde(default)]
    pub maintenance_note: Option<String>,
    /// Projects a project runner is assigned to.
    #[serde(default)]
    pub projects: Vec<BasicProject>,
    /// Group of a group runner.
    #[serde(default)]
    pub groups: Vec<BasicGroup>,
}

/// `Entities::Ci::RunnerManager`: one element of `GET /runners/:id/managers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerManager {
    /// Manager id.
    pub id: i64,
    /// The machine's `system_id` (`s_…`/`r_…`).
    pub system_id: String,
    /// Runner program version.
    #[serde(default)]
    pub version: Option<String>,
    /// Runner program revision.
    #[serde(default)]
    pub revision: Option<String>,
    /// Operating system.
    #[serde(default)]
    pub platform: Option<String>,
    /// CPU architecture.
    #[serde(default)]
    pub architecture: Option<String>,
    /// Executor name.
    #[serde(default)]
    pub executor: Option<String>,
    /// First contact.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Last contact.
    #[serde(default)]
    pub contacted_at: Option<DateTime<Utc>>,
    /// Client address of the last contact.
    #[serde(default)]
    pub ip_address: Option<String>,
    /// Status by the same rules as runners.
    pub status: RunnerStatus,
    /// Whether a job is running on this machine.
    pub job_execution_status: JobExecutionStatus,
}

/// `Entities::UserBasic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserBasic {
    /// User id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// `active` or `blocked`.
    pub state: String,
    /// Whether the account is locked.
    #[serde(default)]
    pub locked: bool,
    /// Avatar URL, `null` here.
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// `<base>/<username>`.
    pub web_url: String,
}

/// `Entities::UserPublic` / `UserWithAdmin`: `GET /user`, `GET /users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The fields of [`UserBasic`].
    #[serde(flatten)]
    pub basic: UserBasic,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the user is an administrator (only shown to administrators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_admin: Option<bool>,
    /// Bot account.
    #[serde(default)]
    pub bot: bool,
    /// Whether the user may create groups.
    #[serde(default)]
    pub can_create_group: bool,
    /// Whether the user may create projects.
    #[serde(default)]
    pub can_create_project: bool,
    /// Always false here.
    #[serde(default)]
    pub two_factor_enabled: bool,
    /// Always false here.
    #[serde(default)]
    pub external: bool,
}

/// The namespace a project lives in (`namespace` of a project).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    /// Namespace id: the group id, or the user id for personal namespaces.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Last path segment.
    pub path: String,
    /// `group` or `user`.
    pub kind: String,
    /// Full path.
    pub full_path: String,
    /// Parent group, if any.
    #[serde(default)]
    pub parent_id: Option<i64>,
    /// `<base>/<full_path>`.
    pub web_url: String,
}

/// `Entities::Project` (the fields clients use): `GET/POST /projects`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Project id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Last path segment.
    pub path: String,
    /// `group/sub/project`.
    pub path_with_namespace: String,
    /// `Group / Sub / Project`.
    pub name_with_namespace: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Default branch.
    #[serde(default)]
    pub default_branch: Option<String>,
    /// `private`, `internal` or `public`.
    pub visibility: String,
    /// `<base>/<path_with_namespace>`.
    pub web_url: String,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Owning namespace.
    pub namespace: Namespace,
    /// Repository source the project was created from (local path or URL).
    #[serde(default)]
    pub import_url: Option<String>,
    /// Whether instance runners may run its jobs.
    pub shared_runners_enabled: bool,
    /// Whether group runners may run its jobs.
    pub group_runners_enabled: bool,
    /// Creator.
    #[serde(default)]
    pub creator_id: Option<i64>,
}

/// `Entities::BasicProjectDetails` subset inside [`RunnerDetails`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BasicProject {
    /// Project id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// `Group / Project`.
    pub name_with_namespace: String,
    /// Last path segment.
    pub path: String,
    /// `group/project`.
    pub path_with_namespace: String,
}

/// `Entities::BasicGroupDetails` inside [`RunnerDetails`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BasicGroup {
    /// Group id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// `<base>/<full_path>`.
    pub web_url: String,
}

/// `Entities::Group` (the fields clients use): `GET/POST /groups`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Group id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Last path segment.
    pub path: String,
    /// `parent/child`.
    pub full_path: String,
    /// `Parent / Child`.
    pub full_name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// `private`, `internal` or `public`.
    pub visibility: String,
    /// `<base>/groups/<full_path>`.
    pub web_url: String,
    /// Parent group.
    #[serde(default)]
    pub parent_id: Option<i64>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

/// `GET /version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// `X.Y.Z` (python-gitlab splits it into exactly three parts).
    pub version: String,
    /// Source revision.
    pub revision: String,
}

/// `GET/PUT /application/settings` (the runner-related subset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplicationSettings {
    /// Always 1.
    pub id: i64,
    /// Whether registration tokens may register runners (`POST /runners`).
    pub allow_runner_registration_token: bool,
    /// Which kinds of registration tokens besides the instance one are
    /// accepted: `project`, `group`.
    pub valid_runner_registrars: Vec<String>,
    /// Last change.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// Body of `PUT /application/settings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateApplicationSettingsRequest {
    /// New value of `allow_runner_registration_token`.
    #[serde(
        default,
        deserialize_with = "de::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_runner_registration_token: Option<bool>,
}

/// Filters of `GET /runners`, `/runners/all`, `/projects/:id/runners` and
/// `/groups/:id/runners`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunnerListQuery {
    /// Deprecated: `specific`, `shared`, a type or a status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `instance_type`, `group_type` or `project_type`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub runner_type: Option<String>,
    /// `online`, `offline`, `stale`, `never_contacted`, `active`, `paused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only paused (`true`) or only active (`false`) runners.
    #[serde(
        default,
        deserialize_with = "de::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub paused: Option<bool>,
    /// Runners carrying all these tags.
    #[serde(
        default,
        deserialize_with = "de::opt_tag_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub tag_list: Option<Vec<String>>,
}

/// Body of `POST /projects`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateProjectRequest {
    /// Display name (`name` or `path` is required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Path segment; derived from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Group to create it in; the user's personal namespace when absent.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub namespace_id: Option<i64>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `private` (default), `internal` or `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// Git repository the project's pipelines build: a local path or a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_url: Option<String>,
    /// Default branch (`main` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
}

/// Body of `POST /groups`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateGroupRequest {
    /// Display name (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Path segment (required by GitLab; derived from the name here when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Parent group.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub parent_id: Option<i64>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `private` (default), `internal` or `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
}

/// Body of `POST /projects/:id/runners`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssignRunnerRequest {
    /// The runner to assign (required).
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub runner_id: Option<i64>,
}

/// Body of `PUT /projects/:id` (the fields the coordinator uses).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateProjectRequest {
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// New repository source (local path or URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_url: Option<String>,
    /// New default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
    /// `private`, `internal` or `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// Whether instance runners may run its jobs.
    #[serde(
        default,
        deserialize_with = "de::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub shared_runners_enabled: Option<bool>,
    /// Whether group runners may run its jobs.
    #[serde(
        default,
        deserialize_with = "de::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_runners_enabled: Option<bool>,
}

/// Body of `POST /users` (administrators).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateUserRequest {
    /// Login name (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Display name (required by GitLab; the login name when absent here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Make the user an administrator.
    #[serde(
        default,
        deserialize_with = "de::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub admin: Option<bool>,
}

/// Body of `POST /users/:id/personal_access_tokens` (administrators).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreatePersonalAccessTokenRequest {
    /// Token name (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Scopes (required): an array or a comma-separated string.
    #[serde(
        default,
        deserialize_with = "de::opt_tag_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub scopes: Option<Vec<String>>,
    /// Expiry date, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `Entities::PersonalAccessTokenWithToken`: the `201` answer carrying the
/// token once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonalAccessToken {
    /// Token id.
    pub id: i64,
    /// Token name.
    pub name: String,
    /// Whether it was revoked.
    pub revoked: bool,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Owner.
    pub user_id: i64,
    /// Not revoked and not expired.
    pub active: bool,
    /// Expiry date (`YYYY-MM-DD`), `null` when it never expires.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// The token (only in the creation answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_details_flatten_runner_fields() {
        let details = RunnerDetails {
            runner: Runner {
                id: 7,
                description: Some("d".into()),
                ip_address: None,
                active: true,
                paused: false,
                is_shared: false,
                runner_type: RunnerType::GroupType,
                name: None,
                online: false,
                created_by: None,
                created_at: None,
                status: RunnerStatus::NeverContacted,
                job_execution_status: JobExecutionStatus::Idle,
            },
            tag_list: vec!["a".into()],
            run_untagged: true,
            locked: false,
            maximum_timeout: None,
            access_level: "not_protected".into(),
            version: None,
            revision: None,
            platform: None,
            architecture: None,
            contacted_at: None,
            maintenance_note: None,
            projects: vec![],
            groups: vec![],
        };
        let v = serde_json::to_value(&details).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["status"], "never_contacted");
        assert_eq!(v["runner_type"], "group_type");
        assert_eq!(v["tag_list"][0], "a");
        assert!(v["ip_address"].is_null());
        let back: RunnerDetails = serde_json::from_value(v).unwrap();
        assert_eq!(back, details);
    }

    #[test]
    fn list_query_accepts_csv_tags_and_string_bools() {
        let q: RunnerListQuery =
            serde_json::from_str(r#"{"type":"group_type","paused":"false","tag_list":"a,b"}"#)
                .unwrap();
        assert_eq!(q.runner_type.as_deref(), Some("group_type"));
        assert_eq!(q.paused, Some(false));
        assert_eq!(q.tag_list.unwrap(), ["a", "b"]);
    }
}
