//! The job driver end to end: real bash, a real git repository, a fake
//! coordinator that applies GitLab's trace rules.

use std::time::Duration;

use forerunner_protocol::failure::FailureReason;
use forerunner_protocol::jobs::*;
use forerunner_runner::executors::shell::ShellExecutor;
use forerunner_runner::job::*;

use crate::support::{env, job, repo, run_with, Env, FakeApi};

async fn run(
    job: &JobResponse,
    api: &FakeApi,
    env: &Env,
    stop: &StopSignals,
) -> (JobOutcome, String) {
    let mut exec = ShellExecutor::new(env.builds.path().to_path_buf());
    run_with(
        &mut exec,
        job,
        api,
        env.builds.path().to_str().unwrap(),
        env.cache.path(),
        "glrt-t1_abcdefghijklmno",
        stop,
    )
    .await
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
async fn debug_trace_shows_neither_the_job_token_nor_the_git_credentials_made_from_it() {
    // CI_DEBUG_TRACE runs the scripts under `set -x`: the git command line
    // with its `Authorization: Basic base64(gitlab-ci-token:<token>)`
    // header is printed.
    let (repo, sha) = repo();
    let mut j = job(repo.path(), &sha, &["echo \"token: $CI_JOB_TOKEN\""], &[]);
    j.variables.push(forerunner_protocol::jobs::JobVariable {
        key: "CI_DEBUG_TRACE".into(),
        value: "true".into(),
        public: true,
        ..Default::default()
    });
    let api = FakeApi::default();
    let (outcome, trace) = run(&j, &api, &env(), &StopSignals::default()).await;
    assert_eq!(outcome.state, JobState::Success, "{trace}");
    assert!(trace.contains("Authorization: Basic [MASKED]"), "{trace}");
    let credentials = forerunner_runner::shells::bash::git_basic_credentials(&j.token);
    assert!(!trace.contains(&credentials), "{trace}");
    assert!(!trace.contains(&j.token), "{trace}");
    assert!(trace.contains("token: [MASKED]"), "{trace}");
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
async fn a_job_ended_by_the_server_is_killed_and_not_reported_as_a_runner_failure() {
    // The server says `canceled` (a forced cancel, a server-side failure):
    // the job is killed at once and ends as canceled, not as
    // `runner_interrupted` (a runner shutdown), with no final state sent
    // over the server's.
    let (repo, sha) = repo();
    let j = job(
        repo.path(),
        &sha,
        &["echo started", "sleep 30"],
        &["echo after-ran"],
    );
    let api = FakeApi {
        end_after: Some(1),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let (outcome, trace) = run(&j, &api, &env(), &StopSignals::default()).await;
    assert!(started.elapsed() < Duration::from_secs(20), "{trace}");
    assert_eq!(outcome.state, JobState::Failed);
    assert_eq!(
        outcome.failure_reason,
        Some(FailureReason::Other("job_canceled".into())),
        "{trace}"
    );
    let finals: Vec<_> = api
        .updates
        .lock()
        .unwrap()
        .iter()
        .filter(|u| u.state != JobState::Running)
        .cloned()
        .collect();
    assert!(finals.is_empty(), "final state sent: {finals:?}");
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
