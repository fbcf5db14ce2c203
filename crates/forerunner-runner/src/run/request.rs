//! Asking for a job: the `POST /api/v4/jobs/request` body as the official
//! runner sends it, and what each answer means.
//!
//! Only `201` with a JSON job is a job; `204` is "nothing now"; `403` means
//! the server does not know the token (the health model counts it); `503`
//! and everything else are logged and tried again later. A `204` that the
//! server held (Workhorse's `Gitlab-Ci-Builds-Polling: yes`, or one that took
//! [`HELD_AFTER`] or more) was a long poll: the loop asks again at once
//! instead of sleeping `check_interval`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use forerunner_protocol::errors::ErrorBody;
use forerunner_protocol::jobs::{JobRequest, JobResponse};
use forerunner_protocol::paths;
use forerunner_protocol::runners::RunnerInfo;
use reqwest::Method;

use crate::client::Client;

/// A `204` that took at least this long was held by the server.
pub const HELD_AFTER: Duration = Duration::from_secs(2);

/// Header Workhorse sets on a `204` it held for long polling.
pub const BUILDS_POLLING_HEADER: &str = "Gitlab-Ci-Builds-Polling";

/// The features Forerunner's job driver really implements, under the
/// official names; every official name is present (`false` when not
/// implemented), as the official runner serializes them all.
///
/// Not claimed: `upload_raw_artifacts` (archives are always zip),
/// `multi_build_steps` (only `script` and `after_script` run),
/// `trace_reset` (a `412` on the final update does not resend the trace
/// from 0), `session`/`terminal`/`proxy`, `vault_secrets`, `service_*`,
/// `*_executor_opts`, `native_steps_integration`, `job_inputs`.
pub fn features(executor: &str) -> BTreeMap<String, bool> {
    let containers = executor == "docker";
    [
        ("variables", true),
        ("image", containers),
        ("services", containers),
        ("artifacts", true),
        ("cache", true),
        ("fallback_cache_keys", true),
        ("shared", executor == "shell"),
        ("upload_multiple_artifacts", true),
        ("upload_raw_artifacts", false),
        ("session", false),
        ("terminal", false),
        ("refspecs", true),
        ("masking", true),
        ("proxy", false),
        ("raw_variables", true),
        ("artifacts_exclude", true),
        ("multi_build_steps", false),
        ("trace_reset", false),
        ("trace_checksum", true),
        ("trace_size", true),
        ("vault_secrets", false),
        ("cancelable", true),
        ("return_exit_code", true),
        ("service_variables", false),
        ("service_multiple_aliases", false),
        ("image_executor_opts", false),
        ("service_executor_opts", false),
        ("cancel_gracefully", true),
        ("native_steps_integration", false),
        ("two_phase_job_commit", true),
        ("job_inputs", false),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// What the runner says about itself when asking for jobs and updating
/// them: name, version, platform, executor, shell and [`features`].
pub fn info(executor: &str, shell: &str, labels: &BTreeMap<String, String>) -> RunnerInfo {
    let mut info = crate::client::runner_info(Some(executor), Some(shell));
    info.features = Some(features(executor));
    info.config = Some(serde_json::json!({ "gpus": "" }));
    info.labels = (!labels.is_empty()).then(|| labels.clone());
    info
}

/// The request body.
pub fn body(
    token: &str,
    system_id: &str,
    last_update: Option<String>,
    info: RunnerInfo,
) -> JobRequest {
    JobRequest {
        token: token.to_owned(),
        system_id: Some(system_id.to_owned()),
        last_update,
        info: Some(info),
        session: None,
    }
}

/// What one job request brought.
#[derive(Debug)]
pub enum Answer {
    /// `201`: a job.
    Job(Box<JobResponse>),
    /// `204`: no job; `held` when the server held the request (long poll).
    NoJob {
        /// Whether the server held the request.
        held: bool,
    },
    /// `403`: the server does not know the token.
    Forbidden,
    /// `503` after the retries.
    Unavailable,
    /// Anything else (other statuses, network errors, a `201` that is not a
    /// JSON job).
    Failed,
}

/// An answer with what the log lines and the loop need.
#[derive(Debug)]
pub struct Reply {
    /// What it means.
    pub answer: Answer,
    /// The HTTP status, `None` when there was no answer.
    pub status: Option<u16>,
    /// The official `status` log field: `POST <url>: 403 Forbidden (…)` or
    /// the transport error.
    pub status_text: String,
    /// `X-GitLab-Last-Update`, when the answer had one.
    pub last_update: Option<String>,
    /// The answer's `X-Request-Id`.
    pub correlation_id: Option<String>,
    /// How long the request took.
    pub elapsed: Duration,
}

impl Reply {
    /// How long to wait before asking again, when no job came:
    /// at once after a held request (at most once a second when only the
    /// header says it was held), else `check_interval`.
    pub fn pause(&self, check_interval: Duration) -> Duration {
        match self.answer {
            Answer::NoJob { held: true } if self.elapsed >= HELD_AFTER => Duration::ZERO,
            Answer::NoJob { held: true } => Duration::from_secs(1).saturating_sub(self.elapsed),
            _ => check_interval,
        }
    }
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Sends one job request and classifies the answer.
pub async fn request_job(client: &Client, body: &JobRequest) -> Reply {
    let started = Instant::now();
    let url = format!("{}{}", client.base_url(), paths::JOBS_REQUEST);
    let sent = client
        .send(
            Method::POST,
            paths::JOBS_REQUEST,
            Some(&body.token),
            Some(body),
        )
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            return Reply {
                answer: Answer::Failed,
                status: None,
                status_text: e.to_string(),
                last_update: None,
                correlation_id: None,
                elapsed: started.elapsed(),
            }
        }
    };
    let status = resp.status();
    let code = status.as_u16();
    let last_update = header(&resp, paths::LAST_UPDATE_HEADER);
    let correlation_id = header(&resp, "X-Request-Id");
    let polling = header(&resp, BUILDS_POLLING_HEADER).is_some();
    let json = header(&resp, "Content-Type").is_some_and(|c| c.starts_with("application/json"));
    let reason = format!("{code} {}", status.canonical_reason().unwrap_or_default());
    let text = resp.text().await.unwrap_or_default();
    let mut status_text = format!("POST {url}: {reason}");
    if !status.is_success() {
        if let Some(message) = serde_json::from_str::<ErrorBody>(&text)
            .ok()
            .map(|b| b.text())
            .filter(|m| !m.is_empty() && *m != reason)
        {
            status_text.push_str(&format!(" ({message})"));
        }
    }
    let elapsed = started.elapsed();
    let answer = match code {
        201 if json => match serde_json::from_str::<JobResponse>(&text) {
            Ok(job) => Answer::Job(Box::new(job)),
            Err(e) => {
                status_text.push_str(&format!(" (the job payload is not valid: {e})"));
                Answer::Failed
            }
        },
        201 => {
            status_text.push_str(" (the answer is not JSON)");
            Answer::Failed
        }
        204 => Answer::NoJob {
            held: polling || elapsed >= HELD_AFTER,
        },
        403 => Answer::Forbidden,
        503 => Answer::Unavailable,
        _ => Answer::Failed,
    };
    Reply {
        answer,
        status: Some(code),
        status_text: crate::run::redact(&status_text, &body.token),
        last_update,
        correlation_id,
        elapsed,
    }
}

/// `url` without `user:password@`, for log lines.
pub fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_claim_only_what_the_driver_does() {
        let f = features("shell");
        for yes in [
            "variables",
            "artifacts",
            "upload_multiple_artifacts",
            "cache",
            "refspecs",
            "masking",
            "raw_variables",
            "artifacts_exclude",
            "trace_checksum",
            "trace_size",
            "cancelable",
            "cancel_gracefully",
            "return_exit_code",
            "two_phase_job_commit",
            "shared",
        ] {
            assert_eq!(f.get(yes), Some(&true), "{yes}");
        }
        for no in [
            "multi_build_steps",
            "trace_reset",
            "session",
            "terminal",
            "image",
            "services",
            "upload_raw_artifacts",
        ] {
            assert_eq!(f.get(no), Some(&false), "{no}");
        }
        assert_eq!(f.len(), 31);
    }

    #[test]
    fn body_serializes_like_the_official_runner() {
        let b = body(
            "glrt-abc",
            "s_0123456789ab",
            Some("42".into()),
            info("shell", "bash", &BTreeMap::new()),
        );
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["token"], "glrt-abc");
        assert_eq!(v["system_id"], "s_0123456789ab");
        assert_eq!(v["last_update"], "42");
        assert_eq!(v["info"]["executor"], "shell");
        assert_eq!(v["info"]["shell"], "bash");
        assert_eq!(v["info"]["features"]["cancel_gracefully"], true);
        assert_eq!(v["info"]["config"]["gpus"], "");
        assert!(v.get("session").is_none());
    }

    #[test]
    fn pauses() {
        let reply = |answer, elapsed| Reply {
            answer,
            status: Some(204),
            status_text: String::new(),
            last_update: None,
            correlation_id: None,
            elapsed,
        };
        let ci = Duration::from_secs(3);
        let held = reply(Answer::NoJob { held: true }, Duration::from_secs(50));
        assert_eq!(held.pause(ci), Duration::ZERO);
        let header_only = reply(Answer::NoJob { held: true }, Duration::from_millis(300));
        assert_eq!(header_only.pause(ci), Duration::from_millis(700));
        let quick = reply(Answer::NoJob { held: false }, Duration::from_millis(5));
        assert_eq!(quick.pause(ci), ci);
        assert_eq!(reply(Answer::Forbidden, Duration::ZERO).pause(ci), ci);
    }

    #[test]
    fn strips_credentials() {
        assert_eq!(
            without_credentials("https://gitlab-ci-token:secret@example.com/g/p.git"),
            "https://example.com/g/p.git"
        );
        assert_eq!(
            without_credentials("file:///srv/repo.git"),
            "file:///srv/repo.git"
        );
    }
}
