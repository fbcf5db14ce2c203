//! `.gitlab-ci.yml` → validated model → planned jobs. Pure logic: no I/O, no async.
//!
//! Two calls cover the whole life of a pipeline configuration:
//!
//! 1. [`compile`] reads the file (and `include: local` files through a
//!    [`FileReader`]), applies `extends`, `!reference`, anchors and
//!    `default:`, and validates every keyword. It never fails outright: it
//!    returns every [`Diagnostic`] found and a [`Model`] when there were no
//!    errors.
//! 2. [`plan()`] evaluates `workflow:rules`, job `rules` / `only` / `except`,
//!    `parallel` and `needs` for one ref and set of variables and changed
//!    files ([`PlanInput`]) and returns the [`PlannedJob`]s GitLab would
//!    create, or why no pipeline is created.
//!
//! ```
//! use std::collections::HashMap;
//!
//! use forerunner_pipeline::{compile, plan, PlanInput, PlanOutcome};
//!
//! let source = "
//! include: ci/lint.yml
//! test:
//!   script: cargo test
//!   rules:
//!     - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
//! ";
//! // The repository as the coordinator sees it at the pipeline's commit.
//! let files = HashMap::from([(
//!     "ci/lint.yml".to_owned(),
//!     "lint:\n  stage: build\n  script: cargo clippy\n".to_owned(),
//! )]);
//! let compiled = compile(".gitlab-ci.yml", source, &files);
//! assert!(compiled.diagnostics.is_empty());
//! let model = compiled.model.expect("no errors, so a model");
//!
//! let mut input = PlanInput::branch("main");
//! input
//!     .variables
//!     .push(("CI_DEFAULT_BRANCH".into(), "main".into()));
//! let report = plan(&model, &input);
//! let PlanOutcome::Created(pipeline) = report.outcome else {
//!     panic!("a pipeline is created for main");
//! };
//! let names: Vec<&str> = pipeline.jobs.iter().map(|j| j.name.as_str()).collect();
//! assert_eq!(names, ["lint", "test"]);
//! assert_eq!(pipeline.jobs[1].script, ["cargo test"]);
//! ```
//!
//! Modules, in pipeline order:
//! - `yaml`: YAML text → positioned tree (anchors, merge keys, tags).
//! - `compose`: `include`, `extends`, `!reference`.
//! - `lint`: keywords and cross-job checks → [`Model`].
//! - [`plan`](mod@plan): rules and expansion → [`Plan`].
//! - [`expr`]: the `rules:if` expression language.
//! - `glob`, `duration`, `variables`: GitLab's path globs, durations and
//!   `$VAR` expansion.
//! - [`select`](mod@select): part of a plan — named jobs and stages with what
//!   they wait for (`forerunner exec JOB…`).
//! - [`render`]: the stable text form of plans and diagnostics used by
//!   golden tests.
//!
//! Invariant: no I/O, no async, no panics on any input (fuzzed).
#![warn(missing_docs)]

mod compose;
pub mod diagnostic;
mod duration;
pub mod expr;
mod glob;
mod lint;
pub mod model;
pub mod plan;
pub mod render;
pub mod select;
mod variables;
mod yaml;

pub use compose::{FileReader, NoFiles};
pub use diagnostic::{Diagnostic, Mark, Severity};
pub use model::Model;
pub use plan::{plan, NotCreated, Plan, PlanInput, PlanOutcome, PlanReport, PlannedJob};
pub use select::{select, SelectError, Selection};

use diagnostic::Sink;

/// The result of [`compile`].
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The validated configuration; `None` when there are errors.
    pub model: Option<Model>,
    /// Every problem found, errors and warnings, in discovery order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Compiled {
    /// True when there is at least one error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses and validates a pipeline configuration.
///
/// `file` names the configuration in diagnostics (usually
/// `.gitlab-ci.yml`); `reader` supplies files for `include: local`.
pub fn compile(file: &str, source: &str, reader: &dyn FileReader) -> Compiled {
    let mut sink = Sink::default();
    let model = compose::load(file, source, reader, &mut sink).and_then(|mut root| {
        if !compose::resolve_extends(&mut root, &mut sink) {
            return None;
        }
        compose::resolve_references(&mut root, &mut sink);
        Some(lint::lint(&root, &mut sink))
    });
    if sink.dropped > 0 {
        let mark = Mark::start_of(&std::sync::Arc::from(file));
        let message = format!(
            "{} more problems are not shown; fix the ones above first",
            sink.dropped
        );
        sink.items.push(Diagnostic {
            severity: Severity::Warning,
            mark,
            path: String::new(),
            message,
        });
    }
    let model = if sink.has_errors() { None } else { model };
    Compiled {
        model,
        diagnostics: sink.items,
    }
}

#[cfg(test)]
mod tests {
    /// The coordinator keeps models and plans across await points and threads.
    #[test]
    fn results_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::Compiled>();
        assert_send_sync::<crate::Model>();
        assert_send_sync::<crate::PlanReport>();
        assert_send_sync::<crate::PlanInput>();
    }
}
