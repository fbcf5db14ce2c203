//! Why a job failed: GitLab's `failure_reason` values.

use serde::{Deserialize, Serialize};

/// A job failure reason. Unknown strings decode as [`FailureReason::Other`]
/// so a newer peer never breaks decoding; the coordinator stores those as
/// `unknown_failure`, as GitLab does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureReason {
    /// No better reason known.
    UnknownFailure,
    /// The job's script exited non-zero.
    ScriptFailure,
    /// The coordinator could not be reached or answered wrongly.
    ApiFailure,
    /// The job waited or ran too long (server side).
    StuckOrTimeoutFailure,
    /// The runner or its executor broke.
    RunnerSystemFailure,
    /// A dependency's artifacts are missing.
    MissingDependencyFailure,
    /// The runner lacks a feature the job needs.
    RunnerUnsupported,
    /// The job ran past its timeout.
    JobExecutionTimeout,
    /// The project is archived.
    ArchivedFailure,
    /// The job's log exceeded the server's limit.
    TraceSizeExceeded,
    /// The job's image could not be pulled.
    ImagePullFailure,
    /// The runner's configuration is wrong for this job.
    RunnerConfigurationError,
    /// The runner was stopped while the job ran.
    RunnerInterrupted,
    /// No online runner can take the job.
    NoMatchingRunner,
    /// Any other reason, kept verbatim.
    #[serde(untagged)]
    Other(String),
}

impl FailureReason {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::UnknownFailure => "unknown_failure",
            Self::ScriptFailure => "script_failure",
            Self::ApiFailure => "api_failure",
            Self::StuckOrTimeoutFailure => "stuck_or_timeout_failure",
            Self::RunnerSystemFailure => "runner_system_failure",
            Self::MissingDependencyFailure => "missing_dependency_failure",
            Self::RunnerUnsupported => "runner_unsupported",
            Self::JobExecutionTimeout => "job_execution_timeout",
            Self::ArchivedFailure => "archived_failure",
            Self::TraceSizeExceeded => "trace_size_exceeded",
            Self::ImagePullFailure => "image_pull_failure",
            Self::RunnerConfigurationError => "runner_configuration_error",
            Self::RunnerInterrupted => "runner_interrupted",
            Self::NoMatchingRunner => "no_matching_runner",
            Self::Other(s) => s,
        }
    }

    /// The reasons a coordinator advertises in `features.failure_reasons`.
    pub const ADVERTISED: &'static [&'static str] = &[
        "unknown_failure",
        "script_failure",
        "api_failure",
        "stuck_or_timeout_failure",
        "runner_system_failure",
        "missing_dependency_failure",
        "runner_unsupported",
        "job_execution_timeout",
        "archived_failure",
        "trace_size_exceeded",
        "image_pull_failure",
        "runner_configuration_error",
        "runner_interrupted",
        "no_matching_runner",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown() {
        let r: FailureReason = serde_json::from_str(r#""job_execution_timeout""#).unwrap();
        assert_eq!(r, FailureReason::JobExecutionTimeout);
        let r: FailureReason = serde_json::from_str(r#""job_canceled""#).unwrap();
        assert_eq!(r, FailureReason::Other("job_canceled".into()));
        assert_eq!(r.as_str(), "job_canceled");
        for name in FailureReason::ADVERTISED {
            let r: FailureReason = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(r.as_str(), *name);
            assert!(
                !matches!(r, FailureReason::Other(_)),
                "{name} should be a known reason"
            );
        }
    }
}
