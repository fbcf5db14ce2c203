//! The job endpoints over HTTP: [`HttpJobApi`] implements the job driver's
//! [`JobApi`] (and the trace sender's [`TraceTransport`]) with
//! [`Client`], for one job.
//!
//! - `PUT /api/v4/jobs/:id`: `JOB-TOKEN` header and the token in the JSON
//!   body; the answer's status, `Job-Status` and
//!   `X-GitLab-Trace-Update-Interval` go back to the driver.
//! - `PATCH /api/v4/jobs/:id/trace?debug_trace=…`: raw bytes,
//!   `Content-Type: text/plain`, inclusive `Content-Range: start-end`; the
//!   server's `Range: 0-N` is parsed for the `416` rule.
//! - `GET /api/v4/jobs/:dep/artifacts`: with the dependency's own token,
//!   streamed to a file.
//! - `POST /api/v4/jobs/:id/artifacts`: multipart part `file` named
//!   `<name>.zip`, streamed from the archive, with `artifact_format`,
//!   `artifact_type` and `expire_in` in the query.
//!
//! `PUT` and `PATCH` get the client's official retries (408, 429, 5xx with
//! backoff). Artifact transfers have the official rules of their helpers
//! instead: `403`, `404` and `413` are final, `503` is retried up to 6
//! times, other failures up to 3. The job token never appears in an error:
//! the client redacts it, and no message here is built from it.
//!
//! It also remembers whether the coordinator has taken the job back (a
//! `403`, `404` or `Job-Status: canceled|failed`) and whether it accepted a
//! final state, so the job loop can tell a job that still needs a report
//! from one that is over on the server.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use forerunner_protocol::jobs::{
    ArtifactSpec, Dependency, JobResponse, JobState, UpdateJobRequest,
};
use forerunner_protocol::paths;
use forerunner_protocol::runners::RunnerInfo;
use forerunner_protocol::trace::{parse_range_header, ContentRange};
use reqwest::Method;
use tokio::io::AsyncWriteExt as _;

use crate::client::{backoff, Client, RetryPolicy};
use crate::job::{JobApi, UpdateReply};
use crate::job_log::sender::{PatchReply, TraceTransport};
use crate::metrics::Metrics;

/// Counts API answers in `gitlab_runner_api_request_statuses_total`, as
/// the official runner does for `request_job`, `update_job` and
/// `patch_trace`.
#[derive(Debug, Clone)]
pub struct ApiObserver {
    /// The registry.
    pub metrics: Metrics,
    /// Short token of the runner entry (`runner` label).
    pub runner: String,
    /// `system_id` label.
    pub system_id: String,
}

/// Name of the API status counter.
pub const API_REQUEST_STATUSES: &str = "gitlab_runner_api_request_statuses_total";

impl ApiObserver {
    /// Records one answer (`None`: no answer, recorded as `-1`).
    pub fn record(&self, endpoint: &str, method: &str, status: Option<u16>) {
        let status = status.map_or_else(|| "-1".to_owned(), |s| s.to_string());
        self.metrics.inc(
            API_REQUEST_STATUSES,
            "The total number of api requests, partitioned by runner, system_id, endpoint, status and method.",
            &[
                ("endpoint", endpoint),
                ("method", method),
                ("runner", &self.runner),
                ("status", &status),
                ("system_id", &self.system_id),
            ],
            1.0,
        );
    }
}

/// The job endpoints of one job over HTTP.
#[derive(Debug)]
pub struct HttpJobApi {
    client: Client,
    job_id: i64,
    token: String,
    debug_trace: bool,
    info: Option<RunnerInfo>,
    observer: Option<ApiObserver>,
    final_sent: AtomicBool,
    final_accepted: AtomicBool,
    taken_back: AtomicBool,
    /// The last reply to a `PUT` (short critical sections only).
    last_update: Mutex<Option<UpdateReply>>,
    /// The last `X-GitLab-Trace-Update-Interval` of a trace patch, in
    /// seconds (0: none yet).
    trace_interval: AtomicU64,
}

/// Header names not in the protocol crate.
const CONTENT_RANGE: &str = "Content-Range";
const RANGE: &str = "Range";

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn interval(resp: &reqwest::Response) -> Option<u64> {
    header(resp, paths::TRACE_UPDATE_INTERVAL_HEADER).and_then(|s| s.parse().ok())
}

impl HttpJobApi {
    /// The endpoints of `job` on the server `client` talks to. `info` is
    /// sent with every update, as the official runner does.
    pub fn new(client: Client, job: &JobResponse, info: Option<RunnerInfo>) -> Self {
        let debug_trace = ["CI_DEBUG_TRACE", "CI_DEBUG_SERVICES"].iter().any(|k| {
            job.variable(k)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        });
        Self {
            client,
            job_id: job.id,
            token: job.token.clone(),
            debug_trace,
            info,
            observer: None,
            final_sent: AtomicBool::new(false),
            final_accepted: AtomicBool::new(false),
            taken_back: AtomicBool::new(false),
            last_update: Mutex::new(None),
            trace_interval: AtomicU64::new(0),
        }
    }

    /// The trace update interval the coordinator last asked for in a patch
    /// reply, if any.
    pub fn trace_update_interval(&self) -> Option<Duration> {
        match self.trace_interval.load(Ordering::SeqCst) {
            0 => None,
            s => Some(Duration::from_secs(s)),
        }
    }

    /// Counts answers in the API metrics.
    pub fn with_observer(mut self, observer: ApiObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    fn record(&self, endpoint: &str, method: &str, status: Option<u16>) {
        if let Some(o) = &self.observer {
            o.record(endpoint, method, status);
        }
    }

    /// Whether the coordinator accepted a final state (`success`/`failed`)
    /// for the job, or said the job is no longer the runner's.
    pub fn final_accepted(&self) -> bool {
        self.final_accepted.load(Ordering::SeqCst)
    }

    /// Whether a final state (`success`/`failed`) was sent at least once.
    pub fn final_sent(&self) -> bool {
        self.final_sent.load(Ordering::SeqCst)
    }

    /// Whether the coordinator took the job back (`403`, `404`,
    /// `Job-Status: canceled|failed`): nothing more is to be reported.
    pub fn taken_back(&self) -> bool {
        self.taken_back.load(Ordering::SeqCst)
    }

    /// The last answer to a `PUT`, if any.
    pub fn last_update_reply(&self) -> Option<UpdateReply> {
        self.last_update
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn note_job_status(&self, status: u16, job_status: Option<&str>) {
        if matches!(status, 403 | 404) || matches!(job_status, Some("canceled" | "failed")) {
            self.taken_back.store(true, Ordering::SeqCst);
        }
    }

    /// A client that tries once: artifact transfers have their own rules.
    fn single_shot(&self) -> Client {
        self.client.clone().with_retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        })
    }
}

#[async_trait]
impl JobApi for HttpJobApi {
    async fn update(&self, update: &UpdateJobRequest) -> Result<UpdateReply, String> {
        let is_final = matches!(update.state, JobState::Success | JobState::Failed);
        if is_final {
            self.final_sent.store(true, Ordering::SeqCst);
        }
        let mut body = update.clone();
        if body.info.is_none() {
            body.info.clone_from(&self.info);
        }
        let path = format!("/api/v4/jobs/{}", self.job_id);
        let token = self.token.clone();
        let resp = self
            .client
            .send_request(Method::PUT, &path, Some(&self.token), |req| {
                req.header(paths::JOB_TOKEN_HEADER, token.as_str())
                    .json(&body)
            })
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                self.record("update_job", "put", None);
                return Err(e.to_string());
            }
        };
        let status = resp.status().as_u16();
        self.record("update_job", "put", Some(status));
        let reply = UpdateReply {
            status,
            job_status: header(&resp, paths::JOB_STATUS_HEADER),
            update_interval: interval(&resp),
        };
        self.note_job_status(status, reply.job_status.as_deref());
        if is_final && (status == 200 || self.taken_back()) {
            self.final_accepted.store(true, Ordering::SeqCst);
        }
        *self.last_update.lock().unwrap_or_else(|p| p.into_inner()) = Some(reply.clone());
        Ok(reply)
    }

    async fn patch_trace(&self, offset: u64, bytes: &[u8]) -> Result<PatchReply, String> {
        let path = format!(
            "/api/v4/jobs/{}/trace?debug_trace={}",
            self.job_id, self.debug_trace
        );
        let range = ContentRange::of(offset, bytes.len() as u64).to_string();
        let token = self.token.clone();
        let body = bytes.to_vec();
        let resp = self
            .client
            .send_request(Method::PATCH, &path, Some(&self.token), |req| {
                req.header(paths::JOB_TOKEN_HEADER, token.as_str())
                    .header(reqwest::header::CONTENT_TYPE, "text/plain")
                    .header(CONTENT_RANGE, range.as_str())
                    .body(body.clone())
            })
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                self.record("patch_trace", "patch", None);
                return Err(e.to_string());
            }
        };
        let status = resp.status().as_u16();
        self.record("patch_trace", "patch", Some(status));
        let reply = PatchReply {
            status,
            server_len: header(&resp, RANGE).and_then(|r| parse_range_header(&r)),
            job_status: header(&resp, paths::JOB_STATUS_HEADER),
            update_interval: interval(&resp),
        };
        if let Some(s) = reply.update_interval.filter(|s| *s > 0) {
            self.trace_interval.store(s, Ordering::SeqCst);
        }
        self.note_job_status(status, reply.job_status.as_deref());
        Ok(reply)
    }

    async fn download_artifacts(&self, dependency: &Dependency, to: &Path) -> Result<(), String> {
        let path = format!("/api/v4/jobs/{}/artifacts", dependency.id);
        let what = format!("artifacts of job {} ({})", dependency.name, dependency.id);
        let client = self.single_shot();
        let token = dependency.token.clone();
        let mut last = String::new();
        // The official downloader: 2 retries, 1 s apart, for anything but
        // 401/403/404.
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let resp = client
                .send_request(Method::GET, &path, Some(&dependency.token), |req| {
                    req.header(paths::JOB_TOKEN_HEADER, token.as_str())
                })
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            match resp.status().as_u16() {
                200 => match stream_to_file(resp, to).await {
                    Ok(()) => return Ok(()),
                    Err(e) => last = format!("downloading the {what} failed midway: {e}"),
                },
                401 => return Err(format!("unauthorized to download the {what} (401): the dependency's job token was refused")),
                403 => return Err(format!("forbidden to download the {what} (403): the dependency's job token was refused")),
                404 => return Err(format!("the {what} were not found (404): expired or erased? run the job that creates them again")),
                s => last = format!("downloading the {what} failed with status {s}"),
            }
        }
        Err(last)
    }

    async fn upload_artifacts(&self, spec: &ArtifactSpec, file: &Path) -> Result<(), String> {
        if !matches!(spec.artifact_format.as_str(), "" | "zip") {
            return Err(format!(
                "artifact format {:?} (type {:?}) is not supported yet: forerunner builds zip archives only",
                spec.artifact_format, spec.artifact_type
            ));
        }
        let mut query: Vec<(&str, String)> = vec![("artifact_format", "zip".to_owned())];
        if !spec.artifact_type.is_empty() {
            query.push(("artifact_type", spec.artifact_type.clone()));
        }
        if let Some(expire) = spec.expire_in.as_deref().filter(|e| !e.is_empty()) {
            query.push(("expire_in", expire.to_owned()));
        }
        let name = if spec.name.is_empty() {
            "artifacts"
        } else {
            spec.name.as_str()
        };
        let filename = format!("{name}.zip");
        let path = format!("/api/v4/jobs/{}/artifacts", self.job_id);
        let client = self.single_shot();
        let policy = RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let len = tokio::fs::metadata(file)
                .await
                .map_err(|e| format!("failed to read the archive {}: {e}", file.display()))?
                .len();
            let reader = tokio::fs::File::open(file)
                .await
                .map_err(|e| format!("failed to open the archive {}: {e}", file.display()))?;
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(reader));
            let part = reqwest::multipart::Part::stream_with_length(body, len)
                .file_name(filename.clone())
                .mime_str("application/zip")
                .map_err(|e| e.to_string())?;
            let form = Mutex::new(Some(reqwest::multipart::Form::new().part("file", part)));
            let token = self.token.clone();
            let resp = client
                .send_request(Method::POST, &path, Some(&self.token), |req| {
                    let req = req
                        .header(paths::JOB_TOKEN_HEADER, token.as_str())
                        .query(&query);
                    match form.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        Some(form) => req.multipart(form),
                        None => req,
                    }
                })
                .await;
            let (retry_limit, error) = match resp {
                Err(e) => (3, e.to_string()),
                Ok(resp) => match resp.status().as_u16() {
                    201 => return Ok(()),
                    403 => {
                        return Err(
                            "forbidden (403): the job token was refused, the job is probably over on the server"
                                .to_owned(),
                        )
                    }
                    404 => {
                        return Err(
                            "not found (404): the server does not know the job any more".to_owned(),
                        )
                    }
                    413 => {
                        return Err(format!(
                            "too large (413): the archive has {len} bytes, more than the server accepts (raise its maximum artifacts size or upload fewer files)"
                        ))
                    }
                    503 => (6, "the server is unavailable (503)".to_owned()),
                    s => (3, format!("status {s}")),
                },
            };
            if attempt >= retry_limit {
                return Err(format!("{error} (after {attempt} attempts)"));
            }
            tokio::time::sleep(backoff(attempt, &policy)).await;
        }
    }
}

impl TraceTransport for HttpJobApi {
    async fn patch(&self, offset: u64, bytes: &[u8]) -> Result<PatchReply, String> {
        self.patch_trace(offset, bytes).await
    }
}

/// Writes a response body to `to` as it arrives.
async fn stream_to_file(mut resp: reqwest::Response, to: &Path) -> Result<(), String> {
    let mut out = tokio::fs::File::create(to)
        .await
        .map_err(|e| format!("failed to create {}: {e}", to.display()))?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        out.write_all(&chunk)
            .await
            .map_err(|e| format!("failed to write {}: {e}", to.display()))?;
    }
    out.flush()
        .await
        .map_err(|e| format!("failed to write {}: {e}", to.display()))
}
