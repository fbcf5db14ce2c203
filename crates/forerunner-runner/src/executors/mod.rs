//! Executors: the things that run a job's stages somewhere (a shell on this host, a Docker
//! container, a custom driver).
//!
//! Only the groundwork of the docker executor lives here so far: [`docker`] talks to the Docker
//! Engine (images, networks, service and build containers, cleanup) but knows nothing of jobs,
//! stages or traces. The `Executor` trait and the job loop that drive it are another module's job.

pub mod docker;
