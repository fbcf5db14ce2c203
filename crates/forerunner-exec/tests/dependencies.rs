//! Architecture invariant (ARCHITECTURE.md, dependency rules): exec drives
//! the coordinator through its API and its library, never through the HTTP
//! framework or the database directly.

use std::path::Path;

#[test]
fn exec_does_not_depend_on_the_server_framework_or_the_database() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let mut section = String::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        if !section.contains("dependencies") {
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or("");
        for forbidden in ["axum", "sqlx"] {
            assert_ne!(
                name, forbidden,
                "forerunner-exec must not depend on {forbidden} ({section})"
            );
        }
    }
}
