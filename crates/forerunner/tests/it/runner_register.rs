//! `forerunner register` against the real coordinator: the legacy flow, the
//! `glrt-` flow, refused server-side flags, re-registration without
//! duplicates, and errors that name the cause and the fix.

use forerunner_runner::config::Config;
use forerunner_testkit::TestCoordinator;
use serde_json::json;

use crate::runner_support::{create_user_runner, runner_details, Env, FakeServer};

#[tokio::test(flavor = "multi_thread")]
async fn legacy_registration_sets_server_side_attributes() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
    env.run(
        &[
            "register",
            "--non-interactive",
            "--url",
            &c.url,
            "--registration-token",
            &c.registration_token,
            "--name",
            "legacy-runner",
            "--executor",
            "docker",
            "--docker-image",
            "alpine:3.20",
            "--docker-privileged",
            "--docker-volumes",
            "/var/run/docker.sock:/var/run/docker.sock",
            "--docker-pull-policy",
            "if-not-present",
            "--docker-cap-add",
            "NET_ADMIN",
            "--docker-cap-add",
            "SYS_TIME",
            "--docker-cap-drop",
            "DAC_OVERRIDE",
            "--tag-list",
            "linux, docker",
            "--run-untagged",
            "--locked=false",
            "--access-level",
            "ref_protected",
            "--maximum-timeout",
            "3600",
            "--maintenance-note",
            "rack 4",
        ],
        &[],
    )
    .await
    .ok()
    .says("Registering runner... succeeded")
    .says("Runner registered successfully");

    let config = Config::load(&env.config).unwrap();
    assert_eq!(config.runners.len(), 1);
    let r = &config.runners[0];
    assert_eq!(r.name, "legacy-runner");
    assert_eq!(r.url, c.url);
    assert_ne!(r.token, c.registration_token);
    assert!(r.token_obtained_at.is_some());
    assert_eq!(r.executor, "docker");
    let d = r.docker.as_ref().unwrap();
    assert_eq!(d.image.as_deref(), Some("alpine:3.20"));
    assert!(d.privileged);
    assert_eq!(
        d.volumes,
        ["/var/run/docker.sock:/var/run/docker.sock", "/cache"]
    );
    assert_eq!(d.pull_policy, ["if-not-present"]);
    assert_eq!(d.cap_add, ["NET_ADMIN", "SYS_TIME"]);
    assert_eq!(d.cap_drop, ["DAC_OVERRIDE"]);
    let text = env.config_text();
    assert!(text.starts_with("concurrent = 1\n"), "{text}");
    assert!(text.contains("[session_server]\n  session_timeout = 1800\n"));

    // The management API shows what the flags asked for.
    let details = runner_details(&c, r.id).await.expect("runner exists");
    assert_eq!(details["description"], "legacy-runner");
    let mut tags: Vec<String> = details["tag_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    tags.sort();
    assert_eq!(tags, ["docker", "linux"]);
    assert_eq!(details["run_untagged"], true);
    assert_eq!(details["locked"], false);
    assert_eq!(details["access_level"], "ref_protected");
    assert_eq!(details["maximum_timeout"], 3600);

    // The system id sits next to config.toml, in the official format.
    let id = std::fs::read_to_string(env.dir.path().join(".runner_system_id")).unwrap();
    assert!(forerunner_runner::system_id::is_valid(id.trim()), "{id}");
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_registration_defaults_to_locked_and_untagged_without_tags() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
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
        ],
        &[("RUNNER_NAME", "from-env")],
    )
    .await
    .ok();
    let r = &Config::load(&env.config).unwrap().runners[0];
    assert_eq!(r.name, "from-env");
    let details = runner_details(&c, r.id).await.unwrap();
    assert_eq!(details["run_untagged"], true);
    assert_eq!(details["locked"], true);
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_token_registration_after_user_runners() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
    let (id, token) = create_user_runner(
        &c,
        json!({"runner_type": "instance_type", "tag_list": ["gpu"], "description": "created in the API"}),
    )
    .await;
    env.secret(&token);
    assert!(token.starts_with("glrt-"));
    env.run(
        &[
            "register",
            "-n",
            "--url",
            &c.url,
            "--token",
            &token,
            "--name",
            "gpu-box",
            "--executor",
            "shell",
            "--shell",
            "bash",
            "--limit",
            "2",
            "--env",
            "A=1",
            "--tls-ca-file",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../forerunner-runner/tests/data/tls/ca.pem"
            ),
        ],
        &[],
    )
    .await
    .ok()
    .says("Verifying runner... is valid");
    let config = Config::load(&env.config).unwrap();
    let r = &config.runners[0];
    assert_eq!(r.id, id);
    assert_eq!(r.token, token, "the glrt- token is stored as given");
    assert_eq!(r.name, "gpu-box");
    assert_eq!(r.shell.as_deref(), Some("bash"));
    assert_eq!(r.limit, 2);
    assert_eq!(r.environment, ["A=1"]);
    assert!(r
        .tls_ca_file
        .as_deref()
        .is_some_and(|f| f.ends_with("tests/data/tls/ca.pem")));
    // Registration with a glrt- token changes nothing on the server side.
    let details = runner_details(&c, id).await.unwrap();
    assert_eq!(details["tag_list"], json!(["gpu"]));
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_flags_with_an_authentication_token_are_refused() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
    let (_, token) = create_user_runner(&c, json!({"runner_type": "instance_type"})).await;
    env.secret(&token);
    let base = [
        "register",
        "-n",
        "--url",
        &c.url,
        "--token",
        &token,
        "--executor",
        "shell",
    ];
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["--tag-list", "a,b"], &[], "--tag-list"),
        (&["--locked=false"], &[], "--locked"),
        (&["--run-untagged"], &[], "--run-untagged"),
        (&["--access-level", "ref_protected"], &[], "--access-level"),
        (&["--maximum-timeout", "3600"], &[], "--maximum-timeout"),
        (&["--paused"], &[], "--paused"),
        (&["--maintenance-note", "x"], &[], "--maintenance-note"),
        (&[], &[("REGISTER_LOCKED", "false")], "--locked"),
        (&[], &[("RUNNER_TAG_LIST", "a")], "--tag-list"),
    ];
    for (extra, vars, flag) in cases {
        let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
        env.run(&args, vars)
            .await
            .fails()
            .says(flag)
            .says("set where the runner was created")
            .says("POST /api/v4/user/runners");
        assert!(!env.config.exists(), "nothing may be written for {flag}");
    }
    // The same token in the legacy flag: the flags are ignored with the
    // official warning, and the runner is registered.
    env.run(
        &[
            "register",
            "-n",
            "--url",
            &c.url,
            "-r",
            &token,
            "--tag-list",
            "ignored",
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .ok()
    .says("legacy-compatible registration process")
    .says("--tag-list");
    assert_eq!(Config::load(&env.config).unwrap().runners[0].token, token);
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn registering_the_same_token_again_updates_the_entry() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
    let (_, token) = create_user_runner(&c, json!({"runner_type": "instance_type"})).await;
    env.secret(&token);
    env.write_config("# my runners\nconcurrent = 3\nmystery_key = true\n");
    for (name, image) in [("first", "alpine"), ("second", "debian")] {
        env.run(
            &[
                "register",
                "-n",
                "--url",
                &c.url,
                "--token",
                &token,
                "--name",
                name,
                "--executor",
                "docker",
                "--docker-image",
                image,
            ],
            &[],
        )
        .await
        .ok();
    }
    let config = Config::load(&env.config).unwrap();
    assert_eq!(config.runners.len(), 1, "{}", env.config_text());
    assert_eq!(config.runners[0].name, "second");
    assert_eq!(
        config.runners[0].docker.as_ref().unwrap().image.as_deref(),
        Some("debian")
    );
    let text = env.config_text();
    assert!(
        text.starts_with("# my runners\nconcurrent = 3\nmystery_key = true\n"),
        "{text}"
    );

    // A file that already holds duplicates is repaired by registering again.
    let dup = text.clone() + &text[text.find("[[runners]]").unwrap()..];
    env.write_config(&dup);
    assert_eq!(Config::load(&env.config).unwrap().runners.len(), 2);
    env.run(
        &[
            "register",
            "-n",
            "--url",
            &c.url,
            "--token",
            &token,
            "--name",
            "third",
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .ok()
    .says("instead of adding a duplicate")
    .says("removed 1 more copies");
    let config = Config::load(&env.config).unwrap();
    assert_eq!(config.runners.len(), 1);
    assert_eq!(config.runners[0].executor, "shell");
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_tokens_are_explained() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);

    // A registration token the server does not know: 403 with the three kinds explained.
    let bogus = "GR1348941notarealtokenatall";
    env.secret(bogus);
    env.run(
        &[
            "register",
            "-n",
            "--url",
            &c.url,
            "-r",
            bogus,
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .fails()
    .says("forbidden")
    .says("registration token")
    .says("personal access token")
    .says("--token");

    // A personal access token is refused before any request.
    env.run(
        &[
            "register",
            "-n",
            "--url",
            &c.url,
            "-r",
            &c.root_token,
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .fails()
    .says("personal access token")
    .says("/api/v4/user/runners");

    // A registration token passed to --token.
    env.run(
        &[
            "register",
            "-n",
            "--url",
            &c.url,
            "-t",
            &c.registration_token,
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .fails()
    .says("--registration-token");

    // A deleted glrt- runner.
    let (id, token) = create_user_runner(&c, json!({"runner_type": "instance_type"})).await;
    env.secret(&token);
    c.root_request(reqwest::Method::DELETE, &format!("/runners/{id}"), None)
        .await
        .unwrap();
    env.run(
        &[
            "register",
            "-n",
            "--url",
            &c.url,
            "-t",
            &token,
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .fails()
    .says("does not know the runner authentication token");

    // Missing values in non-interactive mode name the flag and variable.
    env.run(&["register", "-n", "-r", &c.registration_token], &[])
        .await
        .fails()
        .says("CI_SERVER_URL");
    assert!(!env.config.exists());
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_registration_tokens_say_so() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
    c.root_request(
        reqwest::Method::PUT,
        "/application/settings",
        Some(json!({"allow_runner_registration_token": false})),
    )
    .await
    .unwrap();
    env.run(
        &[
            "register",
            "-n",
            "--url",
            &c.url,
            "-r",
            &c.registration_token,
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .fails()
    .says("registration tokens disabled")
    .says("--token glrt-");
    c.stop().await.unwrap();

    // The same from a server that only says 410.
    let fake = FakeServer::start(
        410,
        r#"{"message":"410 Gone - runner registration disallowed"}"#,
    )
    .await;
    env.run(
        &[
            "register",
            "-n",
            "--url",
            &fake.url,
            "-r",
            "GR1348941whatever0000000",
            "--executor",
            "shell",
        ],
        &[],
    )
    .await
    .fails()
    .says("registration tokens disabled");
    assert_eq!(fake.requests(), ["POST /api/v4/runners"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn interactive_registration_asks_the_official_questions() {
    use std::process::Stdio;
    use tokio::io::AsyncWriteExt;

    if which("script").is_none() {
        eprintln!("skipped: `script` (util-linux) is needed for a pseudo-terminal");
        return;
    }
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    // `script` gives forerunner a terminal on stdin, so it prompts.
    let command = format!(
        "{} register --config {}",
        env!("CARGO_BIN_EXE_forerunner"),
        env.config.display()
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", env.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let answers = format!(
        "{}\n{}\ninteractive-runner\ntag1,tag2\nsome note\ndocker\nalpine:3.20\n",
        c.url, c.registration_token
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(answers.as_bytes()).await.unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("interactive register hung")
        .unwrap();
    drop(stdin);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    for question in [
        "Enter the GitLab instance URL (for example, https://gitlab.com/):",
        "Enter the registration token:",
        "Enter a description for the runner:",
        "Enter tags for the runner (comma-separated):",
        "Enter optional maintenance note for the runner:",
        "Enter an executor: custom, shell, docker:",
        "Enter the default Docker image (for example, ruby:3.3):",
    ] {
        assert!(text.contains(question), "missing {question:?} in:\n{text}");
    }
    // The terminal echoes what was typed; nothing else may show the token.
    let without_echo: String = text
        .lines()
        .filter(|l| !l.contains(&c.registration_token) || l.starts_with("Registering"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!without_echo.contains(&c.registration_token), "{text}");
    let config = Config::load(&env.config).unwrap();
    let r = &config.runners[0];
    assert_eq!(r.name, "interactive-runner");
    assert_eq!(r.executor, "docker");
    assert_eq!(
        r.docker.as_ref().unwrap().image.as_deref(),
        Some("alpine:3.20")
    );
    let details = runner_details(&c, r.id).await.unwrap();
    assert_eq!(details["tag_list"].as_array().unwrap().len(), 2);
    assert_eq!(details["maintenance_note"], "some note");
    c.stop().await.unwrap();
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legacy_runner_token_given_to_token_is_only_verified() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
    let (id, token) = crate::runner_support::legacy_runner(&c).await;
    env.secret(&token);
    env.run(
        &[
            "register",
            "-n",
            "-u",
            &c.url,
            "-t",
            &token,
            "--executor",
            "shell",
            "--name",
            "adopted",
        ],
        &[],
    )
    .await
    .ok()
    .says("If you want to register use the '-r' instead of '-t'.")
    .says("Verifying runner... is alive");
    let r = &Config::load(&env.config).unwrap().runners[0];
    assert_eq!(
        (r.id, r.token.as_str(), r.name.as_str()),
        (id, token.as_str(), "adopted")
    );
    // No second runner was created on the server.
    let all = c
        .root_request(reqwest::Method::GET, "/runners/all", None)
        .await
        .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1);
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_at_a_prompt_after_registration_unregisters_the_runner() {
    use std::process::Stdio;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    if which("script").is_none() {
        eprintln!("skipped: `script` (util-linux) is needed for a pseudo-terminal");
        return;
    }
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    let command = format!(
        "{} register --config {}",
        env!("CARGO_BIN_EXE_forerunner"),
        env.config.display()
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", env.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let answers = format!("{}\n{}\nsoon-gone\n\n\n", c.url, c.registration_token);
    stdin.write_all(answers.as_bytes()).await.unwrap();
    // Wait for the executor question: the runner exists on the server now.
    let mut seen = String::new();
    let wait = async {
        let mut buf = [0u8; 1024];
        while !seen.contains("Enter an executor") {
            let n = stdout.read(&mut buf).await.unwrap();
            assert!(n > 0, "forerunner ended early:\n{seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), wait)
        .await
        .expect("no executor prompt");
    let all = c
        .root_request(reqwest::Method::GET, "/runners/all", None)
        .await
        .unwrap();
    assert_eq!(
        all.as_array().unwrap().len(),
        1,
        "registered before the prompt"
    );
    // Ctrl-C on the terminal.
    stdin.write_all(b"\x03").await.unwrap();
    let mut rest = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stdout.read_to_string(&mut rest),
    )
    .await
    .expect("forerunner did not stop on Ctrl-C")
    .unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "{seen}{rest}");
    assert!(
        rest.contains("unregistered from GitLab again"),
        "{seen}{rest}"
    );
    let all = c
        .root_request(reqwest::Method::GET, "/runners/all", None)
        .await
        .unwrap();
    assert_eq!(all, serde_json::json!([]), "the runner must be gone");
    assert!(!env.config.exists());
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn template_config_completes_the_new_entry() {
    let c = TestCoordinator::spawn().await;
    let env = Env::new();
    env.secrets_of(&c);
    let template = env.dir.path().join("template.toml");
    std::fs::write(
        &template,
        "# shared settings\n[[runners]]\n  token = \"template-token-is-ignored\"\n  output_limit = 16384\n  [runners.docker]\n    image = \"ruby:3.3\"\n    privileged = true\n    volumes = [\"/certs/client\", \"/cache\"]\n    [[runners.docker.services]]\n      name = \"docker:dind\"\n  [runners.cache]\n    Type = \"s3\"\n    Shared = true\n",
    )
    .unwrap();
    let tpl = template.display().to_string();
    env.run(
        &[
            "register",
            "-n",
            "-u",
            &c.url,
            "-r",
            &c.registration_token,
            "--executor",
            "docker",
            "--template-config",
            &tpl,
            "--name",
            "templated",
        ],
        &[],
    )
    .await
    .ok();
    let config = Config::load(&env.config).unwrap();
    let r = &config.runners[0];
    assert_eq!(r.name, "templated");
    assert_ne!(r.token, "template-token-is-ignored");
    assert_eq!(r.output_limit, Some(16384));
    let d = r.docker.as_ref().unwrap();
    assert_eq!(d.image.as_deref(), Some("ruby:3.3"));
    assert!(d.privileged, "the template's privileged = true applies");
    assert_eq!(d.volumes, ["/certs/client", "/cache"]);
    assert!(env.config_text().contains("[[runners.docker.services]]"));
    assert!(r.cache.as_ref().unwrap().shared);

    // A template without exactly one [[runners]] fails before registering.
    std::fs::write(&template, "concurrent = 2\n").unwrap();
    let before = c
        .root_request(reqwest::Method::GET, "/runners/all", None)
        .await
        .unwrap();
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
            "--template-config",
            &tpl,
        ],
        &[],
    )
    .await
    .fails()
    .says("exactly one [[runners]]");
    let after = c
        .root_request(reqwest::Method::GET, "/runners/all", None)
        .await
        .unwrap();
    assert_eq!(before, after);
    c.stop().await.unwrap();
}
