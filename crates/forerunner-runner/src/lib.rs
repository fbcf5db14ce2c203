//! The Forerunner runner: a drop-in replacement for `gitlab-runner`.
pub mod cli;
