//! GitLab::API::v4, the CPAN client (Debian's `libgitlab-api-v4-perl`,
//! installed by `.ci/run`), drives the coordinator unchanged: runner
//! management (pages, filters, update, delete), projects, pipelines and
//! jobs, while a runner client runs the build job between its two phases.
//!
//! Without the module the test says it is skipped, unless
//! `FORERUNNER_TEST_PERL=1` (set by `.ci/run` after installing it) makes its
//! absence a failure.

use std::path::Path;

use forerunner_testkit::{RunnerClient, TestCoordinator};
use reqwest::StatusCode;
use serde_json::json;

use crate::ci_support::project_with_ci;

const CI_YAML: &str = "\
build:
  stage: build
  script: [make]
deploy:
  stage: deploy
  script: [deploy]
  when: manual
";

/// Runs the flow script; its stdout, or a failure with everything it said.
async fn perl(c: &TestCoordinator, args: &[String], env: &[(&str, String)]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/perl/gitlab_api_v4_flow.pl");
    let out = tokio::process::Command::new("perl")
        .arg(&script)
        .args(args)
        .env("GITLAB_URL", &c.url)
        .env("GITLAB_PAT", &c.root_token)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .await
        .expect("failed to run perl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "GitLab::API::v4 {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// Whether `perl -MGitLab::API::v4` works.
fn perl_client_installed() -> bool {
    std::process::Command::new("perl")
        .args(["-MGitLab::API::v4", "-e", "1"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn perl_gitlab_api_v4_manages_runners_pipelines_and_jobs() {
    if !perl_client_installed() {
        let required = std::env::var_os("FORERUNNER_TEST_PERL").is_some();
        assert!(
            !required,
            "GitLab::API::v4 is missing: apt-get install libgitlab-api-v4-perl (bash .ci/run does)"
        );
        eprintln!(
            "skipped: GitLab::API::v4 is not installed (apt-get install libgitlab-api-v4-perl)"
        );
        return;
    }
    let c = TestCoordinator::spawn().await;
    let project = project_with_ci(&c, "perl-flow", CI_YAML).await;

    // 23 tagged instance runners (three pages of ten), the runner that
    // runs the build, and a project runner.
    let fleet = 23;
    for n in 0..fleet {
        c.create_runner(json!({
            "runner_type": "instance_type",
            "description": format!("fleet-{n:02}"),
            "tag_list": "perl,linux",
        }))
        .await;
    }
    let (runner_id, token) = c
        .create_runner(json!({"runner_type": "instance_type", "run_untagged": true}))
        .await;
    let runner = RunnerClient::new(&c.url, &token);
    let (project_runner_id, _) = c
        .create_runner(json!({
            "runner_type": "project_type",
            "project_id": project.id,
            "description": "the project's own",
        }))
        .await;

    let created = perl(&c, &["create".into(), project.id.to_string()], &[]).await;
    let field = |k: &str| -> i64 {
        created
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k}= in {created:?}"))
    };
    let (pipeline, build, deploy) = (field("pipeline"), field("build"), field("deploy"));

    let job = runner.request_now().await.unwrap().job();
    assert_eq!(job.id, build);
    runner
        .patch_trace(&job, 0, b"hello from the runner\n")
        .await
        .unwrap();
    assert_eq!(runner.finish(&job, true).await.unwrap(), StatusCode::OK);

    let out = perl(
        &c,
        &[
            "inspect".into(),
            project.id.to_string(),
            pipeline.to_string(),
            build.to_string(),
            deploy.to_string(),
            runner_id.to_string(),
            project_runner_id.to_string(),
        ],
        &[
            ("RUNNER_COUNT", (fleet + 2).to_string()),
            ("TAGGED_COUNT", fleet.to_string()),
        ],
    )
    .await;
    assert!(out.contains("perl GitLab::API::v4 flow OK"), "{out}");
    c.stop().await.unwrap();
}
