//! The custom-executor example of the README end to end: the four scripts
//! of `examples/custom-executor/` registered with `forerunner register
//! --executor custom …` exactly as the README shows, `forerunner run` as a
//! child process, and the real coordinator (fresh data dir, `127.0.0.1:0`)
//! running a pipeline: sources, artifacts passed on, a failing job mapped to
//! `script_failure`, `job_env` and the directories of `config.sh`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use forerunner_testkit::TestCoordinator;
use serde_json::json;

use crate::ci_support::{
    create_pipeline, job_named, job_trace, pipeline_report, project_with_ci, wait_pipeline,
};
use crate::runner_support::{Env, Runner};

const YAML: &str = r#"
stages: [build, test]
build:
  stage: build
  script:
    - echo "driver root is $EXAMPLE_DRIVER_ROOT"
    - case "$CI_PROJECT_DIR" in "$EXAMPLE_DRIVER_ROOT"/builds/*) echo "project dir is under the driver's builds dir";; *) echo "unexpected project dir $CI_PROJECT_DIR"; exit 1;; esac
    - cat README.md
    - mkdir -p out
    - echo "built by job $CI_JOB_ID" > out/result.txt
  artifacts:
    paths: [out/]
test:
  stage: test
  script:
    - echo "artifact says $(cat out/result.txt)"
fails:
  stage: test
  allow_failure: true
  script:
    - echo "about to fail"
    - exit 3
"#;

fn example(script: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/custom-executor")
        .join(script)
        .canonicalize()
        .expect("the example driver exists")
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_custom_executor_example_runs_a_pipeline_of_our_coordinator() {
    let c = TestCoordinator::spawn().await;
    let project = project_with_ci(&c, "custom-e2e", YAML).await;
    let (_, token) = c
        .create_runner(json!({"runner_type": "instance_type", "run_untagged": true}))
        .await;
    let env = Env::new();
    env.secrets_of(&c);
    env.secret(&token);
    let root = env.dir.path().join("driver-root");
    let root_arg = root.display().to_string();
    let (config_sh, prepare_sh, run_sh, cleanup_sh) = (
        example("config.sh"),
        example("prepare.sh"),
        example("run.sh"),
        example("cleanup.sh"),
    );
    // The README's command.
    env.run(
        &[
            "register",
            "--non-interactive",
            "--url",
            &c.url,
            "--token",
            &token,
            "--executor",
            "custom",
            "--custom-config-exec",
            &config_sh,
            "--custom-config-args",
            &root_arg,
            "--custom-prepare-exec",
            &prepare_sh,
            "--custom-run-exec",
            &run_sh,
            "--custom-cleanup-exec",
            &cleanup_sh,
        ],
        &[],
    )
    .await
    .ok();
    // The entry the README says it writes.
    let config = env.config_text();
    for needle in [
        "executor = \"custom\"".to_owned(),
        "[runners.custom]".to_owned(),
        format!("config_exec = \"{config_sh}\""),
        format!("config_args = [\"{root_arg}\"]"),
        format!("prepare_exec = \"{prepare_sh}\""),
        format!("run_exec = \"{run_sh}\""),
        format!("cleanup_exec = \"{cleanup_sh}\""),
    ] {
        assert!(
            config.contains(&needle),
            "config.toml lacks {needle}:\n{config}"
        );
    }

    let process = Runner::spawn(
        &[
            OsStr::new("run"),
            OsStr::new("--config"),
            env.config.as_os_str(),
            OsStr::new("--working-directory"),
            env.dir.path().as_os_str(),
            // cleanup_exec's stdout goes to the runner's log at debug level.
            OsStr::new("--debug"),
        ],
        env.dir.path(),
    );
    let pipeline = create_pipeline(&c, project.id, "main").await["id"]
        .as_i64()
        .unwrap();
    let status = wait_pipeline(&c, project.id, pipeline, Duration::from_secs(120)).await;
    let report = || async {
        format!(
            "{}\n--- runner:\n{}",
            pipeline_report(&c, project.id, pipeline).await,
            process.output()
        )
    };
    // `fails` may fail: the pipeline passes with a warning.
    assert_eq!(status, "success", "{}", report().await);

    let build = job_named(&c, project.id, pipeline, "build").await;
    let build_id = build["id"].as_i64().unwrap();
    let trace = job_trace(&c, project.id, build_id).await;
    for needle in [
        format!("Preparing the example environment for job {build_id}"),
        format!("driver root is {root_arg}"),
        "project dir is under the driver's builds dir".to_owned(),
        "hello".to_owned(), // README.md of the repository, cloned over HTTP
    ] {
        assert!(trace.contains(&needle), "build lacks {needle:?}:\n{trace}");
    }
    let test = job_named(&c, project.id, pipeline, "test").await;
    assert_eq!(test["status"], "success", "{}", report().await);
    let trace = job_trace(&c, project.id, test["id"].as_i64().unwrap()).await;
    assert!(
        trace.contains(&format!("artifact says built by job {build_id}")),
        "the artifact did not reach the next job:\n{trace}"
    );
    let fails = job_named(&c, project.id, pipeline, "fails").await;
    assert_eq!(fails["status"], "failed", "{}", report().await);
    assert_eq!(fails["failure_reason"], "script_failure", "{fails}");
    let trace = job_trace(&c, project.id, fails["id"].as_i64().unwrap()).await;
    assert!(
        trace.contains("about to fail") && trace.contains("exit code 3"),
        "the failing job's trace:\n{trace}"
    );
    // The builds went where config.sh said.
    assert!(
        root.join("builds").is_dir(),
        "no builds under {}",
        root.display()
    );
    let output = process.output();
    assert!(
        output.contains(&format!("Cleaned up after job {build_id}")),
        "cleanup.sh's output is not in the runner's log:\n{output}"
    );
    let status = process.stop(Duration::from_secs(60)).await;
    assert!(status.success(), "the runner exited with {status}");
    c.stop().await.unwrap();
}
