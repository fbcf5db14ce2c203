//! Which runner may take which job: GitLab's matching rules, as pure
//! functions the coordinator's queue calls for each candidate.
//!
//! A runner can pick a job when all of these hold:
//! - it is not paused;
//! - its scope covers the job's project: instance runners serve projects
//!   with shared runners enabled; group runners serve projects of their
//!   group or its subgroups with group runners enabled; project runners
//!   serve the projects they are assigned to;
//! - `ref_protected` runners only take jobs of protected refs;
//! - tags: every job tag is a runner tag, and a runner with
//!   `run_untagged = false` only takes jobs that have tags;
//! - the job does not need a feature the runner did not announce.
//!
//! `maximum_timeout` does not exclude a runner: it caps the job's timeout
//! when the job is assigned ([`effective_timeout`]).

use std::collections::BTreeSet;

/// A runner's side of the decision.
#[derive(Debug, Clone, Default)]
pub struct RunnerFacts {
    /// `instance_type`, `group_type`, `project_type`.
    pub scope: Scope,
    /// Runner tags.
    pub tags: BTreeSet<String>,
    /// Takes jobs without tags.
    pub run_untagged: bool,
    /// Paused runners take nothing.
    pub paused: bool,
    /// Only jobs of protected refs.
    pub ref_protected: bool,
    /// Features the runner announced (`info.features`).
    pub features: BTreeSet<String>,
}

/// What a runner serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every project with shared runners enabled.
    #[default]
    Instance,
    /// Projects of this group (id) or its descendants.
    Group(i64),
    /// These projects.
    Projects(BTreeSet<i64>),
}

/// A job's side of the decision.
#[derive(Debug, Clone, Default)]
pub struct JobFacts {
    /// The job's project.
    pub project_id: i64,
    /// The project's group and all its ancestors.
    pub project_groups: BTreeSet<i64>,
    /// Project setting: shared (instance) runners allowed.
    pub shared_runners_enabled: bool,
    /// Project setting: group runners allowed.
    pub group_runners_enabled: bool,
    /// Job tags.
    pub tags: BTreeSet<String>,
    /// The job's ref is protected.
    pub protected: bool,
    /// Features a runner needs for this job (e.g. `upload_multiple_artifacts`).
    pub required_features: BTreeSet<String>,
}

/// Why a runner cannot take a job (for logs and `no_matching_runner`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The runner is paused.
    Paused,
    /// The runner does not serve the job's project.
    Scope,
    /// The runner takes protected refs only.
    Unprotected,
    /// The job has a tag the runner lacks.
    MissingTags(Vec<String>),
    /// The job has no tags and the runner does not run untagged jobs.
    Untagged,
    /// The runner lacks a feature the job needs.
    MissingFeatures(Vec<String>),
}

/// Whether `runner` may take `job`, or the first reason it may not.
pub fn can_pick(runner: &RunnerFacts, job: &JobFacts) -> Result<(), Mismatch> {
    if runner.paused {
        return Err(Mismatch::Paused);
    }
    let in_scope = match &runner.scope {
        Scope::Instance => job.shared_runners_enabled,
        Scope::Group(g) => job.group_runners_enabled && job.project_groups.contains(g),
        Scope::Projects(ps) => ps.contains(&job.project_id),
    };
    if !in_scope {
        return Err(Mismatch::Scope);
    }
    if runner.ref_protected && !job.protected {
        return Err(Mismatch::Unprotected);
    }
    if job.tags.is_empty() && !runner.run_untagged {
        return Err(Mismatch::Untagged);
    }
    let missing: Vec<String> = job.tags.difference(&runner.tags).cloned().collect();
    if !missing.is_empty() {
        return Err(Mismatch::MissingTags(missing));
    }
    let lacking: Vec<String> = job
        .required_features
        .difference(&runner.features)
        .cloned()
        .collect();
    if !lacking.is_empty() {
        return Err(Mismatch::MissingFeatures(lacking));
    }
    Ok(())
}

/// The timeout a job runs with on a runner: the job's (or project's)
/// timeout, capped by the runner's `maximum_timeout` when it has one.
pub fn effective_timeout(job_timeout: i64, runner_maximum: Option<i64>) -> i64 {
    match runner_maximum {
        Some(max) if max > 0 => job_timeout.min(max),
        _ => job_timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn job() -> JobFacts {
        JobFacts {
            project_id: 7,
            project_groups: [2, 1].into(),
            shared_runners_enabled: true,
            group_runners_enabled: true,
            tags: set(&["docker"]),
            ..Default::default()
        }
    }

    fn runner() -> RunnerFacts {
        RunnerFacts {
            tags: set(&["docker", "linux"]),
            run_untagged: true,
            ..Default::default()
        }
    }

    #[test]
    fn tags_are_a_subset() {
        assert_eq!(can_pick(&runner(), &job()), Ok(()));
        let mut j = job();
        j.tags = set(&["docker", "gpu"]);
        assert_eq!(
            can_pick(&runner(), &j),
            Err(Mismatch::MissingTags(vec!["gpu".into()]))
        );
    }

    #[test]
    fn untagged_jobs_need_run_untagged() {
        let mut j = job();
        j.tags.clear();
        assert_eq!(can_pick(&runner(), &j), Ok(()));
        let r = RunnerFacts {
            run_untagged: false,
            ..runner()
        };
        assert_eq!(can_pick(&r, &j), Err(Mismatch::Untagged));
    }

    #[test]
    fn scopes() {
        let group = RunnerFacts {
            scope: Scope::Group(1),
            ..runner()
        };
        assert_eq!(
            can_pick(&group, &job()),
            Ok(()),
            "ancestor group runner serves subgroup projects"
        );
        let other = RunnerFacts {
            scope: Scope::Group(9),
            ..runner()
        };
        assert_eq!(can_pick(&other, &job()), Err(Mismatch::Scope));
        let project = RunnerFacts {
            scope: Scope::Projects([7].into()),
            ..runner()
        };
        assert_eq!(can_pick(&project, &job()), Ok(()));
        let mut j = job();
        j.shared_runners_enabled = false;
        assert_eq!(can_pick(&runner(), &j), Err(Mismatch::Scope));
    }

    #[test]
    fn paused_protected_and_features() {
        assert_eq!(
            can_pick(
                &RunnerFacts {
                    paused: true,
                    ..runner()
                },
                &job()
            ),
            Err(Mismatch::Paused)
        );
        let protected = RunnerFacts {
            ref_protected: true,
            ..runner()
        };
        assert_eq!(can_pick(&protected, &job()), Err(Mismatch::Unprotected));
        let mut j = job();
        j.protected = true;
        assert_eq!(can_pick(&protected, &j), Ok(()));
        j.required_features = set(&["upload_multiple_artifacts"]);
        assert!(matches!(
            can_pick(&protected, &j),
            Err(Mismatch::MissingFeatures(_))
        ));
        assert_eq!(effective_timeout(3600, Some(600)), 600);
        assert_eq!(effective_timeout(3600, None), 3600);
    }
}
