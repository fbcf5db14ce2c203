//! Integration tests of the coordinator crate, one module per area.
//!
//! - [`git`]: repository mirrors built from real repositories, and the git
//!   smart HTTP endpoint exercised with the real `git` client.
mod git;
