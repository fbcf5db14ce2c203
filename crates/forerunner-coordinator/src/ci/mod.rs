//! Continuous integration: turning a project's `.gitlab-ci.yml` into a
//! pipeline, handing its jobs to runners exactly once, and moving the
//! pipeline forward as jobs finish.
//!
//! [`Ci`] is the one service object handlers share (through `AppState`). It
//! holds the store, the repository mirrors, the in-process job queue
//! notifier and the directories of traces and artifacts. Submodules:
//! - [`create`]: `.gitlab-ci.yml` at a ref → compiled, planned, stored.
//! - [`queue`]: the queue version long polling waits on, and the pick of
//!   a pending job for a runner (exactly once through a conditional write).
//! - [`progress`]: GitLab's progression rules (stages, `needs`, `when`,
//!   `allow_failure`, `retry`), cancel, retry, play and the composite
//!   pipeline status.
//! - [`payload`]: the `POST /jobs/request` body GitLab sends a runner.
//! - [`variables`]: predefined, project, group and pipeline variables.
//! - [`files`]: trace files (append-only) and artifact archives.
//! - [`monitor`]: the background sweep failing timed-out jobs and jobs of
//!   vanished runners, and starting delayed jobs.
//! - [`git_auth`]: the job-token [`crate::git::Authorizer`].

pub mod create;
pub mod files;
pub mod git_auth;
pub mod monitor;
pub mod payload;
pub mod progress;
pub mod queue;
pub mod variables;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::CiSettings;
use crate::git::Mirrors;
use crate::store::Store;

/// The shared CI service.
#[derive(Clone)]
pub struct Ci {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    mirrors: Mirrors,
    settings: CiSettings,
    data_dir: PathBuf,
    queue: queue::Queue,
    /// Serialises progression of pipelines (one process, one lock: a
    /// pipeline's jobs are re-evaluated as a whole).
    progress: tokio::sync::Mutex<()>,
    /// Serialises trace appends (offset check and write are one step).
    traces: tokio::sync::Mutex<()>,
}

impl Ci {
    /// The service over `store`, keeping mirrors, traces and artifacts under
    /// `data_dir`.
    pub fn new(store: Store, data_dir: &Path, settings: CiSettings) -> Ci {
        Ci {
            inner: Arc::new(Inner {
                store,
                mirrors: Mirrors::new(data_dir),
                settings,
                data_dir: data_dir.to_path_buf(),
                queue: queue::Queue::new(),
                progress: tokio::sync::Mutex::new(()),
                traces: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The repository mirrors.
    pub fn mirrors(&self) -> &Mirrors {
        &self.inner.mirrors
    }

    /// The settings.
    pub fn settings(&self) -> &CiSettings {
        &self.inner.settings
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The job queue.
    pub fn queue(&self) -> &queue::Queue {
        &self.inner.queue
    }
}

/// Errors of CI operations that are not a store failure.
#[derive(Debug, thiserror::Error)]
pub enum CiError {
    /// The request cannot be satisfied as given (`400` with this text).
    #[error("{0}")]
    Invalid(String),
    /// The operation does not apply to the object's current state.
    #[error("{0}")]
    NotAllowed(String),
    /// GitLab's `base` errors of a refused pipeline (`400`).
    #[error("{}", .0.join(", "))]
    Rejected(Vec<String>),
    /// `.gitlab-ci.yml` has errors: every diagnostic found (warnings too);
    /// the API answers the errors as `base` messages.
    #[error("{}", config_errors(.0).join(", "))]
    Config(Vec<forerunner_pipeline::Diagnostic>),
    /// No pipeline for this ref (`workflow:rules`, or rules left no job);
    /// the API answers GitLab's `base` message.
    #[error("{}", not_created_message(*.0))]
    NotCreated(forerunner_pipeline::NotCreated),
    /// The request's job selection names no job or stage of the pipeline.
    #[error(transparent)]
    Selection(forerunner_pipeline::SelectError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Anything else (git, files).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The errors among `diagnostics`, rendered one per line.
pub fn config_errors(diagnostics: &[forerunner_pipeline::Diagnostic]) -> Vec<String> {
    diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect()
}

/// GitLab's message for a pipeline that is not created.
pub fn not_created_message(reason: forerunner_pipeline::NotCreated) -> &'static str {
    match reason {
        forerunner_pipeline::NotCreated::WorkflowRules => {
            "Pipeline filtered out by workflow rules."
        }
        forerunner_pipeline::NotCreated::NoJobs => "No stages / jobs for this pipeline.",
    }
}
