//! Shared arrangements of the pipeline and job tests: a project whose
//! `import_url` is a real git repository, pipelines created through the
//! API, and runners created through `POST /user/runners`.

use std::io::Write as _;

use forerunner_testkit::{GitRepo, RunnerClient, TestCoordinator};
use serde_json::{json, Value};

/// A project with its repository.
pub(crate) struct CiProject {
    /// Project id.
    pub(crate) id: i64,
    /// `root/<name>`.
    pub(crate) full_path: String,
    /// The repository behind `import_url` (kept alive for the test).
    pub(crate) repo: GitRepo,
}

/// Creates a project owned by root whose repository holds `.gitlab-ci.yml`.
pub(crate) async fn project_with_ci(c: &TestCoordinator, name: &str, ci_yaml: &str) -> CiProject {
    project_in_group(c, name, ci_yaml, None).await
}

/// Like [`project_with_ci`], in group `group` when given.
pub(crate) async fn project_in_group(
    c: &TestCoordinator,
    name: &str,
    ci_yaml: &str,
    group: Option<i64>,
) -> CiProject {
    let repo = GitRepo::with_files(&[(".gitlab-ci.yml", ci_yaml), ("README.md", "hello\n")]);
    let mut body = json!({"name": name, "import_url": repo.url()});
    if let Some(group) = group {
        body["namespace_id"] = json!(group);
    }
    let v = c
        .root_request(reqwest::Method::POST, "/projects", Some(body))
        .await
        .expect("failed to create a project");
    CiProject {
        id: v["id"].as_i64().unwrap(),
        full_path: v["path_with_namespace"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("root/{name}")),
        repo,
    }
}

/// `POST /projects/:id/pipeline` for `ref_name`; the pipeline JSON.
pub(crate) async fn create_pipeline(c: &TestCoordinator, project_id: i64, ref_name: &str) -> Value {
    c.root_request(
        reqwest::Method::POST,
        &format!("/projects/{project_id}/pipeline"),
        Some(json!({"ref": ref_name})),
    )
    .await
    .expect("failed to create a pipeline")
}

/// The jobs of a pipeline (`GET …/pipelines/:id/jobs`).
pub(crate) async fn pipeline_jobs(
    c: &TestCoordinator,
    project_id: i64,
    pipeline_id: i64,
) -> Vec<Value> {
    let v = c
        .root_request(
            reqwest::Method::GET,
            &format!("/projects/{project_id}/pipelines/{pipeline_id}/jobs?per_page=100"),
            None,
        )
        .await
        .unwrap();
    v.as_array().cloned().unwrap_or_default()
}

/// The status of the job called `name` in a pipeline.
pub(crate) async fn job_status(
    c: &TestCoordinator,
    project_id: i64,
    pipeline_id: i64,
    name: &str,
) -> String {
    pipeline_jobs(c, project_id, pipeline_id)
        .await
        .iter()
        .find(|j| j["name"] == name)
        .and_then(|j| j["status"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no job {name}"))
}

/// A pipeline's status.
pub(crate) async fn pipeline_status(
    c: &TestCoordinator,
    project_id: i64,
    pipeline_id: i64,
) -> String {
    let v = c
        .root_request(
            reqwest::Method::GET,
            &format!("/projects/{project_id}/pipelines/{pipeline_id}"),
            None,
        )
        .await
        .unwrap();
    v["status"].as_str().unwrap().to_owned()
}

/// Creates a runner with these attributes and a client for it.
pub(crate) async fn runner(c: &TestCoordinator, attributes: Value) -> RunnerClient {
    let (_, token) = c.create_runner(attributes).await;
    RunnerClient::new(&c.url, &token)
}

/// An instance runner taking untagged jobs.
pub(crate) async fn instance_runner(c: &TestCoordinator) -> RunnerClient {
    runner(
        c,
        json!({"runner_type": "instance_type", "run_untagged": true}),
    )
    .await
}

/// A zip archive of `(path, content)`.
pub(crate) fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut cursor);
        for (path, content) in files {
            zip.start_file(*path, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
    }
    cursor.into_inner()
}

/// Waits up to `timeout` for a pipeline to reach a final status (`success`,
/// `failed`, `canceled`, `skipped`) and returns it, or the last status seen.
pub(crate) async fn wait_pipeline(
    c: &TestCoordinator,
    project_id: i64,
    pipeline_id: i64,
    timeout: std::time::Duration,
) -> String {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let status = pipeline_status(c, project_id, pipeline_id).await;
        if matches!(
            status.as_str(),
            "success" | "failed" | "canceled" | "skipped"
        ) || std::time::Instant::now() >= deadline
        {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The job called `name` in a pipeline (its JSON).
pub(crate) async fn job_named(
    c: &TestCoordinator,
    project_id: i64,
    pipeline_id: i64,
    name: &str,
) -> Value {
    pipeline_jobs(c, project_id, pipeline_id)
        .await
        .into_iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("pipeline {pipeline_id} has no job {name}"))
}

/// A job's trace (`GET /projects/:id/jobs/:job_id/trace`).
pub(crate) async fn job_trace(c: &TestCoordinator, project_id: i64, job_id: i64) -> String {
    c.client()
        .get(c.api(&format!("/projects/{project_id}/jobs/{job_id}/trace")))
        .header("PRIVATE-TOKEN", &c.root_token)
        .send()
        .await
        .expect("failed to read a trace")
        .text()
        .await
        .unwrap_or_default()
}

/// Every job of a pipeline with its status and trace, for failure messages.
pub(crate) async fn pipeline_report(
    c: &TestCoordinator,
    project_id: i64,
    pipeline_id: i64,
) -> String {
    let mut out = String::new();
    for job in pipeline_jobs(c, project_id, pipeline_id).await {
        let id = job["id"].as_i64().unwrap_or_default();
        out.push_str(&format!(
            "--- job {} ({id}): {} {}\n{}\n",
            job["name"],
            job["status"],
            job["failure_reason"],
            job_trace(c, project_id, id).await
        ));
    }
    out
}
