//! Groundwork of the docker executor: everything that talks to the Docker Engine.
//!
//! [`Engine`] is a thin, typed layer over the Engine API (through bollard, never the `docker`
//! CLI): connect, make an image available according to the pull policies, create the per-job
//! network and volumes, start service containers, run one script in a fresh build container while
//! streaming its output, and remove everything a job (or a crashed runner) left behind. Every
//! object it creates carries the labels of [`JobLabels`], which is what cleanup relies on.
//!
//! It deliberately knows nothing about GitLab jobs: the future docker executor turns a job
//! payload and `[runners.docker]` into [`ContainerSpec`]s and [`ServiceSpec`]s, and decides which
//! script runs in which stage. [`testimages`] builds the small local images the tests run in.

mod engine;
mod error;
mod labels;
mod spec;
pub mod testimages;

pub use engine::{
    Engine, ImageSource, LabelledObjects, PreparedImage, ScriptOutcome, ServiceReadiness,
    DEFAULT_DOCKER_HOST,
};
pub use error::EngineError;
pub use labels::{JobLabels, LABEL_JOB_ID, LABEL_MANAGED, LABEL_ROLE, LABEL_RUNNER_TOKEN};
pub use spec::{
    parse_cpus, parse_memory, service_aliases, ContainerSpec, NetworkAttachment, PullPolicy,
    ServiceSpec,
};
