//! `forerunner exec`: run a repository's `.gitlab-ci.yml` on this machine,
//! through the real coordinator and the real runner.
//!
//! GitLab removed `gitlab-runner exec`; Forerunner has both halves, so it
//! runs a pipeline locally along the same code paths as in production: an
//! embedded coordinator (its own data directory, `127.0.0.1:0`) creates the
//! pipeline from the repository exactly as for a push — rules, `needs`,
//! stages, `parallel` — and an embedded runner takes the jobs over HTTP with
//! a `glrt-` token, runs them with the shell or docker executor and streams
//! their traces back. Exec reads the traces through the coordinator and
//! prints them live.
//!
//! Modules:
//! - [`args`]: the command line, parsed ([`ExecArgs`]) then resolved
//!   ([`args::Options`]).
//! - [`command`]: the run from start to end, and where things live.
//! - `repo`: the user's repository (read-only), the working-tree snapshot,
//!   and the source repository the coordinator imports.
//! - `embedded`: the coordinator, the REST calls exec makes, the runner.
//! - `follow`: job states, live logs, manual jobs, Ctrl-C.
//! - Pure output parts: [`trace`] (trace bytes → lines, section headers),
//!   [`printer`] (layout, progress line), [`report`] (`--list` and summary
//!   tables), [`diagnostics`] (`.gitlab-ci.yml` errors with their source
//!   line), [`order`] (can two jobs run side by side), [`style`].

pub mod args;
pub mod command;
pub mod diagnostics;
mod embedded;
mod follow;
pub mod order;
pub mod printer;
mod repo;
pub mod report;
pub mod style;
pub mod trace;

pub use args::ExecArgs;
pub use command::exec;
