//! Pickup latency of the coordinator's job queue: how long after a job
//! becomes pending a long-polling runner has it.
//!
//! Not a test: it prints figures. A real coordinator (testkit, in process,
//! 127.0.0.1:0) holds one runner's `POST /jobs/request`; the benchmark then
//! plays one manual job (`POST /projects/:id/jobs/:id/play`, which makes it
//! pending) and measures from sending the play request to the held request
//! answering with that job. The play request's own handling is included, so
//! the figures are an upper bound of queue-to-runner latency.
//!
//! Run with `cargo bench -p forerunner --bench pickup` (`PICKUP_JOBS` sets
//! the number of jobs, 300 by default).

use std::time::{Duration, Instant};

use forerunner_testkit::{GitRepo, JobRequestOutcome, RunnerClient, TestCoordinator};
use serde_json::json;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let jobs: usize = std::env::var("PICKUP_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
        .clamp(1, 10_000);
    let definitions = jobs.div_ceil(200);
    let mut yaml = String::new();
    for i in 0..definitions {
        let count = (jobs - i * 200).min(200);
        yaml.push_str(&format!(
            "job{i}:\n  when: manual\n  parallel: {}\n  script: [x]\n",
            count.max(2)
        ));
    }
    let c = TestCoordinator::spawn().await;
    let repo = GitRepo::with_files(&[(".gitlab-ci.yml", &yaml)]);
    let project = c
        .root_request(
            reqwest::Method::POST,
            "/projects",
            Some(json!({"name": "pickup", "import_url": repo.url()})),
        )
        .await?;
    let project_id = project["id"].as_i64().unwrap_or_default();
    let pipeline = c
        .root_request(
            reqwest::Method::POST,
            &format!("/projects/{project_id}/pipeline"),
            Some(json!({"ref": "main"})),
        )
        .await?;
    let pipeline_id = pipeline["id"].as_i64().unwrap_or_default();
    let mut ids: Vec<i64> = Vec::with_capacity(jobs);
    for page in 1.. {
        let listed = c
            .root_request(
                reqwest::Method::GET,
                &format!(
                    "/projects/{project_id}/pipelines/{pipeline_id}/jobs?per_page=100&page={page}"
                ),
                None,
            )
            .await?;
        let before = ids.len();
        ids.extend(
            listed
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|j| j["id"].as_i64()),
        );
        if ids.len() == before {
            break;
        }
    }
    let (_, token) = c
        .create_runner(json!({"runner_type": "instance_type", "run_untagged": true}))
        .await;
    let runner = RunnerClient::new(&c.url, &token);

    let mut latencies = Vec::with_capacity(jobs);
    for id in ids.iter().take(jobs) {
        let version = match runner.request_now().await? {
            JobRequestOutcome::NoJob(v) => v,
            other => anyhow::bail!("expected an empty queue, got {other:?}"),
        };
        let held = tokio::spawn({
            let runner = runner.clone();
            async move {
                let outcome = runner.request_job(Some(&version)).await;
                (Instant::now(), outcome)
            }
        });
        // Let the request reach the coordinator and park.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let played = Instant::now();
        c.root_request(
            reqwest::Method::POST,
            &format!("/projects/{project_id}/jobs/{id}/play"),
            None,
        )
        .await?;
        let (at, outcome) = held.await?;
        match outcome? {
            JobRequestOutcome::Job(job) if job.id == *id => {}
            other => anyhow::bail!("expected job {id}, got {other:?}"),
        }
        latencies.push(at.duration_since(played));
    }
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[i.min(latencies.len() - 1)]
    };
    println!(
        "pickup latency over {} jobs (play sent → held request answered): \
         p50 {:.2?}, p95 {:.2?}, max {:.2?}",
        latencies.len(),
        pct(0.50),
        pct(0.95),
        latencies.last().copied().unwrap_or_default()
    );
    c.stop().await?;
    Ok(())
}
