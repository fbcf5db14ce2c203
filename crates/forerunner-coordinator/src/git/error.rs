//! [`GitError`], the one error type of the git access layer.
//!
//! Every message says what was attempted and, when known, how to fix it.
//! URLs and git's own output are passed through
//! [`redact_credentials`](crate::git::redact_credentials) before they are
//! stored in an error, so credentials embedded in an `import_url` never reach
//! a log line or an API response. This module does not decide HTTP status
//! codes; the API layer maps variants to them.
use std::{io, path::PathBuf, time::Duration};

/// Why a git operation on a project's mirror failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// The `git` program could not be started at all.
    #[error(
        "failed to run `git`: {source} (install git and make sure it is on the coordinator's PATH)"
    )]
    GitUnavailable {
        /// The error from spawning the process.
        #[source]
        source: io::Error,
    },
    /// The project path cannot name a repository on disk.
    #[error("invalid project path {path:?}: {reason}")]
    InvalidProjectPath {
        /// The rejected path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The `import_url` is not something the coordinator will fetch from.
    #[error("invalid import_url {url}: {reason}")]
    InvalidImportUrl {
        /// The rejected URL, with credentials redacted.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Cloning or fetching from the `import_url` failed.
    #[error("failed to fetch {project} from import_url {url}: {stderr} (check that the repository exists and is reachable and readable from the coordinator)")]
    ImportFailed {
        /// The project path.
        project: String,
        /// The URL, with credentials redacted.
        url: String,
        /// What git printed, with credentials redacted.
        stderr: String,
    },
    /// Cloning or fetching from the `import_url` took too long and was killed.
    #[error("fetching {project} from import_url {url} did not finish within {timeout:?} and was stopped (check that the URL is reachable, or raise the sync timeout)")]
    SyncTimedOut {
        /// The project path.
        project: String,
        /// The URL, with credentials redacted.
        url: String,
        /// The limit that was exceeded.
        timeout: Duration,
    },
    /// The task running a sync was stopped, e.g. because the coordinator is
    /// shutting down.
    #[error("the sync of {project} was interrupted before it finished (sync again)")]
    SyncInterrupted {
        /// The project path.
        project: String,
    },
    /// The project has never been synced, so there is nothing to read.
    #[error("project {project} has no repository mirror at {path} yet (sync it from its import_url first)")]
    NotMirrored {
        /// The project path.
        project: String,
        /// Where the mirror would live.
        path: PathBuf,
    },
    /// A ref name that git would not accept, or that could be mistaken for an option.
    #[error("invalid ref {name:?}: {reason}")]
    InvalidRef {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No branch, tag or commit has this name.
    #[error("ref {name:?} not found in the repository of {project} (push the branch or tag to the import_url repository and sync again)")]
    RefNotFound {
        /// The project path.
        project: String,
        /// The name that was looked up.
        name: String,
    },
    /// The name is both a branch and a tag.
    #[error("ref {name:?} is both a branch and a tag in the repository of {project} (use refs/heads/{name} or refs/tags/{name})")]
    AmbiguousRef {
        /// The project path.
        project: String,
        /// The ambiguous name.
        name: String,
    },
    /// The sha does not name a commit in the mirror.
    #[error(
        "commit {sha} not found in the repository of {project} (sync the mirror, or check the sha)"
    )]
    CommitNotFound {
        /// The project path.
        project: String,
        /// The sha that was looked up.
        sha: String,
    },
    /// A file path that leaves the repository or cannot be passed to git.
    #[error("invalid file path {path:?}: {reason}")]
    InvalidFilePath {
        /// The rejected path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A local git command failed unexpectedly.
    #[error("`git {command}` failed in {dir}: {stderr}")]
    Command {
        /// The subcommand and its arguments, with credentials redacted.
        command: String,
        /// The repository it ran in.
        dir: PathBuf,
        /// What git printed, with credentials redacted.
        stderr: String,
    },
    /// A filesystem operation around the mirror failed.
    #[error("failed to {action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "create directory".
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}
