//! Token kinds and their short, loggable form.
//!
//! GitLab distinguishes tokens by prefix only:
//! - `glrt-t1_…`/`glrt-t2_…`/`glrt-t3_…`: runner authentication token of a
//!   runner *created* through the UI or `POST /user/runners` (instance, group,
//!   project). The official runner keys on the literal `glrt-` prefix.
//! - `glrtr-…`, `t1_…` (or bare hex on old servers): runner authentication
//!   token issued by legacy registration.
//! - `GR1348941…`: registration token (legacy flow only).
//! - `glpat-…`: personal access token.
//! - `glcbt-…`: CI job token.
//!
//! Only [`short_token`] output may appear in logs and error messages.

/// Prefix of runner authentication tokens created with `POST /user/runners`.
pub const CREATED_RUNNER_PREFIX: &str = "glrt-";
/// Prefix of runner authentication tokens issued by legacy registration (newer GitLab).
pub const REGISTERED_RUNNER_PREFIX: &str = "glrtr-";
/// Prefix of registration tokens (`GR` + the rotation date 20220225 in hex).
pub const REGISTRATION_TOKEN_PREFIX: &str = "GR1348941";
/// Prefix of personal access tokens.
pub const PERSONAL_ACCESS_TOKEN_PREFIX: &str = "glpat-";
/// Prefix of CI job tokens.
pub const JOB_TOKEN_PREFIX: &str = "glcbt-";

/// GitLab token prefixes that a runner masks in job logs, as the official
/// runner's token sanitizer lists them.
pub const SENSITIVE_PREFIXES: &[&str] = &[
    "glpat-", "gloas-", "gldt-", "glrt-", "glrtr-", "glcbt-", "glptt-", "glft-", "glimt-",
    "glagent-", "glsoat-", "glffct-", "gltok-",
];

/// The kind of a token, judged from its prefix alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenKind {
    /// `glrt-…`: authentication token of a runner created with a personal
    /// access token or in the UI. Register with `--token`.
    CreatedRunner,
    /// `glrtr-…`, `t1_…`…: authentication token from legacy registration.
    RegisteredRunner,
    /// `GR1348941…`: a registration token. Register with `--registration-token`.
    Registration,
    /// `glpat-…`: a personal access token (for `POST /user/runners`).
    PersonalAccess,
    /// `glcbt-…`: a CI job token.
    Job,
    /// No known prefix: treated as a legacy runner or registration token.
    Unknown,
}

impl TokenKind {
    /// Classifies `token` by its prefix.
    pub fn of(token: &str) -> Self {
        let partition = |t: &str| {
            let b = t.as_bytes();
            b.len() > 3 && b[0] == b't' && matches!(b[1], b'1'..=b'3') && b[2] == b'_'
        };
        if token.starts_with(REGISTERED_RUNNER_PREFIX) {
            Self::RegisteredRunner
        } else if token.starts_with(CREATED_RUNNER_PREFIX) {
            Self::CreatedRunner
        } else if token.starts_with(REGISTRATION_TOKEN_PREFIX) {
            Self::Registration
        } else if token.starts_with(PERSONAL_ACCESS_TOKEN_PREFIX) {
            Self::PersonalAccess
        } else if token.starts_with(JOB_TOKEN_PREFIX) {
            Self::Job
        } else if partition(token) {
            Self::RegisteredRunner
        } else {
            Self::Unknown
        }
    }

    /// A human name for messages ("runner authentication token", …).
    pub fn describe(self) -> &'static str {
        match self {
            Self::CreatedRunner => "runner authentication token (glrt-)",
            Self::RegisteredRunner => "runner authentication token from legacy registration",
            Self::Registration => "registration token (GR1348941…)",
            Self::PersonalAccess => "personal access token (glpat-)",
            Self::Job => "CI job token (glcbt-)",
            Self::Unknown => "token of unknown kind",
        }
    }
}

/// The short form of a token, safe to log: what the official runner (before
/// 18.2) shows, e.g. `t3_TgbhXF` for `glrt-t3_TgbhXF…`.
///
/// - `glrt-…` → 9 characters after `glrt-` (the `tN_` partition included);
/// - `glrtr-…`, `glcbt-…`, `glpat-…` → 9 characters after the prefix;
/// - `GR1348941…` → the first 17 characters;
/// - anything else → the first 8 characters.
///
/// Never returns more than a prefix plus 9 secret characters, and returns an
/// empty string for an empty token.
pub fn short_token(token: &str) -> String {
    let take = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    for prefix in [
        REGISTERED_RUNNER_PREFIX,
        JOB_TOKEN_PREFIX,
        PERSONAL_ACCESS_TOKEN_PREFIX,
    ] {
        if let Some(rest) = token.strip_prefix(prefix) {
            return take(rest, 9);
        }
    }
    if let Some(rest) = token.strip_prefix(CREATED_RUNNER_PREFIX) {
        return take(rest, 9);
    }
    if token.starts_with("GR") {
        return take(token, 17);
    }
    take(token, 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(TokenKind::of("glrt-t3_abc"), TokenKind::CreatedRunner);
        assert_eq!(TokenKind::of("glrtr-abc"), TokenKind::RegisteredRunner);
        assert_eq!(TokenKind::of("t1_abcdef"), TokenKind::RegisteredRunner);
        assert_eq!(TokenKind::of("GR1348941abc"), TokenKind::Registration);
        assert_eq!(TokenKind::of("glpat-abc"), TokenKind::PersonalAccess);
        assert_eq!(TokenKind::of("glcbt-abc"), TokenKind::Job);
        assert_eq!(TokenKind::of("6337ff461c94fd3fa32b"), TokenKind::Unknown);
    }

    #[test]
    fn short_forms() {
        assert_eq!(short_token("glrt-t3_TgbhXFyzzzzzzzzzzz"), "t3_TgbhXF");
        assert_eq!(short_token("glrt-kyahzxLaj4Dc1jQf4xjX"), "kyahzxLaj");
        assert_eq!(
            short_token("GR1348941abcdefghijklmnop"),
            "GR1348941abcdefgh"
        );
        assert_eq!(short_token("glpat-0123456789abcdef"), "012345678");
        assert_eq!(short_token("6337ff461c94fd3fa32ba3b1ff4125"), "6337ff46");
        assert_eq!(short_token(""), "");
    }
}
