//! The runner job API (`shared/research/server-api.md` §6): `POST
//! /jobs/request` with long polling, `PUT /jobs/:id`, `PATCH
//! /jobs/:id/trace`, `POST /jobs/:id/artifacts` and `GET
//! /jobs/:id/artifacts`.
//!
//! Long polling: a request that finds no job is held up to
//! [`crate::config::CiSettings::long_poll_timeout`] and answered as soon as a
//! job it may run becomes pending (every enqueue bumps the queue version and
//! wakes the waiters). A `last_update` that differs from the current version
//! means the runner has not seen the latest queue and is answered at once.
//! `204` answers carry the version as `X-GitLab-Last-Update`.

use std::collections::BTreeSet;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use forerunner_protocol::failure::FailureReason;
use forerunner_protocol::paths::{
    JOB_STATUS_HEADER, JOB_TOKEN_HEADER, LAST_UPDATE_HEADER, TRACE_UPDATE_INTERVAL_HEADER,
};
use forerunner_protocol::tokens::{short_token, JOB_TOKEN_PREFIX};
use forerunner_protocol::trace::{range_header, ContentRange};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use crate::api::auth::{authenticate_runner, BaseUrl, ClientIp};
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::api::runners::{lenient_info, LEGACY_SYSTEM_ID};
use crate::api::AppState;
use crate::ci::files::Append;
use crate::ci::payload::dependencies_of;
use crate::ci::progress::Outcome;
use crate::ci::queue::Pick;
use crate::ci::CiError;
use crate::domain::{digest, now, Job, JobStatus, ManagerHeartbeat, Secret};

impl From<CiError> for ApiError {
    fn from(err: CiError) -> Self {
        match err {
            CiError::Invalid(text) => ApiError::BadRequest(text),
            CiError::NotAllowed(text) => ApiError::forbidden(text),
            CiError::Rejected(messages) => base_errors(messages),
            CiError::Config(diagnostics) => base_errors(crate::ci::config_errors(&diagnostics)),
            CiError::NotCreated(reason) => {
                base_errors(vec![crate::ci::not_created_message(reason).to_owned()])
            }
            CiError::Selection(err) => ApiError::BadRequest(err.to_string()),
            CiError::Store(err) => err.into(),
            CiError::Other(err) => ApiError::Internal(err),
        }
    }
}

/// GitLab's `400 {"message":{"base":[…]}}`.
fn base_errors(messages: Vec<String>) -> ApiError {
    let mut map = serde_json::Map::new();
    map.insert("base".into(), json!(messages));
    ApiError::Validation(map)
}

/// Seconds during which a runner's earlier contact makes recording a new
/// one unnecessary.
const HEARTBEAT_INTERVAL_SECS: i64 = 5;

fn no_job(version: String) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&version) {
        resp.headers_mut().insert(LAST_UPDATE_HEADER, v);
    }
    resp
}

/// `POST /api/v4/jobs/request`.
pub async fn request(
    State(state): State<AppState>,
    base: BaseUrl,
    ClientIp(ip): ClientIp,
    mut params: Params,
) -> ApiResult<Response> {
    let info = lenient_info(params.take("info"));
    let token = params.str("token").unwrap_or_default();
    let runner = authenticate_runner(&state, &token).await?;
    let system_id = params
        .str("system_id")
        .filter(|s| !s.is_empty() && s.chars().count() <= 64)
        .unwrap_or_else(|| LEGACY_SYSTEM_ID.to_owned());
    let features: BTreeSet<String> = info
        .features
        .iter()
        .flatten()
        .filter(|(_, on)| **on)
        .map(|(name, _)| name.clone())
        .collect();
    // Like GitLab, contacts are not written on every poll: a runner seen in
    // the last few seconds is known to be alive (and the job queue's
    // writes stay the only ones on the hot path).
    let seen_recently = runner
        .contacted_at
        .is_some_and(|at| now() - at < chrono::Duration::seconds(HEARTBEAT_INTERVAL_SECS));
    if !seen_recently {
        state
            .store
            .runners
            .heartbeat(
                runner.id,
                ManagerHeartbeat {
                    system_id,
                    version: info.version,
                    revision: info.revision,
                    platform: info.platform,
                    architecture: info.architecture,
                    executor: info.executor,
                    ip_address: ip,
                },
                now(),
            )
            .await?;
    }
    let queue = state.ci.queue();
    let mut changes = queue.subscribe();
    let last_update = params.str("last_update");
    let hold = last_update.is_none_or(|v| v == queue.version()) && runner.active;
    let deadline = Instant::now() + state.ci.settings().long_poll_timeout;
    loop {
        let version = queue.version();
        let secret = Secret::generate(JOB_TOKEN_PREFIX);
        match queue
            .pick(&state.store, &runner, &features, &secret.digest(), now())
            .await?
        {
            Pick::Job(job_id) => {
                let job = state
                    .store
                    .ci
                    .job_by_id(job_id)
                    .await?
                    .ok_or(ApiError::RecordNotFound)?;
                let payload = state
                    .ci
                    .payload(&job, &runner, secret.expose(), &base.0)
                    .await?;
                tracing::info!(
                    job_id,
                    runner_id = runner.id,
                    token = %secret.short(),
                    "job picked"
                );
                return Ok((StatusCode::CREATED, Json(payload)).into_response());
            }
            Pick::Conflict => {
                return Err(ApiError::Message(
                    StatusCode::CONFLICT,
                    "409 Conflict".into(),
                ))
            }
            Pick::Nothing if !hold => return Ok(no_job(version)),
            Pick::Nothing => {}
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return Ok(no_job(queue.version()));
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => return Ok(no_job(queue.version())),
            () = state.shutdown.cancelled() => return Ok(no_job(queue.version())),
        }
    }
}

/// The job token of a request: `JOB-TOKEN` header, else the `token`
/// parameter.
fn job_token(headers: &HeaderMap, params: Option<&Params>, query: Option<&str>) -> Option<String> {
    headers
        .get(JOB_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| params.and_then(|p| p.str("token")))
        .or_else(|| Params::from_query(query).ok().and_then(|p| p.str("token")))
        .filter(|t| !t.is_empty())
}

/// The job `id` if `token` is its token (`403 Forbidden` otherwise).
async fn job_with_token(state: &AppState, id: i64, token: Option<String>) -> ApiResult<Job> {
    let token = token.ok_or(ApiError::Forbidden(None))?;
    let job = state
        .store
        .ci
        .job_by_id(id)
        .await?
        .ok_or(ApiError::NotFound(""))?;
    match state.store.ci.job_by_token(&digest(&token)).await? {
        Some(owner) if owner.id == job.id => Ok(job),
        _ => {
            tracing::debug!(job_id = id, token = %short_token(&token), "job token refused");
            Err(ApiError::Forbidden(None))
        }
    }
}

fn with_status(mut resp: Response, status: JobStatus) -> Response {
    resp.headers_mut()
        .insert(JOB_STATUS_HEADER, HeaderValue::from_static(status.as_str()));
    resp
}

fn not_processing(status: JobStatus) -> Response {
    with_status(
        ApiError::forbidden("Job is not processing on runner").into_response(),
        status,
    )
}

/// `PUT /api/v4/jobs/:id`.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<Response> {
    let job = job_with_token(&state, id, job_token(&headers, Some(&params), None)).await?;
    if !job.status.is_executing() {
        return Ok(not_processing(job.status));
    }
    state.store.ci.touch_job(job.id, now()).await?;
    let interval = state.ci.settings().trace_update_interval.to_string();
    let status = params.str("state").unwrap_or_default();
    let outcome = match status.as_str() {
        "running" | "pending" | "" => {
            return Ok(with_status(StatusCode::OK.into_response(), job.status));
        }
        "success" => Outcome::Success,
        "failed" => {
            let reason = params
                .str("failure_reason")
                .filter(|r| FailureReason::ADVERTISED.contains(&r.as_str()))
                .unwrap_or_else(|| "unknown_failure".into());
            let exit_code = params.str("exit_code").and_then(|c| c.parse().ok());
            Outcome::Failed { reason, exit_code }
        }
        other => {
            return Err(ApiError::InvalidParams(format!(
                "state does not have a valid value ({other:?}; expected running, success or failed)"
            )))
        }
    };
    let bytesize = params
        .0
        .get("output")
        .and_then(|o| o.get("bytesize"))
        .and_then(|b| {
            b.as_u64()
                .or_else(|| b.as_str().and_then(|s| s.parse().ok()))
        });
    if let Some(expected) = bytesize {
        if state.ci.trace_len(job.id).await < expected {
            let mut resp = with_status(StatusCode::ACCEPTED.into_response(), job.status);
            resp.headers_mut().insert(
                TRACE_UPDATE_INTERVAL_HEADER,
                HeaderValue::from_str(&interval).unwrap_or(HeaderValue::from_static("3")),
            );
            return Ok(resp);
        }
    }
    let final_status = match state.ci.finish_job(&job, outcome).await {
        Ok(s) => s,
        Err(CiError::NotAllowed(_)) => {
            let current = state
                .store
                .ci
                .job_by_id(job.id)
                .await?
                .map_or(job.status, |j| j.status);
            return Ok(not_processing(current));
        }
        Err(err) => return Err(err.into()),
    };
    tracing::info!(
        job_id = job.id,
        status = final_status.as_str(),
        "job finished"
    );
    Ok(with_status(StatusCode::OK.into_response(), final_status))
}

/// `PATCH /api/v4/jobs/:id/trace`.
pub async fn patch_trace(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> ApiResult<Response> {
    let job = job_with_token(&state, id, job_token(&headers, None, uri.query())).await?;
    if !job.status.is_executing() {
        return Ok(not_processing(job.status));
    }
    let Some(range) = headers.get(header::CONTENT_RANGE) else {
        return Err(ApiError::InvalidParams(
            "400 Missing header Content-Range".into(),
        ));
    };
    let current = state.ci.trace_len(job.id).await;
    let unsatisfiable = |len: u64| {
        let mut resp = (
            StatusCode::RANGE_NOT_SATISFIABLE,
            Json(json!({"message": "416 Range Not Satisfiable"})),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&range_header(len)) {
            resp.headers_mut().insert(header::RANGE, v);
        }
        with_status(resp, job.status)
    };
    let Some(range) = range.to_str().ok().and_then(ContentRange::parse) else {
        return Ok(unsatisfiable(current));
    };
    if range.len() != body.len() as u64 {
        return Ok(unsatisfiable(current));
    }
    let len = match state.ci.append_trace(job.id, range.start, &body).await? {
        Append::Done(len) => len,
        Append::Mismatch(len) => return Ok(unsatisfiable(len)),
    };
    state.store.ci.touch_job(job.id, now()).await?;
    let status = state
        .store
        .ci
        .job_by_id(job.id)
        .await?
        .map_or(job.status, |j| j.status);
    let mut resp = with_status(StatusCode::ACCEPTED.into_response(), status);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&range_header(len)) {
        h.insert(header::RANGE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&state.ci.settings().trace_update_interval.to_string()) {
        h.insert(TRACE_UPDATE_INTERVAL_HEADER, v);
    }
    Ok(resp)
}

fn too_large() -> ApiError {
    ApiError::Message(
        StatusCode::PAYLOAD_TOO_LARGE,
        "413 Request Entity Too Large".into(),
    )
}

/// `POST /api/v4/jobs/:id/artifacts` (multipart, part `file`).
pub async fn upload_artifacts(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    request: Request,
) -> ApiResult<Response> {
    let max = state.ci.settings().max_artifacts_size;
    let headers = request.headers().clone();
    let query = Params::from_query(request.uri().query())?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max.saturating_add(64 * 1024)) {
        return Err(too_large());
    }
    let early_token = job_token(&headers, Some(&query), None);
    // Nothing touches the disk for a job that does not exist, or for a
    // token (when given up front) that is not the job's.
    match &early_token {
        Some(token) => {
            job_with_token(&state, id, Some(token.clone())).await?;
        }
        None => {
            state
                .store
                .ci
                .job_by_id(id)
                .await?
                .ok_or(ApiError::NotFound(""))?;
        }
    }
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::InvalidParams(format!("malformed multipart body: {e}")))?;
    let dir = state.ci.artifacts_dir(id);
    tokio::fs::create_dir_all(&dir).await.map_err(|e| {
        ApiError::Internal(anyhow::anyhow!("failed to create {}: {e}", dir.display()))
    })?;
    let upload = dir.join(format!("upload-{}.part", rand::random::<u64>()));
    let mut fields = query.clone();
    let mut size: Option<u64> = None;
    let malformed = |e: axum::extract::multipart::MultipartError| {
        ApiError::InvalidParams(format!("malformed multipart body: {e}"))
    };
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let mut out = tokio::fs::File::create(&upload)
                .await
                .map_err(|e| ApiError::Internal(e.into()))?;
            let mut written = 0u64;
            while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                written += chunk.len() as u64;
                if written > max {
                    drop(out);
                    let _ = tokio::fs::remove_file(&upload).await;
                    return Err(too_large());
                }
                out.write_all(&chunk)
                    .await
                    .map_err(|e| ApiError::Internal(e.into()))?;
            }
            out.flush()
                .await
                .map_err(|e| ApiError::Internal(e.into()))?;
            size = Some(written);
        } else {
            let text = field.text().await.map_err(malformed)?;
            fields.0.insert(name, serde_json::Value::String(text));
        }
    }
    let result = async {
        let token = early_token.or_else(|| fields.str("token"));
        let job = job_with_token(&state, id, token).await?;
        if !job.status.is_executing() {
            return Ok(not_processing(job.status));
        }
        let Some(size) = size else {
            return Err(ApiError::InvalidParams("file is missing".into()));
        };
        let kind = fields
            .str("artifact_type")
            .unwrap_or_else(|| "archive".into());
        let format = fields
            .str("artifact_format")
            .unwrap_or_else(|| "zip".into());
        if !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ApiError::InvalidParams(
                "artifact_type does not have a valid value".into(),
            ));
        }
        let target = if kind == "archive" {
            state.ci.archive_path(job.id)
        } else {
            dir.join(format!("{kind}.{format}"))
        };
        tokio::fs::rename(&upload, &target)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        if kind == "archive" {
            let expire_at = fields
                .str("expire_in")
                .and_then(|e| parse_expire_in(&e))
                .map(|secs| now() + chrono::Duration::seconds(secs));
            state
                .store
                .ci
                .set_job_artifacts(
                    job.id,
                    "artifacts.zip",
                    i64::try_from(size).unwrap_or(i64::MAX),
                    expire_at,
                )
                .await?;
        }
        state.store.ci.touch_job(job.id, now()).await?;
        tracing::info!(job_id = job.id, kind, size, "artifacts uploaded");
        Ok((StatusCode::CREATED, Json(json!({}))).into_response())
    }
    .await;
    let _ = tokio::fs::remove_file(&upload).await;
    result
}

/// Seconds of an `expire_in` such as `7d`, `1 week`, `30 minutes`, `3600`;
/// `None` for `never` or anything not understood (no expiry).
pub fn parse_expire_in(text: &str) -> Option<i64> {
    let text = text.trim().to_ascii_lowercase();
    if let Ok(secs) = text.parse::<i64>() {
        return Some(secs);
    }
    let mut total = 0i64;
    let mut number = String::new();
    let mut unit = String::new();
    let mut flush = |number: &mut String, unit: &mut String| -> Option<()> {
        if number.is_empty() {
            return if unit.is_empty() { Some(()) } else { None };
        }
        let n: i64 = number.parse().ok()?;
        let factor = match unit.trim_end_matches('s') {
            "" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hr" | "hour" => 3600,
            "d" | "day" => 86_400,
            "w" | "wk" | "week" => 604_800,
            "mo" | "month" => 2_592_000,
            "y" | "yr" | "year" => 31_536_000,
            _ => return None,
        };
        total += n * factor;
        number.clear();
        unit.clear();
        Some(())
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !unit.is_empty() {
                flush(&mut number, &mut unit)?;
            }
            number.push(c);
        } else if c.is_ascii_alphabetic() {
            unit.push(c);
        } else if c == ' ' || c == ',' {
            continue;
        } else {
            return None;
        }
    }
    flush(&mut number, &mut unit)?;
    (total > 0).then_some(total)
}

/// The archive of `job` as a download response.
pub async fn archive_response(state: &AppState, job: &Job) -> ApiResult<Response> {
    if job.artifacts.is_none() {
        return Err(ApiError::NotFound(""));
    }
    let bytes = tokio::fs::read(state.ci.archive_path(job.id))
        .await
        .map_err(|_| ApiError::NotFound(""))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"artifacts.zip\"".to_owned(),
            ),
        ],
        Body::from(bytes),
    )
        .into_response())
}

/// `GET /api/v4/jobs/:id/artifacts`: with the token of the job itself or
/// of a running job of the same pipeline that depends on it.
pub async fn download_artifacts(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let token = job_token(&headers, None, uri.query()).ok_or(ApiError::Unauthorized)?;
    let job = state
        .store
        .ci
        .job_by_id(id)
        .await?
        .ok_or(ApiError::NotFound(""))?;
    let holder = state
        .store
        .ci
        .job_by_token(&digest(&token))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let allowed = holder.id == job.id
        || (holder.status.is_executing() && holder.pipeline_id == job.pipeline_id && {
            let jobs = state.store.ci.pipeline_jobs(job.pipeline_id).await?;
            dependencies_of(&holder, &jobs)
                .iter()
                .any(|d| d.id == job.id)
        });
    if !allowed {
        tracing::debug!(
            job_id = id,
            holder = holder.id,
            "artifacts download refused"
        );
        return Err(ApiError::Forbidden(None));
    }
    archive_response(&state, &job).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expire_in_forms() {
        assert_eq!(parse_expire_in("7d"), Some(7 * 86_400));
        assert_eq!(parse_expire_in("1 week"), Some(604_800));
        assert_eq!(parse_expire_in("1h 30m"), Some(5400));
        assert_eq!(parse_expire_in("3600"), Some(3600));
        assert_eq!(parse_expire_in("never"), None);
        assert_eq!(parse_expire_in("soon"), None);
    }
}
