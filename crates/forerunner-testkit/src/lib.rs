//! Test helpers shared by the workspace's integration tests.
//!
//! - [`TestCoordinator`]: the real coordinator, in process, on
//!   `127.0.0.1:0` with a fresh SQLite data directory and known tokens.
//! - [`python_with_gitlab`]: a Python interpreter with python-gitlab
//!   installed (a venv at the workspace root, created on first use).
//! - [`fake::FakeCoordinator`]: a scripted, fault-injecting job API for
//!   runner tests (5xx, dropped connections, 416, long polling, 403).
//! - [`RunnerClient`]: the runner side of the job API (request, update,
//!   trace, artifacts) through `forerunner-protocol`'s types.
//! - [`GitRepo`]: a real git repository in a temporary directory, to use
//!   as a project's `import_url`.
//! - [`clean_command`]: a program (our binary, a script) started with a
//!   user's clean environment.
//!
//! Set `TEST_LOG=1` to see the coordinator's logs on stderr.

mod coordinator;
pub mod fake;
mod jobs;
mod process;
mod python;
mod repo;

pub use coordinator::{TestCoordinator, TestUser};
pub use jobs::{JobRequestOutcome, RunnerClient, TraceAnswer};
pub use process::clean_command;
pub use python::python_with_gitlab;
pub use repo::GitRepo;
