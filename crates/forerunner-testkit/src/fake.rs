//! [`FakeCoordinator`]: a scripted, fault-injecting stand-in for a
//! coordinator's job API, for runner tests that need the server to fail on
//! purpose (which the real coordinator never does).
//!
//! It serves, on `127.0.0.1:0`:
//! - `POST /api/v4/jobs/request`: hands out the queued [`JobResponse`]s in
//!   order (`201`), answers `403` as often as asked, and otherwise `204` with
//!   `X-GitLab-Last-Update`; a request that carries a `last_update` is held
//!   (long polling) for the configured time, or until a job is queued, and
//!   then answered with `Gitlab-Ci-Builds-Polling: yes`.
//! - `PUT /api/v4/jobs/:id`: records the update, answers with `Job-Status`
//!   and `X-GitLab-Trace-Update-Interval`.
//! - `PATCH /api/v4/jobs/:id/trace`: GitLab's append rule — the inclusive
//!   `Content-Range` must start at the stored length, else `416` with
//!   `Range: 0-<length>`; success is `202` with `Range: 0-<new length>`.
//! - `GET` and `POST /api/v4/jobs/:id/artifacts`: downloads of stored
//!   archives (checked against the given token) and multipart uploads.
//! - `POST /api/v4/runners/reset_authentication_token`: a new `glrt-` token
//!   that expires in an hour (token rotation).
//!
//! Faults ([`Fault`]) are consumed one per trace patch or job update: a
//! status without effect, a dropped connection before or after the append,
//! a `416` although the offset is right, a `412` to the final update that
//! drops the stored trace. Job tokens are checked on every job
//! endpoint (`403` otherwise). Everything received is kept for assertions.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path, Query, State as Ctx};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::Router;
use forerunner_protocol::jobs::JobResponse;
use forerunner_protocol::trace::ContentRange;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tower::ServiceExt as _;

/// A fault to inject into the next trace patch or job update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status without storing anything.
    Status(u16),
    /// Close the connection without answering, before storing anything.
    Drop,
    /// Store the patch, then close the connection without answering.
    DropAfterAppend,
    /// Answer `416` with the current `Range`, without storing anything.
    RangeMismatch,
    /// On the next final update (`success`/`failed`; earlier updates leave
    /// it queued): forget the stored trace and answer `412`, as a server
    /// that found the trace invalid and dropped it.
    TraceReset,
}

/// One trace patch as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// When it arrived.
    pub at: Instant,
    /// `Content-Range` start.
    pub start: u64,
    /// `Content-Range` end (inclusive).
    pub end: u64,
    /// The status answered (`0`: connection dropped).
    pub status: u16,
}

/// One artifacts upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The multipart part name (`file`).
    pub part: String,
    /// Its file name.
    pub filename: String,
    /// The query parameters.
    pub query: BTreeMap<String, String>,
    /// The archive.
    pub bytes: Vec<u8>,
}

/// A job handed out, with everything the runner sent about it.
#[derive(Debug, Clone)]
pub struct FakeJob {
    /// Its job token.
    pub token: String,
    /// `running`, `canceling`, `canceled`, `success` or `failed`.
    pub status: String,
    /// The stored trace.
    pub trace: Vec<u8>,
    /// Every `PUT` body, in order.
    pub updates: Vec<Value>,
    /// Every trace patch, in order.
    pub patches: Vec<Patch>,
    /// Every artifacts upload.
    pub uploads: Vec<Upload>,
    /// When it was handed out.
    pub handed_out: Instant,
    /// When its final update (success or failed) arrived.
    pub finished: Option<Instant>,
    /// How often its trace was dropped with a `412` ([`Fault::TraceReset`]).
    pub trace_resets: usize,
}

impl FakeJob {
    /// The final update (`state` success or failed), if any arrived.
    pub fn final_update(&self) -> Option<&Value> {
        self.updates
            .iter()
            .rev()
            .find(|u| matches!(u["state"].as_str(), Some("success" | "failed")))
    }

    /// `crc32:%08x` of the stored trace.
    pub fn trace_checksum(&self) -> String {
        forerunner_protocol::trace::checksum_string(crc32(&self.trace))
    }
}

fn crc32(data: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE): the fake's own, independent of the runner's.
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[derive(Debug, Default)]
struct Scripted {
    queue: VecDeque<JobResponse>,
    forbid: usize,
    hold: Duration,
    queue_version: u64,
    requests: Vec<(Instant, Value)>,
    jobs: BTreeMap<i64, FakeJob>,
    trace_faults: VecDeque<Fault>,
    update_faults: VecDeque<Fault>,
    trace_interval: Option<u64>,
    downloads: HashMap<i64, (String, Vec<u8>)>,
    token_resets: Vec<String>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<Scripted>,
    /// A job was queued.
    queued: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Scripted> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Marks a response whose connection must be dropped instead.
#[derive(Debug, Clone, Copy)]
struct DropConnection;

fn dropped() -> Response {
    let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    r.extensions_mut().insert(DropConnection);
    r
}

/// The fake server; stops when dropped.
#[derive(Debug)]
pub struct FakeCoordinator {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCoordinator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeCoordinator {
    /// Starts the fake on `127.0.0.1:0`.
    pub async fn start() -> FakeCoordinator {
        let shared = Arc::new(Shared::default());
        let router = Router::new()
            .route("/api/v4/jobs/request", post(request_job))
            .route("/api/v4/jobs/{id}", put(update_job))
            .route("/api/v4/jobs/{id}/trace", patch(patch_trace))
            .route(
                "/api/v4/jobs/{id}/artifacts",
                get(download_artifacts).post(upload_artifacts),
            )
            .route(
                "/api/v4/runners/reset_authentication_token",
                post(reset_token),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("failed to bind the fake coordinator");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let router = router.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let router = router.clone();
                            async move {
                                let resp: Response = match router.oneshot(req.map(Body::new)).await
                                {
                                    Ok(r) => r,
                                    Err(never) => match never {},
                                };
                                if resp.extensions().get::<DropConnection>().is_some() {
                                    // hyper closes the connection without a response.
                                    return Err(std::io::Error::other("fault: dropped connection"));
                                }
                                Ok::<_, std::io::Error>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeCoordinator { url, shared, task }
    }

    /// Queues a job to hand out (in order) to job requests.
    pub fn push_job(&self, job: JobResponse) {
        {
            let mut st = self.shared.lock();
            st.queue.push_back(job);
            st.queue_version += 1;
        }
        self.shared.queued.notify_waiters();
    }

    /// Jobs queued and not handed out yet.
    pub fn queued(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// The next `n` job requests are answered `403 Forbidden`.
    pub fn forbid_job_requests(&self, n: usize) {
        self.shared.lock().forbid = n;
    }

    /// Job requests with a `last_update` are held this long when there is no
    /// job (long polling).
    pub fn hold_job_requests(&self, hold: Duration) {
        self.shared.lock().hold = hold;
    }

    /// Faults for the next trace patches, one per patch.
    pub fn inject_trace_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.lock().trace_faults.extend(faults);
    }

    /// Faults for the next job updates, one per `PUT`.
    pub fn inject_update_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.lock().update_faults.extend(faults);
    }

    /// `X-GitLab-Trace-Update-Interval` sent on trace and update answers.
    pub fn set_trace_update_interval(&self, seconds: Option<u64>) {
        self.shared.lock().trace_interval = seconds;
    }

    /// Sets a handed-out job's status (`canceling`, `canceled`, …): it is
    /// sent as `Job-Status` from now on.
    pub fn set_job_status(&self, id: i64, status: &str) {
        if let Some(job) = self.shared.lock().jobs.get_mut(&id) {
            job.status = status.to_owned();
        }
    }

    /// Makes `bytes` downloadable as the artifacts of job `id` with `token`.
    pub fn store_artifacts(&self, id: i64, token: &str, bytes: Vec<u8>) {
        self.shared
            .lock()
            .downloads
            .insert(id, (token.to_owned(), bytes));
    }

    /// Every job request body received, in order, with its arrival time.
    pub fn job_requests(&self) -> Vec<(Instant, Value)> {
        self.shared.lock().requests.clone()
    }

    /// The tokens presented to `reset_authentication_token`, in order; the
    /// n-th new token is [`rotated_token`]`(n)` (1-based).
    pub fn token_resets(&self) -> Vec<String> {
        self.shared.lock().token_resets.clone()
    }

    /// A handed-out job.
    pub fn job(&self, id: i64) -> Option<FakeJob> {
        self.shared.lock().jobs.get(&id).cloned()
    }

    /// Polls `condition` every 50 ms until it holds or `timeout` passes;
    /// returns whether it held.
    pub async fn wait_for(&self, timeout: Duration, condition: impl Fn(&Self) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if condition(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the final update of job `id` and returns the job.
    pub async fn wait_final(&self, id: i64, timeout: Duration) -> Option<FakeJob> {
        self.wait_for(timeout, |f| {
            f.job(id).is_some_and(|j| j.final_update().is_some())
        })
        .await
        .then(|| self.job(id))
        .flatten()
    }
}

fn with_headers(
    status: StatusCode,
    headers: &[(&str, String)],
    body: impl IntoResponse,
) -> Response {
    let mut r = (status, body).into_response();
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(name, value);
        }
    }
    r
}

fn forbidden(job_status: Option<&str>) -> Response {
    let headers: Vec<(&str, String)> = job_status
        .map(|s| vec![("Job-Status", s.to_owned())])
        .unwrap_or_default();
    with_headers(
        StatusCode::FORBIDDEN,
        &headers,
        axum::Json(json!({"message": "403 Forbidden"})),
    )
}

fn job_token(headers: &HeaderMap) -> Option<&str> {
    headers.get("JOB-TOKEN").and_then(|v| v.to_str().ok())
}

async fn request_job(Ctx(shared): Ctx<Arc<Shared>>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let long_poll = request["last_update"]
        .as_str()
        .is_some_and(|s| !s.is_empty());
    let hold = {
        let mut st = shared.lock();
        st.requests.push((Instant::now(), request));
        if st.forbid > 0 {
            st.forbid -= 1;
            return forbidden(None);
        }
        if long_poll {
            st.hold
        } else {
            Duration::ZERO
        }
    };
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        let queued = shared.queued.notified();
        {
            let mut st = shared.lock();
            if let Some(job) = st.queue.pop_front() {
                st.jobs.insert(
                    job.id,
                    FakeJob {
                        token: job.token.clone(),
                        status: "running".into(),
                        trace: Vec::new(),
                        updates: Vec::new(),
                        patches: Vec::new(),
                        uploads: Vec::new(),
                        handed_out: Instant::now(),
                        finished: None,
                        trace_resets: 0,
                    },
                );
                return (StatusCode::CREATED, axum::Json(job)).into_response();
            }
            if tokio::time::Instant::now() >= deadline {
                let mut headers = vec![("X-GitLab-Last-Update", st.queue_version.to_string())];
                if !hold.is_zero() {
                    headers.push(("Gitlab-Ci-Builds-Polling", "yes".into()));
                }
                return with_headers(StatusCode::NO_CONTENT, &headers, ());
            }
        }
        tokio::select! {
            _ = queued => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// The `n`-th (1-based) token handed out by `reset_authentication_token`.
pub fn rotated_token(n: usize) -> String {
    format!("glrt-t1_rotated{n:06}fromfake")
}

async fn reset_token(Ctx(shared): Ctx<Arc<Shared>>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(old) = request["token"].as_str().filter(|t| !t.is_empty()) else {
        return forbidden(None);
    };
    let n = {
        let mut st = shared.lock();
        st.token_resets.push(old.to_owned());
        st.token_resets.len()
    };
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "token": rotated_token(n),
            "token_expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })),
    )
        .into_response()
}

fn job_headers(st: &Scripted, job_status: &str, len: Option<usize>) -> Vec<(&'static str, String)> {
    let mut h = vec![("Job-Status", job_status.to_owned())];
    if let Some(s) = st.trace_interval {
        h.push(("X-GitLab-Trace-Update-Interval", s.to_string()));
    }
    if let Some(len) = len {
        h.push(("Range", format!("0-{len}")));
    }
    h
}

async fn update_job(
    Ctx(shared): Ctx<Arc<Shared>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let update: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut st = shared.lock();
    let is_final = matches!(update["state"].as_str(), Some("success" | "failed"));
    let fault = match st.update_faults.pop_front() {
        Some(Fault::TraceReset) if !is_final => {
            st.update_faults.push_front(Fault::TraceReset);
            None
        }
        fault => fault,
    };
    let Some(job) = st.jobs.get(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if job_token(&headers) != Some(job.token.as_str()) || update["token"] != job.token.as_str() {
        return forbidden(None);
    }
    match fault {
        Some(Fault::TraceReset) => {
            let status = job.status.clone();
            let h = job_headers(&st, &status, None);
            if let Some(job) = st.jobs.get_mut(&id) {
                job.trace.clear();
                job.trace_resets += 1;
            }
            return with_headers(StatusCode::PRECONDITION_FAILED, &h, ());
        }
        Some(Fault::Status(code)) => {
            return StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response()
        }
        Some(Fault::Drop) => return dropped(),
        _ => {}
    }
    let status = job.status.clone();
    if matches!(status.as_str(), "canceled" | "success" | "failed") {
        return forbidden(Some(&status));
    }
    let new_status = match update["state"].as_str() {
        Some(s @ ("success" | "failed")) => s.to_owned(),
        _ => status,
    };
    let headers = job_headers(&st, &new_status, None);
    let job = st.jobs.get_mut(&id).expect("looked up above");
    if matches!(update["state"].as_str(), Some("success" | "failed")) {
        job.finished.get_or_insert_with(Instant::now);
    }
    job.updates.push(update);
    job.status = new_status;
    with_headers(StatusCode::OK, &headers, ())
}

async fn patch_trace(
    Ctx(shared): Ctx<Arc<Shared>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = shared.lock();
    let Some(job) = st.jobs.get(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if job_token(&headers) != Some(job.token.as_str()) {
        return forbidden(None);
    }
    let status = job.status.clone();
    if matches!(status.as_str(), "canceled" | "success" | "failed") {
        return forbidden(Some(&status));
    }
    let Some(range) = headers
        .get("Content-Range")
        .and_then(|v| v.to_str().ok())
        .and_then(ContentRange::parse)
    else {
        return (
            StatusCode::BAD_REQUEST,
            "Content-Range is missing or invalid",
        )
            .into_response();
    };
    let fault = st.trace_faults.pop_front();
    let len = st.jobs[&id].trace.len();
    let record = |st: &mut Scripted, status: u16| {
        if let Some(job) = st.jobs.get_mut(&id) {
            job.patches.push(Patch {
                at: Instant::now(),
                start: range.start,
                end: range.end,
                status,
            });
        }
    };
    match fault {
        Some(Fault::Status(code)) => {
            record(&mut st, code);
            return StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response();
        }
        Some(Fault::Drop) => {
            record(&mut st, 0);
            return dropped();
        }
        Some(Fault::RangeMismatch) => {
            record(&mut st, 416);
            let h = job_headers(&st, &status, Some(len));
            return with_headers(StatusCode::RANGE_NOT_SATISFIABLE, &h, ());
        }
        _ => {}
    }
    if range.start != len as u64 {
        record(&mut st, 416);
        let h = job_headers(&st, &status, Some(len));
        return with_headers(StatusCode::RANGE_NOT_SATISFIABLE, &h, ());
    }
    let new_len = {
        let job = st.jobs.get_mut(&id).expect("looked up above");
        job.trace.extend_from_slice(&body);
        job.trace.len()
    };
    if fault == Some(Fault::DropAfterAppend) {
        record(&mut st, 0);
        return dropped();
    }
    record(&mut st, 202);
    let h = job_headers(&st, &status, Some(new_len));
    with_headers(StatusCode::ACCEPTED, &h, ())
}

async fn download_artifacts(
    Ctx(shared): Ctx<Arc<Shared>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    let st = shared.lock();
    match st.downloads.get(&id) {
        None => StatusCode::NOT_FOUND.into_response(),
        Some((token, _)) if job_token(&headers) != Some(token.as_str()) => forbidden(None),
        Some((_, bytes)) => (StatusCode::OK, bytes.clone()).into_response(),
    }
}

async fn upload_artifacts(
    Ctx(shared): Ctx<Arc<Shared>>,
    Path(id): Path<i64>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    {
        let st = shared.lock();
        let Some(job) = st.jobs.get(&id) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        if job_token(&headers) != Some(job.token.as_str()) {
            return forbidden(None);
        }
    }
    let mut uploads = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let part = field.name().unwrap_or_default().to_owned();
                let filename = field.file_name().unwrap_or_default().to_owned();
                let Ok(bytes) = field.bytes().await else {
                    return StatusCode::BAD_REQUEST.into_response();
                };
                uploads.push(Upload {
                    part,
                    filename,
                    query: query.clone(),
                    bytes: bytes.to_vec(),
                });
            }
            Ok(None) => break,
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        }
    }
    if let Some(job) = shared.lock().jobs.get_mut(&id) {
        job.uploads.extend(uploads);
    }
    (StatusCode::CREATED, axum::Json(json!({}))).into_response()
}
