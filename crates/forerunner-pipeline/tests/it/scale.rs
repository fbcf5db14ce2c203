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

/// A few kilobytes that alias-expand into a huge `default:` copied into
/// many jobs are refused with a diagnostic instead of exhausting memory.
#[test]
fn default_copies_are_bounded() {
    let mut source = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..5 {
        let p = i - 1;
        let _ = writeln!(
            source,
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]"
        );
    }
    // a4 is 100 000 lines (nested lists are flattened into scripts).
    source = source.replace("a0:", ".a0:").replace("\na", "\n.a");
    source.push_str("default:\n  before_script: *a4\n");
    for i in 0..100 {
        let _ = writeln!(source, "job{i}:\n  script: x");
    }
    let start = Instant::now();
    let compiled = compile(".gitlab-ci.yml", &source, &NoFiles);
    assert!(compiled.has_errors(), "expected a size error");
    assert!(
        compiled
            .diagnostics
            .iter()
            .any(|d| d.message.contains("more than")),
        "{:?}",
        compiled.diagnostics
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
}

/// `parallel` multiplies a large job; planning refuses past the limit.
#[test]
fn parallel_copies_are_bounded() {
    let mut source = String::from(".a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..5 {
        let p = i - 1;
        let _ = writeln!(
            source,
            ".a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]"
        );
    }
    source.push_str("job:\n  script: *a4\n  parallel: 200\n");
    let compiled = compile(".gitlab-ci.yml", &source, &NoFiles);
    let model = compiled.model.expect("the file itself is valid");
    let report = plan(&model, &PlanInput::branch("main"));
    assert!(matches!(report.outcome, PlanOutcome::Failed));
    assert!(report.diagnostics[0].message.contains("parallel"));
}

/// A file with thousands of problems reports the first thousand and says
/// how many more there are.
#[test]
fn diagnostics_are_capped() {
    let mut source = String::from("job:\n  script:\n");
    for i in 0..5000 {
        let _ = writeln!(source, "    - {i}");
    }
    let compiled = compile(".gitlab-ci.yml", &source, &NoFiles);
    assert_eq!(compiled.diagnostics.len(), 1001);
    let last = compiled.diagnostics.last().unwrap();
    assert!(last.message.starts_with("4000 more problems"), "{last}");
}
