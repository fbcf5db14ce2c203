//! Job statuses and GitLab's composite status of a stage or pipeline.
//!
//! [`composite`] follows `Gitlab::Ci::Status::Composite`: the order of its
//! checks matters and is kept as GitLab has it. A failed or canceled job that
//! is allowed to fail counts as "success with warnings"; a manual job that is
//! allowed to fail is "ignored" (it does not block the pipeline).

/// A job's status, GitLab's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Created, waiting for earlier stages or needs.
    Created,
    /// Waiting for a resource group.
    WaitingForResource,
    /// Preparing prerequisites.
    Preparing,
    /// Waiting for a runner.
    Pending,
    /// On a runner.
    Running,
    /// Passed.
    Success,
    /// Failed.
    Failed,
    /// Asked to stop; the runner is winding down (after_script runs).
    Canceling,
    /// Stopped.
    Canceled,
    /// Not run (its conditions were not met).
    Skipped,
    /// Waiting for someone to play it.
    Manual,
    /// Delayed (`when: delayed`).
    Scheduled,
}

impl JobStatus {
    /// GitLab's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::WaitingForResource => "waiting_for_resource",
            Self::Preparing => "preparing",
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Canceling => "canceling",
            Self::Canceled => "canceled",
            Self::Skipped => "skipped",
            Self::Manual => "manual",
            Self::Scheduled => "scheduled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Created,
            Self::WaitingForResource,
            Self::Preparing,
            Self::Pending,
            Self::Running,
            Self::Success,
            Self::Failed,
            Self::Canceling,
            Self::Canceled,
            Self::Skipped,
            Self::Manual,
            Self::Scheduled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// `success`, `failed`, `canceled` or `skipped`: nothing more will happen.
    pub fn is_completed(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failed | Self::Canceled | Self::Skipped
        )
    }

    /// `running` or `canceling`: a runner holds the job.
    pub fn is_executing(self) -> bool {
        matches!(self, Self::Running | Self::Canceling)
    }
}

/// One element of the composite: a status, or a class GitLab derives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Class {
    Status(u8),
    SuccessWithWarnings,
    Ignored,
}

fn class(status: JobStatus, allow_failure: bool) -> Class {
    match status {
        JobStatus::Failed | JobStatus::Canceled if allow_failure => Class::SuccessWithWarnings,
        JobStatus::Manual if allow_failure => Class::Ignored,
        other => Class::Status(other as u8),
    }
}

/// The composite status of jobs given as `(status, allow_failure)`; `None`
/// for no jobs. The second value is whether there are warnings (a failure
/// that was allowed).
pub fn composite(jobs: impl IntoIterator<Item = (JobStatus, bool)>) -> Option<(JobStatus, bool)> {
    use std::collections::BTreeSet;
    let set: BTreeSet<Class> = jobs.into_iter().map(|(s, a)| class(s, a)).collect();
    if set.is_empty() {
        return None;
    }
    let st = |s: JobStatus| Class::Status(s as u8);
    let warn = Class::SuccessWithWarnings;
    let ign = Class::Ignored;
    let only_of = |allowed: &[Class]| {
        let matching = allowed.iter().filter(|c| set.contains(c)).count();
        matching > 0 && matching == set.len()
    };
    let any_of = |wanted: &[JobStatus]| wanted.iter().any(|s| set.contains(&st(*s)));
    use JobStatus::*;
    let status = if only_of(&[st(Skipped), ign]) {
        Skipped
    } else if only_of(&[st(Success), st(Skipped), warn, ign]) {
        Success
    } else if only_of(&[st(Created), warn, ign]) {
        Created
    } else if only_of(&[st(Preparing), warn, ign]) {
        Preparing
    } else if only_of(&[st(Canceled), st(Success), st(Skipped), warn, ign]) {
        Canceled
    } else if only_of(&[st(Pending), st(Created), st(Skipped), warn, ign]) {
        Pending
    } else if any_of(&[Canceling]) {
        Canceling
    } else if any_of(&[Running, Pending]) {
        Running
    } else if any_of(&[WaitingForResource]) {
        WaitingForResource
    } else if any_of(&[Manual]) {
        Manual
    } else if any_of(&[Scheduled]) {
        Scheduled
    } else if any_of(&[Preparing]) {
        Preparing
    } else if any_of(&[Created]) {
        Running
    } else {
        Failed
    };
    Some((status, set.contains(&warn)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus::*;

    fn c(jobs: &[(JobStatus, bool)]) -> JobStatus {
        composite(jobs.iter().copied()).unwrap().0
    }

    #[test]
    fn gitlab_composite_table() {
        assert_eq!(composite([]), None);
        assert_eq!(c(&[(Success, false), (Skipped, false)]), Success);
        assert_eq!(c(&[(Skipped, false)]), Skipped);
        assert_eq!(c(&[(Success, false), (Failed, false)]), Failed);
        assert_eq!(
            composite([(Success, false), (Failed, true)]),
            Some((Success, true))
        );
        assert_eq!(c(&[(Failed, true)]), Success);
        assert_eq!(c(&[(Manual, true), (Skipped, false)]), Skipped);
        assert_eq!(c(&[(Manual, true), (Success, false)]), Success);
        assert_eq!(c(&[(Manual, false), (Success, false)]), Manual);
        assert_eq!(c(&[(Success, false), (Canceled, false)]), Canceled);
        assert_eq!(c(&[(Pending, false), (Created, false)]), Pending);
        assert_eq!(c(&[(Running, false), (Failed, false)]), Running);
        assert_eq!(c(&[(Success, false), (Created, false)]), Running);
        assert_eq!(c(&[(Created, false)]), Created);
        assert_eq!(c(&[(Scheduled, false), (Success, false)]), Scheduled);
        assert_eq!(c(&[(Canceling, false), (Running, false)]), Canceling);
        assert_eq!(c(&[(Failed, false), (Canceled, false)]), Failed);
    }

    #[test]
    fn names_round_trip() {
        for s in [
            Created,
            WaitingForResource,
            Preparing,
            Pending,
            Running,
            Success,
            Failed,
            Canceling,
            Canceled,
            Skipped,
            Manual,
            Scheduled,
        ] {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
    }
}
