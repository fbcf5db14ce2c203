//! The docker engine layer against the real Docker daemon of this machine.
//!
//! Every test connects to the daemon named by `DOCKER_HOST` (default
//! `unix:///var/run/docker.sock`). When none answers, the test prints
//! `skipped: no Docker engine reachable at … [test name]` on stderr and passes. When one answers,
//! the test images are imported if missing (see `testimages`), and each test checks that nothing
//! labelled with its job remains afterwards.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use forerunner_runner::executors::docker::testimages::{
    ensure_test_images, BUSYBOX_ALT_IMAGE, BUSYBOX_IMAGE, IMAGE_MARKER,
};
use forerunner_runner::executors::docker::{
    parse_device, parse_ulimit, service_aliases, ContainerSpec, Engine, EngineError, HostOptions,
    ImageSource, JobLabels, NetworkAttachment, PreparedImage, PullPolicy, ScriptOutcome,
    ServiceReadiness, ServiceSpec,
};
use tokio_util::sync::CancellationToken;

const LONG: Duration = Duration::from_secs(120);

/// Connects to the daemon and prepares the test images, or says why `test` is skipped.
async fn engine(test: &str) -> Option<Engine> {
    let host = Engine::resolve_host(None, std::env::var("DOCKER_HOST").ok().as_deref());
    match Engine::connect_to(&host).await {
        Ok(engine) => {
            ensure_test_images(&engine)
                .await
                .expect("failed to prepare the test images");
            Some(engine.with_stop_grace(Duration::from_secs(1)))
        }
        Err(e) => {
            skip(test, &format!("no Docker engine reachable at {host}: {e}"));
            None
        }
    }
}

/// Says on stderr, past the test harness's capture and in one write so that it stays on one
/// line in CI logs, that `test` checked nothing.
fn skip(test: &str, why: &str) {
    let line = format!("skipped: {why} [{test}]\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// The name the test harness knows test function `name` by, for re-running it in a child
/// process: `name` when this file is the test crate's root, `module::name` when it is a module of
/// one (e.g. `tests/it/docker_engine.rs`).
fn harness_name(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_crate, module)) => format!("{module}::{name}"),
        None => name.to_owned(),
    }
}

/// Labels for a job of a runner whose short token is unique to this test run.
fn new_job(engine: &Engine) -> JobGuard {
    let token = format!("t{:08x}", rand::random::<u32>());
    JobGuard {
        engine: engine.clone(),
        job: JobLabels::new(token, rand::random::<u32>().into()),
    }
}

/// A test job that removes its Docker objects even when the test fails half-way.
struct JobGuard {
    engine: Engine,
    job: JobLabels,
}

impl std::ops::Deref for JobGuard {
    type Target = JobLabels;

    fn deref(&self) -> &JobLabels {
        &self.job
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return; // The test cleaned up and checked that itself.
        }
        let (engine, job) = (self.engine.clone(), self.job.clone());
        // Drop cannot await; clean up on a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("a runtime for cleanup");
            runtime.block_on(engine.cleanup_job(&job))
        })
        .join();
    }
}

/// Runs `script` and returns how it ended and everything it printed.
async fn run(
    engine: &Engine,
    job: &JobLabels,
    spec: &ContainerSpec,
    script: &str,
) -> (ScriptOutcome, String) {
    let mut out = Vec::new();
    let outcome = engine
        .run_script(
            job,
            spec,
            script,
            |b| out.extend_from_slice(b),
            &CancellationToken::new(),
            LONG,
        )
        .await
        .expect("run_script failed");
    (outcome, String::from_utf8_lossy(&out).into_owned())
}

/// Removes the job's objects and checks that none remain.
async fn cleanup_and_check(engine: &Engine, job: &JobLabels) {
    engine.cleanup_job(job).await.expect("cleanup_job failed");
    let left = engine.job_objects(job).await.expect("job_objects failed");
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn host_options_reach_the_container() {
    let Some(engine) = engine("host_options_reach_the_container").await else {
        return;
    };
    let job = new_job(&engine);
    let spec = ContainerSpec {
        options: HostOptions {
            shm_size: Some(8 << 20),
            tmpfs: [("/scratch".to_owned(), "rw,size=4m".to_owned())].into(),
            sysctls: [("net.ipv4.ip_forward".to_owned(), "1".to_owned())].into(),
            security_opt: vec!["no-new-privileges".into()],
            devices: vec![parse_device("/dev/zero:/dev/forerunner-zero:r").unwrap()],
            dns_search: vec!["forerunner.test".into()],
            ulimits: vec![parse_ulimit("nofile", "1000:2000").unwrap()],
            ..HostOptions::default()
        },
        ..ContainerSpec::new(BUSYBOX_IMAGE)
    };
    let script = "\
        grep ' /dev/shm ' /proc/mounts\n\
        grep ' /scratch ' /proc/mounts\n\
        echo ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)\n\
        grep NoNewPrivs /proc/self/status\n\
        head -c 3 /dev/forerunner-zero | od -An -tx1\n\
        grep search /etc/resolv.conf\n\
        echo nofile=$(ulimit -n)\n";
    let (outcome, out) = run(&engine, &job, &spec, script).await;
    assert_eq!(outcome, ScriptOutcome::Exited { code: 0 }, "{out}");
    for needle in [
        "size=8192k",      // shm_size
        "/scratch tmpfs",  // tmpfs
        "size=4096k",      // its options
        "ip_forward=1",    // sysctls
        "NoNewPrivs:\t1",  // security_opt
        "00 00 00",        // the device, under its container path
        "forerunner.test", // dns_search
        "nofile=1000",     // ulimit (soft)
    ] {
        assert!(out.contains(needle), "no {needle:?} in:\n{out}");
    }
    cleanup_and_check(&engine, &job).await;
}

#[tokio::test]
async fn service_options_reach_the_service() {
    let Some(engine) = engine("service_options_reach_the_service").await else {
        return;
    };
    let job = new_job(&engine);
    let network = engine.create_network(&job).await.unwrap();
    let builds = tempfile::tempdir().unwrap();
    let service = ServiceSpec {
        image: BUSYBOX_ALT_IMAGE.into(),
        aliases: service_aliases(BUSYBOX_ALT_IMAGE, None),
        entrypoint: Some(vec!["sh".into(), "-c".into()]),
        // Reports what it sees into the shared builds directory, then idles.
        command: Some(vec![
            "{ grep ' /data ' /proc/mounts; grep NoNewPrivs /proc/self/status; \
             grep registry /etc/hosts; } > /builds/seen.tmp; mv /builds/seen.tmp /builds/seen; \
             exec sleep 60"
                .into(),
        ]),
        binds: vec![format!("{}:/builds", builds.path().display())],
        extra_hosts: vec!["registry:10.9.8.7".into()],
        options: HostOptions {
            tmpfs: [("/data".to_owned(), "rw,size=2m".to_owned())].into(),
            security_opt: vec!["no-new-privileges".into()],
            ..HostOptions::default()
        },
        ..ServiceSpec::default()
    };
    engine
        .start_service(&job, &service, &network)
        .await
        .unwrap();
    let seen = builds.path().join("seen");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.exists() {
        assert!(Instant::now() < deadline, "the service reported nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = std::fs::read_to_string(seen).unwrap();
    for needle in ["/data tmpfs", "size=2048k", "NoNewPrivs:\t1", "10.9.8.7"] {
        assert!(seen.contains(needle), "no {needle:?} in:\n{seen}");
    }
    cleanup_and_check(&engine, &job).await;
}

#[tokio::test]
async fn script_output_and_exit_code_come_back() {
    let Some(engine) = engine("script_output_and_exit_code_come_back").await else {
        return;
    };
    let job = new_job(&engine);
    let spec = ContainerSpec {
        env: vec![("GREETING".into(), "hello from the job".into())],
        working_dir: Some("/tmp".into()),
        ..ContainerSpec::new(BUSYBOX_IMAGE)
    };

    let (outcome, out) = run(
        &engine,
        &job,
        &spec,
        "echo \"$GREETING\"\npwd\necho oops >&2\n",
    )
    .await;
    assert_eq!(outcome, ScriptOutcome::Exited { code: 0 });
    // stdout and stderr are separate pipes: their relative order is not kept.
    let stdout: Vec<&str> = out.lines().filter(|l| *l != "oops").collect();
    assert_eq!(stdout, ["hello from the job", "/tmp"], "output: {out}");
    assert!(out.lines().any(|l| l == "oops"), "stderr missing: {out}");

    let (outcome, out) = run(&engine, &job, &spec, "echo before\nexit 3\necho after\n").await;
    assert_eq!(outcome, ScriptOutcome::Exited { code: 3 });
    assert_eq!(out, "before\n");

    cleanup_and_check(&engine, &job).await;
}

#[tokio::test]
async fn large_scripts_and_outputs_stream_completely() {
    let Some(engine) = engine("large_scripts_and_outputs_stream_completely").await else {
        return;
    };
    let job = new_job(&engine);
    let script: String = (0..5000).map(|i| format!("echo line-{i}\n")).collect();
    assert!(script.len() > 64 * 1024, "bigger than a pipe buffer");
    let (outcome, out) = run(&engine, &job, &ContainerSpec::new(BUSYBOX_IMAGE), &script).await;
    assert_eq!(outcome, ScriptOutcome::Exited { code: 0 });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5000);
    assert_eq!(lines[4999], "line-4999");
    cleanup_and_check(&engine, &job).await;
}

#[tokio::test]
async fn two_images_give_different_markers() {
    let Some(engine) = engine("two_images_give_different_markers").await else {
        return;
    };
    let job = new_job(&engine);
    let script = format!("cat {IMAGE_MARKER}\n");
    let (_, a) = run(&engine, &job, &ContainerSpec::new(BUSYBOX_IMAGE), &script).await;
    let (_, b) = run(
        &engine,
        &job,
        &ContainerSpec::new(BUSYBOX_ALT_IMAGE),
        &script,
    )
    .await;
    assert_eq!(a.trim(), BUSYBOX_IMAGE);
    assert_eq!(b.trim(), BUSYBOX_ALT_IMAGE);
    cleanup_and_check(&engine, &job).await;
}

#[tokio::test]
async fn service_is_reachable_by_its_aliases() {
    let Some(engine) = engine("service_is_reachable_by_its_aliases").await else {
        return;
    };
    let job = new_job(&engine);
    let network = engine.create_network(&job).await.unwrap();
    // The builds directory is shared by the service and the job, as in the official runner.
    let builds = tempfile::tempdir().unwrap();
    let builds_bind = format!("{}:/builds", builds.path().display());
    let service = ServiceSpec {
        image: BUSYBOX_ALT_IMAGE.into(),
        aliases: service_aliases(BUSYBOX_ALT_IMAGE, Some("web,web-alias")),
        entrypoint: Some(vec!["sh".into(), "-c".into()]),
        // Starts listening only after a while, so that waiting for it is needed.
        command: Some(vec![
            "mkdir -p /builds/www && echo \"served by $SERVICE_NAME\" > /builds/www/index.html \
             && sleep 1 && exec httpd -f -p 8080 -h /builds/www"
                .into(),
        ]),
        env: vec![
            ("SERVICE_NAME".into(), "the web service".into()),
            ("HEALTHCHECK_TCP_PORT".into(), "8080".into()),
        ],
        binds: vec![builds_bind.clone()],
        ..ServiceSpec::default()
    };
    let name = engine
        .start_service(&job, &service, &network)
        .await
        .unwrap();
    assert_eq!(
        engine
            .wait_for_service(&name, Duration::from_secs(30))
            .await
            .unwrap(),
        ServiceReadiness::Ready { ports: vec![8080] }
    );

    let spec = ContainerSpec {
        network: Some(NetworkAttachment {
            network: network.clone(),
            aliases: vec![],
        }),
        binds: vec![builds_bind],
        ..ContainerSpec::new(BUSYBOX_IMAGE)
    };
    let script = "for host in web web-alias forerunner-test__busybox-alt; do\n\
                  wget -q -O - http://$host:8080/ || exit 1\n\
                  done\n\
                  echo written by the job > /builds/www/job.txt\n\
                  wget -q -O - http://web:8080/job.txt\n";
    let (outcome, out) = run(&engine, &job, &spec, script).await;
    assert_eq!(outcome, ScriptOutcome::Exited { code: 0 }, "output: {out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "served by the web service",
            "served by the web service",
            "served by the web service",
            "written by the job"
        ],
        "output: {out}"
    );

    cleanup_and_check(&engine, &job).await;
}

#[tokio::test]
async fn services_that_exit_or_never_listen_are_reported() {
    let Some(engine) = engine("services_that_exit_or_never_listen_are_reported").await else {
        return;
    };
    let job = new_job(&engine);
    let network = engine.create_network(&job).await.unwrap();

    let crashing = ServiceSpec {
        image: BUSYBOX_IMAGE.into(),
        aliases: vec!["crashing".into()],
        entrypoint: Some(vec!["sh".into(), "-c".into()]),
        command: Some(vec!["echo cannot start: no config; exit 7".into()]),
        env: vec![("HEALTHCHECK_TCP_PORT".into(), "8080".into())],
        ..ServiceSpec::default()
    };
    let name = engine
        .start_service(&job, &crashing, &network)
        .await
        .unwrap();
    assert_eq!(
        engine
            .wait_for_service(&name, Duration::from_secs(30))
            .await
            .unwrap(),
        ServiceReadiness::Exited { code: 7 }
    );
    assert_eq!(
        engine.container_logs(&name, 10).await.unwrap(),
        "cannot start: no config\n"
    );

    let silent = ServiceSpec {
        image: BUSYBOX_IMAGE.into(),
        aliases: vec!["silent".into()],
        command: Some(vec!["sleep".into(), "300".into()]),
        env: vec![("HEALTHCHECK_TCP_PORT".into(), "8080".into())],
        ..ServiceSpec::default()
    };
    let name = engine.start_service(&job, &silent, &network).await.unwrap();
    assert_eq!(
        engine
            .wait_for_service(&name, Duration::from_secs(1))
            .await
            .unwrap(),
        ServiceReadiness::TimedOut { ports: vec![8080] }
    );

    cleanup_and_check(&engine, &job).await;
}

#[tokio::test]
async fn job_container_settings_apply() {
    let Some(engine) = engine("job_container_settings_apply").await else {
        return;
    };
    let job = new_job(&engine);
    let builds = tempfile::tempdir().unwrap();
    let cache = engine.create_volume(&job, "cache").await.unwrap();
    let spec = ContainerSpec {
        user: Some("65534:65534".into()),
        binds: vec![
            format!("{}:/builds", builds.path().display()),
            format!("{cache}:/cache"),
        ],
        extra_hosts: vec!["forerunner-host:10.1.2.3".into()],
        memory: Some(64 << 20),
        nano_cpus: Some(500_000_000),
        cap_drop: vec!["ALL".into()],
        working_dir: Some("/builds".into()),
        ..ContainerSpec::new(BUSYBOX_IMAGE)
    };
    std::fs::set_permissions(
        builds.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let script = "id -u\n\
                  pwd\n\
                  echo from-the-job > /builds/out.txt\n\
                  grep forerunner-host /etc/hosts\n\
                  cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes\n\
                  grep CapEff /proc/self/status\n\
                  cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo no-cgroup-v2\n";
    let (outcome, out) = run(&engine, &job, &spec, script).await;
    assert_eq!(outcome, ScriptOutcome::Exited { code: 0 }, "output: {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "65534", "user: {out}");
    assert_eq!(lines[1], "/builds", "working dir: {out}");
    assert!(
        lines[2].starts_with("10.1.2.3") && lines[2].ends_with("forerunner-host"),
        "{out}"
    );
    assert_eq!(lines[3], (64u64 << 20).to_string(), "memory limit: {out}");
    assert!(
        lines[4].ends_with("0000000000000000"),
        "capabilities: {out}"
    );
    assert!(
        matches!(lines[5], "50000 100000" | "no-cgroup-v2"),
        "cpu limit: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(builds.path().join("out.txt")).unwrap(),
        "from-the-job\n"
    );

    // Its own DNS server, and an entrypoint that wraps the script's shell. (`privileged` is only
    // unit-tested: the daemon on the build machines may not grant all capabilities.)
    let spec = ContainerSpec {
        dns: vec!["192.0.2.53".into()],
        entrypoint: Some(vec![
            "sh".into(),
            "-c".into(),
            "echo entrypoint ran; exec \"$@\"".into(),
            "entrypoint".into(),
        ]),
        ..ContainerSpec::new(BUSYBOX_IMAGE)
    };
    let script = "grep nameserver /etc/resolv.conf\n";
    let (outcome, out) = run(&engine, &job, &spec, script).await;
    assert_eq!(outcome, ScriptOutcome::Exited { code: 0 }, "output: {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["entrypoint ran", "nameserver 192.0.2.53"], "{out}");

    // No network at all; also removes, as root, the file the job's user made so the temp dir
    // can go.
    let spec = ContainerSpec {
        network_mode: Some("none".into()),
        binds: vec![format!("{}:/builds", builds.path().display())],
        ..ContainerSpec::new(BUSYBOX_IMAGE)
    };
    let script = "ls /sys/class/net\nrm -f /builds/out.txt\n";
    let (outcome, out) = run(&engine, &job, &spec, script).await;
    assert_eq!(outcome, ScriptOutcome::Exited { code: 0 }, "output: {out}");
    assert_eq!(out, "lo\n");
    cleanup_and_check(&engine, &job).await;
}

#[tokio::test]
async fn cancel_stops_the_container_promptly() {
    let Some(engine) = engine("cancel_stops_the_container_promptly").await else {
        return;
    };
    let job = new_job(&engine);
    let cancel = CancellationToken::new();
    let out = Arc::new(Mutex::new(String::new()));
    let started = Instant::now();
    let seen = out.clone();
    let trigger = cancel.clone();
    let outcome = engine
        .run_script(
            &job,
            &ContainerSpec::new(BUSYBOX_IMAGE),
            "printf started\nsleep 300\necho never\n",
            move |b| {
                seen.lock().unwrap().push_str(&String::from_utf8_lossy(b));
                // Cancel as soon as the job is known to be running. The output has no newline yet:
                // this also shows that output is passed on as it comes, not line by line.
                trigger.cancel();
            },
            &cancel,
            LONG,
        )
        .await
        .unwrap();
    assert_eq!(outcome, ScriptOutcome::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.lock().unwrap().as_str(), "started");
    cleanup_and_check(&engine, &job).await;
}

#[tokio::test]
async fn timeout_stops_the_container_promptly() {
    let Some(engine) = engine("timeout_stops_the_container_promptly").await else {
        return;
    };
    let job = new_job(&engine);
    let started = Instant::now();
    let outcome = engine
        .run_script(
            &job,
            &ContainerSpec::new(BUSYBOX_IMAGE),
            "sleep 300\n",
            |_| {},
            &CancellationToken::new(),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert_eq!(outcome, ScriptOutcome::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    cleanup_and_check(&engine, &job).await;
}

/// Set in the child process of [`cleanup_leftovers_removes_what_a_killed_runner_left`] to
/// `TOKEN:JOB_ID`: the child plays a runner in the middle of that job.
const CRASH_JOB_ENV: &str = "FORERUNNER_CRASH_JOB";

#[tokio::test]
async fn cleanup_leftovers_removes_what_a_killed_runner_left() {
    const TEST: &str = "cleanup_leftovers_removes_what_a_killed_runner_left";
    let Some(engine) = engine(TEST).await else {
        return;
    };
    if let Ok(crash_job) = std::env::var(CRASH_JOB_ENV) {
        return play_a_runner_mid_job(&engine, &crash_job).await;
    }
    let job = new_job(&engine);
    let other = new_job(&engine); // a job of another runner: its own short token
    let other_network = engine.create_network(&other).await.unwrap();

    // A runner process in the middle of a job with a service, killed with SIGKILL.
    let mut runner = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &harness_name(TEST)])
        .env(
            CRASH_JOB_ENV,
            format!("{}:{}", job.runner_short_token(), job.job_id()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let left = loop {
        let left = engine.job_objects(&job).await.unwrap();
        if left.containers.len() == 2 && left.networks.len() == 1 && left.volumes.len() == 1 {
            break left;
        }
        assert!(
            Instant::now() < deadline,
            "the job never got going: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    runner.kill().unwrap();
    runner.wait().unwrap();

    // The next start of the same runner.
    let restarted = Engine::connect_to(engine.host()).await.unwrap();
    let removed = restarted
        .cleanup_leftovers(job.runner_short_token())
        .await
        .unwrap();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(removed.containers), sorted(left.containers));
    assert_eq!(removed.networks, left.networks);
    assert_eq!(removed.volumes, left.volumes);
    assert!(engine.job_objects(&job).await.unwrap().is_empty());

    // Another runner's objects are not touched.
    assert_eq!(
        engine.job_objects(&other).await.unwrap().networks,
        vec![other_network]
    );
    cleanup_and_check(&engine, &other).await;
}

/// The child's part: start a job with a service and a long build, and never finish it.
async fn play_a_runner_mid_job(engine: &Engine, crash_job: &str) {
    let (token, id) = crash_job.split_once(':').unwrap();
    let job = JobLabels::new(token, id.parse().unwrap());
    let network = engine.create_network(&job).await.unwrap();
    let volume = engine.create_volume(&job, "builds").await.unwrap();
    let service = ServiceSpec {
        image: BUSYBOX_IMAGE.into(),
        aliases: vec!["sleeper".into()],
        command: Some(vec!["sleep".into(), "300".into()]),
        ..ServiceSpec::default()
    };
    engine
        .start_service(&job, &service, &network)
        .await
        .unwrap();
    let spec = ContainerSpec {
        binds: vec![format!("{volume}:/builds")],
        network: Some(NetworkAttachment {
            network,
            aliases: vec![],
        }),
        ..ContainerSpec::new(BUSYBOX_IMAGE)
    };
    let _ = engine
        .run_script(
            &job,
            &spec,
            "sleep 300\n",
            |_| {},
            &CancellationToken::new(),
            LONG,
        )
        .await;
}

#[tokio::test]
async fn pull_policies_are_tried_in_order() {
    let Some(engine) = engine("pull_policies_are_tried_in_order").await else {
        return;
    };
    let missing = "forerunner-test/does-not-exist:1";

    let err = engine
        .ensure_image(missing, &[PullPolicy::Never])
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::ImageNotFoundLocally { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "image \"forerunner-test/does-not-exist:1\" not found locally and pull_policy is never \
         (build or load the image on this host first, or allow pulling with pull_policy = \
         \"if-not-present\")"
    );

    let id = engine.image_id(BUSYBOX_IMAGE).await.unwrap().unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    let local = PreparedImage {
        id,
        source: ImageSource::Local,
    };
    assert_eq!(
        engine
            .ensure_image(BUSYBOX_IMAGE, &[PullPolicy::Never])
            .await
            .unwrap(),
        local
    );
    assert_eq!(
        engine
            .ensure_image(BUSYBOX_IMAGE, &[PullPolicy::IfNotPresent])
            .await
            .unwrap(),
        local
    );

    // No registry is reachable here: `always` fails, and the next policy falls back to the
    // local image, as the official runner does with a policy list. With a registry, the pull
    // would succeed and win; either way the image is available.
    let source = engine
        .ensure_image(
            BUSYBOX_IMAGE,
            &[PullPolicy::Always, PullPolicy::IfNotPresent],
        )
        .await
        .unwrap();
    assert!(matches!(
        source.source,
        ImageSource::Local | ImageSource::Pulled
    ));

    let err = engine
        .ensure_image(missing, &[PullPolicy::IfNotPresent, PullPolicy::Never])
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "image \"forerunner-test/does-not-exist:1\" is not available: pull_policy \
             \"if-not-present\": failed to pull: "
        ),
        "{msg}"
    );
    assert!(
        msg.contains("; pull_policy \"never\": not found locally"),
        "{msg}"
    );
}

#[tokio::test]
async fn test_images_are_ready() {
    let Some(engine) = engine("test_images_are_ready").await else {
        return;
    };
    let started = Instant::now();
    ensure_test_images(&engine).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(engine.image_exists(BUSYBOX_IMAGE).await.unwrap());
    assert!(engine.image_exists(BUSYBOX_ALT_IMAGE).await.unwrap());
}

/// Set in the child process of [`permission_denied_on_the_socket_is_reported`].
const SOCKET_PROBE_ENV: &str = "FORERUNNER_SOCKET_PROBE";

/// Connecting as a user who may not open the socket gives the "permission denied" error. Root
/// may open any socket, so the test re-runs itself as `nobody` and reads what the child saw.
#[test]
fn permission_denied_on_the_socket_is_reported() {
    use std::os::unix::fs::MetadataExt as _;
    use std::os::unix::process::CommandExt as _;

    let host = Engine::resolve_host(None, std::env::var("DOCKER_HOST").ok().as_deref());
    if std::env::var_os(SOCKET_PROBE_ENV).is_some() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let result = runtime.block_on(Engine::connect_to(&host));
        println!(
            "probe-result: {:?}",
            result.map(|_| ()).map_err(|e| e.to_string())
        );
        return;
    }
    let skip = |why: &str| skip("permission_denied_on_the_socket_is_reported", why);
    let Some(path) = host.strip_prefix("unix://") else {
        return skip("not a unix socket");
    };
    let Ok(socket) = std::fs::metadata(path) else {
        return skip("no socket file");
    };
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        return skip("the test must run as root to switch to an unprivileged user");
    }
    if socket.mode() & 0o006 != 0 || socket.gid() == 65534 {
        return skip("the socket is open to everyone");
    }

    let run = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &harness_name("permission_denied_on_the_socket_is_reported"),
            "--nocapture",
        ])
        .env(SOCKET_PROBE_ENV, "1")
        .uid(65534)
        .gid(65534)
        .output();
    let out = match run {
        Ok(out) => out,
        // E.g. a target directory under a home that `nobody` may not enter.
        Err(e) => return skip(&format!("cannot run the test binary as nobody: {e}")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("probe-result: "))
        .unwrap_or_else(|| {
            panic!(
                "no probe result: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert_eq!(
        line,
        format!(
            "probe-result: Err(\"permission denied on the Docker socket {host} (run the runner \
             as a user in the `docker` group, or as root)\")"
        )
    );
}
