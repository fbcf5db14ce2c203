//! Large configurations stay fast: no quadratic blow-up in the loader,
//! the composer, the linter or the planner.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use forerunner_pipeline::{compile, plan, NoFiles, PlanInput, PlanOutcome};

#[test]
fn two_thousand_jobs_with_extends_and_needs() {
    let mut source = String::from(".base:\n  image: alpine\n  variables: {A: a}\n  tags: [x]\n");
    for i in 0..2000 {
        let _ = write!(
            source,
            "job{i}:\n  extends: .base\n  script: echo {i}\n  needs: [{}]\n  rules:\n    - if: $CI_COMMIT_BRANCH =~ /^ma/\n",
            if i == 0 { String::new() } else { format!("job{}", i - 1) }
        );
    }
    let start = Instant::now();
    let compiled = compile(".gitlab-ci.yml", &source, &NoFiles);
    assert!(
        compiled.diagnostics.is_empty(),
        "{:?}",
        &compiled.diagnostics[..1]
    );
    let report = plan(compiled.model.as_ref().unwrap(), &PlanInput::branch("main"));
    let PlanOutcome::Created(p) = report.outcome else {
        panic!("pipeline expected");
    };
    assert_eq!(p.jobs.len(), 2000);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn many_duplicate_keys_and_errors() {
    let mut source = String::new();
    for i in 0..20_000 {
        let _ = writeln!(source, "k{}: {i}", i % 7);
    }
    let start = Instant::now();
    let compiled = compile(".gitlab-ci.yml", &source, &NoFiles);
    assert!(compiled.has_errors());
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
}
