//! Typed settings of the coordinator, built from the command line and the
//! environment (`FORERUNNER_ROOT_TOKEN`, `FORERUNNER_REGISTRATION_TOKEN`).

use std::path::PathBuf;
use std::time::Duration;

use crate::domain::Secret;

/// Default listen address of `forerunner serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./forerunner-data";
/// Environment variable with root's personal access token.
pub const ROOT_TOKEN_ENV: &str = "FORERUNNER_ROOT_TOKEN";
/// Environment variable with the instance registration token.
pub const REGISTRATION_TOKEN_ENV: &str = "FORERUNNER_REGISTRATION_TOKEN";

/// Everything [`crate::startup::Application::build`] needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to bind (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// Directory of the database and the generated token files.
    pub data_dir: PathBuf,
    /// Root's personal access token (`glpat-…`); generated when `None` on
    /// first start.
    pub root_token: Option<Secret>,
    /// Instance registration token; generated when `None` and none is set.
    pub registration_token: Option<Secret>,
    /// Job queue, trace and artifact limits.
    pub ci: CiSettings,
}

/// Settings of the job queue and the runner job API.
#[derive(Debug, Clone, PartialEq)]
pub struct CiSettings {
    /// How long `POST /jobs/request` holds a request that finds no job
    /// (GitLab Workhorse's long polling; default 50 s).
    pub long_poll_timeout: Duration,
    /// `X-GitLab-Trace-Update-Interval` sent to runners, in seconds.
    pub trace_update_interval: u64,
    /// Largest accepted artifacts upload, in bytes (default 100 MiB).
    pub max_artifacts_size: u64,
    /// A running job without a trace patch or update for this long failed
    /// with `runner_system_failure` (default 1 hour).
    pub runner_vanish_timeout: Duration,
    /// How often running jobs are checked for timeouts and vanished runners.
    pub sweep_interval: Duration,
    /// How long past its timeout a running job is left to its runner before
    /// the sweep fails it with `job_execution_timeout` (default 15 minutes,
    /// GitLab's `Ci::TimedOutBuilds::DropRunningService::MINUTE_BUFFER`).
    /// The runner enforces the timeout itself, runs `after_script` and
    /// reports the failure with its trace; the sweep is for a runner that
    /// cannot.
    pub timeout_grace: Duration,
}

impl Default for CiSettings {
    fn default() -> Self {
        CiSettings {
            long_poll_timeout: Duration::from_secs(50),
            trace_update_interval: 30,
            max_artifacts_size: 100 * 1024 * 1024,
            runner_vanish_timeout: Duration::from_secs(3600),
            sweep_interval: Duration::from_secs(5),
            timeout_grace: Duration::from_secs(15 * 60),
        }
    }
}

impl Settings {
    /// Settings for `data_dir` with the tokens taken from the environment.
    pub fn from_env(listen: String, data_dir: PathBuf) -> Settings {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(Secret::new)
        };
        Settings {
            listen,
            data_dir,
            root_token: var(ROOT_TOKEN_ENV),
            registration_token: var(REGISTRATION_TOKEN_ENV),
            ci: CiSettings::default(),
        }
    }
}
