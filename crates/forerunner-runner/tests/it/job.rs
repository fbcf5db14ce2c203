//! The job driver end to end: real bash, a real git repository, a fake
//! coordinator that applies GitLab's trace rules.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use forerunner_protocol::failure::FailureReason;
use forerunner_protocol::jobs::*;
use forerunner_runner::executors::shell::ShellExecutor;
use forerunner_runner::job::env::RunnerSide;
use forerunner_runner::job::*;
use forerunner_runner::job_log::masker::Masker;
use forerunner_runner::job_log::sender::PatchReply;
use forerunner_runner::job_log::JobLog;

#[derive(Default)]
struct FakeApi {
    trace: Mutex<Vec<u8>>,
    updates: Mutex<Vec<UpdateJobRequest>>,
    artifacts: Mutex<Vec<(String, Vec<u8>)>>,
    stored_artifacts: Mutex<std::collections::HashMap<i64, Vec<u8>>>,
    /// After this many trace bytes, answer `Job-Status: canceling`.
    cancel_after: Option<usize>,
}

#[async_trait]
impl JobApi for FakeApi {
    async fn update(&self, update: &UpdateJobRequest) -> Result<UpdateReply, String> {
        self.updates.lock().unwrap().push(update.clone());
        Ok(UpdateReply {
            status: 200,
            job_status: None,
            update_interval: None,
        })
    }
    async fn patch_trace(&self, offset: u64, bytes: &[u8]) -> Result<PatchReply, String> {
        let mut t = self.trace.lock().unwrap();
        if offset as usize != t.len() {
            return Ok(PatchReply {
                status: 416,
                server_len: Some(t.len() as u64),
                job_status: None,
                update_interval: None,
            });
        }
        t.extend_from_slice(bytes);
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

fn git(dir: &Path, args: &[&str]) {
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

fn repo() -> (tempfile::TempDir, String) {
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

fn v(key: &str, value: &str, masked: bool) -> JobVariable {
    JobVariable {
        key: key.into(),
        value: value.into(),
        public: !masked,
        masked,
        ..Default::default()
    }
}

fn job(repo: &Path, sha: &str, script: &[&str], after: &[&str]) -> JobResponse {
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

struct Env {
    builds: tempfile::TempDir,
    cache: tempfile::TempDir,
}

async fn run(
    job: &JobResponse,
    api: &FakeApi,
    env: &Env,
    stop: &StopSignals,
) -> (JobOutcome, String) {
    let mut exec = ShellExecutor::new(env.builds.path().to_path_buf());
    let masked: Vec<String> = job
        .variables
        .iter()
        .filter(|v| v.masked)
        .map(|v| v.value.clone())
        .collect();
    let log = JobLog::new(
        Masker::new(masked, std::iter::empty::<&str>()),
        4 << 20,
        true,
    );
    let ctx = RunContext {
        runner: RunnerSide {
            builds_dir: env.builds.path().to_str().unwrap(),
            token: "glrt-t1_abcdefghijklmno",
            concurrent_id: 0,
            concurrent_project_id: 0,
            executor: "shell",
            shared_environment: true,
            version: "0.1.0",
            revision: "test",
            environment: &[],
        },
        runner_name: "test-runner",
        system_id: "s_0123456789ab",
        cache_dir: env.cache.path(),
    };
    let outcome = run_and_report(
        job,
        &ctx,
        &mut exec,
        api,
        &log,
        stop,
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    let trace = String::from_utf8_lossy(&api.trace.lock().unwrap()).into_owned();
    (outcome, trace)
}

fn env() -> Env {
    Env {
        builds: tempfile::tempdir().unwrap(),
        cache: tempfile::tempdir().unwrap(),
    }
}

#[tokio::test]
async fn success_with_sources_artifacts_and_checksum() {
    let (repo, sha) = repo();
    let mut j = job(
        repo.path(),
        &sha,
        &[
            "cat hello.txt",
            "mkdir -p out && echo built > out/app",
            "echo $SECRET | sed 's/./& /g'",
        ],
        &[],
    );
    j.artifacts = vec![ArtifactSpec {
        name: "artifacts".into(),
        paths: vec!["out/".into()],
        when: When::OnSuccess,
        ..Default::default()
    }];
    let api = FakeApi::default();
    let (outcome, trace) = run(&j, &api, &env(), &StopSignals::default()).await;
    assert_eq!(outcome.state, JobState::Success, "{trace}");
    assert!(trace.contains("hello from the repo"), "{trace}");
    assert!(trace.contains("Job succeeded"));
    assert!(!trace.contains("jobtoken"), "job token leaked: {trace}");
    let update = api.updates.lock().unwrap().last().cloned().unwrap();
    let stored = api.trace.lock().unwrap().clone();
    assert_eq!(
        update.output.unwrap().checksum,
        format!("crc32:{:08x}", crc32fast::hash(&stored))
    );
    assert_eq!(api.artifacts.lock().unwrap().len(), 1);
    let zip = api.artifacts.lock().unwrap()[0].1.clone();
    let to = tempfile::tempdir().unwrap();
    forerunner_runner::job::archive::extract_zip(std::io::Cursor::new(zip), to.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(to.path().join("out/app")).unwrap(),
        "built\n"
    );
}

#[tokio::test]
async fn failure_runs_after_script_and_reports_exit_code() {
    let (repo, sha) = repo();
    let j = job(
        repo.path(),
        &sha,
        &["echo before", "exit 3", "echo never"],
        &["echo after-status=$CI_JOB_STATUS"],
    );
    let api = FakeApi::default();
    let (outcome, trace) = run(&j, &api, &env(), &StopSignals::default()).await;
    assert_eq!(outcome.state, JobState::Failed);
    assert_eq!(outcome.failure_reason, Some(FailureReason::ScriptFailure));
    assert_eq!(outcome.exit_code, Some(3));
    assert!(trace.contains("after-status=failed"), "{trace}");
    assert!(!trace.contains("\nnever\n"));
    assert!(trace.contains("ERROR: Job failed: exit code 3"));
    let update = api.updates.lock().unwrap().last().cloned().unwrap();
    assert_eq!(update.exit_code, Some(3));
}

#[tokio::test]
async fn masked_value_never_reaches_the_trace_even_one_char_at_a_time() {
    let (repo, sha) = repo();
    let j = job(
        repo.path(),
        &sha,
        &["echo \"full: $SECRET\"", "for i in $(seq 0 $((${#SECRET}-1))); do printf '%s' \"${SECRET:$i:1}\"; sleep 0.01; done; echo"],
        &[],
    );
    let api = FakeApi::default();
    let (outcome, trace) = run(&j, &api, &env(), &StopSignals::default()).await;
    assert_eq!(outcome.state, JobState::Success, "{trace}");
    assert!(!trace.contains("p4ssw0rd-XYZ"), "{trace}");
    assert!(trace.contains("full: [MASKED]"));
    assert!(trace.contains("\n[MASKED]\n"), "{trace}");
}

#[tokio::test]
async fn timeout_fails_with_job_execution_timeout() {
    let (repo, sha) = repo();
    let mut j = job(
        repo.path(),
        &sha,
        &["echo start", "sleep 30"],
        &["echo after=$CI_JOB_STATUS"],
    );
    j.runner_info.timeout = 2;
    let api = FakeApi::default();
    let started = std::time::Instant::now();
    let (outcome, trace) = run(&j, &api, &env(), &StopSignals::default()).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        outcome.failure_reason,
        Some(FailureReason::JobExecutionTimeout),
        "{trace}"
    );
    assert!(trace.contains("after=timedout"), "{trace}");
    assert!(
        trace.contains("execution took longer than 2s seconds"),
        "{trace}"
    );
}

#[tokio::test]
async fn server_cancel_is_graceful() {
    let (repo, sha) = repo();
    let j = job(
        repo.path(),
        &sha,
        &["echo started", "sleep 30"],
        &["echo cleanup=$CI_JOB_STATUS"],
    );
    let api = FakeApi {
        cancel_after: Some(1),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let (outcome, trace) = run(&j, &api, &env(), &StopSignals::default()).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(outcome.state, JobState::Failed);
    assert!(trace.contains("cleanup=canceled"), "{trace}");
}

#[tokio::test]
async fn cache_is_reused_by_the_next_job() {
    let (repo, sha) = repo();
    let e = env();
    let cache = vec![CacheSpec {
        key: "deps".into(),
        paths: vec!["vendor/".into()],
        policy: "pull-push".into(),
        when: When::OnSuccess,
        ..Default::default()
    }];
    let mut first = job(
        repo.path(),
        &sha,
        &["mkdir -p vendor", "echo cached-$RANDOM > vendor/lib"],
        &[],
    );
    first.cache = cache.clone();
    let api = FakeApi::default();
    let (o1, t1) = run(&first, &api, &e, &StopSignals::default()).await;
    assert_eq!(o1.state, JobState::Success, "{t1}");
    let mut second = job(repo.path(), &sha, &["cat vendor/lib"], &[]);
    second.cache = cache;
    let api2 = FakeApi::default();
    let (o2, t2) = run(&second, &api2, &e, &StopSignals::default()).await;
    assert_eq!(o2.state, JobState::Success, "{t2}");
    assert!(t2.contains("Successfully extracted cache for deps"), "{t2}");
    assert!(t2.contains("cached-"), "{t2}");
}

#[tokio::test]
async fn dependency_artifacts_are_downloaded() {
    let (repo, sha) = repo();
    let api = FakeApi::default();
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("dist")).unwrap();
    std::fs::write(src.path().join("dist/pkg"), "from build job\n").unwrap();
    let zip = forerunner_runner::job::archive::write_zip(
        src.path(),
        &["dist/pkg".to_string()],
        std::io::Cursor::new(Vec::new()),
    )
    .unwrap()
    .into_inner();
    api.stored_artifacts.lock().unwrap().insert(5, zip);
    let mut j = job(repo.path(), &sha, &["cat dist/pkg"], &[]);
    j.dependencies = vec![Dependency {
        id: 5,
        name: "build".into(),
        token: "t".into(),
        artifacts_file: Some(ArtifactsFile {
            filename: "artifacts.zip".into(),
            size: 1,
        }),
    }];
    let (o, t) = run(&j, &api, &env(), &StopSignals::default()).await;
    assert_eq!(o.state, JobState::Success, "{t}");
    assert!(t.contains("from build job"), "{t}");
}
