//! python-gitlab (from PyPI, in a venv) drives the coordinator: the runner
//! registration and management flow users write, unchanged.

use std::path::Path;

use forerunner_testkit::{python_with_gitlab, TestCoordinator};

#[tokio::test(flavor = "multi_thread")]
async fn python_gitlab_runner_flow() {
    let python = tokio::task::spawn_blocking(python_with_gitlab)
        .await
        .unwrap()
        .expect("failed to get a python with python-gitlab");
    let c = TestCoordinator::spawn().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/runners_flow.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .env("GITLAB_URL", &c.url)
        .env("GITLAB_PAT", &c.root_token)
        .env("REGISTRATION_TOKEN", &c.registration_token)
        .output()
        .await
        .expect("failed to run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python-gitlab flow failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("python-gitlab flow OK"), "{stdout}");
    c.stop().await.unwrap();
}
