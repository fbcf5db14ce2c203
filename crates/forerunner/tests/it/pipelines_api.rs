//! Pipelines end to end: created through the REST API from a real git
//! repository, run by a test client speaking the runner protocol, moved
//! forward by the coordinator (stages, `needs`, `when`, `allow_failure`,
//! manual jobs, cancel, retry).

use forerunner_protocol::jobs::{JobState, StepName};
use forerunner_testkit::TestCoordinator;
use reqwest::StatusCode;
use serde_json::json;

use crate::ci_support::{
    create_pipeline, instance_runner, job_status, pipeline_jobs, pipeline_status, project_in_group,
    project_with_ci, zip_of,
};

const THREE_STAGES: &str = r#"
stages: [build, test, deploy]
build:
  stage: build
  before_script: [echo before]
  script: [echo build > out/result.txt]
  after_script: [echo after]
  artifacts:
    paths: [out/]
lint:
  stage: build
  script: [exit 1]
  allow_failure: true
unit:
  stage: test
  needs: [build]
  script: [cat out/result.txt]
slow:
  stage: test
  script: [echo slow]
cleanup:
  stage: deploy
  when: on_failure
  script: [echo cleanup]
deploy:
  stage: deploy
  when: manual
  script: [echo deploy]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn three_stages_with_needs_artifacts_allow_failure_and_a_manual_job() {
    let c = TestCoordinator::spawn().await;
    let project = project_with_ci(&c, "three", THREE_STAGES).await;
    let runner = instance_runner(&c).await;
    let pipeline = create_pipeline(&c, project.id, "main").await;
    let pid = pipeline["id"].as_i64().unwrap();
    assert_eq!(pipeline["ref"], "main");
    assert_eq!(pipeline["status"], "pending");
    assert_eq!(pipeline["sha"].as_str().unwrap().len(), 40);

    // Stage 1: build and lint are pending, the rest waits.
    let build = runner.request_now().await.unwrap().job();
    assert_eq!(build.job_info.name, "build");
    assert_eq!(build.job_info.pipeline_id, pid);
    assert!(build.token.starts_with("glcbt-"), "{}", build.token);
    assert_eq!(build.steps[0].name, StepName::Script);
    assert_eq!(
        build.steps[0].script,
        ["echo before", "echo build > out/result.txt"]
    );
    assert_eq!(build.steps[1].name, StepName::AfterScript);
    assert_eq!(build.artifacts[0].paths, ["out/"]);
    assert_eq!(build.variable("CI_JOB_TOKEN"), Some(build.token.as_str()));
    assert_eq!(
        build.variable("CI_PIPELINE_ID"),
        Some(pid.to_string().as_str())
    );
    assert_eq!(build.variable("CI_COMMIT_REF_NAME"), Some("main"));
    assert_eq!(build.variable("CI_COMMIT_BRANCH"), Some("main"));
    assert_eq!(
        build.variable("CI_PROJECT_PATH"),
        Some(project.full_path.as_str())
    );
    assert_eq!(build.variable("CI_DEFAULT_BRANCH"), Some("main"));
    assert_eq!(build.variable("GITLAB_CI"), Some("true"));
    assert_eq!(build.variable("CI_COMMIT_MESSAGE"), Some("initial commit"));
    assert_eq!(build.variable("CI_COMMIT_TITLE"), Some("initial commit"));
    assert_eq!(
        build.variable("CI_COMMIT_AUTHOR"),
        Some("Test <test@example.com>")
    );
    assert_eq!(
        build.variable("CI_API_V4_URL"),
        Some(format!("{}/api/v4", c.url).as_str())
    );
    let host = c.url.trim_start_matches("http://");
    assert_eq!(
        build.git_info.repo_url,
        format!(
            "http://gitlab-ci-token:{}@{host}/{}.git",
            build.token, project.full_path
        )
    );
    assert_eq!(build.git_info.sha, pipeline["sha"].as_str().unwrap());
    assert!(build
        .git_info
        .refspecs
        .contains(&"+refs/heads/main:refs/remotes/origin/main".to_owned()));
    assert_eq!(build.runner_info.timeout, 3600);
    assert!(build.features.trace_sections);
    assert_eq!(job_status(&c, project.id, pid, "unit").await, "created");

    let archive = zip_of(&[("out/result.txt", "built\n")]);
    assert_eq!(
        runner
            .upload_artifacts(&build, archive.clone())
            .await
            .unwrap(),
        StatusCode::CREATED
    );
    assert_eq!(runner.finish(&build, true).await.unwrap(), StatusCode::OK);

    // `unit` needs only build, so it is pending although lint is not done.
    assert_eq!(job_status(&c, project.id, pid, "unit").await, "pending");
    assert_eq!(job_status(&c, project.id, pid, "slow").await, "created");
    let lint = runner.request_now().await.unwrap().job();
    assert_eq!(lint.job_info.name, "lint");
    assert_eq!(runner.finish(&lint, false).await.unwrap(), StatusCode::OK);
    assert_eq!(job_status(&c, project.id, pid, "lint").await, "failed");

    let unit = runner.request_now().await.unwrap().job();
    assert_eq!(unit.job_info.name, "unit");
    let dep = &unit.dependencies[0];
    assert_eq!(dep.id, build.id);
    assert_eq!(
        dep.artifacts_file.as_ref().unwrap().size,
        archive.len() as i64
    );
    let (status, bytes) = runner
        .download_artifacts(build.id, &unit.token)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        bytes, archive,
        "the later job gets the archive build uploaded"
    );
    // A job that does not depend on build may not download its artifacts.
    let (status, _) = runner
        .download_artifacts(lint.id, &unit.token)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(runner.finish(&unit, true).await.unwrap(), StatusCode::OK);

    let slow = runner.request_now().await.unwrap().job();
    assert_eq!(slow.job_info.name, "slow");
    assert_eq!(runner.finish(&slow, true).await.unwrap(), StatusCode::OK);

    // The allowed failure counts as success: cleanup (on_failure) is
    // skipped, deploy waits for someone, the pipeline passes.
    assert_eq!(job_status(&c, project.id, pid, "cleanup").await, "skipped");
    assert_eq!(job_status(&c, project.id, pid, "deploy").await, "manual");
    assert_eq!(pipeline_status(&c, project.id, pid).await, "success");
    assert!(matches!(
        runner.request_now().await.unwrap(),
        forerunner_testkit::JobRequestOutcome::NoJob(_)
    ));

    let deploy_id = pipeline_jobs(&c, project.id, pid)
        .await
        .iter()
        .find(|j| j["name"] == "deploy")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let played = c
        .root_request(
            reqwest::Method::POST,
            &format!("/projects/{}/jobs/{deploy_id}/play", project.id),
            None,
        )
        .await
        .unwrap();
    assert_eq!(played["status"], "pending");
    let deploy = runner.request_now().await.unwrap().job();
    assert_eq!(deploy.id, deploy_id);
    assert_eq!(deploy.variable("CI_JOB_MANUAL"), Some("true"));
    assert_eq!(runner.finish(&deploy, true).await.unwrap(), StatusCode::OK);
    assert_eq!(pipeline_status(&c, project.id, pid).await, "success");
    // Playing it again is refused as GitLab refuses it.
    let resp = c
        .client()
        .post(c.api(&format!("/projects/{}/jobs/{deploy_id}/play", project.id)))
        .header("PRIVATE-TOKEN", &c.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // The trace and the archive through the REST API.
    let trace = c
        .client()
        .get(c.api(&format!("/projects/{}/jobs/{}/trace", project.id, build.id)))
        .header("PRIVATE-TOKEN", &c.root_token)
        .send()
        .await
        .unwrap();
    assert!(trace.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(trace.text().await.unwrap(), "running build\n");
    let file = c
        .client()
        .get(c.api(&format!(
            "/projects/{}/jobs/{}/artifacts/out/result.txt",
            project.id, build.id
        )))
        .header("PRIVATE-TOKEN", &c.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.text().await.unwrap(), "built\n");
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn on_failure_jobs_run_after_a_failure_and_the_pipeline_fails() {
    let c = TestCoordinator::spawn().await;
    let yaml = r#"
test:
  stage: test
  script: [exit 1]
deploy:
  stage: deploy
  script: [echo deploy]
notify:
  stage: deploy
  when: on_failure
  script: [echo notify]
always:
  stage: deploy
  when: always
  script: [echo always]
"#;
    let project = project_with_ci(&c, "failing", yaml).await;
    let runner = instance_runner(&c).await;
    let pid = create_pipeline(&c, project.id, "main").await["id"]
        .as_i64()
        .unwrap();
    let test = runner.request_now().await.unwrap().job();
    assert_eq!(runner.finish(&test, false).await.unwrap(), StatusCode::OK);
    assert_eq!(job_status(&c, project.id, pid, "deploy").await, "skipped");
    assert_eq!(job_status(&c, project.id, pid, "notify").await, "pending");
    assert_eq!(job_status(&c, project.id, pid, "always").await, "pending");
    let notify = runner.request_now().await.unwrap().job();
    assert_eq!(notify.job_info.name, "notify");
    runner.finish(&notify, true).await.unwrap();
    let always = runner.request_now().await.unwrap().job();
    runner.finish(&always, true).await.unwrap();
    assert_eq!(pipeline_status(&c, project.id, pid).await, "failed");
    let failed = pipeline_jobs(&c, project.id, pid).await;
    let test_json = failed.iter().find(|j| j["name"] == "test").unwrap();
    assert_eq!(test_json["failure_reason"], "script_failure");
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_while_running_is_seen_on_the_next_trace_patch_then_retry() {
    let c = TestCoordinator::spawn().await;
    let project = project_with_ci(&c, "cancel", "job:\n  script: [sleep 100]\n").await;
    let runner = instance_runner(&c).await;
    let pid = create_pipeline(&c, project.id, "main").await["id"]
        .as_i64()
        .unwrap();
    let job = runner.request_now().await.unwrap().job();
    let first = runner.patch_trace(&job, 0, b"line 1\n").await.unwrap();
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(first.job_status.as_deref(), Some("running"));
    assert_eq!(first.length, Some(7));

    let canceled = c
        .root_request(
            reqwest::Method::POST,
            &format!("/projects/{}/jobs/{}/cancel", project.id, job.id),
            None,
        )
        .await
        .unwrap();
    assert_eq!(canceled["status"], "canceling");
    let next = runner.patch_trace(&job, 7, b"line 2\n").await.unwrap();
    assert_eq!(next.status, StatusCode::ACCEPTED);
    assert_eq!(next.job_status.as_deref(), Some("canceling"));
    let (status, job_status) = runner
        .update(
            &job,
            JobState::Failed,
            Some("script_failure"),
            Some(130),
            Some(14),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job_status.as_deref(), Some("canceled"));
    assert_eq!(pipeline_status(&c, project.id, pid).await, "canceled");

    let retried = c
        .root_request(
            reqwest::Method::POST,
            &format!("/projects/{}/jobs/{}/retry", project.id, job.id),
            None,
        )
        .await
        .unwrap();
    assert_eq!(retried["status"], "pending");
    assert_ne!(retried["id"].as_i64().unwrap(), job.id);
    let again = runner.request_now().await.unwrap().job();
    assert_eq!(again.id, retried["id"].as_i64().unwrap());
    assert_ne!(again.token, job.token);
    assert_eq!(runner.finish(&again, true).await.unwrap(), StatusCode::OK);
    assert_eq!(pipeline_status(&c, project.id, pid).await, "success");
    let all = c
        .root_request(
            reqwest::Method::GET,
            &format!(
                "/projects/{}/pipelines/{pid}/jobs?include_retried=true",
                project.id
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_keyword_retries_a_failed_job_and_pipeline_retry_reruns_failures() {
    let c = TestCoordinator::spawn().await;
    let yaml = "flaky:\n  script: [exit 1]\n  retry: 1\nsolid:\n  script: [exit 1]\n";
    let project = project_with_ci(&c, "retry", yaml).await;
    let runner = instance_runner(&c).await;
    let pid = create_pipeline(&c, project.id, "main").await["id"]
        .as_i64()
        .unwrap();
    let flaky = runner.request_now().await.unwrap().job();
    assert_eq!(flaky.job_info.name, "flaky");
    runner.finish(&flaky, false).await.unwrap();
    let solid = runner.request_now().await.unwrap().job();
    runner.finish(&solid, false).await.unwrap();
    // retry: 1 gave flaky a second attempt; solid stays failed.
    let second = runner.request_now().await.unwrap().job();
    assert_eq!(second.job_info.name, "flaky");
    runner.finish(&second, false).await.unwrap();
    assert!(matches!(
        runner.request_now().await.unwrap(),
        forerunner_testkit::JobRequestOutcome::NoJob(_)
    ));
    assert_eq!(pipeline_status(&c, project.id, pid).await, "failed");

    let p = c
        .root_request(
            reqwest::Method::POST,
            &format!("/projects/{}/pipelines/{pid}/retry", project.id),
            None,
        )
        .await
        .unwrap();
    assert_eq!(p["status"], "pending");
    let a = runner.request_now().await.unwrap().job();
    let b = runner.request_now().await.unwrap().job();
    runner.finish(&a, true).await.unwrap();
    runner.finish(&b, true).await.unwrap();
    assert_eq!(pipeline_status(&c, project.id, pid).await, "success");
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_configuration_and_unknown_refs_answer_400_with_gitlab_messages() {
    let c = TestCoordinator::spawn().await;
    let project =
        project_with_ci(&c, "invalid", "job:\n  stage: nope\n  script: [echo hi]\n").await;
    let post = |body: serde_json::Value| {
        c.client()
            .post(c.api(&format!("/projects/{}/pipeline", project.id)))
            .header("PRIVATE-TOKEN", &c.root_token)
            .json(&body)
            .send()
    };
    let resp = post(json!({"ref": "main"})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = resp.json().await.unwrap();
    let base = body["message"]["base"].as_array().unwrap();
    assert!(!base.is_empty(), "{body}");
    assert!(
        base.iter()
            .any(|m| m.as_str().unwrap().contains("stage `nope` does not exist")),
        "{body}"
    );

    let resp = post(json!({"ref": "no-such-branch"})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"message": {"base": ["Reference not found"]}}));

    let resp = post(json!({})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        json!({"error": "ref is missing"})
    );
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn project_variables_reach_jobs_with_their_flags() {
    let c = TestCoordinator::spawn().await;
    let project = project_with_ci(
        &c,
        "vars",
        "job:\n  variables:\n    FROM_YAML: yaml\n  script: [env]\n",
    )
    .await;
    let path = format!("/projects/{}/variables", project.id);
    let create = |body: serde_json::Value| c.root_request(reqwest::Method::POST, &path, Some(body));
    let v = create(json!({"key": "SECRET", "value": "s3cr3t-value", "masked": true}))
        .await
        .unwrap();
    assert_eq!(v["masked"], true);
    create(json!({"key": "CONFIG", "value": "a=1", "variable_type": "file"}))
        .await
        .unwrap();
    create(json!({"key": "FROM_YAML", "value": "project"}))
        .await
        .unwrap();
    let dup = c
        .client()
        .post(c.api(&format!("/projects/{}/variables", project.id)))
        .header("PRIVATE-TOKEN", &c.root_token)
        .json(&json!({"key": "SECRET", "value": "another-one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), StatusCode::BAD_REQUEST);
    let listed = c
        .root_request(
            reqwest::Method::GET,
            &format!("/projects/{}/variables", project.id),
            None,
        )
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);

    let runner = instance_runner(&c).await;
    c.root_request(
        reqwest::Method::POST,
        &format!("/projects/{}/pipeline", project.id),
        Some(json!({"ref": "main", "variables": [
            {"key": "FROM_PIPELINE", "value": "p"},
            {"key": "SECRET", "value": "overridden", "variable_type": "env_var"},
        ]})),
    )
    .await
    .unwrap();
    let job = runner.request_now().await.unwrap().job();
    assert_eq!(job.variable("FROM_PIPELINE"), Some("p"));
    // Pipeline variables come last, so they win over project ones.
    assert_eq!(job.variable("SECRET"), Some("overridden"));
    let secret = job.variables.iter().find(|v| v.key == "SECRET").unwrap();
    assert!(secret.masked && !secret.public);
    let config = job.variables.iter().find(|v| v.key == "CONFIG").unwrap();
    assert!(config.file);
    // Project variables come after YAML ones, so they win on the runner.
    assert_eq!(job.variable("FROM_YAML"), Some("project"));
    let token_var = job
        .variables
        .iter()
        .find(|v| v.key == "CI_JOB_TOKEN")
        .unwrap();
    assert!(token_var.masked);

    c.root_request(
        reqwest::Method::DELETE,
        &format!("/projects/{}/variables/CONFIG", project.id),
        None,
    )
    .await
    .unwrap();
    let gone = c
        .client()
        .get(c.api(&format!("/projects/{}/variables/CONFIG", project.id)))
        .header("PRIVATE-TOKEN", &c.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn group_and_protected_variables_and_allowed_exit_codes() {
    let c = TestCoordinator::spawn().await;
    let group = c.create_group("ci-group").await;
    let gid = group["id"].as_i64().unwrap();
    let yaml = "\
check:
  stage: test
  allow_failure:
    exit_codes: [42]
  script: [exit 42]
after:
  stage: deploy
  script: [echo after]
";
    let project = project_in_group(&c, "grouped", yaml, Some(gid)).await;
    project.repo.commit(&[("feature.txt", "x")], "more");
    std::process::Command::new("git")
        .current_dir(project.repo.path())
        .args(["branch", "feature"])
        .output()
        .unwrap();
    c.root_request(
        reqwest::Method::POST,
        &format!("/groups/{gid}/variables"),
        Some(json!({"key": "FROM_GROUP", "value": "g"})),
    )
    .await
    .unwrap();
    c.root_request(
        reqwest::Method::POST,
        &format!("/projects/{}/variables", project.id),
        Some(json!({"key": "DEPLOY_KEY", "value": "only-protected", "protected": true})),
    )
    .await
    .unwrap();
    let runner = instance_runner(&c).await;

    let pid = create_pipeline(&c, project.id, "main").await["id"]
        .as_i64()
        .unwrap();
    let check = runner.request_now().await.unwrap().job();
    assert_eq!(check.variable("FROM_GROUP"), Some("g"));
    assert_eq!(check.variable("DEPLOY_KEY"), Some("only-protected"));
    assert_eq!(check.variable("CI_PROJECT_NAMESPACE"), Some("ci-group"));
    check_fails_with(&runner, &check, 42).await;
    // Exit code 42 is allowed: the next stage runs, the pipeline passes.
    let after = runner.request_now().await.unwrap().job();
    assert_eq!(after.job_info.name, "after");
    runner.finish(&after, true).await.unwrap();
    assert_eq!(pipeline_status(&c, project.id, pid).await, "success");
    let jobs = pipeline_jobs(&c, project.id, pid).await;
    let check_json = jobs.iter().find(|j| j["name"] == "check").unwrap();
    assert_eq!(check_json["status"], "failed");
    assert_eq!(check_json["allow_failure"], true);

    let pid = create_pipeline(&c, project.id, "feature").await["id"]
        .as_i64()
        .unwrap();
    let check = runner.request_now().await.unwrap().job();
    assert_eq!(check.variable("FROM_GROUP"), Some("g"));
    assert_eq!(
        check.variable("DEPLOY_KEY"),
        None,
        "protected variables stay on protected refs"
    );
    check_fails_with(&runner, &check, 1).await;
    assert_eq!(job_status(&c, project.id, pid, "after").await, "skipped");
    assert_eq!(pipeline_status(&c, project.id, pid).await, "failed");
    c.stop().await.unwrap();
}

async fn check_fails_with(
    runner: &forerunner_testkit::RunnerClient,
    job: &forerunner_protocol::jobs::JobResponse,
    exit_code: i32,
) {
    let (status, _) = runner
        .update(
            job,
            JobState::Failed,
            Some("script_failure"),
            Some(exit_code),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
}
