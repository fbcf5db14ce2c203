//! [`EngineError`]: what can go wrong talking to the Docker Engine, worded for the job log.
//!
//! Connection failures are sorted into "daemon unreachable" and "permission denied on the socket"
//! because users fix them differently; everything else keeps the Engine API's own message next
//! to what the runner was trying to do.

use std::error::Error as StdError;
use std::io;

/// An error from the engine layer. Messages are lowercase, say what was attempted, and suggest a
/// fix where one is known.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Nothing answers at the configured address: no socket file, connection refused, timeout.
    #[error(
        "cannot reach the Docker daemon at {host}: {reason} (is the daemon running? point \
         `[runners.docker] host` or DOCKER_HOST at its socket)"
    )]
    Unreachable {
        /// The address tried, e.g. `unix:///var/run/docker.sock`.
        host: String,
        /// What the connection attempt reported.
        reason: String,
    },
    /// The socket exists but this process may not open it.
    #[error(
        "permission denied on the Docker socket {host} (run the runner as a user in the `docker` \
         group, or as root)"
    )]
    PermissionDenied {
        /// The address tried.
        host: String,
    },
    /// The configured address has a scheme this runner cannot speak.
    #[error(
        "unsupported Docker host {host:?} (use unix:///path/to/docker.sock, tcp://HOST:PORT or \
         http://HOST:PORT)"
    )]
    UnsupportedHost {
        /// The address as configured.
        host: String,
    },
    /// The image is not on this host and the pull policies allow no pull.
    #[error(
        "image {image:?} not found locally and pull_policy is never (build or load the image on \
         this host first, or allow pulling with pull_policy = \"if-not-present\")"
    )]
    ImageNotFoundLocally {
        /// The image reference as given.
        image: String,
    },
    /// Every pull policy was tried and none made the image available.
    #[error(
        "image {image:?} is not available: {} (check the image name and that its registry is \
         reachable, or load it locally and use pull_policy = \"if-not-present\")",
        attempts.join("; ")
    )]
    ImageUnavailable {
        /// The image reference as given.
        image: String,
        /// One line per policy tried, e.g. `pull_policy "always": failed to pull: …`.
        attempts: Vec<String>,
    },
    /// A configuration value (pull policy, memory, cpus, …) could not be understood.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidValue {
        /// Which setting, e.g. `pull_policy` or `memory`.
        what: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// An Engine API call failed after the connection was established.
    #[error("failed to {action}: {source}")]
    Api {
        /// What the runner was doing, e.g. `create container forerunner-…`.
        action: String,
        /// The Engine API's error.
        #[source]
        source: bollard::errors::Error,
    },
}

impl EngineError {
    /// Wraps an Engine API error with what was being attempted.
    pub(crate) fn api(action: impl Into<String>, source: bollard::errors::Error) -> Self {
        Self::Api {
            action: action.into(),
            source,
        }
    }

    /// Sorts an error seen while first talking to the daemon at `host` into unreachable,
    /// permission denied, or (for any other answer from the daemon) an API error.
    pub(crate) fn from_connect(host: &str, err: bollard::errors::Error) -> Self {
        use bollard::errors::Error as B;
        match &err {
            B::SocketNotFoundError(path) => {
                return Self::Unreachable {
                    host: host.to_owned(),
                    reason: format!("socket {path} does not exist"),
                }
            }
            B::UnsupportedURISchemeError { .. } => {
                return Self::UnsupportedHost {
                    host: host.to_owned(),
                }
            }
            B::RequestTimeoutError => {
                return Self::Unreachable {
                    host: host.to_owned(),
                    reason: "no answer before the timeout".to_owned(),
                }
            }
            _ => {}
        }
        match io_error_kind(&err) {
            Some(io::ErrorKind::PermissionDenied) => Self::PermissionDenied {
                host: host.to_owned(),
            },
            Some(_) => Self::Unreachable {
                host: host.to_owned(),
                reason: innermost_message(&err),
            },
            None if is_transport_error(&err) => Self::Unreachable {
                host: host.to_owned(),
                reason: innermost_message(&err),
            },
            None => Self::api(format!("talk to the Docker daemon at {host}"), err),
        }
    }
}

/// The kind of the first `io::Error` in the source chain, if any.
fn io_error_kind(err: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        if let Some(bollard::errors::Error::IOError { err }) =
            e.downcast_ref::<bollard::errors::Error>()
        {
            return Some(err.kind());
        }
        next = e.source();
    }
    None
}

/// Whether the error comes from the HTTP transport rather than from an answer of the daemon.
fn is_transport_error(err: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as B;
    matches!(
        err,
        B::HyperLegacyError { .. } | B::HttpClientError { .. } | B::HyperResponseError { .. }
    )
}

/// The message of the deepest error in the chain: the one that names the real cause.
fn innermost_message(err: &(dyn StdError + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_on_the_socket_is_recognised() {
        let err = bollard::errors::Error::IOError {
            err: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        let e = EngineError::from_connect("unix:///var/run/docker.sock", err);
        assert!(matches!(e, EngineError::PermissionDenied { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("permission denied on the Docker socket"),
            "{msg}"
        );
        assert!(msg.contains("`docker` group"), "{msg}");
    }

    #[test]
    fn missing_socket_is_unreachable() {
        let err = bollard::errors::Error::SocketNotFoundError("/nope.sock".into());
        let e = EngineError::from_connect("unix:///nope.sock", err);
        let msg = e.to_string();
        assert!(
            msg.starts_with("cannot reach the Docker daemon at unix:///nope.sock: socket"),
            "{msg}"
        );
        assert!(msg.contains("DOCKER_HOST"), "{msg}");
    }

    #[test]
    fn never_policy_message_names_the_image_and_the_fix() {
        let e = EngineError::ImageNotFoundLocally {
            image: "alpine:3".into(),
        };
        assert_eq!(
            e.to_string(),
            "image \"alpine:3\" not found locally and pull_policy is never (build or load the \
             image on this host first, or allow pulling with pull_policy = \"if-not-present\")"
        );
    }
}
