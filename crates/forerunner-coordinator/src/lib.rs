//! The Forerunner coordinator: a lightweight GitLab-compatible server that
//! answers GitLab's REST API v4 for runner registration and management.
//!
//! Layers, outermost first: [`cli`] (`forerunner serve`/`admin`),
//! [`startup`] (bind and serve), [`api`] (thin handlers and GitLab's wire
//! behaviour), [`domain`] (rules without I/O), [`store`] (persistence behind
//! traits), with [`ci`] (pipelines, the job queue and its progression) and
//! [`git`] (repository mirrors and smart HTTP) beside the API.

pub mod api;
pub mod bootstrap;
pub mod ci;
pub mod cli;
pub mod config;
pub mod domain;
pub mod git;
pub mod startup;
pub mod store;
pub mod telemetry;
