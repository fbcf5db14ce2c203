//! The health model of the job loop, as the official runner's
//! `health_helper.go`, plus a line that tells the user what to do.
//!
//! Only answers that say "this token will never work" count as failures: a
//! `403` and a client that cannot be built (bad URL scheme, unreadable TLS
//! files). Network errors, timeouts, `429` and `5xx` never park an entry.
//! After `unhealthy_requests_limit` failures in a row the entry is parked for
//! `unhealthy_interval`, measured from its last success or forced check (not
//! from the last failure); then one check is forced. A success resets the
//! count. The table is pure: callers pass the time, and reset it on config
//! reload.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use forerunner_protocol::tokens::short_token;

use crate::config::duration::format_go_duration;
use crate::config::RunnerConfig;

/// The outcome of one job request, as far as health is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestHealth {
    /// Any answer that does not condemn the token (201, 204, 409, 5xx,
    /// network errors…).
    Healthy,
    /// `403 Forbidden`: the server does not know the token.
    Forbidden,
    /// The HTTP client for the entry could not be built.
    ClientError,
}

impl RequestHealth {
    /// Classifies an HTTP status (`None`: no response, e.g. a network error).
    pub fn from_status(status: Option<u16>) -> Self {
        match status {
            Some(403) => Self::Forbidden,
            _ => Self::Healthy,
        }
    }

    fn is_healthy(self) -> bool {
        self == Self::Healthy
    }
}

/// Per-entry thresholds, from [`RunnerConfig::unhealthy_requests_limit`] and
/// [`RunnerConfig::unhealthy_interval`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Failures before the entry is parked (≥ 1).
    pub limit: u32,
    /// How long it stays parked.
    pub interval: Duration,
}

impl HealthPolicy {
    /// The policy of a config entry.
    pub fn of(runner: &RunnerConfig) -> Self {
        Self {
            limit: runner.unhealthy_requests_limit(),
            interval: runner.unhealthy_interval(),
        }
    }
}

/// The key the official runner uses: URL + short token.
pub fn health_key(runner: &RunnerConfig) -> String {
    format!("{}{}", runner.url, short_token(&runner.token))
}

#[derive(Debug, Clone)]
struct Entry {
    failures: u32,
    last_check: Instant,
}

/// What the loop should do with an entry now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Ask for jobs.
    Healthy,
    /// Parked: skip it.
    Parked,
    /// The park time is over: ask once, and log `message` as a warning.
    Forced {
        /// The official warning line's message.
        message: String,
    },
}

/// The entry was just parked: log both lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The official `ERROR:` message:
    /// `Runner "<url><short>" is unhealthy and will be disabled for 1h0m0s seconds!`.
    pub message: String,
    /// Fields of the official line (`unhealthy_requests`, `unhealthy_requests_limit`).
    pub fields: Vec<(&'static str, String)>,
    /// Forerunner's line: which entry, why, and the command that fixes it.
    pub hint: String,
}

impl Parked {
    /// The two lines to print, in the runner format: the official `ERROR:`
    /// line, then Forerunner's `ERROR:` line with the fix.
    pub fn lines(&self, color: bool) -> String {
        let fields: Vec<(&str, &str)> = self.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut out =
            crate::log::format_line(crate::log::Level::Error, &self.message, &fields, color);
        out.push_str(&crate::log::format_line(
            crate::log::Level::Error,
            &self.hint,
            &[],
            color,
        ));
        out
    }

    /// Logs [`Parked::lines`] through `tracing` (for a subscriber using
    /// [`crate::log::RunnerFormat`]).
    pub fn trace(&self) {
        let requests = &self.fields[0].1;
        let limit = &self.fields[1].1;
        tracing::error!(
            unhealthy_requests = %requests,
            unhealthy_requests_limit = %limit,
            "{}",
            self.message
        );
        tracing::error!("{}", self.hint);
    }
}

/// The health table of all entries.
#[derive(Debug, Clone, Default)]
pub struct Health {
    entries: HashMap<String, Entry>,
}

impl Health {
    /// An empty table (all entries healthy).
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything, as a config reload does.
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// Whether `key` may ask for jobs at `now`.
    pub fn check(&mut self, key: &str, policy: HealthPolicy, now: Instant) -> Verdict {
        let Some(entry) = self.entries.get_mut(key) else {
            return Verdict::Healthy;
        };
        if entry.failures < policy.limit.max(1) {
            return Verdict::Healthy;
        }
        if now.saturating_duration_since(entry.last_check) > policy.interval {
            entry.failures = 0;
            entry.last_check = now;
            return Verdict::Forced {
                message: format!(
                    "Runner \"{key}\" is not healthy, but check for a new job will be forced!"
                ),
            };
        }
        Verdict::Parked
    }

    /// Records the outcome of a request of `runner` (whose config file is
    /// `config_path`, for the hint). Returns the lines to log when this
    /// outcome parks the entry.
    pub fn record(
        &mut self,
        runner: &RunnerConfig,
        config_path: &str,
        outcome: RequestHealth,
        now: Instant,
    ) -> Option<Parked> {
        let key = health_key(runner);
        let policy = HealthPolicy::of(runner);
        let entry = self.entries.entry(key.clone()).or_insert(Entry {
            failures: 0,
            last_check: now,
        });
        if outcome.is_healthy() {
            entry.failures = 0;
            entry.last_check = now;
            return None;
        }
        entry.failures += 1;
        if entry.failures < policy.limit.max(1) {
            return None;
        }
        let why = match outcome {
            RequestHealth::ClientError => {
                "its HTTP client could not be built (check url and the tls-* files)".to_owned()
            }
            _ => "the server answers 403 Forbidden: it no longer knows this token (runner deleted, token reset or expired)".to_owned(),
        };
        Some(Parked {
            message: format!(
                "Runner \"{key}\" is unhealthy and will be disabled for {} seconds!",
                format_go_duration(policy.interval)
            ),
            fields: vec![
                ("unhealthy_requests", entry.failures.to_string()),
                ("unhealthy_requests_limit", policy.limit.to_string()),
            ],
            hint: format!(
                "runner {runner} in {config_path} is parked: {why}; remove stale entries with `forerunner verify --delete --config {config_path}`, or register it again"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner() -> RunnerConfig {
        RunnerConfig {
            name: "my-runner".into(),
            url: "https://gitlab.example.com/".into(),
            token: "glrt-t3_abcdefghijklmnopqrstu".into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_403_and_client_errors_count() {
        assert_eq!(
            RequestHealth::from_status(Some(403)),
            RequestHealth::Forbidden
        );
        for s in [
            Some(201),
            Some(204),
            Some(409),
            Some(429),
            Some(500),
            Some(503),
            None,
        ] {
            assert_eq!(
                RequestHealth::from_status(s),
                RequestHealth::Healthy,
                "{s:?}"
            );
        }
    }

    #[test]
    fn parks_after_limit_and_forces_after_interval() {
        let r = runner();
        let key = health_key(&r);
        let policy = HealthPolicy::of(&r);
        let mut h = Health::new();
        let t0 = Instant::now();
        assert_eq!(h.check(&key, policy, t0), Verdict::Healthy);
        assert!(h
            .record(&r, "/c.toml", RequestHealth::Forbidden, t0)
            .is_none());
        // Network errors and 5xx do not count and do not reset anything bad.
        assert!(h
            .record(&r, "/c.toml", RequestHealth::Forbidden, t0)
            .is_none());
        let parked = h
            .record(&r, "/c.toml", RequestHealth::Forbidden, t0)
            .expect("parked at the third 403");
        assert_eq!(
            parked.message,
            "Runner \"https://gitlab.example.com/t3_abcdef\" is unhealthy and will be disabled for 1h0m0s seconds!"
        );
        assert_eq!(parked.fields[0], ("unhealthy_requests", "3".to_owned()));
        assert!(parked
            .hint
            .contains("forerunner verify --delete --config /c.toml"));
        assert!(parked.hint.contains("\"my-runner\" (token t3_abcdef"));
        let lines = parked.lines(false);
        let mut it = lines.lines();
        assert_eq!(
            it.next().unwrap(),
            "ERROR: Runner \"https://gitlab.example.com/t3_abcdef\" is unhealthy and will be disabled for 1h0m0s seconds!  unhealthy_requests=3 unhealthy_requests_limit=3"
        );
        assert!(it.next().unwrap().starts_with(
            "ERROR: runner \"my-runner\" (token t3_abcdef, https://gitlab.example.com/) in /c.toml is parked"
        ));
        assert!(!parked.hint.contains(&r.token));
        assert_eq!(
            h.check(&key, policy, t0 + Duration::from_secs(60)),
            Verdict::Parked
        );
        assert_eq!(
            h.check(&key, policy, t0 + Duration::from_secs(3600)),
            Verdict::Parked
        );
        assert!(matches!(
            h.check(&key, policy, t0 + Duration::from_secs(3601)),
            Verdict::Forced { .. }
        ));
        assert_eq!(
            h.check(&key, policy, t0 + Duration::from_secs(3602)),
            Verdict::Healthy
        );
    }

    #[test]
    fn success_resets_and_limit_comes_from_config() {
        let mut r = runner();
        r.unhealthy_requests_limit = Some(1);
        r.unhealthy_interval = Some("10m".into());
        let key = health_key(&r);
        let policy = HealthPolicy::of(&r);
        let mut h = Health::new();
        let t0 = Instant::now();
        let parked = h.record(&r, "c", RequestHealth::ClientError, t0).unwrap();
        assert!(parked.message.ends_with("disabled for 10m0s seconds!"));
        assert_eq!(h.check(&key, policy, t0), Verdict::Parked);
        h.record(&r, "c", RequestHealth::Healthy, t0);
        assert_eq!(h.check(&key, policy, t0), Verdict::Healthy);
        h.record(&r, "c", RequestHealth::Forbidden, t0);
        h.reset();
        assert_eq!(h.check(&key, policy, t0), Verdict::Healthy);
    }
}
