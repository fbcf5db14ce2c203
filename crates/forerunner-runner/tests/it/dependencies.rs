//! Architecture invariant: the runner talks to a coordinator only over HTTP.
//! It must not depend on the server framework, the database layer, the
//! coordinator or the pipeline crate.

#[test]
fn runner_does_not_depend_on_server_side_crates() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let doc: toml::Table = manifest.parse().unwrap();
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        let Some(deps) = doc.get(section).and_then(|d| d.as_table()) else {
            continue;
        };
        for forbidden in [
            "axum",
            "sqlx",
            "forerunner-pipeline",
            "forerunner-coordinator",
        ] {
            assert!(
                !deps.contains_key(forbidden),
                "forerunner-runner must not depend on {forbidden} ([{section}])"
            );
        }
    }
}
