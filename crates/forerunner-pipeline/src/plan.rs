//! Planning: a [`Model`] plus a ref, variables and changed files → the jobs
//! GitLab would create.
//!
//! This is the "seeding" half of GitLab's pipeline creation: `workflow:rules`
//! decide whether there is a pipeline at all, `rules` (or `only`/`except`)
//! decide each job's presence and `when`, `parallel` expands jobs, and
//! `needs` are resolved against the jobs actually created. The result,
//! [`Plan`], is what the coordinator stores as jobs and what `exec --list`
//! prints; both use it unchanged. Runner-side concerns (merging
//! `before_script` into the script step, predefined job variables such as
//! `CI_JOB_ID`) are left to the coordinator.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::diagnostic::{join_key, Diagnostic, Mark, Sink};
use crate::glob;
use crate::model::{
    AllowFailure, Artifacts, Cache, Changes, Duration, Environment, Image, JobDef, Model, Need,
    Parallel, Policy, Retry, Rule, Service, VariableDef, When, MAX_WEIGHT,
};
use crate::variables::{expand, expand_values, Unknown};

/// What the planner needs to know about the pipeline being created.
#[derive(Clone, Debug, Default)]
pub struct PlanInput {
    /// Branch or tag name (`CI_COMMIT_REF_NAME`).
    pub ref_name: String,
    /// True when `ref_name` is a tag.
    pub is_tag: bool,
    /// True when the ref is protected (`CI_COMMIT_REF_PROTECTED`).
    pub protected: bool,
    /// `CI_PIPELINE_SOURCE`: `push`, `web`, `schedule`, `api`, `trigger`,
    /// `merge_request_event`, … Empty means `push`.
    pub source: String,
    /// Pipeline, project and predefined variables (`CI_COMMIT_BRANCH`,
    /// `CI_DEFAULT_BRANCH`, …). They take precedence over YAML variables.
    /// `CI_COMMIT_REF_NAME`, `CI_COMMIT_REF_SLUG`, `CI_COMMIT_BRANCH`/`CI_COMMIT_TAG`,
    /// `CI_PIPELINE_SOURCE` and `CI_COMMIT_REF_PROTECTED` are derived from
    /// the fields above unless given here.
    pub variables: Vec<(String, String)>,
    /// Files changed by the push; `None` when unknown (new branch, tag,
    /// schedule, web): then every `changes` rule matches, as in GitLab.
    pub changed_files: Option<Vec<String>>,
    /// Files changed relative to other refs, for `changes:compare_to`.
    pub changed_files_by_ref: BTreeMap<String, Vec<String>>,
    /// Every file of the repository at the pipeline's commit, for `exists`.
    pub existing_files: Vec<String>,
}

impl PlanInput {
    /// A push pipeline for a branch.
    pub fn branch(name: &str) -> PlanInput {
        PlanInput {
            ref_name: name.to_owned(),
            source: "push".into(),
            ..PlanInput::default()
        }
    }

    /// A push pipeline for a tag.
    pub fn tag(name: &str) -> PlanInput {
        PlanInput {
            ref_name: name.to_owned(),
            is_tag: true,
            source: "push".into(),
            ..PlanInput::default()
        }
    }

    fn source(&self) -> &str {
        if self.source.is_empty() {
            "push"
        } else {
            &self.source
        }
    }

    /// The variables rules are evaluated with before YAML variables are
    /// added: derived predefined ones, overridden by `variables`.
    fn base_variables(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("CI_COMMIT_REF_NAME".to_owned(), self.ref_name.clone()),
            ("CI_COMMIT_REF_SLUG".to_owned(), ref_slug(&self.ref_name)),
            ("CI_PIPELINE_SOURCE".to_owned(), self.source().to_owned()),
            (
                "CI_COMMIT_REF_PROTECTED".to_owned(),
                self.protected.to_string(),
            ),
        ];
        if self.is_tag {
            vars.push(("CI_COMMIT_TAG".to_owned(), self.ref_name.clone()));
        } else if self.source() != "merge_request_event" {
            vars.push(("CI_COMMIT_BRANCH".to_owned(), self.ref_name.clone()));
        }
        vars
    }
}

/// `CI_COMMIT_REF_SLUG`: the ref lowercased, every character other than
/// `a-z` and `0-9` replaced by `-`, at most 63 bytes, no `-` at the ends.
pub fn ref_slug(ref_name: &str) -> String {
    let slug: String = ref_name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    slug.trim_matches('-').to_owned()
}

/// The result of planning.
#[derive(Clone, Debug)]
pub struct PlanReport {
    /// Whether a pipeline is created, and its jobs.
    pub outcome: PlanOutcome,
    /// Problems found while planning (errors make the outcome `Failed`).
    pub diagnostics: Vec<Diagnostic>,
}

/// Whether a pipeline is created.
#[derive(Clone, Debug)]
pub enum PlanOutcome {
    /// A pipeline with these jobs.
    Created(Plan),
    /// No pipeline, and that is not an error.
    NotCreated(NotCreated),
    /// The configuration cannot produce a pipeline for this input; see the
    /// diagnostics (e.g. a job needs a job that rules left out).
    Failed,
}

/// Why no pipeline is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotCreated {
    /// `workflow:rules` matched `when: never` or matched nothing.
    WorkflowRules,
    /// Rules left no job (or only `.pre`/`.post` jobs).
    NoJobs,
}

/// A planned pipeline.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `workflow:name`, expanded.
    pub name: Option<String>,
    /// Stages that have at least one job, in order.
    pub stages: Vec<String>,
    /// `variables` of the matching `workflow:rules` entry (already merged
    /// into each job's variables; listed for display).
    pub workflow_variables: Vec<VariableDef>,
    /// Jobs ordered by stage, then by definition.
    pub jobs: Vec<PlannedJob>,
}

/// The instance of a parallel job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParallelInstance {
    /// 1-based index (`CI_NODE_INDEX`).
    pub index: u32,
    /// Number of instances (`CI_NODE_TOTAL`).
    pub total: u32,
    /// Matrix variables of this instance (also in the job's variables).
    pub matrix: Vec<(String, String)>,
}

/// A job to create, with everything the runner payload needs from the YAML.
#[derive(Clone, Debug)]
pub struct PlannedJob {
    /// Job name, including the parallel suffix (`test 1/3`, `deploy: [aws]`).
    pub name: String,
    /// Name in the YAML, before `parallel` expansion.
    pub base_name: String,
    /// Stage name.
    pub stage: String,
    /// Index of the stage in [`crate::Model::stages`] (`.pre` is 0).
    pub stage_index: usize,
    /// When the job runs; never [`When::Never`].
    pub when: When,
    /// Delay for [`When::Delayed`].
    pub start_in: Option<Duration>,
    /// Whether a failure is allowed.
    pub allow_failure: AllowFailure,
    /// `needs`, resolved to job names of this plan; `None` when the job has
    /// no `needs:` key and waits for earlier stages.
    pub needs: Option<Vec<Need>>,
    /// `dependencies`, resolved; `None` means all earlier jobs' artifacts.
    pub dependencies: Option<Vec<String>>,
    /// Runner tags.
    pub tags: Vec<String>,
    /// Image (name expanded with known variables).
    pub image: Option<Image>,
    /// Services.
    pub services: Vec<Service>,
    /// YAML variables for the job: global (subject to `inherit`), workflow
    /// rule, job, rule and matrix variables, later ones overriding earlier.
    /// Pipeline and predefined variables are not included.
    pub variables: Vec<VariableDef>,
    /// `before_script` lines (from `default:` when inherited).
    pub before_script: Vec<String>,
    /// `script` lines.
    pub script: Vec<String>,
    /// `after_script` lines.
    pub after_script: Vec<String>,
    /// Artifacts to upload.
    pub artifacts: Option<Artifacts>,
    /// Caches.
    pub cache: Vec<Cache>,
    /// Timeout in seconds, if set in the YAML.
    pub timeout: Option<u64>,
    /// Retry policy (max 0 when not set).
    pub retry: Retry,
    /// Whether a newer pipeline may cancel the job.
    pub interruptible: bool,
    /// Environment (name and url expanded).
    pub environment: Option<Environment>,
    /// Coverage regex.
    pub coverage: Option<String>,
    /// Resource group (expanded).
    pub resource_group: Option<String>,
    /// Parallel instance information.
    pub parallel: Option<ParallelInstance>,
}

/// Names and matrix variables of a job's parallel instances; empty when
/// the job is not parallel.
pub(crate) fn parallel_instances(job: &JobDef) -> Vec<(String, Vec<(String, String)>)> {
    match &job.parallel {
        None => Vec::new(),
        Some(Parallel::Count(n)) => (1..=*n)
            .map(|i| (format!("{} {i}/{n}", job.name), Vec::new()))
            .collect(),
        Some(Parallel::Matrix(rows)) => matrix_instances(&job.name, rows),
    }
}

fn matrix_instances(
    name: &str,
    rows: &[Vec<(String, Vec<String>)>],
) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for row in rows {
        let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for (key, values) in row {
            let mut next = Vec::with_capacity(combos.len() * values.len());
            for combo in &combos {
                for value in values {
                    let mut c = combo.clone();
                    c.push((key.clone(), value.clone()));
                    next.push(c);
                }
            }
            combos = next;
            if combos.len() > 1000 {
                break;
            }
        }
        for combo in combos {
            let values: Vec<&str> = combo.iter().map(|(_, v)| v.as_str()).collect();
            out.push((format!("{name}: [{}]", values.join(", ")), combo));
        }
    }
    out
}

/// Sets `key` in an ordered variable list, replacing an earlier value.
fn set_var(list: &mut Vec<VariableDef>, var: &VariableDef) {
    match list.iter_mut().find(|v| v.key == var.key) {
        Some(slot) => *slot = var.clone(),
        None => list.push(var.clone()),
    }
}

struct Planner<'a> {
    model: &'a Model,
    input: &'a PlanInput,
    sink: Sink,
    /// Where the job being planned is defined, for diagnostics.
    mark: Mark,
}

/// Plans the pipeline `model` would create for `input`.
pub fn plan(model: &Model, input: &PlanInput) -> PlanReport {
    let mark = model.jobs.first().map_or_else(
        || Mark::start_of(&Arc::from(".gitlab-ci.yml")),
        |j| Mark::start_of(&j.mark.file),
    );
    let mut planner = Planner {
        model,
        input,
        sink: Sink::default(),
        mark,
    };
    let outcome = planner.run();
    let outcome = if planner.sink.has_errors() {
        PlanOutcome::Failed
    } else {
        outcome
    };
    PlanReport {
        outcome,
        diagnostics: planner.sink.items,
    }
}

impl Planner<'_> {
    /// Builds an evaluation map: base, then the YAML lists in order, then
    /// the caller's variables on top.
    fn eval_map(&self, yaml: &[&[VariableDef]]) -> HashMap<String, String> {
        let mut map: HashMap<String, String> = self.input.base_variables().into_iter().collect();
        let mut raw = Vec::new();
        for list in yaml {
            for v in *list {
                map.insert(v.key.clone(), v.value.clone());
                if !v.expand {
                    raw.push(v.key.clone());
                }
            }
        }
        for (k, v) in &self.input.variables {
            map.insert(k.clone(), v.clone());
        }
        expand_values(&mut map, &raw);
        map
    }

    fn run(&mut self) -> PlanOutcome {
        let model = self.model;
        let global = model.variables.as_slice();
        let mut workflow_vars = Vec::new();
        if let Some(rules) = &model.workflow.rules {
            let vars = self.eval_map(&[global]);
            match self.first_match(rules, &vars, "workflow.rules") {
                Some(rule) if rule.when != Some(When::Never) => {
                    workflow_vars = rule.variables.clone()
                }
                _ => return PlanOutcome::NotCreated(NotCreated::WorkflowRules),
            }
        }
        let pipeline_vars = self.eval_map(&[global, &workflow_vars]);
        let name = model
            .workflow
            .name
            .as_ref()
            .map(|n| expand(n, &pipeline_vars, Unknown::Empty));

        let mut jobs = Vec::new();
        let mut weight: usize = 0;
        for def in &model.jobs {
            // Every planned job also carries the global variables.
            let instances = parallel_instances(def).len().max(1);
            let per_job = def.weight() + model.variables.len() + workflow_vars.len();
            weight = weight.saturating_add(per_job.saturating_mul(instances));
            if weight > MAX_WEIGHT {
                self.sink.error(
                    &def.mark,
                    &join_key("jobs", &def.name),
                    format!(
                        "the planned jobs would hold more than {MAX_WEIGHT} script lines and values \
                         (`parallel` copies the job); reduce `parallel` or the job's size"
                    ),
                );
                return PlanOutcome::Failed;
            }
            self.plan_job(def, &workflow_vars, &mut jobs);
        }
        if jobs.is_empty() || jobs.iter().all(|j| j.stage == ".pre" || j.stage == ".post") {
            return PlanOutcome::NotCreated(NotCreated::NoJobs);
        }
        if !self.resolve_needs(&mut jobs) {
            return PlanOutcome::Failed;
        }
        jobs.sort_by_key(|j| j.stage_index);
        let stages = model
            .stages
            .iter()
            .filter(|s| jobs.iter().any(|j| &j.stage == *s))
            .cloned()
            .collect();
        PlanOutcome::Created(Plan {
            name,
            stages,
            workflow_variables: workflow_vars,
            jobs,
        })
    }

    fn first_match<'r>(
        &mut self,
        rules: &'r [Rule],
        vars: &HashMap<String, String>,
        path: &str,
    ) -> Option<&'r Rule> {
        rules
            .iter()
            .enumerate()
            .find(|(i, r)| self.rule_matches(r, vars, &format!("{path}[{i}]")))
            .map(|(_, r)| r)
    }

    fn rule_matches(&mut self, rule: &Rule, vars: &HashMap<String, String>, path: &str) -> bool {
        if let Some(c) = &rule.condition {
            if !c.evaluate(vars) {
                return false;
            }
        }
        // `exists` before `changes`: a `compare_to` whose changes are
        // unknown is only an error when it decides the outcome.
        if let Some(exists) = &rule.exists {
            if !self.exists_match(exists, vars) {
                return false;
            }
        }
        if let Some(changes) = &rule.changes {
            if !self.changes_match(changes, vars, path) {
                return false;
            }
        }
        true
    }

    fn changes_match(
        &mut self,
        changes: &Changes,
        vars: &HashMap<String, String>,
        path: &str,
    ) -> bool {
        let files = match &changes.compare_to {
            Some(reference) => {
                let reference = expand(reference, vars, Unknown::Keep);
                match self.input.changed_files_by_ref.get(&reference) {
                    Some(files) => files,
                    None => {
                        let mark = self.mark.clone();
                        self.sink.error(
                            &mark,
                            &join_key(&join_key(path, "changes"), "compare_to"),
                            format!("`compare_to: {reference}` names a ref whose changes are unknown; push the ref or fix the name"),
                        );
                        return false;
                    }
                }
            }
            None => match &self.input.changed_files {
                Some(files) => files,
                None => return true,
            },
        };
        changes.paths.iter().any(|pattern| {
            let pattern = expand(pattern, vars, Unknown::Keep);
            files.iter().any(|f| glob::matches(&pattern, f))
        })
    }

    fn exists_match(&self, patterns: &[String], vars: &HashMap<String, String>) -> bool {
        patterns.iter().any(|pattern| {
            let pattern = expand(pattern, vars, Unknown::Keep);
            let pattern = pattern.trim_start_matches('/');
            self.input
                .existing_files
                .iter()
                .any(|f| glob::matches(pattern, f))
        })
    }

    fn ref_matches(&self, pattern: &str) -> bool {
        let source = self.input.source();
        match pattern {
            "branches" => !self.input.is_tag && source != "merge_request_event",
            "tags" => self.input.is_tag,
            "api" => source == "api",
            "external" => source == "external",
            "pipelines" => source == "pipeline" || source == "parent_pipeline",
            "pushes" => source == "push",
            "schedules" => source == "schedule",
            "triggers" => source == "trigger",
            "web" => source == "web",
            "merge_requests" => source == "merge_request_event",
            "chat" => source == "chat",
            "external_pull_requests" => source == "external_pull_request_event",
            // Names and patterns only match branch and tag pipelines, not
            // merge request pipelines (GitLab's `Policy::Refs`).
            _ if source == "merge_request_event" => false,
            p if p.starts_with('/') && p.len() > 1 => {
                crate::expr::Condition::parse(&format!("$R =~ {p}")).is_ok_and(|c| {
                    let vars = HashMap::from([("R".to_owned(), self.input.ref_name.clone())]);
                    c.evaluate(&vars)
                })
            }
            p => p.split('@').next() == Some(self.input.ref_name.as_str()),
        }
    }

    fn policy_satisfied(&mut self, policy: &Policy, vars: &HashMap<String, String>) -> bool {
        if let Some(refs) = &policy.refs {
            if !refs.iter().any(|r| self.ref_matches(r)) {
                return false;
            }
        }
        if !policy.variables.is_empty() && !policy.variables.iter().any(|c| c.evaluate(vars)) {
            return false;
        }
        if let Some(paths) = &policy.changes {
            let changes = Changes {
                paths: paths.clone(),
                compare_to: None,
            };
            if !self.changes_match(&changes, vars, "") {
                return false;
            }
        }
        true
    }

    fn plan_job(&mut self, def: &JobDef, workflow_vars: &[VariableDef], out: &mut Vec<PlannedJob>) {
        let global: Vec<VariableDef> = self
            .model
            .variables
            .iter()
            .filter(|v| def.inherit_variables.allows(&v.key))
            .cloned()
            .collect();
        let vars = self.eval_map(&[&global, workflow_vars, &def.variables]);
        let path = join_key("jobs", &def.name);
        self.mark = def.mark.clone();

        let mut when = def.when;
        let mut start_in = def.start_in.clone();
        let mut allow_failure = def.allow_failure.clone();
        let mut needs = def.needs.clone();
        let mut interruptible = def.interruptible;
        let mut rule_vars: Vec<VariableDef> = Vec::new();
        if let Some(rules) = &def.rules {
            let Some(rule) = self.first_match(rules, &vars, &join_key(&path, "rules")) else {
                return;
            };
            when = rule.when.unwrap_or(def.when);
            if rule.start_in.is_some() {
                start_in = rule.start_in.clone();
            }
            match rule.allow_failure {
                Some(true) => allow_failure = Some(AllowFailure::Yes),
                Some(false) => allow_failure = Some(AllowFailure::No),
                None => {}
            }
            if allow_failure.is_none() && when == When::Manual {
                // Manual jobs from rules block the pipeline by default.
                allow_failure = Some(AllowFailure::No);
            }
            if rule.needs.is_some() {
                needs = rule.needs.clone();
            }
            if rule.interruptible.is_some() {
                interruptible = rule.interruptible;
            }
            rule_vars = rule.variables.clone();
        } else {
            let default_only = Policy {
                refs: Some(vec!["branches".into(), "tags".into()]),
                ..Policy::default()
            };
            // The `only: [branches, tags]` default does not apply when
            // `workflow:rules` exist (GitLab's `Processable#compose!`).
            let only = match &def.only {
                Some(only) => Some(only),
                None if self.model.workflow.rules.is_none() => Some(&default_only),
                None => None,
            };
            if let Some(only) = only {
                if !self.policy_satisfied(only, &vars) {
                    return;
                }
            }
            if let Some(except) = &def.except {
                if self.except_matches(except, &vars) {
                    return;
                }
            }
        }
        if when == When::Never {
            return;
        }
        if when != When::Delayed {
            start_in = None;
        }
        let allow_failure = allow_failure.unwrap_or(if when == When::Manual {
            AllowFailure::Yes
        } else {
            AllowFailure::No
        });

        let mut variables: Vec<VariableDef> = Vec::new();
        for v in global
            .iter()
            .chain(workflow_vars)
            .chain(&def.variables)
            .chain(&rule_vars)
        {
            set_var(&mut variables, v);
        }

        let instances = parallel_instances(def);
        let total = u32::try_from(instances.len()).unwrap_or(u32::MAX);
        let single = vec![(def.name.clone(), Vec::new())];
        let is_parallel = !instances.is_empty();
        let list = if is_parallel { instances } else { single };
        for (i, (name, matrix)) in list.into_iter().enumerate() {
            let mut job_vars = variables.clone();
            for (k, v) in &matrix {
                set_var(
                    &mut job_vars,
                    &VariableDef {
                        key: k.clone(),
                        value: v.clone(),
                        expand: true,
                        description: None,
                        options: Vec::new(),
                    },
                );
            }
            // Rule and matrix variables join the values used for
            // expansion; references between variables are expanded again.
            let mut eval = vars.clone();
            for v in &job_vars {
                if !self.input.variables.iter().any(|(k, _)| *k == v.key) {
                    eval.insert(v.key.clone(), v.value.clone());
                }
            }
            let raw: Vec<String> = job_vars
                .iter()
                .filter(|v| !v.expand)
                .map(|v| v.key.clone())
                .collect();
            expand_values(&mut eval, &raw);
            let x = |s: &str| expand(s, &eval, Unknown::Keep);
            let image = def.image.clone().map(|mut img| {
                img.name = x(&img.name);
                img
            });
            let services = def
                .services
                .iter()
                .cloned()
                .map(|mut s| {
                    s.name = x(&s.name);
                    s
                })
                .collect();
            let environment = def.environment.clone().map(|mut e| {
                e.name = x(&e.name);
                e.url = e.url.as_deref().map(x);
                e
            });
            out.push(PlannedJob {
                name,
                base_name: def.name.clone(),
                stage: def.stage.clone(),
                stage_index: def.stage_index,
                when,
                start_in: start_in.clone(),
                allow_failure: allow_failure.clone(),
                needs: needs.clone(),
                dependencies: def.dependencies.clone(),
                tags: def.tags.iter().map(|t| x(t)).collect(),
                image,
                services,
                variables: job_vars,
                before_script: def.before_script.clone(),
                script: def.script.clone(),
                after_script: def.after_script.clone(),
                artifacts: def.artifacts.clone(),
                cache: def.cache.clone(),
                timeout: def.timeout.as_ref().map(|d| d.seconds),
                retry: def.retry.clone().unwrap_or_default(),
                interruptible: interruptible.unwrap_or(false),
                environment,
                coverage: def.coverage.clone(),
                resource_group: def.resource_group.as_deref().map(x),
                parallel: is_parallel.then(|| ParallelInstance {
                    index: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    total,
                    matrix: matrix.clone(),
                }),
            });
        }
    }

    /// `except` excludes the job when any of its given parts matches.
    fn except_matches(&mut self, except: &Policy, vars: &HashMap<String, String>) -> bool {
        if let Some(refs) = &except.refs {
            if refs.iter().any(|r| self.ref_matches(r)) {
                return true;
            }
        }
        if except.variables.iter().any(|c| c.evaluate(vars)) {
            return true;
        }
        if let Some(paths) = &except.changes {
            let changes = Changes {
                paths: paths.clone(),
                compare_to: None,
            };
            // Without push information `changes` is true, so the job is
            // excluded, as GitLab does for web and scheduled pipelines.
            if self.changes_match(&changes, vars, "") {
                return true;
            }
        }
        false
    }

    /// Resolves needs and dependencies to the names of planned jobs.
    /// Returns false when the resolved needs would be too many to hold.
    fn resolve_needs(&mut self, jobs: &mut [PlannedJob]) -> bool {
        // Indexes of the planned names, so that resolving is linear.
        let mut by_name: HashMap<String, bool> = HashMap::new();
        let mut by_base: HashMap<String, Vec<String>> = HashMap::new();
        for j in jobs.iter() {
            by_name.insert(j.name.clone(), j.name == j.base_name);
            by_base
                .entry(j.base_name.clone())
                .or_default()
                .push(j.name.clone());
        }
        let resolve = |name: &str, matrix: &[Vec<(String, Vec<String>)>]| -> Vec<String> {
            if !matrix.is_empty() {
                return matrix_instances(name, matrix)
                    .into_iter()
                    .map(|(n, _)| n)
                    .filter(|n| by_name.contains_key(n))
                    .collect();
            }
            if by_name.get(name) == Some(&true) {
                return vec![name.to_owned()];
            }
            if let Some(instances) = by_base.get(name) {
                return instances.clone();
            }
            if by_name.contains_key(name) {
                return vec![name.to_owned()];
            }
            Vec::new()
        };
        let mut total: usize = 0;
        let marks: HashMap<&str, &Mark> = self
            .model
            .jobs
            .iter()
            .map(|d| (d.name.as_str(), &d.mark))
            .collect();
        for job in jobs.iter_mut() {
            let def_mark = marks.get(job.base_name.as_str()).map(|m| (*m).clone());
            if let Some(needs) = job.needs.take() {
                let mut resolved = Vec::new();
                for need in needs {
                    let names = resolve(&need.job, &need.matrix);
                    if names.is_empty() {
                        if !need.optional {
                            if let Some(mark) = &def_mark {
                                self.sink.error(
                                    mark,
                                    &join_key(&join_key("jobs", &job.base_name), "needs"),
                                    format!(
                                        "`{}` needs `{}`, but `{}` is not in this pipeline (its rules, only or except left it out); \
                                         mark the need `optional: true` or make the rules agree",
                                        job.name, need.job, need.job
                                    ),
                                );
                            }
                        }
                        continue;
                    }
                    for n in names {
                        resolved.push(Need {
                            job: n,
                            artifacts: need.artifacts,
                            optional: need.optional,
                            matrix: Vec::new(),
                        });
                    }
                }
                job.needs = Some(resolved);
            }
            if let Some(deps) = job.dependencies.take() {
                let mut resolved = Vec::new();
                for d in deps {
                    resolved.extend(resolve(&d, &[]));
                }
                job.dependencies = Some(resolved);
            }
            total = total
                .saturating_add(job.needs.as_ref().map_or(0, Vec::len))
                .saturating_add(job.dependencies.as_ref().map_or(0, Vec::len));
            if total > MAX_WEIGHT {
                if let Some(mark) = &def_mark {
                    self.sink.error(
                        mark,
                        &join_key(&join_key("jobs", &job.base_name), "needs"),
                        format!(
                            "needs on parallel jobs expand to more than {MAX_WEIGHT} entries; \
                             need fewer instances (`needs:parallel:matrix`) or reduce `parallel`"
                        ),
                    );
                }
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::ref_slug;

    #[test]
    fn slugs_like_gitlab() {
        assert_eq!(ref_slug("feature/Login_Page"), "feature-login-page");
        assert_eq!(ref_slug("v1.2.0"), "v1-2-0");
        assert_eq!(ref_slug("-/x/-"), "x");
        assert_eq!(ref_slug(&"a".repeat(100)).len(), 63);
    }
}
