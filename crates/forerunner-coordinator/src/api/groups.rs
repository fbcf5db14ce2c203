//! `POST/GET /api/v4/groups` and `GET /api/v4/groups/:id`.

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use forerunner_protocol::management::CreateGroupRequest;

use crate::api::access;
use crate::api::auth::{BaseUrl, Caller};
use crate::api::error::{ApiError, ApiResult};
use crate::api::manage_runners::find_group;
use crate::api::pagination::Pagination;
use crate::api::params::Params;
use crate::api::present;
use crate::api::AppState;
use crate::domain::namespace::path_from_name;
use crate::domain::NewGroup;

/// Checks a visibility level.
pub fn visibility(value: Option<&str>) -> ApiResult<String> {
    match value.unwrap_or("private") {
        v @ ("private" | "internal" | "public") => Ok(v.to_owned()),
        _ => Err(ApiError::InvalidParams(
            "visibility does not have a valid value".into(),
        )),
    }
}

/// Checks a path segment: letters, digits, `_`, `-`, `.`, not starting
/// with `-` or `.`.
pub fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 255
        && !path.starts_with(['-', '.'])
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `POST /api/v4/groups`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    params: Params,
) -> ApiResult<Response> {
    let user = caller.require(&[])?.clone();
    let req: CreateGroupRequest = params.parse()?;
    let name = req
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::InvalidParams("name is missing".into()))?;
    let path = req
        .path
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| path_from_name(&name));
    if !valid_path(&path) {
        return Err(ApiError::validation(
            "path",
            "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or '.'",
        ));
    }
    if let Some(parent_id) = req.parent_id {
        let parent = state
            .store
            .namespaces
            .group_by_id(parent_id)
            .await?
            .ok_or(ApiError::NotFound("Group"))?;
        if !access::owns_group(&state, &user, &parent).await? {
            return Err(ApiError::Forbidden(None));
        }
    }
    let group = state
        .store
        .namespaces
        .create_group(NewGroup {
            name,
            path,
            parent_id: req.parent_id,
            description: req.description,
            visibility: visibility(req.visibility.as_deref())?,
            creator_id: Some(user.id),
            runners_token: None,
        })
        .await?;
    tracing::info!(group_id = group.id, path = %group.full_path, "created group");
    Ok((StatusCode::CREATED, Json(present::group(&group, &base))).into_response())
}

/// `GET /api/v4/groups`: all groups for administrators, owned ones otherwise.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let pagination = Pagination::from_params(&params)?;
    let owner = (!user.is_admin).then_some(user.id);
    let paged = state
        .store
        .namespaces
        .list_groups(owner, pagination.window())
        .await?;
    let items = paged
        .items
        .iter()
        .map(|g| present::group(g, &base))
        .collect();
    Ok(pagination.respond(&base, &uri, paged.total, items))
}

/// `GET /api/v4/groups/:id` (numeric id or URL-encoded full path).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let group = find_group(&state, &id)
        .await?
        .ok_or(ApiError::NotFound("Group"))?;
    if !access::can_read_group(&state, user, &group).await? {
        return Err(ApiError::NotFound("Group"));
    }
    Ok(Json(present::group(&group, &base)).into_response())
}
