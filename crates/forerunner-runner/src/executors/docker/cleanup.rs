//! Removing what a job, or a runner that crashed, left on the daemon, found by labels.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveVolumeOptionsBuilder,
};

use crate::executors::docker::engine::is_not_found;
use crate::executors::docker::labels::runner_filters;
use crate::executors::docker::{Engine, EngineError, JobLabels};

/// Docker objects found by their labels, by name: what a cleanup removed, or what
/// [`Engine::job_objects`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelledObjects {
    /// Containers (removed with their anonymous volumes by a cleanup).
    pub containers: Vec<String>,
    /// Networks.
    pub networks: Vec<String>,
    /// Named volumes.
    pub volumes: Vec<String>,
}

impl LabelledObjects {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
}

impl Engine {
    /// Removes every container, network and volume of `job`. Safe to call more than once and
    /// after partial failures; tries everything before reporting the first error.
    pub async fn cleanup_job(&self, job: &JobLabels) -> Result<LabelledObjects, EngineError> {
        self.remove_labelled(&job.filters()).await
    }

    /// Removes every container, network and volume labelled with `runner_short_token`: what a
    /// runner that crashed or was killed left behind. Call it at start-up, before taking jobs.
    pub async fn cleanup_leftovers(
        &self,
        runner_short_token: &str,
    ) -> Result<LabelledObjects, EngineError> {
        let report = self
            .remove_labelled(&runner_filters(runner_short_token))
            .await?;
        if !report.is_empty() {
            tracing::info!(
                containers = report.containers.len(),
                networks = report.networks.len(),
                runner = runner_short_token,
                volumes = report.volumes.len(),
                "Removed Docker leftovers of an earlier run"
            );
        }
        Ok(report)
    }

    /// Lists, without removing anything, the containers, networks and volumes of `job` that
    /// still exist.
    pub async fn job_objects(&self, job: &JobLabels) -> Result<LabelledObjects, EngineError> {
        let filters = job.filters();
        let mut found = LabelledObjects::default();
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        for c in self
            .docker()
            .list_containers(Some(options))
            .await
            .map_err(|e| EngineError::api("list labelled containers", e))?
        {
            found.containers.push(container_name(c.names, c.id));
        }
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        for n in self
            .docker()
            .list_networks(Some(options))
            .await
            .map_err(|e| EngineError::api("list labelled networks", e))?
        {
            found.networks.extend(n.name);
        }
        let options = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let volumes = self
            .docker()
            .list_volumes(Some(options))
            .await
            .map_err(|e| EngineError::api("list labelled volumes", e))?;
        for v in volumes.volumes.unwrap_or_default() {
            found.volumes.push(v.name);
        }
        Ok(found)
    }

    async fn remove_labelled(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<LabelledObjects, EngineError> {
        let mut report = LabelledObjects::default();
        let mut first_error = None;

        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(filters)
            .build();
        let containers = self
            .docker()
            .list_containers(Some(options))
            .await
            .map_err(|e| EngineError::api("list labelled containers", e))?;
        for c in containers {
            let Some(id) = c.id.clone() else { continue };
            let name = container_name(c.names, c.id);
            match self.remove_container(&id).await {
                Ok(()) => report.containers.push(name),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }

        let options = ListNetworksOptionsBuilder::default()
            .filters(filters)
            .build();
        let networks = self
            .docker()
            .list_networks(Some(options))
            .await
            .map_err(|e| EngineError::api("list labelled networks", e))?;
        for n in networks {
            let Some(name) = n.name else { continue };
            match self.docker().remove_network(&name).await {
                Ok(()) => report.networks.push(name),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    first_error
                        .get_or_insert(EngineError::api(format!("remove network {name}"), e));
                }
            }
        }

        let options = ListVolumesOptionsBuilder::default()
            .filters(filters)
            .build();
        let volumes = self
            .docker()
            .list_volumes(Some(options))
            .await
            .map_err(|e| EngineError::api("list labelled volumes", e))?;
        for v in volumes.volumes.unwrap_or_default() {
            let options = RemoveVolumeOptionsBuilder::default().force(true).build();
            match self.docker().remove_volume(&v.name, Some(options)).await {
                Ok(()) => report.volumes.push(v.name),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    first_error
                        .get_or_insert(EngineError::api(format!("remove volume {}", v.name), e));
                }
            }
        }

        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}

/// A container's name without Docker's leading `/`, or its id when it has none.
fn container_name(names: Option<Vec<String>>, id: Option<String>) -> String {
    names
        .and_then(|n| n.into_iter().next())
        .map(|n| n.trim_start_matches('/').to_owned())
        .or(id)
        .unwrap_or_default()
}
