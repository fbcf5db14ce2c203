//! What the job loop tells people and Prometheus: [`RunLog`] prints the
//! official runner's log lines (and counts every warning and error in
//! `gitlab_runner_errors_total`, as the official log hook does), and the
//! metric names and helpers of the loop live here.
//!
//! Metrics served under the official names: `gitlab_runner_version_info`,
//! `gitlab_runner_concurrent`, `gitlab_runner_limit`, `gitlab_runner_jobs`
//! (running jobs; Forerunner does not label them by stage),
//! `gitlab_runner_jobs_total`, `gitlab_runner_job_duration_seconds`,
//! `gitlab_runner_failed_jobs_total`, `gitlab_runner_errors_total`,
//! `gitlab_runner_worker_health_check_failures_total` and, through
//! [`crate::job_api::ApiObserver`], `gitlab_runner_api_request_statuses_total`.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;

use crate::log::{format_line, Level};
use crate::metrics::{Metrics, JOB_DURATION_BUCKETS};

/// `gitlab_runner_errors_total`.
pub(crate) const ERRORS_TOTAL: &str = "gitlab_runner_errors_total";
/// `gitlab_runner_version_info`.
pub(crate) const VERSION_INFO: &str = "gitlab_runner_version_info";
/// `gitlab_runner_concurrent`.
pub(crate) const CONCURRENT: &str = "gitlab_runner_concurrent";
/// `gitlab_runner_limit`.
pub(crate) const LIMIT: &str = "gitlab_runner_limit";
/// `gitlab_runner_jobs`.
pub(crate) const JOBS: &str = "gitlab_runner_jobs";
/// `gitlab_runner_jobs_total`.
pub(crate) const JOBS_TOTAL: &str = "gitlab_runner_jobs_total";
/// `gitlab_runner_job_duration_seconds`.
pub(crate) const JOB_DURATION: &str = "gitlab_runner_job_duration_seconds";
/// `gitlab_runner_failed_jobs_total`.
pub(crate) const FAILED_JOBS: &str = "gitlab_runner_failed_jobs_total";
/// `gitlab_runner_worker_health_check_failures_total`.
pub(crate) const HEALTH_FAILURES: &str = "gitlab_runner_worker_health_check_failures_total";

/// The loop's logger: runner-format lines on stderr (or appended to a
/// file), warnings and errors counted.
#[derive(Debug, Clone)]
pub(crate) struct RunLog {
    metrics: Metrics,
    debug: bool,
    color: bool,
    /// `None`: stderr.
    file: Option<Arc<Mutex<std::fs::File>>>,
}

impl RunLog {
    /// A logger counting into `metrics`; `debug` prints debug lines too.
    pub(crate) fn new(metrics: Metrics, debug: bool) -> Self {
        for level in ["panic", "fatal", "error", "warning"] {
            metrics.inc(ERRORS_TOTAL, ERRORS_HELP, &[("level", level)], 0.0);
        }
        Self {
            metrics,
            debug,
            color: std::io::stderr().is_terminal(),
            file: None,
        }
    }

    /// Like [`RunLog::new`], appending uncoloured lines to `path`.
    pub(crate) fn to_file(metrics: Metrics, debug: bool, path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("failed to open the log file {}", path.display()))?;
        Ok(Self {
            color: false,
            file: Some(Arc::new(Mutex::new(file))),
            ..Self::new(metrics, debug)
        })
    }

    fn write(&self, text: &str) {
        match &self.file {
            Some(file) => {
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                let _ = f.write_all(text.as_bytes());
            }
            None => {
                let _ = std::io::stderr().lock().write_all(text.as_bytes());
            }
        }
    }

    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        self.write(&format_line(level, message, fields, self.color));
    }

    fn count(&self, level: &str, n: f64) {
        self.metrics
            .inc(ERRORS_TOTAL, ERRORS_HELP, &[("level", level)], n);
    }

    pub(crate) fn debug(&self, message: &str, fields: &[(&str, &str)]) {
        if self.debug {
            self.log(Level::Debug, message, fields);
        }
    }

    pub(crate) fn info(&self, message: &str, fields: &[(&str, &str)]) {
        self.log(Level::Info, message, fields);
    }

    pub(crate) fn warn(&self, message: &str, fields: &[(&str, &str)]) {
        self.count("warning", 1.0);
        self.log(Level::Warn, message, fields);
    }

    pub(crate) fn error(&self, message: &str, fields: &[(&str, &str)]) {
        self.count("error", 1.0);
        self.log(Level::Error, message, fields);
    }

    /// Prints the two lines of a parked entry (the official `ERROR:` line
    /// and Forerunner's line with the fix).
    pub(crate) fn parked(&self, parked: &crate::health::Parked) {
        self.count("error", 2.0);
        self.write(&parked.lines(self.color));
    }
}

const ERRORS_HELP: &str = "The number of catched errors.";

/// Labels of one runner entry.
#[derive(Debug, Clone)]
pub(crate) struct EntryLabels {
    pub(crate) runner: String,
    pub(crate) runner_name: String,
    pub(crate) system_id: String,
}

impl EntryLabels {
    fn pairs(&self) -> [(&str, &str); 3] {
        [
            ("runner", &self.runner),
            ("runner_name", &self.runner_name),
            ("system_id", &self.system_id),
        ]
    }
}

/// Sets the metrics that describe the process and the configuration.
pub(crate) fn describe(metrics: &Metrics, concurrent: i64, entries: &[(EntryLabels, i64)]) {
    metrics.set(
        VERSION_INFO,
        "A metric with a constant '1' value labeled by different build stats fields.",
        &[
            ("architecture", crate::log::go_arch()),
            ("branch", ""),
            ("built_at", ""),
            ("go_version", ""),
            ("name", "forerunner"),
            ("os", std::env::consts::OS),
            ("revision", crate::REVISION),
            ("version", crate::VERSION),
        ],
        1.0,
    );
    metrics.set(
        CONCURRENT,
        "The current value of concurrent setting",
        &[],
        concurrent as f64,
    );
    for (labels, limit) in entries {
        metrics.set(
            LIMIT,
            "The current value of limit setting",
            &labels.pairs(),
            *limit as f64,
        );
        metrics.inc(JOBS_TOTAL, JOBS_TOTAL_HELP, &labels.pairs(), 0.0);
        metrics.inc(HEALTH_FAILURES, HEALTH_HELP, &labels.pairs(), 0.0);
        let mut pairs = labels.pairs().to_vec();
        pairs.extend([("executor_stage", ""), ("stage", ""), ("state", "running")]);
        metrics.add(JOBS, JOBS_HELP, &pairs, 0.0);
    }
}

const JOBS_TOTAL_HELP: &str = "Total number of handled jobs";
const JOBS_HELP: &str = "The current number of running builds.";
const HEALTH_HELP: &str = "Total number of runner health check failures";

/// A job started: running gauge up, total up.
pub(crate) fn job_started(metrics: &Metrics, labels: &EntryLabels) {
    metrics.inc(JOBS_TOTAL, JOBS_TOTAL_HELP, &labels.pairs(), 1.0);
    running(metrics, labels, 1.0);
}

fn running(metrics: &Metrics, labels: &EntryLabels, by: f64) {
    let mut pairs = labels.pairs().to_vec();
    pairs.extend([("executor_stage", ""), ("stage", ""), ("state", "running")]);
    metrics.add(JOBS, JOBS_HELP, &pairs, by);
}

/// A job ended after `seconds`, failed for `failure` when it did.
pub(crate) fn job_finished(
    metrics: &Metrics,
    labels: &EntryLabels,
    seconds: f64,
    failure: Option<&str>,
) {
    running(metrics, labels, -1.0);
    metrics.observe(
        JOB_DURATION,
        "Histogram of job durations",
        JOB_DURATION_BUCKETS,
        &labels.pairs(),
        seconds,
    );
    if let Some(reason) = failure {
        metrics.inc(
            FAILED_JOBS,
            "Total number of failed jobs",
            &[
                ("failure_reason", reason),
                ("runner", &labels.runner),
                ("runner_name", &labels.runner_name),
            ],
            1.0,
        );
    }
}

/// One more health check failure of an entry.
pub(crate) fn health_failure(metrics: &Metrics, labels: &EntryLabels) {
    metrics.inc(HEALTH_FAILURES, HEALTH_HELP, &labels.pairs(), 1.0);
}
