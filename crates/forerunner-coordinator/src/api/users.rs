//! `GET /api/v4/user` (what python-gitlab's `gl.auth()` calls) and
//! `GET /api/v4/users` (administrators).

use axum::extract::{OriginalUri, State};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::auth::{BaseUrl, Caller};
use crate::api::error::{ApiError, ApiResult};
use crate::api::pagination::Pagination;
use crate::api::params::Params;
use crate::api::present;
use crate::api::AppState;
use crate::domain::Scope;

/// `GET /api/v4/user`.
pub async fn current(caller: Caller, base: BaseUrl) -> ApiResult<Response> {
    let user = caller.require(&[Scope::ReadUser])?;
    Ok(Json(present::user(user, &base, user.is_admin)).into_response())
}

/// `GET /api/v4/users`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult<Response> {
    let user = caller.require(&[Scope::ReadUser])?;
    if !user.is_admin {
        return Err(ApiError::Forbidden(None));
    }
    let pagination = Pagination::from_params(&params)?;
    let paged = state.store.users.list_users(pagination.window()).await?;
    let items = paged
        .items
        .iter()
        .map(|u| present::user(u, &base, true))
        .collect();
    Ok(pagination.respond(&base, &uri, paged.total, items))
}
