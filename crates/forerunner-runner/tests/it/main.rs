//! Integration tests of the runner library: config.toml fixtures from the
//! official documentation, lossless rewrites, crash-safe saves, the HTTP
//! client against a scripted server, the crate's dependency rules, the job
//! driver, and the executor conformance suite (shell, docker, custom).

mod atomic_write;
mod client;
mod config_fixtures;
mod conformance;
mod dependencies;
mod job;
mod shells;
mod support;
