//! Groups and projects: the namespaces runners are scoped to.
//!
//! Permissions are deliberately simple: an administrator may do anything;
//! otherwise the creator of a group owns it and its projects, and the
//! creator of a project owns that project. There are no memberships yet.

use chrono::{DateTime, Utc};

/// A group (possibly a subgroup).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Last path segment.
    pub path: String,
    /// `parent/child`.
    pub full_path: String,
    /// `Parent / Child`.
    pub full_name: String,
    /// Parent group.
    pub parent_id: Option<i64>,
    /// Description.
    pub description: Option<String>,
    /// `private`, `internal` or `public`.
    pub visibility: String,
    /// Creator (owner).
    pub creator_id: Option<i64>,
    /// Short form of the group's registration token, if one is set.
    pub runners_token_short: Option<String>,
    /// Whether the group's registration token may register runners.
    pub allow_runner_registration_token: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl Group {
    /// Whether `user` owns the group (creator or administrator).
    pub fn is_owned_by(&self, user: &crate::domain::User) -> bool {
        user.is_admin || self.creator_id == Some(user.id)
    }
}

/// What creating a group needs (paths are computed by the store from the parent).
#[derive(Debug, Clone, PartialEq)]
pub struct NewGroup {
    /// Display name.
    pub name: String,
    /// Last path segment.
    pub path: String,
    /// Parent group.
    pub parent_id: Option<i64>,
    /// Description.
    pub description: Option<String>,
    /// Visibility.
    pub visibility: String,
    /// Creator.
    pub creator_id: Option<i64>,
    /// Digest and short form of the group's registration token.
    pub runners_token: Option<(String, String)>,
}

/// A project.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// Id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Last path segment.
    pub path: String,
    /// `group/project` or `username/project`.
    pub full_path: String,
    /// Group, or `None` for the creator's personal namespace.
    pub group_id: Option<i64>,
    /// Creator.
    pub creator_id: Option<i64>,
    /// Description.
    pub description: Option<String>,
    /// Visibility.
    pub visibility: String,
    /// Git repository source: a local path or a URL.
    pub import_url: Option<String>,
    /// Default branch.
    pub default_branch: String,
    /// Short form of the project's registration token, if one is set.
    pub runners_token_short: Option<String>,
    /// Whether instance runners may run its jobs.
    pub shared_runners_enabled: bool,
    /// Whether group runners may run its jobs.
    pub group_runners_enabled: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// What creating a project needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProject {
    /// Display name.
    pub name: String,
    /// Last path segment.
    pub path: String,
    /// Full path (`group/path` or `username/path`).
    pub full_path: String,
    /// Group.
    pub group_id: Option<i64>,
    /// Creator.
    pub creator_id: Option<i64>,
    /// Description.
    pub description: Option<String>,
    /// Visibility.
    pub visibility: String,
    /// Repository source.
    pub import_url: Option<String>,
    /// Default branch.
    pub default_branch: String,
    /// Digest and short form of the project's registration token.
    pub runners_token: Option<(String, String)>,
}

/// A partial update of a project; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectUpdate {
    /// Description.
    pub description: Option<String>,
    /// Repository source.
    pub import_url: Option<String>,
    /// Default branch.
    pub default_branch: Option<String>,
    /// Visibility.
    pub visibility: Option<String>,
    /// Whether instance runners may run its jobs.
    pub shared_runners_enabled: Option<bool>,
    /// Whether group runners may run its jobs.
    pub group_runners_enabled: Option<bool>,
}

/// Turns a display name into a path segment the way GitLab suggests one:
/// lowercase, runs of other characters replaced by `-`.
pub fn path_from_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_names() {
        assert_eq!(path_from_name("My Group"), "my-group");
        assert_eq!(path_from_name("  a  b__c "), "a-b__c");
        assert_eq!(path_from_name("x.y"), "x.y");
    }
}
