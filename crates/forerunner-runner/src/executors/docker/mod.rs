//! The docker executor ([`DockerExecutor`], in `executor.rs`) and everything below it that talks
//! to the Docker Engine.
//!
//! [`Engine`] is a thin, typed layer over the Engine API (through bollard, never the `docker`
//! CLI): connect, make an image available according to the pull policies, create the per-job
//! network and volumes, start service containers, run one script in a fresh build container while
//! streaming its output, and remove everything a job (or a crashed runner) left behind. Every
//! object it creates carries the labels of [`JobLabels`], which is what cleanup relies on.
//!
//! The engine layer deliberately knows nothing about GitLab jobs: [`DockerExecutor`] turns a job
//! payload and `[runners.docker]` ([`DockerSettings`]) into [`ContainerSpec`]s and
//! [`ServiceSpec`]s, and decides which script runs in which stage. [`image_allowed`] applies `allowed_images`/`allowed_services`.
//! [`testimages`] builds the small local images the tests run in.
//!
//! One job, as the docker executor is meant to drive it:
//!
//! ```no_run
//! # async fn job() -> Result<(), forerunner_runner::executors::docker::EngineError> {
//! use std::time::Duration;
//!
//! use forerunner_runner::executors::docker::{
//!     service_aliases, ContainerSpec, Engine, JobLabels, NetworkAttachment, PullPolicy,
//!     ScriptOutcome, ServiceSpec,
//! };
//! use tokio_util::sync::CancellationToken;
//!
//! // Once per runner: connect, and remove what a crashed earlier run left behind.
//! let engine = Engine::connect(None).await?; // `[runners.docker] host`, else DOCKER_HOST
//! engine.cleanup_leftovers("abc123def").await?; // the runner's short token
//!
//! // Per job: labels, images, network, services.
//! let job = JobLabels::new("abc123def", 4711);
//! let policies = [PullPolicy::IfNotPresent];
//! let image = engine.ensure_image("alpine:3.20", &policies).await?;
//! println!("Using docker image {} for alpine:3.20 ...", image.id);
//! engine.ensure_image("postgres:16", &policies).await?;
//! let network = engine.create_network(&job).await?;
//! let db = ServiceSpec {
//!     image: "postgres:16".into(),
//!     aliases: service_aliases("postgres:16", Some("db")),
//!     ..ServiceSpec::default()
//! };
//! let db = engine.start_service(&job, &db, &network).await?;
//! engine.wait_for_service(&db, Duration::from_secs(30)).await?;
//!
//! // Per stage: a fresh build container sharing the slot's builds directory.
//! let spec = ContainerSpec {
//!     binds: vec!["/srv/forerunner/builds/abc123def/0:/builds".into()],
//!     working_dir: Some("/builds/group/project".into()),
//!     network: Some(NetworkAttachment { network, aliases: vec![] }),
//!     ..ContainerSpec::new("alpine:3.20")
//! };
//! let cancel = CancellationToken::new(); // fired by a cancel from GitLab or a runner stop
//! let outcome = engine
//!     .run_script(&job, &spec, "echo hello\n", |out| print!("{}", String::from_utf8_lossy(out)),
//!         &cancel, Duration::from_secs(3600))
//!     .await?;
//! let failed = !matches!(outcome, ScriptOutcome::Exited { code: 0 });
//!
//! // Whatever happened: remove the job's containers, network and volumes.
//! engine.cleanup_job(&job).await?;
//! # let _ = failed;
//! # Ok(())
//! # }
//! ```

mod allowed;
mod cleanup;
mod engine;
mod error;
mod executor;
mod labels;
mod services;
mod spec;
pub mod testimages;

pub use allowed::{image_allowed, not_allowed_message};
pub use cleanup::LabelledObjects;
pub use engine::{Engine, ImageSource, PreparedImage, ScriptOutcome, DEFAULT_DOCKER_HOST};
pub use error::EngineError;
pub use executor::{
    cleanup_leftovers_at_start, cleanup_leftovers_once, DockerExecutor, DockerSettings,
};
pub use labels::{JobLabels, LABEL_JOB_ID, LABEL_MANAGED, LABEL_ROLE, LABEL_RUNNER_TOKEN};
pub use services::ServiceReadiness;
pub use spec::{
    parse_cpus, parse_device, parse_memory, parse_memory_swap, parse_ulimit, service_aliases,
    ContainerSpec, HostOptions, NetworkAttachment, PullPolicy, ServiceSpec,
};
