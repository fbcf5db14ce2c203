//! The Forerunner coordinator: GitLab's REST API v4 for runners and runner management.
pub mod cli;
