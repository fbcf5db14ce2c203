//! Service containers: starting them on the job network, waiting until they listen, and reading
//! their logs when they do not.

use std::time::Duration;

use bollard::query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder};
use futures::StreamExt;

use crate::executors::docker::{Engine, EngineError, JobLabels, ServiceSpec};

/// Whether a service container is ready for the job, as [`Engine::wait_for_service`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceReadiness {
    /// Every port checked accepts TCP connections, or there was no port to check.
    Ready {
        /// The ports that were checked.
        ports: Vec<u16>,
    },
    /// The service's main process ended.
    Exited {
        /// Its exit code.
        code: i64,
    },
    /// Some ports still refused connections when the time was up.
    TimedOut {
        /// The ports that never answered.
        ports: Vec<u16>,
    },
}

impl Engine {
    /// Creates and starts a service container on `network` and returns its name. The image must
    /// be available already (see [`Engine::ensure_image`]).
    pub async fn start_service(
        &self,
        job: &JobLabels,
        spec: &ServiceSpec,
        network: &str,
    ) -> Result<String, EngineError> {
        let what = spec.aliases.first().map_or("service", String::as_str);
        let name = job.object_name(&format!("svc-{what}"));
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        self.docker()
            .create_container(
                Some(options),
                spec.to_create_body(job.for_role("service"), network),
            )
            .await
            .map_err(|e| {
                EngineError::api(
                    format!(
                        "create service container {name} from image {:?}",
                        spec.image
                    ),
                    e,
                )
            })?;
        self.docker()
            .start_container(&name, None)
            .await
            .map_err(|e| EngineError::api(format!("start service container {name}"), e))?;
        Ok(name)
    }

    /// Waits until the service container `name` accepts TCP connections on the ports its image
    /// exposes (or on `HEALTHCHECK_TCP_PORT` from its environment, as the official runner does),
    /// trying from this host to the container's address on each of its networks.
    ///
    /// Returns early when the service exits. A service exposing no port counts as ready at once.
    /// Unlike the official runner, no helper container is involved, so this only works when the
    /// runner runs on the Docker host itself (container addresses must be routable from here);
    /// with a remote daemon, expect [`ServiceReadiness::TimedOut`].
    pub async fn wait_for_service(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<ServiceReadiness, EngineError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let info = self
                .docker()
                .inspect_container(name, None)
                .await
                .map_err(|e| EngineError::api(format!("inspect service container {name}"), e))?;
            let state = info.state.unwrap_or_default();
            if state.running != Some(true) && state.status.is_some() {
                let status = state.status.map(|s| s.to_string()).unwrap_or_default();
                if status != "created" {
                    return Ok(ServiceReadiness::Exited {
                        code: state.exit_code.unwrap_or(-1),
                    });
                }
            }
            let config = info.config.unwrap_or_default();
            let ports = service_ports(
                config.exposed_ports.as_deref().unwrap_or_default(),
                config.env.as_deref().unwrap_or_default(),
            );
            let addresses: Vec<std::net::IpAddr> = info
                .network_settings
                .and_then(|n| n.networks)
                .unwrap_or_default()
                .into_values()
                .filter_map(|e| e.ip_address.filter(|ip| !ip.is_empty()))
                .filter_map(|ip| ip.parse().ok())
                .collect();
            if ports.is_empty() {
                return Ok(ServiceReadiness::Ready { ports });
            }
            let mut closed = Vec::new();
            for &port in &ports {
                let mut open = false;
                for &ip in &addresses {
                    let attempt = tokio::time::timeout(
                        Duration::from_secs(1),
                        tokio::net::TcpStream::connect((ip, port)),
                    );
                    if matches!(attempt.await, Ok(Ok(_))) {
                        open = true;
                        break;
                    }
                }
                if !open {
                    closed.push(port);
                }
            }
            if closed.is_empty() {
                return Ok(ServiceReadiness::Ready { ports });
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(ServiceReadiness::TimedOut { ports: closed });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The last `tail` lines of a container's stdout and stderr, for example to show why a
    /// service did not start.
    pub async fn container_logs(&self, name: &str, tail: usize) -> Result<String, EngineError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&tail.to_string())
            .build();
        let mut logs = self.docker().logs(name, Some(options));
        let mut out = Vec::new();
        while let Some(item) = logs.next().await {
            let item = item
                .map_err(|e| EngineError::api(format!("read the logs of container {name}"), e))?;
            out.extend_from_slice(item.as_ref());
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// The TCP ports to check for a service: `HEALTHCHECK_TCP_PORT` if its environment sets it,
/// else every exposed `PORT/tcp`.
fn service_ports(exposed: &[String], env: &[String]) -> Vec<u16> {
    if let Some(port) = env
        .iter()
        .filter_map(|kv| kv.strip_prefix("HEALTHCHECK_TCP_PORT="))
        .filter_map(|p| p.trim().parse().ok())
        .next_back()
    {
        return vec![port];
    }
    let mut ports: Vec<u16> = exposed
        .iter()
        .filter_map(|p| match p.split_once('/') {
            Some((port, "tcp")) => port.parse().ok(),
            None => p.parse().ok(),
            Some(_) => None,
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ports_prefer_the_healthcheck_variable() {
        let exposed = ["5432/tcp".to_owned(), "53/udp".to_owned(), "80".to_owned()];
        assert_eq!(service_ports(&exposed, &[]), vec![80, 5432]);
        assert_eq!(
            service_ports(&exposed, &["HEALTHCHECK_TCP_PORT=8080".to_owned()]),
            vec![8080]
        );
        assert!(service_ports(&[], &[]).is_empty());
    }
}
