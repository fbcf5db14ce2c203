//! Validation: the composed [`Node`] tree → [`Model`], with diagnostics.
//!
//! This is where GitLab keywords are known. Every key is checked against
//! the keywords allowed at its place, every value against its accepted
//! shapes, and cross-job references (`stage`, `needs`, `dependencies`,
//! `environment:on_stop`) against the other jobs. All problems are reported,
//! never only the first; the model is still built from what was valid so
//! that later checks can run. Ref-dependent logic (rules, only/except) is
//! not evaluated here, only parsed.

use std::collections::HashMap;

use crate::diagnostic::{join_index, join_key, Mark, Sink};
use crate::duration;
use crate::expr::Condition;
use crate::model::{
    AllowFailure, Artifacts, Cache, CacheKey, Changes, Duration, Environment, Image, Inherit,
    JobDef, Model, Need, Parallel, Policy, Report, Retry, Rule, Service, VariableDef, When,
    Workflow, MAX_WEIGHT,
};
use crate::plan::parallel_instances;
use crate::yaml::{Key, Node, Value};

/// Top-level keys that are keywords, not jobs.
const GLOBAL_KEYWORDS: &[&str] = &[
    "default",
    "include",
    "before_script",
    "image",
    "services",
    "after_script",
    "variables",
    "stages",
    "types",
    "cache",
    "workflow",
    "spec",
];

/// Job keys Forerunner reads.
const JOB_KEYS: &[&str] = &[
    "stage",
    "type",
    "script",
    "before_script",
    "after_script",
    "image",
    "services",
    "variables",
    "tags",
    "needs",
    "dependencies",
    "when",
    "start_in",
    "allow_failure",
    "rules",
    "only",
    "except",
    "artifacts",
    "cache",
    "timeout",
    "retry",
    "parallel",
    "interruptible",
    "environment",
    "coverage",
    "resource_group",
    "inherit",
    "extends",
];

/// Valid GitLab job keys that Forerunner accepts but does not act on.
const IGNORED_JOB_KEYS: &[&str] = &[
    "release",
    "pages",
    "secrets",
    "id_tokens",
    "hooks",
    "identity",
    "dast_configuration",
    "manual_confirmation",
    "publish",
];

/// Keys allowed under `default:`.
const DEFAULT_KEYS: &[&str] = &[
    "after_script",
    "artifacts",
    "before_script",
    "cache",
    "hooks",
    "id_tokens",
    "image",
    "interruptible",
    "retry",
    "services",
    "tags",
    "timeout",
];

const RETRY_WHEN: &[&str] = &[
    "always",
    "unknown_failure",
    "script_failure",
    "api_failure",
    "stuck_or_timeout_failure",
    "runner_system_failure",
    "runner_unsupported",
    "stale_schedule",
    "job_execution_timeout",
    "archived_failure",
    "unmet_prerequisites",
    "scheduler_failure",
    "data_integrity_failure",
];

const REPORT_KINDS: &[&str] = &[
    "junit",
    "coverage_report",
    "codequality",
    "sast",
    "dependency_scanning",
    "container_scanning",
    "dast",
    "license_scanning",
    "performance",
    "browser_performance",
    "load_performance",
    "metrics",
    "requirements",
    "requirements_v2",
    "secret_detection",
    "dotenv",
    "terraform",
    "accessibility",
    "cluster_image_scanning",
    "cyclonedx",
    "annotations",
    "api_fuzzing",
    "coverage_fuzzing",
    "repository_xray",
];

/// Longest timeout GitLab accepts (one month).
const MAX_TIMEOUT: u64 = 30 * 86_400;
/// Longest `start_in` GitLab accepts (one week).
const MAX_START_IN: u64 = 7 * 86_400;
/// Most jobs one `parallel` may create.
const MAX_PARALLEL: usize = 200;
/// How many `needs`/`dependencies` entries of one list are checked one by
/// one; longer lists are already an error and would only repeat it.
const MAX_CHECKED_REFERENCES: usize = 200;
/// Longest job name GitLab accepts.
const MAX_JOB_NAME: usize = 255;

/// True when a keyword's value looks like a job (a hash with `script`):
/// the author meant a job and picked a reserved name.
fn misused_keyword(root: &Node, key: &str) -> bool {
    key != "default" && root.get(key).is_some_and(|v| v.get("script").is_some())
}

/// True for top-level keys that are keywords rather than job names.
pub(crate) fn is_global_keyword(name: &str) -> bool {
    GLOBAL_KEYWORDS.contains(&name)
}

/// `default:` values, parsed once and copied into jobs.
#[derive(Default)]
struct Defaults {
    image: Option<Image>,
    services: Option<Vec<Service>>,
    before_script: Option<Vec<String>>,
    after_script: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    artifacts: Option<Artifacts>,
    cache: Option<Vec<Cache>>,
    retry: Option<Retry>,
    timeout: Option<Duration>,
    interruptible: Option<bool>,
    /// Whether `workflow:rules` exist (for the multiple-pipelines warning).
    workflow_rules: bool,
}

struct Ctx<'a> {
    sink: &'a mut Sink,
    /// Parsed expressions by source text: aliases can repeat one
    /// expression many times, and each parse compiles regexes.
    conditions: HashMap<String, Result<Condition, String>>,
}

/// Validates a composed configuration. Returns the model even when errors
/// were found (the caller decides from the diagnostics).
pub(crate) fn lint(root: &Node, sink: &mut Sink) -> Model {
    let mut cx = Ctx {
        sink,
        conditions: HashMap::new(),
    };
    cx.model(root)
}

fn closest<'k>(key: &str, candidates: &[&'k str]) -> Option<&'k str> {
    candidates
        .iter()
        .map(|c| (edit_distance(key, c), *c))
        .filter(|(d, c)| *d <= 2 && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Ctx<'_> {
    fn error(&mut self, mark: &Mark, path: &str, message: impl Into<String>) {
        self.sink.error(mark, path, message);
    }

    fn warning(&mut self, mark: &Mark, path: &str, message: impl Into<String>) {
        self.sink.warning(mark, path, message);
    }

    fn wrong_type(&mut self, node: &Node, path: &str, expected: &str) {
        let key = path.rsplit('.').next().unwrap_or(path);
        let key = key.split('[').next().unwrap_or(key);
        let hint = if expected.starts_with("a list") && matches!(node.value, Value::Str(_)) {
            "; write it as a list, e.g. [value] or one `- value` line per item"
        } else {
            ""
        };
        self.error(
            &node.mark,
            path,
            format!(
                "`{key}` must be {expected}, found {}{hint}",
                node.type_name()
            ),
        );
    }

    /// The entries of a hash, checking its keys. Keys in `allowed` are
    /// fine, keys in `ignored` get a warning, others an error.
    fn map<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        what: &str,
        allowed: &[&str],
        ignored: &[&str],
    ) -> Option<&'n [(Key, Node)]> {
        let Some(entries) = node.entries() else {
            self.wrong_type(node, path, what);
            return None;
        };
        for (k, _) in entries {
            if allowed.contains(&k.name.as_str()) {
                continue;
            }
            let kpath = join_key(path, &k.name);
            if ignored.contains(&k.name.as_str()) {
                self.warning(
                    &k.mark,
                    &kpath,
                    format!("`{}` is valid GitLab syntax but forerunner does not act on it; it is ignored", k.name),
                );
                continue;
            }
            let hint = match closest(&k.name, allowed) {
                Some(c) => format!("; did you mean `{c}`?"),
                None => format!("; allowed keys are {}", allowed.join(", ")),
            };
            self.error(&k.mark, &kpath, format!("unknown key `{}`{hint}", k.name));
        }
        Some(entries)
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(node, path, "a string");
                None
            }
        }
    }

    /// A string, accepting numbers the way Ruby's `to_s` would print them
    /// (for names such as `resource_group: 1` or tags like `- 2024`).
    fn stringish(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            _ => {
                self.wrong_type(node, path, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(node, path, "true or false");
                None
            }
        }
    }

    /// A list of strings; nested lists (from `!reference`) are flattened.
    fn strings(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let Value::Seq(items) = &node.value else {
            self.wrong_type(node, path, "a list of strings");
            return None;
        };
        let mut out = Vec::new();
        self.flatten_strings(items, path, &mut out, 0);
        Some(out)
    }

    fn flatten_strings(&mut self, items: &[Node], path: &str, out: &mut Vec<String>, depth: usize) {
        for (i, item) in items.iter().enumerate() {
            let ipath = join_index(path, i);
            match &item.value {
                Value::Str(s) => out.push(s.clone()),
                Value::Int(n) => out.push(n.to_string()),
                Value::Seq(inner) if depth < 10 => {
                    self.flatten_strings(inner, &ipath, out, depth + 1)
                }
                _ => self.wrong_type(item, &ipath, "a string"),
            }
        }
    }

    /// `script`, `before_script`, `after_script`: a string or a list of
    /// strings and nested lists, up to 10 levels.
    fn script(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        match &node.value {
            Value::Str(s) => Some(vec![s.clone()]),
            Value::Seq(items) => {
                let mut out = Vec::new();
                let before = self.sink.items.len();
                self.script_lines(items, path, &mut out, 0);
                (self.sink.items.len() == before).then_some(out)
            }
            _ => {
                self.wrong_type(node, path, "a string or a list of strings");
                None
            }
        }
    }

    fn script_lines(&mut self, items: &[Node], path: &str, out: &mut Vec<String>, depth: usize) {
        for (i, item) in items.iter().enumerate() {
            let ipath = join_index(path, i);
            match &item.value {
                Value::Str(s) => out.push(s.clone()),
                Value::Seq(inner) if depth < 9 => self.script_lines(inner, &ipath, out, depth + 1),
                Value::Seq(_) => self.error(
                    &item.mark,
                    &ipath,
                    "script lists are nested more than 10 levels deep; flatten them",
                ),
                Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Null => self.error(
                    &item.mark,
                    &ipath,
                    format!(
                        "script lines must be strings, found {}; quote the line, e.g. - \"echo 1\"",
                        item.type_name()
                    ),
                ),
                Value::Map(_) => self.error(
                    &item.mark,
                    &ipath,
                    "script lines must be strings, found a hash; a `key: value` line needs quotes, \
                     e.g. - 'echo \"key: value\"'",
                ),
                Value::Reference(_) => {}
            }
        }
    }

    fn duration(&mut self, node: &Node, path: &str, max: Option<u64>) -> Option<Duration> {
        let text = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) if *i >= 0 => i.to_string(),
            _ => {
                self.wrong_type(node, path, "a duration such as `1h 30m`");
                return None;
            }
        };
        let Some(seconds) = duration::parse(&text) else {
            self.error(
                &node.mark,
                path,
                format!(
                    "`{text}` is not a duration; write it like `30 minutes`, `1h 30m` or `2 days`"
                ),
            );
            return None;
        };
        if let Some(max) = max {
            if seconds > max {
                self.error(
                    &node.mark,
                    path,
                    format!("`{text}` is longer than the maximum of {}", human(max)),
                );
                return None;
            }
        }
        Some(Duration { text, seconds })
    }

    fn when(&mut self, node: &Node, path: &str, allowed: &[When]) -> Option<When> {
        let text = self.string(node, path)?;
        match When::parse(&text) {
            Some(w) if allowed.contains(&w) => Some(w),
            _ => {
                let names: Vec<&str> = allowed.iter().map(|w| w.as_str()).collect();
                self.error(
                    &node.mark,
                    path,
                    format!(
                        "`when: {text}` is not valid here; use one of {}",
                        names.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn condition(&mut self, node: &Node, path: &str) -> Option<Condition> {
        let text = self.string(node, path)?;
        let parsed = self
            .conditions
            .entry(text.clone())
            .or_insert_with(|| Condition::parse(&text))
            .clone();
        match parsed {
            Ok(c) => Some(c),
            Err(e) => {
                self.error(
                    &node.mark,
                    path,
                    format!("invalid expression `{text}`: {e}"),
                );
                None
            }
        }
    }

    fn model(&mut self, root: &Node) -> Model {
        let mut model = Model {
            stages: Vec::new(),
            variables: Vec::new(),
            workflow: Workflow::default(),
            jobs: Vec::new(),
        };
        let entries = match &root.value {
            Value::Map(entries) => entries.as_slice(),
            Value::Null => {
                self.error(
                    &root.mark,
                    "",
                    "the configuration is empty; define at least one job with a `script`",
                );
                &[]
            }
            _ => {
                self.error(
                    &root.mark,
                    "",
                    format!(
                        "the configuration must be a hash of jobs and keywords, found {}",
                        root.type_name()
                    ),
                );
                &[]
            }
        };

        // Stages.
        let mut declared = vec!["build".to_owned(), "test".to_owned(), "deploy".to_owned()];
        let stages_node = root.get("stages");
        if let Some(types) = root.get("types") {
            self.warning(
                &types.mark,
                "types",
                "`types` is deprecated; rename it to `stages`",
            );
        }
        if let Some(node) = stages_node.or_else(|| root.get("types")) {
            let path = if stages_node.is_some() {
                "stages"
            } else {
                "types"
            };
            if let Some(list) = self.strings(node, path) {
                declared = Vec::new();
                for s in list {
                    if !declared.contains(&s) && s != ".pre" && s != ".post" {
                        declared.push(s);
                    }
                }
            }
        }
        model.stages.push(".pre".to_owned());
        model.stages.extend(declared);
        model.stages.push(".post".to_owned());

        if let Some(node) = root
            .get("variables")
            .filter(|_| !misused_keyword(root, "variables"))
        {
            model.variables = self.variables(node, "variables", true);
        }
        if let Some(node) = root.get("workflow") {
            model.workflow = self.workflow(node);
        }
        if let Some(node) = root.get("spec") {
            self.warning(
                &node.mark,
                "spec",
                "`spec:inputs` are not supported; the header is ignored",
            );
        }
        let mut defaults = self.defaults(root);
        defaults.workflow_rules = model.workflow.rules.is_some();

        let mut seen_jobs = 0;
        let mut weight: usize = 0;
        for (key, node) in entries {
            if is_global_keyword(&key.name) {
                if let Value::Map(_) = node.value {
                    if node.get("script").is_some() && key.name != "default" {
                        self.error(
                            &key.mark,
                            &key.name,
                            format!(
                                "`{}` is a reserved keyword and cannot be used as a job name; rename the job",
                                key.name
                            ),
                        );
                    }
                }
                continue;
            }
            let path = join_key("jobs", &key.name);
            if key.name.starts_with('.') {
                continue;
            }
            if key.name.trim().is_empty() {
                self.error(
                    &key.mark,
                    &path,
                    "job names must not be empty; name the job",
                );
                continue;
            }
            if key.name.chars().count() > MAX_JOB_NAME {
                self.error(
                    &key.mark,
                    &path,
                    format!("job names are limited to {MAX_JOB_NAME} characters; shorten it"),
                );
                continue;
            }
            if !matches!(node.value, Value::Map(_)) {
                let hint = match closest(&key.name, GLOBAL_KEYWORDS) {
                    Some(k) => format!("; did you mean the keyword `{k}`?"),
                    None => "; a job is a hash with at least a `script`".to_owned(),
                };
                self.error(
                    &key.mark,
                    &path,
                    format!(
                        "`{}` is not a keyword, so it is read as a job, but its value is {}{hint}",
                        key.name,
                        node.type_name()
                    ),
                );
                continue;
            }
            seen_jobs += 1;
            if let Some(job) = self.job(&key.name, key, node, &path, &model.stages, &defaults) {
                weight = weight.saturating_add(job.weight());
                if weight > MAX_WEIGHT {
                    self.error(
                        &key.mark,
                        &path,
                        format!(
                            "the jobs hold more than {MAX_WEIGHT} script lines and values in total \
                             (aliases and `default:` are copied into every job); share less"
                        ),
                    );
                    break;
                }
                model.jobs.push(job);
            }
        }
        if seen_jobs == 0 && !matches!(root.value, Value::Null) && root.entries().is_some() {
            self.error(
                &Mark::start_of(&root.mark.file),
                "",
                "the configuration has no visible jobs; add a job whose name does not start with a dot",
            );
        }
        self.cross_checks(&model, root);
        model
    }

    fn workflow(&mut self, node: &Node) -> Workflow {
        let mut workflow = Workflow::default();
        let Some(entries) = self.map(
            node,
            "workflow",
            "a hash",
            &["rules", "name", "auto_cancel"],
            &[],
        ) else {
            return workflow;
        };
        for (k, v) in entries {
            let path = join_key("workflow", &k.name);
            match k.name.as_str() {
                "name" => workflow.name = self.string(v, &path),
                "rules" => workflow.rules = self.rules(v, &path, true),
                "auto_cancel" => self.warning(
                    &k.mark,
                    &path,
                    "`workflow:auto_cancel` is not acted on; pipelines are not auto-cancelled",
                ),
                _ => {}
            }
        }
        workflow
    }

    fn defaults(&mut self, root: &Node) -> Defaults {
        let mut d = Defaults::default();
        if let Some(node) = root.get("default") {
            if let Some(entries) = self.map(node, "default", "a hash", DEFAULT_KEYS, &[]) {
                for (k, v) in entries {
                    let path = join_key("default", &k.name);
                    self.default_entry(&mut d, &k.name, v, &path);
                }
            }
        }
        // Top-level image, services, scripts and cache are the pre-`default:`
        // spelling of the same settings.
        for key in [
            "image",
            "services",
            "before_script",
            "after_script",
            "cache",
        ] {
            if let Some(v) = root.get(key).filter(|_| !misused_keyword(root, key)) {
                self.warning(
                    &v.mark,
                    key,
                    format!("top-level `{key}` is deprecated; move it under `default:`"),
                );
                let present = match key {
                    "image" => d.image.is_some(),
                    "services" => d.services.is_some(),
                    "before_script" => d.before_script.is_some(),
                    "after_script" => d.after_script.is_some(),
                    _ => d.cache.is_some(),
                };
                if !present {
                    self.default_entry(&mut d, key, v, key);
                }
            }
        }
        d
    }

    fn default_entry(&mut self, d: &mut Defaults, key: &str, v: &Node, path: &str) {
        match key {
            "image" => d.image = self.image(v, path),
            "services" => d.services = self.services(v, path),
            "before_script" => d.before_script = self.script(v, path),
            "after_script" => d.after_script = self.script(v, path),
            "tags" => d.tags = self.strings(v, path),
            "artifacts" => d.artifacts = self.artifacts(v, path),
            "cache" => d.cache = self.caches(v, path),
            "retry" => d.retry = self.retry(v, path),
            "timeout" => d.timeout = self.duration(v, path, Some(MAX_TIMEOUT)),
            "interruptible" => d.interruptible = self.boolean(v, path),
            "hooks" | "id_tokens" => self.warning(
                &v.mark,
                path,
                format!("`{key}` is valid GitLab syntax but forerunner does not act on it; it is ignored"),
            ),
            _ => {}
        }
    }

    fn variables(&mut self, node: &Node, path: &str, global: bool) -> Vec<VariableDef> {
        let Some(entries) = node.entries() else {
            if !matches!(node.value, Value::Null) {
                self.wrong_type(node, path, "a hash of `NAME: value` pairs");
            }
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let vpath = join_key(path, &k.name);
            let valid_name = !k.name.is_empty()
                && k.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_name {
                self.warning(
                    &k.mark,
                    &vpath,
                    format!(
                        "`{}` is not a valid shell variable name, so scripts cannot read it; \
                         use letters, digits and underscores",
                        k.name
                    ),
                );
            }
            let mut def = VariableDef {
                key: k.name.clone(),
                value: String::new(),
                expand: true,
                description: None,
                options: Vec::new(),
            };
            let value_node = match &v.value {
                Value::Map(_) => {
                    let allowed: &[&str] = if global {
                        &["value", "description", "expand", "options"]
                    } else {
                        &["value", "expand"]
                    };
                    let Some(fields) = self.map(v, &vpath, "a hash", allowed, &[]) else {
                        continue;
                    };
                    let mut value_node = None;
                    for (fk, fv) in fields {
                        let fpath = join_key(&vpath, &fk.name);
                        match fk.name.as_str() {
                            "value" => value_node = Some(fv),
                            "description" => def.description = self.string(fv, &fpath),
                            "expand" => def.expand = self.boolean(fv, &fpath).unwrap_or(true),
                            "options" => def.options = self.strings(fv, &fpath).unwrap_or_default(),
                            _ => {}
                        }
                    }
                    value_node
                }
                _ => Some(v),
            };
            if let Some(value) = value_node {
                let vp = if matches!(v.value, Value::Map(_)) {
                    join_key(&vpath, "value")
                } else {
                    vpath.clone()
                };
                match &value.value {
                    Value::Str(s) => def.value = s.clone(),
                    Value::Int(i) => def.value = i.to_string(),
                    // GitLab accepts any scalar and stores Ruby's `to_s`.
                    Value::Bool(b) => def.value = b.to_string(),
                    Value::Float(f) => {
                        def.value = ruby_float(*f);
                        self.warning(
                            &value.mark,
                            &vp,
                            format!(
                                "the unquoted value is read as the number {}; quote it if you meant the text, \
                                 e.g. {}: \"…\"",
                                def.value, k.name
                            ),
                        );
                    }
                    Value::Null => {
                        self.error(
                            &value.mark,
                            &vp,
                            format!(
                                "variable `{}` has no value; write {}: \"\" for an empty one",
                                k.name, k.name
                            ),
                        );
                        continue;
                    }
                    _ => {
                        self.wrong_type(value, &vp, "a string");
                        continue;
                    }
                }
            } else if !global {
                self.error(&v.mark, &vpath, "variable hash needs a `value`");
                continue;
            }
            if !def.options.is_empty() && !def.options.contains(&def.value) {
                self.error(
                    &v.mark,
                    &vpath,
                    format!(
                        "the value of `{}` must be one of its `options` ({}); pick one of them",
                        k.name,
                        def.options.join(", ")
                    ),
                );
            }
            out.push(def);
        }
        out
    }

    fn image(&mut self, node: &Node, path: &str) -> Option<Image> {
        match &node.value {
            Value::Str(s) => Some(Image {
                name: s.clone(),
                entrypoint: None,
                pull_policy: Vec::new(),
                platform: None,
                user: None,
            }),
            Value::Map(_) => {
                let entries = self.map(
                    node,
                    path,
                    "a string or a hash",
                    &["name", "entrypoint", "pull_policy", "docker", "kubernetes"],
                    &[],
                )?;
                let mut image = Image {
                    name: String::new(),
                    entrypoint: None,
                    pull_policy: Vec::new(),
                    platform: None,
                    user: None,
                };
                let mut has_name = false;
                for (k, v) in entries {
                    let p = join_key(path, &k.name);
                    match k.name.as_str() {
                        "name" => {
                            if let Some(n) = self.string(v, &p) {
                                image.name = n;
                                has_name = true;
                            }
                        }
                        "entrypoint" => image.entrypoint = self.strings(v, &p),
                        "pull_policy" => image.pull_policy = self.pull_policy(v, &p),
                        "docker" => {
                            if let Some(fields) =
                                self.map(v, &p, "a hash", &["platform", "user"], &[])
                            {
                                for (fk, fv) in fields {
                                    let fp = join_key(&p, &fk.name);
                                    match fk.name.as_str() {
                                        "platform" => image.platform = self.string(fv, &fp),
                                        "user" => image.user = self.string(fv, &fp),
                                        _ => {}
                                    }
                                }
                            }
                        }
                        "kubernetes" => {
                            self.warning(&k.mark, &p, "`kubernetes` image options are ignored")
                        }
                        _ => {}
                    }
                }
                if !has_name {
                    self.error(
                        &node.mark,
                        path,
                        "the image hash needs a `name`, e.g. name: alpine:3.20",
                    );
                    return None;
                }
                Some(image)
            }
            _ => {
                self.wrong_type(node, path, "an image name or a hash with `name`");
                None
            }
        }
    }

    fn pull_policy(&mut self, node: &Node, path: &str) -> Vec<String> {
        let list = match &node.value {
            Value::Str(s) => vec![s.clone()],
            _ => self.strings(node, path).unwrap_or_default(),
        };
        for p in &list {
            if !["always", "never", "if-not-present"].contains(&p.as_str()) {
                self.error(
                    &node.mark,
                    path,
                    format!("unknown pull policy `{p}`; use always, never or if-not-present"),
                );
            }
        }
        list
    }

    fn services(&mut self, node: &Node, path: &str) -> Option<Vec<Service>> {
        let Value::Seq(items) = &node.value else {
            self.wrong_type(node, path, "a list of services");
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = join_index(path, i);
            match &item.value {
                Value::Str(s) => out.push(Service {
                    name: s.clone(),
                    alias: None,
                    entrypoint: None,
                    command: None,
                    variables: Vec::new(),
                    pull_policy: Vec::new(),
                }),
                Value::Map(_) => {
                    let Some(entries) = self.map(
                        item,
                        &p,
                        "a hash",
                        &[
                            "name",
                            "alias",
                            "entrypoint",
                            "command",
                            "variables",
                            "pull_policy",
                            "docker",
                            "kubernetes",
                        ],
                        &[],
                    ) else {
                        continue;
                    };
                    let mut service = Service {
                        name: String::new(),
                        alias: None,
                        entrypoint: None,
                        command: None,
                        variables: Vec::new(),
                        pull_policy: Vec::new(),
                    };
                    for (k, v) in entries {
                        let kp = join_key(&p, &k.name);
                        match k.name.as_str() {
                            "name" => service.name = self.string(v, &kp).unwrap_or_default(),
                            "alias" => service.alias = self.string(v, &kp),
                            "entrypoint" => service.entrypoint = self.strings(v, &kp),
                            "command" => service.command = self.strings(v, &kp),
                            "variables" => service.variables = self.variables(v, &kp, false),
                            "pull_policy" => service.pull_policy = self.pull_policy(v, &kp),
                            _ => {}
                        }
                    }
                    if service.name.is_empty() {
                        self.error(
                            &item.mark,
                            &p,
                            "the service hash needs a `name`, e.g. name: postgres:16",
                        );
                        continue;
                    }
                    out.push(service);
                }
                _ => self.wrong_type(item, &p, "a service name or a hash with `name`"),
            }
        }
        Some(out)
    }

    fn artifacts(&mut self, node: &Node, path: &str) -> Option<Artifacts> {
        let entries = self.map(
            node,
            path,
            "a hash",
            &[
                "paths",
                "exclude",
                "name",
                "untracked",
                "when",
                "expire_in",
                "expose_as",
                "reports",
                "public",
                "access",
            ],
            &[],
        )?;
        let mut a = Artifacts::default();
        for (k, v) in entries {
            let p = join_key(path, &k.name);
            match k.name.as_str() {
                "paths" => a.paths = self.strings(v, &p).unwrap_or_default(),
                "exclude" => a.exclude = self.strings(v, &p).unwrap_or_default(),
                "name" => a.name = self.stringish(v, &p),
                "untracked" => a.untracked = self.boolean(v, &p).unwrap_or(false),
                "when" => {
                    a.when = self.when(v, &p, &[When::OnSuccess, When::OnFailure, When::Always])
                }
                "expire_in" => {
                    a.expire_in = match &v.value {
                        Value::Str(s) if s == "never" => Some(Duration {
                            text: "never".into(),
                            seconds: 0,
                        }),
                        _ => self.duration(v, &p, None),
                    }
                }
                "expose_as" => a.expose_as = self.string(v, &p),
                "public" => a.public = self.boolean(v, &p),
                "access" => {
                    if let Some(s) = self.string(v, &p) {
                        if !["all", "developer", "none"].contains(&s.as_str()) {
                            self.error(&v.mark, &p, "`access` must be all, developer or none");
                        }
                    }
                }
                "reports" => a.reports = self.reports(v, &p),
                _ => {}
            }
        }
        if a.expose_as.is_some() && a.paths.is_empty() {
            self.error(
                &node.mark,
                path,
                "`expose_as` needs `paths`; list the files to expose",
            );
        }
        Some(a)
    }

    fn reports(&mut self, node: &Node, path: &str) -> Vec<Report> {
        let Some(entries) = self.map(node, path, "a hash of report types", REPORT_KINDS, &[])
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            if !REPORT_KINDS.contains(&k.name.as_str()) {
                continue;
            }
            let p = join_key(path, &k.name);
            if k.name == "coverage_report" {
                let Some(fields) = self.map(
                    v,
                    &p,
                    "a hash with `coverage_format` and `path`",
                    &["coverage_format", "path"],
                    &[],
                ) else {
                    continue;
                };
                let mut format = None;
                let mut paths = Vec::new();
                for (fk, fv) in fields {
                    let fp = join_key(&p, &fk.name);
                    match fk.name.as_str() {
                        "coverage_format" => {
                            format = self.string(fv, &fp);
                            if let Some(f) = &format {
                                if f != "cobertura" && f != "jacoco" {
                                    self.error(
                                        &fv.mark,
                                        &fp,
                                        "`coverage_format` must be cobertura or jacoco",
                                    );
                                }
                            }
                        }
                        "path" => paths = self.string(fv, &fp).into_iter().collect(),
                        _ => {}
                    }
                }
                if format.is_none() || paths.is_empty() {
                    self.error(
                        &v.mark,
                        &p,
                        "`coverage_report` needs both `coverage_format` and `path`",
                    );
                }
                out.push(Report {
                    kind: k.name.clone(),
                    paths,
                    format,
                });
                continue;
            }
            let paths = match &v.value {
                Value::Str(s) => vec![s.clone()],
                _ => self.strings(v, &p).unwrap_or_default(),
            };
            out.push(Report {
                kind: k.name.clone(),
                paths,
                format: None,
            });
        }
        out
    }

    fn caches(&mut self, node: &Node, path: &str) -> Option<Vec<Cache>> {
        let items: Vec<(String, &Node)> = match &node.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (join_index(path, i), n))
                .collect(),
            Value::Map(_) => vec![(path.to_owned(), node)],
            _ => {
                self.wrong_type(node, path, "a hash or a list of hashes");
                return None;
            }
        };
        if items.len() > 4 {
            self.error(
                &node.mark,
                path,
                "a job can have at most 4 caches; merge some of them",
            );
        }
        let mut out = Vec::new();
        for (p, item) in items {
            if let Some(c) = self.cache(item, &p) {
                out.push(c);
            }
        }
        Some(out)
    }

    fn cache(&mut self, node: &Node, path: &str) -> Option<Cache> {
        let entries = self.map(
            node,
            path,
            "a hash",
            &[
                "key",
                "paths",
                "untracked",
                "unprotect",
                "policy",
                "when",
                "fallback_keys",
            ],
            &[],
        )?;
        let mut c = Cache {
            key: CacheKey::Literal("default".into()),
            paths: Vec::new(),
            untracked: false,
            unprotect: false,
            policy: "pull-push".into(),
            when: When::OnSuccess,
            fallback_keys: Vec::new(),
        };
        for (k, v) in entries {
            let p = join_key(path, &k.name);
            match k.name.as_str() {
                "key" => {
                    match &v.value {
                        Value::Str(_) | Value::Int(_) => {
                            let key = self.stringish(v, &p).unwrap_or_default();
                            if key.contains('/') || key == "." || key == ".." || key.contains("%2F")
                            {
                                self.error(&v.mark, &p, "cache keys cannot contain `/` or be `.` or `..`; use `-` instead");
                            }
                            c.key = CacheKey::Literal(key);
                        }
                        Value::Map(_) => {
                            let Some(fields) = self.map(v, &p, "a hash", &["files", "prefix"], &[])
                            else {
                                continue;
                            };
                            let mut files = Vec::new();
                            let mut prefix = None;
                            for (fk, fv) in fields {
                                let fp = join_key(&p, &fk.name);
                                match fk.name.as_str() {
                                    "files" => files = self.strings(fv, &fp).unwrap_or_default(),
                                    "prefix" => prefix = self.stringish(fv, &fp),
                                    _ => {}
                                }
                            }
                            if files.is_empty() || files.len() > 2 {
                                self.error(
                                    &v.mark,
                                    &join_key(&p, "files"),
                                    "`cache:key:files` takes one or two files",
                                );
                            }
                            c.key = CacheKey::Files { files, prefix };
                        }
                        _ => self.wrong_type(v, &p, "a string or a hash with `files`"),
                    }
                }
                "paths" => c.paths = self.strings(v, &p).unwrap_or_default(),
                "untracked" => c.untracked = self.boolean(v, &p).unwrap_or(false),
                "unprotect" => c.unprotect = self.boolean(v, &p).unwrap_or(false),
                "policy" => {
                    if let Some(s) = self.string(v, &p) {
                        if !["pull", "push", "pull-push"].contains(&s.as_str()) && !s.contains('$')
                        {
                            self.error(
                                &v.mark,
                                &p,
                                format!("unknown cache policy `{s}`; use pull, push or pull-push"),
                            );
                        }
                        c.policy = s;
                    }
                }
                "when" => {
                    c.when = self
                        .when(v, &p, &[When::OnSuccess, When::OnFailure, When::Always])
                        .unwrap_or(When::OnSuccess)
                }
                "fallback_keys" => c.fallback_keys = self.strings(v, &p).unwrap_or_default(),
                _ => {}
            }
        }
        Some(c)
    }

    fn retry(&mut self, node: &Node, path: &str) -> Option<Retry> {
        let check_max = |cx: &mut Self, n: &Node, p: &str| -> Option<u8> {
            match n.value {
                Value::Int(i) if (0..=2).contains(&i) => Some(i as u8),
                Value::Int(_) => {
                    cx.error(
                        &n.mark,
                        p,
                        "`retry` must be between 0 and 2, the most GitLab allows",
                    );
                    None
                }
                _ => {
                    cx.wrong_type(n, p, "an integer between 0 and 2");
                    None
                }
            }
        };
        match &node.value {
            Value::Int(_) => Some(Retry {
                max: check_max(self, node, path)?,
                ..Retry::default()
            }),
            Value::Map(_) => {
                let entries =
                    self.map(node, path, "a hash", &["max", "when", "exit_codes"], &[])?;
                let mut r = Retry::default();
                for (k, v) in entries {
                    let p = join_key(path, &k.name);
                    match k.name.as_str() {
                        "max" => r.max = check_max(self, v, &p).unwrap_or(0),
                        "when" => {
                            let list = match &v.value {
                                Value::Str(s) => vec![s.clone()],
                                _ => self.strings(v, &p).unwrap_or_default(),
                            };
                            for w in &list {
                                if !RETRY_WHEN.contains(&w.as_str()) {
                                    let hint = closest(w, RETRY_WHEN)
                                        .map(|c| format!("; did you mean `{c}`?"))
                                        .unwrap_or_default();
                                    self.error(
                                        &v.mark,
                                        &p,
                                        format!("unknown retry reason `{w}`{hint}"),
                                    );
                                }
                            }
                            r.when = list;
                        }
                        "exit_codes" => r.exit_codes = self.ints(v, &p),
                        _ => {}
                    }
                }
                Some(r)
            }
            _ => {
                self.wrong_type(node, path, "an integer or a hash with `max`");
                None
            }
        }
    }

    fn ints(&mut self, node: &Node, path: &str) -> Vec<i64> {
        match &node.value {
            Value::Int(i) => vec![*i],
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, n)| match n.value {
                    Value::Int(v) => Some(v),
                    _ => {
                        self.wrong_type(n, &join_index(path, i), "an integer");
                        None
                    }
                })
                .collect(),
            _ => {
                self.wrong_type(node, path, "an integer or a list of integers");
                Vec::new()
            }
        }
    }

    fn needs(&mut self, node: &Node, path: &str) -> Option<Vec<Need>> {
        let Value::Seq(items) = &node.value else {
            self.wrong_type(node, path, "a list of job names");
            return None;
        };
        let mut out = Vec::new();
        let mut flat: Vec<(String, &Node)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match &item.value {
                // Nested lists come from `!reference` and are flattened.
                Value::Seq(inner) => {
                    for (j, n) in inner.iter().enumerate() {
                        flat.push((join_index(&join_index(path, i), j), n));
                    }
                }
                _ => flat.push((join_index(path, i), item)),
            }
        }
        for (p, item) in flat {
            match &item.value {
                Value::Str(s) => out.push(Need {
                    job: s.clone(),
                    artifacts: true,
                    optional: false,
                    matrix: Vec::new(),
                }),
                Value::Map(_) => {
                    let Some(entries) = self.map(
                        item,
                        &p,
                        "a hash",
                        &[
                            "job",
                            "artifacts",
                            "optional",
                            "parallel",
                            "pipeline",
                            "project",
                            "ref",
                        ],
                        &[],
                    ) else {
                        continue;
                    };
                    if item.get("pipeline").is_some() || item.get("project").is_some() {
                        self.warning(
                            &item.mark,
                            &p,
                            "cross-pipeline and cross-project `needs` are not supported; the need is ignored",
                        );
                        continue;
                    }
                    let mut need = Need {
                        job: String::new(),
                        artifacts: true,
                        optional: false,
                        matrix: Vec::new(),
                    };
                    for (k, v) in entries {
                        let kp = join_key(&p, &k.name);
                        match k.name.as_str() {
                            "job" => need.job = self.string(v, &kp).unwrap_or_default(),
                            "artifacts" => need.artifacts = self.boolean(v, &kp).unwrap_or(true),
                            "optional" => need.optional = self.boolean(v, &kp).unwrap_or(false),
                            "parallel" => {
                                if let Some(Parallel::Matrix(m)) = self.parallel(v, &kp) {
                                    need.matrix = m;
                                } else {
                                    self.error(&v.mark, &kp, "`needs:parallel` takes a `matrix`");
                                }
                            }
                            _ => {}
                        }
                    }
                    if need.job.is_empty() {
                        self.error(&item.mark, &p, "a need hash requires `job: name`");
                        continue;
                    }
                    out.push(need);
                }
                _ => self.wrong_type(item, &p, "a job name or a hash with `job`"),
            }
        }
        if out.len() > 50 {
            self.error(&node.mark, path, "a job can need at most 50 jobs");
        }
        Some(out)
    }

    fn parallel(&mut self, node: &Node, path: &str) -> Option<Parallel> {
        match &node.value {
            Value::Int(n) => {
                if (1..=MAX_PARALLEL as i64).contains(n) {
                    Some(Parallel::Count(*n as u32))
                } else {
                    self.error(
                        &node.mark,
                        path,
                        format!("`parallel` must be between 1 and {MAX_PARALLEL}"),
                    );
                    None
                }
            }
            Value::Map(_) => {
                let entries = self.map(
                    node,
                    path,
                    "an integer or a hash with `matrix`",
                    &["matrix"],
                    &[],
                )?;
                let (_, matrix) = entries.iter().find(|(k, _)| k.name == "matrix")?;
                let mpath = join_key(path, "matrix");
                let Value::Seq(rows) = &matrix.value else {
                    self.wrong_type(matrix, &mpath, "a list of hashes");
                    return None;
                };
                let mut out = Vec::new();
                let mut total: usize = 0;
                for (i, row) in rows.iter().enumerate() {
                    let rpath = join_index(&mpath, i);
                    let Some(entries) = row.entries() else {
                        self.wrong_type(row, &rpath, "a hash of variables");
                        continue;
                    };
                    let mut vars = Vec::new();
                    let mut combos: usize = 1;
                    for (k, v) in entries {
                        let vp = join_key(&rpath, &k.name);
                        let values = match &v.value {
                            Value::Str(s) => vec![s.clone()],
                            Value::Int(i) => vec![i.to_string()],
                            Value::Seq(_) => self.strings(v, &vp).unwrap_or_default(),
                            _ => {
                                self.wrong_type(v, &vp, "a string or a list of strings");
                                continue;
                            }
                        };
                        if values.is_empty() {
                            self.error(
                                &v.mark,
                                &vp,
                                "matrix values must not be empty; list at least one value",
                            );
                            continue;
                        }
                        combos = combos.saturating_mul(values.len());
                        vars.push((k.name.clone(), values));
                    }
                    if entries.is_empty() {
                        self.error(
                            &row.mark,
                            &rpath,
                            "a matrix entry needs at least one variable, e.g. - PROVIDER: [aws, gcp]",
                        );
                        continue;
                    }
                    if vars.is_empty() {
                        continue;
                    }
                    total = total.saturating_add(combos);
                    out.push(vars);
                }
                if total > MAX_PARALLEL {
                    self.error(
                        &matrix.mark,
                        &mpath,
                        format!(
                            "the matrix expands to {total} jobs; the maximum is {MAX_PARALLEL}"
                        ),
                    );
                    return None;
                }
                if out.is_empty() {
                    return None;
                }
                Some(Parallel::Matrix(out))
            }
            _ => {
                self.wrong_type(node, path, "an integer or a hash with `matrix`");
                None
            }
        }
    }

    fn environment(&mut self, node: &Node, path: &str) -> Option<Environment> {
        let mut env = Environment {
            name: String::new(),
            url: None,
            action: "start".into(),
            on_stop: None,
            auto_stop_in: None,
            deployment_tier: None,
        };
        match &node.value {
            Value::Str(s) => {
                env.name = s.clone();
                return Some(env);
            }
            Value::Map(_) => {}
            _ => {
                self.wrong_type(node, path, "an environment name or a hash with `name`");
                return None;
            }
        }
        let entries = self.map(
            node,
            path,
            "a hash",
            &[
                "name",
                "url",
                "action",
                "on_stop",
                "auto_stop_in",
                "kubernetes",
                "deployment_tier",
            ],
            &[],
        )?;
        for (k, v) in entries {
            let p = join_key(path, &k.name);
            match k.name.as_str() {
                "name" => env.name = self.string(v, &p).unwrap_or_default(),
                "url" => env.url = self.string(v, &p),
                "action" => {
                    if let Some(a) = self.string(v, &p) {
                        if !["start", "prepare", "stop", "verify", "access"].contains(&a.as_str()) {
                            self.error(&v.mark, &p, format!("unknown environment action `{a}`; use start, prepare, stop, verify or access"));
                        }
                        env.action = a;
                    }
                }
                "on_stop" => env.on_stop = self.string(v, &p),
                "auto_stop_in" => {
                    env.auto_stop_in = match &v.value {
                        Value::Str(s) if s == "never" => Some(s.clone()),
                        _ => self.duration(v, &p, None).map(|d| d.text),
                    }
                }
                "deployment_tier" => {
                    if let Some(t) = self.string(v, &p) {
                        if !["production", "staging", "testing", "development", "other"]
                            .contains(&t.as_str())
                        {
                            self.error(&v.mark, &p, format!("unknown deployment tier `{t}`; use production, staging, testing, development or other"));
                        }
                        env.deployment_tier = Some(t);
                    }
                }
                "kubernetes" => self.warning(&k.mark, &p, "`environment:kubernetes` is ignored"),
                _ => {}
            }
        }
        if env.name.is_empty() {
            self.error(
                &node.mark,
                path,
                "the environment hash needs a `name`, e.g. name: review/$CI_COMMIT_REF_SLUG",
            );
            return None;
        }
        Some(env)
    }

    fn rules(&mut self, node: &Node, path: &str, workflow: bool) -> Option<Vec<Rule>> {
        let Value::Seq(items) = &node.value else {
            self.wrong_type(node, path, "a list of rules");
            return None;
        };
        // Nested lists come from `!reference` and are flattened once.
        let mut flat: Vec<(String, &Node)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match &item.value {
                Value::Seq(inner) => {
                    for (j, n) in inner.iter().enumerate() {
                        flat.push((join_index(&join_index(path, i), j), n));
                    }
                }
                _ => flat.push((join_index(path, i), item)),
            }
        }
        let allowed: &[&str] = if workflow {
            &[
                "if",
                "changes",
                "exists",
                "when",
                "variables",
                "auto_cancel",
            ]
        } else {
            &[
                "if",
                "changes",
                "exists",
                "when",
                "start_in",
                "allow_failure",
                "variables",
                "needs",
                "interruptible",
            ]
        };
        let whens: &[When] = if workflow {
            &[When::Always, When::Never]
        } else {
            &[
                When::OnSuccess,
                When::OnFailure,
                When::Always,
                When::Manual,
                When::Delayed,
                When::Never,
            ]
        };
        let mut out = Vec::new();
        for (p, item) in flat {
            let Some(entries) = self.map(item, &p, "a hash", allowed, &[]) else {
                continue;
            };
            let mut rule = Rule {
                condition: None,
                changes: None,
                exists: None,
                when: None,
                start_in: None,
                allow_failure: None,
                variables: Vec::new(),
                needs: None,
                interruptible: None,
            };
            for (k, v) in entries {
                let kp = join_key(&p, &k.name);
                match k.name.as_str() {
                    "if" => rule.condition = self.condition(v, &kp),
                    "changes" => rule.changes = self.changes(v, &kp),
                    "exists" => rule.exists = self.exists(v, &kp),
                    "when" => rule.when = self.when(v, &kp, whens),
                    "start_in" => rule.start_in = self.duration(v, &kp, Some(MAX_START_IN)),
                    "allow_failure" => rule.allow_failure = self.boolean(v, &kp),
                    "variables" => rule.variables = self.variables(v, &kp, false),
                    "needs" => rule.needs = self.needs(v, &kp),
                    "interruptible" => rule.interruptible = self.boolean(v, &kp),
                    "auto_cancel" => self.warning(&k.mark, &kp, "`auto_cancel` is not acted on"),
                    _ => {}
                }
            }
            if rule.when == Some(When::Delayed) && item.get("start_in").is_none() {
                self.error(
                    &item.mark,
                    &p,
                    "`when: delayed` needs `start_in`, e.g. start_in: 30 minutes",
                );
            }
            if !workflow && item.get("start_in").is_some() && rule.when != Some(When::Delayed) {
                self.error(
                    &item.mark,
                    &p,
                    "`start_in` is only valid with `when: delayed`; add `when: delayed` or remove `start_in`",
                );
            }
            out.push(rule);
        }
        Some(out)
    }

    fn changes(&mut self, node: &Node, path: &str) -> Option<Changes> {
        match &node.value {
            Value::Seq(_) => Some(Changes {
                paths: self.strings(node, path)?,
                compare_to: None,
            }),
            Value::Map(_) => {
                let entries = self.map(node, path, "a hash", &["paths", "compare_to"], &[])?;
                let mut c = Changes {
                    paths: Vec::new(),
                    compare_to: None,
                };
                let mut has_paths = false;
                for (k, v) in entries {
                    let p = join_key(path, &k.name);
                    match k.name.as_str() {
                        "paths" => {
                            c.paths = self.strings(v, &p).unwrap_or_default();
                            has_paths = true;
                        }
                        "compare_to" => c.compare_to = self.string(v, &p),
                        _ => {}
                    }
                }
                if !has_paths {
                    self.error(
                        &node.mark,
                        path,
                        "`changes` with `compare_to` also needs `paths`",
                    );
                }
                Some(c)
            }
            _ => {
                self.wrong_type(node, path, "a list of paths or a hash with `paths`");
                None
            }
        }
    }

    fn exists(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        match &node.value {
            Value::Seq(_) => self.strings(node, path),
            Value::Map(_) => {
                let entries = self.map(node, path, "a hash", &["paths", "project", "ref"], &[])?;
                let mut paths = Vec::new();
                for (k, v) in entries {
                    let p = join_key(path, &k.name);
                    match k.name.as_str() {
                        "paths" => paths = self.strings(v, &p).unwrap_or_default(),
                        _ => self.warning(
                            &k.mark,
                            &p,
                            format!(
                                "`exists:{}` is ignored: files are looked up in this project",
                                k.name
                            ),
                        ),
                    }
                }
                Some(paths)
            }
            _ => {
                self.wrong_type(node, path, "a list of paths or a hash with `paths`");
                None
            }
        }
    }

    fn policy(&mut self, node: &Node, path: &str) -> Option<Policy> {
        match &node.value {
            Value::Str(_) | Value::Seq(_) => {
                let refs = match &node.value {
                    Value::Str(s) => vec![s.clone()],
                    _ => self.strings(node, path)?,
                };
                self.check_refs(&refs, node, path);
                Some(Policy {
                    refs: Some(refs),
                    ..Policy::default()
                })
            }
            Value::Map(_) => {
                let entries = self.map(
                    node,
                    path,
                    "a hash",
                    &["refs", "variables", "changes", "kubernetes"],
                    &[],
                )?;
                let mut policy = Policy::default();
                for (k, v) in entries {
                    let p = join_key(path, &k.name);
                    match k.name.as_str() {
                        "refs" => {
                            let refs = self.strings(v, &p).unwrap_or_default();
                            self.check_refs(&refs, v, &p);
                            policy.refs = Some(refs);
                        }
                        "variables" => {
                            let Value::Seq(items) = &v.value else {
                                self.wrong_type(v, &p, "a list of expressions");
                                continue;
                            };
                            for (i, item) in items.iter().enumerate() {
                                if let Some(c) = self.condition(item, &join_index(&p, i)) {
                                    policy.variables.push(c);
                                }
                            }
                        }
                        "changes" => {
                            policy.changes = match &v.value {
                                Value::Map(_) => self.changes(v, &p).map(|c| c.paths),
                                _ => self.strings(v, &p),
                            }
                        }
                        "kubernetes" => {
                            self.warning(&k.mark, &p, "`kubernetes: active` is ignored")
                        }
                        _ => {}
                    }
                }
                Some(policy)
            }
            _ => {
                self.wrong_type(node, path, "a list of refs or a hash");
                None
            }
        }
    }

    fn check_refs(&mut self, refs: &[String], node: &Node, path: &str) {
        for r in refs {
            if r.starts_with('/') && r.len() > 1 {
                if let Err(e) = Condition::parse(&format!("$X =~ {r}")) {
                    self.error(&node.mark, path, format!("invalid ref pattern `{r}`: {e}"));
                }
            }
        }
    }

    #[allow(clippy::too_many_lines)]
    fn job(
        &mut self,
        name: &str,
        key: &Key,
        node: &Node,
        path: &str,
        stages: &[String],
        defaults: &Defaults,
    ) -> Option<JobDef> {
        for k in ["trigger", "run"] {
            if node.get(k).is_some() && node.get("script").is_none() {
                self.warning(
                    &key.mark,
                    path,
                    format!("`{k}` jobs are not supported by forerunner; the job is left out of the pipeline"),
                );
                return None;
            }
        }
        let entries = self.map(node, path, "a hash", JOB_KEYS, IGNORED_JOB_KEYS)?;
        let mut job = JobDef {
            name: name.to_owned(),
            mark: key.mark.clone(),
            stage: "test".into(),
            stage_index: 0,
            when: When::OnSuccess,
            start_in: None,
            allow_failure: None,
            rules: None,
            only: None,
            except: None,
            needs: None,
            dependencies: None,
            tags: Vec::new(),
            image: None,
            services: Vec::new(),
            variables: Vec::new(),
            inherit_variables: Inherit::All,
            before_script: Vec::new(),
            script: Vec::new(),
            after_script: Vec::new(),
            artifacts: None,
            cache: Vec::new(),
            timeout: None,
            retry: None,
            interruptible: None,
            environment: None,
            coverage: None,
            resource_group: None,
            parallel: None,
        };
        let mut inherit_default = Inherit::All;
        let mut has_script = false;
        let mut stage_node = None;
        for (k, v) in entries {
            let p = join_key(path, &k.name);
            match k.name.as_str() {
                "stage" | "type" => {
                    if k.name == "type" {
                        self.warning(&k.mark, &p, "`type` is deprecated; rename it to `stage`");
                        if node.get("stage").is_some() {
                            continue;
                        }
                    }
                    if let Some(s) = self.string(v, &p) {
                        job.stage = s;
                        stage_node = Some((v, p));
                    }
                }
                "script" => {
                    has_script = true;
                    if let Some(lines) = self.script(v, &p) {
                        if lines.is_empty() {
                            self.error(&v.mark, &p, "`script` is empty; add at least one command");
                        }
                        job.script = lines;
                    }
                }
                "before_script" => job.before_script = self.script(v, &p).unwrap_or_default(),
                "after_script" => job.after_script = self.script(v, &p).unwrap_or_default(),
                "image" => job.image = self.image(v, &p),
                "services" => job.services = self.services(v, &p).unwrap_or_default(),
                "variables" => job.variables = self.variables(v, &p, false),
                "tags" => job.tags = self.strings(v, &p).unwrap_or_default(),
                "needs" => job.needs = self.needs(v, &p),
                "dependencies" => job.dependencies = self.strings(v, &p),
                "when" => {
                    job.when = self
                        .when(
                            v,
                            &p,
                            &[
                                When::OnSuccess,
                                When::OnFailure,
                                When::Always,
                                When::Manual,
                                When::Delayed,
                            ],
                        )
                        .unwrap_or(When::OnSuccess);
                }
                "start_in" => job.start_in = self.duration(v, &p, Some(MAX_START_IN)),
                "allow_failure" => job.allow_failure = self.allow_failure(v, &p),
                "rules" => job.rules = self.rules(v, &p, false),
                "only" => job.only = self.policy(v, &p),
                "except" => job.except = self.policy(v, &p),
                "artifacts" => job.artifacts = self.artifacts(v, &p),
                "cache" => job.cache = self.caches(v, &p).unwrap_or_default(),
                "timeout" => job.timeout = self.duration(v, &p, Some(MAX_TIMEOUT)),
                "retry" => job.retry = self.retry(v, &p),
                "parallel" => job.parallel = self.parallel(v, &p),
                "interruptible" => job.interruptible = self.boolean(v, &p),
                "environment" => job.environment = self.environment(v, &p),
                "coverage" => {
                    if let Some(c) = self.string(v, &p) {
                        let slashed = c.len() > 2 && c.starts_with('/') && c.ends_with('/');
                        if !slashed {
                            self.error(
                                &v.mark,
                                &p,
                                "`coverage` must be a regex between slashes, e.g. '/Coverage: \\d+\\.\\d+%/'",
                            );
                        } else if let Err(e) = Condition::parse(&format!("$X =~ {c}")) {
                            self.error(&v.mark, &p, format!("invalid `coverage` regex `{c}`: {e}"));
                        } else {
                            job.coverage = Some(c);
                        }
                    }
                }
                "resource_group" => job.resource_group = self.stringish(v, &p),
                "inherit" => {
                    if let Some(fields) = self.map(v, &p, "a hash", &["default", "variables"], &[])
                    {
                        for (fk, fv) in fields {
                            let fp = join_key(&p, &fk.name);
                            let value = match &fv.value {
                                Value::Bool(true) => Inherit::All,
                                Value::Bool(false) => Inherit::Nothing,
                                Value::Seq(_) => {
                                    Inherit::Only(self.strings(fv, &fp).unwrap_or_default())
                                }
                                _ => {
                                    self.wrong_type(fv, &fp, "true, false or a list of keys");
                                    continue;
                                }
                            };
                            if fk.name == "default" {
                                if let Inherit::Only(keys) = &value {
                                    for k in keys {
                                        if !DEFAULT_KEYS.contains(&k.as_str()) {
                                            self.error(
                                                &fv.mark,
                                                &fp,
                                                format!(
                                                    "`{k}` is not a `default:` key{}",
                                                    closest(k, DEFAULT_KEYS).map_or_else(
                                                        || format!(
                                                            "; use one of {}",
                                                            DEFAULT_KEYS.join(", ")
                                                        ),
                                                        |c| format!("; did you mean `{c}`?"),
                                                    )
                                                ),
                                            );
                                        }
                                    }
                                }
                                inherit_default = value;
                            } else {
                                job.inherit_variables = value;
                            }
                        }
                    }
                }
                _ => {}
            }
        }

        // Stage.
        match stages.iter().position(|s| *s == job.stage) {
            Some(i) => job.stage_index = i,
            None => {
                let (mark, p) = match &stage_node {
                    Some((n, p)) => (n.mark.clone(), p.clone()),
                    None => (key.mark.clone(), join_key(path, "stage")),
                };
                let hint = closest(
                    &job.stage,
                    &stages.iter().map(String::as_str).collect::<Vec<_>>(),
                )
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
                self.error(
                    &mark,
                    &p,
                    format!(
                        "stage `{}` does not exist; {hint}available stages are {}; add it to `stages:`",
                        job.stage,
                        stages.join(", ")
                    ),
                );
            }
        }

        if !has_script {
            self.error(
                &key.mark,
                path,
                format!(
                    "job `{name}` has no `script`; add `script:` with at least one command, or hide the job \
                     by renaming it to `.{name}` if it is only a template"
                ),
            );
        }

        // GitLab's warning for a last rule that matches every pipeline
        // source when `workflow:rules` does not restrict them.
        if let (Some(rules), false) = (&job.rules, defaults.workflow_rules) {
            let last = node.get("rules").and_then(|r| match &r.value {
                Value::Seq(items) => items.last(),
                _ => None,
            });
            if let Some(last) = last {
                let only_when = last
                    .entries()
                    .is_some_and(|e| e.len() == 1 && e[0].0.name == "when");
                if only_when && rules.last().is_some_and(|r| r.when != Some(When::Never)) {
                    self.warning(
                        &last.mark,
                        &join_key(path, "rules"),
                        "a last rule with only `when` and no `workflow:rules` may run the job in several \
                         pipelines for one push (branch and merge request); add `workflow:rules`",
                    );
                }
            }
        }

        // Keyword combinations GitLab refuses.
        if job.rules.is_some() {
            for k in ["only", "except"] {
                if let Some(v) = node.get(k) {
                    self.error(
                        &v.mark,
                        &join_key(path, k),
                        format!("`{k}` cannot be used together with `rules`; express the condition as a rule"),
                    );
                }
            }
            if let Some(v) = node.get("start_in") {
                if job.when != When::Delayed {
                    self.error(
                        &v.mark,
                        &join_key(path, "start_in"),
                        "`start_in` with `rules` belongs in the rule that says `when: delayed`",
                    );
                }
            }
        } else {
            if job.when == When::Delayed && node.get("start_in").is_none() {
                self.error(
                    &key.mark,
                    path,
                    "`when: delayed` needs `start_in`, e.g. start_in: 30 minutes",
                );
            }
            if node.get("start_in").is_some() && job.when != When::Delayed {
                self.error(
                    &key.mark,
                    &join_key(path, "start_in"),
                    "`start_in` is only valid with `when: delayed`; add `when: delayed` or remove `start_in`",
                );
            }
        }

        if let Some(deps) = &job.dependencies {
            if let Some(needs) = &job.needs {
                for d in deps.iter().take(MAX_CHECKED_REFERENCES) {
                    if !needs.iter().any(|n| n.job == *d) {
                        let (mark, p) = locate_need(
                            node.get("dependencies"),
                            d,
                            1,
                            &join_key(path, "dependencies"),
                            &key.mark,
                        );
                        self.error(
                            &mark,
                            &p,
                            format!(
                                "dependency `{d}` must also be listed in `needs` when the job uses `needs`; \
                                 add it to `needs` or remove it from `dependencies`"
                            ),
                        );
                    }
                }
            }
        }

        // Defaults.
        let d = defaults;
        let inherits = |k: &str| inherit_default.allows(k) && node.get(k).is_none();
        if inherits("image") {
            job.image = d.image.clone();
        }
        if inherits("services") {
            job.services = d.services.clone().unwrap_or_default();
        }
        if inherits("before_script") {
            job.before_script = d.before_script.clone().unwrap_or_default();
        }
        if inherits("after_script") {
            job.after_script = d.after_script.clone().unwrap_or_default();
        }
        if inherits("tags") {
            job.tags = d.tags.clone().unwrap_or_default();
        }
        if inherits("artifacts") {
            job.artifacts = d.artifacts.clone();
        }
        if inherits("cache") {
            job.cache = d.cache.clone().unwrap_or_default();
        }
        if inherits("retry") {
            job.retry = d.retry.clone();
        }
        if inherits("timeout") {
            job.timeout = d.timeout.clone();
        }
        if inherits("interruptible") {
            job.interruptible = d.interruptible;
        }
        Some(job)
    }

    fn allow_failure(&mut self, node: &Node, path: &str) -> Option<AllowFailure> {
        match &node.value {
            Value::Bool(true) => Some(AllowFailure::Yes),
            Value::Bool(false) => Some(AllowFailure::No),
            Value::Map(_) => {
                let entries = self.map(node, path, "a hash", &["exit_codes"], &[])?;
                let codes = entries
                    .iter()
                    .find(|(k, _)| k.name == "exit_codes")
                    .map(|(_, v)| self.ints(v, &join_key(path, "exit_codes")))
                    .unwrap_or_default();
                if codes.is_empty() {
                    self.error(&node.mark, path, "`allow_failure` hash needs `exit_codes`");
                }
                Some(AllowFailure::ExitCodes(codes))
            }
            _ => {
                self.wrong_type(node, path, "true, false or a hash with `exit_codes`");
                None
            }
        }
    }

    /// Checks that need jobs from each other: needs, dependencies, on_stop
    /// and cycles.
    fn cross_checks(&mut self, model: &Model, root: &Node) {
        let mut by_name: HashMap<String, &JobDef> = HashMap::new();
        for job in &model.jobs {
            by_name.insert(job.name.clone(), job);
            for (instance, _) in parallel_instances(job) {
                by_name.insert(instance, job);
            }
        }
        for job in &model.jobs {
            let path = join_key("jobs", &job.name);
            let node = root.get(&job.name);
            let mark_of = |key: &str| {
                node.and_then(|n| n.get(key))
                    .map_or(job.mark.clone(), |n| n.mark.clone())
            };
            let mut need_lists: Vec<(String, &Vec<Need>, Mark, Option<&Node>)> = Vec::new();
            if let Some(needs) = &job.needs {
                let list = node.and_then(|n| n.get("needs"));
                need_lists.push((join_key(&path, "needs"), needs, mark_of("needs"), list));
            }
            for (i, rule) in job.rules.iter().flatten().enumerate() {
                if let Some(needs) = &rule.needs {
                    let list = node
                        .and_then(|n| n.get("rules"))
                        .and_then(|r| match &r.value {
                            Value::Seq(items) => items.get(i),
                            _ => None,
                        })
                        .and_then(|r| r.get("needs"));
                    need_lists.push((
                        format!("{path}.rules[{i}].needs"),
                        needs,
                        mark_of("rules"),
                        list,
                    ));
                }
            }
            for (list_path, needs, list_mark, list) in need_lists {
                let mut seen: HashMap<&str, usize> = HashMap::new();
                for need in needs.iter().take(MAX_CHECKED_REFERENCES) {
                    let count = seen.entry(need.job.as_str()).or_insert(0);
                    *count += 1;
                    let (mark, p) = locate_need(list, &need.job, *count, &list_path, &list_mark);
                    if *count > 1 {
                        self.error(
                            &mark,
                            &p,
                            format!(
                                "`{}` is needed more than once; remove the duplicate",
                                need.job
                            ),
                        );
                    }
                    self.check_dependency(
                        job,
                        &need.job,
                        need.optional,
                        &by_name,
                        &mark,
                        &p,
                        "needs",
                    );
                }
            }
            if let Some(deps) = &job.dependencies {
                let list_mark = mark_of("dependencies");
                let list_path = join_key(&path, "dependencies");
                let list = node.and_then(|n| n.get("dependencies"));
                for d in deps.iter().take(MAX_CHECKED_REFERENCES) {
                    let (mark, p) = locate_need(list, d, 1, &list_path, &list_mark);
                    self.check_dependency(job, d, false, &by_name, &mark, &p, "depends on");
                }
            }
            if let Some(env) = &job.environment {
                if let Some(stop) = &env.on_stop {
                    let mark = mark_of("environment");
                    let p = join_key(&join_key(&path, "environment"), "on_stop");
                    match by_name.get(stop) {
                        None => {
                            self.error(&mark, &p, format!("`on_stop` job `{stop}` is not defined; add a job with `environment: {{name: …, action: stop}}` or fix the name"))
                        }
                        Some(other) => match &other.environment {
                            Some(e) if e.name == env.name && e.action == "stop" => {}
                            Some(e) if e.name != env.name => self.error(
                                &mark,
                                &p,
                                format!(
                                    "`on_stop` job `{stop}` uses environment `{}`, not `{}`",
                                    e.name, env.name
                                ),
                            ),
                            Some(_) => self.error(
                                &mark,
                                &p,
                                format!(
                                    "`on_stop` job `{stop}` must have `environment:action: stop`"
                                ),
                            ),
                            None => self.error(
                                &mark,
                                &p,
                                format!("`on_stop` job `{stop}` has no `environment`"),
                            ),
                        },
                    }
                }
            }
        }
        self.check_cycles(model);
    }

    #[allow(clippy::too_many_arguments)]
    fn check_dependency(
        &mut self,
        job: &JobDef,
        dep: &str,
        optional: bool,
        by_name: &HashMap<String, &JobDef>,
        mark: &Mark,
        path: &str,
        what: &str,
    ) {
        let Some(other) = by_name.get(dep) else {
            if !optional {
                let names: Vec<&str> = by_name.keys().map(String::as_str).collect();
                // Suggestions cost an edit distance per job; skip them for
                // huge pipelines.
                let suggestion = if names.len() <= 1000 {
                    closest(dep, &names)
                } else {
                    None
                };
                let hint = suggestion.map_or_else(
                    || "; define that job, fix the name, or drop the reference".to_owned(),
                    |c| format!("; did you mean `{c}`?"),
                );
                self.error(
                    mark,
                    path,
                    format!(
                        "`{}` {what} `{dep}`, which is not a job of this pipeline{hint}",
                        job.name
                    ),
                );
            }
            return;
        };
        if other.stage_index > job.stage_index {
            self.error(
                mark,
                path,
                format!(
                    "`{}` (stage `{}`) {what} `{dep}`, which is in the later stage `{}`; a job can only depend on jobs of its own or earlier stages",
                    job.name, job.stage, other.stage
                ),
            );
        }
    }

    fn check_cycles(&mut self, model: &Model) {
        // Depth-first search over `needs` edges, iteratively.
        let index: HashMap<&str, usize> = model
            .jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (j.name.as_str(), i))
            .collect();
        let edges: Vec<Vec<usize>> = model
            .jobs
            .iter()
            .map(|j| {
                j.needs
                    .iter()
                    .flatten()
                    .filter_map(|n| index.get(n.job.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut state = vec![0u8; model.jobs.len()];
        for start in 0..model.jobs.len() {
            if state[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            state[start] = 1;
            while let Some((node, next)) = stack.pop() {
                if next < edges[node].len() {
                    stack.push((node, next + 1));
                    let target = edges[node][next];
                    match state[target] {
                        0 => {
                            state[target] = 1;
                            stack.push((target, 0));
                        }
                        1 => {
                            let mut cycle: Vec<&str> = stack
                                .iter()
                                .map(|(n, _)| model.jobs[*n].name.as_str())
                                .skip_while(|n| *n != model.jobs[target].name)
                                .collect();
                            cycle.push(&model.jobs[target].name);
                            let job = &model.jobs[node];
                            self.error(
                                &job.mark,
                                &join_key(&join_key("jobs", &job.name), "needs"),
                                format!(
                                    "circular dependency in `needs`: {}; remove one of the needs",
                                    cycle.join(" -> ")
                                ),
                            );
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                }
            }
        }
    }
}

/// Formats a float as Ruby's `Float#to_s` does for the values YAML
/// produces (`1.1`, `2.0`, `1.0e+20`, `Infinity`).
fn ruby_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let text = format!("{f:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_owned()
        } else {
            format!("{mantissa}.0")
        };
        let (sign, digits) = match exponent.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exponent),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    let text = f.to_string();
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

/// The position and path of the `occurrence`-th entry naming `job` in a
/// `needs` list, or the list itself when it cannot be found.
fn locate_need(
    list: Option<&Node>,
    job: &str,
    occurrence: usize,
    list_path: &str,
    list_mark: &Mark,
) -> (Mark, String) {
    let mut seen = 0;
    if let Some(Value::Seq(items)) = list.map(|l| &l.value) {
        for (i, item) in items.iter().enumerate() {
            let named = match &item.value {
                Value::Str(s) => s == job,
                Value::Map(_) => {
                    matches!(item.get("job").map(|j| &j.value), Some(Value::Str(s)) if s == job)
                }
                _ => false,
            };
            if named {
                seen += 1;
                if seen == occurrence {
                    return (item.mark.clone(), join_index(list_path, i));
                }
            }
        }
    }
    (list_mark.clone(), list_path.to_owned())
}

fn human(seconds: u64) -> String {
    if seconds % 86_400 == 0 {
        format!("{} days", seconds / 86_400)
    } else if seconds % 3600 == 0 {
        format!("{} hours", seconds / 3600)
    } else {
        format!("{seconds} seconds")
    }
}

#[cfg(test)]
mod tests {
    use super::ruby_float;

    #[test]
    fn floats_print_as_ruby() {
        assert_eq!(ruby_float(1.10), "1.1");
        assert_eq!(ruby_float(2.0), "2.0");
        assert_eq!(ruby_float(-0.5), "-0.5");
        assert_eq!(ruby_float(1e20), "1.0e+20");
        assert_eq!(ruby_float(1.5e-7), "1.5e-07");
        assert_eq!(ruby_float(f64::INFINITY), "Infinity");
    }
}
