//! Integration tests of the runner library: config.toml fixtures from the
//! official documentation, lossless rewrites, crash-safe saves, the HTTP
//! client against a scripted server, and the crate's dependency rules.

mod atomic_write;
mod client;
mod config_fixtures;
mod dependencies;
mod job;
mod shells;
