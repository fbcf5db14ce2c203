//! Instance-wide settings (GitLab's application settings).

use chrono::{DateTime, Utc};

/// The runner-related application settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSettings {
    /// Whether registration tokens may register runners (`POST /runners`).
    pub allow_runner_registration_token: bool,
    /// Digest of the instance registration token.
    pub registration_token_digest: Option<String>,
    /// Its short form.
    pub registration_token_short: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}
