//! Job request, job payload and job state updates.
//!
//! `POST /api/v4/jobs/request` ([`JobRequest`] → `201` [`JobResponse`] or
//! `204`), `PUT /api/v4/jobs/:id` ([`UpdateJobRequest`]). Every field of the
//! payload decodes with a default, as Go's decoder in the official runner
//! tolerates missing fields; unknown fields are ignored.

use serde::{Deserialize, Serialize};

use crate::failure::FailureReason;
use crate::runners::RunnerInfo;

/// Body of `POST /api/v4/jobs/request`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    /// Runner authentication token.
    #[serde(default)]
    pub token: String,
    /// Machine id (`s_…`/`r_…`) of the runner manager asking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_id: Option<String>,
    /// The `X-GitLab-Last-Update` value of the previous answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update: Option<String>,
    /// What the runner says about itself, including its features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<RunnerInfo>,
    /// Interactive session endpoint (unused by Forerunner, kept opaque).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<serde_json::Value>,
}

/// `201` body of `POST /api/v4/jobs/request`: everything a runner needs to run
/// one job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobResponse {
    /// Job id.
    pub id: i64,
    /// Job token (`CI_JOB_TOKEN`), authenticates the job endpoints.
    pub token: String,
    /// Whether a fetch into an existing checkout is allowed.
    #[serde(default)]
    pub allow_git_fetch: bool,
    /// Job and project metadata.
    #[serde(default)]
    pub job_info: JobInfo,
    /// Where and what to check out.
    #[serde(default)]
    pub git_info: GitInfo,
    /// Limits set by the server for this job.
    #[serde(default)]
    pub runner_info: RunnerJobInfo,
    /// All variables of the job, predefined ones included. Later entries win.
    #[serde(default)]
    pub variables: Vec<JobVariable>,
    /// `script` (before_script merged in) and `after_script`.
    #[serde(default)]
    pub steps: Vec<JobStep>,
    /// Container image (docker executor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    /// Service containers (docker executor).
    #[serde(default)]
    pub services: Vec<Image>,
    /// Artifacts to upload after the job.
    #[serde(default)]
    pub artifacts: Vec<ArtifactSpec>,
    /// Caches to restore and save.
    #[serde(default)]
    pub cache: Vec<CacheSpec>,
    /// Registry and other credentials.
    #[serde(default)]
    pub credentials: Vec<Credentials>,
    /// Jobs whose artifacts to download first.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    /// Server features this job may use.
    #[serde(default)]
    pub features: JobFeatures,
}

impl JobResponse {
    /// The value of variable `key`; the last definition wins, as in GitLab.
    pub fn variable(&self, key: &str) -> Option<&str> {
        self.variables
            .iter()
            .rev()
            .find(|v| v.key == key)
            .map(|v| v.value.as_str())
    }
}

/// `job_info` of the payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// Job id.
    #[serde(default)]
    pub id: i64,
    /// Job name.
    #[serde(default)]
    pub name: String,
    /// Stage name.
    #[serde(default)]
    pub stage: String,
    /// Pipeline id.
    #[serde(default)]
    pub pipeline_id: i64,
    /// Project id.
    #[serde(default)]
    pub project_id: i64,
    /// Project name.
    #[serde(default)]
    pub project_name: String,
    /// `namespace/project`.
    #[serde(default)]
    pub project_full_path: String,
    /// Seconds the job waited in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_in_queue_seconds: Option<f64>,
}

/// `git_info` of the payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitInfo {
    /// Clone URL, with `gitlab-ci-token:<job token>@` credentials.
    #[serde(default)]
    pub repo_url: String,
    /// Branch or tag name.
    #[serde(default, rename = "ref")]
    pub ref_name: String,
    /// Commit to check out.
    #[serde(default)]
    pub sha: String,
    /// Previous commit of the ref (all zeros when unknown).
    #[serde(default)]
    pub before_sha: String,
    /// `branch` or `tag`.
    #[serde(default)]
    pub ref_type: String,
    /// Refspecs to fetch.
    #[serde(default)]
    pub refspecs: Vec<String>,
    /// Shallow clone depth (0 = full).
    #[serde(default)]
    pub depth: i64,
    /// Whether the ref is protected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
    /// `sha1` or `sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_object_format: Option<String>,
}

/// `runner_info` of the payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunnerJobInfo {
    /// Job timeout in seconds (the runner uses 7200 when ≤ 0).
    #[serde(default)]
    pub timeout: i64,
    /// Interactive session URL (unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_session_url: Option<String>,
}

/// One job variable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobVariable {
    /// Name.
    pub key: String,
    /// Value (`null` decodes as empty).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub value: String,
    /// Whether the value may be shown (predefined, non-secret).
    #[serde(default)]
    pub public: bool,
    /// Whether the value must be masked in the job log.
    #[serde(default)]
    pub masked: bool,
    /// Whether the value is written to a file whose path becomes the value.
    #[serde(default, skip_serializing_if = "is_false")]
    pub file: bool,
    /// Whether `$VAR` references in the value are left unexpanded.
    #[serde(default, skip_serializing_if = "is_false")]
    pub raw: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Name of a job step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    /// `before_script` + `script`.
    Script,
    /// `after_script`: always runs, with its own timeout.
    AfterScript,
    /// `release:` step.
    Release,
    /// Any other step name.
    #[serde(untagged)]
    Other(String),
}

/// When a step (or artifact, or cache) applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Only when everything before succeeded.
    #[default]
    OnSuccess,
    /// Only when something before failed.
    OnFailure,
    /// Always.
    Always,
}

/// One step of the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStep {
    /// `script`, `after_script`, …
    pub name: StepName,
    /// Lines of shell script.
    #[serde(default)]
    pub script: Vec<String>,
    /// Timeout in seconds.
    #[serde(default)]
    pub timeout: i64,
    /// When the step runs.
    #[serde(default)]
    pub when: When,
    /// Whether a failure of this step fails the job.
    #[serde(default)]
    pub allow_failure: bool,
}

/// A container image or service of the job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Image reference.
    pub name: String,
    /// Network alias(es), space or comma separated (services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Command override.
    #[serde(default)]
    pub command: Vec<String>,
    /// Entrypoint override.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// Pull policies tried in order (`always`, `if-not-present`, `never`).
    #[serde(default)]
    pub pull_policy: Vec<String>,
    /// Service variables.
    #[serde(default)]
    pub variables: Vec<JobVariable>,
}

/// An artifact archive to upload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArtifactSpec {
    /// Archive name (without extension).
    #[serde(default)]
    pub name: String,
    /// Also include files git does not track.
    #[serde(default)]
    pub untracked: bool,
    /// Glob patterns to include.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Glob patterns to exclude.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// When to upload.
    #[serde(default)]
    pub when: When,
    /// `archive`, `junit`, …
    #[serde(default = "default_artifact_type")]
    pub artifact_type: String,
    /// `zip`, `gzip`, `raw`.
    #[serde(default = "default_artifact_format")]
    pub artifact_format: String,
    /// Expiry such as `7d` or `1 week`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_in: Option<String>,
}

fn default_artifact_type() -> String {
    "archive".into()
}

fn default_artifact_format() -> String {
    "zip".into()
}

/// A cache to restore before and save after the job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheSpec {
    /// Cache key (already expanded by the server where GitLab expands it).
    #[serde(default)]
    pub key: String,
    /// Also cache untracked files.
    #[serde(default)]
    pub untracked: bool,
    /// `pull`, `push` or `pull-push`.
    #[serde(default = "default_cache_policy")]
    pub policy: String,
    /// Glob patterns to cache.
    #[serde(default)]
    pub paths: Vec<String>,
    /// When to save.
    #[serde(default)]
    pub when: When,
    /// Keys tried in order when `key` has no archive yet.
    #[serde(default)]
    pub fallback_keys: Vec<String>,
}

fn default_cache_policy() -> String {
    "pull-push".into()
}

/// Credentials for a registry or other service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    /// `registry`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Host.
    #[serde(default)]
    pub url: String,
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Password or token.
    #[serde(default)]
    pub password: String,
}

/// A job whose artifacts this job downloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    /// Job id.
    pub id: i64,
    /// Job name.
    #[serde(default)]
    pub name: String,
    /// Token to download with.
    #[serde(default)]
    pub token: String,
    /// The archive, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts_file: Option<ArtifactsFile>,
}

/// An uploaded artifacts archive.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArtifactsFile {
    /// File name.
    #[serde(default)]
    pub filename: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: i64,
}

/// `features` of the payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobFeatures {
    /// Whether the trace may carry `section_start`/`section_end` markers.
    #[serde(default)]
    pub trace_sections: bool,
    /// Failure reasons the server understands.
    #[serde(default)]
    pub failure_reasons: Vec<String>,
    /// Token prefixes to mask in addition to masked variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_mask_prefixes: Vec<String>,
}

/// A job state as sent in `PUT /api/v4/jobs/:id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Keep-alive before the job runs (two-phase commit).
    Pending,
    /// Running (acknowledge, keep-alive).
    Running,
    /// Finished successfully.
    Success,
    /// Finished with a failure.
    Failed,
}

/// `output` of a job update: what the runner sent as trace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTraceOutput {
    /// `crc32:%08x` of every trace byte.
    #[serde(default)]
    pub checksum: String,
    /// Number of trace bytes.
    #[serde(default)]
    pub bytesize: u64,
}

/// Body of `PUT /api/v4/jobs/:id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateJobRequest {
    /// Job token.
    #[serde(default)]
    pub token: String,
    /// New state.
    pub state: JobState,
    /// Why the job failed (with `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<FailureReason>,
    /// Exit code of the failing script (omitted when 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Deprecated duplicate of `output.checksum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Trace checksum and size, so the server can tell when it has it all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<JobTraceOutput>,
    /// What the runner says about itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<RunnerInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample payload of the official runner's tests, trimmed of fields
    /// Forerunner does not model; unknown fields must be ignored.
    #[test]
    fn decodes_gitlab_payload() {
        let body = r#"{
          "id": 10, "token": "job-token", "allow_git_fetch": false,
          "job_info": {"id":10,"name":"test-job","stage":"test","pipeline_id":1,"project_id":123,
                       "project_name":"p","project_full_path":"g/p","queue_size":0},
          "git_info": {"repo_url":"https://gitlab-ci-token:job-token@gitlab.example.com/g/p.git",
                       "ref":"main","sha":"abc","before_sha":"000","ref_type":"branch",
                       "refspecs":["+refs/heads/main:refs/remotes/origin/main"],"depth":20},
          "runner_info": {"timeout":3600},
          "variables": [{"key":"CI_JOB_TOKEN","value":"job-token","public":false,"masked":true},
                        {"key":"EMPTY","value":null,"public":true,"masked":false}],
          "steps": [{"name":"script","script":["date"],"timeout":3600,"when":"on_success","allow_failure":false},
                    {"name":"after_script","script":["ls"],"timeout":3600,"when":"always","allow_failure":true},
                    {"name":"custom","script":[],"timeout":1,"when":"always","allow_failure":true}],
          "image": {"name":"ruby:3.3","entrypoint":["/bin/sh"],"pull_policy":["if-not-present"],
                    "ports":[{"number":80}]},
          "services": [],
          "artifacts": [{"name":"artifact","untracked":false,"paths":["out/*"],"when":"always",
                         "artifact_type":"archive","artifact_format":"zip","expire_in":"7d"}],
          "cache": [{"key":"k","untracked":false,"policy":"pull-push","paths":["vendor/*"],"when":"on_success"}],
          "dependencies": [{"id":9,"name":"other","token":"t","artifacts_file":{"filename":"a.zip","size":13}}],
          "features": {"trace_sections":true,"failure_reasons":["script_failure"]},
          "secrets": {}, "hooks": []
        }"#;
        let job: JobResponse = serde_json::from_str(body).unwrap();
        assert_eq!(job.id, 10);
        assert_eq!(job.git_info.ref_name, "main");
        assert_eq!(job.variable("CI_JOB_TOKEN"), Some("job-token"));
        assert_eq!(job.variable("EMPTY"), Some(""));
        assert_eq!(job.steps[1].name, StepName::AfterScript);
        assert_eq!(job.steps[2].name, StepName::Other("custom".into()));
        assert_eq!(job.steps[1].when, When::Always);
        assert_eq!(
            job.dependencies[0].artifacts_file.as_ref().unwrap().size,
            13
        );
        let again: JobResponse =
            serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
        assert_eq!(again, job);
    }

    #[test]
    fn update_omits_empty_fields() {
        let up = UpdateJobRequest {
            token: "t".into(),
            state: JobState::Running,
            failure_reason: None,
            exit_code: None,
            checksum: None,
            output: None,
            info: None,
        };
        assert_eq!(
            serde_json::to_string(&up).unwrap(),
            r#"{"token":"t","state":"running"}"#
        );
    }
}
