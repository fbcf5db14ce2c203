//! Fuzz target: any bytes, as a `.gitlab-ci.yml` plus optional included
//! files, must compile and plan without panicking.
//!
//! The input is split on lines `--- FILE name`: the first part is the main
//! file, each later part is a repository file that `include: local` can
//! read. Run with `cargo fuzz run compile_and_plan` from this directory's
//! parent crate.
#![no_main]

use std::collections::HashMap;

use forerunner_pipeline::{compile, plan, render, PlanInput, PlanOutcome};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split("\n--- FILE ");
    let main = parts.next().unwrap_or("");
    let mut files = HashMap::new();
    for part in parts {
        let (name, body) = part.split_once('\n').unwrap_or((part, ""));
        files.insert(name.trim().to_owned(), body.to_owned());
    }
    let compiled = compile(".gitlab-ci.yml", main, &files);
    for d in &compiled.diagnostics {
        let _ = d.to_string();
    }
    let Some(model) = compiled.model else {
        return;
    };
    let mut branch = PlanInput::branch("main");
    branch.variables.push(("CI_DEFAULT_BRANCH".into(), "main".into()));
    branch.changed_files = Some(vec!["src/main.rs".into(), "docs/a.md".into()]);
    branch.existing_files = files.keys().cloned().collect();
    let mut tag = PlanInput::tag("v1.0.0");
    tag.source = "schedule".into();
    for input in [branch, tag] {
        let report = plan(&model, &input);
        let _ = render::report(&report);
        if let PlanOutcome::Created(p) = &report.outcome {
            assert!(!p.jobs.is_empty());
        }
    }
});
