//! The runner job API on the wire: matching rules of `POST /jobs/request`,
//! trace patches (`Content-Range`, `416`), job updates (`202` while the
//! trace is incomplete, `403` once the job is over), job tokens that belong
//! to another job, and cloning the project over HTTP with a job token.

use forerunner_protocol::jobs::JobState;
use forerunner_testkit::{JobRequestOutcome, TestCoordinator};
use reqwest::StatusCode;
use serde_json::json;

use crate::ci_support::{create_pipeline, instance_runner, project_with_ci, runner};

fn no_job(outcome: &JobRequestOutcome) -> bool {
    matches!(outcome, JobRequestOutcome::NoJob(_))
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_run_untagged_paused_and_unknown_tokens() {
    let c = TestCoordinator::spawn().await;
    let yaml = "tagged:\n  tags: [docker]\n  script: [x]\nuntagged:\n  script: [x]\ngpu:\n  tags: [docker, gpu]\n  script: [x]\n";
    let project = project_with_ci(&c, "tags", yaml).await;
    create_pipeline(&c, project.id, "main").await;
    let docker_only = runner(
        &c,
        json!({"runner_type": "instance_type", "tag_list": ["docker", "linux"], "run_untagged": false}),
    )
    .await;
    let untagged_only = instance_runner(&c).await;
    let other = runner(
        &c,
        json!({"runner_type": "instance_type", "tag_list": ["linux"], "run_untagged": false}),
    )
    .await;
    let paused = runner(
        &c,
        json!({"runner_type": "instance_type", "run_untagged": true, "tag_list": ["docker", "gpu"], "paused": true}),
    )
    .await;

    assert!(
        no_job(&other.request_now().await.unwrap()),
        "no job has only linux tags"
    );
    assert!(
        no_job(&paused.request_now().await.unwrap()),
        "paused runners get nothing"
    );
    let job = docker_only.request_now().await.unwrap().job();
    assert_eq!(job.job_info.name, "tagged");
    assert!(
        no_job(&docker_only.request_now().await.unwrap()),
        "gpu needs a tag the runner lacks, untagged needs run_untagged"
    );
    let job = untagged_only.request_now().await.unwrap().job();
    assert_eq!(job.job_info.name, "untagged");
    assert!(no_job(&untagged_only.request_now().await.unwrap()));

    let unknown = forerunner_testkit::RunnerClient::new(&c.url, "glrt-nope");
    match unknown.request_now().await.unwrap() {
        JobRequestOutcome::Other(status, body) => {
            assert_eq!(status, StatusCode::FORBIDDEN);
            assert_eq!(body, r#"{"message":"403 Forbidden"}"#);
        }
        other => panic!("expected 403, got {other:?}"),
    }
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn locked_project_runners_and_protected_refs() {
    let c = TestCoordinator::spawn().await;
    let yaml = "job:\n  script: [x]\n";
    let mine = project_with_ci(&c, "mine", yaml).await;
    let theirs = project_with_ci(&c, "theirs", yaml).await;
    mine.repo.commit(&[("feature.txt", "x")], "feature");
    let locked = runner(
        &c,
        json!({"runner_type": "project_type", "project_id": mine.id, "locked": true, "run_untagged": true}),
    )
    .await;
    create_pipeline(&c, theirs.id, "main").await;
    assert!(
        no_job(&locked.request_now().await.unwrap()),
        "a project runner only serves its projects"
    );
    create_pipeline(&c, mine.id, "main").await;
    let job = locked.request_now().await.unwrap().job();
    assert_eq!(job.job_info.project_id, mine.id);

    // ref_protected runners take jobs of protected refs only; the default
    // branch is protected, other branches are not.
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .current_dir(theirs.repo.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    git(&["branch", "feature"]);
    let protected_only = runner(
        &c,
        json!({"runner_type": "instance_type", "run_untagged": true, "access_level": "ref_protected"}),
    )
    .await;
    let feature = create_pipeline(&c, theirs.id, "feature").await;
    // Only the pipeline of `main` (created above) is eligible.
    let job = protected_only.request_now().await.unwrap().job();
    assert_eq!(job.git_info.ref_name, "main");
    assert_eq!(job.git_info.protected, Some(true));
    assert!(no_job(&protected_only.request_now().await.unwrap()));
    let any = instance_runner(&c).await;
    let job = any.request_now().await.unwrap().job();
    assert_eq!(job.job_info.pipeline_id, feature["id"].as_i64().unwrap());
    assert_eq!(job.variable("CI_COMMIT_REF_PROTECTED"), Some("false"));
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn maximum_timeout_caps_the_job_timeout() {
    let c = TestCoordinator::spawn().await;
    let project = project_with_ci(&c, "timeouts", "job:\n  timeout: 3h\n  script: [x]\n").await;
    create_pipeline(&c, project.id, "main").await;
    let capped = runner(
        &c,
        json!({"runner_type": "instance_type", "run_untagged": true, "maximum_timeout": 1800}),
    )
    .await;
    let job = capped.request_now().await.unwrap().job();
    assert_eq!(job.runner_info.timeout, 1800);
    assert_eq!(job.steps[0].timeout, 1800);
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_offsets_416_missing_range_and_updates() {
    let c = TestCoordinator::spawn().await;
    let project = project_with_ci(&c, "trace", "a:\n  script: [x]\nb:\n  script: [x]\n").await;
    create_pipeline(&c, project.id, "main").await;
    let r = instance_runner(&c).await;
    let job = r.request_now().await.unwrap().job();
    let other = r.request_now().await.unwrap().job();

    let ok = r.patch_trace(&job, 0, b"hello").await.unwrap();
    assert_eq!((ok.status, ok.length), (StatusCode::ACCEPTED, Some(5)));
    let gap = r.patch_trace(&job, 3, b"xx").await.unwrap();
    assert_eq!(gap.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(gap.length, Some(5), "416 tells where to resume");
    let ahead = r.patch_trace(&job, 9, b"xx").await.unwrap();
    assert_eq!(ahead.status, StatusCode::RANGE_NOT_SATISFIABLE);
    let resumed = r.patch_trace(&job, 5, b" world").await.unwrap();
    assert_eq!(
        (resumed.status, resumed.length),
        (StatusCode::ACCEPTED, Some(11))
    );

    let missing = c
        .client()
        .patch(c.api(&format!("/jobs/{}/trace", job.id)))
        .header("JOB-TOKEN", &job.token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.text().await.unwrap(),
        r#"{"error":"400 Missing header Content-Range"}"#
    );

    // Another job's token is refused on every job endpoint.
    let foreign = r
        .patch_trace_with(job.id, &other.token, 11, b"!")
        .await
        .unwrap();
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    let put = c
        .client()
        .put(c.api(&format!("/jobs/{}", job.id)))
        .json(&json!({"token": other.token, "state": "success"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::FORBIDDEN);

    // The runner says 20 bytes but the server has 11: 202, try again.
    let (status, _) = r
        .update(&job, JobState::Success, None, None, Some(20))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, job_status) = r
        .update(&job, JobState::Success, None, None, Some(11))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job_status.as_deref(), Some("success"));

    let after = c
        .client()
        .put(c.api(&format!("/jobs/{}", job.id)))
        .json(&json!({"token": job.token, "state": "failed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::FORBIDDEN);
    assert_eq!(after.headers()["job-status"], "success");
    assert_eq!(
        after.text().await.unwrap(),
        r#"{"message":"403 Forbidden - Job is not processing on runner"}"#
    );
    let late = r.patch_trace(&job, 11, b"late").await.unwrap();
    assert_eq!(late.status, StatusCode::FORBIDDEN);

    // Unknown failure reasons are recorded as unknown_failure.
    let (status, _) = r
        .update(&other, JobState::Failed, Some("cosmic_rays"), Some(3), None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let v = c
        .root_request(
            reqwest::Method::GET,
            &format!("/projects/{}/jobs/{}", project.id, other.id),
            None,
        )
        .await
        .unwrap();
    assert_eq!(v["failure_reason"], "unknown_failure");
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_artifacts_are_refused_with_413() {
    let c = TestCoordinator::spawn_with(forerunner_coordinator::config::CiSettings {
        max_artifacts_size: 1024,
        ..Default::default()
    })
    .await;
    let project = project_with_ci(&c, "big", "job:\n  script: [x]\n").await;
    create_pipeline(&c, project.id, "main").await;
    let r = instance_runner(&c).await;
    let job = r.request_now().await.unwrap().job();
    let status = r.upload_artifacts(&job, vec![7u8; 4096]).await.unwrap();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let status = r.upload_artifacts(&job, vec![7u8; 100]).await.unwrap();
    assert_eq!(status, StatusCode::CREATED);
    c.stop().await.unwrap();
}

fn git_clone(url: &str, into: &std::path::Path) -> std::process::Output {
    std::process::Command::new("git")
        .args(["clone", "--quiet", url])
        .arg(into)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("failed to run git")
}

#[tokio::test(flavor = "multi_thread")]
async fn runners_clone_the_project_over_http_with_their_job_token() {
    let c = TestCoordinator::spawn().await;
    let project = project_with_ci(&c, "clone", "job:\n  script: [x]\n").await;
    let pipeline = create_pipeline(&c, project.id, "main").await;
    let r = instance_runner(&c).await;
    let job = r.request_now().await.unwrap().job();
    let dir = tempfile::tempdir().unwrap();

    let url = job.git_info.repo_url.clone();
    let out = tokio::task::spawn_blocking({
        let into = dir.path().join("ok");
        move || git_clone(&url, &into)
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let readme = std::fs::read_to_string(dir.path().join("ok/README.md")).unwrap();
    assert_eq!(readme, "hello\n");
    let head = std::process::Command::new("git")
        .current_dir(dir.path().join("ok"))
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&head.stdout).trim(),
        pipeline["sha"].as_str().unwrap()
    );

    let host = c.url.trim_start_matches("http://");
    for (name, url) in [
        (
            "anonymous",
            format!("http://{host}/{}.git", project.full_path),
        ),
        (
            "wrong token",
            format!(
                "http://gitlab-ci-token:glcbt-wrong@{host}/{}.git",
                project.full_path
            ),
        ),
    ] {
        let into = dir.path().join(name.replace(' ', "-"));
        let out = tokio::task::spawn_blocking(move || git_clone(&url, &into))
            .await
            .unwrap();
        assert!(!out.status.success(), "{name} clone must be refused");
    }

    // Once the job is over, its token no longer opens the repository.
    r.finish(&job, true).await.unwrap();
    let url = job.git_info.repo_url.clone();
    let into = dir.path().join("after");
    let out = tokio::task::spawn_blocking(move || git_clone(&url, &into))
        .await
        .unwrap();
    assert!(
        !out.status.success(),
        "a finished job's token must be refused"
    );
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_input_on_job_and_pipeline_endpoints_is_never_a_server_error() {
    let c = TestCoordinator::spawn_with(forerunner_coordinator::config::CiSettings {
        long_poll_timeout: std::time::Duration::from_millis(50),
        ..Default::default()
    })
    .await;
    let group = c.create_group("fuzz-ci").await;
    let gid = group["id"].as_i64().unwrap();
    let project = project_with_ci(&c, "fuzz", "a:\n  script: [x]\nb:\n  script: [x]\n").await;
    let pid = project.id;
    let pipeline = create_pipeline(&c, pid, "main").await["id"]
        .as_i64()
        .unwrap();
    let r = instance_runner(&c).await;
    let job = r.request_now().await.unwrap().job();
    let id = job.id;
    let endpoints = [
        (reqwest::Method::POST, "/jobs/request".to_owned()),
        (reqwest::Method::PUT, format!("/jobs/{id}")),
        (reqwest::Method::PATCH, format!("/jobs/{id}/trace")),
        (reqwest::Method::POST, format!("/jobs/{id}/artifacts")),
        (reqwest::Method::GET, format!("/jobs/{id}/artifacts")),
        (reqwest::Method::PUT, "/jobs/abc".to_owned()),
        (reqwest::Method::POST, format!("/projects/{pid}/pipeline")),
        (reqwest::Method::GET, format!("/projects/{pid}/pipelines")),
        (reqwest::Method::GET, format!("/projects/{pid}/pipelines/x")),
        (
            reqwest::Method::GET,
            format!("/projects/{pid}/pipelines/{pipeline}/jobs"),
        ),
        (
            reqwest::Method::POST,
            format!("/projects/{pid}/pipelines/{pipeline}/retry"),
        ),
        (reqwest::Method::GET, format!("/projects/{pid}/jobs")),
        (
            reqwest::Method::GET,
            format!("/projects/{pid}/jobs/99999999999999999999"),
        ),
        (
            reqwest::Method::POST,
            format!("/projects/{pid}/jobs/{id}/play"),
        ),
        (
            reqwest::Method::GET,
            format!("/projects/{pid}/jobs/{id}/artifacts/../x"),
        ),
        (reqwest::Method::POST, format!("/projects/{pid}/variables")),
        (reqwest::Method::PUT, format!("/projects/{pid}/variables/K")),
        (reqwest::Method::POST, format!("/groups/{gid}/variables")),
    ];
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{".to_vec()),
        ("application/json", b"[1,2]".to_vec()),
        ("application/json", b"null".to_vec()),
        (
            "application/json",
            b"{\"token\": {}, \"state\": [], \"ref\": 5, \"variables\": \"x\"}".to_vec(),
        ),
        (
            "application/json",
            b"{\"state\": \"exploded\", \"output\": {\"bytesize\": -1}, \"key\": \"a b\", \"value\": {}}".to_vec(),
        ),
        ("application/json", vec![0xff, 0xfe, 0x00, 0x7b]),
        ("application/x-www-form-urlencoded", b"%zz=%%&token".to_vec()),
        ("multipart/form-data", b"--nope".to_vec()),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--x--\r\n".to_vec()),
        ("text/plain", b"trace bytes".to_vec()),
    ];
    for (method, path) in &endpoints {
        for (content_type, body) in &bodies {
            for query in [
                "",
                "?scope[]=nope&page=0",
                "?last_update=&artifact_type=../x",
            ] {
                for range in ["0-3", "x-y", "99-1"] {
                    let resp = c
                        .client()
                        .request(method.clone(), c.api(&format!("{path}{query}")))
                        .header("PRIVATE-TOKEN", &c.root_token)
                        .header("JOB-TOKEN", &job.token)
                        .header("Content-Range", range)
                        .header("content-type", *content_type)
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    let status = resp.status();
                    assert!(
                        status.is_client_error() || status.is_success(),
                        "{method} {path}{query} ({range}) with {content_type} {:?}: {status}",
                        String::from_utf8_lossy(body)
                    );
                }
            }
        }
    }
    c.stop().await.unwrap();
}
