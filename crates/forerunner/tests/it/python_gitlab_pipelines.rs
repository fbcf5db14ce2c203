//! python-gitlab (from PyPI, in a venv) drives pipelines and jobs:
//! `project.pipelines.create`, `pipeline.jobs.list`, `job.trace`,
//! `job.artifacts`, `job.retry` and `job.cancel`, while a runner client
//! runs the job in between.

use std::path::{Path, PathBuf};

use forerunner_testkit::{python_with_gitlab, TestCoordinator};
use reqwest::StatusCode;

use crate::ci_support::{instance_runner, project_with_ci, zip_of};

async fn python(py: &Path, c: &TestCoordinator, args: &[String]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/pipelines_flow.py");
    let out = tokio::process::Command::new(py)
        .arg(&script)
        .args(args)
        .env("GITLAB_URL", &c.url)
        .env("GITLAB_PAT", &c.root_token)
        .output()
        .await
        .expect("failed to run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python-gitlab {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn python_gitlab_pipelines_and_jobs() {
    let py: PathBuf = tokio::task::spawn_blocking(python_with_gitlab)
        .await
        .unwrap()
        .expect("failed to get a python with python-gitlab");
    let c = TestCoordinator::spawn().await;
    let yaml = "build:\n  script: [make]\n  artifacts:\n    paths: [out/]\n";
    let project = project_with_ci(&c, "py", yaml).await;
    let runner = instance_runner(&c).await;

    let created = python(&py, &c, &["create".into(), project.id.to_string()]).await;
    let created: serde_json::Value = serde_json::from_str(created.trim()).unwrap();
    let job_id = created["jobs"][0].as_i64().unwrap();

    let job = runner.request_now().await.unwrap().job();
    assert_eq!(job.id, job_id);
    let archive = zip_of(&[("out/result.txt", "built\n")]);
    assert_eq!(
        runner.upload_artifacts(&job, archive).await.unwrap(),
        StatusCode::CREATED
    );
    assert_eq!(runner.finish(&job, true).await.unwrap(), StatusCode::OK);

    let out = python(
        &py,
        &c,
        &["inspect".into(), project.id.to_string(), job_id.to_string()],
    )
    .await;
    assert!(out.contains("python-gitlab pipelines flow OK"), "{out}");
    c.stop().await.unwrap();
}
