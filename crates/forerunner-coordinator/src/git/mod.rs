//! Git access for the coordinator: a bare mirror of each project's repository
//! and read-only git smart HTTP over those mirrors.
//!
//! This module owns everything that runs the `git` CLI on the coordinator's
//! side: keeping `<data dir>/repositories/<namespace>/<project>.git` in step
//! with a project's `import_url` ([`mirror`]), answering the questions the
//! pipeline planner asks about a commit (which sha a ref names, the content
//! of `.gitlab-ci.yml` and of included files, the files that exist or
//! changed), and serving the mirrors to runners through git's own
//! `git http-backend` CGI ([`http_backend`]).
//!
//! It deliberately knows nothing about the rest of the coordinator: no
//! database, no projects table, no job tokens. Callers pass the project path
//! and `import_url` they have stored, and plug their job-token check in
//! through the [`Authorizer`] trait.
//!
//! Wiring, in outline:
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use forerunner_coordinator::git::{Access, Authorizer, BasicCredentials, GitHttp, Mirrors};
//!
//! /// The coordinator's job-token check (it would hold the store).
//! struct JobTokens;
//!
//! #[async_trait::async_trait]
//! impl Authorizer for JobTokens {
//!     async fn authorize(&self, project_path: &str, credentials: &BasicCredentials) -> Access {
//!         let _ = project_path; // look up the running job by token, compare its project
//!         if credentials.username() == "gitlab-ci-token" && credentials.password() == "glcbt-…" {
//!             Access::Granted
//!         } else {
//!             Access::Denied
//!         }
//!     }
//! }
//!
//! # async fn example() -> Result<(), forerunner_coordinator::git::GitError> {
//! let mirrors = Mirrors::new("/var/lib/forerunner"); // mirrors under …/repositories
//! let mirror = mirrors.project("group/project")?;
//! mirror.sync("https://user:token@git.example.com/group/project.git").await?;
//! let main = mirror.resolve_ref("main").await?;
//! let ci_yaml = mirror.read_file(&main.sha, ".gitlab-ci.yml").await?;
//!
//! let api: axum::Router = axum::Router::new(); // the /api/v4 routes
//! let app = api.merge(GitHttp::new(mirrors, Arc::new(JobTokens)).router());
//! # let _ = (ci_yaml, app);
//! # Ok(())
//! # }
//! ```
//!
//! Modules:
//! - [`mirror`]: [`Mirrors`] (one per coordinator) and [`RepoMirror`] (one
//!   per project): sync, resolve refs, read files, list files and changes.
//! - [`http_backend`]: [`GitHttp`], the axum handler for
//!   `GET …/info/refs?service=git-upload-pack` and `POST …/git-upload-pack`.

pub mod http_backend;
pub mod mirror;

mod command;
mod error;
mod names;

pub use error::GitError;
pub use http_backend::{Access, Authorizer, BasicCredentials, GitHttp};
pub use mirror::{CommitInfo, Mirrors, RefKind, RefUpdate, RepoMirror, ResolvedRef, SyncReport};
pub use names::{redact_credentials, ZERO_SHA};
