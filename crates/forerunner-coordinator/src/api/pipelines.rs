//! Pipelines and jobs of the REST API: `POST /projects/:id/pipeline`,
//! `GET /projects/:id/pipelines[/:pipeline_id[/jobs]]`,
//! `POST /projects/:id/pipelines/:pipeline_id/{cancel,retry}`,
//! `GET /projects/:id/jobs[/:job_id]`, `…/jobs/:job_id/trace`,
//! `POST …/jobs/:job_id/{cancel,retry,play}` and
//! `GET …/jobs/:job_id/artifacts[/*path]`.
//!
//! Reading needs read access to the project; changing needs ownership
//! (the coordinator's simple permission model, see [`crate::api::access`]).

use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use forerunner_protocol::ci as wire;

use crate::api::access;
use crate::api::auth::{BaseUrl, Caller};
use crate::api::error::{ApiError, ApiResult};
use crate::api::job_requests::archive_response;
use crate::api::manage_runners::find_project;
use crate::api::pagination::Pagination;
use crate::api::params::Params;
use crate::api::present;
use crate::api::AppState;
use crate::ci::create::PipelineRequest;
use crate::ci::files::read_zip_entry;
use crate::domain::{now, Job, JobStatus, Pipeline, PipelineVariable, Project, User};
use crate::store::JobFilter;

/// The project `id` if `user` may read it (`404 Project Not Found`).
async fn readable_project(state: &AppState, user: &User, id: &str) -> ApiResult<Project> {
    let project = find_project(state, id)
        .await?
        .ok_or(ApiError::NotFound("Project"))?;
    if !access::can_read_project(state, user, &project).await? {
        return Err(ApiError::NotFound("Project"));
    }
    Ok(project)
}

/// The project `id` if `user` owns it.
async fn owned_project(state: &AppState, user: &User, id: &str) -> ApiResult<Project> {
    let project = readable_project(state, user, id).await?;
    if !access::owns_project(state, user, &project).await? {
        return Err(ApiError::Forbidden(None));
    }
    Ok(project)
}

async fn user_entity(
    state: &AppState,
    id: Option<i64>,
    base: &BaseUrl,
) -> ApiResult<Option<forerunner_protocol::management::UserBasic>> {
    Ok(match id {
        Some(id) => state
            .store
            .users
            .user_by_id(id)
            .await?
            .map(|u| present::user_basic(&u, base)),
        None => None,
    })
}

fn detailed_status(status: JobStatus) -> wire::DetailedStatus {
    let text = match status {
        JobStatus::Success => "passed",
        JobStatus::Scheduled => "delayed",
        other => other.as_str(),
    };
    wire::DetailedStatus {
        icon: format!("status_{}", status.as_str()),
        text: text.to_owned(),
        label: text.to_owned(),
        group: status.as_str().to_owned(),
    }
}

/// `Entities::Ci::Pipeline`.
pub async fn present_pipeline(
    state: &AppState,
    project: &Project,
    p: &Pipeline,
    base: &BaseUrl,
) -> ApiResult<wire::Pipeline> {
    let duration = match (p.started_at, p.finished_at) {
        (Some(s), Some(f)) => Some((f - s).num_seconds()),
        _ => None,
    };
    Ok(wire::Pipeline {
        id: p.id,
        iid: p.iid,
        project_id: p.project_id,
        sha: p.sha.clone(),
        ref_name: p.ref_name.clone(),
        status: p.status.as_str().to_owned(),
        source: p.source.clone(),
        created_at: p.created_at,
        updated_at: p.updated_at,
        web_url: base.join(&format!("/{}/-/pipelines/{}", project.full_path, p.id)),
        name: p.name.clone(),
        before_sha: p.before_sha.clone(),
        tag: p.tag,
        user: user_entity(state, p.user_id, base).await?,
        started_at: p.started_at,
        finished_at: p.finished_at,
        duration,
        queued_duration: p.started_at.map(|s| (s - p.created_at).num_seconds()),
        coverage: None,
        detailed_status: Some(detailed_status(p.status)),
    })
}

/// `Entities::Ci::Job`.
pub async fn present_job(
    state: &AppState,
    project: &Project,
    pipeline: &Pipeline,
    job: &Job,
    base: &BaseUrl,
) -> ApiResult<wire::Job> {
    let runner = match job.runner_id {
        Some(id) => state
            .store
            .runners
            .runner_by_id(id)
            .await?
            .map(|r| wire::JobRunner {
                id: r.id,
                description: r.description.clone(),
                active: r.active,
                paused: !r.active,
                is_shared: r.runner_type == forerunner_protocol::runners::RunnerType::InstanceType,
                runner_type: r.runner_type.as_str().to_owned(),
                name: r.name.clone(),
            }),
        None => None,
    };
    let mut artifacts = Vec::new();
    if let Some(a) = &job.artifacts {
        artifacts.push(wire::JobArtifact {
            file_type: "archive".into(),
            size: a.size,
            filename: a.filename.clone(),
            file_format: Some("zip".into()),
        });
    }
    let trace_len = state.ci.trace_len(job.id).await;
    if trace_len > 0 {
        artifacts.push(wire::JobArtifact {
            file_type: "trace".into(),
            size: i64::try_from(trace_len).unwrap_or(i64::MAX),
            filename: "job.log".into(),
            file_format: None,
        });
    }
    let queued_duration = job.queued_at.map(|q| {
        let until = job.started_at.unwrap_or_else(now);
        (until - q).num_milliseconds() as f64 / 1000.0
    });
    Ok(wire::Job {
        id: job.id,
        status: job.status.as_str().to_owned(),
        stage: job.stage.clone(),
        name: job.name.clone(),
        ref_name: pipeline.ref_name.clone(),
        tag: pipeline.tag,
        coverage: None,
        allow_failure: job.allow_failure,
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        erased_at: None,
        duration: job.duration(now()),
        queued_duration,
        user: user_entity(state, job.user_id, base).await?,
        pipeline: wire::JobPipeline {
            id: pipeline.id,
            project_id: pipeline.project_id,
            ref_name: pipeline.ref_name.clone(),
            sha: pipeline.sha.clone(),
            status: pipeline.status.as_str().to_owned(),
        },
        web_url: base.join(&format!("/{}/-/jobs/{}", project.full_path, job.id)),
        artifacts_file: job.artifacts.as_ref().map(|a| wire::JobArtifactsFile {
            filename: a.filename.clone(),
            size: a.size,
        }),
        artifacts_expire_at: job.artifacts.as_ref().and_then(|a| a.expire_at),
        artifacts,
        runner,
        tag_list: job.tags.clone(),
        failure_reason: job.failure_reason.clone(),
        retried: job.retried,
        when: job.when.clone(),
    })
}

fn parse_id(text: &str) -> ApiResult<i64> {
    text.parse().map_err(|_| ApiError::RouteNotFound)
}

/// GitLab's `scope` filter of job lists: one status or an array.
fn scope_filter(params: &Params) -> ApiResult<Vec<JobStatus>> {
    let values: Vec<String> = match params.0.get("scope") {
        None => Vec::new(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(_) => {
            return Err(ApiError::InvalidParams(
                "scope does not have a valid value".into(),
            ))
        }
    };
    values
        .iter()
        .map(|v| {
            JobStatus::parse(v)
                .ok_or_else(|| ApiError::InvalidParams("scope does not have a valid value".into()))
        })
        .collect()
}

/// `POST /api/v4/projects/:id/pipeline`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let user = caller.require(&[])?.clone();
    let project = owned_project(&state, &user, &id).await?;
    let ref_name = params
        .str("ref")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::InvalidParams("ref is missing".into()))?;
    let variables: Vec<PipelineVariable> = match params.0.get("variables") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            ApiError::InvalidParams(
                "variables is invalid (expected an array of {key, value, variable_type})".into(),
            )
        })?,
    };
    let pipeline = state
        .ci
        .create_pipeline(
            &project,
            PipelineRequest {
                ref_name,
                variables,
                user_id: Some(user.id),
                source: "api".into(),
                selection: Default::default(),
            },
        )
        .await?;
    let body = present_pipeline(&state, &project, &pipeline, &base).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v4/projects/:id/pipelines`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let project = readable_project(&state, user, &id).await?;
    let pagination = Pagination::from_params(&params)?;
    let filter = JobFilter {
        statuses: match params.str("status") {
            Some(s) => vec![JobStatus::parse(&s).ok_or_else(|| {
                ApiError::InvalidParams("status does not have a valid value".into())
            })?],
            None => Vec::new(),
        },
        include_retried: false,
        ref_name: params.str("ref"),
    };
    let paged = state
        .store
        .ci
        .list_pipelines(project.id, &filter, pagination.window())
        .await?;
    let mut items = Vec::with_capacity(paged.items.len());
    for p in &paged.items {
        items.push(present_pipeline(&state, &project, p, &base).await?);
    }
    Ok(pagination.respond(&base, &uri, paged.total, items))
}

async fn find_pipeline(state: &AppState, project: &Project, id: &str) -> ApiResult<Pipeline> {
    state
        .store
        .ci
        .pipeline_by_id(parse_id(id)?)
        .await?
        .filter(|p| p.project_id == project.id)
        .ok_or(ApiError::NotFound(""))
}

/// `GET /api/v4/projects/:id/pipelines/:pipeline_id`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path((id, pipeline_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let project = readable_project(&state, user, &id).await?;
    let pipeline = find_pipeline(&state, &project, &pipeline_id).await?;
    Ok(Json(present_pipeline(&state, &project, &pipeline, &base).await?).into_response())
}

/// `POST /api/v4/projects/:id/pipelines/:pipeline_id/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path((id, pipeline_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = caller.require(&[])?.clone();
    let project = owned_project(&state, &user, &id).await?;
    let pipeline = find_pipeline(&state, &project, &pipeline_id).await?;
    state.ci.cancel_pipeline(pipeline.id).await?;
    let pipeline = find_pipeline(&state, &project, &pipeline_id).await?;
    let body = present_pipeline(&state, &project, &pipeline, &base).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `POST /api/v4/projects/:id/pipelines/:pipeline_id/retry`.
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path((id, pipeline_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = caller.require(&[])?.clone();
    let project = owned_project(&state, &user, &id).await?;
    let pipeline = find_pipeline(&state, &project, &pipeline_id).await?;
    state.ci.retry_pipeline(pipeline.id, Some(user.id)).await?;
    let pipeline = find_pipeline(&state, &project, &pipeline_id).await?;
    let body = present_pipeline(&state, &project, &pipeline, &base).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn respond_jobs(
    state: &AppState,
    project: &Project,
    pipeline_id: Option<i64>,
    base: &BaseUrl,
    uri: &axum::http::Uri,
    params: &Params,
) -> ApiResult<Response> {
    let pagination = Pagination::from_params(params)?;
    let filter = JobFilter {
        statuses: scope_filter(params)?,
        include_retried: params.str("include_retried").as_deref() == Some("true"),
        ref_name: None,
    };
    let paged = state
        .store
        .ci
        .list_jobs(project.id, pipeline_id, &filter, pagination.window())
        .await?;
    let mut pipelines: std::collections::HashMap<i64, Pipeline> = Default::default();
    let mut items = Vec::with_capacity(paged.items.len());
    for job in &paged.items {
        if !pipelines.contains_key(&job.pipeline_id) {
            if let Some(p) = state.store.ci.pipeline_by_id(job.pipeline_id).await? {
                pipelines.insert(p.id, p);
            }
        }
        let Some(pipeline) = pipelines.get(&job.pipeline_id) else {
            continue;
        };
        items.push(present_job(state, project, pipeline, job, base).await?);
    }
    Ok(pagination.respond(base, uri, paged.total, items))
}

/// `GET /api/v4/projects/:id/pipelines/:pipeline_id/jobs`.
pub async fn pipeline_jobs(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    OriginalUri(uri): OriginalUri,
    Path((id, pipeline_id)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let project = readable_project(&state, user, &id).await?;
    let pipeline = find_pipeline(&state, &project, &pipeline_id).await?;
    respond_jobs(&state, &project, Some(pipeline.id), &base, &uri, &params).await
}

/// `GET /api/v4/projects/:id/jobs`.
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let project = readable_project(&state, user, &id).await?;
    respond_jobs(&state, &project, None, &base, &uri, &params).await
}

async fn find_job(state: &AppState, project: &Project, id: &str) -> ApiResult<(Job, Pipeline)> {
    let job = state
        .store
        .ci
        .job_by_id(parse_id(id)?)
        .await?
        .filter(|j| j.project_id == project.id)
        .ok_or(ApiError::NotFound(""))?;
    let pipeline = state
        .store
        .ci
        .pipeline_by_id(job.pipeline_id)
        .await?
        .ok_or(ApiError::NotFound(""))?;
    Ok((job, pipeline))
}

/// `GET /api/v4/projects/:id/jobs/:job_id`.
pub async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path((id, job_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let project = readable_project(&state, user, &id).await?;
    let (job, pipeline) = find_job(&state, &project, &job_id).await?;
    Ok(Json(present_job(&state, &project, &pipeline, &job, &base).await?).into_response())
}

/// `GET /api/v4/projects/:id/jobs/:job_id/trace`: the log as plain text.
pub async fn trace(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, job_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let project = readable_project(&state, user, &id).await?;
    let (job, _) = find_job(&state, &project, &job_id).await?;
    let bytes = state.ci.read_trace(job.id).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response())
}

/// Which change `job_action` applies.
#[derive(Debug, Clone, Copy)]
enum Action {
    Cancel,
    Retry,
    Play,
}

async fn job_action(
    state: AppState,
    caller: Caller,
    base: BaseUrl,
    id: String,
    job_id: String,
    action: Action,
) -> ApiResult<Response> {
    let user = caller.require(&[])?.clone();
    let project = owned_project(&state, &user, &id).await?;
    let (job, _) = find_job(&state, &project, &job_id).await?;
    let result_id = match action {
        Action::Cancel => {
            state.ci.cancel_job(&job).await?;
            job.id
        }
        Action::Retry => state.ci.retry_job(&job, Some(user.id)).await?.id,
        Action::Play => {
            state
                .ci
                .play_job(&job, Some(user.id))
                .await
                .map_err(|e| match e {
                    crate::ci::CiError::NotAllowed(text) => ApiError::BadRequest(text),
                    other => other.into(),
                })?;
            job.id
        }
    };
    let (job, pipeline) = find_job(&state, &project, &result_id.to_string()).await?;
    let body = present_job(&state, &project, &pipeline, &job, &base).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `POST /api/v4/projects/:id/jobs/:job_id/cancel`.
pub async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path((id, job_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    job_action(state, caller, base, id, job_id, Action::Cancel).await
}

/// `POST /api/v4/projects/:id/jobs/:job_id/retry`.
pub async fn retry_job(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path((id, job_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    job_action(state, caller, base, id, job_id, Action::Retry).await
}

/// `POST /api/v4/projects/:id/jobs/:job_id/play`.
pub async fn play_job(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path((id, job_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    job_action(state, caller, base, id, job_id, Action::Play).await
}

/// `GET /api/v4/projects/:id/jobs/:job_id/artifacts`: the zip archive.
pub async fn artifacts(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, job_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let project = readable_project(&state, user, &id).await?;
    let (job, _) = find_job(&state, &project, &job_id).await?;
    archive_response(&state, &job).await
}

/// `GET /api/v4/projects/:id/jobs/:job_id/artifacts/*artifact_path`: one
/// file out of the archive.
pub async fn artifact_file(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, job_id, path)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let project = readable_project(&state, user, &id).await?;
    let (job, _) = find_job(&state, &project, &job_id).await?;
    if job.artifacts.is_none() {
        return Err(ApiError::NotFound(""));
    }
    let archive = state.ci.archive_path(job.id);
    let entry = tokio::task::spawn_blocking(move || read_zip_entry(&archive, &path))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??
        .ok_or(ApiError::NotFound(""))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], entry).into_response())
}
