//! GitLab Runner API v4 wire types, defined once for the whole workspace.
//!
//! The runner, the coordinator and the tests all (de)serialize HTTP bodies
//! through these types, so the two halves of the protocol cannot drift apart.
//! The shapes track GitLab 17.x/18.x as documented in
//! `shared/research/server-api.md` and `runner-protocol.md`.
//!
//! This crate is pure data: no I/O, no async, no HTTP client or server.
//! Domain logic (scheduling, storage, execution) lives elsewhere and converts
//! to and from these types at its boundary.
//!
//! Modules:
//! - [`runners`]: registration, verification, unregistration, token reset.
//! - [`management`]: management REST entities (runners, managers, users,
//!   projects, groups, settings, version).
//! - [`tokens`]: token kinds (`glrt-`, `glpat-`, `GR1348941…`, `glcbt-`) and
//!   the short form used in logs.
//! - [`errors`]: GitLab's JSON error bodies.
//! - [`paths`]: endpoint paths and header names.
//! - [`jobs`]: job request, job payload, job state updates.
//! - [`failure`]: job failure reasons.
//! - [`trace`]: `Content-Range` handling of trace patches.
//! - [`ci`]: pipeline, job and CI/CD variable entities of the REST API.
//! - [`de`]: lenient decoding of parameters sent as query, form or JSON.
#![warn(missing_docs)]

pub mod ci;
pub mod de;
pub mod errors;
pub mod failure;
pub mod jobs;
pub mod management;
pub mod paths;
pub mod runners;
pub mod tokens;
pub mod trace;
