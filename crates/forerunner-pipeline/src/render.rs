//! The stable, human-readable text form of a plan.
//!
//! One format serves golden tests and `forerunner exec --list`: a header
//! with the pipeline name and stages, then one block per job listing every
//! field that is set. Fields appear in a fixed order and lists keep their
//! order, so the text changes only when the plan does. Diagnostics render
//! through their own `Display` (one line each).

use std::fmt::{self, Write as _};

use crate::model::{AllowFailure, CacheKey, VariableDef};
use crate::plan::{NotCreated, Plan, PlanOutcome, PlanReport, PlannedJob};

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            writeln!(f, "pipeline name: {name:?}")?;
        }
        writeln!(f, "stages: {}", self.stages.join(", "))?;
        if !self.workflow_variables.is_empty() {
            writeln!(
                f,
                "workflow variables: {}",
                vars_inline(&self.workflow_variables)
            )?;
        }
        for job in &self.jobs {
            writeln!(f)?;
            write!(f, "{job}")?;
        }
        Ok(())
    }
}

fn vars_inline(vars: &[VariableDef]) -> String {
    vars.iter()
        .map(|v| {
            if v.expand {
                format!("{}={:?}", v.key, v.value)
            } else {
                format!("{}={:?} (raw)", v.key, v.value)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn lines(f: &mut fmt::Formatter<'_>, title: &str, items: &[String]) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(f, "  {title}:")?;
    for line in items {
        writeln!(f, "    - {line:?}")?;
    }
    Ok(())
}

impl fmt::Display for PlannedJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "job {:?} (stage {} #{})",
            self.name, self.stage, self.stage_index
        )?;
        let mut when = self.when.as_str().to_owned();
        if let Some(d) = &self.start_in {
            let _ = write!(when, " in {:?} ({}s)", d.text, d.seconds);
        }
        writeln!(f, "  when: {when}")?;
        match &self.allow_failure {
            AllowFailure::No => writeln!(f, "  allow_failure: false")?,
            AllowFailure::Yes => writeln!(f, "  allow_failure: true")?,
            AllowFailure::ExitCodes(codes) => writeln!(f, "  allow_failure: exit codes {codes:?}")?,
        }
        match &self.needs {
            None => writeln!(f, "  needs: (stage order)")?,
            Some(needs) => {
                let items: Vec<String> = needs
                    .iter()
                    .map(|n| {
                        let mut s = format!("{:?}", n.job);
                        if !n.artifacts {
                            s.push_str(" (no artifacts)");
                        }
                        if n.optional {
                            s.push_str(" (optional)");
                        }
                        s
                    })
                    .collect();
                writeln!(f, "  needs: [{}]", items.join(", "))?;
            }
        }
        if let Some(deps) = &self.dependencies {
            writeln!(f, "  dependencies: [{}]", list(deps))?;
        }
        if !self.tags.is_empty() {
            writeln!(f, "  tags: [{}]", list(&self.tags))?;
        }
        if let Some(image) = &self.image {
            write!(f, "  image: {:?}", image.name)?;
            if let Some(e) = &image.entrypoint {
                write!(f, " entrypoint [{}]", list(e))?;
            }
            if !image.pull_policy.is_empty() {
                write!(f, " pull_policy [{}]", image.pull_policy.join(", "))?;
            }
            if let Some(p) = &image.platform {
                write!(f, " platform {p:?}")?;
            }
            if let Some(u) = &image.user {
                write!(f, " user {u:?}")?;
            }
            writeln!(f)?;
        }
        if !self.services.is_empty() {
            writeln!(f, "  services:")?;
            for s in &self.services {
                write!(f, "    - {:?}", s.name)?;
                if let Some(a) = &s.alias {
                    write!(f, " alias {a:?}")?;
                }
                if let Some(e) = &s.entrypoint {
                    write!(f, " entrypoint [{}]", list(e))?;
                }
                if let Some(c) = &s.command {
                    write!(f, " command [{}]", list(c))?;
                }
                if !s.pull_policy.is_empty() {
                    write!(f, " pull_policy [{}]", s.pull_policy.join(", "))?;
                }
                if !s.variables.is_empty() {
                    write!(f, " variables {{{}}}", vars_inline(&s.variables))?;
                }
                writeln!(f)?;
            }
        }
        if !self.variables.is_empty() {
            writeln!(f, "  variables:")?;
            for v in &self.variables {
                let raw = if v.expand { "" } else { " (raw)" };
                writeln!(f, "    {}={:?}{raw}", v.key, v.value)?;
            }
        }
        lines(f, "before_script", &self.before_script)?;
        lines(f, "script", &self.script)?;
        lines(f, "after_script", &self.after_script)?;
        if let Some(a) = &self.artifacts {
            writeln!(f, "  artifacts:")?;
            if let Some(n) = &a.name {
                writeln!(f, "    name: {n:?}")?;
            }
            if !a.paths.is_empty() {
                writeln!(f, "    paths: [{}]", list(&a.paths))?;
            }
            if !a.exclude.is_empty() {
                writeln!(f, "    exclude: [{}]", list(&a.exclude))?;
            }
            if a.untracked {
                writeln!(f, "    untracked: true")?;
            }
            if let Some(w) = a.when {
                writeln!(f, "    when: {}", w.as_str())?;
            }
            if let Some(d) = &a.expire_in {
                writeln!(f, "    expire_in: {:?} ({}s)", d.text, d.seconds)?;
            }
            if let Some(e) = &a.expose_as {
                writeln!(f, "    expose_as: {e:?}")?;
            }
            if let Some(p) = a.public {
                writeln!(f, "    public: {p}")?;
            }
            for r in &a.reports {
                write!(f, "    report {}: [{}]", r.kind, list(&r.paths))?;
                if let Some(fmt) = &r.format {
                    write!(f, " format {fmt}")?;
                }
                writeln!(f)?;
            }
        }
        if !self.cache.is_empty() {
            writeln!(f, "  cache:")?;
            for c in &self.cache {
                match &c.key {
                    CacheKey::Literal(k) => write!(f, "    - key {k:?}")?,
                    CacheKey::Files { files, prefix } => {
                        write!(f, "    - key files [{}]", list(files))?;
                        if let Some(p) = prefix {
                            write!(f, " prefix {p:?}")?;
                        }
                    }
                }
                write!(
                    f,
                    " paths [{}] policy {} when {}",
                    list(&c.paths),
                    c.policy,
                    c.when.as_str()
                )?;
                if c.untracked {
                    write!(f, " untracked")?;
                }
                if c.unprotect {
                    write!(f, " unprotect")?;
                }
                if !c.fallback_keys.is_empty() {
                    write!(f, " fallback_keys [{}]", list(&c.fallback_keys))?;
                }
                writeln!(f)?;
            }
        }
        if let Some(t) = self.timeout {
            writeln!(f, "  timeout: {t}s")?;
        }
        if self.retry.max > 0 || !self.retry.when.is_empty() || !self.retry.exit_codes.is_empty() {
            write!(f, "  retry: max {}", self.retry.max)?;
            if !self.retry.when.is_empty() {
                write!(f, " when [{}]", self.retry.when.join(", "))?;
            }
            if !self.retry.exit_codes.is_empty() {
                write!(f, " exit_codes {:?}", self.retry.exit_codes)?;
            }
            writeln!(f)?;
        }
        if self.interruptible {
            writeln!(f, "  interruptible: true")?;
        }
        if let Some(e) = &self.environment {
            write!(f, "  environment: {:?} action {}", e.name, e.action)?;
            if let Some(u) = &e.url {
                write!(f, " url {u:?}")?;
            }
            if let Some(s) = &e.on_stop {
                write!(f, " on_stop {s:?}")?;
            }
            if let Some(a) = &e.auto_stop_in {
                write!(f, " auto_stop_in {a:?}")?;
            }
            if let Some(t) = &e.deployment_tier {
                write!(f, " tier {t}")?;
            }
            writeln!(f)?;
        }
        if let Some(c) = &self.coverage {
            writeln!(f, "  coverage: {c:?}")?;
        }
        if let Some(r) = &self.resource_group {
            writeln!(f, "  resource_group: {r:?}")?;
        }
        if let Some(p) = &self.parallel {
            write!(f, "  parallel: {}/{}", p.index, p.total)?;
            if !p.matrix.is_empty() {
                let m: Vec<String> = p.matrix.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                write!(f, " matrix {}", m.join(", "))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Renders a plan report: diagnostics, then the outcome.
pub fn report(report: &PlanReport) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        let _ = writeln!(out, "{d}");
    }
    match &report.outcome {
        PlanOutcome::Created(plan) => {
            let _ = write!(out, "{plan}");
        }
        PlanOutcome::NotCreated(NotCreated::WorkflowRules) => {
            out.push_str("no pipeline: workflow rules prevented the pipeline from being created\n");
        }
        PlanOutcome::NotCreated(NotCreated::NoJobs) => {
            out.push_str("no pipeline: rules left no job to run\n");
        }
        PlanOutcome::Failed => out.push_str("no pipeline: planning failed\n"),
    }
    out
}
