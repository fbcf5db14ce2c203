//! The validated pipeline configuration: what a `.gitlab-ci.yml` means once
//! includes, `extends`, `!reference` and `default:` were applied.
//!
//! These are plain domain types with no serde: the linter builds them, the
//! planner reads them, and the value types ([`Image`], [`Artifacts`], …) are
//! reused unchanged in the planned jobs. Nothing here depends on a ref or on
//! pipeline variables; see [`crate::plan()`] for that.

use crate::diagnostic::Mark;
use crate::expr::Condition;

/// A validated configuration, ready to be planned for any ref.
#[derive(Clone, Debug)]
pub struct Model {
    /// All stages in order, `.pre` first and `.post` last.
    pub stages: Vec<String>,
    /// Global `variables:`.
    pub variables: Vec<VariableDef>,
    /// `workflow:`.
    pub workflow: Workflow,
    /// Visible jobs in file order, with `default:` already applied.
    pub jobs: Vec<JobDef>,
}

/// `workflow:`: whether a pipeline is created, and its name.
#[derive(Clone, Debug, Default)]
pub struct Workflow {
    /// `workflow:name`, unexpanded.
    pub name: Option<String>,
    /// `workflow:rules`; `None` means every pipeline is created.
    pub rules: Option<Vec<Rule>>,
}

/// A variable from the YAML (`KEY: value` or `KEY: {value, expand, …}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariableDef {
    /// Variable name.
    pub key: String,
    /// Value as a string (integers are converted as GitLab does).
    pub value: String,
    /// False when `expand: false`: the runner must not expand `$VAR`
    /// references inside the value (GitLab's `raw: true`).
    pub expand: bool,
    /// `description:` (global variables only; shown for manual pipelines).
    pub description: Option<String>,
    /// `options:` (global variables only).
    pub options: Vec<String>,
}

/// When a job runs relative to the jobs before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum When {
    /// Run when every earlier job succeeded (the default).
    OnSuccess,
    /// Run when at least one earlier job failed.
    OnFailure,
    /// Run whatever happened before.
    Always,
    /// Wait for a person to start it.
    Manual,
    /// Run after `start_in`.
    Delayed,
    /// Do not create the job.
    Never,
}

impl When {
    /// The keyword as written in YAML and sent to GitLab clients.
    pub fn as_str(self) -> &'static str {
        match self {
            When::OnSuccess => "on_success",
            When::OnFailure => "on_failure",
            When::Always => "always",
            When::Manual => "manual",
            When::Delayed => "delayed",
            When::Never => "never",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<When> {
        Some(match text {
            "on_success" => When::OnSuccess,
            "on_failure" => When::OnFailure,
            "always" => When::Always,
            "manual" => When::Manual,
            "delayed" => When::Delayed,
            "never" => When::Never,
            _ => return None,
        })
    }
}

/// A duration as written and in seconds (`start_in`, `expire_in`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duration {
    /// The text as written, e.g. `1h 30m`.
    pub text: String,
    /// The same duration in seconds.
    pub seconds: u64,
}

/// `allow_failure:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowFailure {
    /// A failure fails the pipeline.
    No,
    /// A failure is shown as a warning.
    Yes,
    /// Only these exit codes are allowed to fail.
    ExitCodes(Vec<i64>),
}

/// One entry of `needs:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// Name of the needed job (after `parallel` expansion in a plan).
    pub job: String,
    /// Download the needed job's artifacts (`artifacts: true`, default).
    pub artifacts: bool,
    /// `optional: true`: ignore the need when the job is not in the pipeline.
    pub optional: bool,
    /// `parallel:matrix` filter selecting some instances of a parallel job.
    pub matrix: Vec<Vec<(String, Vec<String>)>>,
}

/// `image:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Image reference, e.g. `rust:1.85`.
    pub name: String,
    /// `entrypoint:` override.
    pub entrypoint: Option<Vec<String>>,
    /// `pull_policy:` (`always`, `if-not-present`, `never`).
    pub pull_policy: Vec<String>,
    /// `docker:platform`.
    pub platform: Option<String>,
    /// `docker:user`.
    pub user: Option<String>,
}

/// One entry of `services:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// Image reference.
    pub name: String,
    /// `alias:` (hostname) of the service.
    pub alias: Option<String>,
    /// `entrypoint:` override.
    pub entrypoint: Option<Vec<String>>,
    /// `command:` override.
    pub command: Option<Vec<String>>,
    /// `variables:` passed to the service container.
    pub variables: Vec<VariableDef>,
    /// `pull_policy:`.
    pub pull_policy: Vec<String>,
}

/// `artifacts:`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Artifacts {
    /// `paths:` globs to upload.
    pub paths: Vec<String>,
    /// `exclude:` globs.
    pub exclude: Vec<String>,
    /// `name:` of the archive (unexpanded; the runner expands it).
    pub name: Option<String>,
    /// `untracked:`.
    pub untracked: bool,
    /// `when:` to upload: `on_success` (default), `on_failure` or `always`.
    pub when: Option<When>,
    /// `expire_in:`; `None` for the instance default, and `text` `never`
    /// with zero seconds for artifacts that never expire.
    pub expire_in: Option<Duration>,
    /// `expose_as:`.
    pub expose_as: Option<String>,
    /// `public:`.
    pub public: Option<bool>,
    /// `reports:`: report type (e.g. `junit`) and its paths. For
    /// `coverage_report` the path comes with the format as
    /// `coverage_format`.
    pub reports: Vec<Report>,
}

/// One entry of `artifacts:reports`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Report type: `junit`, `dotenv`, `coverage_report`, …
    pub kind: String,
    /// Paths or globs of the report files.
    pub paths: Vec<String>,
    /// `coverage_format` for `coverage_report` (`cobertura`, `jacoco`).
    pub format: Option<String>,
}

/// One cache of `cache:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cache {
    /// The key.
    pub key: CacheKey,
    /// `paths:` to cache.
    pub paths: Vec<String>,
    /// `untracked:`.
    pub untracked: bool,
    /// `unprotect:`.
    pub unprotect: bool,
    /// `policy:`: `pull-push` (default), `pull` or `push`.
    pub policy: String,
    /// `when:`: `on_success` (default), `on_failure` or `always`.
    pub when: When,
    /// `fallback_keys:`.
    pub fallback_keys: Vec<String>,
}

/// `cache:key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheKey {
    /// A literal key (unexpanded; `default` when omitted).
    Literal(String),
    /// `key:files` (one or two files) with an optional `prefix`: the
    /// coordinator computes the key from the files' last commits.
    Files {
        /// Files whose change invalidates the cache.
        files: Vec<String>,
        /// `prefix:`.
        prefix: Option<String>,
    },
}

/// `retry:`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retry {
    /// Retries after the first attempt, 0 to 2.
    pub max: u8,
    /// Failure reasons that trigger a retry; empty means `always`.
    pub when: Vec<String>,
    /// Exit codes that trigger a retry.
    pub exit_codes: Vec<i64>,
}

/// `environment:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    /// Environment name (expanded in a plan).
    pub name: String,
    /// `url:`.
    pub url: Option<String>,
    /// `action:`: `start` (default), `prepare`, `stop`, `verify`, `access`.
    pub action: String,
    /// `on_stop:` job.
    pub on_stop: Option<String>,
    /// `auto_stop_in:`.
    pub auto_stop_in: Option<String>,
    /// `deployment_tier:`.
    pub deployment_tier: Option<String>,
}

/// `parallel:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parallel {
    /// `parallel: N`: N identical jobs named `name 1/N` … `name N/N`.
    Count(u32),
    /// `parallel:matrix`: one job per combination, named `name: [a, b]`,
    /// each entry a list of (variable, values).
    Matrix(Vec<Vec<(String, Vec<String>)>>),
}

/// `inherit:` for one of `default` or `variables`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inherit {
    /// Inherit everything (the default).
    All,
    /// Inherit nothing.
    Nothing,
    /// Inherit only these keys.
    Only(Vec<String>),
}

impl Inherit {
    pub(crate) fn allows(&self, key: &str) -> bool {
        match self {
            Inherit::All => true,
            Inherit::Nothing => false,
            Inherit::Only(keys) => keys.iter().any(|k| k == key),
        }
    }
}

/// A rule of `rules:` or `workflow:rules`.
#[derive(Clone, Debug)]
pub struct Rule {
    /// `if:`.
    pub condition: Option<Condition>,
    /// `changes:`.
    pub changes: Option<Changes>,
    /// `exists:` globs.
    pub exists: Option<Vec<String>>,
    /// `when:`.
    pub when: Option<When>,
    /// `start_in:` for `when: delayed`.
    pub start_in: Option<Duration>,
    /// `allow_failure:`.
    pub allow_failure: Option<bool>,
    /// `variables:` added when the rule matches.
    pub variables: Vec<VariableDef>,
    /// `needs:` replacing the job's when the rule matches.
    pub needs: Option<Vec<Need>>,
    /// `interruptible:` override.
    pub interruptible: Option<bool>,
}

/// `rules:changes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changes {
    /// Globs; the rule matches if a changed file matches one.
    pub paths: Vec<String>,
    /// `compare_to:` ref; `None` compares with the push's previous commit.
    pub compare_to: Option<String>,
}

/// `only:` or `except:`.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// `refs:` (branch names, `/regex/`, or keywords like `branches`,
    /// `tags`, `merge_requests`, `schedules`); `None` when not given.
    pub refs: Option<Vec<String>>,
    /// `variables:` expressions; any true one matches.
    pub variables: Vec<Condition>,
    /// `changes:` globs.
    pub changes: Option<Vec<String>>,
}

/// A job as configured, before rules are evaluated for a ref.
#[derive(Clone, Debug)]
pub struct JobDef {
    /// Job name.
    pub name: String,
    /// Where the job is defined.
    pub mark: Mark,
    /// `stage:` (default `test`).
    pub stage: String,
    /// Index of the stage in [`Model::stages`].
    pub stage_index: usize,
    /// `when:` (default `on_success`).
    pub when: When,
    /// `start_in:` for `when: delayed`.
    pub start_in: Option<Duration>,
    /// `allow_failure:` if written.
    pub allow_failure: Option<AllowFailure>,
    /// `rules:`.
    pub rules: Option<Vec<Rule>>,
    /// `only:`.
    pub only: Option<Policy>,
    /// `except:`.
    pub except: Option<Policy>,
    /// `needs:`; `None` when there is no `needs:` key (stage ordering).
    pub needs: Option<Vec<Need>>,
    /// `dependencies:`; `None` means all jobs of earlier stages.
    pub dependencies: Option<Vec<String>>,
    /// `tags:`.
    pub tags: Vec<String>,
    /// `image:`.
    pub image: Option<Image>,
    /// `services:`.
    pub services: Vec<Service>,
    /// Job `variables:` (global ones are merged at planning).
    pub variables: Vec<VariableDef>,
    /// `inherit:variables`.
    pub inherit_variables: Inherit,
    /// `before_script:` lines.
    pub before_script: Vec<String>,
    /// `script:` lines.
    pub script: Vec<String>,
    /// `after_script:` lines.
    pub after_script: Vec<String>,
    /// `artifacts:`.
    pub artifacts: Option<Artifacts>,
    /// `cache:` (a list of at most four).
    pub cache: Vec<Cache>,
    /// `timeout:` in seconds.
    pub timeout: Option<Duration>,
    /// `retry:`.
    pub retry: Option<Retry>,
    /// `interruptible:`.
    pub interruptible: Option<bool>,
    /// `environment:`.
    pub environment: Option<Environment>,
    /// `coverage:` regex, as written (`/…/`).
    pub coverage: Option<String>,
    /// `resource_group:` (unexpanded).
    pub resource_group: Option<String>,
    /// `parallel:`.
    pub parallel: Option<Parallel>,
}

/// Most values (script lines, variables, …) all jobs of one configuration
/// or plan may hold; beyond it the configuration is refused rather than
/// exhausting memory (a small file can expand hugely through aliases,
/// `default:` and `parallel`).
pub(crate) const MAX_WEIGHT: usize = 2_000_000;

impl JobDef {
    /// How many values the job holds, roughly: what copying it costs.
    pub(crate) fn weight(&self) -> usize {
        1 + self.before_script.len()
            + self.script.len()
            + self.after_script.len()
            + self.variables.len()
            + self.tags.len()
            + self.services.len()
            + self.cache.len()
            + self.needs.as_ref().map_or(0, Vec::len)
            + self.dependencies.as_ref().map_or(0, Vec::len)
            + self.rules.as_ref().map_or(0, Vec::len)
            + self.artifacts.as_ref().map_or(0, |a| {
                a.paths.len()
                    + a.exclude.len()
                    + a.reports.iter().map(|r| 1 + r.paths.len()).sum::<usize>()
            })
            + self
                .cache
                .iter()
                .map(|c| c.paths.len() + c.fallback_keys.len())
                .sum::<usize>()
            + self
                .services
                .iter()
                .map(|s| s.variables.len())
                .sum::<usize>()
            + self
                .image
                .as_ref()
                .map_or(0, |i| i.entrypoint.as_ref().map_or(0, Vec::len))
    }
}
