//! Helpers shared by the job driver tests and the executor conformance suite:
//! a fake coordinator, a git repository, job payloads, and running one job
//! through `run_and_report` with any executor.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use forerunner_protocol::jobs::*;
use forerunner_runner::executors::Executor;
use forerunner_runner::job::env::RunnerSide;
use forerunner_runner::job::*;
use forerunner_runner::job_log::sender::PatchReply;
use forerunner_runner::job_log::JobLog;

/// A coordinator's job endpoints in memory, applying GitLab's trace rules.
#[derive(Default)]
pub(crate) struct FakeApi {
    pub(crate) trace: Mutex<Vec<u8>>,
    pub(crate) updates: Mutex<Vec<UpdateJobRequest>>,
    pub(crate) artifacts: Mutex<Vec<(String, Vec<u8>)>>,
    pub(crate) stored_artifacts: Mutex<std::collections::HashMap<i64, Vec<u8>>>,
    /// After this many trace bytes, answer `Job-Status: canceling`.
    pub(crate) cancel_after: Option<usize>,
    /// After this many trace bytes the job is over on the server: the patch
    /// reaching it says `Job-Status: canceled`, later patches and updates
    /// get `403` with it (updates are still recorded).
    pub(crate) end_after: Option<usize>,
}

impl FakeApi {
    fn ended(&self, len: usize) -> bool {
        self.end_after.is_some_and(|n| len >= n)
    }

    fn canceled(status: u16, len: usize) -> PatchReply {
        PatchReply {
            status,
            server_len: Some(len as u64),
            job_status: Some("canceled".into()),
            update_interval: Some(1),
        }
    }
}

#[async_trait]
impl JobApi for FakeApi {
    async fn update(&self, update: &UpdateJobRequest) -> Result<UpdateReply, String> {
        self.updates.lock().unwrap().push(update.clone());
        if self.ended(self.trace.lock().unwrap().len()) {
            return Ok(UpdateReply {
                status: 403,
                job_status: Some("canceled".into()),
                update_interval: None,
            });
        }
        Ok(UpdateReply {
            status: 200,
            job_status: None,
            update_interval: None,
        })
    }
    async fn patch_trace(&self, offset: u64, bytes: &[u8]) -> Result<PatchReply, String> {
        let mut t = self.trace.lock().unwrap();
        if self.ended(t.len()) {
            return Ok(Self::canceled(403, t.len()));
        }
        if offset as usize != t.len() {
            return Ok(PatchReply {
                status: 416,
                server_len: Some(t.len() as u64),
                job_status: None,
                update_interval: None,
            });
        }
        t.extend_from_slice(bytes);
        if self.ended(t.len()) {
            return Ok(Self::canceled(202, t.len()));
        }
        let status = match self.cancel_after {
            Some(n) if t.len() >= n => "canceling",
            _ => "running",
        };
        Ok(PatchReply {
            status: 202,
            server_len: Some(t.len() as u64),
            job_status: Some(status.into()),
            update_interval: Some(1),
        })
    }
    async fn download_artifacts(&self, dep: &Dependency, to: &Path) -> Result<(), String> {
        let bytes = self
            .stored_artifacts
            .lock()
            .unwrap()
            .get(&dep.id)
            .cloned()
            .ok_or("404 Not Found")?;
        std::fs::write(to, bytes).map_err(|e| e.to_string())
    }
    async fn upload_artifacts(&self, spec: &ArtifactSpec, file: &Path) -> Result<(), String> {
        let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
        self.artifacts
            .lock()
            .unwrap()
            .push((spec.name.clone(), bytes));
        Ok(())
    }
}

/// Runs git in `dir` with a neutral configuration.
pub(crate) fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

/// A repository with one commit holding `hello.txt`, and that commit.
pub(crate) fn repo() -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    git(d.path(), &["init", "-q"]);
    std::fs::write(d.path().join("hello.txt"), "hello from the repo\n").unwrap();
    git(d.path(), &["add", "."]);
    git(d.path(), &["commit", "-qm", "first"]);
    let sha = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(d.path())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    (d, sha)
}

/// A job variable.
pub(crate) fn v(key: &str, value: &str, masked: bool) -> JobVariable {
    JobVariable {
        key: key.into(),
        value: value.into(),
        public: !masked,
        masked,
        ..Default::default()
    }
}

/// A job from `repo` at `sha` with `script` and `after_script`.
pub(crate) fn job(repo: &Path, sha: &str, script: &[&str], after: &[&str]) -> JobResponse {
    let mut j = JobResponse {
        id: 11,
        token: "glcbt-64_jobtoken".into(),
        ..Default::default()
    };
    j.job_info.project_full_path = "group/project".into();
    j.job_info.name = "build".into();
    j.runner_info.timeout = 60;
    j.git_info = GitInfo {
        repo_url: format!("file://{}", repo.display()),
        ref_name: "main".into(),
        sha: sha.into(),
        refspecs: vec!["+refs/heads/main:refs/remotes/origin/main".into()],
        depth: 0,
        ..Default::default()
    };
    j.variables = vec![
        v("CI_JOB_TOKEN", "glcbt-64_jobtoken", true),
        v("SECRET", "p4ssw0rd-XYZ", true),
    ];
    j.steps = vec![
        JobStep {
            name: StepName::Script,
            script: script.iter().map(|s| s.to_string()).collect(),
            timeout: 60,
            when: When::OnSuccess,
            allow_failure: false,
        },
        JobStep {
            name: StepName::AfterScript,
            script: after.iter().map(|s| s.to_string()).collect(),
            timeout: 60,
            when: When::Always,
            allow_failure: true,
        },
    ];
    j.features.trace_sections = true;
    j
}

/// Builds and cache directories of a test runner.
pub(crate) struct Env {
    pub(crate) builds: tempfile::TempDir,
    pub(crate) cache: tempfile::TempDir,
}

/// Fresh builds and cache directories.
pub(crate) fn env() -> Env {
    Env {
        builds: tempfile::tempdir().unwrap(),
        cache: tempfile::tempdir().unwrap(),
    }
}

/// Runs `job` with `exec` through [`run_and_report`] as runner `token`
/// (builds in `builds_dir`, runner-side caches in `cache_dir`) and returns
/// the outcome and the trace the fake coordinator received.
pub(crate) async fn run_with(
    exec: &mut dyn Executor,
    job: &JobResponse,
    api: &FakeApi,
    builds_dir: &str,
    cache_dir: &Path,
    token: &str,
    stop: &StopSignals,
) -> (JobOutcome, String) {
    let log = JobLog::for_job(job, 4 << 20);
    let ctx = RunContext {
        runner: RunnerSide {
            builds_dir,
            token,
            concurrent_id: 0,
            concurrent_project_id: 0,
            executor: exec.name(),
            shared_environment: exec.shared_environment(),
            version: "0.1.0",
            revision: "test",
            environment: &[],
        },
        runner_name: "test-runner",
        system_id: "s_0123456789ab",
        cache_dir,
    };
    let outcome = run_and_report(job, &ctx, exec, api, &log, stop, Duration::from_millis(100))
        .await
        .unwrap();
    let trace = String::from_utf8_lossy(&api.trace.lock().unwrap()).into_owned();
    (outcome, trace)
}
