//! Our runner against our coordinator, nothing faked: `forerunner
//! run-single` with the shell executor clones the project over HTTP with
//! its job token, runs two jobs, passes artifacts from the first to the
//! second, and the pipeline passes.

use std::time::Duration;

use forerunner_testkit::TestCoordinator;
use serde_json::json;

use crate::ci_support::{create_pipeline, pipeline_jobs, pipeline_status, project_with_ci};

const YAML: &str = r#"
stages: [build, test]
build:
  stage: build
  script:
    - mkdir -p out
    - echo "built from $CI_COMMIT_SHORT_SHA" > out/result.txt
    - cat README.md
  artifacts:
    paths: [out/]
test:
  stage: test
  script:
    - cat out/result.txt
    - grep -q "built from $CI_COMMIT_SHORT_SHA" out/result.txt
"#;

#[tokio::test(flavor = "multi_thread")]
async fn our_runner_runs_a_pipeline_of_our_coordinator() {
    let c = TestCoordinator::spawn().await;
    let project = project_with_ci(&c, "e2e", YAML).await;
    let (_, token) = c
        .create_runner(json!({"runner_type": "instance_type", "run_untagged": true}))
        .await;
    let pid = create_pipeline(&c, project.id, "main").await["id"]
        .as_i64()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let builds = dir.path().join("builds");
    let child = crate::runner_support::forerunner(dir.path())
        .args(["run-single", "--url", &c.url, "--token", &token])
        .args(["--executor", "shell", "--max-builds", "2"])
        .arg("--builds-dir")
        .arg(&builds)
        .spawn()
        .expect("failed to start forerunner");
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("the runner did not finish two jobs in time")
        .unwrap();
    let output = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{output}");
    let jobs = pipeline_jobs(&c, project.id, pid).await;
    for job in &jobs {
        assert_eq!(job["status"], "success", "{job}\n{output}");
    }
    assert_eq!(pipeline_status(&c, project.id, pid).await, "success");
    let build_id = jobs.iter().find(|j| j["name"] == "build").unwrap()["id"]
        .as_i64()
        .unwrap();
    let trace = c
        .client()
        .get(c.api(&format!("/projects/{}/jobs/{build_id}/trace", project.id)))
        .header("PRIVATE-TOKEN", &c.root_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        trace.contains("hello"),
        "the job cloned the repository:\n{trace}"
    );
    c.stop().await.unwrap();
}
