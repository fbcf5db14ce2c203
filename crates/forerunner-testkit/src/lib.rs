//! Test helpers shared by the workspace's integration tests.
//!
//! - [`TestCoordinator`]: the real coordinator, in process, on
//!   `127.0.0.1:0` with a fresh SQLite data directory and known tokens.
//! - [`python_with_gitlab`]: a Python interpreter with python-gitlab
//!   installed (a venv at the workspace root, created on first use).
//! - [`fake::FakeCoordinator`]: a scripted, fault-injecting job API for
//!   runner tests (5xx, dropped connections, 416, long polling, 403).
//!
//! Set `TEST_LOG=1` to see the coordinator's logs on stderr.

mod coordinator;
pub mod fake;
mod python;

pub use coordinator::{TestCoordinator, TestUser};
pub use python::python_with_gitlab;
