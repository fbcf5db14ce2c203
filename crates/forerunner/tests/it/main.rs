//! End-to-end tests of the `forerunner` binary: the real coordinator on
//! 127.0.0.1:0 with a fresh data dir, driven by our runner and by
//! python-gitlab.
mod coordinator_api;
mod python_gitlab;
mod serve_cli;
