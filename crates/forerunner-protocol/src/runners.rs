//! Runner registration, verification, unregistration and token reset.
//!
//! Request types decode leniently (see [`crate::de`]) because GitLab accepts
//! parameters from the query string, form bodies and JSON alike; they encode
//! the way the official runner sends them (`tag_list` as a CSV string).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::de;

/// The scope a runner serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerType {
    /// Shared runner of the whole instance (token partition `t1_`).
    InstanceType,
    /// Runner of a group and its subgroups' projects (`t2_`).
    GroupType,
    /// Runner of the projects it is assigned to (`t3_`).
    ProjectType,
}

impl RunnerType {
    /// The wire name (`instance_type`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InstanceType => "instance_type",
            Self::GroupType => "group_type",
            Self::ProjectType => "project_type",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "instance_type" => Some(Self::InstanceType),
            "group_type" => Some(Self::GroupType),
            "project_type" => Some(Self::ProjectType),
            _ => None,
        }
    }

    /// The token partition prefix GitLab puts after `glrt-` (`t1_`, `t2_`, `t3_`).
    pub fn token_partition(self) -> &'static str {
        match self {
            Self::InstanceType => "t1_",
            Self::GroupType => "t2_",
            Self::ProjectType => "t3_",
        }
    }
}

/// Which refs a runner may build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLevel {
    /// Any ref.
    NotProtected,
    /// Protected branches and tags only.
    RefProtected,
}

impl AccessLevel {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotProtected => "not_protected",
            Self::RefProtected => "ref_protected",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "not_protected" => Some(Self::NotProtected),
            "ref_protected" => Some(Self::RefProtected),
            _ => None,
        }
    }
}

/// What a runner says about itself (`info` in registration, verify and job
/// requests).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunnerInfo {
    /// Program name, e.g. `gitlab-runner` or `forerunner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Program version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Source revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Operating system, e.g. `linux`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// CPU architecture, e.g. `amd64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Executor name (`shell`, `docker`, `custom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    /// Shell name (`bash`, `sh`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Features the runner implements; only `true` entries are meaningful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<BTreeMap<String, bool>>,
    /// Extra configuration (`{"gpus": ""}`), kept opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Serializes an optional tag list the way the official runner does: one
/// comma-separated string.
fn tags_as_csv<S: serde::Serializer>(tags: &Option<Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
    match tags {
        Some(t) => s.serialize_str(&t.join(",")),
        None => s.serialize_none(),
    }
}

/// Body of `POST /api/v4/runners` (legacy registration with a registration
/// token) and the runner attributes of `POST /api/v4/user/runners`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunnerAttributes {
    /// Runner description (`--name` on the official runner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form note for administrators (≤ 1024 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_note: Option<String>,
    /// Deprecated alias of `maintenance_note`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer_note: Option<String>,
    /// Tags; a CSV string or an array on input.
    #[serde(
        default,
        deserialize_with = "de::opt_tag_list",
        serialize_with = "tags_as_csv",
        skip_serializing_if = "Option::is_none"
    )]
    pub tag_list: Option<Vec<String>>,
    /// Whether the runner takes jobs without tags.
    #[serde(
        default,
        deserialize_with = "de::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub run_untagged: Option<bool>,
    /// Whether the runner is locked to its current projects.
    #[serde(
        default,
        deserialize_with = "de::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub locked: Option<bool>,
    /// `not_protected` or `ref_protected` (kept as a string so bad values can
    /// be reported with GitLab's error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_level: Option<String>,
    /// Maximum job timeout in seconds (≥ 600).
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub maximum_timeout: Option<i64>,
    /// Whether the runner starts paused.
    #[serde(
        default,
        deserialize_with = "de::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub paused: Option<bool>,
    /// Deprecated inverse of `paused`.
    #[serde(
        default,
        deserialize_with = "de::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub active: Option<bool>,
}

/// Body of `POST /api/v4/runners` (legacy registration).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisterRunnerRequest {
    /// The registration token (required).
    #[serde(default)]
    pub token: String,
    /// Runner attributes.
    #[serde(flatten)]
    pub attributes: RunnerAttributes,
    /// What the runner says about itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<RunnerInfo>,
}

/// `201` body of `POST /api/v4/runners` and `POST /api/v4/user/runners`, and
/// `200` body of `POST /api/v4/runners/verify` (GitLab's
/// `RunnerRegistrationDetails`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerRegistrationDetails {
    /// Runner id (never 0 for a real runner).
    pub id: i64,
    /// Runner authentication token.
    pub token: String,
    /// Expiry of the token; `null` when it does not expire.
    #[serde(default)]
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// Body of `POST /api/v4/user/runners`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateUserRunnerRequest {
    /// `instance_type`, `group_type` or `project_type` (required; kept as a
    /// string so a bad value gets GitLab's 400).
    #[serde(default)]
    pub runner_type: Option<String>,
    /// Group of a `group_type` runner.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_id: Option<i64>,
    /// Project of a `project_type` runner.
    #[serde(
        default,
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id: Option<i64>,
    /// Runner attributes.
    #[serde(flatten)]
    pub attributes: RunnerAttributes,
}

/// Body of `POST /api/v4/runners/verify`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifyRunnerRequest {
    /// Runner authentication token.
    #[serde(default)]
    pub token: String,
    /// Unique id of the machine (`s_…`/`r_…`), identifies the runner manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_id: Option<String>,
    /// What the runner says about itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<RunnerInfo>,
}

/// Body of `DELETE /api/v4/runners` (remove the runner) and
/// `POST /api/v4/runners/reset_authentication_token`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunnerTokenRequest {
    /// Runner authentication token.
    #[serde(default)]
    pub token: String,
}

/// Body of `DELETE /api/v4/runners/managers` (remove one machine).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnregisterManagerRequest {
    /// Runner authentication token.
    #[serde(default)]
    pub token: String,
    /// The machine to remove.
    #[serde(default)]
    pub system_id: String,
}

/// `201` body of the token reset endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResetTokenResponse {
    /// The new runner authentication token.
    pub token: String,
    /// Its expiry, `null` when it does not expire.
    #[serde(default)]
    pub token_expires_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_request_as_official_runner_sends_it() {
        let body = r#"{"description":"d","tag_list":"a,b","run_untagged":true,"locked":true,
            "access_level":"not_protected","maximum_timeout":3600,"paused":false,
            "info":{"name":"gitlab-runner","version":"17.0.0","features":{"refspecs":true}},
            "token":"GR1348941xyz"}"#;
        let req: RegisterRunnerRequest = serde_json::from_str(body).unwrap();
        assert_eq!(req.token, "GR1348941xyz");
        assert_eq!(req.attributes.tag_list.as_deref().unwrap(), ["a", "b"]);
        assert_eq!(req.attributes.maximum_timeout, Some(3600));
        let again = serde_json::to_value(&req).unwrap();
        assert_eq!(again["tag_list"], "a,b");
    }

    #[test]
    fn user_runner_request_as_python_gitlab_sends_it() {
        let body = r#"{"runner_type":"group_type","group_id":4,"tag_list":["tag1","tag2"],
            "description":"sample group runner"}"#;
        let req: CreateUserRunnerRequest = serde_json::from_str(body).unwrap();
        assert_eq!(req.runner_type.as_deref(), Some("group_type"));
        assert_eq!(req.group_id, Some(4));
        assert_eq!(req.attributes.tag_list.unwrap(), ["tag1", "tag2"]);
    }

    #[test]
    fn registration_details_with_null_expiry() {
        let d: RunnerRegistrationDetails =
            serde_json::from_str(r#"{"id":12345,"token":"glrt-x","token_expires_at":null}"#)
                .unwrap();
        assert_eq!(d.id, 12345);
        assert!(d.token_expires_at.is_none());
        let d: RunnerRegistrationDetails = serde_json::from_str(
            r#"{"id":1,"token":"t","token_expires_at":"2021-09-27T21:05:03.203Z"}"#,
        )
        .unwrap();
        assert!(d.token_expires_at.is_some());
    }
}
