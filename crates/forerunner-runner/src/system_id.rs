//! The runner manager's system id, stored in `.runner_system_id` next to
//! config.toml, as the official runner does.
//!
//! `s_` + the first 12 hex digits of HMAC-SHA256(key = machine id,
//! message = "gitlab-runner") when the machine has an id, else `r_` + 12
//! random alphanumerics. A file whose content does not match
//! `^[sr]_[0-9a-zA-Z]{12}$` is replaced. Copying the config directory to
//! another host copies the id: both hosts are then one runner manager.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::Sha256;

use crate::config::document::write_atomic;

/// Name of the file next to config.toml.
pub const FILE_NAME: &str = ".runner_system_id";

/// Where the system id of `config_path` lives.
pub fn path_for(config_path: &Path) -> PathBuf {
    match config_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(FILE_NAME),
        _ => PathBuf::from(FILE_NAME),
    }
}

/// Whether `id` has the official format `^[sr]_[0-9a-zA-Z]{12}$`.
pub fn is_valid(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 14
        && matches!(b[0], b's' | b'r')
        && b[1] == b'_'
        && b[2..].iter().all(u8::is_ascii_alphanumeric)
}

/// The id derived from a machine id: `s_` + 12 hex digits of
/// HMAC-SHA256(machine id, "gitlab-runner").
pub fn from_machine_id(machine_id: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(machine_id.as_bytes()).expect("HMAC accepts any key length");
    mac.update(b"gitlab-runner");
    let digest = hex::encode(mac.finalize().into_bytes());
    format!("s_{}", &digest[..12])
}

/// A random id: `r_` + 12 alphanumerics.
pub fn random() -> String {
    let suffix: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(12)
        .map(char::from)
        .collect();
    format!("r_{suffix}")
}

/// The machine id as `machineid` reads it on Linux.
fn machine_id() -> Option<String> {
    ["/var/lib/dbus/machine-id", "/etc/machine-id"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
}

/// What [`load_or_create`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemId {
    /// The id.
    pub id: String,
    /// Whether it was created now (the official runner logs "Created missing unique system ID").
    pub created: bool,
    /// Why it could not be saved, if it could not (only a warning).
    pub save_error: Option<String>,
}

/// Reads the system id next to `config_path`, creating (and saving) one when
/// the file is missing or invalid.
pub fn load_or_create(config_path: &Path) -> SystemId {
    let path = path_for(config_path);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if is_valid(id) {
            return SystemId {
                id: id.to_owned(),
                created: false,
                save_error: None,
            };
        }
    }
    let id = machine_id().map_or_else(random, |m| from_machine_id(&m));
    let save_error = write_atomic(&path, id.as_bytes())
        .err()
        .map(|e| e.to_string());
    SystemId {
        id,
        created: true,
        save_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(is_valid("s_0123456789ab"));
        assert!(is_valid("r_AbCdEfGhIjKl"));
        assert!(!is_valid("s_0123456789a"));
        assert!(!is_valid("x_0123456789ab"));
        assert!(!is_valid("s_0123456789a-"));
        assert!(is_valid(&random()));
        let id = from_machine_id("0123456789abcdef0123456789abcdef");
        assert!(is_valid(&id) && id.starts_with("s_"), "{id}");
        // HMAC-SHA256(key = machine id, message = "gitlab-runner"), computed independently.
        assert_eq!(id, "s_ee3af03959fe");
    }

    #[test]
    fn creates_then_reuses_and_replaces_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        let first = load_or_create(&config);
        assert!(first.created && first.save_error.is_none());
        let second = load_or_create(&config);
        assert_eq!(second.id, first.id);
        assert!(!second.created);
        std::fs::write(path_for(&config), "garbage").unwrap();
        let third = load_or_create(&config);
        assert!(third.created && is_valid(&third.id));
    }
}
