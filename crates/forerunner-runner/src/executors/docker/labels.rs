//! The labels every Docker object created by Forerunner carries, and the filters built from them.
//!
//! Labels are the only memory the engine layer has: [`crate::executors::docker::Engine::cleanup_job`]
//! finds a job's containers, networks and volumes by them, and
//! [`crate::executors::docker::Engine::cleanup_leftovers`] finds those of a runner that crashed.
//! Only the runner's *short* token is ever written into a label; the full token never leaves the
//! runner.

use std::collections::HashMap;

/// `com.forerunner.managed=true` on everything Forerunner creates.
pub const LABEL_MANAGED: &str = "com.forerunner.managed";
/// The short token of the runner that created the object.
pub const LABEL_RUNNER_TOKEN: &str = "com.forerunner.runner.token";
/// The id of the job the object belongs to.
pub const LABEL_JOB_ID: &str = "com.forerunner.job.id";
/// What the object is for: `build`, `service`, `network` or `volume`.
pub const LABEL_ROLE: &str = "com.forerunner.role";

/// Identifies the objects of one job of one runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLabels {
    runner_short_token: String,
    job_id: u64,
}

impl JobLabels {
    /// Labels for job `job_id` of the runner whose short token is `runner_short_token`
    /// (`CI_RUNNER_SHORT_TOKEN`, never the full token).
    pub fn new(runner_short_token: impl Into<String>, job_id: u64) -> Self {
        Self {
            runner_short_token: runner_short_token.into(),
            job_id,
        }
    }

    /// The runner's short token.
    pub fn runner_short_token(&self) -> &str {
        &self.runner_short_token
    }

    /// The job id.
    pub fn job_id(&self) -> u64 {
        self.job_id
    }

    /// The labels to put on an object with the given role.
    pub(crate) fn for_role(&self, role: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (
                LABEL_RUNNER_TOKEN.to_owned(),
                self.runner_short_token.clone(),
            ),
            (LABEL_JOB_ID.to_owned(), self.job_id.to_string()),
            (LABEL_ROLE.to_owned(), role.to_owned()),
        ])
    }

    /// An Engine API `filters` value matching every object of this job.
    pub(crate) fn filters(&self) -> HashMap<String, Vec<String>> {
        let mut f = runner_filters(&self.runner_short_token);
        f.get_mut("label")
            .expect("runner_filters has a label entry")
            .push(format!("{LABEL_JOB_ID}={}", self.job_id));
        f
    }

    /// A Docker object name for this job: `forerunner-<token>-job-<id>-<what>-<random>`. The random
    /// suffix keeps a retried job from colliding with the leftovers of an earlier attempt.
    pub(crate) fn object_name(&self, what: &str) -> String {
        let suffix: u32 = rand::random();
        format!(
            "forerunner-{}-job-{}-{}-{suffix:08x}",
            sanitize(&self.runner_short_token),
            self.job_id,
            sanitize(what)
        )
    }
}

/// An Engine API `filters` value matching every object of the runner with this short token.
pub(crate) fn runner_filters(runner_short_token: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_owned(),
        vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_RUNNER_TOKEN}={runner_short_token}"),
        ],
    )])
}

/// Keeps the characters Docker allows in names (`[a-zA-Z0-9_.-]`), replacing the others by `-`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_carry_the_short_token_and_job_id() {
        let l = JobLabels::new("abc123def", 42);
        let labels = l.for_role("build");
        assert_eq!(labels[LABEL_MANAGED], "true");
        assert_eq!(labels[LABEL_RUNNER_TOKEN], "abc123def");
        assert_eq!(labels[LABEL_JOB_ID], "42");
        assert_eq!(labels[LABEL_ROLE], "build");
    }

    #[test]
    fn job_filters_narrow_runner_filters() {
        let l = JobLabels::new("tok", 7);
        let f = l.filters();
        assert_eq!(
            f["label"],
            vec![
                "com.forerunner.managed=true".to_owned(),
                "com.forerunner.runner.token=tok".to_owned(),
                "com.forerunner.job.id=7".to_owned(),
            ]
        );
    }

    #[test]
    fn object_names_are_valid_docker_names() {
        let name = JobLabels::new("to/k", 7).object_name("svc-postgres:15");
        assert!(
            name.starts_with("forerunner-to-k-job-7-svc-postgres-15-"),
            "{name}"
        );
        assert!(name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
    }
}
