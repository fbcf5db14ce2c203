//! Our runner against our coordinator, nothing faked: the test starts the
//! coordinator on 127.0.0.1:0, creates a runner with `POST /user/runners`,
//! registers it with `forerunner register --token glrt-…` (shell executor)
//! and starts `forerunner run` on the resulting config.toml. Pipelines come
//! from a real git repository; what happened is read back through the REST
//! API (job status, `failure_reason`, trace) and from the trace files in the
//! coordinator's data directory.
//!
//! One test per behaviour of the runner/coordinator pair: artifacts across
//! three stages, a failing job, `after_script` after a failure, a job
//! timeout, a graceful cancel, masking (also of a secret printed one
//! character at a time across trace patches), a cache shared by two
//! pipelines, and `SIGTERM` while a job runs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use forerunner_coordinator::config::CiSettings;
use forerunner_testkit::TestCoordinator;
use serde_json::{json, Value};

use crate::ci_support::{create_pipeline, project_with_ci, CiProject};
use crate::runner_support::Runner;

/// Longest any one scenario may take before the test fails.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(60);

/// A coordinator with one project, and a registered shell runner for it.
struct Harness {
    c: TestCoordinator,
    project: CiProject,
    /// HOME of the runner; holds config.toml, `builds/` and `cache/`.
    dir: tempfile::TempDir,
    config: PathBuf,
    runner_id: i64,
    runner_token: String,
}

impl Harness {
    /// Starts a coordinator that asks for a trace patch every second (so a
    /// cancel is seen quickly), creates the project from `yaml`, creates a
    /// runner and registers it with `forerunner register`.
    async fn new(name: &str, yaml: &str) -> Harness {
        Self::with_settings(
            name,
            yaml,
            CiSettings {
                trace_update_interval: 1,
                ..CiSettings::default()
            },
        )
        .await
    }

    /// Like [`Harness::new`] with these coordinator settings.
    async fn with_settings(name: &str, yaml: &str, settings: CiSettings) -> Harness {
        let c = TestCoordinator::spawn_with(settings).await;
        let project = project_with_ci(&c, name, yaml).await;
        let (runner_id, runner_token) = c
            .create_runner(json!({"runner_type": "instance_type", "run_untagged": true}))
            .await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        let h = Harness {
            c,
            project,
            dir,
            config,
            runner_id,
            runner_token,
        };
        h.register().await;
        h
    }

    /// A command running the binary with a clean environment.
    fn command(&self) -> tokio::process::Command {
        crate::runner_support::forerunner(self.dir.path())
    }

    /// `forerunner register --non-interactive --token glrt-… --executor shell`.
    async fn register(&self) {
        assert!(
            self.runner_token.starts_with("glrt-"),
            "POST /user/runners gave {}…",
            &self.runner_token[..5.min(self.runner_token.len())]
        );
        let d = self.dir.path();
        let out = self
            .command()
            .args(["register", "--non-interactive", "--url", &self.c.url])
            .args(["--token", &self.runner_token])
            .args(["--name", "e2e-runner", "--executor", "shell"])
            .arg("--builds-dir")
            .arg(d.join("builds"))
            .arg("--cache-dir")
            .arg(d.join("cache"))
            .arg("--config")
            .arg(&self.config)
            .output()
            .await
            .expect("failed to run forerunner register");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "register failed:\n{all}");
        assert!(
            !all.contains(&self.runner_token),
            "register printed the full token:\n{all}"
        );
    }

    /// Sets the global `concurrent` of config.toml.
    fn set_concurrent(&self, n: usize) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("concurrent ="))
            .map(str::to_owned)
            .collect();
        lines.insert(0, format!("concurrent = {n}"));
        std::fs::write(&self.config, lines.join("\n") + "\n").unwrap();
    }

    /// Starts `forerunner run` on the registered config.toml.
    fn run(&self) -> Runner {
        let args: Vec<String> = vec![
            "run".into(),
            "--config".into(),
            self.config.display().to_string(),
            "--working-directory".into(),
            self.dir.path().display().to_string(),
        ];
        Runner::spawn(&args, self.dir.path())
    }

    /// Creates a pipeline on `main`; its id.
    async fn pipeline(&self) -> i64 {
        create_pipeline(&self.c, self.project.id, "main").await["id"]
            .as_i64()
            .unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        self.c
            .root_request(reqwest::Method::GET, path, None)
            .await
            .unwrap()
    }

    /// Waits until the pipeline is over; its final JSON.
    async fn finished_pipeline(&self, pipeline: i64, runner: &Runner) -> Value {
        let deadline = Instant::now() + PIPELINE_TIMEOUT;
        loop {
            let p = self
                .get(&format!(
                    "/projects/{}/pipelines/{pipeline}",
                    self.project.id
                ))
                .await;
            if matches!(
                p["status"].as_str(),
                Some("success" | "failed" | "canceled" | "skipped")
            ) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "pipeline {pipeline} still {} after {PIPELINE_TIMEOUT:?}:\n{}",
                p["status"],
                runner.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The pipeline's job called `name`, as `GET /projects/:id/jobs/:id` shows it.
    async fn job(&self, pipeline: i64, name: &str) -> Value {
        let jobs = self
            .get(&format!(
                "/projects/{}/pipelines/{pipeline}/jobs?per_page=100",
                self.project.id
            ))
            .await;
        let id = jobs
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .unwrap_or_else(|| panic!("no job {name} in {jobs}"))["id"]
            .as_i64()
            .unwrap();
        self.get(&format!("/projects/{}/jobs/{id}", self.project.id))
            .await
    }

    /// `GET /projects/:id/jobs/:id/trace`: the raw stored trace.
    async fn trace(&self, job_id: i64) -> String {
        let resp = self
            .c
            .client()
            .get(self.c.api(&format!(
                "/projects/{}/jobs/{job_id}/trace",
                self.project.id
            )))
            .header("PRIVATE-TOKEN", &self.c.root_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "GET trace of job {job_id}");
        resp.text().await.unwrap()
    }

    /// The trace file in the coordinator's data directory.
    fn trace_file(&self, job_id: i64) -> Vec<u8> {
        let path = self
            .c
            .data_dir
            .path()
            .join("traces")
            .join(format!("{job_id}.log"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Waits until the stored trace of `job_id` contains `needle`.
    async fn wait_trace(&self, job_id: i64, needle: &str, runner: &Runner) {
        let deadline = Instant::now() + PIPELINE_TIMEOUT;
        while !self.trace(job_id).await.contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the trace of job {job_id} never showed {needle:?}:\n{}\n--- runner ---\n{}",
                self.trace(job_id).await,
                runner.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The only job of `pipeline`, waiting until a runner has it.
    async fn running_job(&self, pipeline: i64, runner: &Runner) -> i64 {
        let deadline = Instant::now() + PIPELINE_TIMEOUT;
        loop {
            let jobs = self
                .get(&format!(
                    "/projects/{}/pipelines/{pipeline}/jobs",
                    self.project.id
                ))
                .await;
            if let Some(job) = jobs
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["status"] == "running")
            {
                return job["id"].as_i64().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no job of pipeline {pipeline} started:\n{jobs}\n{}",
                runner.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the runner with SIGTERM (nothing is running) and the coordinator.
    async fn stop(self, mut runner: Runner) {
        runner.signal("TERM");
        let status = runner.wait_exit(Duration::from_secs(30)).await;
        assert!(status.success(), "{status}:\n{}", runner.output());
        assert!(
            !runner.output().contains(&self.runner_token),
            "the runner printed its full token:\n{}",
            runner.output()
        );
        self.c.stop().await.unwrap();
    }
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

const THREE_STAGES: &str = r#"
stages: [build, test, deploy]
build:
  stage: build
  script:
    - mkdir -p out
    - echo "built $CI_COMMIT_SHORT_SHA in pipeline $CI_PIPELINE_ID" > out/build.txt
    - cat README.md
  artifacts:
    paths: [out/]
test:
  stage: test
  script:
    - test ! -e report
    - mkdir -p report
    - echo "tested <$(cat out/build.txt)>" > report/test.txt
  artifacts:
    paths: [report/]
deploy:
  stage: deploy
  script:
    - echo "deploy got [$(cat out/build.txt)] and [$(cat report/test.txt)]"
"#;

/// Done when: register with a `glrt-` token (`forerunner register`, then
/// `forerunner run`), a three-stage pipeline from a real git repository
/// with artifacts passed between jobs.
#[tokio::test(flavor = "multi_thread")]
async fn registered_runner_runs_a_three_stage_pipeline_passing_artifacts() {
    let h = Harness::new("three-stages", THREE_STAGES).await;
    let config = std::fs::read_to_string(&h.config).unwrap();
    assert!(
        config.contains(&format!("token = \"{}\"", h.runner_token)),
        "register saved the glrt- token:\n{config}"
    );
    assert!(config.contains("executor = \"shell\""), "{config}");
    let runner = h.run();
    let pipeline = h.pipeline().await;
    let p = h.finished_pipeline(pipeline, &runner).await;
    assert_eq!(p["status"], "success", "{p}\n{}", runner.output());

    let build = h.job(pipeline, "build").await;
    let test = h.job(pipeline, "test").await;
    let deploy = h.job(pipeline, "deploy").await;
    for job in [&build, &test, &deploy] {
        assert_eq!(job["status"], "success", "{job}");
        assert_eq!(job["runner"]["id"], h.runner_id, "run by our runner: {job}");
    }
    // The sources came from the repository over HTTP with the job token.
    assert!(h.trace(id(&build)).await.contains("hello\n"));
    // `test` got build's artifact and passed its own on; `deploy` read both
    // (the shell executor's `git clean` removed what the earlier jobs left
    // in the shared project directory, so only the artifacts bring them).
    let sha = p["sha"].as_str().unwrap();
    let built = format!("built {} in pipeline {pipeline}", &sha[..8]);
    let test_trace = h.trace(id(&test)).await;
    assert!(
        test_trace.contains(&format!("Downloading artifacts for build ({})", id(&build))),
        "{test_trace}"
    );
    let deploy_trace = h.trace(id(&deploy)).await;
    assert!(
        deploy_trace.contains(&format!("Downloading artifacts for build ({})", id(&build)))
            && deploy_trace.contains(&format!("Downloading artifacts for test ({})", id(&test))),
        "{deploy_trace}"
    );
    assert!(
        deploy_trace.contains(&format!("deploy got [{built}] and [tested <{built}>]")),
        "deploy did not read both artifacts:\n{deploy_trace}"
    );
    for job in [&build, &test] {
        assert!(job["artifacts_file"]["filename"].is_string(), "{job}");
    }
    // The runner shows up as contacted, under the id it was created with.
    let details = h.get(&format!("/runners/{}", h.runner_id)).await;
    assert!(details["contacted_at"].is_string(), "{details}");
    h.stop(runner).await;
}

const FAILING: &str = r#"
fails:
  script:
    - echo "about to fail"
    - exit 42
    - echo "never printed"
  after_script:
    - echo "after_script ran with CI_JOB_STATUS=$CI_JOB_STATUS"
"#;

/// Runs the `fails` job; (harness, runner, job JSON, stored trace).
async fn run_failing_job(name: &str) -> (Harness, Runner, Value, String) {
    let h = Harness::new(name, FAILING).await;
    let runner = h.run();
    let pipeline = h.pipeline().await;
    let p = h.finished_pipeline(pipeline, &runner).await;
    assert_eq!(p["status"], "failed", "{p}\n{}", runner.output());
    let job = h.job(pipeline, "fails").await;
    let trace = h.trace(id(&job)).await;
    (h, runner, job, trace)
}

/// Done when: a failing job with its exit code and `script_failure`.
#[tokio::test(flavor = "multi_thread")]
async fn failing_job_reports_its_exit_code_and_script_failure() {
    let (h, runner, job, trace) = run_failing_job("failing").await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["failure_reason"], "script_failure", "{job}");
    // GitLab's REST job entity has no exit code: the final PUT's
    // `exit_code` is what the coordinator stored, and the trace says it.
    let stored = h.c.store().ci.job_by_id(id(&job)).await.unwrap().unwrap();
    assert_eq!(stored.exit_code, Some(42), "exit_code of the final update");
    assert!(
        trace.contains("ERROR: Job failed: exit code 42"),
        "{trace}\n{}",
        runner.output()
    );
    assert!(trace.contains("about to fail") && !trace.contains("never printed"));
    h.stop(runner).await;
}

/// Done when: `after_script` output present after a failure.
#[tokio::test(flavor = "multi_thread")]
async fn after_script_output_is_in_the_trace_after_a_failure() {
    let (h, runner, job, trace) = run_failing_job("after-failure").await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        trace.contains("after_script ran with CI_JOB_STATUS=failed"),
        "{trace}"
    );
    // after_script runs after the script and before the verdict.
    let after = trace.find("after_script ran").unwrap();
    assert!(trace.find("about to fail").unwrap() < after);
    assert!(after < trace.find("ERROR: Job failed").unwrap());
    h.stop(runner).await;
}

/// Done when: a job timeout (`job_execution_timeout`).
#[tokio::test(flavor = "multi_thread")]
async fn job_timeout_fails_with_job_execution_timeout() {
    let yaml = r#"
slow:
  timeout: 3 seconds
  script:
    - echo "sleeping past the timeout"
    - sleep 60
    - echo "never printed"
  after_script:
    - echo "after_script after timeout, CI_JOB_STATUS=$CI_JOB_STATUS"
"#;
    // The coordinator looks for timed-out jobs often: the runner, which
    // enforces the timeout, must still be the one that reports it.
    let h = Harness::with_settings(
        "timeout",
        yaml,
        CiSettings {
            trace_update_interval: 1,
            sweep_interval: Duration::from_millis(50),
            ..CiSettings::default()
        },
    )
    .await;
    let runner = h.run();
    let started = Instant::now();
    let pipeline = h.pipeline().await;
    let p = h.finished_pipeline(pipeline, &runner).await;
    let took = started.elapsed();
    assert_eq!(p["status"], "failed", "{p}");
    let job = h.job(pipeline, "slow").await;
    assert_eq!(job["failure_reason"], "job_execution_timeout", "{job}");
    assert!(
        took < Duration::from_secs(30),
        "the job was not stopped at its timeout ({took:?})"
    );
    // The runner stopped the job itself and said so.
    let trace = h.trace(id(&job)).await;
    assert!(trace.contains("sleeping past the timeout"), "{trace}");
    assert!(!trace.contains("never printed"), "{trace}");
    assert!(
        trace.contains("after_script after timeout, CI_JOB_STATUS=timedout"),
        "{trace}\n{}",
        runner.output()
    );
    assert!(
        trace.contains("ERROR: Job failed: execution took longer than 3s seconds"),
        "{trace}\n{}",
        runner.output()
    );
    h.stop(runner).await;
}

/// Done when: cancel mid-job (graceful, after_script runs).
#[tokio::test(flavor = "multi_thread")]
async fn cancel_mid_job_is_graceful_and_after_script_runs() {
    let yaml = r#"
long:
  script:
    - echo "waiting for cancel"
    - for i in $(seq 1 240); do echo "tick $i"; sleep 0.25; done
    - echo "never finished"
  after_script:
    - echo "after_script after cancel, CI_JOB_STATUS=$CI_JOB_STATUS"
"#;
    let h = Harness::new("cancel", yaml).await;
    let runner = h.run();
    let pipeline = h.pipeline().await;
    let job_id = h.running_job(pipeline, &runner).await;
    h.wait_trace(job_id, "waiting for cancel", &runner).await;
    let canceled_at = Instant::now();
    let job =
        h.c.root_request(
            reqwest::Method::POST,
            &format!("/projects/{}/jobs/{job_id}/cancel", h.project.id),
            None,
        )
        .await
        .unwrap();
    assert_eq!(job["status"], "canceling", "{job}");
    let p = h.finished_pipeline(pipeline, &runner).await;
    assert_eq!(p["status"], "canceled", "{p}");
    assert!(
        canceled_at.elapsed() < Duration::from_secs(20),
        "the cancel took {:?}",
        canceled_at.elapsed()
    );
    let job = h.job(pipeline, "long").await;
    assert_eq!(job["status"], "canceled", "{job}");
    let trace = h.trace(job_id).await;
    assert!(
        trace.contains("after_script after cancel, CI_JOB_STATUS=canceled"),
        "after_script did not run:\n{trace}\n{}",
        runner.output()
    );
    assert!(!trace.contains("never finished"), "{trace}");
    assert!(!trace.contains("tick 240\n"), "the script was not stopped");
    // The runner's own log says why, not a runner failure.
    assert!(
        runner.output().contains("Job failed: job_canceled"),
        "{}",
        runner.output()
    );
    h.stop(runner).await;
}

/// Done when: a masked variable never appears in any stored trace, also
/// when printed one character at a time.
#[tokio::test(flavor = "multi_thread")]
async fn masked_variable_never_reaches_a_stored_trace() {
    const SECRET: &str = "Zx9Qp7Wm4Rt2Kv8N";
    let yaml = r#"
leak:
  script:
    - 'echo "plain: $SECRET_VALUE"'
    - 'echo "to stderr: $SECRET_VALUE" >&2'
    - 'echo "half: ${SECRET_VALUE:0:8}!"'
    - 'echo "job token: $CI_JOB_TOKEN, repository: $CI_REPOSITORY_URL"'
    - 'printf "slow: "; for ((i=0; i<${#SECRET_VALUE}; i++)); do printf "%s" "${SECRET_VALUE:$i:1}"; sleep 0.2; done; echo " done"'
  after_script:
    - 'echo "after: $SECRET_VALUE"'
"#;
    let h = Harness::new("masking", yaml).await;
    h.c.root_request(
        reqwest::Method::POST,
        &format!("/projects/{}/variables", h.project.id),
        Some(json!({"key": "SECRET_VALUE", "value": SECRET, "masked": true})),
    )
    .await
    .unwrap();
    let runner = h.run();
    let pipeline = h.pipeline().await;
    let p = h.finished_pipeline(pipeline, &runner).await;
    assert_eq!(p["status"], "success", "{p}\n{}", runner.output());
    let job = h.job(pipeline, "leak").await;
    let trace = h.trace(id(&job)).await;
    let file = h.trace_file(id(&job));
    assert_eq!(file, trace.as_bytes(), "the API serves the stored file");
    let file = String::from_utf8_lossy(&file);
    for (what, text) in [("GET trace", trace.as_str()), ("trace file", &file)] {
        assert!(!text.contains(SECRET), "{what} holds the secret:\n{text}");
        // No run of the secret's characters in the order printed either.
        assert!(!text.contains(&SECRET[..9]), "{what}:\n{text}");
    }
    for line in [
        "plain: [MASKED]",
        "to stderr: [MASKED]",
        "slow: [MASKED] done",
        "after: [MASKED]",
        // The job token is masked too, also inside the repository URL.
        "job token: [MASKED], repository: http://gitlab-ci-token:[MASKED]@",
    ] {
        assert!(trace.contains(line), "{line:?} missing:\n{trace}");
    }
    // A prefix of the secret that turns out not to be the secret is kept.
    assert!(
        trace.contains(&format!("half: {}!", &SECRET[..8])),
        "{trace}"
    );
    // The slow print spanned several patches (1 s interval, 3.2 s of
    // printing) yet nothing of it leaked at a patch boundary: checked above
    // on the stored bytes, which are exactly the patches concatenated.
    assert!(!runner.output().contains(SECRET), "the runner log has it");
    h.stop(runner).await;
}

/// Done when: cache reused between two pipelines.
#[tokio::test(flavor = "multi_thread")]
async fn cache_is_reused_by_the_next_pipeline() {
    let yaml = r#"
cached:
  cache:
    key: deps
    paths: [vendor/]
  script:
    - 'if [ -f vendor/stamp ]; then echo "cache hit: $(cat vendor/stamp)"; else echo "cache miss"; mkdir -p vendor; echo "written by pipeline $CI_PIPELINE_ID" > vendor/stamp; fi'
"#;
    let h = Harness::new("cache", yaml).await;
    let runner = h.run();
    let first = h.pipeline().await;
    let p = h.finished_pipeline(first, &runner).await;
    assert_eq!(p["status"], "success", "{p}");
    let trace = h.trace(id(&h.job(first, "cached").await)).await;
    assert!(trace.contains("cache miss"), "{trace}");
    assert!(trace.contains("Created cache deps"), "{trace}");
    // Nothing of the first run survives in the builds directory: only the
    // cache can bring the file back.
    std::fs::remove_dir_all(h.dir.path().join("builds")).unwrap();
    let second = h.pipeline().await;
    let p = h.finished_pipeline(second, &runner).await;
    assert_eq!(p["status"], "success", "{p}");
    let trace = h.trace(id(&h.job(second, "cached").await)).await;
    assert!(
        trace.contains(&format!("cache hit: written by pipeline {first}")),
        "{trace}\n{}",
        runner.output()
    );
    assert!(trace.contains("Successfully extracted cache"), "{trace}");
    h.stop(runner).await;
}

/// Done when: `forerunner run` stopped with SIGTERM while a job runs: the
/// job finishes and is reported.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_running_job_finish_and_report() {
    let yaml = r#"
stages: [first, second]
busy:
  stage: first
  script:
    - echo "job started"
    - sleep 3
    - echo "job finished normally"
next:
  stage: second
  script:
    - echo "must not run on a stopping runner"
"#;
    let h = Harness::new("sigterm", yaml).await;
    // Two slots: while the job runs, the other one waits in a long poll
    // that the shutdown must withdraw.
    h.set_concurrent(2);
    let mut runner = h.run();
    let pipeline = h.pipeline().await;
    let job_id = h.running_job(pipeline, &runner).await;
    h.wait_trace(job_id, "job started", &runner).await;
    runner.signal("TERM");
    let status = runner.wait_exit(Duration::from_secs(30)).await;
    let out = runner.output();
    assert!(status.success(), "{status}:\n{out}");
    assert!(
        out.contains("Starting graceful shutdown"),
        "no graceful shutdown:\n{out}"
    );
    // Reported before the runner exited: nothing is left running.
    let job = h.job(pipeline, "busy").await;
    assert_eq!(job["status"], "success", "{job}\n{out}");
    let trace = h.trace(job_id).await;
    assert!(trace.contains("job finished normally"), "{trace}");
    assert!(trace.contains("Job succeeded"), "{trace}");
    // The next stage became pending when `busy` succeeded; the stopping
    // runner did not take it (nor did a withdrawn request claim it).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let next = h.job(pipeline, "next").await;
    assert_eq!(next["status"], "pending", "{next}\n{out}");
    h.c.stop().await.unwrap();
}
