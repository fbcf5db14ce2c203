//! Endpoint paths and header names of the runner API, relative to the server
//! base URL (for example `https://gitlab.example.com`).

/// Prefix of every REST endpoint.
pub const API_V4: &str = "/api/v4";

/// `POST`: legacy registration with a registration token.
pub const RUNNERS: &str = "/api/v4/runners";
/// `POST`: check a runner authentication token (and upsert its manager).
pub const RUNNERS_VERIFY: &str = "/api/v4/runners/verify";
/// `DELETE`: remove one runner manager (`token` + `system_id`).
pub const RUNNERS_MANAGERS: &str = "/api/v4/runners/managers";
/// `POST`: a runner rotates its own authentication token.
pub const RUNNERS_RESET_TOKEN: &str = "/api/v4/runners/reset_authentication_token";
/// `POST`: create a runner with a personal access token (new workflow).
pub const USER_RUNNERS: &str = "/api/v4/user/runners";
/// `POST`: a runner asks for a job.
pub const JOBS_REQUEST: &str = "/api/v4/jobs/request";

/// Header carrying the runner authentication token (also sent in the body).
pub const RUNNER_TOKEN_HEADER: &str = "RUNNER-TOKEN";
/// Header carrying a CI job token.
pub const JOB_TOKEN_HEADER: &str = "JOB-TOKEN";
/// Header carrying a personal access token.
pub const PRIVATE_TOKEN_HEADER: &str = "PRIVATE-TOKEN";
/// Response header with the queue version a runner echoes as `last_update`.
pub const LAST_UPDATE_HEADER: &str = "X-GitLab-Last-Update";
/// Response header with the job's current status on job endpoints.
pub const JOB_STATUS_HEADER: &str = "Job-Status";
/// Response header with the number of seconds until the next trace patch.
pub const TRACE_UPDATE_INTERVAL_HEADER: &str = "X-GitLab-Trace-Update-Interval";
