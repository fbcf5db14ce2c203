//! Integration tests of the runner library: config.toml fixtures from the
//! official documentation, lossless rewrites, and crash-safe saves.

mod atomic_write;
mod client;
mod config_fixtures;
