//! When a runner token should be rotated: at 75 % of its lifetime, as the
//! official runner's `run` does (`TokenResetIntervalFactor`). Pure, for the
//! job loop and `doctor`.

use chrono::{DateTime, Utc};

/// Fraction of a token's lifetime after which it is rotated.
pub const TOKEN_RESET_INTERVAL_FACTOR: f64 = 0.75;

/// When to rotate a token obtained at `obtained` that expires at `expires`.
/// `None` when the token does not expire. A token with an unknown obtained
/// time is due at once (the official runner computes from Go's zero time,
/// which lands in the past).
pub fn token_reset_at(
    obtained: Option<DateTime<Utc>>,
    expires: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let expires = expires?;
    let Some(obtained) = obtained else {
        return Some(DateTime::<Utc>::UNIX_EPOCH);
    };
    let lifetime = expires.signed_duration_since(obtained);
    let millis = lifetime.num_milliseconds() as f64 * TOKEN_RESET_INTERVAL_FACTOR;
    Some(obtained + chrono::Duration::milliseconds(millis as i64))
}

/// Whether the token is due for rotation at `now`.
pub fn is_rotation_due(
    obtained: Option<DateTime<Utc>>,
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    token_reset_at(obtained, expires).is_some_and(|at| at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn three_quarters_of_the_lifetime() {
        let at = token_reset_at(
            Some(t("2025-01-01T00:00:00Z")),
            Some(t("2025-01-05T00:00:00Z")),
        );
        assert_eq!(at, Some(t("2025-01-04T00:00:00Z")));
        assert_eq!(token_reset_at(Some(t("2025-01-01T00:00:00Z")), None), None);
        assert!(is_rotation_due(
            None,
            Some(t("2030-01-01T00:00:00Z")),
            t("2025-01-01T00:00:00Z")
        ));
        assert!(!is_rotation_due(
            Some(t("2025-01-01T00:00:00Z")),
            Some(t("2025-01-05T00:00:00Z")),
            t("2025-01-03T23:59:59Z")
        ));
    }
}
