//! Whether two jobs of a plan can run at the same time, which decides the
//! output layout before anything runs (so it does not change with timing).
//!
//! Job B waits for job A when B `needs:` A, or when B has no `needs:` and A
//! is in an earlier stage (the coordinator's progression rules); waiting is
//! transitive. Two jobs where neither waits for the other may run side by
//! side when the runner takes more than one job at a time.

use forerunner_pipeline::Plan;

/// True when `concurrency` > 1 and some pair of jobs of `plan` is unordered.
pub fn may_run_side_by_side(plan: &Plan, concurrency: usize) -> bool {
    let n = plan.jobs.len();
    if concurrency < 2 || n < 2 {
        return false;
    }
    // waits[b][a]: b waits for a, directly at first, then transitively.
    let mut waits = vec![vec![false; n]; n];
    for (b, job) in plan.jobs.iter().enumerate() {
        for (a, other) in plan.jobs.iter().enumerate() {
            waits[b][a] = match &job.needs {
                Some(needs) => needs.iter().any(|need| need.job == other.name),
                None => other.stage_index < job.stage_index,
            };
        }
    }
    for k in 0..n {
        let via = waits[k].clone();
        for row in waits.iter_mut() {
            if row[k] {
                for (cell, through) in row.iter_mut().zip(&via) {
                    *cell |= *through;
                }
            }
        }
    }
    (0..n).any(|a| (a + 1..n).any(|b| !waits[a][b] && !waits[b][a]))
}

#[cfg(test)]
mod tests {
    use forerunner_pipeline::{compile, plan, NoFiles, PlanInput, PlanOutcome};

    use super::*;

    fn planned(yaml: &str) -> Plan {
        let model = compile(".gitlab-ci.yml", yaml, &NoFiles).model.unwrap();
        match plan(&model, &PlanInput::branch("main")).outcome {
            PlanOutcome::Created(p) => p,
            other => panic!("no pipeline: {other:?}"),
        }
    }

    #[test]
    fn a_chain_of_stages_runs_one_job_at_a_time() {
        let p = planned("stages: [a, b, c]\nx:\n  stage: a\n  script: x\ny:\n  stage: b\n  script: y\nz:\n  stage: c\n  script: z\n");
        assert!(!may_run_side_by_side(&p, 4));
    }

    #[test]
    fn two_jobs_of_a_stage_may_run_together() {
        let p = planned("x:\n  stage: test\n  script: x\ny:\n  stage: test\n  script: y\n");
        assert!(may_run_side_by_side(&p, 2));
        assert!(!may_run_side_by_side(&p, 1), "not with one job at a time");
    }

    #[test]
    fn needs_can_order_or_unorder_jobs() {
        // `late` needs nothing, so it may run with `early`.
        let p = planned("stages: [a, b]\nearly:\n  stage: a\n  script: x\nlate:\n  stage: b\n  needs: []\n  script: y\n");
        assert!(may_run_side_by_side(&p, 2));
        // A chain through needs is ordered.
        let p = planned("stages: [a, b, c]\nx:\n  stage: a\n  script: x\ny:\n  stage: b\n  needs: [x]\n  script: y\nz:\n  stage: c\n  needs: [y]\n  script: z\n");
        assert!(!may_run_side_by_side(&p, 2));
    }

    #[test]
    fn parallel_instances_may_run_together() {
        let p = planned("t:\n  script: x\n  parallel: 2\n");
        assert!(may_run_side_by_side(&p, 2));
    }
}
