//! Runners, runner managers and GitLab's status rules.
//!
//! A runner is what a token authenticates; a manager is one machine
//! (`system_id`) using that token. Status follows GitLab
//! (`shared/research/server-api.md` §8): online means a contact within 2
//! hours, stale means created and last contacted 7 days ago or more.

use chrono::{DateTime, Duration, Utc};
use forerunner_protocol::management::RunnerStatus;
use forerunner_protocol::runners::{AccessLevel, RunnerType};

/// A runner counts as online this long after its last contact.
pub const ONLINE_CONTACT_TIMEOUT: Duration = Duration::hours(2);
/// A runner counts as stale when created and last contacted this long ago.
pub const STALE_TIMEOUT: Duration = Duration::days(7);

/// How a runner came to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationType {
    /// `POST /user/runners` with a personal access token (`glrt-` token).
    AuthenticatedUser,
    /// `POST /runners` with a registration token.
    RegistrationToken,
}

impl RegistrationType {
    /// Column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthenticatedUser => "authenticated_user",
            Self::RegistrationToken => "registration_token",
        }
    }

    /// Parses a column value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authenticated_user" => Some(Self::AuthenticatedUser),
            "registration_token" => Some(Self::RegistrationToken),
            _ => None,
        }
    }
}

/// A runner.
#[derive(Debug, Clone, PartialEq)]
pub struct Runner {
    /// Id.
    pub id: i64,
    /// Scope.
    pub runner_type: RunnerType,
    /// How it was created.
    pub registration_type: RegistrationType,
    /// Loggable short form of the authentication token.
    pub token_short: String,
    /// Token expiry (`None`: never).
    pub token_expires_at: Option<DateTime<Utc>>,
    /// Description.
    pub description: Option<String>,
    /// Note for administrators.
    pub maintenance_note: Option<String>,
    /// Not paused.
    pub active: bool,
    /// Locked to its current projects.
    pub locked: bool,
    /// Takes untagged jobs.
    pub run_untagged: bool,
    /// Which refs it may build.
    pub access_level: AccessLevel,
    /// Maximum job timeout in seconds.
    pub maximum_timeout: Option<i64>,
    /// Owning group of a group runner.
    pub group_id: Option<i64>,
    /// Creator.
    pub creator_id: Option<i64>,
    /// `info.name` reported at registration.
    pub name: Option<String>,
    /// Last contact of any of its managers.
    pub contacted_at: Option<DateTime<Utc>>,
    /// Changes whenever the jobs this runner could pick may have changed;
    /// long polling compares it with the runner's `last_update`.
    pub queue_version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// Projects a project runner is assigned to, oldest assignment first.
    pub project_ids: Vec<i64>,
}

impl Runner {
    /// Contacted within [`ONLINE_CONTACT_TIMEOUT`] of `now`.
    pub fn is_online(&self, now: DateTime<Utc>) -> bool {
        is_online(self.contacted_at, now)
    }

    /// GitLab's REST status (`deprecated_rest_status`).
    pub fn status(&self, now: DateTime<Utc>) -> RunnerStatus {
        if is_stale(self.created_at, self.contacted_at, now) {
            RunnerStatus::Stale
        } else if self.contacted_at.is_none() {
            RunnerStatus::NeverContacted
        } else if !self.active {
            RunnerStatus::Paused
        } else if self.is_online(now) {
            RunnerStatus::Online
        } else {
            RunnerStatus::Offline
        }
    }
}

fn is_online(contacted_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    contacted_at.is_some_and(|c| c > now - ONLINE_CONTACT_TIMEOUT)
}

fn is_stale(
    created_at: DateTime<Utc>,
    contacted_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    let last = contacted_at.map_or(created_at, |c| c.max(created_at));
    last <= now - STALE_TIMEOUT
}

/// What creating a runner needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRunner {
    /// Scope.
    pub runner_type: RunnerType,
    /// How it is created.
    pub registration_type: RegistrationType,
    /// Digest of the authentication token.
    pub token_digest: String,
    /// Its short form.
    pub token_short: String,
    /// Description.
    pub description: Option<String>,
    /// Note for administrators.
    pub maintenance_note: Option<String>,
    /// Not paused.
    pub active: bool,
    /// Locked.
    pub locked: bool,
    /// Takes untagged jobs.
    pub run_untagged: bool,
    /// Access level.
    pub access_level: AccessLevel,
    /// Maximum timeout.
    pub maximum_timeout: Option<i64>,
    /// Group of a group runner.
    pub group_id: Option<i64>,
    /// Project of a project runner.
    pub project_id: Option<i64>,
    /// Creator.
    pub creator_id: Option<i64>,
    /// `info.name`.
    pub name: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
}

/// A partial update of a runner; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunnerUpdate {
    /// Description.
    pub description: Option<String>,
    /// Not paused.
    pub active: Option<bool>,
    /// Tags (replaces all).
    pub tags: Option<Vec<String>>,
    /// Takes untagged jobs.
    pub run_untagged: Option<bool>,
    /// Locked.
    pub locked: Option<bool>,
    /// Access level.
    pub access_level: Option<AccessLevel>,
    /// Maximum timeout.
    pub maximum_timeout: Option<i64>,
    /// Note for administrators.
    pub maintenance_note: Option<String>,
}

impl RunnerUpdate {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Which runners a list covers.
#[derive(Debug, Clone, PartialEq)]
pub enum RunnerScope {
    /// Every runner (administrators).
    All,
    /// Runners of the groups and projects the user owns.
    OwnedBy(i64),
    /// Runners a project or group may use: project runners assigned to
    /// `project_id`, group runners of `group_ids`, and instance runners if
    /// `instance`.
    AvailableTo {
        /// Project whose assigned runners count.
        project_id: Option<i64>,
        /// Groups whose group runners count.
        group_ids: Vec<i64>,
        /// Whether instance runners count.
        instance: bool,
    },
}

/// A status filter of runner lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Contacted within 2 hours.
    Online,
    /// Contacted, but not within 2 hours.
    Offline,
    /// Stale.
    Stale,
    /// Never contacted.
    NeverContacted,
    /// Not paused.
    Active,
    /// Paused.
    Paused,
}

impl StatusFilter {
    /// Parses GitLab's `status` value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "online" => Some(Self::Online),
            "offline" => Some(Self::Offline),
            "stale" => Some(Self::Stale),
            "never_contacted" | "not_connected" => Some(Self::NeverContacted),
            "active" => Some(Self::Active),
            "paused" => Some(Self::Paused),
            _ => None,
        }
    }
}

/// Filters of runner lists.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerFilter {
    /// Which runners.
    pub scope: RunnerScope,
    /// Only these types (empty: any).
    pub types: Vec<RunnerType>,
    /// Status.
    pub status: Option<StatusFilter>,
    /// `Some(true)`: only active; `Some(false)`: only paused.
    pub active: Option<bool>,
    /// Runners carrying all these tags.
    pub tags: Vec<String>,
}

impl RunnerFilter {
    /// No filter beyond `scope`.
    pub fn new(scope: RunnerScope) -> Self {
        Self {
            scope,
            types: Vec::new(),
            status: None,
            active: None,
            tags: Vec::new(),
        }
    }
}

/// One machine using a runner's token.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerManager {
    /// Id.
    pub id: i64,
    /// Runner.
    pub runner_id: i64,
    /// The machine's id.
    pub system_id: String,
    /// Program version.
    pub version: Option<String>,
    /// Program revision.
    pub revision: Option<String>,
    /// Operating system.
    pub platform: Option<String>,
    /// CPU architecture.
    pub architecture: Option<String>,
    /// Executor.
    pub executor: Option<String>,
    /// Client address of the last contact.
    pub ip_address: Option<String>,
    /// Last contact.
    pub contacted_at: Option<DateTime<Utc>>,
    /// First contact.
    pub created_at: DateTime<Utc>,
}

impl RunnerManager {
    /// Status by the runner rules (a manager cannot be paused).
    pub fn status(&self, now: DateTime<Utc>) -> RunnerStatus {
        if is_stale(self.created_at, self.contacted_at, now) {
            RunnerStatus::Stale
        } else if self.contacted_at.is_none() {
            RunnerStatus::NeverContacted
        } else if is_online(self.contacted_at, now) {
            RunnerStatus::Online
        } else {
            RunnerStatus::Offline
        }
    }
}

/// What a runner request tells about the machine that sent it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManagerHeartbeat {
    /// The machine's id (`<legacy>` when the runner sent none).
    pub system_id: String,
    /// Program version.
    pub version: Option<String>,
    /// Program revision.
    pub revision: Option<String>,
    /// Operating system.
    pub platform: Option<String>,
    /// CPU architecture.
    pub architecture: Option<String>,
    /// Executor.
    pub executor: Option<String>,
    /// Client address.
    pub ip_address: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(
        now: DateTime<Utc>,
        created_ago: Duration,
        contacted_ago: Option<Duration>,
        active: bool,
    ) -> Runner {
        Runner {
            id: 1,
            runner_type: RunnerType::InstanceType,
            registration_type: RegistrationType::AuthenticatedUser,
            token_short: "t1_abc".into(),
            token_expires_at: None,
            description: None,
            maintenance_note: None,
            active,
            locked: false,
            run_untagged: true,
            access_level: AccessLevel::NotProtected,
            maximum_timeout: None,
            group_id: None,
            creator_id: None,
            name: None,
            contacted_at: contacted_ago.map(|d| now - d),
            queue_version: 1,
            created_at: now - created_ago,
            tags: vec![],
            project_ids: vec![],
        }
    }

    #[test]
    fn status_follows_gitlab_rules() {
        let now = Utc::now();
        let h = Duration::hours;
        let d = Duration::days;
        assert_eq!(
            runner(now, h(1), None, true).status(now),
            RunnerStatus::NeverContacted
        );
        assert_eq!(
            runner(now, h(1), Some(h(1)), true).status(now),
            RunnerStatus::Online
        );
        assert_eq!(
            runner(now, h(5), Some(h(3)), true).status(now),
            RunnerStatus::Offline
        );
        assert_eq!(
            runner(now, h(5), Some(h(1)), false).status(now),
            RunnerStatus::Paused
        );
        assert_eq!(
            runner(now, d(8), None, true).status(now),
            RunnerStatus::Stale
        );
        assert_eq!(
            runner(now, d(8), Some(d(7)), false).status(now),
            RunnerStatus::Stale
        );
        assert_eq!(
            runner(now, d(8), Some(d(1)), true).status(now),
            RunnerStatus::Offline
        );
    }
}
