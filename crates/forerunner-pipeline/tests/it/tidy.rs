//! Architecture invariant: the pipeline crate is pure logic. Its manifest
//! may only name the dependencies listed here (no tokio, HTTP or database
//! crates), and its sources do no I/O.

use std::fs;
use std::path::Path;

const ALLOWED: &[&str] = &["regex", "yaml-rust2"];

#[test]
fn dependencies_are_pure() {
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let mut section = "";
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section != "[dependencies]" || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or("");
        assert!(
            ALLOWED.contains(&name),
            "dependency `{name}` is not allowed in forerunner-pipeline"
        );
    }
}

#[test]
fn sources_do_no_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        for banned in [
            "std::fs",
            "std::net",
            "std::process",
            "std::env",
            "async fn",
            ".await",
        ] {
            assert!(!text.contains(banned), "{} uses `{banned}`", path.display());
        }
    }
}
