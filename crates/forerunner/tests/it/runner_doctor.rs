//! The seed scenario of issue 3: a config.toml with seven `my-runner`
//! entries (docker and shell, URLs with and without a trailing slash,
//! several tokens the server no longer knows). `doctor` names every dead and
//! duplicate entry with its fix, `verify --delete` leaves only the live ones
//! without touching anything else, and `doctor --fix` finishes the job.
//! Also: no command prints a full token, whatever happens.

use forerunner_runner::config::Config;
use forerunner_testkit::TestCoordinator;

use crate::runner_support::{
    dead_url, delete_runner, instance_runner, legacy_runner, verify_status, Env,
};

fn entry(n: usize, url: &str, token: &str, executor: &str) -> String {
    let section = if executor == "docker" {
        "  [runners.docker]\n    image = \"ruby:3.3\"\n    privileged = false\n    volumes = [\"/cache\"]\n    shm_size = 0\n"
    } else {
        "  [runners.custom_build_dir]\n  [runners.cache]\n    MaxUploadedArchiveSize = 0\n"
    };
    format!(
        "[[runners]]\n  # entry {n}, registered long ago\n  name = \"my-runner\"\n  url = \"{url}\"\n  id = {n}\n  token = \"{token}\"\n  token_obtained_at = 2024-01-0{n}T00:00:00Z\n  token_expires_at = 0001-01-01T00:00:00Z\n  executor = \"{executor}\"\n  some_future_option = {n}\n{section}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn seven_my_runners_seed_scenario() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
    let (_, live_legacy) = legacy_runner(&c).await;
    let (_, live_created) = instance_runner(&c).await;
    let (dead_legacy_id, dead_legacy) = legacy_runner(&c).await;
    let (dead_created_id, dead_created) = instance_runner(&c).await;
    delete_runner(&c, dead_legacy_id).await;
    delete_runner(&c, dead_created_id).await;
    let never_known = "glrt-t1_neverknownneverknown0";
    for t in [&live_legacy, &live_created, &dead_legacy, &dead_created] {
        env.secret(t);
    }
    let slash = format!("{}/", c.url);
    let entries = [
        entry(1, &c.url, &live_legacy, "docker"),
        entry(2, &slash, &dead_legacy, "shell"),
        entry(3, &slash, &live_legacy, "docker"),
        entry(4, &c.url, &dead_created, "shell"),
        entry(5, &c.url, &live_created, "docker"),
        entry(6, &slash, never_known, "shell"),
        entry(7, &c.url, &live_created, "shell"),
    ];
    let header = "# gitlab-runner wrote this file; then people edited it\nconcurrent = 2\ncheck_interval = 0\nconnection_max_age = \"15m0s\"\nshutdown_timeout = 0\nlisten_address = \"127.0.0.1:9252\"\n\n[session_server]\n  session_timeout = 1800\n\n";
    let footer = "# end of file\n";
    let original = format!("{header}{}{footer}", entries.concat());
    env.write_config(&original);
    let path = env.config.display().to_string();

    // doctor: one line per dead and duplicate entry, each with its fix.
    let run = env.run(&["doctor"], &[]).await;
    run.fails();
    let out = run.stdout.clone();
    let lines_for = |n: usize| -> Vec<&str> {
        out.lines()
            .filter(|l| l.starts_with(&format!("entry #{n} ")))
            .collect()
    };
    let verify_fix = format!("fix: forerunner verify --delete --config {path}");
    let doctor_fix = format!("fix: forerunner doctor --fix --config {path}");
    for dead in [2, 4, 6] {
        let lines = lines_for(dead);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("403 Forbidden") && l.contains(&verify_fix)),
            "entry #{dead} not reported as stale:\n{out}"
        );
    }
    for (dup, of) in [(3, 1), (7, 5)] {
        let lines = lines_for(dup);
        assert!(
            lines.iter().any(
                |l| l.contains(&format!("duplicate of entry #{of}")) && l.contains(&doctor_fix)
            ),
            "entry #{dup} not reported as a duplicate:\n{out}"
        );
    }
    assert!(
        lines_for(1).is_empty(),
        "entry #1 is fine:
{out}"
    );
    assert!(
        out.contains("name \"my-runner\" is also used by entry #1"),
        "{out}"
    );
    assert!(out.contains("is another spelling of"), "{out}");
    for line in out.lines() {
        assert!(
            line.contains("fix: ") || line.ends_with("run the commands above"),
            "{line}"
        );
    }
    assert_eq!(
        env.config_text(),
        original,
        "doctor without --fix changes nothing"
    );

    // verify --delete: only the live entries stay, every other byte is kept.
    env.run(&["verify", "--delete"], &[]).await.ok();
    let expected = format!(
        "{header}{}{}{}{}{footer}",
        entries[0], entries[2], entries[4], entries[6]
    );
    assert_eq!(env.config_text(), expected);

    // doctor --fix: duplicates go, names become unique, URLs get one spelling.
    env.run(&["doctor", "--fix"], &[]).await.says("fixed");
    let config = Config::load(&env.config).unwrap();
    assert_eq!(config.runners.len(), 2, "{}", env.config_text());
    assert_eq!(config.runners[0].token, live_legacy);
    assert_eq!(config.runners[1].token, live_created);
    assert_ne!(config.runners[0].name, config.runners[1].name);
    let text = env.config_text();
    assert!(text.starts_with(header) && text.ends_with(footer), "{text}");
    assert!(
        text.contains("  # entry 5, registered long ago\n"),
        "{text}"
    );
    env.run(&["doctor"], &[])
        .await
        .ok()
        .says("no problems found in 2 runner entries");
    assert_eq!(verify_status(&c, &live_created).await, 200);
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_reports_bad_tokens_expiry_and_unreachable_servers() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
    let (_, live) = instance_runner(&c).await;
    env.secret(&live);
    let down = dead_url().await;
    let soon = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let text = format!(
        "concurrent = 1\n\n[[runners]]\n  name = \"reg-token\"\n  url = \"{url}\"\n  token = \"{reg}\"\n  executor = \"shell\"\n\n[[runners]]\n  name = \"from-env\"\n  url = \"{url}\"\n  token = \"$FORERUNNER_TEST_UNSET_TOKEN\"\n  executor = \"shell\"\n\n[[runners]]\n  name = \"expiring\"\n  url = \"{url}\"\n  token = \"{live}\"\n  token_obtained_at = 2024-01-01T00:00:00Z\n  token_expires_at = {soon}\n  executor = \"shell\"\n\n[[runners]]\n  name = \"far-away\"\n  url = \"{down}\"\n  token = \"glrt-t1_farawayfarawayfaraway\"\n  executor = \"shell\"\n\n[[runners]]\n  name = \"api-suffix\"\n  url = \"{url}/api/v4\"\n  token = \"glrtr-apisuffixapisuffixapis\"\n  executor = \"shell\"\n",
        url = c.url,
        reg = c.registration_token,
    );
    env.write_config(&text);
    let run = env.run(&["doctor"], &[]).await;
    run.fails()
        .says("entry #1 \"reg-token\"")
        .says("registration token (GR1348941…), not a runner authentication token")
        .says("FORERUNNER_TEST_UNSET_TOKEN")
        .says("entry #3 \"expiring\"")
        .says(&format!(
            "forerunner reset-token --config {} --name \"expiring\"",
            env.config.display()
        ))
        .says("is unreachable")
        .says("ends in /api/v4");
    env.run(&["doctor", "--offline"], &[])
        .await
        .fails()
        .says("registration token");
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn no_command_prints_a_full_token() {
    // Env::run scans every command's output for every token the test knows
    // (the coordinator's, the runners', and all tokens in config.toml);
    // this test drives each command through its success and error paths.
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
    let (gone_id, gone) = instance_runner(&c).await;
    env.secret(&gone);
    env.run(
        &[
            "register",
            "-n",
            "-u",
            &c.url,
            "-r",
            &c.registration_token,
            "--executor",
            "shell",
            "--name",
            "a",
        ],
        &[],
    )
    .await
    .ok();
    env.run(
        &[
            "register",
            "-n",
            "-u",
            &c.url,
            "-t",
            &gone,
            "--executor",
            "shell",
            "--name",
            "b",
        ],
        &[],
    )
    .await
    .ok();
    delete_runner(&c, gone_id).await;
    let down = dead_url().await;
    let mut text = env.config_text();
    text.push_str(&format!(
        "\n[[runners]]\n  name = \"down\"\n  url = \"{down}\"\n  token = \"glrt-t1_downdowndowndowndowndo\"\n  executor = \"shell\"\n"
    ));
    env.write_config(&text);

    env.run(&["verify"], &[]).await.fails();
    env.run(&["doctor"], &[]).await.fails();
    env.run(&["reset-token", "--name", "b"], &[]).await.fails();
    env.run(&["unregister", "--name", "down"], &[])
        .await
        .fails();
    env.run(&["reset-token", "--name", "a"], &[]).await.ok();
    env.run(&["verify", "--delete"], &[]).await.ok();
    env.run(&["unregister", "--all-runners"], &[]).await.fails();
    // Registration errors.
    env.run(
        &[
            "register",
            "-n",
            "-u",
            &c.url,
            "-r",
            "GR1348941wrongwrongwrongwr",
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .fails();
    env.run(
        &[
            "register",
            "-n",
            "-u",
            &c.url,
            "-t",
            &gone,
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .fails();
    env.run(
        &[
            "register",
            "-n",
            "-u",
            &c.url,
            "-t",
            &gone,
            "--tag-list",
            "x",
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .fails();
    env.run(
        &[
            "register",
            "-n",
            "-u",
            &down,
            "-r",
            &c.registration_token,
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .fails();

    // `list` is the one documented exception: it prints tokens in full, as
    // the official runner does.
    let list = env.run(&["list"], &[]).await;
    let config = Config::load(&env.config).unwrap();
    assert!(!config.runners.is_empty());
    for r in &config.runners {
        assert!(list.stderr.contains(&format!("Token={}", r.token)));
    }
    c.stop().await.unwrap();
}
