//! `forerunner run` and `run-single` against the fault-injecting fake
//! coordinator of the testkit: the real binary, the shell executor, real
//! git over `file://`. The fake stands in where the server must fail on
//! purpose (5xx, dropped connections, 416, 403); end-to-end runs against
//! the real coordinator come with its job API.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use forerunner_protocol::jobs::{GitInfo, JobResponse, JobStep, JobVariable, StepName, When};
use forerunner_testkit::fake::{FakeCoordinator, FakeJob, Fault};

use crate::runner_support::Runner;

const RUNNER_TOKEN: &str = "glrt-t1_runnertoken0123456789";

fn git(dir: &Path, args: &[&str]) {
    let st = std::process::Command::new("git")
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

/// A bare repository with one commit: (dir, file:// URL, sha).
fn repo() -> (tempfile::TempDir, String, String) {
    let d = tempfile::tempdir().unwrap();
    let work = d.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q"]);
    std::fs::write(work.join("hello.txt"), "hello from the repo\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "first"]);
    git(d.path(), &["clone", "-q", "--bare", "work", "repo.git"]);
    let sha = String::from_utf8(
        std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&work)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    let url = format!("file://{}", d.path().join("repo.git").display());
    (d, url, sha)
}

fn job_token(id: i64) -> String {
    format!("glcbt-64_jobtoken{id}secretvalue")
}

/// A job running `script` with the shell executor.
fn job(id: i64, url: &str, sha: &str, script: &[&str]) -> JobResponse {
    let token = job_token(id);
    let mut j = JobResponse {
        id,
        token: token.clone(),
        ..Default::default()
    };
    j.job_info.id = id;
    j.job_info.name = format!("job-{id}");
    j.job_info.project_id = 7;
    j.job_info.project_full_path = "group/project".into();
    j.runner_info.timeout = 120;
    j.git_info = GitInfo {
        repo_url: url.to_owned(),
        ref_name: "main".into(),
        sha: sha.into(),
        refspecs: vec!["+refs/heads/main:refs/remotes/origin/main".into()],
        ..Default::default()
    };
    j.variables = vec![
        JobVariable {
            key: "CI_JOB_TOKEN".into(),
            value: token,
            masked: true,
            ..Default::default()
        },
        JobVariable {
            key: "CI_JOB_ID".into(),
            value: id.to_string(),
            public: true,
            ..Default::default()
        },
    ];
    j.steps = vec![JobStep {
        name: StepName::Script,
        script: script.iter().map(|s| s.to_string()).collect(),
        timeout: 120,
        when: When::OnSuccess,
        allow_failure: false,
    }];
    j.features.trace_sections = true;
    j.features.failure_reasons = forerunner_protocol::failure::FailureReason::ADVERTISED
        .iter()
        .map(|s| s.to_string())
        .collect();
    j
}

/// A temp dir with config.toml for one shell runner entry.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(url: &str, global: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        let s = Setup { dir, config };
        s.write(url, RUNNER_TOKEN, global);
        s
    }

    fn write(&self, url: &str, token: &str, global: &str) {
        let d = self.dir.path().display();
        std::fs::write(
            &self.config,
            format!(
                "{global}\n\n[[runners]]\n  name = \"test-runner\"\n  url = \"{url}\"\n  token = \"{token}\"\n  executor = \"shell\"\n  builds_dir = \"{d}/builds\"\n  cache_dir = \"{d}/cache\"\n"
            ),
        )
        .unwrap();
    }

    fn run(&self, extra: &[&str]) -> Runner {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--config".into(),
            self.config.display().to_string(),
            "--working-directory".into(),
            self.dir.path().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Runner::spawn(&args, self.dir.path())
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn job_trace_is_byte_identical_through_faults_and_metrics_are_served() {
    let fake = FakeCoordinator::start().await;
    let (_repo, url, sha) = repo();
    // The ack sees a 503 (retried by the client) then a dropped connection
    // (retried by the loop); the trace sees 500s, drops before and after the
    // append, a spurious 416 and a 502.
    fake.inject_update_faults([Fault::Status(503), Fault::Drop]);
    fake.inject_trace_faults([
        Fault::Status(500),
        Fault::Drop,
        Fault::DropAfterAppend,
        Fault::RangeMismatch,
        Fault::Status(502),
        Fault::DropAfterAppend,
    ]);
    fake.set_trace_update_interval(Some(1));
    fake.push_job(job(
        1,
        &url,
        &sha,
        &[
            "cat hello.txt",
            "for i in $(seq 1 25); do echo \"output line $i\"; sleep 0.1; done",
            "echo \"token: $CI_JOB_TOKEN\"",
        ],
    ));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let setup = Setup::new(&fake.url, "concurrent = 2\ncheck_interval = 1");
    let listen = format!("127.0.0.1:{port}");
    let mut runner = setup.run(&["--listen-address", &listen]);

    let j = fake
        .wait_final(1, Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("no final update:\n{}", runner.output()));
    let fin = j.final_update().unwrap().clone();
    let trace = text(&j.trace);
    assert_eq!(fin["state"], "success", "{trace}\n{}", runner.output());
    // What the server stored is exactly what the runner counted.
    assert_eq!(fin["output"]["checksum"], j.trace_checksum().as_str());
    assert_eq!(fin["output"]["bytesize"], j.trace.len() as u64);
    assert!(trace.contains("hello from the repo"), "{trace}");
    for i in 1..=25 {
        assert_eq!(
            trace.matches(&format!("output line {i}\n")).count(),
            1,
            "line {i} lost or duplicated:\n{trace}"
        );
    }
    assert!(trace.contains("token: [MASKED]"), "{trace}");
    assert!(!trace.contains(&job_token(1)), "job token in the trace");
    let statuses: Vec<u16> = j.patches.iter().map(|p| p.status).collect();
    assert!(statuses.contains(&416), "{statuses:?}");
    assert!(statuses.contains(&0), "{statuses:?}");
    assert!(statuses.contains(&500), "{statuses:?}");
    assert_eq!(j.updates[0]["state"], "running", "two-phase ack first");
    assert_eq!(j.updates[0]["token"], job_token(1).as_str());

    // The job request body, as the official runner sends it.
    let requests = fake.job_requests();
    let (_, first) = &requests[0];
    assert_eq!(first["token"], RUNNER_TOKEN);
    let system_id = first["system_id"].as_str().unwrap();
    assert!(
        system_id.starts_with("s_") || system_id.starts_with("r_"),
        "{system_id}"
    );
    assert_eq!(first["info"]["executor"], "shell");
    assert_eq!(first["info"]["name"], "forerunner");
    assert!(first["info"]["shell"].is_string());
    let features = first["info"]["features"].as_object().unwrap();
    for f in [
        "variables",
        "artifacts",
        "cache",
        "refspecs",
        "masking",
        "raw_variables",
        "artifacts_exclude",
        "trace_checksum",
        "trace_size",
        "cancelable",
        "cancel_gracefully",
        "return_exit_code",
    ] {
        assert_eq!(features[f], true, "{f}");
    }
    assert_eq!(features["multi_build_steps"], false);
    assert!(first.get("last_update").is_none());
    let later = requests
        .iter()
        .skip(1)
        .find(|(_, r)| r.get("last_update").is_some())
        .expect("a later request echoes X-GitLab-Last-Update");
    assert!(later.1["last_update"].is_string());

    // Metrics under the official names.
    let body = reqwest::get(format!("http://{listen}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "gitlab_runner_jobs{",
        "gitlab_runner_jobs_total{",
        "gitlab_runner_job_duration_seconds_bucket{",
        "gitlab_runner_api_request_statuses_total{",
        "gitlab_runner_errors_total{",
        "gitlab_runner_worker_health_check_failures_total{",
        "gitlab_runner_concurrent 2",
        "gitlab_runner_limit{",
        "gitlab_runner_version_info{",
    ] {
        assert!(body.contains(name), "{name} missing:\n{body}");
    }
    assert!(body.contains("endpoint=\"patch_trace\""), "{body}");
    assert!(body.contains("endpoint=\"request_job\""), "{body}");

    runner.signal("TERM");
    assert!(runner.wait_exit(Duration::from_secs(30)).await.success());
    let out = runner.output();
    assert!(out.contains("Checking for jobs... received"), "{out}");
    assert!(out.contains("Job succeeded"), "{out}");
    assert!(!out.contains(&job_token(1)), "job token in the log:\n{out}");
    assert!(
        !out.contains(RUNNER_TOKEN),
        "runner token in the log:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_412_to_the_final_update_sends_the_whole_trace_again() {
    // The official `UpdateTraceValidationFailed`: the server dropped the
    // trace it found invalid; the runner sends all of it again from 0, then
    // the final update.
    let fake = FakeCoordinator::start().await;
    let (_repo, url, sha) = repo();
    fake.set_trace_update_interval(Some(1));
    fake.inject_update_faults([Fault::TraceReset]);
    fake.push_job(job(
        1,
        &url,
        &sha,
        &["for i in $(seq 1 5); do echo \"line $i\"; sleep 0.3; done"],
    ));
    let setup = Setup::new(&fake.url, "concurrent = 1\ncheck_interval = 1");
    let mut runner = setup.run(&[]);
    let j = fake
        .wait_final(1, Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("no final update:\n{}", runner.output()));
    let fin = j.final_update().unwrap().clone();
    let trace = text(&j.trace);
    assert_eq!(j.trace_resets, 1, "the fault was not used");
    assert_eq!(fin["state"], "success", "{trace}\n{}", runner.output());
    assert_eq!(fin["output"]["checksum"], j.trace_checksum().as_str());
    assert_eq!(fin["output"]["bytesize"], j.trace.len() as u64);
    assert!(
        trace.starts_with("\x1b[0;mRunning with forerunner"),
        "{trace}"
    );
    for i in 1..=5 {
        assert_eq!(trace.matches(&format!("line {i}\n")).count(), 1, "{trace}");
    }
    // After the reset, the trace went again from offset 0.
    let restarts = j
        .patches
        .iter()
        .filter(|p| p.start == 0 && p.status == 202)
        .count();
    assert_eq!(restarts, 2, "{:?}", j.patches);
    runner.signal("TERM");
    assert!(runner.wait_exit(Duration::from_secs(20)).await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn three_403_park_the_entry_and_sighup_resets_health() {
    let fake = FakeCoordinator::start().await;
    fake.forbid_job_requests(3);
    let setup = Setup::new(&fake.url, "concurrent = 1\ncheck_interval = 1");
    let mut runner = setup.run(&[]);
    assert!(
        runner
            .wait_log(
                "is unhealthy and will be disabled for 1h0m0s seconds!",
                Duration::from_secs(20)
            )
            .await,
        "{}",
        runner.output()
    );
    let out = runner.output();
    assert_eq!(
        out.matches("Checking for jobs... forbidden").count(),
        3,
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "status=POST {}/api/v4/jobs/request: 403 Forbidden",
            fake.url
        )),
        "{out}"
    );
    assert!(
        out.contains("unhealthy_requests=3 unhealthy_requests_limit=3"),
        "{out}"
    );
    assert!(out.contains("forerunner verify --delete --config"), "{out}");
    // Parked: no more requests.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fake.job_requests().len(), 3);
    // SIGHUP reloads config.toml and resets the health table.
    runner.signal("HUP");
    assert!(
        fake.wait_for(Duration::from_secs(10), |f| f.job_requests().len() > 3)
            .await,
        "{}",
        runner.output()
    );
    assert!(runner.output().matches("Configuration loaded").count() >= 2);
    runner.signal("TERM");
    assert!(runner.wait_exit(Duration::from_secs(20)).await.success());
    assert!(!runner.output().contains(RUNNER_TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_update_interval_from_the_server_is_honoured() {
    let fake = FakeCoordinator::start().await;
    let (_repo, url, sha) = repo();
    let script = ["for i in $(seq 1 35); do echo \"tick $i\"; sleep 0.1; done"];
    let setup = Setup::new(&fake.url, "concurrent = 1\ncheck_interval = 1");
    let mut runner = setup.run(&[]);

    // Every second: several patches while the job runs, about 1 s apart.
    fake.set_trace_update_interval(Some(1));
    fake.push_job(job(1, &url, &sha, &script));
    let fast = fake.wait_final(1, Duration::from_secs(60)).await.unwrap();
    let accepted: Vec<_> = fast.patches.iter().filter(|p| p.status == 202).collect();
    assert!(accepted.len() >= 3, "{:?}", fast.patches);
    for pair in accepted.windows(2).take(accepted.len().saturating_sub(2)) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(800), "patches {gap:?} apart");
    }

    // Every 30 s: nothing until the job is over, then one final patch.
    fake.set_trace_update_interval(Some(30));
    fake.push_job(job(2, &url, &sha, &script));
    let slow = fake.wait_final(2, Duration::from_secs(60)).await.unwrap();
    assert_eq!(slow.patches.len(), 1, "{:?}", slow.patches);
    let fin = slow.final_update().unwrap();
    assert_eq!(fin["output"]["checksum"], slow.trace_checksum().as_str());

    runner.signal("TERM");
    assert!(runner.wait_exit(Duration::from_secs(20)).await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn long_polling_is_honoured() {
    let fake = FakeCoordinator::start().await;
    let (_repo, url, sha) = repo();
    fake.hold_job_requests(Duration::from_secs(2));
    let setup = Setup::new(&fake.url, "concurrent = 1\ncheck_interval = 5");
    let mut runner = setup.run(&[]);
    // 1st request: no last_update, answered at once; then check_interval;
    // then held requests follow each other without a pause.
    assert!(
        fake.wait_for(Duration::from_secs(20), |f| f.job_requests().len() >= 4)
            .await
    );
    let at: Vec<Instant> = fake.job_requests().iter().map(|(t, _)| *t).collect();
    let gap = at[3].duration_since(at[2]);
    assert!(
        gap < Duration::from_millis(3500),
        "held requests {gap:?} apart (check_interval is 5 s)"
    );
    // A job queued during a held request is handed out at once.
    let pushed = Instant::now();
    fake.push_job(job(1, &url, &sha, &["true"]));
    assert!(
        fake.wait_for(Duration::from_secs(5), |f| f.job(1).is_some())
            .await
    );
    let latency = fake.job(1).unwrap().handed_out.duration_since(pushed);
    assert!(latency < Duration::from_secs(1), "pickup took {latency:?}");
    fake.wait_final(1, Duration::from_secs(30)).await.unwrap();
    runner.signal("TERM");
    assert!(runner.wait_exit(Duration::from_secs(20)).await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_running_job_finish_and_takes_no_new_job() {
    let fake = FakeCoordinator::start().await;
    let (_repo, url, sha) = repo();
    fake.set_trace_update_interval(Some(1));
    fake.push_job(job(
        1,
        &url,
        &sha,
        &["echo started", "sleep 3", "echo finished after sigterm"],
    ));
    let setup = Setup::new(&fake.url, "concurrent = 1\ncheck_interval = 1");
    let mut runner = setup.run(&[]);
    assert!(
        fake.wait_for(Duration::from_secs(30), |f| {
            f.job(1)
                .is_some_and(|j| text(&j.trace).contains("\nstarted\n"))
        })
        .await,
        "{}",
        runner.output()
    );
    runner.signal("TERM");
    fake.push_job(job(2, &url, &sha, &["echo second"]));
    let status = runner.wait_exit(Duration::from_secs(40)).await;
    assert!(status.success(), "{}", runner.output());
    let j = fake.job(1).unwrap();
    let fin = j.final_update().expect("the job was reported");
    assert_eq!(fin["state"], "success");
    assert!(text(&j.trace).contains("finished after sigterm"));
    assert_eq!(fake.queued(), 1, "a new job was taken after SIGTERM");
    let out = runner.output();
    assert!(out.contains("Starting graceful shutdown"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn second_sigterm_aborts_the_job_and_reports_it_failed() {
    let fake = FakeCoordinator::start().await;
    let (_repo, url, sha) = repo();
    fake.set_trace_update_interval(Some(1));
    fake.push_job(job(1, &url, &sha, &["echo started", "sleep 60"]));
    let setup = Setup::new(&fake.url, "concurrent = 1\ncheck_interval = 1");
    let mut runner = setup.run(&[]);
    assert!(
        fake.wait_for(Duration::from_secs(30), |f| {
            f.job(1)
                .is_some_and(|j| text(&j.trace).contains("\nstarted\n"))
        })
        .await,
        "{}",
        runner.output()
    );
    runner.signal("TERM");
    assert!(
        runner
            .wait_log("Starting graceful shutdown", Duration::from_secs(5))
            .await
    );
    runner.signal("TERM");
    let status = runner.wait_exit(Duration::from_secs(40)).await;
    assert!(status.success(), "{}", runner.output());
    let j = fake.job(1).unwrap();
    let fin = j.final_update().expect("the aborted job was reported");
    assert_eq!(fin["state"], "failed");
    assert_eq!(fin["failure_reason"], "runner_interrupted");
    assert_eq!(fin["output"]["checksum"], j.trace_checksum().as_str());
    assert!(runner.output().contains("Starting forceful shutdown"));
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_timeout_aborts_the_job_and_reports_it_failed() {
    let fake = FakeCoordinator::start().await;
    let (_repo, url, sha) = repo();
    let mut j = job(1, &url, &sha, &["echo started", "sleep 60"]);
    // A server that does not know runner_interrupted gets a reason it knows.
    j.features.failure_reasons = vec!["script_failure".into(), "runner_system_failure".into()];
    fake.push_job(j);
    let setup = Setup::new(
        &fake.url,
        "concurrent = 1\ncheck_interval = 1\nshutdown_timeout = 2",
    );
    let mut runner = setup.run(&[]);
    assert!(
        fake.wait_for(Duration::from_secs(30), |f| f.job(1).is_some())
            .await
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    runner.signal("TERM");
    let status = runner.wait_exit(Duration::from_secs(40)).await;
    assert!(status.success(), "{}", runner.output());
    let fin = fake
        .job(1)
        .unwrap()
        .final_update()
        .cloned()
        .expect("reported");
    assert_eq!(fin["state"], "failed");
    let reason = fin["failure_reason"].as_str().unwrap();
    assert!(
        ["unknown_failure", "runner_system_failure"].contains(&reason),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_single_max_builds_exits_after_one_job() {
    let fake = FakeCoordinator::start().await;
    let (_repo, url, sha) = repo();
    fake.push_job(job(1, &url, &sha, &["echo one"]));
    fake.push_job(job(2, &url, &sha, &["echo two"]));
    let dir = tempfile::tempdir().unwrap();
    let builds = dir.path().join("builds");
    let args: Vec<String> = [
        "run-single",
        "--url",
        &fake.url,
        "--token",
        RUNNER_TOKEN,
        "--executor",
        "shell",
        "--builds-dir",
        builds.to_str().unwrap(),
        "--max-builds",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut runner = Runner::spawn(&args, dir.path());
    let status = runner.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "{}", runner.output());
    let fin = fake.job(1).unwrap().final_update().cloned().unwrap();
    assert_eq!(fin["state"], "success");
    assert_eq!(fake.queued(), 1, "run-single took a second job");
    assert!(runner
        .output()
        .contains("This runner has processed its build limit, so now exiting"));
    assert!(builds.exists());

    // --wait-timeout: no job for 1 s, exit.
    let fake = FakeCoordinator::start().await;
    let args: Vec<String> = [
        "run-single",
        "--url",
        &fake.url,
        "--token",
        RUNNER_TOKEN,
        "--executor",
        "shell",
        "--wait-timeout",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let started = Instant::now();
    let mut runner = Runner::spawn(&args, dir.path());
    assert!(runner.wait_exit(Duration::from_secs(20)).await.success());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn config_is_reloaded_when_the_file_changes() {
    let fake = FakeCoordinator::start().await;
    let setup = Setup::new(&fake.url, "concurrent = 1\ncheck_interval = 1");
    let mut runner = setup.run(&[]);
    assert!(
        fake.wait_for(Duration::from_secs(10), |f| !f.job_requests().is_empty())
            .await
    );
    let new_token = "glrt-t1_rotatedtoken98765432";
    setup.write(&fake.url, new_token, "concurrent = 1\ncheck_interval = 1");
    assert!(
        fake.wait_for(Duration::from_secs(15), |f| {
            f.job_requests()
                .iter()
                .any(|(_, r)| r["token"] == new_token)
        })
        .await,
        "{}",
        runner.output()
    );
    // After the reload, only the new token is used.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let last = fake.job_requests().last().cloned().unwrap();
    assert_eq!(last.1["token"], new_token);
    assert!(runner.output().matches("Configuration loaded").count() >= 2);
    runner.signal("TERM");
    assert!(runner.wait_exit(Duration::from_secs(20)).await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn artifacts_are_uploaded_and_dependencies_downloaded() {
    use forerunner_protocol::jobs::{ArtifactSpec, ArtifactsFile, Dependency};
    let fake = FakeCoordinator::start().await;
    let (_repo, url, sha) = repo();
    let mut j1 = job(
        1,
        &url,
        &sha,
        &["mkdir -p out", "echo built-by-job-1 > out/app"],
    );
    j1.artifacts = vec![ArtifactSpec {
        name: "binaries".into(),
        paths: vec!["out/".into()],
        when: When::OnSuccess,
        artifact_type: "archive".into(),
        artifact_format: "zip".into(),
        expire_in: Some("1 week".into()),
        ..Default::default()
    }];
    fake.push_job(j1);
    let setup = Setup::new(&fake.url, "concurrent = 1\ncheck_interval = 1");
    let mut runner = setup.run(&[]);
    let done = fake.wait_final(1, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        done.final_update().unwrap()["state"],
        "success",
        "{}",
        text(&done.trace)
    );
    assert_eq!(done.uploads.len(), 1, "{}", text(&done.trace));
    let up = &done.uploads[0];
    assert_eq!(up.part, "file");
    assert_eq!(up.filename, "binaries.zip");
    assert_eq!(
        up.query.get("artifact_format").map(String::as_str),
        Some("zip")
    );
    assert_eq!(
        up.query.get("artifact_type").map(String::as_str),
        Some("archive")
    );
    assert_eq!(
        up.query.get("expire_in").map(String::as_str),
        Some("1 week")
    );
    assert!(up.bytes.starts_with(b"PK"), "not a zip");

    // Job 2 downloads job 1's archive with job 1's token.
    fake.store_artifacts(1, &job_token(1), up.bytes.clone());
    let dependency = |id: i64, token: String| Dependency {
        id,
        name: format!("job-{id}"),
        token,
        artifacts_file: Some(ArtifactsFile {
            filename: "binaries.zip".into(),
            size: up.bytes.len() as i64,
        }),
    };
    let mut j2 = job(2, &url, &sha, &["cat out/app"]);
    j2.dependencies = vec![dependency(1, job_token(1))];
    fake.push_job(j2);
    let done = fake.wait_final(2, Duration::from_secs(60)).await.unwrap();
    let trace = text(&done.trace);
    assert_eq!(done.final_update().unwrap()["state"], "success", "{trace}");
    assert!(trace.contains("\nbuilt-by-job-1\n"), "{trace}");

    // Artifacts that are gone fail the job before its script.
    let mut j3 = job(3, &url, &sha, &["echo must-not-run"]);
    j3.dependencies = vec![dependency(99, job_token(99))];
    fake.push_job(j3);
    let done = fake.wait_final(3, Duration::from_secs(60)).await.unwrap();
    let trace = text(&done.trace);
    let fin = done.final_update().unwrap();
    assert_eq!(fin["state"], "failed", "{trace}");
    assert_eq!(fin["failure_reason"], "missing_dependency_failure");
    assert!(trace.contains("404"), "{trace}");
    assert!(!trace.contains("\nmust-not-run"), "{trace}");

    runner.signal("TERM");
    assert!(runner.wait_exit(Duration::from_secs(20)).await.success());
    assert!(!runner.output().contains(&job_token(1)));
}

#[tokio::test(flavor = "multi_thread")]
async fn limit_and_concurrent_are_respected() {
    let fake = FakeCoordinator::start().await;
    let (_repo, url, sha) = repo();
    let setup = Setup::new(&fake.url, "");
    let d = setup.dir.path().display();
    let config = |limit: i64| {
        format!(
            "concurrent = 2\ncheck_interval = 1\n\n[[runners]]\n  name = \"test-runner\"\n  url = \"{}\"\n  token = \"{RUNNER_TOKEN}\"\n  executor = \"shell\"\n  limit = {limit}\n  builds_dir = \"{d}/builds\"\n  cache_dir = \"{d}/cache\"\n",
            fake.url
        )
    };
    std::fs::write(&setup.config, config(1)).unwrap();
    fake.push_job(job(1, &url, &sha, &["sleep 2"]));
    fake.push_job(job(2, &url, &sha, &["sleep 2"]));
    let mut runner = setup.run(&[]);
    let first = fake.wait_final(1, Duration::from_secs(60)).await.unwrap();
    let second = fake.wait_final(2, Duration::from_secs(60)).await.unwrap();
    // limit = 1: the second job was only taken after the first was over.
    let first_done = first.patches.last().unwrap().at;
    assert!(
        second.handed_out >= first_done,
        "limit 1 ran two jobs at once"
    );

    // limit = 0 (unlimited) and concurrent = 2: two jobs at once.
    std::fs::write(&setup.config, config(0)).unwrap();
    assert!(
        runner
            .wait_log("Configuration loaded", Duration::from_secs(1))
            .await
    );
    let loaded = |r: &Runner| r.output().matches("Configuration loaded").count();
    let deadline = Instant::now() + Duration::from_secs(10);
    while loaded(&runner) < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(loaded(&runner), 2, "{}", runner.output());
    fake.push_job(job(3, &url, &sha, &["sleep 2"]));
    fake.push_job(job(4, &url, &sha, &["sleep 2"]));
    let third = fake.wait_final(3, Duration::from_secs(60)).await.unwrap();
    let fourth = fake.wait_final(4, Duration::from_secs(60)).await.unwrap();
    let third_done = third.patches.last().unwrap().at;
    assert!(
        fourth.handed_out < third_done,
        "concurrent 2 did not run two jobs at once"
    );
    runner.signal("TERM");
    assert!(runner.wait_exit(Duration::from_secs(20)).await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_executor_parks_the_entry() {
    let fake = FakeCoordinator::start().await;
    let setup = Setup::new(&fake.url, "concurrent = 1\ncheck_interval = 1");
    let text = std::fs::read_to_string(&setup.config)
        .unwrap()
        .replace("executor = \"shell\"", "executor = \"kubernetes\"");
    std::fs::write(&setup.config, text).unwrap();
    let mut runner = setup.run(&[]);
    assert!(
        runner
            .wait_log("is unhealthy and will be disabled", Duration::from_secs(20))
            .await,
        "{}",
        runner.output()
    );
    let out = runner.output();
    assert_eq!(
        out.matches("Executor \"kubernetes\" is not known; marking Runner as unhealthy")
            .count(),
        3,
        "{out}"
    );
    assert!(out.contains("fix `executor`"), "{out}");
    assert!(
        fake.job_requests().is_empty(),
        "asked for jobs it cannot run"
    );
    runner.signal("TERM");
    assert!(runner.wait_exit(Duration::from_secs(20)).await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn token_is_rotated_at_three_quarters_of_its_lifetime_and_saved() {
    let fake = FakeCoordinator::start().await;
    let setup = Setup::new(
        &fake.url,
        "# keep this comment\nconcurrent = 1\ncheck_interval = 1",
    );
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut config = std::fs::read_to_string(&setup.config).unwrap();
    config.push_str(&format!(
        "  token_obtained_at = {}\n  token_expires_at = {}\n",
        fmt(now - chrono::Duration::hours(3)),
        fmt(now + chrono::Duration::minutes(59))
    ));
    std::fs::write(&setup.config, config).unwrap();
    let mut runner = setup.run(&[]);
    let rotated = forerunner_testkit::fake::rotated_token(1);
    assert!(
        fake.wait_for(Duration::from_secs(20), |f| {
            f.job_requests()
                .iter()
                .any(|(_, r)| r["token"] == rotated.as_str())
        })
        .await,
        "{}",
        runner.output()
    );
    assert_eq!(fake.token_resets(), vec![RUNNER_TOKEN.to_owned()]);
    let saved = std::fs::read_to_string(&setup.config).unwrap();
    assert!(saved.contains(&format!("token = \"{rotated}\"")), "{saved}");
    assert!(saved.contains("# keep this comment"), "{saved}");
    assert!(!saved.contains(RUNNER_TOKEN), "{saved}");
    let out = runner.output();
    assert!(
        out.contains("Resetting runner authentication token... succeeded"),
        "{out}"
    );
    assert!(!out.contains(&rotated), "new token printed:\n{out}");
    runner.signal("TERM");
    assert!(runner.wait_exit(Duration::from_secs(20)).await.success());
}

/// A job whose after_script reports `CI_JOB_STATUS`.
fn cancelable_job(url: &str, sha: &str, script: &[&str]) -> JobResponse {
    let mut j = job(1, url, sha, script);
    j.steps.push(JobStep {
        name: StepName::AfterScript,
        script: vec!["echo \"after_script saw $CI_JOB_STATUS\"".into()],
        timeout: 60,
        when: When::Always,
        allow_failure: true,
    });
    j
}

async fn cancel_case(script: &[&str], within: Duration) -> FakeJob {
    cancel_case_with(script, within, Some(1)).await
}

/// [`cancel_case`] with the coordinator asking for this trace update
/// interval (`None`: no header).
async fn cancel_case_with(script: &[&str], within: Duration, interval: Option<u64>) -> FakeJob {
    let fake = FakeCoordinator::start().await;
    let (_repo, url, sha) = repo();
    fake.set_trace_update_interval(interval);
    fake.push_job(cancelable_job(&url, &sha, script));
    let setup = Setup::new(&fake.url, "concurrent = 1\ncheck_interval = 1");
    let mut runner = setup.run(&[]);
    assert!(
        fake.wait_for(Duration::from_secs(30), |f| {
            f.job(1)
                .is_some_and(|j| text(&j.trace).contains("\nstarted\n"))
        })
        .await,
        "{}",
        runner.output()
    );
    let canceled_at = Instant::now();
    fake.set_job_status(1, "canceling");
    let done = fake
        .wait_final(1, within + Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no final update:\n{}", runner.output()));
    assert!(
        canceled_at.elapsed() < within,
        "cancel took {:?}",
        canceled_at.elapsed()
    );
    let trace = text(&done.trace);
    assert!(trace.contains("after_script saw canceled"), "{trace}");
    let fin = done.final_update().unwrap();
    assert_eq!(fin["state"], "failed");
    assert_eq!(fin["output"]["checksum"], done.trace_checksum().as_str());
    runner.signal("TERM");
    assert!(runner.wait_exit(Duration::from_secs(20)).await.success());
    done
}

#[tokio::test(flavor = "multi_thread")]
async fn server_cancel_is_graceful_and_after_script_runs() {
    cancel_case(
        &[
            "echo started",
            "for i in $(seq 1 300); do echo tick $i; sleep 0.2; done",
        ],
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_job_learns_of_its_cancel_from_the_keep_alive() {
    // No output, so no trace patch carries the status: the keep-alive
    // `PUT state=running` after 30 s of silence does (the coordinator asks
    // for no particular trace interval).
    let done = cancel_case_with(
        &["echo started", "sleep 120"],
        Duration::from_secs(45),
        None,
    )
    .await;
    let touch = done
        .updates
        .iter()
        .skip(1)
        .find(|u| u["state"] == "running")
        .expect("a keep-alive update");
    assert!(touch["output"]["bytesize"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_job_checks_in_at_the_trace_update_interval() {
    // The coordinator asks for a trace every second (as `forerunner exec`'s
    // does): a silent job's keep-alive follows that pace, so its cancel is
    // seen within seconds rather than after 30 s.
    let done = cancel_case(&["echo started", "sleep 120"], Duration::from_secs(10)).await;
    let touch = done
        .updates
        .iter()
        .skip(1)
        .find(|u| u["state"] == "running")
        .expect("a keep-alive update");
    assert!(touch["output"]["bytesize"].as_u64().unwrap() > 0);
    assert!(touch["output"]["checksum"]
        .as_str()
        .unwrap()
        .starts_with("crc32:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn run_single_takes_an_entry_from_config_and_run_refuses_concurrent_0() {
    let fake = FakeCoordinator::start().await;
    let (_repo, url, sha) = repo();
    fake.push_job(job(1, &url, &sha, &["echo from-config-entry"]));
    let setup = Setup::new(&fake.url, "concurrent = 1");
    let args: Vec<String> = [
        "run-single",
        "--config",
        setup.config.to_str().unwrap(),
        "--runner-name",
        "test-runner",
        "--max-builds",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut runner = Runner::spawn(&args, setup.dir.path());
    assert!(runner.wait_exit(Duration::from_secs(60)).await.success());
    let done = fake.job(1).unwrap();
    assert_eq!(done.final_update().unwrap()["state"], "success");
    assert!(text(&done.trace).contains("\nfrom-config-entry\n"));

    // An unknown entry name says where to look.
    let args: Vec<String> = [
        "run-single",
        "--config",
        setup.config.to_str().unwrap(),
        "--runner-name",
        "nope",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut runner = Runner::spawn(&args, setup.dir.path());
    assert!(!runner.wait_exit(Duration::from_secs(20)).await.success());
    assert!(runner
        .output()
        .contains("there is no runner named \"nope\""));

    // concurrent = 0 would process nothing: refused with the fix.
    setup.write(&fake.url, RUNNER_TOKEN, "concurrent = 0");
    let mut runner = setup.run(&[]);
    assert!(!runner.wait_exit(Duration::from_secs(20)).await.success());
    let out = runner.output();
    assert!(out.contains("'concurrent = 0'"), "{out}");
    assert!(out.contains("set `concurrent = 1` or more"), "{out}");
}
