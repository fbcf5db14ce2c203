//! The custom executor: a user-provided driver of up to four executables (`config_exec`,
//! `prepare_exec`, `run_exec`, `cleanup_exec`) runs each job, as in the official runner.
//!
//! Protocol, as documented for the official custom executor:
//! - `config_exec <config_args…>` prints JSON on stdout (`builds_dir`, `cache_dir`,
//!   `builds_dir_is_shared`, `hostname`, `driver{name,version}`, `job_env`); its stderr goes to
//!   the job log.
//! - `prepare_exec <prepare_args…>` once; stdout and stderr go to the job log.
//! - `run_exec <run_args…> <script file> <stage name>` for every stage the runner runs
//!   (`get_sources`, `build_script` for the job's `step_script`, `after_script`, …); output goes
//!   to the job log. Exit 0 is success, `BUILD_FAILURE_EXIT_CODE` (1) a failure of the job's
//!   script — with the script's own exit code read from `BUILD_EXIT_CODE_FILE` when the driver
//!   wrote it there — and `SYSTEM_FAILURE_EXIT_CODE` (2) a failure of the driver
//!   (`runner_system_failure`); any other code is reported as an unknown driver exit code
//!   (`runner_system_failure` too).
//! - `cleanup_exec <cleanup_args…>` always, at the end; its stdout goes to the runner's log at
//!   debug level and its stderr at warn level; it never changes the job's result.
//!
//! Every executable gets the runner's environment, the `job_env` of `config_exec`, every job
//! variable as `CUSTOM_ENV_<KEY>`, `CUSTOM_ENV_CI_JOB_SERVICES` (JSON, empty without services),
//! `BUILD_FAILURE_EXIT_CODE`, `SYSTEM_FAILURE_EXIT_CODE`, `BUILD_EXIT_CODE_FILE`,
//! `JOB_RESPONSE_FILE` (the job payload as JSON) and `TMPDIR` (a directory of the job's own, also
//! the executables' working directory, removed after cleanup). Jobs see
//! `CI_SHARED_ENVIRONMENT=true`; project directories include the runner's short token and the
//! concurrent project id only when `config_exec` says `builds_dir_is_shared`. Each runs in its own process group: on a
//! timeout (`*_exec_timeout`, the job's timeout) or a cancel the group gets SIGTERM, SIGKILL after
//! `graceful_kill_timeout`, and is abandoned after `force_kill_timeout` more.
//!
//! Deliberate difference: caches and artifacts are handled by the runner itself on its host at
//! the job's paths (no `gitlab-runner` binary is called inside the environment), so a driver whose
//! jobs run elsewhere must make `builds_dir` available on the runner's host, e.g. through a shared
//! mount. `prepare_exec` is not retried.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use forerunner_protocol::jobs::{JobResponse, JobVariable};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::Deserialize;
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;

use crate::config::RunnerConfig;
use crate::executors::process::{run_stage, StageCommand};
use crate::executors::{absolute, Executor, ExecutorError, Exit, JobContext, OutputSink, Stage};

/// The exit code a driver uses for a failure of the job's script.
pub const BUILD_FAILURE_EXIT_CODE: i32 = 1;
/// The exit code a driver uses for a failure of its own.
pub const SYSTEM_FAILURE_EXIT_CODE: i32 = 2;

/// One driver executable with its first arguments and its time limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    /// Path of the executable.
    pub path: PathBuf,
    /// Arguments given before any the runner adds.
    pub args: Vec<String>,
    /// Killed (gracefully) after this long.
    pub timeout: Duration,
}

/// `[runners.custom]` and the runner entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomSettings {
    /// `config_exec` with `config_args` and `config_exec_timeout`.
    pub config_exec: Option<ExecSpec>,
    /// `prepare_exec` with `prepare_args` and `prepare_exec_timeout`.
    pub prepare_exec: Option<ExecSpec>,
    /// `run_exec` with `run_args` (its time limit is each stage's).
    pub run_exec: ExecSpec,
    /// `cleanup_exec` with `cleanup_args` and `cleanup_exec_timeout`.
    pub cleanup_exec: Option<ExecSpec>,
    /// `[[runners]] builds_dir`, unless `config_exec` says otherwise.
    pub builds_dir: Option<String>,
    /// `[[runners]] cache_dir`, unless `config_exec` says otherwise.
    pub cache_dir: Option<String>,
    /// `graceful_kill_timeout`: between SIGTERM and SIGKILL (default 10 minutes).
    pub graceful_kill: Duration,
    /// `force_kill_timeout`: after SIGKILL, before giving up on the process (default 10 minutes).
    pub force_kill: Duration,
}

const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(3600);
const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(600);

impl CustomSettings {
    /// Settings running `run_exec` only, with the official defaults.
    pub fn new(run_exec: impl Into<PathBuf>) -> Self {
        Self {
            config_exec: None,
            prepare_exec: None,
            run_exec: ExecSpec {
                path: run_exec.into(),
                args: Vec::new(),
                timeout: DEFAULT_EXEC_TIMEOUT,
            },
            cleanup_exec: None,
            builds_dir: None,
            cache_dir: None,
            graceful_kill: DEFAULT_KILL_TIMEOUT,
            force_kill: DEFAULT_KILL_TIMEOUT,
        }
    }

    /// Settings from a `[[runners]]` entry; relative paths are resolved against `cwd`.
    pub fn from_config(runner: &RunnerConfig, cwd: &Path) -> Result<Self, ExecutorError> {
        let custom = runner.custom.clone().unwrap_or_default();
        let secs = |v: Option<i64>, default: Duration| match v {
            Some(s) if s > 0 => Duration::from_secs(s as u64),
            _ => default,
        };
        let exec = |path: Option<String>, args: Vec<String>, timeout: Option<i64>| {
            path.filter(|p| !p.trim().is_empty()).map(|p| ExecSpec {
                path: absolute(cwd, p.trim()),
                args,
                timeout: secs(timeout, DEFAULT_EXEC_TIMEOUT),
            })
        };
        let run_exec = exec(custom.run_exec, custom.run_args, None).ok_or_else(|| {
            ExecutorError(
                "`[runners.custom] run_exec` is not set: the custom executor needs at least the \
                 executable that runs each stage (forerunner register --custom-run-exec PATH)"
                    .into(),
            )
        })?;
        let dir = |d: &Option<String>| {
            d.as_deref()
                .filter(|d| !d.trim().is_empty())
                .map(|d| absolute(cwd, d.trim()).to_string_lossy().into_owned())
        };
        Ok(Self {
            config_exec: exec(
                custom.config_exec,
                custom.config_args,
                custom.config_exec_timeout,
            ),
            prepare_exec: exec(
                custom.prepare_exec,
                custom.prepare_args,
                custom.prepare_exec_timeout,
            ),
            run_exec,
            cleanup_exec: exec(
                custom.cleanup_exec,
                custom.cleanup_args,
                custom.cleanup_exec_timeout,
            ),
            builds_dir: dir(&runner.builds_dir),
            cache_dir: dir(&runner.cache_dir),
            graceful_kill: secs(custom.graceful_kill_timeout, DEFAULT_KILL_TIMEOUT),
            force_kill: secs(custom.force_kill_timeout, DEFAULT_KILL_TIMEOUT),
        })
    }
}

/// What `config_exec` prints (unknown keys are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct DriverConfig {
    /// Base directory of the job's working directory.
    pub builds_dir: Option<String>,
    /// Base directory of the local cache.
    pub cache_dir: Option<String>,
    /// Whether concurrent jobs share `builds_dir`.
    pub builds_dir_is_shared: Option<bool>,
    /// The host name to report.
    pub hostname: Option<String>,
    /// The driver's name and version, for the job log.
    pub driver: Option<DriverInfo>,
    /// Variables for the driver's later executables (not for the job).
    pub job_env: BTreeMap<String, String>,
}

/// `driver` of [`DriverConfig`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct DriverInfo {
    /// Name.
    pub name: Option<String>,
    /// Version.
    pub version: Option<String>,
}

/// The custom executor for one job. See the module documentation.
#[derive(Debug)]
pub struct CustomExecutor {
    settings: CustomSettings,
    tmp: Option<tempfile::TempDir>,
    driver: DriverConfig,
    env: Vec<(String, String)>,
    scripts: usize,
}

impl CustomExecutor {
    /// An executor that starts the driver when the job is configured.
    pub fn new(settings: CustomSettings) -> Self {
        Self {
            settings,
            tmp: None,
            driver: DriverConfig::default(),
            env: Vec::new(),
            scripts: 0,
        }
    }

    /// What `config_exec` returned (empty before `configure` or without `config_exec`).
    pub fn driver_config(&self) -> &DriverConfig {
        &self.driver
    }

    fn tmp_dir(&self) -> Result<&Path, ExecutorError> {
        self.tmp.as_ref().map(|t| t.path()).ok_or_else(|| {
            ExecutorError("the custom executor was used before it was configured".into())
        })
    }

    fn exit_code_file(&self) -> Result<PathBuf, ExecutorError> {
        Ok(self.tmp_dir()?.join("build_exit_code"))
    }

    /// The environment of every executable for a job with `variables`.
    fn environment(
        &self,
        job: &JobResponse,
        variables: &[JobVariable],
    ) -> Result<Vec<(String, String)>, ExecutorError> {
        let tmp = self.tmp_dir()?;
        let valid = |s: &str| !s.contains('\0');
        // `job_env` first, so that it cannot override what the runner sets (as the official
        // runner orders them).
        let mut env: Vec<(String, String)> = self
            .driver
            .job_env
            .iter()
            .filter(|(k, v)| !k.is_empty() && !k.contains('=') && valid(k) && valid(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.extend(
            variables
                .iter()
                .filter(|v| !v.key.is_empty() && !v.key.contains('=') && valid(&v.key))
                .filter(|v| valid(&v.value))
                .map(|v| (format!("CUSTOM_ENV_{}", v.key), v.value.clone())),
        );
        let services: Vec<serde_json::Value> = job
            .services
            .iter()
            .map(|s| {
                let list = |l: &Vec<String>| {
                    if l.is_empty() {
                        serde_json::Value::Null
                    } else {
                        serde_json::json!(l)
                    }
                };
                let alias = s
                    .alias
                    .as_deref()
                    .unwrap_or_default()
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .find(|a| !a.is_empty())
                    .unwrap_or_default();
                serde_json::json!({
                    "name": s.name,
                    "alias": alias,
                    "entrypoint": list(&s.entrypoint),
                    "command": list(&s.command),
                })
            })
            .collect();
        // Empty without services, a JSON array otherwise (as the official runner).
        let services = if services.is_empty() {
            String::new()
        } else {
            serde_json::Value::Array(services).to_string()
        };
        env.push(("CUSTOM_ENV_CI_JOB_SERVICES".into(), services));
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        env.extend([
            (
                "BUILD_FAILURE_EXIT_CODE".to_owned(),
                BUILD_FAILURE_EXIT_CODE.to_string(),
            ),
            (
                "SYSTEM_FAILURE_EXIT_CODE".to_owned(),
                SYSTEM_FAILURE_EXIT_CODE.to_string(),
            ),
            (
                "BUILD_EXIT_CODE_FILE".to_owned(),
                path(self.exit_code_file()?),
            ),
            (
                "JOB_RESPONSE_FILE".to_owned(),
                path(tmp.join("response.json")),
            ),
            ("TMPDIR".to_owned(), path(tmp.to_path_buf())),
        ]);
        Ok(env)
    }

    /// Runs `exec` with extra `args` in its own process group, streaming its combined output to
    /// `output`, and maps its exit code; `what` names it in errors.
    async fn run_streamed(
        &self,
        what: &str,
        exec: &ExecSpec,
        args: &[String],
        timeout: Duration,
        cancel: CancellationToken,
        output: OutputSink<'_>,
    ) -> Result<Exit, ExecutorError> {
        let cmd = StageCommand {
            program: exec.path.clone(),
            args: exec.args.iter().chain(args).cloned().collect(),
            stdin: Vec::new(),
            dir: self.tmp_dir()?.to_path_buf(),
            env: self.env.clone(),
            timeout,
            kill_grace: self.settings.graceful_kill,
        };
        let give_up_after = self.settings.graceful_kill + self.settings.force_kill;
        let stop = cancel.clone();
        let give_up = async move {
            let exit = tokio::select! {
                _ = stop.cancelled() => Exit::Cancelled,
                _ = tokio::time::sleep(timeout) => Exit::TimedOut,
            };
            tokio::time::sleep(give_up_after).await;
            exit
        };
        let run = run_stage(cmd, cancel, |b| output(b));
        tokio::select! {
            r = run => r.map_err(|e| ExecutorError(format!(
                "failed to start the custom executor's {what} {}: {e} (check the path and that \
                 it is executable)",
                exec.path.display()
            ))),
            exit = give_up => {
                tracing::warn!(executable = %exec.path.display(), "abandoned a custom executor \
                    process that outlived force_kill_timeout");
                Ok(exit)
            }
        }
    }

    /// Runs `exec` to completion, collecting stdout and stderr apart (config and cleanup).
    async fn run_collected(
        &self,
        what: &str,
        exec: &ExecSpec,
    ) -> Result<(i32, Vec<u8>, Vec<u8>), ExecutorError> {
        let failed = |e: std::io::Error| {
            ExecutorError(format!(
                "failed to run the custom executor's {what} {}: {e} (check the path and that it \
                 is executable)",
                exec.path.display()
            ))
        };
        let mut child = tokio::process::Command::new(&exec.path)
            .args(&exec.args)
            .current_dir(self.tmp_dir()?)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(failed)?;
        let pgid = Pid::from_raw(child.id().map(|id| id as i32).unwrap_or(0));
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let collect = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let (a, b) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
            a.and(b)?;
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((status, out, err))
        };
        let limit = exec.timeout + self.settings.graceful_kill + self.settings.force_kill;
        let killer = async {
            tokio::time::sleep(exec.timeout).await;
            if pgid.as_raw() > 0 {
                let _ = killpg(pgid, Signal::SIGTERM);
                tokio::time::sleep(self.settings.graceful_kill).await;
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            std::future::pending::<()>().await;
        };
        let (status, out, err) = tokio::select! {
            r = tokio::time::timeout(limit, collect) => match r {
                Ok(r) => r.map_err(failed)?,
                Err(_) => return Err(ExecutorError(format!(
                    "the custom executor's {what} {} did not end after its timeout of {}s and \
                     was abandoned", exec.path.display(), exec.timeout.as_secs()))),
            },
            () = killer => unreachable!("the killer never ends"),
        };
        let code = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt as _;
            128 + status.signal().unwrap_or(0)
        });
        Ok((code, out, err))
    }
}

/// The message for a driver executable that did not exit 0 outside `run_exec`'s build failure.
fn driver_failure(what: &str, exec: &ExecSpec, code: i32) -> ExecutorError {
    let kind = match code {
        SYSTEM_FAILURE_EXIT_CODE => "reported a system failure",
        BUILD_FAILURE_EXIT_CODE => "reported a build failure",
        _ => "exited with an unknown custom executor exit code",
    };
    ExecutorError(format!(
        "the custom executor's {what} {} {kind} (exit code {code})",
        exec.path.display()
    ))
}

#[async_trait]
impl Executor for CustomExecutor {
    fn name(&self) -> &'static str {
        "custom"
    }

    fn builds_dir(&self) -> String {
        self.driver
            .builds_dir
            .clone()
            .or_else(|| self.settings.builds_dir.clone())
            .unwrap_or_default()
    }

    /// Whether concurrent jobs share `builds_dir`: what `config_exec` says, else no.
    fn builds_dir_is_shared(&self) -> bool {
        self.driver.builds_dir_is_shared.unwrap_or(false)
    }

    /// As the official runner, the custom executor reports a shared environment
    /// (`CI_SHARED_ENVIRONMENT=true`): the runner cannot know what the driver reuses.
    fn shared_environment(&self) -> bool {
        true
    }

    fn host_path(&self, job_path: &str) -> PathBuf {
        PathBuf::from(job_path)
    }

    async fn configure(
        &mut self,
        job: &JobResponse,
        variables: &[JobVariable],
        output: OutputSink<'_>,
    ) -> Result<(), ExecutorError> {
        let tmp = tempfile::Builder::new()
            .prefix("forerunner-custom-")
            .tempdir()
            .map_err(|e| {
                ExecutorError(format!(
                    "failed to create a temporary directory for the custom executor: {e} (check \
                     TMPDIR)"
                ))
            })?;
        let response = serde_json::to_vec(job)
            .map_err(|e| ExecutorError(format!("failed to write the job response file: {e}")))?;
        tokio::fs::write(tmp.path().join("response.json"), response)
            .await
            .map_err(|e| ExecutorError(format!("failed to write the job response file: {e}")))?;
        self.tmp = Some(tmp);
        self.env = self.environment(job, variables)?;
        if let Some(exec) = self.settings.config_exec.clone() {
            let (code, stdout, stderr) = self.run_collected("config_exec", &exec).await?;
            output(&stderr);
            if code != 0 {
                return Err(driver_failure("config_exec", &exec, code));
            }
            // No output at all means nothing to change.
            if !stdout.iter().all(u8::is_ascii_whitespace) {
                self.driver = serde_json::from_slice(&stdout).map_err(|e| {
                    ExecutorError(format!(
                    "the custom executor's config_exec {} printed no valid JSON on stdout: {e} \
                     (expected an object such as {{\"builds_dir\": \"/builds\"}})",
                    exec.path.display()
                ))
                })?;
            }
        }
        let line = match &self.driver.driver {
            Some(DriverInfo {
                name: Some(name),
                version,
            }) => format!(
                "Using Custom executor with driver {name}{}...\n",
                version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default()
            ),
            _ => "Using Custom executor...\n".to_owned(),
        };
        output(line.as_bytes());
        if self.builds_dir().trim().is_empty() {
            return Err(ExecutorError(
                "the builds_dir is not configured: set builds_dir in the [[runners]] entry or \
                 return it from config_exec"
                    .into(),
            ));
        }
        Ok(())
    }

    async fn prepare(
        &mut self,
        job: &JobContext<'_>,
        output: OutputSink<'_>,
    ) -> Result<(), ExecutorError> {
        self.env = self.environment(job.job, job.variables)?;
        let Some(exec) = self.settings.prepare_exec.clone() else {
            return Ok(());
        };
        let exit = self
            .run_streamed(
                "prepare_exec",
                &exec,
                &[],
                exec.timeout,
                CancellationToken::new(),
                output,
            )
            .await?;
        match exit {
            Exit::Code(0) => Ok(()),
            Exit::Code(code) => Err(driver_failure("prepare_exec", &exec, code)),
            Exit::TimedOut => Err(ExecutorError(format!(
                "the custom executor's prepare_exec {} ran past prepare_exec_timeout ({}s)",
                exec.path.display(),
                exec.timeout.as_secs()
            ))),
            Exit::Cancelled => Err(ExecutorError("prepare_exec was cancelled".into())),
        }
    }

    async fn run(
        &mut self,
        stage: Stage<'_>,
        cancel: CancellationToken,
        output: OutputSink<'_>,
    ) -> Result<Exit, ExecutorError> {
        let name = match stage.name {
            "step_script" => "build_script",
            other => other,
        };
        self.scripts += 1;
        let script = self
            .tmp_dir()?
            .join(format!("script-{:02}-{name}", self.scripts));
        tokio::fs::write(&script, stage.script.as_bytes())
            .await
            .map_err(|e| {
                ExecutorError(format!(
                    "failed to write the {name} script {}: {e}",
                    script.display()
                ))
            })?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700));
        }
        let code_file = self.exit_code_file()?;
        let _ = tokio::fs::remove_file(&code_file).await;
        let exec = self.settings.run_exec.clone();
        let args = [script.to_string_lossy().into_owned(), name.to_owned()];
        let exit = self
            .run_streamed("run_exec", &exec, &args, stage.timeout, cancel, output)
            .await?;
        match exit {
            Exit::Code(BUILD_FAILURE_EXIT_CODE) => {
                let written = tokio::fs::read_to_string(&code_file).await.ok();
                match written.as_deref().map(str::trim) {
                    None | Some("") => Ok(Exit::Code(BUILD_FAILURE_EXIT_CODE)),
                    Some(text) => match text.parse::<i32>() {
                        Ok(code) => Ok(Exit::Code(code)),
                        Err(_) => Err(ExecutorError(format!(
                            "unknown custom executor exit code: BUILD_EXIT_CODE_FILE holds \
                             {text:?}, not an integer (stage {name})"
                        ))),
                    },
                }
            }
            Exit::Code(code) if code != 0 => Err(ExecutorError(format!(
                "stage {name}: {}",
                driver_failure("run_exec", &exec, code)
            ))),
            other => Ok(other),
        }
    }

    async fn cleanup(&mut self) {
        if let Some(exec) = self.settings.cleanup_exec.clone() {
            if self.tmp.is_some() {
                match self.run_collected("cleanup_exec", &exec).await {
                    Ok((code, out, err)) => {
                        let out = String::from_utf8_lossy(&out);
                        let err = String::from_utf8_lossy(&err);
                        if !out.trim().is_empty() {
                            tracing::debug!(output = %out.trim_end(), "cleanup_exec stdout");
                        }
                        if !err.trim().is_empty() {
                            tracing::warn!(output = %err.trim_end(), "cleanup_exec stderr");
                        }
                        if code != 0 {
                            tracing::warn!("{}", driver_failure("cleanup_exec", &exec, code));
                        }
                    }
                    Err(e) => tracing::warn!("{e}"),
                }
            }
        }
        self.tmp = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_need_run_exec_and_resolve_paths() {
        let toml = r#"
            [[runners]]
            name = "c"
            url = "https://gitlab.example.com"
            token = "glrt-abcdefghijklmnop"
            executor = "custom"
            builds_dir = "b"
            [runners.custom]
            config_exec = "drv/config.sh"
            config_args = ["x"]
            config_exec_timeout = 5
            run_exec = "/opt/run.sh"
            graceful_kill_timeout = 3
        "#;
        let config =
            crate::config::Config::parse(Path::new("config.toml"), toml, &|_| None).unwrap();
        let s = CustomSettings::from_config(&config.runners[0], Path::new("/w")).unwrap();
        let c = s.config_exec.unwrap();
        assert_eq!(c.path, PathBuf::from("/w/drv/config.sh"));
        assert_eq!(c.args, ["x"]);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(s.run_exec.path, PathBuf::from("/opt/run.sh"));
        assert_eq!(s.builds_dir.as_deref(), Some("/w/b"));
        assert_eq!(s.graceful_kill, Duration::from_secs(3));
        assert_eq!(s.force_kill, DEFAULT_KILL_TIMEOUT);
        let mut none = config.runners[0].clone();
        none.custom.as_mut().unwrap().run_exec = None;
        let e = CustomSettings::from_config(&none, Path::new("/w")).unwrap_err();
        assert!(e.0.contains("--custom-run-exec"), "{e}");
    }

    #[test]
    fn driver_config_ignores_unknown_keys() {
        let d: DriverConfig = serde_json::from_str(
            r#"{"builds_dir":"/b","builds_dir_is_shared":true,"driver":{"name":"n"},"job_env":{"A":"1"},"extra":3}"#,
        )
        .unwrap();
        assert_eq!(d.builds_dir.as_deref(), Some("/b"));
        assert_eq!(d.builds_dir_is_shared, Some(true));
        assert_eq!(d.driver.unwrap().name.as_deref(), Some("n"));
        assert_eq!(d.job_env["A"], "1");
    }
}
