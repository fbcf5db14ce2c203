//! The Forerunner runner: a drop-in replacement for `gitlab-runner`.
//!
//! Modules:
//! - [`cli`]: the subcommands (`register`, `list`, `verify`, `unregister`,
//!   `reset-token`, `doctor`, `run`, `run-single`), one module each.
//! - [`run`]: the job loop of `run` and `run-single`: pollers per entry,
//!   `concurrent`/`limit`/`request_concurrency`, long polling, reloads,
//!   token rotation, signals, metrics.
//! - [`job_api`]: the job endpoints over HTTP (update, trace, artifacts).
//! - [`config`]: config.toml, read as a typed view and edited as a document
//!   that keeps comments and unknown keys; atomic saves.
//! - [`client`]: the HTTP client for the runner API, with the official retries.
//! - [`executors`]: where jobs run: the `Executor` trait and its lifecycle, the
//!   shell executor, the Docker Engine layer of the docker executor.
//! - [`job`]: running one job — stages in the official order, cache and
//!   artifacts, timeouts, graceful cancel and abort, the final report.
//! - [`job_log`]: the job's log: masking, the trace buffer, the incremental
//!   trace sender.
//! - [`shells`]: pure bash script generation (golden-tested).
//! - [`metrics`]: Prometheus metrics under the official names and `/metrics`.
//! - [`health`]: which answers park a runner entry, and for how long.
//! - [`rotation`]: when a token is rotated (75 % of its lifetime).
//! - [`system_id`]: `.runner_system_id`, the runner manager's identity.
//! - [`log`]: the official "runner" log line format.
//!
//! This crate talks to a coordinator only through HTTP and the wire types of
//! `forerunner-protocol`; it never depends on the coordinator or pipeline crates.
//!
//! For the job loop (`run`): read [`config::Config::load`] (global
//! `concurrent()`, `check_interval()`, `shutdown_timeout()`; per entry
//! `limit`, `request_concurrency()`, `executor`, `shell`, `builds_dir`,
//! `environment_pairs()`, `output_limit_kib()`, `docker`, `custom`, `cache`,
//! `feature_flag()`); ask for jobs with [`client::Client::send`] /
//! [`client::Client::send_request`] (official retries built in) and feed
//! [`client::ApiError::health`] or [`health::RequestHealth::from_status`]
//! into [`health::Health`]; rotate tokens when
//! [`rotation::is_rotation_due`] with [`client::Client::reset_token`], then
//! [`config::ConfigDocument::replace_token`] and `save()`; identify the
//! machine with [`system_id::load_or_create`]; log with
//! [`log::RunnerFormat`] to print what `gitlab-runner` prints.

pub mod cli;
pub mod client;
pub mod config;
pub mod executors;
pub mod health;
pub mod job;
pub mod job_api;
pub mod job_log;
pub mod log;
pub mod metrics;
pub mod rotation;
pub mod run;
pub mod shells;
pub mod system_id;

/// The runner's version, reported to GitLab and in `Runtime platform`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The source revision reported to GitLab (the official runner sends its git
/// commit; Forerunner builds do not embed one).
pub const REVISION: &str = "unknown";
