//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`),
//! as JSON when `FORERUNNER_LOG_FORMAT=json`. Secrets never reach a log
//! line; code logs tokens only in their short form.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; does nothing if one is already set (as
/// in tests, where several coordinators share a process).
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let json = std::env::var("FORERUNNER_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
