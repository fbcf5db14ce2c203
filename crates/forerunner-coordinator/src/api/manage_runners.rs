//! Runner management with a personal access token (§5): `GET /runners`,
//! `GET /runners/all`, `GET/PUT/DELETE /runners/:id`,
//! `GET /runners/:id/managers`, `POST /runners/:id/reset_authentication_token`,
//! `GET/POST/DELETE /projects/:id/runners` and `GET /groups/:id/runners`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use forerunner_protocol::management::{AssignRunnerRequest, RunnerListQuery};
use forerunner_protocol::runners::{RunnerAttributes, RunnerType};

use crate::api::access;
use crate::api::auth::{BaseUrl, Caller};
use crate::api::error::{ApiError, ApiResult};
use crate::api::pagination::Pagination;
use crate::api::params::Params;
use crate::api::present;
use crate::api::runners::{check_params, model_errors, reset_token_of};
use crate::api::AppState;
use crate::domain::{
    now, Group, Project, Runner, RunnerFilter, RunnerScope, RunnerUpdate, Scope, StatusFilter, User,
};

/// Which `scope` values a list endpoint accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scopes {
    /// Statuses only (`GET /runners`).
    Statuses,
    /// Statuses, types, `specific` and `shared`.
    All,
    /// `scope` is not declared and ignored (`GET /groups/:id/runners`).
    Ignored,
}

/// Builds a runner filter from `type`, `status`, `paused`, `tag_list` and
/// (deprecated) `scope`.
fn filter_from(params: &Params, scope: RunnerScope, scopes: Scopes) -> ApiResult<RunnerFilter> {
    let q: RunnerListQuery = params.parse()?;
    let mut filter = RunnerFilter::new(scope);
    if let Some(t) = q.runner_type.as_deref().filter(|s| !s.is_empty()) {
        filter.types = vec![RunnerType::parse(t)
            .ok_or_else(|| ApiError::InvalidParams("type does not have a valid value".into()))?];
    }
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        filter.status =
            Some(StatusFilter::parse(s).ok_or_else(|| {
                ApiError::InvalidParams("status does not have a valid value".into())
            })?);
    }
    filter.active = q.paused.map(|p| !p);
    filter.tags = q.tag_list.unwrap_or_default();
    if let Some(scope) = q.scope.as_deref().filter(|s| !s.is_empty()) {
        if scopes != Scopes::Ignored {
            let invalid = || {
                ApiError::Message(
                    StatusCode::BAD_REQUEST,
                    "Scope contains invalid value".into(),
                )
            };
            if let Some(status) = StatusFilter::parse(scope) {
                filter.status = Some(status);
            } else if scopes == Scopes::Statuses {
                return Err(invalid());
            } else if let Some(t) = RunnerType::parse(scope) {
                filter.types = vec![t];
            } else if scope == "specific" {
                filter.types = vec![RunnerType::GroupType, RunnerType::ProjectType];
            } else if scope == "shared" {
                filter.types = vec![RunnerType::InstanceType];
            } else {
                return Err(invalid());
            }
        }
    }
    Ok(filter)
}

async fn list(
    state: &AppState,
    base: &BaseUrl,
    uri: &axum::http::Uri,
    params: &Params,
    filter: RunnerFilter,
) -> ApiResult<Response> {
    let pagination = Pagination::from_params(params)?;
    let now = now();
    let paged = state
        .store
        .runners
        .list_runners(&filter, now, pagination.window())
        .await?;
    let mut creators = HashMap::new();
    for id in paged.items.iter().filter_map(|r| r.creator_id) {
        if let Entry::Vacant(slot) = creators.entry(id) {
            slot.insert(state.store.users.user_by_id(id).await?);
        }
    }
    let items = paged
        .items
        .iter()
        .map(|r| {
            let creator = r.creator_id.and_then(|id| creators.get(&id)?.as_ref());
            present::runner(r, creator, base, now)
        })
        .collect();
    Ok(pagination.respond(base, uri, paged.total, items))
}

/// The user who created `runner`, if known.
async fn creator(state: &AppState, runner: &Runner) -> ApiResult<Option<User>> {
    Ok(match runner.creator_id {
        Some(id) => state.store.users.user_by_id(id).await?,
        None => None,
    })
}

/// `GET /api/v4/runners`: runners of the groups and projects the caller owns.
pub async fn list_owned(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult<Response> {
    let user = caller.require(&[Scope::ManageRunner])?;
    let filter = filter_from(&params, RunnerScope::OwnedBy(user.id), Scopes::Statuses)?;
    list(&state, &base, &uri, &params, filter).await
}

/// `GET /api/v4/runners/all`: every runner (administrators).
pub async fn list_all(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let filter = filter_from(&params, RunnerScope::All, Scopes::All)?;
    list(&state, &base, &uri, &params, filter).await
}

/// Parses a numeric path id; anything else is the catch-all 404.
fn path_id(raw: &str) -> ApiResult<i64> {
    raw.parse().map_err(|_| ApiError::RouteNotFound)
}

/// The runner `id` if the caller may read it.
async fn readable_runner(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Runner> {
    let user = caller.require(&[Scope::ManageRunner])?;
    let runner = state
        .store
        .runners
        .runner_by_id(path_id(id)?)
        .await?
        .ok_or(ApiError::RecordNotFound)?;
    if !access::can_read_runner(state, user, &runner).await? {
        return Err(ApiError::forbidden("No access granted"));
    }
    Ok(runner)
}

/// The runner `id` if the caller may change it.
async fn manageable_runner(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Runner> {
    let user = caller.require(&[Scope::ManageRunner])?;
    let runner = state
        .store
        .runners
        .runner_by_id(path_id(id)?)
        .await?
        .ok_or(ApiError::RecordNotFound)?;
    if !access::can_manage_runner(state, user, &runner).await? {
        return Err(ApiError::Forbidden(None));
    }
    Ok(runner)
}

/// `RunnerDetails` of `runner`; the maintenance note only for those who may
/// change the runner, as GitLab shows it.
async fn details(
    state: &AppState,
    caller: &Caller,
    base: &BaseUrl,
    runner: &Runner,
) -> ApiResult<Response> {
    let managers = state.store.runners.managers(runner.id).await?;
    let mut projects = Vec::new();
    for id in &runner.project_ids {
        if let Some(p) = state.store.namespaces.project_by_id(*id).await? {
            projects.push(p);
        }
    }
    let group = match runner.group_id {
        Some(id) => state.store.namespaces.group_by_id(id).await?,
        None => None,
    };
    let creator = creator(state, runner).await?;
    let mut body = present::runner_details(
        runner,
        creator.as_ref(),
        &managers,
        &projects,
        group.as_ref(),
        base,
        now(),
    );
    if !access::can_manage_runner(state, &caller.auth.user, runner).await? {
        body.maintenance_note = None;
    }
    Ok(Json(body).into_response())
}

/// `GET /api/v4/runners/:id`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let runner = readable_runner(&state, &caller, &id).await?;
    details(&state, &caller, &base, &runner).await
}

/// `PUT /api/v4/runners/:id`.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let runner = manageable_runner(&state, &caller, &id).await?;
    // The parameters of `PUT /runners/:id` are the runner attributes of
    // registration, without the deprecated `maintainer_note` alias.
    let mut req: RunnerAttributes = params.parse()?;
    req.maintainer_note = None;
    let attrs = check_params(&req)?;
    let update = RunnerUpdate {
        description: attrs.description,
        active: attrs.active,
        tags: attrs.tags,
        run_untagged: attrs.run_untagged,
        locked: attrs.locked,
        access_level: attrs.access_level,
        maximum_timeout: attrs.maximum_timeout,
        maintenance_note: attrs.maintenance_note,
    };
    if update.is_empty() {
        return Err(ApiError::InvalidParams(
            "description, active, paused, tag_list, run_untagged, locked, access_level, maximum_timeout, maintenance_note are missing, at least one parameter must be provided".into(),
        ));
    }
    let errors = model_errors(
        update.tags.as_deref().unwrap_or(&runner.tags),
        update.run_untagged.unwrap_or(runner.run_untagged),
        update.maximum_timeout.or(runner.maximum_timeout),
        update
            .maintenance_note
            .as_deref()
            .or(runner.maintenance_note.as_deref()),
    );
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let runner = state.store.runners.update_runner(runner.id, update).await?;
    tracing::info!(runner_id = runner.id, "updated runner");
    details(&state, &caller, &base, &runner).await
}

/// `DELETE /api/v4/runners/:id`.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let runner = manageable_runner(&state, &caller, &id).await?;
    if runner.project_ids.len() > 1 && !caller.auth.user.is_admin {
        return Err(ApiError::forbidden(
            "Runner associated with more than one project",
        ));
    }
    state.store.runners.delete_runner(runner.id).await?;
    tracing::info!(runner_id = runner.id, user = %caller.auth.user.username, "deleted runner");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v4/runners/:id/managers`.
pub async fn managers(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let runner = readable_runner(&state, &caller, &id).await?;
    let now = now();
    let managers: Vec<_> = state
        .store
        .runners
        .managers(runner.id)
        .await?
        .iter()
        .map(|m| present::manager(m, now))
        .collect();
    Ok(Json(managers).into_response())
}

/// `POST /api/v4/runners/:id/reset_authentication_token`.
pub async fn reset_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let runner = manageable_runner(&state, &caller, &id).await?;
    reset_token_of(&state, &runner).await
}

/// Looks a project up by numeric id or URL-encoded full path.
pub async fn find_project(state: &AppState, id: &str) -> ApiResult<Option<Project>> {
    Ok(match id.parse::<i64>() {
        Ok(n) => state.store.namespaces.project_by_id(n).await?,
        Err(_) => state.store.namespaces.project_by_full_path(id).await?,
    })
}

/// Looks a group up by numeric id or URL-encoded full path.
pub async fn find_group(state: &AppState, id: &str) -> ApiResult<Option<Group>> {
    Ok(match id.parse::<i64>() {
        Ok(n) => state.store.namespaces.group_by_id(n).await?,
        Err(_) => state.store.namespaces.group_by_full_path(id).await?,
    })
}

/// The project `id` if the caller owns it (`404 Project Not Found` otherwise,
/// as GitLab hides projects one may not see).
async fn owned_project(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Project> {
    let user = caller.require(&[])?;
    let project = find_project(state, id)
        .await?
        .ok_or(ApiError::NotFound("Project"))?;
    if !access::can_read_project(state, user, &project).await? {
        return Err(ApiError::NotFound("Project"));
    }
    if !access::owns_project(state, user, &project).await? {
        return Err(ApiError::Forbidden(None));
    }
    Ok(project)
}

/// `GET /api/v4/projects/:id/runners`: runners the project may use.
pub async fn list_for_project(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let project = owned_project(&state, &caller, &id).await?;
    let group_ids = match (project.group_id, project.group_runners_enabled) {
        (Some(group_id), true) => state
            .store
            .namespaces
            .group_and_ancestors(group_id)
            .await?
            .iter()
            .map(|g| g.id)
            .collect(),
        _ => Vec::new(),
    };
    let scope = RunnerScope::AvailableTo {
        project_id: Some(project.id),
        group_ids,
        instance: project.shared_runners_enabled,
    };
    let filter = filter_from(&params, scope, Scopes::All)?;
    list(&state, &base, &uri, &params, filter).await
}

/// `POST /api/v4/projects/:id/runners`: assigns a project runner to one more
/// project.
pub async fn assign_to_project(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let project = owned_project(&state, &caller, &id).await?;
    let req: AssignRunnerRequest = params.parse()?;
    let runner_id = req
        .runner_id
        .ok_or_else(|| ApiError::InvalidParams("runner_id is missing".into()))?;
    let runner = state
        .store
        .runners
        .runner_by_id(runner_id)
        .await?
        .ok_or(ApiError::NotFound("Runner"))?;
    let user = &caller.auth.user;
    match runner.runner_type {
        RunnerType::GroupType => return Err(ApiError::forbidden("Runner is a group runner")),
        RunnerType::InstanceType => {
            return Err(ApiError::Message(
                StatusCode::BAD_REQUEST,
                "runner is not a project runner - not_project_runner".into(),
            ))
        }
        RunnerType::ProjectType => {}
    }
    if !user.is_admin {
        if runner.locked {
            return Err(ApiError::forbidden("Runner is locked"));
        }
        if !access::can_manage_runner(&state, user, &runner).await? {
            return Err(ApiError::Forbidden(None));
        }
    }
    if !state
        .store
        .runners
        .assign_project(runner.id, project.id)
        .await?
    {
        return Err(ApiError::Message(
            StatusCode::BAD_REQUEST,
            "runner is already assigned to the project - runner_already_assigned".into(),
        ));
    }
    tracing::info!(
        runner_id = runner.id,
        project_id = project.id,
        "assigned runner to project"
    );
    let creator = creator(&state, &runner).await?;
    Ok((
        StatusCode::CREATED,
        Json(present::runner(&runner, creator.as_ref(), &base, now())),
    )
        .into_response())
}

/// `DELETE /api/v4/projects/:id/runners/:runner_id`.
pub async fn unassign_from_project(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, runner_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let project = owned_project(&state, &caller, &id).await?;
    let runner = match runner_id.parse::<i64>() {
        Ok(n) => state.store.runners.runner_by_id(n).await?,
        Err(_) => None,
    }
    .filter(|r| r.project_ids.contains(&project.id))
    .ok_or(ApiError::NotFound("Runner"))?;
    if runner.project_ids.len() == 1 {
        return Err(ApiError::forbidden(
            "Only one project associated with the runner. Please remove the runner instead",
        ));
    }
    state
        .store
        .runners
        .unassign_project(runner.id, project.id)
        .await?;
    tracing::info!(
        runner_id = runner.id,
        project_id = project.id,
        "unassigned runner from project"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v4/groups/:id/runners`: runners of the group, its ancestors and
/// the instance.
pub async fn list_for_group(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let group = find_group(&state, &id)
        .await?
        .ok_or(ApiError::NotFound("Group"))?;
    if !access::can_read_group(&state, user, &group).await? {
        return Err(ApiError::NotFound("Group"));
    }
    if !access::owns_group(&state, user, &group).await? {
        return Err(ApiError::Forbidden(None));
    }
    let group_ids = state
        .store
        .namespaces
        .group_and_ancestors(group.id)
        .await?
        .iter()
        .map(|g| g.id)
        .collect();
    let scope = RunnerScope::AvailableTo {
        project_id: None,
        group_ids,
        instance: true,
    };
    let filter = filter_from(&params, scope, Scopes::Ignored)?;
    list(&state, &base, &uri, &params, filter).await
}
