//! The executor conformance suite: one set of scenarios — success, failure exit code,
//! `after_script` after a failure, timeout, graceful cancel, abort (runner stopping hard),
//! masking, variables and file variables, artifacts, cache — that every executor runs through `job::run_and_report` with a
//! fake coordinator. The `shell`, `docker` and `custom` modules instantiate every scenario for
//! their executor; the custom executor uses the example driver in `examples/custom-executor`.
//!
//! Docker scenarios run on the daemon named by `DOCKER_HOST` (default the local socket) in the
//! locally imported test images; when no daemon answers, each prints
//! `skipped: no Docker engine reachable at … [docker::<scenario>]` and passes. After every docker
//! job — cancelled ones included — the suite checks that no container, network or volume with
//! the job's labels remains. The `docker` module also holds what only that executor has: two
//! images in a pipeline-like sequence, a service reached by its alias, pull policy and
//! `allowed_images` errors, an unreachable daemon, and the removal of a crashed run's leftovers.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use forerunner_protocol::failure::FailureReason;
use forerunner_protocol::jobs::*;
use forerunner_protocol::tokens::short_token;
use forerunner_runner::executors::custom::{CustomExecutor, CustomSettings, ExecSpec};
use forerunner_runner::executors::docker::testimages::{ensure_test_images, BUSYBOX_IMAGE};
use forerunner_runner::executors::docker::{
    DockerExecutor, DockerSettings, Engine, JobLabels, PullPolicy,
};
use forerunner_runner::executors::shell::ShellExecutor;
use forerunner_runner::executors::Executor;
use forerunner_runner::job::{JobOutcome, StopSignals};

use crate::support::{job, repo, run_with, v, FakeApi};

/// Which executor a harness drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Shell,
    Docker,
    Custom,
}

/// One runner (unique token, own directories) with one executor kind.
pub(crate) struct Harness {
    kind: Kind,
    token: String,
    root: tempfile::TempDir,
    cache: tempfile::TempDir,
    engine: Option<Engine>,
    /// Adjusts the docker settings of this harness's executors.
    docker: fn(&mut DockerSettings),
}

/// Says on stderr, in one write, that `test` checked nothing and why.
fn skip(test: &str, why: &str) {
    let line = format!("skipped: {why} [{test}]\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/custom-executor")
}

impl Harness {
    /// A harness, or `None` (after saying so) when `kind` needs a Docker engine and none answers.
    pub(crate) async fn new(kind: Kind, test: &str) -> Option<Self> {
        let engine = if kind == Kind::Docker {
            let host = Engine::resolve_host(None, std::env::var("DOCKER_HOST").ok().as_deref());
            match Engine::connect_to(&host).await {
                Ok(engine) => {
                    ensure_test_images(&engine)
                        .await
                        .expect("failed to prepare the test images");
                    Some(engine)
                }
                Err(e) => {
                    skip(test, &format!("no Docker engine reachable at {host}: {e}"));
                    return None;
                }
            }
        } else {
            None
        };
        Some(Self {
            kind,
            token: format!("glrt-{:09x}zzzzzzzzzz", rand::random::<u32>()),
            root: tempfile::tempdir().unwrap(),
            cache: tempfile::tempdir().unwrap(),
            engine,
            docker: |_| {},
        })
    }

    fn short(&self) -> String {
        short_token(&self.token)
    }

    pub(crate) fn docker_settings(&self) -> DockerSettings {
        let mut s = DockerSettings::new(
            self.short(),
            self.root.path().join("concurrent-0"),
            self.root.path().join("cache"),
        );
        s.default_image = Some(BUSYBOX_IMAGE.into());
        s.pull_policy = vec![PullPolicy::Never];
        s.stop_grace = Duration::from_secs(1);
        (self.docker)(&mut s);
        s
    }

    fn executor(&self) -> Box<dyn Executor> {
        match self.kind {
            Kind::Shell => Box::new(ShellExecutor::new(self.root.path().to_path_buf())),
            Kind::Docker => Box::new(DockerExecutor::new(self.docker_settings())),
            Kind::Custom => {
                let exec = |name: &str, args: Vec<String>| ExecSpec {
                    path: examples().join(name),
                    args,
                    timeout: Duration::from_secs(60),
                };
                let mut s = CustomSettings::new(examples().join("run.sh"));
                s.config_exec = Some(exec(
                    "config.sh",
                    vec![self.root.path().to_string_lossy().into_owned()],
                ));
                s.prepare_exec = Some(exec("prepare.sh", vec![]));
                s.cleanup_exec = Some(exec("cleanup.sh", vec![]));
                s.graceful_kill = Duration::from_secs(2);
                s.force_kill = Duration::from_secs(2);
                Box::new(CustomExecutor::new(s))
            }
        }
    }

    /// `CI_PROJECT_DIR` of the test jobs (project `group/project`) as the job sees it.
    fn project_dir(&self) -> String {
        match self.kind {
            Kind::Shell => format!(
                "{}/{}/0/group/project",
                self.root.path().display(),
                self.short()
            ),
            Kind::Docker => "/builds/group/project".into(),
            Kind::Custom => format!(
                "{}/builds/{}/0/group/project",
                self.root.path().display(),
                self.short()
            ),
        }
    }

    /// Runs `job` with a fresh executor; for docker, then checks that nothing labelled with
    /// the job remains.
    pub(crate) async fn run(
        &self,
        job: &JobResponse,
        api: &FakeApi,
        stop: &StopSignals,
    ) -> (JobOutcome, String) {
        let mut exec = self.executor();
        let builds = exec.builds_dir();
        let result = run_with(
            exec.as_mut(),
            job,
            api,
            &builds,
            self.cache.path(),
            &self.token,
            stop,
        )
        .await;
        drop(exec);
        if let Some(engine) = &self.engine {
            let labels = JobLabels::new(self.short(), job.id as u64);
            let left = engine.job_objects(&labels).await.unwrap();
            assert!(
                left.is_empty(),
                "docker objects of job {} remain: {left:?}\n{}",
                job.id,
                result.1
            );
        }
        result
    }
}

/// Runs `scenario` on a fresh harness of `kind`, unless it is skipped.
async fn check<F, Fut>(kind: Kind, test: &str, scenario: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if let Some(h) = Harness::new(kind, test).await {
        scenario(h).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios every executor passes.
// ---------------------------------------------------------------------------------------------

async fn success(h: Harness) {
    let (repo, sha) = repo();
    let j = job(
        repo.path(),
        &sha,
        &["cat hello.txt", "echo \"pwd=$(pwd)\""],
        &[],
    );
    let api = FakeApi::default();
    let (outcome, trace) = h.run(&j, &api, &StopSignals::default()).await;
    assert_eq!(outcome.state, JobState::Success, "{trace}");
    assert!(trace.contains("hello from the repo"), "{trace}");
    assert!(
        trace.contains(&format!("pwd={}", h.project_dir())),
        "{trace}"
    );
    assert!(trace.contains("Job succeeded"), "{trace}");
    let update = api.updates.lock().unwrap().last().cloned().unwrap();
    assert_eq!(update.state, JobState::Success);
    assert_eq!(update.exit_code, None);
}

async fn failure_exit_code(h: Harness) {
    let (repo, sha) = repo();
    let j = job(
        repo.path(),
        &sha,
        &["echo before", "exit 3", "echo never"],
        &[],
    );
    let api = FakeApi::default();
    let (outcome, trace) = h.run(&j, &api, &StopSignals::default()).await;
    assert_eq!(outcome.state, JobState::Failed, "{trace}");
    assert_eq!(outcome.failure_reason, Some(FailureReason::ScriptFailure));
    assert_eq!(outcome.exit_code, Some(3), "{trace}");
    assert!(trace.contains("ERROR: Job failed: exit code 3"), "{trace}");
    assert!(!trace.contains("\nnever\n"), "{trace}");
    let update = api.updates.lock().unwrap().last().cloned().unwrap();
    assert_eq!(update.exit_code, Some(3));
    assert_eq!(update.failure_reason, Some(FailureReason::ScriptFailure));
}

async fn after_script_after_failure(h: Harness) {
    let (repo, sha) = repo();
    let j = job(
        repo.path(),
        &sha,
        &["echo built > built.txt", "false"],
        &["echo after-status=$CI_JOB_STATUS", "cat built.txt"],
    );
    let api = FakeApi::default();
    let (outcome, trace) = h.run(&j, &api, &StopSignals::default()).await;
    assert_eq!(outcome.failure_reason, Some(FailureReason::ScriptFailure));
    assert_eq!(outcome.exit_code, Some(1));
    assert!(trace.contains("after-status=failed"), "{trace}");
    assert!(
        trace.contains("\nbuilt\n"),
        "after_script sees the script's files: {trace}"
    );
}

async fn timeout(h: Harness) {
    let (repo, sha) = repo();
    let mut j = job(
        repo.path(),
        &sha,
        &["echo start", "sleep 60"],
        &["echo after=$CI_JOB_STATUS"],
    );
    j.runner_info.timeout = 4;
    let api = FakeApi::default();
    let started = Instant::now();
    let (outcome, trace) = h.run(&j, &api, &StopSignals::default()).await;
    assert!(started.elapsed() < Duration::from_secs(40), "{trace}");
    assert_eq!(
        outcome.failure_reason,
        Some(FailureReason::JobExecutionTimeout),
        "{trace}"
    );
    assert!(trace.contains("after=timedout"), "{trace}");
    assert!(
        trace.contains("execution took longer than 4s seconds"),
        "{trace}"
    );
}

async fn cancel(h: Harness) {
    let (repo, sha) = repo();
    let j = job(
        repo.path(),
        &sha,
        &["echo started", "sleep 60"],
        &["echo cleanup=$CI_JOB_STATUS"],
    );
    let api = FakeApi {
        cancel_after: Some(1),
        ..Default::default()
    };
    let started = Instant::now();
    let (outcome, trace) = h.run(&j, &api, &StopSignals::default()).await;
    assert!(started.elapsed() < Duration::from_secs(40), "{trace}");
    assert_eq!(outcome.state, JobState::Failed, "{trace}");
    assert!(trace.contains("cleanup=canceled"), "{trace}");
}

async fn masking(h: Harness) {
    let (repo, sha) = repo();
    // POSIX only (the docker test image has busybox sh): one character per write.
    let j = job(
        repo.path(),
        &sha,
        &[
            "echo \"full: $SECRET\"",
            "s=$SECRET; while [ -n \"$s\" ]; do r=${s#?}; printf '%s' \"${s%\"$r\"}\"; s=$r; sleep 0.02; done; echo",
        ],
        &["echo \"after: $SECRET\""],
    );
    let api = FakeApi::default();
    let (outcome, trace) = h.run(&j, &api, &StopSignals::default()).await;
    assert_eq!(outcome.state, JobState::Success, "{trace}");
    assert!(!trace.contains("p4ssw0rd-XYZ"), "{trace}");
    assert!(!trace.contains("jobtoken"), "job token leaked: {trace}");
    assert!(trace.contains("full: [MASKED]"), "{trace}");
    assert!(trace.contains("\n[MASKED]\n"), "{trace}");
    assert!(trace.contains("after: [MASKED]"), "{trace}");
}

async fn variables(h: Harness) {
    let (repo, sha) = repo();
    let mut j = job(
        repo.path(),
        &sha,
        &[
            "echo \"greet=$GREETING\"",
            "echo \"file=$(cat \"$CONFIG_FILE\")\"",
            "echo \"project=$CI_PROJECT_DIR\"",
            "echo \"builds=$CI_BUILDS_DIR\"",
            "echo \"env=${CI_SHARED_ENVIRONMENT:-}${CI_DISPOSABLE_ENVIRONMENT:-}\"",
        ],
        &["echo \"after-file=$(cat \"$CONFIG_FILE\")\""],
    );
    j.variables
        .push(v("GREETING", "hello $CI_PROJECT_NAME", false));
    j.variables.push(v("CI_PROJECT_NAME", "project", false));
    j.variables.push(JobVariable {
        file: true,
        ..v("CONFIG_FILE", "line1 'quoted' $NOT_EXPANDED", false)
    });
    let api = FakeApi::default();
    let (outcome, trace) = h.run(&j, &api, &StopSignals::default()).await;
    assert_eq!(outcome.state, JobState::Success, "{trace}");
    assert!(trace.contains("greet=hello project"), "{trace}");
    assert!(
        trace.contains("file=line1 'quoted' $NOT_EXPANDED"),
        "{trace}"
    );
    assert!(
        trace.contains("after-file=line1 'quoted' $NOT_EXPANDED"),
        "{trace}"
    );
    let project = h.project_dir();
    assert!(trace.contains(&format!("project={project}")), "{trace}");
    let builds = match h.kind {
        Kind::Docker => "/builds".to_owned(),
        Kind::Shell => h.root.path().display().to_string(),
        Kind::Custom => format!("{}/builds", h.root.path().display()),
    };
    assert!(trace.contains(&format!("builds={builds}\n")), "{trace}");
    assert!(trace.contains("env=true\n"), "{trace}");
}

async fn artifacts(h: Harness) {
    let (repo, sha) = repo();
    let mut j = job(
        repo.path(),
        &sha,
        &[
            "mkdir -p out/sub",
            "echo built > out/app",
            "echo deep > out/sub/x",
        ],
        &[],
    );
    j.artifacts = vec![ArtifactSpec {
        name: "artifacts".into(),
        paths: vec!["out/".into()],
        when: When::OnSuccess,
        ..Default::default()
    }];
    let api = FakeApi::default();
    let (outcome, trace) = h.run(&j, &api, &StopSignals::default()).await;
    assert_eq!(outcome.state, JobState::Success, "{trace}");
    let uploads = api.artifacts.lock().unwrap().clone();
    assert_eq!(uploads.len(), 1, "{trace}");
    let to = tempfile::tempdir().unwrap();
    forerunner_runner::job::archive::extract_zip(
        std::io::Cursor::new(uploads[0].1.clone()),
        to.path(),
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(to.path().join("out/app")).unwrap(),
        "built\n"
    );
    assert_eq!(
        std::fs::read_to_string(to.path().join("out/sub/x")).unwrap(),
        "deep\n"
    );
}

async fn abort(h: Harness) {
    let (repo, sha) = repo();
    let j = job(
        repo.path(),
        &sha,
        &["echo started", "sleep 60"],
        &["echo after-ran"],
    );
    let stop = StopSignals::default();
    let abort = stop.abort.clone();
    let trigger = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        abort.cancel();
    });
    let started = Instant::now();
    let (outcome, trace) = h.run(&j, &FakeApi::default(), &stop).await;
    trigger.abort();
    assert!(started.elapsed() < Duration::from_secs(40), "{trace}");
    assert_eq!(
        outcome.failure_reason,
        Some(FailureReason::RunnerInterrupted),
        "{trace}"
    );
    assert!(
        !trace.contains("after-ran"),
        "after_script ran on abort: {trace}"
    );
}

fn cache_spec() -> Vec<CacheSpec> {
    vec![CacheSpec {
        key: "deps".into(),
        paths: vec!["vendor/".into()],
        policy: "pull-push".into(),
        when: When::OnSuccess,
        ..Default::default()
    }]
}

async fn cache(h: Harness) {
    let (repo, sha) = repo();
    let mut first = job(
        repo.path(),
        &sha,
        &["mkdir -p vendor", "echo cached-from-first > vendor/lib"],
        &[],
    );
    first.cache = cache_spec();
    let (o1, t1) = h
        .run(&first, &FakeApi::default(), &StopSignals::default())
        .await;
    assert_eq!(o1.state, JobState::Success, "{t1}");
    let mut second = job(repo.path(), &sha, &["cat vendor/lib"], &[]);
    second.id = 12;
    second.cache = cache_spec();
    let (o2, t2) = h
        .run(&second, &FakeApi::default(), &StopSignals::default())
        .await;
    assert_eq!(o2.state, JobState::Success, "{t2}");
    assert!(t2.contains("Successfully extracted cache for deps"), "{t2}");
    assert!(t2.contains("\ncached-from-first\n"), "{t2}");
}

/// Instantiates every scenario for every executor kind.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod shell {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::check(super::Kind::Shell, concat!("shell::", stringify!($scenario)), super::$scenario).await;
                }
            )*
        }
        mod docker {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::check(super::Kind::Docker, concat!("docker::", stringify!($scenario)), super::$scenario).await;
                }
            )*
        }
        mod custom {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::check(super::Kind::Custom, concat!("custom::", stringify!($scenario)), super::$scenario).await;
                }
            )*
        }
    };
}

conformance!(
    success,
    failure_exit_code,
    after_script_after_failure,
    timeout,
    cancel,
    abort,
    masking,
    variables,
    artifacts,
    cache,
);

// ---------------------------------------------------------------------------------------------
// Docker only.
// ---------------------------------------------------------------------------------------------

mod docker_only {
    use forerunner_runner::executors::docker::testimages::{BUSYBOX_ALT_IMAGE, IMAGE_MARKER};

    use super::*;

    #[tokio::test]
    async fn two_images_in_a_pipeline_share_artifacts_and_cache() {
        check(Kind::Docker, "docker_only::two_images", |h| async move {
            let (repo, sha) = repo();
            let mut build = job(
                repo.path(),
                &sha,
                &[
                    &format!("cat {IMAGE_MARKER}"),
                    "mkdir -p out vendor",
                    "echo app > out/app",
                    "echo lib > vendor/lib",
                ],
                &[],
            );
            build.image = Some(Image {
                name: BUSYBOX_IMAGE.into(),
                ..Image::default()
            });
            build.cache = cache_spec();
            build.artifacts = vec![ArtifactSpec {
                name: "artifacts".into(),
                paths: vec!["out/".into()],
                when: When::OnSuccess,
                ..Default::default()
            }];
            let api = FakeApi::default();
            let (o1, t1) = h.run(&build, &api, &StopSignals::default()).await;
            assert_eq!(o1.state, JobState::Success, "{t1}");
            assert!(t1.contains(&format!("\n{BUSYBOX_IMAGE}")), "{t1}");
            let zip = api.artifacts.lock().unwrap()[0].1.clone();

            let mut test = job(
                repo.path(),
                &sha,
                &[&format!("cat {IMAGE_MARKER}"), "cat out/app vendor/lib"],
                &[],
            );
            test.id = 12;
            test.image = Some(Image {
                name: BUSYBOX_ALT_IMAGE.into(),
                ..Image::default()
            });
            test.cache = cache_spec();
            test.dependencies = vec![Dependency {
                id: 11,
                name: "build".into(),
                token: "t".into(),
                artifacts_file: Some(ArtifactsFile {
                    filename: "artifacts.zip".into(),
                    size: 1,
                }),
            }];
            let api2 = FakeApi::default();
            api2.stored_artifacts.lock().unwrap().insert(11, zip);
            let (o2, t2) = h.run(&test, &api2, &StopSignals::default()).await;
            assert_eq!(o2.state, JobState::Success, "{t2}");
            assert!(t2.contains(&format!("\n{BUSYBOX_ALT_IMAGE}")), "{t2}");
            assert!(t2.contains("\napp\nlib\n"), "{t2}");
        })
        .await;
    }

    #[tokio::test]
    async fn service_is_reached_by_its_alias() {
        check(Kind::Docker, "docker_only::service_alias", |h| async move {
            let (repo, sha) = repo();
            let mut j = job(
                repo.path(),
                &sha,
                &["wget -q -O - http://web:8080/forerunner-image"],
                &[],
            );
            j.services = vec![Image {
                name: BUSYBOX_IMAGE.into(),
                alias: Some("web".into()),
                command: ["httpd", "-f", "-p", "8080", "-h", "/etc"]
                    .map(String::from)
                    .to_vec(),
                variables: vec![v("HEALTHCHECK_TCP_PORT", "8080", false)],
                ..Image::default()
            }];
            let (o, t) = h
                .run(&j, &FakeApi::default(), &StopSignals::default())
                .await;
            assert_eq!(o.state, JobState::Success, "{t}");
            assert!(t.contains("Starting service"), "{t}");
            assert!(t.contains(&format!("\n{BUSYBOX_IMAGE}")), "{t}");
        })
        .await;
    }

    #[tokio::test]
    async fn runner_settings_reach_the_build_container() {
        check(Kind::Docker, "docker_only::settings", |mut h| async move {
            let data = h.root.path().join("data");
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("hello"), "from the host\n").unwrap();
            h.docker = |s| {
                s.extra_hosts = vec!["myhost:10.1.2.3".into()];
                s.cap_drop = vec!["CHOWN".into()];
                s.memory = Some(64 << 20);
                s.volumes = vec!["/scratch".into()];
            };
            // The bind of the host directory needs its path, which a fn pointer cannot
            // capture: add it through the settings' volumes after the fact.
            let mut settings = h.docker_settings();
            settings.volumes.push(format!("{}:/data:ro", data.display()));
            let (repo, sha) = repo();
            let j = job(
                repo.path(),
                &sha,
                &[
                    "grep myhost /etc/hosts",
                    "cat /data/hello",
                    "touch /scratch/x && echo scratch-ok",
                    "touch /cache/c && echo cache-mounted",
                    "touch f; if chown nobody f 2>/dev/null; then echo chown-allowed; else echo chown-denied; fi",
                    "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
                ],
                &[],
            );
            let mut exec = DockerExecutor::new(settings);
            let api = FakeApi::default();
            let (o, t) = run_with(
                &mut exec,
                &j,
                &api,
                "/builds",
                h.cache.path(),
                &h.token,
                &StopSignals::default(),
            )
            .await;
            drop(exec);
            assert_eq!(o.state, JobState::Success, "{t}");
            assert!(t.contains("10.1.2.3"), "{t}");
            assert!(t.contains("from the host"), "{t}");
            assert!(t.contains("scratch-ok"), "{t}");
            assert!(t.contains("cache-mounted"), "{t}");
            assert!(t.contains("chown-denied"), "{t}");
            assert!(t.contains("67108864"), "{t}");
            let engine = h.engine.clone().unwrap();
            let left = engine
                .job_objects(&JobLabels::new(h.short(), j.id as u64))
                .await
                .unwrap();
            assert!(left.is_empty(), "{left:?}");
        })
        .await;
    }

    #[tokio::test]
    async fn the_job_image_entrypoint_runs_before_every_stage() {
        check(Kind::Docker, "docker_only::entrypoint", |h| async move {
            let (repo, sha) = repo();
            let mut j = job(repo.path(), &sha, &["echo script-ran"], &["echo after-ran"]);
            // The entrypoint gets the shell as its argument and must exec it.
            j.image = Some(Image {
                name: BUSYBOX_IMAGE.into(),
                entrypoint: ["/bin/sh", "-c", "echo from-entrypoint; exec \"$0\""]
                    .map(String::from)
                    .to_vec(),
                ..Image::default()
            });
            let (o, t) = h
                .run(&j, &FakeApi::default(), &StopSignals::default())
                .await;
            assert_eq!(o.state, JobState::Success, "{t}");
            assert_eq!(t.matches("from-entrypoint").count(), 2, "{t}");
            assert!(t.contains("script-ran") && t.contains("after-ran"), "{t}");
        })
        .await;
    }

    #[tokio::test]
    async fn missing_image_with_pull_policy_never_is_a_system_failure() {
        check(Kind::Docker, "docker_only::pull_never", |h| async move {
            let (repo, sha) = repo();
            let mut j = job(repo.path(), &sha, &["true"], &[]);
            j.image = Some(Image {
                name: "forerunner-test/does-not-exist:1".into(),
                ..Image::default()
            });
            let (o, t) = h
                .run(&j, &FakeApi::default(), &StopSignals::default())
                .await;
            assert_eq!(o.failure_reason, Some(FailureReason::RunnerSystemFailure));
            assert!(
                t.contains("not found locally and pull_policy is never"),
                "{t}"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn images_outside_allowed_images_are_refused() {
        check(
            Kind::Docker,
            "docker_only::allowed_images",
            |mut h| async move {
                h.docker = |s| s.allowed_images = vec!["forerunner-test/busybox-alt:*".into()];
                let (repo, sha) = repo();
                let mut j = job(repo.path(), &sha, &["true"], &[]);
                j.image = Some(Image {
                    name: "forerunner-test/other:1".into(),
                    ..Image::default()
                });
                let (o, t) = h
                    .run(&j, &FakeApi::default(), &StopSignals::default())
                    .await;
                assert_eq!(o.failure_reason, Some(FailureReason::RunnerSystemFailure));
                assert!(
                    t.contains("is not present on list of allowed images"),
                    "{t}"
                );
            },
        )
        .await;
    }

    #[tokio::test]
    async fn unreachable_daemon_is_a_system_failure_with_the_reason_in_the_log() {
        // Needs no engine: the executor is pointed at a socket that does not exist.
        let mut h = Harness::new(Kind::Shell, "docker_only::unreachable")
            .await
            .unwrap();
        h.kind = Kind::Docker;
        h.docker = |s| s.host = Some("unix:///nonexistent/forerunner-docker.sock".into());
        let (repo, sha) = repo();
        let j = job(repo.path(), &sha, &["true"], &[]);
        let (o, t) = h
            .run(&j, &FakeApi::default(), &StopSignals::default())
            .await;
        assert_eq!(o.failure_reason, Some(FailureReason::RunnerSystemFailure));
        assert!(t.contains("cannot reach the Docker daemon"), "{t}");
    }

    #[tokio::test]
    async fn leftovers_of_a_crashed_run_are_removed_before_the_first_job() {
        check(Kind::Docker, "docker_only::leftovers", |h| async move {
            let engine = h.engine.clone().unwrap();
            let crashed = JobLabels::new(h.short(), 4242);
            engine.create_network(&crashed).await.unwrap();
            engine.create_volume(&crashed, "builds").await.unwrap();
            assert!(!engine.job_objects(&crashed).await.unwrap().is_empty());
            let (repo, sha) = repo();
            let j = job(repo.path(), &sha, &["true"], &[]);
            let (o, t) = h
                .run(&j, &FakeApi::default(), &StopSignals::default())
                .await;
            assert_eq!(o.state, JobState::Success, "{t}");
            let left = engine.job_objects(&crashed).await.unwrap();
            assert!(left.is_empty(), "{left:?}");
        })
        .await;
    }
}

mod docker_stop {
    use super::*;

    #[tokio::test]
    async fn a_dropped_job_still_removes_its_containers() {
        // The job loop of a runner that stops hard may drop a job's future.
        check(Kind::Docker, "docker_stop::dropped_job", |h| async move {
            let engine = h.engine.clone().unwrap();
            let (repo, sha) = repo();
            let j = job(repo.path(), &sha, &["sleep 60"], &[]);
            let labels = JobLabels::new(h.short(), j.id as u64);
            let (api, stop) = (FakeApi::default(), StopSignals::default());
            let run = h.run(&j, &api, &stop);
            let started = tokio::time::timeout(Duration::from_secs(60), async {
                tokio::pin!(run);
                loop {
                    tokio::select! {
                        _ = &mut run => panic!("the job ended by itself"),
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                    let objects = engine.job_objects(&labels).await.unwrap();
                    if !objects.containers.is_empty() {
                        return objects;
                    }
                }
            })
            .await
            .expect("no build container started");
            assert!(!started.containers.is_empty());
            // `run` is dropped here, mid-stage.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let left = engine.job_objects(&labels).await.unwrap();
                if left.is_empty() {
                    break;
                }
                assert!(Instant::now() < deadline, "still there: {left:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
    }
}

mod custom_only {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// A custom executor whose `run_exec` is `run_body` (bash) and whose builds go to a temp dir.
    fn driver(dir: &std::path::Path, run_body: &str) -> CustomSettings {
        let run = dir.join("run.sh");
        std::fs::write(&run, format!("#!/usr/bin/env bash\n{run_body}\n")).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut s = CustomSettings::new(run);
        s.builds_dir = Some(dir.join("builds").to_string_lossy().into_owned());
        s.graceful_kill = Duration::from_secs(2);
        s.force_kill = Duration::from_secs(2);
        s
    }

    fn script(dir: &std::path::Path, name: &str, body: &str) -> ExecSpec {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        ExecSpec {
            path,
            args: vec![],
            timeout: Duration::from_secs(30),
        }
    }

    async fn run_custom(s: CustomSettings, script_lines: &[&str]) -> (JobOutcome, String) {
        let (repo, sha) = repo();
        let j = job(repo.path(), &sha, script_lines, &["echo after"]);
        let cache = tempfile::tempdir().unwrap();
        let mut exec = CustomExecutor::new(s);
        run_with(
            &mut exec,
            &j,
            &FakeApi::default(),
            "",
            cache.path(),
            "glrt-t1_abcdefghijklmno",
            &StopSignals::default(),
        )
        .await
    }

    #[tokio::test]
    async fn every_executable_gets_the_documented_environment() {
        let dir = tempfile::tempdir().unwrap();
        let s = driver(
            dir.path(),
            r#"echo "stage=$2 id=$CUSTOM_ENV_CI_RUNNER_SHORT_TOKEN codes=$BUILD_FAILURE_EXIT_CODE/$SYSTEM_FAILURE_EXIT_CODE"
[ "$TMPDIR" = "$PWD" ] && echo tmpdir-is-cwd
[ -n "$BUILD_EXIT_CODE_FILE" ] && echo has-exit-code-file
grep -q '"id":11' "$JOB_RESPONSE_FILE" && echo response-ok
echo "services=$CUSTOM_ENV_CI_JOB_SERVICES"
echo "pd=$CUSTOM_ENV_CI_PROJECT_DIR shared=$CUSTOM_ENV_CI_SHARED_ENVIRONMENT"
bash "$1""#,
        );
        let (o, t) = run_custom(s, &["true"]).await;
        assert_eq!(o.state, JobState::Success, "{t}");
        for stage in ["get_sources", "build_script", "after_script"] {
            assert!(
                t.contains(&format!("stage={stage} id=t1_abcdef codes=1/2")),
                "{stage}: {t}"
            );
        }
        assert!(t.contains("tmpdir-is-cwd"), "{t}");
        assert!(t.contains("has-exit-code-file"), "{t}");
        assert!(t.contains("response-ok"), "{t}");
        assert!(t.contains("services=\n"), "{t}");
        // No config_exec: the builds directory is not shared, the environment is.
        let pd = format!(
            "pd={}/builds/group/project shared=true",
            dir.path().display()
        );
        assert!(t.contains(&pd), "{t}");
        assert!(t.contains("Using Custom executor..."), "{t}");
    }

    #[tokio::test]
    async fn build_failure_without_exit_code_file_is_exit_code_1() {
        let dir = tempfile::tempdir().unwrap();
        let s = driver(
            dir.path(),
            r#"bash "$1" || exit "$BUILD_FAILURE_EXIT_CODE""#,
        );
        let (o, t) = run_custom(s, &["exit 5"]).await;
        assert_eq!(o.failure_reason, Some(FailureReason::ScriptFailure), "{t}");
        assert_eq!(o.exit_code, Some(1), "{t}");
    }

    #[tokio::test]
    async fn system_failure_and_unknown_codes_are_runner_system_failures() {
        let dir = tempfile::tempdir().unwrap();
        let s = driver(
            dir.path(),
            r#"if [ "$2" = build_script ]; then echo broken >&2; exit "$SYSTEM_FAILURE_EXIT_CODE"; fi; bash "$1""#,
        );
        let (o, t) = run_custom(s, &["true"]).await;
        assert_eq!(
            o.failure_reason,
            Some(FailureReason::RunnerSystemFailure),
            "{t}"
        );
        assert!(t.contains("broken"), "{t}");
        assert!(t.contains("reported a system failure (exit code 2)"), "{t}");
        assert!(t.contains("\nafter\n"), "after_script still runs: {t}");

        let dir = tempfile::tempdir().unwrap();
        let s = driver(
            dir.path(),
            r#"[ "$2" = build_script ] && exit 7; bash "$1""#,
        );
        let (o, t) = run_custom(s, &["true"]).await;
        assert_eq!(
            o.failure_reason,
            Some(FailureReason::RunnerSystemFailure),
            "{t}"
        );
        assert!(
            t.contains("unknown custom executor exit code (exit code 7)"),
            "{t}"
        );
    }

    #[tokio::test]
    async fn config_exec_output_is_validated_and_builds_dir_required() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = driver(dir.path(), r#"bash "$1""#);
        s.config_exec = Some(script(
            dir.path(),
            "config.sh",
            "echo 'not json'; echo why >&2",
        ));
        let (o, t) = run_custom(s, &["true"]).await;
        assert_eq!(
            o.failure_reason,
            Some(FailureReason::RunnerSystemFailure),
            "{t}"
        );
        assert!(t.contains("printed no valid JSON on stdout"), "{t}");
        assert!(
            t.contains("why"),
            "config_exec stderr goes to the job log: {t}"
        );

        let dir = tempfile::tempdir().unwrap();
        let mut s = driver(dir.path(), r#"bash "$1""#);
        s.builds_dir = None;
        let (o, t) = run_custom(s, &["true"]).await;
        assert_eq!(
            o.failure_reason,
            Some(FailureReason::RunnerSystemFailure),
            "{t}"
        );
        assert!(t.contains("the builds_dir is not configured"), "{t}");
    }

    #[tokio::test]
    async fn prepare_exec_timeout_fails_the_job_and_cleanup_still_runs() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("cleaned");
        let mut s = driver(dir.path(), r#"bash "$1""#);
        let mut prepare = script(dir.path(), "prepare.sh", "echo preparing; sleep 60");
        prepare.timeout = Duration::from_secs(1);
        s.prepare_exec = Some(prepare);
        s.cleanup_exec = Some(script(
            dir.path(),
            "cleanup.sh",
            &format!("touch {}", marker.display()),
        ));
        let started = Instant::now();
        let (o, t) = run_custom(s, &["true"]).await;
        assert!(started.elapsed() < Duration::from_secs(20), "{t}");
        assert_eq!(
            o.failure_reason,
            Some(FailureReason::RunnerSystemFailure),
            "{t}"
        );
        assert!(t.contains("preparing"), "{t}");
        assert!(t.contains("ran past prepare_exec_timeout"), "{t}");
        assert!(marker.exists(), "cleanup_exec did not run");
    }
}
