//! The job queue under load and over time: exactly-once dispatch to many
//! concurrent long-polling runners, the latency of a held request, and the
//! sweep failing jobs that time out or whose runner vanished.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use forerunner_coordinator::config::CiSettings;
use forerunner_coordinator::domain::JobStatus;
use forerunner_testkit::{JobRequestOutcome, RunnerClient, TestCoordinator};
use serde_json::json;

use crate::ci_support::{
    create_pipeline, instance_runner, job_status, pipeline_jobs, project_with_ci, runner,
};

const POLLERS: usize = 200;
const JOBS: usize = 10_000;

/// 50 job definitions × `parallel: 200` = 10,000 jobs in one pipeline,
/// created through `POST /projects/:id/pipeline` like any other.
fn ten_thousand_jobs() -> String {
    let mut yaml = String::new();
    for i in 0..JOBS / 200 {
        yaml.push_str(&format!("job{i}:\n  parallel: 200\n  script: [x]\n"));
    }
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_pollers_get_ten_thousand_jobs_exactly_once() {
    let c = TestCoordinator::spawn_with(CiSettings {
        long_poll_timeout: Duration::from_secs(2),
        ..CiSettings::default()
    })
    .await;
    let project = project_with_ci(&c, "load", &ten_thousand_jobs()).await;
    // Ten runners, twenty pollers each.
    let mut runners = Vec::new();
    for _ in 0..10 {
        runners.push(instance_runner(&c).await);
    }
    let received = Arc::new(std::sync::Mutex::new(Vec::with_capacity(JOBS)));
    let count = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let pollers: Vec<_> = (0..POLLERS)
        .map(|i| {
            let client: RunnerClient = runners[i % runners.len()].clone();
            let (received, count) = (received.clone(), count.clone());
            tokio::spawn(async move {
                let mut last_update: Option<String> = None;
                let deadline = Instant::now() + Duration::from_secs(600);
                while Instant::now() < deadline {
                    match client.request_job(last_update.as_deref()).await {
                        Ok(JobRequestOutcome::Job(job)) => {
                            received.lock().unwrap().push(job.id);
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(JobRequestOutcome::NoJob(version)) => {
                            if count.load(Ordering::SeqCst) >= JOBS {
                                break;
                            }
                            last_update = Some(version);
                        }
                        Ok(JobRequestOutcome::Other(status, body)) => {
                            panic!("unexpected answer {status}: {body}")
                        }
                        Err(err) => panic!("request failed: {err:#}"),
                    }
                }
            })
        })
        .collect();
    // Let every poller park on the empty queue, then create the jobs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let create = Instant::now();
    let pipeline = create_pipeline(&c, project.id, "main").await;
    let created_in = create.elapsed();
    for p in pollers {
        p.await.expect("a poller panicked");
    }
    let total = started.elapsed();
    let received = received.lock().unwrap().clone();
    let unique: HashSet<i64> = received.iter().copied().collect();
    let duplicates = received.len() - unique.len();
    let pending = c.store().ci.jobs_in(&[JobStatus::Pending]).await.unwrap();
    let running: HashSet<i64> = c
        .store()
        .ci
        .jobs_in(&[JobStatus::Running])
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    let lost = running.difference(&unique).count() + pending.len();
    println!(
        "dispatch: {POLLERS} pollers, {} jobs created in {created_in:?} (pipeline {}), \
         {} dispatched, {duplicates} duplicates, {lost} lost, {total:?} in total",
        running.len() + pending.len(),
        pipeline["id"],
        received.len(),
    );
    assert_eq!(
        running.len() + pending.len(),
        JOBS,
        "the pipeline has 10,000 jobs"
    );
    assert_eq!(duplicates, 0, "a job was handed out twice");
    assert_eq!(lost, 0, "a job was never handed out");
    assert_eq!(unique, running);
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_request_receives_a_job_created_afterwards() {
    let c = TestCoordinator::spawn_with(CiSettings {
        long_poll_timeout: Duration::from_secs(20),
        ..CiSettings::default()
    })
    .await;
    let project = project_with_ci(&c, "poll", "job:\n  when: manual\n  script: [x]\n").await;
    let pid = create_pipeline(&c, project.id, "main").await["id"]
        .as_i64()
        .unwrap();
    let r = instance_runner(&c).await;
    // A stale last_update answers at once, with the current version.
    let version = match r.request_now().await.unwrap() {
        JobRequestOutcome::NoJob(v) => v,
        other => panic!("expected 204, got {other:?}"),
    };
    assert!(!version.is_empty());

    // Up to date: the request is held until the manual job is played.
    let waiting = tokio::spawn({
        let r = r.clone();
        let version = version.clone();
        async move {
            let outcome = r.request_job(Some(&version)).await.unwrap();
            (Instant::now(), outcome)
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "the request must be held");
    let job_id = pipeline_jobs(&c, project.id, pid).await[0]["id"]
        .as_i64()
        .unwrap();
    let played = Instant::now();
    c.root_request(
        reqwest::Method::POST,
        &format!("/projects/{}/jobs/{job_id}/play", project.id),
        None,
    )
    .await
    .unwrap();
    let (received_at, outcome) = waiting.await.unwrap();
    let job = outcome.job();
    assert_eq!(job.id, job_id);
    println!(
        "long poll: the held request had the job {:?} after the play request was sent",
        received_at.duration_since(played)
    );

    // With nothing to hand out, a held request ends at the timeout with 204.
    let quick = TestCoordinator::spawn_with(CiSettings {
        long_poll_timeout: Duration::from_millis(300),
        ..CiSettings::default()
    })
    .await;
    let r = instance_runner(&quick).await;
    let start = Instant::now();
    assert!(matches!(
        r.request_job(None).await.unwrap(),
        JobRequestOutcome::NoJob(_)
    ));
    assert!(start.elapsed() >= Duration::from_millis(300));
    quick.stop().await.unwrap();
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn timed_out_jobs_and_vanished_runners_fail_and_retry() {
    let c = TestCoordinator::spawn_with(CiSettings {
        runner_vanish_timeout: Duration::from_secs(2),
        sweep_interval: Duration::from_millis(200),
        timeout_grace: Duration::ZERO,
        ..CiSettings::default()
    })
    .await;
    let yaml = "\
short:
  timeout: 1 second
  script: [sleep 100]
vanishing:
  retry:
    max: 1
    when: runner_system_failure
  script: [sleep 100]
";
    let project = project_with_ci(&c, "sweep", yaml).await;
    let pid = create_pipeline(&c, project.id, "main").await["id"]
        .as_i64()
        .unwrap();
    let r = runner(
        &c,
        json!({"runner_type": "instance_type", "run_untagged": true}),
    )
    .await;
    let short = r.request_now().await.unwrap().job();
    assert_eq!(short.job_info.name, "short");
    assert_eq!(short.runner_info.timeout, 1);
    let vanishing = r.request_now().await.unwrap().job();
    // Keep `short` alive with trace patches: it must still time out.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut offset = 0u64;
    while Instant::now() < deadline && job_status(&c, project.id, pid, "short").await == "running" {
        let answer = r.patch_trace(&short, offset, b".").await.unwrap();
        if answer.status == reqwest::StatusCode::ACCEPTED {
            offset += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let jobs = pipeline_jobs(&c, project.id, pid).await;
    let short_json = jobs.iter().find(|j| j["name"] == "short").unwrap();
    assert_eq!(short_json["status"], "failed");
    assert_eq!(short_json["failure_reason"], "job_execution_timeout");

    // `vanishing` got no patch or update: runner_system_failure, retried.
    let deadline = Instant::now() + Duration::from_secs(10);
    let retry = loop {
        match r.request_now().await.unwrap() {
            JobRequestOutcome::Job(job) => break *job,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("the vanished job was not retried: {other:?}"),
        }
    };
    assert_eq!(retry.job_info.name, "vanishing");
    assert_ne!(retry.id, vanishing.id);
    let old = c
        .root_request(
            reqwest::Method::GET,
            &format!("/projects/{}/jobs/{}", project.id, vanishing.id),
            None,
        )
        .await
        .unwrap();
    assert_eq!(old["status"], "failed");
    assert_eq!(old["failure_reason"], "runner_system_failure");
    assert_eq!(old["retried"], true);
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn delayed_jobs_start_when_their_time_comes() {
    let c = TestCoordinator::spawn_with(CiSettings {
        sweep_interval: Duration::from_millis(100),
        ..CiSettings::default()
    })
    .await;
    let yaml = "later:\n  when: delayed\n  start_in: 1 second\n  script: [x]\n";
    let project = project_with_ci(&c, "delayed", yaml).await;
    let pid = create_pipeline(&c, project.id, "main").await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(job_status(&c, project.id, pid, "later").await, "scheduled");
    let r = instance_runner(&c).await;
    assert!(matches!(
        r.request_now().await.unwrap(),
        JobRequestOutcome::NoJob(_)
    ));
    // A held request is answered once the sweep makes the job pending.
    let started = Instant::now();
    let job = r.request_job(None).await.unwrap().job();
    assert_eq!(job.job_info.name, "later");
    println!(
        "delayed job picked {:?} after the request",
        started.elapsed()
    );
    c.stop().await.unwrap();
}
