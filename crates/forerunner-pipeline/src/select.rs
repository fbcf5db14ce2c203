//! Selecting part of a planned pipeline: some jobs (by name) and the jobs of
//! some stages, with every job they wait for, so that the smaller pipeline
//! runs exactly as those jobs would in the whole one.
//!
//! What a job waits for is what the coordinator makes it wait for, narrowed
//! to the jobs whose results it can see:
//! - a job with `needs:` waits for those jobs (and only them);
//! - a job without `needs:` but with `dependencies:` receives artifacts only
//!   from those jobs, so they are what it takes along;
//! - any other job waits for every job of the earlier stages and receives
//!   their artifacts, so it takes all of them along.
//!
//! The rule applies again to every job taken along, until nothing is added.
//! A name matches a job, or every instance of a `parallel` job by its name
//! in the YAML (`test` selects `test 1/3` … `test 3/3`). Unknown names are
//! errors that say whether the job exists but was left out by its rules, or
//! what the closest defined name is.
//!
//! Used by the coordinator's pipeline creation (an internal option of
//! `forerunner exec`, not of the REST API) and by `forerunner exec --list`.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use crate::model::Model;
use crate::plan::{Plan, PlannedJob};

/// Which jobs to keep. An empty selection keeps the whole plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Job names: a planned job's name, or a `parallel` job's YAML name.
    pub jobs: Vec<String>,
    /// Stage names: every planned job of these stages.
    pub stages: Vec<String>,
}

impl Selection {
    /// True when nothing is selected (the whole plan is kept).
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.stages.is_empty()
    }

    /// True when `job` was named (by its name or its YAML name).
    pub fn names(&self, job: &PlannedJob) -> bool {
        self.jobs
            .iter()
            .any(|n| *n == job.name || *n == job.base_name)
    }
}

/// Why a selection cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectError {
    /// No job of that name is defined.
    UnknownJob {
        /// The name given.
        name: String,
        /// The closest defined job name, if one is close.
        suggestion: Option<String>,
    },
    /// The job is defined, but its `rules` (or `only`/`except`) leave it out
    /// of this pipeline.
    JobNotInPipeline {
        /// The name given.
        name: String,
        /// Where the job is defined (`file:line`).
        defined_at: String,
    },
    /// No stage of that name is defined.
    UnknownStage {
        /// The name given.
        name: String,
        /// The closest stage name, if one is close.
        suggestion: Option<String>,
    },
    /// The stage exists, but none of its jobs is in this pipeline.
    EmptyStage {
        /// The name given.
        name: String,
    },
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::UnknownJob { name, suggestion } => {
                write!(f, "there is no job `{name}` in .gitlab-ci.yml")?;
                match suggestion {
                    Some(s) => write!(f, " (did you mean `{s}`?)"),
                    None => Ok(()),
                }
            }
            SelectError::JobNotInPipeline { name, defined_at } => write!(
                f,
                "job `{name}` (defined at {defined_at}) is not in this pipeline: its rules, \
                 only or except leave it out for this ref and these variables"
            ),
            SelectError::UnknownStage { name, suggestion } => {
                write!(f, "there is no stage `{name}` in .gitlab-ci.yml")?;
                match suggestion {
                    Some(s) => write!(f, " (did you mean `{s}`?)"),
                    None => Ok(()),
                }
            }
            SelectError::EmptyStage { name } => write!(
                f,
                "stage `{name}` has no job in this pipeline (rules left every one out)"
            ),
        }
    }
}

impl std::error::Error for SelectError {}

/// The part of `plan` that `selection` asks for (see the module docs);
/// `model` is what `plan` was planned from, to tell unknown names from jobs
/// left out by rules.
pub fn select(model: &Model, plan: &Plan, selection: &Selection) -> Result<Plan, SelectError> {
    if selection.is_empty() {
        return Ok(plan.clone());
    }
    let mut wanted: BTreeSet<usize> = BTreeSet::new();
    for name in &selection.jobs {
        let found: Vec<usize> = plan
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j.name == *name || j.base_name == *name)
            .map(|(i, _)| i)
            .collect();
        if found.is_empty() {
            return Err(match model.jobs.iter().find(|d| d.name == *name) {
                Some(def) => SelectError::JobNotInPipeline {
                    name: name.clone(),
                    defined_at: format!("{}:{}", def.mark.file, def.mark.line),
                },
                None => SelectError::UnknownJob {
                    name: name.clone(),
                    suggestion: closest(
                        name,
                        plan.jobs
                            .iter()
                            .map(|j| j.name.as_str())
                            .chain(model.jobs.iter().map(|d| d.name.as_str())),
                    ),
                },
            });
        }
        wanted.extend(found);
    }
    for stage in &selection.stages {
        if !model.stages.iter().any(|s| s == stage) {
            return Err(SelectError::UnknownStage {
                name: stage.clone(),
                suggestion: closest(stage, model.stages.iter().map(String::as_str)),
            });
        }
        if !plan.jobs.iter().any(|j| j.stage == *stage) {
            return Err(SelectError::EmptyStage {
                name: stage.clone(),
            });
        }
        wanted.extend(
            plan.jobs
                .iter()
                .enumerate()
                .filter(|(_, j)| j.stage == *stage)
                .map(|(i, _)| i),
        );
    }
    let mut todo: Vec<usize> = wanted.iter().copied().collect();
    while let Some(i) = todo.pop() {
        for p in prerequisites(plan, i) {
            if wanted.insert(p) {
                todo.push(p);
            }
        }
    }
    let kept: HashSet<&str> = wanted.iter().map(|&i| plan.jobs[i].name.as_str()).collect();
    let jobs: Vec<PlannedJob> = wanted
        .iter()
        .map(|&i| {
            let mut job = plan.jobs[i].clone();
            // Closed under prerequisites, so this only drops what the
            // smaller pipeline cannot provide anyway.
            if let Some(deps) = &mut job.dependencies {
                deps.retain(|d| kept.contains(d.as_str()));
            }
            job
        })
        .collect();
    let stages = plan
        .stages
        .iter()
        .filter(|s| jobs.iter().any(|j| &j.stage == *s))
        .cloned()
        .collect();
    Ok(Plan {
        name: plan.name.clone(),
        stages,
        workflow_variables: plan.workflow_variables.clone(),
        jobs,
    })
}

/// Indexes of the jobs job `i` takes along (see the module docs).
fn prerequisites(plan: &Plan, i: usize) -> Vec<usize> {
    let job = &plan.jobs[i];
    let by_name = |names: Vec<&str>| -> Vec<usize> {
        plan.jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| names.contains(&j.name.as_str()))
            .map(|(k, _)| k)
            .collect()
    };
    match (&job.needs, &job.dependencies) {
        (Some(needs), _) => by_name(needs.iter().map(|n| n.job.as_str()).collect()),
        (None, Some(deps)) => by_name(deps.iter().map(String::as_str).collect()),
        (None, None) => plan
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j.stage_index < job.stage_index)
            .map(|(k, _)| k)
            .collect(),
    }
}

/// The candidate closest to `name` by edit distance, if it is close enough
/// to be a likely typo (at most a third of the name's length, and 3).
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

/// Edit distance over characters, counting a swap of two neighbours as one
/// edit (optimal string alignment): `biuld` is one edit from `build`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{compile, plan, NoFiles, PlanInput, PlanOutcome};

    const YAML: &str = "
stages: [build, test, deploy]
build:
  stage: build
  script: make
lint:
  stage: build
  script: lint
unit:
  stage: test
  needs: [build]
  script: test
  parallel: 2
docs:
  stage: test
  dependencies: [lint]
  script: docs
e2e:
  stage: test
  script: e2e
deploy:
  stage: deploy
  needs: [unit]
  script: deploy
  when: manual
only-tags:
  stage: deploy
  script: release
  rules:
    - if: $CI_COMMIT_TAG
";

    fn planned() -> (Model, Plan) {
        let compiled = compile(".gitlab-ci.yml", YAML, &NoFiles);
        assert!(
            compiled.diagnostics.is_empty(),
            "{:?}",
            compiled.diagnostics
        );
        let model = compiled.model.unwrap();
        let PlanOutcome::Created(p) = plan(&model, &PlanInput::branch("main")).outcome else {
            panic!("a pipeline for main");
        };
        (model, p)
    }

    fn names(jobs: &[&str], stages: &[&str]) -> Result<Vec<String>, SelectError> {
        let (model, p) = planned();
        let selection = Selection {
            jobs: jobs.iter().map(|s| s.to_string()).collect(),
            stages: stages.iter().map(|s| s.to_string()).collect(),
        };
        select(&model, &p, &selection).map(|p| p.jobs.into_iter().map(|j| j.name).collect())
    }

    #[test]
    fn empty_selection_keeps_everything() {
        let all = names(&[], &[]).unwrap();
        assert_eq!(
            all,
            ["build", "lint", "unit 1/2", "unit 2/2", "docs", "e2e", "deploy"]
        );
    }

    #[test]
    fn needs_are_taken_along_transitively() {
        assert_eq!(
            names(&["deploy"], &[]).unwrap(),
            ["build", "unit 1/2", "unit 2/2", "deploy"]
        );
    }

    #[test]
    fn a_parallel_job_is_selected_by_its_yaml_name_or_one_instance() {
        assert_eq!(
            names(&["unit"], &[]).unwrap(),
            ["build", "unit 1/2", "unit 2/2"]
        );
        assert_eq!(names(&["unit 2/2"], &[]).unwrap(), ["build", "unit 2/2"]);
    }

    #[test]
    fn dependencies_narrow_what_a_job_without_needs_takes_along() {
        assert_eq!(names(&["docs"], &[]).unwrap(), ["lint", "docs"]);
    }

    #[test]
    fn a_job_without_needs_takes_every_earlier_stage_along() {
        assert_eq!(names(&["e2e"], &[]).unwrap(), ["build", "lint", "e2e"]);
        assert_eq!(names(&["lint"], &[]).unwrap(), ["lint"]);
    }

    #[test]
    fn stages_select_all_their_jobs() {
        assert_eq!(names(&[], &["build"]).unwrap(), ["build", "lint"]);
        assert_eq!(
            names(&["docs"], &["deploy"]).unwrap(),
            ["build", "lint", "unit 1/2", "unit 2/2", "docs", "deploy"]
        );
    }

    #[test]
    fn the_result_keeps_only_stages_with_jobs() {
        let (model, p) = planned();
        let selection = Selection {
            jobs: vec!["lint".into()],
            stages: vec![],
        };
        assert_eq!(select(&model, &p, &selection).unwrap().stages, ["build"]);
    }

    #[test]
    fn unknown_names_say_what_is_close() {
        assert_eq!(
            names(&["biuld"], &[]),
            Err(SelectError::UnknownJob {
                name: "biuld".into(),
                suggestion: Some("build".into())
            })
        );
        assert_eq!(
            names(&["zzz"], &[]),
            Err(SelectError::UnknownJob {
                name: "zzz".into(),
                suggestion: None
            })
        );
        assert_eq!(
            names(&[], &["tset"]),
            Err(SelectError::UnknownStage {
                name: "tset".into(),
                suggestion: Some("test".into())
            })
        );
    }

    #[test]
    fn jobs_left_out_by_rules_are_explained() {
        let err = names(&["only-tags"], &[]).unwrap_err();
        assert_eq!(
            err,
            SelectError::JobNotInPipeline {
                name: "only-tags".into(),
                defined_at: ".gitlab-ci.yml:26".into()
            }
        );
        assert!(err.to_string().contains("its rules"), "{err}");
    }

    #[test]
    fn a_stage_without_planned_jobs_is_an_error() {
        let yaml = "stages: [a, b]\nx:\n  stage: a\n  script: x\ny:\n  stage: b\n  script: y\n  rules:\n    - when: never\n";
        let model = compile(".gitlab-ci.yml", yaml, &NoFiles).model.unwrap();
        let PlanOutcome::Created(p) = plan(&model, &PlanInput::branch("main")).outcome else {
            panic!("a pipeline");
        };
        let selection = Selection {
            jobs: vec![],
            stages: vec!["b".into()],
        };
        assert_eq!(
            select(&model, &p, &selection).unwrap_err(),
            SelectError::EmptyStage { name: "b".into() }
        );
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("build", "build"), 0);
        assert_eq!(edit_distance("biuld", "build"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("test", "tests"), 1);
    }
}
