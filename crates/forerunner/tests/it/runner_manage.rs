//! `list`, `verify`, `unregister` and `reset-token` against the real
//! coordinator, with fake servers only for the failures the coordinator
//! cannot produce on purpose (down, 5xx).

use forerunner_runner::config::Config;
use forerunner_testkit::TestCoordinator;

use crate::runner_support::{
    dead_url, delete_runner, instance_runner, legacy_runner, runner_details, verify_status, Env,
    FakeServer,
};

/// One `[[runners]]` block with a comment and an unknown key, as users have.
fn block(name: &str, url: &str, token: &str, executor: &str) -> String {
    format!(
        "# {name}: keep this comment\n[[runners]]\n  name = \"{name}\"\n  url = \"{url}\"\n  token = \"{token}\"\n  executor = \"{executor}\"\n  unknown_setting = \"kept\" # trailing comment\n  [runners.feature_flags]\n    FF_SOMETHING = true\n\n"
    )
}

const HEADER: &str = "# Managed by hand.\nconcurrent = 4\ncheck_interval = 0\nfuture_global_key = [1, 2]\n\n[session_server]\n  session_timeout = 1800\n\n";

#[tokio::test(flavor = "multi_thread")]
async fn list_prints_the_official_format() {
    let env = Env::new();
    env.write_config(&format!(
        "{HEADER}{}{}",
        block(
            "first",
            "https://gitlab.example.com/",
            "glrt-t1_listtokenlisttoken1",
            "shell"
        ),
        block(
            "a-much-longer-runner-name-for-padding",
            "https://gitlab.example.com",
            "t1_legacytoken00000000",
            "docker"
        ),
    ));
    let run = env.run(&["list"], &[]).await;
    run.ok();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines[0].starts_with("Runtime platform                                    arch="),
        "{}",
        run.stderr
    );
    for field in [" os=", " pid=", " revision=", " version="] {
        assert!(lines[0].contains(field), "{}", lines[0]);
    }
    let path = env.config.display().to_string();
    assert_eq!(
        lines[1],
        format!("Listing configured runners                          ConfigFile={path}")
    );
    assert_eq!(
        lines[2],
        "first                                               Executor=shell Token=glrt-t1_listtokenlisttoken1 URL=https://gitlab.example.com/"
    );
    assert_eq!(
        lines[3],
        "a-much-longer-runner-name-for-padding               Executor=docker Token=t1_legacytoken00000000 URL=https://gitlab.example.com"
    );
    assert_eq!(lines.len(), 4);
    assert!(run.stdout.is_empty());

    // A broken file is a warning with exit code 0, as in the official runner.
    env.write_config("concurrent = [");
    env.run(&["list"], &[])
        .await
        .ok()
        .says("WARNING: failed to parse");
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_delete_removes_exactly_the_runners_deleted_on_the_server() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
    let (_, alive_a) = legacy_runner(&c).await;
    let (gone_b_id, gone_b) = legacy_runner(&c).await;
    let (_, alive_c) = instance_runner(&c).await;
    let (gone_d_id, gone_d) = instance_runner(&c).await;
    delete_runner(&c, gone_b_id).await;
    delete_runner(&c, gone_d_id).await;
    let down = dead_url().await;
    let failing = FakeServer::start(500, r#"{"message":"500 Internal Server Error"}"#).await;

    let keep = [
        block("alive-a", &c.url, &alive_a, "shell"),
        block("down", &down, "glrt-t1_serverisdownserverisd", "shell"),
        block(
            "five-hundred",
            &failing.url,
            "glrt-t1_fivehundredfivehundr",
            "docker",
        ),
        block("alive-c", &format!("{}/", c.url), &alive_c, "docker"),
    ];
    let gone = [
        block("gone-b", &c.url, &gone_b, "shell"),
        block("gone-d", &c.url, &gone_d, "docker"),
    ];
    let original = format!(
        "{HEADER}{}{}{}{}{}{}# trailing comment of the file\n",
        keep[0], gone[0], keep[1], keep[2], gone[1], keep[3]
    );
    env.write_config(&original);

    // Without --delete: report, fail, change nothing.
    env.run(&["verify"], &[])
        .await
        .fails()
        .says("Verifying runner... is alive")
        .says("Verifying runner... is removed")
        .says("Verifying runner... is not valid")
        .says("server unreachable, entry kept")
        .says("forerunner verify --delete");
    assert_eq!(env.config_text(), original);
    // The 500 was retried as the official runner does: 5 attempts.
    assert_eq!(failing.requests().len(), 5, "{:?}", failing.requests());

    env.run(&["verify", "--delete"], &[])
        .await
        .ok()
        .says("Removed entry deleted on server")
        .says("Updated");
    let expected = format!(
        "{HEADER}{}{}{}{}# trailing comment of the file\n",
        keep[0], keep[1], keep[2], keep[3]
    );
    assert_eq!(env.config_text(), expected);
    let names: Vec<String> = Config::load(&env.config)
        .unwrap()
        .runners
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["alive-a", "down", "five-hundred", "alive-c"]);

    // --name narrows the check; a name that matches nothing is an error.
    env.run(&["verify", "--name", "alive-a"], &[])
        .await
        .ok()
        .says("alive: 1, deleted on server: 0, unreachable: 0");
    env.run(&["verify", "--name", "nope"], &[])
        .await
        .fails()
        .says("no runner matches");
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn unregister_calls_the_endpoint_of_the_token_kind() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
    let (glrt_id, glrt) = instance_runner(&c).await;
    env.secret(&glrt);
    // Register both kinds through the CLI (the glrt- one gets a runner manager).
    env.run(
        &[
            "register",
            "-n",
            "--url",
            &c.url,
            "--token",
            &glrt,
            "--name",
            "created",
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .ok();
    env.run(
        &[
            "register",
            "-n",
            "--url",
            &c.url,
            "-r",
            &c.registration_token,
            "--name",
            "legacy",
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .ok();
    let legacy = Config::load(&env.config).unwrap().runners[1].clone();

    // glrt-: only this machine's runner manager goes; the runner stays.
    env.run(&["unregister", "--name", "created"], &[])
        .await
        .ok()
        .says("Unregistering runner manager from GitLab succeeded");
    assert!(runner_details(&c, glrt_id).await.is_some());
    assert_eq!(verify_status(&c, &glrt).await, 200);
    // Legacy: the runner itself is deleted.
    env.run(&["unregister", "--token", &legacy.token], &[])
        .await
        .ok()
        .says("Unregistering runner from GitLab succeeded");
    assert!(runner_details(&c, legacy.id).await.is_none());
    assert_eq!(verify_status(&c, &legacy.token).await, 403);
    assert!(Config::load(&env.config).unwrap().runners.is_empty());
    c.stop().await.unwrap();

    // The endpoints, as seen by a server.
    let ok = FakeServer::start(204, "").await;
    env.write_config(&format!(
        "{HEADER}{}{}",
        block("created", &ok.url, "glrt-t1_createdcreatedcreated", "shell"),
        block("legacy", &ok.url, "glrtr-legacylegacylegacyle", "shell"),
    ));
    env.run(&["unregister", "--all-runners"], &[]).await.ok();
    assert_eq!(
        ok.requests(),
        ["DELETE /api/v4/runners/managers", "DELETE /api/v4/runners"]
    );
    assert!(Config::load(&env.config).unwrap().runners.is_empty());
    assert!(env.config_text().starts_with(HEADER));

    // 5xx and network errors keep the entry; 403 (already gone) removes it.
    let failing = FakeServer::start(503, r#"{"message":"503 Service Unavailable"}"#).await;
    let forbidden = FakeServer::start(403, r#"{"message":"403 Forbidden"}"#).await;
    let down = dead_url().await;
    env.write_config(&format!(
        "{HEADER}{}{}{}",
        block(
            "failing",
            &failing.url,
            "glrtr-failingfailingfailing",
            "shell"
        ),
        block(
            "forbidden",
            &forbidden.url,
            "glrtr-forbiddenforbiddenfo",
            "shell"
        ),
        block("down", &down, "glrtr-downdowndowndowndownd", "shell"),
    ));
    env.run(&["unregister", "--all-runners"], &[])
        .await
        .fails()
        .says("Failed to unregister runners")
        .says("forbidden: the server no longer knows this token");
    let names: Vec<String> = Config::load(&env.config)
        .unwrap()
        .runners
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["failing", "down"]);
    assert_eq!(failing.requests().len(), 5, "503 is retried");
    env.run(&["unregister"], &[])
        .await
        .fails()
        .says("at least one of --name or --token");
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_token_writes_a_working_token() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
    let (glrt_id, glrt) = instance_runner(&c).await;
    env.secret(&glrt);
    env.write_config(&format!(
        "{HEADER}{}{}",
        block("created", &c.url, &glrt, "shell"),
        block("copy-of-created", &format!("{}/", c.url), &glrt, "shell"),
    ));
    env.run(&["reset-token", "--name", "created"], &[])
        .await
        .ok()
        .says("Resetting runner authentication token... succeeded");
    let config = Config::load(&env.config).unwrap();
    let new = config.runners[0].token.clone();
    env.secret(&new);
    assert_ne!(new, glrt);
    assert!(new.starts_with("glrt-"), "{new}");
    assert_eq!(
        config.runners[1].token, new,
        "copies with the same token follow"
    );
    assert!(config.runners[0].token_obtained_at.is_some());
    assert_eq!(verify_status(&c, &new).await, 200);
    assert_eq!(verify_status(&c, &glrt).await, 403);
    let text = env.config_text();
    assert!(text.contains("  unknown_setting = \"kept\" # trailing comment\n"));
    assert!(text.starts_with(HEADER));

    // The old token no longer works: reset-token says so and fails.
    env.write_config(&format!(
        "{HEADER}{}",
        block("stale", &c.url, &glrt, "shell")
    ));
    env.run(&["reset-token", "--all-runners"], &[])
        .await
        .fails()
        .says("check used token")
        .says("forerunner verify --delete");
    // A personal access token revives it: the runner still exists.
    env.run(
        &[
            "reset-token",
            "--name",
            "stale",
            "--pat",
            &c.root_token,
            "--id",
            &glrt_id.to_string(),
        ],
        &[],
    )
    .await
    .ok()
    .says("succeeded");
    let revived = Config::load(&env.config).unwrap().runners[0].token.clone();
    env.secret(&revived);
    assert_eq!(verify_status(&c, &revived).await, 200);
    // A PAT the server does not accept fails without printing it.
    env.secret("glpat-notavalidtokennotvalid");
    env.run(
        &[
            "reset-token",
            "--name",
            "stale",
            "--pat",
            "glpat-notavalidtokennotvalid",
            "--id",
            &glrt_id.to_string(),
        ],
        &[],
    )
    .await
    .fails();
    c.stop().await.unwrap();
}
