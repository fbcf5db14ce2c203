//! What a job sees: its directories, its variables, and the build settings
//! it reads from variables — computed from the job payload and the runner's
//! settings, with no I/O.
//!
//! Variable order follows the official runner (later entries win): the
//! runner's own (`CI_BUILDS_DIR`, `CI_PROJECT_DIR`, `CI_CONCURRENT_ID`, …),
//! then `[[runners]] environment`, then the job's variables from the server,
//! then what the executor adds (`CI_SHARED_ENVIRONMENT` or
//! `CI_DISPOSABLE_ENVIRONMENT`, `CI_RUNNER_VERSION`, …). Values are then
//! expanded (`$VAR`, `${VAR}`) except those marked `raw`.

use std::time::Duration;

use forerunner_protocol::jobs::{JobResponse, JobVariable};
use forerunner_protocol::tokens::short_token;

use crate::shells::bash::{GitStrategy, SubmoduleStrategy};

/// The runner's side of the job environment.
#[derive(Debug, Clone)]
pub struct RunnerSide<'a> {
    /// Absolute builds directory as the job sees it (`/builds` in containers).
    pub builds_dir: &'a str,
    /// Runner authentication token (only its short form is used).
    pub token: &'a str,
    /// Slot number among concurrent jobs of this runner.
    pub concurrent_id: usize,
    /// Slot number among concurrent jobs of this runner for the same project.
    pub concurrent_project_id: usize,
    /// `shell`, `docker`, `custom`.
    pub executor: &'a str,
    /// Whether jobs share the host (shell) or get a fresh environment.
    pub shared_environment: bool,
    /// Runner version and revision.
    pub version: &'a str,
    /// Runner source revision.
    pub revision: &'a str,
    /// `[[runners]] environment` entries (`KEY=VALUE`).
    pub environment: &'a [String],
}

/// The job's directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDirs {
    /// `CI_BUILDS_DIR`.
    pub builds_dir: String,
    /// `CI_PROJECT_DIR`: `<builds>/<short token>/<concurrent project id>/<namespace>/<project>`
    /// when the builds directory is shared between concurrent jobs (shell),
    /// `<builds>/<namespace>/<project>` when it is not (docker: one `/builds`
    /// per concurrent slot).
    pub project_dir: String,
    /// `<project dir>.tmp`: file variables and other per-job files.
    pub tmp_dir: String,
}

/// Settings a job controls through variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSettings {
    /// `GIT_STRATEGY`.
    pub git_strategy: GitStrategy,
    /// `GIT_DEPTH` (overrides the payload's depth).
    pub git_depth: i64,
    /// `GIT_CHECKOUT`.
    pub git_checkout: bool,
    /// `GIT_CLEAN_FLAGS`.
    pub git_clean_flags: String,
    /// `GIT_SUBMODULE_STRATEGY`.
    pub submodules: SubmoduleStrategy,
    /// `CI_DEBUG_TRACE`.
    pub debug_trace: bool,
    /// Whole-job timeout from `runner_info.timeout` (7200 s when unset).
    pub job_timeout: Duration,
    /// `RUNNER_SCRIPT_TIMEOUT`, bounded by the job timeout.
    pub script_timeout: Duration,
    /// `RUNNER_AFTER_SCRIPT_TIMEOUT` (default 5 minutes).
    pub after_script_timeout: Duration,
}

/// A problem with a setting variable: the job fails before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError(pub String);

/// Computes the job's directories. Path parts from the server are cleaned
/// so a crafted project path cannot leave the builds directory. With
/// `builds_dir_is_shared` (the executor says so), the runner's short token
/// and the concurrent project id keep concurrent jobs apart, as in the
/// official runner's `ProjectUniqueDir`.
pub fn job_dirs(job: &JobResponse, runner: &RunnerSide<'_>, builds_dir_is_shared: bool) -> JobDirs {
    let builds = runner.builds_dir.trim_end_matches('/');
    let full_path: Vec<&str> = job
        .job_info
        .project_full_path
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .collect();
    let project = if full_path.is_empty() {
        format!("project-{}", job.job_info.project_id)
    } else {
        full_path.join("/")
    };
    let project_dir = if builds_dir_is_shared {
        format!(
            "{builds}/{}/{}/{project}",
            short_token(runner.token),
            runner.concurrent_project_id
        )
    } else {
        format!("{builds}/{project}")
    };
    JobDirs {
        builds_dir: builds.to_owned(),
        tmp_dir: format!("{project_dir}.tmp"),
        project_dir,
    }
}

fn var(key: &str, value: impl Into<String>, public: bool) -> JobVariable {
    JobVariable {
        key: key.to_owned(),
        value: value.into(),
        public,
        masked: false,
        file: false,
        raw: false,
    }
}

/// All variables of the job in the official runner's order, expanded.
pub fn job_variables(
    job: &JobResponse,
    runner: &RunnerSide<'_>,
    dirs: &JobDirs,
) -> Vec<JobVariable> {
    let timeout = effective_timeout(job).as_secs();
    let mut vars = vec![
        var("CI_RUNNER_SHORT_TOKEN", short_token(runner.token), true),
        var("CI_BUILDS_DIR", &dirs.builds_dir, true),
        var("CI_PROJECT_DIR", &dirs.project_dir, true),
        var("CI_CONCURRENT_ID", runner.concurrent_id.to_string(), true),
        var(
            "CI_CONCURRENT_PROJECT_ID",
            runner.concurrent_project_id.to_string(),
            true,
        ),
        var("CI_SERVER", "yes", true),
        var("CI_JOB_STATUS", "running", true),
        var("CI_JOB_TIMEOUT", timeout.to_string(), true),
    ];
    if let Some(image) = &job.image {
        vars.insert(0, var("CI_JOB_IMAGE", &image.name, true));
    }
    for entry in runner.environment {
        if let Some((k, v)) = entry.split_once('=') {
            vars.push(var(k, v, false));
        }
    }
    vars.extend(job.variables.iter().cloned());
    if runner.shared_environment {
        vars.push(var("CI_SHARED_ENVIRONMENT", "true", true));
    } else {
        vars.push(var("CI_DISPOSABLE_ENVIRONMENT", "true", true));
    }
    vars.push(var("CI_RUNNER_VERSION", runner.version, true));
    vars.push(var("CI_RUNNER_REVISION", runner.revision, true));
    vars.push(var(
        "CI_RUNNER_EXECUTABLE_ARCH",
        format!("{}/{}", std::env::consts::OS, go_arch()),
        true,
    ));
    vars.push(var("RUNNER_TEMP_PROJECT_DIR", &dirs.tmp_dir, true));
    expand_all(vars)
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// Keeps the last definition of each key (in the position of the last one)
/// and expands `$VAR`/`${VAR}` in values that are not `raw`, against the
/// other variables. References to unknown variables expand to nothing, as
/// in the official runner; `$$` is a literal `$`.
pub fn expand_all(vars: Vec<JobVariable>) -> Vec<JobVariable> {
    let mut last: Vec<JobVariable> = Vec::with_capacity(vars.len());
    for v in vars {
        last.retain(|o| o.key != v.key);
        last.push(v);
    }
    let lookup: Vec<(String, String)> = last
        .iter()
        .map(|v| (v.key.clone(), v.value.clone()))
        .collect();
    for v in last.iter_mut().filter(|v| !v.raw && !v.file) {
        v.value = expand(&v.value, |k| {
            lookup
                .iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, val)| val.as_str())
        });
    }
    last
}

/// Expands `$NAME` and `${NAME}` in `s` once; `$$` gives `$`.
pub fn expand<'a>(s: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let ident = |c: u8| c == b'_' || c.is_ascii_alphanumeric();
    while i < b.len() {
        if b[i] != b'$' {
            let next = s[i..].find('$').map_or(s.len(), |n| i + n);
            out.push_str(&s[i..next]);
            i = next;
            continue;
        }
        if b.get(i + 1) == Some(&b'$') {
            out.push('$');
            i += 2;
        } else if b.get(i + 1) == Some(&b'{') {
            match s[i + 2..].find('}') {
                Some(n) => {
                    out.push_str(lookup(&s[i + 2..i + 2 + n]).unwrap_or(""));
                    i += n + 3;
                }
                None => {
                    out.push_str(&s[i..]);
                    i = b.len();
                }
            }
        } else {
            let n = b[i + 1..].iter().take_while(|c| ident(**c)).count();
            if n == 0 {
                out.push('$');
                i += 1;
            } else {
                out.push_str(lookup(&s[i + 1..i + 1 + n]).unwrap_or(""));
                i += n + 1;
            }
        }
    }
    out
}

fn effective_timeout(job: &JobResponse) -> Duration {
    match job.runner_info.timeout {
        t if t > 0 => Duration::from_secs(t as u64),
        _ => Duration::from_secs(7200),
    }
}

/// Reads the build settings from the job's variables.
pub fn build_settings(
    job: &JobResponse,
    vars: &[JobVariable],
) -> Result<BuildSettings, SettingError> {
    let get = |k: &str| {
        vars.iter()
            .rev()
            .find(|v| v.key == k)
            .map(|v| v.value.trim().to_owned())
    };
    let flag = |k: &str, default: bool| -> Result<bool, SettingError> {
        match get(k).as_deref() {
            None | Some("") => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(SettingError(format!(
                "{k}={other:?} is not a boolean: use true or false"
            ))),
        }
    };
    let strategy = get("GIT_STRATEGY").unwrap_or_default();
    let git_strategy = GitStrategy::parse(&strategy, job.allow_git_fetch).ok_or_else(|| {
        SettingError(format!(
            "GIT_STRATEGY={strategy:?} is not valid: use clone, fetch or none"
        ))
    })?;
    let git_depth = match get("GIT_DEPTH").as_deref() {
        None | Some("") => job.git_info.depth,
        Some(d) => d
            .parse()
            .map_err(|_| SettingError(format!("GIT_DEPTH={d:?} is not a number")))?,
    };
    let sub = get("GIT_SUBMODULE_STRATEGY").unwrap_or_default();
    let submodules = SubmoduleStrategy::parse(&sub).ok_or_else(|| {
        SettingError(format!(
            "GIT_SUBMODULE_STRATEGY={sub:?} is not valid: use none, normal or recursive"
        ))
    })?;
    let job_timeout = effective_timeout(job);
    let duration = |k: &str, default: Duration| -> Result<Duration, SettingError> {
        match get(k).as_deref() {
            None | Some("") => Ok(default),
            Some(d) => crate::config::duration::parse_go_duration(d).ok_or_else(|| {
                SettingError(format!("{k}={d:?} is not a duration such as 10m or 1h30m"))
            }),
        }
    };
    Ok(BuildSettings {
        git_strategy,
        git_depth,
        git_checkout: flag("GIT_CHECKOUT", true)?,
        git_clean_flags: get("GIT_CLEAN_FLAGS")
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "-ffdx".into()),
        submodules,
        debug_trace: flag("CI_DEBUG_TRACE", false)?,
        job_timeout,
        script_timeout: duration("RUNNER_SCRIPT_TIMEOUT", job_timeout)?.min(job_timeout),
        after_script_timeout: duration("RUNNER_AFTER_SCRIPT_TIMEOUT", Duration::from_secs(300))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobResponse {
        let mut j = JobResponse {
            id: 7,
            token: "glcbt-x".into(),
            ..Default::default()
        };
        j.job_info.project_full_path = "group/sub/project".into();
        j.job_info.project_id = 3;
        j.runner_info.timeout = 600;
        j.git_info.depth = 20;
        j.variables = vec![
            var("CI_PROJECT_NAME", "project", true),
            var(
                "GREETING",
                "hi from $CI_PROJECT_NAME in ${CI_PROJECT_DIR}, $$5 $UNKNOWN.",
                false,
            ),
            JobVariable {
                raw: true,
                ..var("RAW", "$CI_PROJECT_NAME", false)
            },
            var("GIT_DEPTH", "5", false),
        ];
        j
    }

    fn runner() -> RunnerSide<'static> {
        RunnerSide {
            builds_dir: "/srv/builds/",
            token: "glrt-t3_TgbhXFsecretsecret",
            concurrent_id: 2,
            concurrent_project_id: 0,
            executor: "shell",
            shared_environment: true,
            version: "0.1.0",
            revision: "abc",
            environment: &[],
        }
    }

    #[test]
    fn directories_follow_the_official_layout() {
        let d = job_dirs(&job(), &runner(), true);
        assert_eq!(d.project_dir, "/srv/builds/t3_TgbhXF/0/group/sub/project");
        let not_shared = job_dirs(&job(), &runner(), false);
        assert_eq!(not_shared.project_dir, "/srv/builds/group/sub/project");
        assert_eq!(not_shared.tmp_dir, "/srv/builds/group/sub/project.tmp");
        assert_eq!(d.tmp_dir, "/srv/builds/t3_TgbhXF/0/group/sub/project.tmp");
        let mut evil = job();
        evil.job_info.project_full_path = "../../etc/./passwd".into();
        assert_eq!(
            job_dirs(&evil, &runner(), true).project_dir,
            "/srv/builds/t3_TgbhXF/0/etc/passwd"
        );
    }

    #[test]
    fn variables_are_ordered_deduplicated_and_expanded() {
        let j = job();
        let env = vec!["GREETING=from config".to_string(), "EXTRA=1".to_string()];
        let r = RunnerSide {
            environment: &env,
            ..runner()
        };
        let d = job_dirs(&j, &r, true);
        let vars = job_variables(&j, &r, &d);
        let get = |k: &str| vars.iter().find(|v| v.key == k).map(|v| v.value.clone());
        assert_eq!(
            get("GREETING").unwrap(),
            "hi from project in /srv/builds/t3_TgbhXF/0/group/sub/project, $5 ."
        );
        assert_eq!(get("RAW").unwrap(), "$CI_PROJECT_NAME");
        assert_eq!(get("EXTRA").unwrap(), "1");
        assert_eq!(get("CI_JOB_TIMEOUT").unwrap(), "600");
        assert_eq!(get("CI_SHARED_ENVIRONMENT").unwrap(), "true");
        assert_eq!(vars.iter().filter(|v| v.key == "GREETING").count(), 1);
        assert!(!vars.iter().any(|v| v.value.contains("secretsecret")));
    }

    #[test]
    fn settings_from_variables() {
        let j = job();
        let s = build_settings(&j, &j.variables).unwrap();
        assert_eq!(s.git_depth, 5);
        assert_eq!(s.git_strategy, GitStrategy::Clone);
        assert_eq!(s.job_timeout, Duration::from_secs(600));
        assert_eq!(s.after_script_timeout, Duration::from_secs(300));
        let mut bad = j.clone();
        bad.variables.push(var("GIT_STRATEGY", "teleport", false));
        let e = build_settings(&bad, &bad.variables).unwrap_err();
        assert!(e.0.contains("use clone, fetch or none"), "{}", e.0);
        let mut t = j.clone();
        t.variables.push(var("RUNNER_SCRIPT_TIMEOUT", "1h", false));
        t.variables
            .push(var("RUNNER_AFTER_SCRIPT_TIMEOUT", "1m30s", false));
        let s = build_settings(&t, &t.variables).unwrap();
        assert_eq!(
            s.script_timeout,
            Duration::from_secs(600),
            "bounded by the job timeout"
        );
        assert_eq!(s.after_script_timeout, Duration::from_secs(90));
    }
}
