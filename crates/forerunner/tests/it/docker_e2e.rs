//! The docker executor end to end: the real coordinator (fresh data dir,
//! `127.0.0.1:0`), a runner created with `POST /user/runners` and registered
//! with `forerunner register --executor docker --docker-image <test image>`,
//! `forerunner run` as a child process, and this machine's Docker engine
//! with the locally imported test images (`--docker-pull-policy
//! if-not-present`: nothing is pulled, no registry is reachable).
//!
//! - A pipeline whose jobs run in two images, one job with a service reached
//!   by its alias, artifacts passed from the first job to the second, and a
//!   cache written by the first job, restored by the second and by the first
//!   job of the next pipeline.
//! - A job cancelled through the API while it runs.
//! - A runner killed (`SIGKILL`) mid-job and started again: the new process
//!   removes the dead one's containers, network and volume before any new
//!   job arrives.
//!
//! After each, nothing the runner created may remain, checked two ways: by
//! the runner's labels, and by listing every container, network and volume of
//! the engine before and after (objects that another runner — another test
//! process on this machine — labelled as its own are left out of the
//! comparison). The tests hold a lock so that they never overlap one
//! another. Without a reachable engine each prints `skipped: …` and passes.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io::Write as _;
use std::time::{Duration, Instant};

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};
use bollard::Docker;
use forerunner_coordinator::config::CiSettings;
use forerunner_protocol::tokens::short_token;
use forerunner_runner::executors::docker::testimages::{
    ensure_test_images, BUSYBOX_ALT_IMAGE, BUSYBOX_IMAGE,
};
use forerunner_runner::executors::docker::{Engine, LABEL_JOB_ID, LABEL_ROLE, LABEL_RUNNER_TOKEN};
use forerunner_testkit::TestCoordinator;
use serde_json::json;

use crate::ci_support::{
    create_pipeline, job_named, job_trace, pipeline_report, pipeline_status, project_with_ci,
};
use crate::runner_support::{Env, Runner};

/// How long a pipeline of a few small jobs may take.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the runner may take to remove a job's objects once it ended.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Two stages, two images. `build` runs in the alternative image, writes an
/// artifact naming its image and a cache naming the pipeline that first
/// wrote it, shows its capabilities and asks the runner's own service
/// (`sidecar`, from `[[runners.docker.services]]`) for its image. `test` runs
/// in the runner's default image with a web service aliased `web`, and reads
/// all three.
const PIPELINE_YAML: &str = r#"
stages: [build, test]
build:
  stage: build
  image: forerunner-test/busybox-alt:latest
  cache:
    key: docker-e2e
    paths: [vendor/]
  script:
    - test "$CI_PROJECT_DIR" = /builds/root/docker-e2e
    - test "$PWD" = "$CI_PROJECT_DIR"
    - cat README.md
    - mkdir -p out vendor
    - cp /etc/forerunner-image out/built-in
    - echo "built in $(cat out/built-in)"
    - if [ -f vendor/origin ]; then echo "cache hit from pipeline $(cat vendor/origin)"; else echo "$CI_PIPELINE_ID" > vendor/origin; echo "cache miss in pipeline $CI_PIPELINE_ID"; fi
    - grep CapEff /proc/self/status
    - for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O sidecar.txt http://sidecar:8080/ && break; sleep 1; done
    - echo "sidecar says $(cat sidecar.txt)"
  artifacts:
    paths: [out/]
test:
  stage: test
  services:
    - name: forerunner-test/busybox:latest
      alias: web
      entrypoint: ["/bin/sh", "-c"]
      command: ["mkdir -p /www && echo served-by-web > /www/index.html && exec httpd -f -p 80 -h /www"]
      variables:
        HEALTHCHECK_TCP_PORT: "80"
  cache:
    key: docker-e2e
    paths: [vendor/]
    policy: pull
  script:
    - echo "test runs in $(cat /etc/forerunner-image)"
    - echo "artifact says $(cat out/built-in)"
    - echo "cache from pipeline $(cat vendor/origin)"
    - for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O fetched.txt http://web/ && break; sleep 1; done
    - echo "web says $(cat fetched.txt)"
"#;

/// One job that ticks with a service beside it until it is stopped. The
/// ticks keep trace patches going, and each patch's answer carries the job's
/// status, so a cancel is seen within seconds; the short sleeps let the
/// script's `TERM` trap run at once.
/// A service for every job of the runner, serving the name of its image on
/// port 8080, appended to the registered entry.
const RUNNER_SERVICE_TOML: &str = r#"
    [[runners.docker.services]]
      name = "forerunner-test/busybox-alt:latest"
      alias = "sidecar"
      entrypoint = ["/bin/sh", "-c"]
      command = ["mkdir -p /www && cp /etc/forerunner-image /www/index.html && exec httpd -f -p 8080 -h /www"]
      environment = ["HEALTHCHECK_TCP_PORT=8080"]
"#;

/// The effective capability set a job prints (`CapEff:\t<hex>`), as bits.
fn capabilities(trace: &str) -> u64 {
    let hex = trace
        .lines()
        .find_map(|l| l.trim().strip_prefix("CapEff:"))
        .unwrap_or_else(|| panic!("no CapEff line in:\n{trace}"));
    u64::from_str_radix(hex.trim(), 16).expect("CapEff is hexadecimal")
}

const SLEEPER_YAML: &str = r#"
sleeper:
  services:
    - name: forerunner-test/busybox:latest
      alias: web
      entrypoint: ["/bin/sh", "-c"]
      command: ["exec httpd -f -p 80 -h /"]
  script:
    - while true; do echo tick; sleep 1; done
"#;

/// Serialises the tests of this module: each compares the whole engine
/// before and after.
static ENGINE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The engine, with the test images present, held for one test.
struct Daemon {
    docker: Docker,
    engine: Engine,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// Says on stderr, in one write, that `test` checked nothing and why.
fn skip(test: &str, why: &str) {
    let line = format!("skipped: {why} [docker_e2e::{test}]\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Connects to the engine (`DOCKER_HOST`, else the local socket) and imports
/// the test images if missing; `None`, after saying so, when none answers.
async fn daemon(test: &str) -> Option<Daemon> {
    let host = Engine::resolve_host(None, std::env::var("DOCKER_HOST").ok().as_deref());
    let engine = match Engine::connect_to(&host).await {
        Ok(engine) => engine,
        Err(e) => {
            skip(test, &format!("no Docker engine reachable at {host}: {e}"));
            return None;
        }
    };
    ensure_test_images(&engine)
        .await
        .expect("failed to prepare the test images");
    // An independent client for the checks, so that they do not rely on the
    // code under test.
    let docker = Docker::connect_with_defaults()
        .expect("failed to make a Docker client")
        .negotiate_version()
        .await
        .expect("failed to agree on an Engine API version");
    let turn = ENGINE_LOCK.lock().await;
    Some(Daemon {
        docker,
        engine,
        _turn: turn,
    })
}

/// A container, network or volume: its name and labels.
#[derive(Debug, Clone)]
struct Object {
    name: String,
    labels: HashMap<String, String>,
}

/// Containers (in any state), networks and volumes of the engine, by id.
#[derive(Debug, Clone, Default)]
struct Inventory {
    containers: BTreeMap<String, Object>,
    networks: BTreeMap<String, Object>,
    volumes: BTreeMap<String, Object>,
}

impl Inventory {
    /// Everything the engine has, or only what carries `label`
    /// (`key=value`).
    async fn of(docker: &Docker, label: Option<&str>) -> Inventory {
        let filters: HashMap<String, Vec<String>> = label
            .map(|l| HashMap::from([("label".to_owned(), vec![l.to_owned()])]))
            .unwrap_or_default();
        let mut inv = Inventory::default();
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        for c in docker
            .list_containers(Some(options))
            .await
            .expect("failed to list containers")
        {
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .unwrap_or_default();
            let labels = c.labels.unwrap_or_default();
            inv.containers
                .insert(c.id.unwrap_or_default(), Object { name, labels });
        }
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        for n in docker
            .list_networks(Some(options))
            .await
            .expect("failed to list networks")
        {
            let object = Object {
                name: n.name.unwrap_or_default(),
                labels: n.labels.unwrap_or_default(),
            };
            inv.networks.insert(n.id.unwrap_or_default(), object);
        }
        let options = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let volumes = docker
            .list_volumes(Some(options))
            .await
            .expect("failed to list volumes");
        for v in volumes.volumes.unwrap_or_default() {
            let object = Object {
                name: v.name.clone(),
                labels: v.labels,
            };
            inv.volumes.insert(v.name, object);
        }
        inv
    }

    /// What the runners with these short tokens labelled as theirs.
    async fn labelled(docker: &Docker, shorts: &[String]) -> Inventory {
        let mut inv = Inventory::default();
        for short in shorts {
            let one = Inventory::of(docker, Some(&format!("{LABEL_RUNNER_TOKEN}={short}"))).await;
            inv.containers.extend(one.containers);
            inv.networks.extend(one.networks);
            inv.volumes.extend(one.volumes);
        }
        inv
    }

    fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }

    fn counts(&self) -> (usize, usize, usize) {
        (
            self.containers.len(),
            self.networks.len(),
            self.volumes.len(),
        )
    }

    /// One line per object: kind, name, labels.
    fn listing(&self) -> String {
        let mut out = String::new();
        for (kind, objects) in [
            ("container", &self.containers),
            ("network", &self.networks),
            ("volume", &self.volumes),
        ] {
            for o in objects.values() {
                let mut labels: Vec<_> = o.labels.iter().collect();
                labels.sort();
                out.push_str(&format!("  {kind} {} {labels:?}\n", o.name));
            }
        }
        out
    }

    fn describe(&self) -> String {
        let (c, n, v) = self.counts();
        format!("{c} containers, {n} networks, {v} volumes")
    }

    /// The objects of `self` that `before` lacks, leaving out those labelled
    /// by a runner other than the ones in `ours` (another test's).
    fn new_since(&self, before: &Inventory, ours: &[String]) -> Inventory {
        let foreign = |o: &Object| {
            o.labels
                .get(LABEL_RUNNER_TOKEN)
                .is_some_and(|t| !ours.contains(t))
        };
        let diff = |now: &BTreeMap<String, Object>, then: &BTreeMap<String, Object>| {
            now.iter()
                .filter(|(id, o)| !then.contains_key(*id) && !foreign(o))
                .map(|(id, o)| (id.clone(), o.clone()))
                .collect()
        };
        Inventory {
            containers: diff(&self.containers, &before.containers),
            networks: diff(&self.networks, &before.networks),
            volumes: diff(&self.volumes, &before.volumes),
        }
    }

    /// The element-wise maximum of two sets of counts.
    fn peak(a: (usize, usize, usize), b: (usize, usize, usize)) -> (usize, usize, usize) {
        (a.0.max(b.0), a.1.max(b.1), a.2.max(b.2))
    }
}

/// Waits up to [`CLEANUP_TIMEOUT`] until nothing labelled with `shorts`
/// remains and the engine holds nothing that `before` did not (other
/// runners' objects aside); panics with what remains. Prints the figures.
async fn assert_nothing_left(
    d: &Daemon,
    before: &Inventory,
    shorts: &[String],
    when: &str,
    context: &str,
) {
    let deadline = Instant::now() + CLEANUP_TIMEOUT;
    let started = Instant::now();
    loop {
        let labelled = Inventory::labelled(&d.docker, shorts).await;
        let all = Inventory::of(&d.docker, None).await;
        let new = all.new_since(before, shorts);
        if labelled.is_empty() && new.is_empty() {
            let line = format!(
                "leftover check {when}: engine before: {}; after: {}; labelled by the runner: \
                 none; new since before: none (clean {:.1}s after the check began)\n",
                before.describe(),
                all.describe(),
                started.elapsed().as_secs_f64()
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "Docker objects remain {when}:\nlabelled by the runner:\n{}new since before:\n{}{context}",
                labelled.listing(),
                new.listing()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Removes what the runners with these short tokens left, should the test
/// fail half-way (a passing test has checked that nothing is left).
struct Sweeper {
    engine: Engine,
    shorts: Vec<String>,
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let (engine, shorts) = (self.engine.clone(), self.shorts.clone());
        // Drop cannot await; clean up on a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("a runtime for cleanup");
            runtime.block_on(async {
                for short in &shorts {
                    let _ = engine.cleanup_leftovers(short).await;
                }
            })
        })
        .join();
    }
}

/// A docker runner created on `c` and registered in a config.toml of its own.
struct DockerRunner {
    env: Env,
    short: String,
}

impl DockerRunner {
    /// Creates an instance runner with `POST /user/runners` and registers it
    /// with `forerunner register --executor docker` plus `extra` flags.
    async fn register(c: &TestCoordinator, extra: &[&str]) -> DockerRunner {
        let (_, token) = c
            .create_runner(json!({"runner_type": "instance_type", "run_untagged": true}))
            .await;
        let env = Env::new();
        env.secrets_of(c);
        env.secret(&token);
        let mut args = vec![
            "register",
            "--non-interactive",
            "--url",
            &c.url,
            "--token",
            &token,
            "--name",
            "docker-e2e",
            "--executor",
            "docker",
            "--docker-image",
            BUSYBOX_IMAGE,
            "--docker-pull-policy",
            "if-not-present",
        ];
        args.extend_from_slice(extra);
        env.run(&args, &[]).await.ok();
        let config = env.config_text();
        for needle in [
            "executor = \"docker\"",
            &format!("image = \"{BUSYBOX_IMAGE}\""),
            "pull_policy = \"if-not-present\"",
        ] {
            assert!(
                config.contains(needle),
                "config.toml lacks {needle}:\n{config}"
            );
        }
        DockerRunner {
            short: short_token(&token),
            env,
        }
    }

    /// `forerunner run` with this runner's config.toml, working in its
    /// directory (where the builds and caches of docker jobs go).
    fn start(&self) -> Runner {
        let dir = self.env.dir.path();
        Runner::spawn(
            &[
                OsStr::new("run"),
                OsStr::new("--config"),
                self.env.config.as_os_str(),
                OsStr::new("--working-directory"),
                dir.as_os_str(),
            ],
            dir,
        )
    }

    fn sweeper(&self, engine: &Engine) -> Sweeper {
        Sweeper {
            engine: engine.clone(),
            shorts: vec![self.short.clone()],
        }
    }
}

/// Waits for a pipeline to finish, sampling the runner's labelled objects
/// meanwhile; returns the final status and the most containers, networks and
/// volumes seen at once.
async fn watch_pipeline(
    c: &TestCoordinator,
    d: &Daemon,
    project: i64,
    pipeline: i64,
    short: &str,
) -> (String, (usize, usize, usize)) {
    let deadline = Instant::now() + PIPELINE_TIMEOUT;
    let mut peak = (0, 0, 0);
    loop {
        let seen = Inventory::labelled(&d.docker, &[short.to_owned()]).await;
        peak = Inventory::peak(peak, seen.counts());
        let status = pipeline_status(c, project, pipeline).await;
        if matches!(
            status.as_str(),
            "success" | "failed" | "canceled" | "skipped"
        ) || Instant::now() >= deadline
        {
            return (status, peak);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until a build container of job `job` runs; returns what the runner
/// has labelled at that moment.
async fn wait_build_container(d: &Daemon, short: &str, job: i64, runner: &Runner) -> Inventory {
    let deadline = Instant::now() + PIPELINE_TIMEOUT;
    loop {
        let seen = Inventory::labelled(&d.docker, &[short.to_owned()]).await;
        let running_build = seen.containers.values().any(|o| {
            o.labels.get(LABEL_ROLE).map(String::as_str) == Some("build")
                && o.labels.get(LABEL_JOB_ID) == Some(&job.to_string())
        });
        if running_build {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "no build container of job {job} appeared:\n{}",
            runner.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_pipeline_runs_two_images_a_service_artifacts_and_cache_and_leaves_nothing() {
    const TEST: &str =
        "docker_pipeline_runs_two_images_a_service_artifacts_and_cache_and_leaves_nothing";
    let Some(d) = daemon(TEST).await else { return };
    let before = Inventory::of(&d.docker, None).await;
    let started = Instant::now();
    let c = TestCoordinator::spawn().await;
    let project = project_with_ci(&c, "docker-e2e", PIPELINE_YAML).await;
    let runner = DockerRunner::register(
        &c,
        &["--docker-cap-add", "SYS_TIME", "--docker-cap-drop", "CHOWN"],
    )
    .await;
    let config = runner.env.config_text();
    assert!(
        config.contains("cap_add = [\"SYS_TIME\"]") && config.contains("cap_drop = [\"CHOWN\"]"),
        "{config}"
    );
    runner
        .env
        .write_config(&format!("{config}{RUNNER_SERVICE_TOML}"));
    let _sweeper = runner.sweeper(&d.engine);
    let process = runner.start();

    // First pipeline: the cache is empty.
    let p1 = create_pipeline(&c, project.id, "main").await["id"]
        .as_i64()
        .unwrap();
    let (status, peak1) = watch_pipeline(&c, &d, project.id, p1, &runner.short).await;
    assert_eq!(
        status,
        "success",
        "{}\n--- runner:\n{}",
        pipeline_report(&c, project.id, p1).await,
        process.output()
    );
    let build = job_named(&c, project.id, p1, "build").await;
    let trace = job_trace(&c, project.id, build["id"].as_i64().unwrap()).await;
    for needle in [
        format!("Using Docker executor with image {BUSYBOX_ALT_IMAGE}"),
        "hello".to_owned(), // README.md of the repository, cloned over HTTP
        format!("built in {BUSYBOX_ALT_IMAGE}"),
        format!("cache miss in pipeline {p1}"),
        format!("sidecar says {BUSYBOX_ALT_IMAGE}"),
    ] {
        assert!(trace.contains(&needle), "build lacks {needle:?}:\n{trace}");
    }
    // cap_add and cap_drop reached the build container.
    const CAP_CHOWN: u64 = 1 << 0;
    const CAP_SYS_TIME: u64 = 1 << 25;
    let caps = capabilities(&trace);
    assert!(
        caps & CAP_SYS_TIME != 0 && caps & CAP_CHOWN == 0,
        "capabilities {caps:x}:\n{trace}"
    );
    let test = job_named(&c, project.id, p1, "test").await;
    let trace = job_trace(&c, project.id, test["id"].as_i64().unwrap()).await;
    for needle in [
        format!("Using Docker executor with image {BUSYBOX_IMAGE}"),
        format!("test runs in {BUSYBOX_IMAGE}"),
        format!("artifact says {BUSYBOX_ALT_IMAGE}"),
        format!("cache from pipeline {p1}"),
        "web says served-by-web".to_owned(),
    ] {
        assert!(trace.contains(&needle), "test lacks {needle:?}:\n{trace}");
    }
    // Each job's containers and network went with the job, while the runner
    // keeps running.
    assert_nothing_left(
        &d,
        &before,
        std::slice::from_ref(&runner.short),
        "after the first pipeline",
        &process.output(),
    )
    .await;

    // Second pipeline: the first job finds the first pipeline's cache.
    let p2 = create_pipeline(&c, project.id, "main").await["id"]
        .as_i64()
        .unwrap();
    let (status, peak2) = watch_pipeline(&c, &d, project.id, p2, &runner.short).await;
    assert_eq!(
        status,
        "success",
        "{}\n--- runner:\n{}",
        pipeline_report(&c, project.id, p2).await,
        process.output()
    );
    let build = job_named(&c, project.id, p2, "build").await;
    let trace = job_trace(&c, project.id, build["id"].as_i64().unwrap()).await;
    assert!(
        trace.contains(&format!("cache hit from pipeline {p1}")),
        "the second pipeline did not reuse the first one's cache:\n{trace}"
    );
    let peak = Inventory::peak(peak1, peak2);
    // The label check saw the runner's objects while jobs ran: it can fail.
    assert!(
        peak.0 >= 1 && peak.1 >= 1,
        "no labelled container or network was ever seen: {peak:?}"
    );
    assert_nothing_left(
        &d,
        &before,
        std::slice::from_ref(&runner.short),
        "after the second pipeline",
        &process.output(),
    )
    .await;
    let status = process.stop(Duration::from_secs(60)).await;
    assert!(status.success(), "the runner exited with {status}");
    let line = format!(
        "docker pipeline e2e: 2 pipelines x 2 jobs in {:.1}s; at most {} containers, {} \
         networks, {} volumes of the runner at once\n",
        started.elapsed().as_secs_f64(),
        peak.0,
        peak.1,
        peak.2
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_job_cancelled_while_running_leaves_nothing() {
    const TEST: &str = "docker_job_cancelled_while_running_leaves_nothing";
    let Some(d) = daemon(TEST).await else { return };
    let before = Inventory::of(&d.docker, None).await;
    // Trace patches every 3 s (GitLab's pace while someone watches the
    // trace): their answers tell the runner of the cancel.
    let c = TestCoordinator::spawn_with(CiSettings {
        trace_update_interval: 3,
        ..CiSettings::default()
    })
    .await;
    let project = project_with_ci(&c, "docker-cancel", SLEEPER_YAML).await;
    let runner = DockerRunner::register(&c, &[]).await;
    let _sweeper = runner.sweeper(&d.engine);
    let process = runner.start();
    let pipeline = create_pipeline(&c, project.id, "main").await["id"]
        .as_i64()
        .unwrap();
    let job = job_named(&c, project.id, pipeline, "sleeper").await["id"]
        .as_i64()
        .unwrap();
    let during = wait_build_container(&d, &runner.short, job, &process).await;
    assert!(
        during.containers.len() >= 2 && during.networks.len() == 1,
        "expected a build and a service container on a job network:\n{}",
        during.listing()
    );

    let cancelled_at = Instant::now();
    c.root_request(
        reqwest::Method::POST,
        &format!("/projects/{}/jobs/{job}/cancel", project.id),
        None,
    )
    .await
    .expect("failed to cancel the job");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let status = job_named(&c, project.id, pipeline, "sleeper").await["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status == "canceled" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job is still {status} after the cancel:\n{}\n--- runner:\n{}",
            pipeline_report(&c, project.id, pipeline).await,
            process.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let to_canceled = cancelled_at.elapsed();
    assert_nothing_left(
        &d,
        &before,
        std::slice::from_ref(&runner.short),
        &format!(
            "after a cancelled job (while it ran: {}; canceled {:.1}s after the request)",
            during.describe(),
            to_canceled.as_secs_f64()
        ),
        &process.output(),
    )
    .await;
    let status = process.stop(Duration::from_secs(60)).await;
    assert!(status.success(), "the runner exited with {status}");
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_runner_killed_mid_job_removes_the_leftovers_when_started_again() {
    const TEST: &str = "docker_runner_killed_mid_job_removes_the_leftovers_when_started_again";
    let Some(d) = daemon(TEST).await else { return };
    let before = Inventory::of(&d.docker, None).await;
    let c = TestCoordinator::spawn().await;
    let project = project_with_ci(&c, "docker-kill", SLEEPER_YAML).await;
    // A bare volume path: a volume that lives as long as the job.
    let runner = DockerRunner::register(&c, &["--docker-volumes", "/scratch"]).await;
    let _sweeper = runner.sweeper(&d.engine);
    let mut process = runner.start();
    let pipeline = create_pipeline(&c, project.id, "main").await["id"]
        .as_i64()
        .unwrap();
    let job = job_named(&c, project.id, pipeline, "sleeper").await["id"]
        .as_i64()
        .unwrap();
    let during = wait_build_container(&d, &runner.short, job, &process).await;
    assert!(
        during.containers.len() >= 2 && during.networks.len() == 1 && during.volumes.len() == 1,
        "expected a build and a service container, a job network and a volume:\n{}",
        during.listing()
    );

    process.kill().await;
    let first_output = process.output();
    // Nobody cleans up after a killed process: everything is still there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let orphaned = Inventory::labelled(&d.docker, std::slice::from_ref(&runner.short)).await;
    assert!(
        orphaned.containers.len() >= 2
            && orphaned.networks.len() == 1
            && orphaned.volumes.len() == 1,
        "the killed runner's objects should still exist:\n{}",
        orphaned.listing()
    );

    // Started again, the runner removes them before any job comes.
    let restarted = Instant::now();
    let process = runner.start();
    assert_nothing_left(
        &d,
        &before,
        std::slice::from_ref(&runner.short),
        &format!(
            "after SIGKILL mid-job and a restart (orphaned: {})",
            orphaned.describe()
        ),
        &format!(
            "--- killed runner:\n{first_output}\n--- restarted runner:\n{}",
            process.output()
        ),
    )
    .await;
    let cleaned_in = restarted.elapsed();
    let output = process.output();
    assert!(
        output.contains("Removed Docker leftovers of an earlier run"),
        "the restarted runner did not say what it removed:\n{output}"
    );
    let line = format!(
        "docker kill e2e: leftovers removed {:.1}s after the restart\n",
        cleaned_in.as_secs_f64()
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    let status = process.stop(Duration::from_secs(60)).await;
    assert!(status.success(), "the runner exited with {status}");
    c.stop().await.unwrap();
}
