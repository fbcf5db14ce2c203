//! Golden tests: every `test_data/{ok,err}/NAME.yml` is compiled and
//! planned, and the rendered result is compared with `NAME.expected`.
//!
//! A case may start with header comments that describe the pipeline(s) to
//! plan; each `#! case` line starts a new scenario:
//!
//! ```text
//! #! case tag pipeline     (name of the scenario)
//! #! ref main              (branch; default `main`)
//! #! tag v1.2.0            (tag instead of a branch)
//! #! source schedule       (CI_PIPELINE_SOURCE; default push)
//! #! protected
//! #! var KEY=VALUE         (pipeline or predefined variable)
//! #! changed a.rs,b/c.md   (changed files; empty list with `#! changed`)
//! #! changed_from main a.rs  (changed files for `compare_to: main`)
//! #! exists Cargo.toml     (files of the repository)
//! ```
//!
//! Files under `NAME.files/` are the repository: `include: local` reads
//! them and `exists` sees them. `ok/` cases must compile without errors,
//! `err/` cases must report at least one.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use forerunner_pipeline::{compile, plan, render, PlanInput};

#[test]
fn ok_cases() {
    check_dir("ok", false);
}

#[test]
fn err_cases() {
    check_dir("err", true);
}

fn check_dir(dir: &str, expect_errors: bool) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(dir);
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", root.display());
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let source = fs::read_to_string(case).unwrap();
        let files = repository_files(&case.with_extension("files"));
        let actual = run_case(&source, &files);
        let has_errors = actual.compile_errors;
        if has_errors != expect_errors {
            failures.push(format!(
                "{}: expected {} errors\n{}",
                case.display(),
                if expect_errors { "some" } else { "no" },
                actual.text
            ));
        }
        let expected_path = case.with_extension("expected");
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual.text {
            if update {
                fs::write(&expected_path, &actual.text).unwrap();
            } else {
                failures.push(format!(
                    "{}: output differs (rerun with UPDATE_EXPECT=1 to bless)\n--- expected\n{expected}\n--- actual\n{}",
                    case.display(),
                    actual.text
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn repository_files(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, fs::read_to_string(&p).unwrap());
            }
        }
    }
    out
}

struct Actual {
    text: String,
    compile_errors: bool,
}

struct Scenario {
    name: String,
    input: PlanInput,
}

fn scenarios(source: &str, files: &BTreeMap<String, String>) -> Vec<Scenario> {
    let fresh = |name: &str| {
        let mut input = PlanInput::branch("main");
        input.existing_files = files.keys().cloned().collect();
        input.existing_files.push(".gitlab-ci.yml".into());
        Scenario {
            name: name.to_owned(),
            input,
        }
    };
    let mut out: Vec<Scenario> = Vec::new();
    for line in source.lines() {
        let Some(header) = line.strip_prefix("#! ") else {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            break;
        };
        let (word, rest) = header.split_once(' ').unwrap_or((header, ""));
        let rest = rest.trim();
        if word == "case" {
            out.push(fresh(rest));
            continue;
        }
        if out.is_empty() {
            out.push(fresh("default"));
        }
        let input = &mut out.last_mut().unwrap().input;
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        match word {
            "ref" => input.ref_name = rest.to_owned(),
            "tag" => {
                input.ref_name = rest.to_owned();
                input.is_tag = true;
            }
            "source" => input.source = rest.to_owned(),
            "protected" => input.protected = true,
            "var" => {
                let (k, v) = rest.split_once('=').expect("var KEY=VALUE");
                input.variables.push((k.to_owned(), v.to_owned()));
            }
            "changed" => input.changed_files = Some(split(rest)),
            "changed_from" => {
                let (r, list) = rest.split_once(' ').unwrap_or((rest, ""));
                input.changed_files_by_ref.insert(r.to_owned(), split(list));
            }
            "exists" => input.existing_files.extend(split(rest)),
            other => panic!("unknown test header `#! {other}`"),
        }
    }
    if out.is_empty() {
        out.push(fresh("default"));
    }
    for s in &mut out {
        if !s
            .input
            .variables
            .iter()
            .any(|(k, _)| k == "CI_DEFAULT_BRANCH")
        {
            s.input
                .variables
                .insert(0, ("CI_DEFAULT_BRANCH".into(), "main".into()));
        }
    }
    out
}

fn run_case(source: &str, files: &BTreeMap<String, String>) -> Actual {
    let reader: HashMap<String, String> = files.clone().into_iter().collect();
    let compiled = compile(".gitlab-ci.yml", source, &reader);
    let mut text = String::from("== compile\n");
    if compiled.diagnostics.is_empty() {
        text.push_str("ok\n");
    }
    for d in &compiled.diagnostics {
        let _ = writeln!(text, "{d}");
    }
    if let Some(model) = &compiled.model {
        for scenario in scenarios(source, files) {
            let i = &scenario.input;
            let kind = if i.is_tag { "tag" } else { "branch" };
            let _ = writeln!(
                text,
                "\n== case {} ({kind} {}, {})",
                scenario.name,
                i.ref_name,
                if i.source.is_empty() {
                    "push"
                } else {
                    &i.source
                }
            );
            text.push_str(&render::report(&plan(model, i)));
        }
    }
    Actual {
        compile_errors: compiled.has_errors(),
        text,
    }
}
