//! The official documentation's config.toml examples load into the typed
//! view and survive rewrites with comments and unknown keys intact.

use std::path::{Path, PathBuf};

use forerunner_runner::config::document::{datetime_value, NewRunner};
use forerunner_runner::config::{Config, ConfigDocument};
use toml_edit::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/config")
        .join(name)
}

const FIXTURES: &[&str] = &[
    "docker_s3.toml",
    "machine_gcs.toml",
    "kubernetes_azure_registered.toml",
];

/// Copies a fixture into a temp dir, as the file a command would edit.
fn copy(name: &str) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    std::fs::write(&path, &text).unwrap();
    (dir, path, text)
}

#[test]
fn docker_s3_fixture_loads() {
    let c = Config::load(&fixture("docker_s3.toml")).unwrap();
    assert_eq!(c.concurrent(), 4);
    assert_eq!(c.log_level.as_deref(), Some("warning"));
    let s = c.session_server.as_ref().unwrap();
    assert_eq!(s.listen_address.as_deref(), Some("[::]:8093"));
    let r = &c.runners[0];
    assert_eq!(r.name, "ruby-2.7-docker");
    assert_eq!(r.executor, "docker");
    assert_eq!(
        r.environment_pairs()[1],
        ("LC_ALL".into(), "en_US.UTF-8".into())
    );
    assert_eq!(r.clone_url.as_deref(), Some("http://gitlab.example.local"));
    let d = r.docker.as_ref().unwrap();
    assert_eq!(d.image.as_deref(), Some("ruby:2.7"));
    assert_eq!(d.volumes, ["/data", "/home/project/cache"]);
    assert_eq!(d.allowed_services.len(), 3);
    assert_eq!(d.wait_for_services_timeout, Some(30));
    assert_eq!(d.cap_add, ["NET_ADMIN"]);
    assert_eq!(d.cap_drop, ["DAC_OVERRIDE"]);
    let names: Vec<&str> = d.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["registry.example.com/svc1", "redis:2.8", "postgres:9"]
    );
    let svc1 = &d.services[0];
    assert_eq!(svc1.alias.as_deref(), Some("svc1"));
    assert_eq!(svc1.entrypoint, ["entrypoint.sh"]);
    assert_eq!(svc1.command, ["executable", "param1", "param2"]);
    assert_eq!(svc1.environment, ["ENV1=value1", "ENV2=value2"]);
    let cache = r.cache.as_ref().unwrap();
    assert_eq!(cache.cache_type.as_deref(), Some("s3"));
    let s3 = cache.s3.as_ref().unwrap();
    assert_eq!(s3.bucket_location.as_deref(), Some("eu-west-1"));
    assert_eq!(s3.access_key.as_deref(), Some("AWS_S3_ACCESS_KEY"));
}

#[test]
fn machine_gcs_fixture_loads() {
    let c = Config::load(&fixture("machine_gcs.toml")).unwrap();
    assert_eq!(c.runners.len(), 2);
    let r = &c.runners[0];
    assert_eq!(r.executor, "docker+machine");
    // `${CI_RUNNER_VERSION}` outside url/token is left for the executor.
    assert!(r
        .docker
        .as_ref()
        .unwrap()
        .helper_image
        .as_deref()
        .unwrap()
        .contains("${CI_RUNNER_VERSION}"));
    let gcs = r.cache.as_ref().unwrap().gcs.as_ref().unwrap();
    assert_eq!(gcs.bucket_name.as_deref(), Some("runners-cache"));
    assert!(gcs.private_key.as_deref().unwrap().contains('\n'));
    assert_eq!(c.runners[1].executor, "ssh");
}

#[test]
fn registered_kubernetes_custom_fixture_loads() {
    let c = Config::load(&fixture("kubernetes_azure_registered.toml")).unwrap();
    let k = &c.runners[0];
    assert!(k.token_obtained_at.is_none() && k.token_expires_at.is_none());
    assert_eq!(k.unhealthy_requests_limit(), 5);
    assert_eq!(k.unhealthy_interval(), std::time::Duration::from_secs(3600));
    assert_eq!(k.feature_flag("FF_USE_DIRECT_DOWNLOAD"), Some(true));
    assert_eq!(
        k.cache
            .as_ref()
            .unwrap()
            .azure
            .as_ref()
            .unwrap()
            .container_name
            .as_deref(),
        Some("runners-cache")
    );
    assert_eq!(c.connection_max_age.as_deref(), Some("15m0s"));
    let custom = &c.runners[1];
    assert_eq!(custom.id, 42);
    assert!(custom.token_expires_at.is_some());
    let cc = custom.custom.as_ref().unwrap();
    assert_eq!(cc.run_exec.as_deref(), Some("/path/to/binary"));
    assert_eq!(cc.run_args, ["SomeArg"]);
    assert_eq!(cc.graceful_kill_timeout, Some(200));
}

#[test]
fn every_fixture_survives_a_rewrite_unchanged() {
    for name in FIXTURES {
        let (_dir, path, text) = copy(name);
        let mut doc = ConfigDocument::load(&path).unwrap();
        doc.save().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{name}");
    }
}

#[test]
fn every_fixture_keeps_comments_and_unknown_keys_when_edited() {
    for name in FIXTURES {
        let (_dir, path, text) = copy(name);
        let before = Config::load(&path).unwrap();
        let old_token = before.runners[0].token.clone();

        // Change one token, append an entry, save.
        let mut doc = ConfigDocument::load(&path).unwrap();
        doc.set_runner_value(0, None, "token", Value::from("glrt-t1_newtokennewtokennew"))
            .unwrap();
        doc.append_runner(&NewRunner {
            keys: vec![
                ("name".into(), Value::from("added")),
                ("url".into(), Value::from("https://gitlab.example.com")),
                ("token".into(), Value::from("glrt-t1_addedaddedaddedad")),
                ("token_expires_at".into(), datetime_value(None)),
                ("executor".into(), Value::from("shell")),
            ],
            sections: vec![],
        })
        .unwrap();
        doc.save().unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        let edited = text.replacen(
            &format!("token = \"{old_token}\""),
            "token = \"glrt-t1_newtokennewtokennew\"",
            1,
        );
        assert!(
            after.starts_with(&edited),
            "{name}: prefix changed:\n{after}"
        );
        let typed = Config::load(&path).unwrap();
        assert_eq!(typed.runners.len(), before.runners.len() + 1, "{name}");
        assert_eq!(typed.runners.last().unwrap().name, "added");

        // Removing the added entry restores the edited text exactly.
        let mut doc = ConfigDocument::load(&path).unwrap();
        let n = doc.runner_count();
        doc.remove_runners(&[n - 1]);
        doc.save().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), edited, "{name}");
    }
}

#[test]
fn removing_the_first_entry_leaves_the_rest_byte_identical() {
    let (_dir, path, text) = copy("machine_gcs.toml");
    let mut doc = ConfigDocument::load(&path).unwrap();
    doc.remove_runners(&[0]);
    doc.save().unwrap();
    let first = text.find("\n\n[[runners]]").unwrap() + 1;
    let second = text[first + 1..].find("\n\n[[runners]]").unwrap() + first + 2;
    let expected = format!("{}{}", &text[..first], &text[second..]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    let c = Config::load(&path).unwrap();
    assert_eq!(c.runners.len(), 1);
    assert_eq!(c.runners[0].name, "ssh");
}

#[test]
fn parse_errors_name_the_file_line_and_key() {
    let (_dir, path, text) = copy("docker_s3.toml");
    let broken = text.replace("privileged = false", "privileged = \"no\"");
    std::fs::write(&path, &broken).unwrap();
    let line = broken
        .lines()
        .position(|l| l.contains("privileged = \"no\""))
        .unwrap()
        + 1;
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains(&format!("line {line}")), "{err}");
    assert!(err.contains("runners[1].docker.privileged"), "{err}");
    let err = ConfigDocument::load(&path).unwrap_err().to_string();
    assert!(err.contains(&format!("line {line}")), "{err}");
}
