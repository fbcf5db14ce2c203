//! `GET /api/v4/user` (what python-gitlab's `gl.auth()` calls), and for
//! administrators `GET/POST /api/v4/users`, `GET /api/v4/users/:id` and
//! `POST /api/v4/users/:id/personal_access_tokens`.

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{NaiveDate, TimeZone as _, Utc};
use forerunner_protocol::management::{
    CreatePersonalAccessTokenRequest, CreateUserRequest, PersonalAccessToken,
};
use forerunner_protocol::tokens::PERSONAL_ACCESS_TOKEN_PREFIX;

use crate::api::auth::{BaseUrl, Caller};
use crate::api::error::{ApiError, ApiResult};
use crate::api::groups::valid_path;
use crate::api::pagination::Pagination;
use crate::api::params::Params;
use crate::api::present;
use crate::api::AppState;
use crate::domain::{now, NewPersonalAccessToken, NewUser, Scope, Secret};

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

/// `POST /api/v4/users` (administrators).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    params: Params,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let req: CreateUserRequest = params.parse()?;
    let username = req
        .username
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::InvalidParams("username is missing".into()))?;
    if !valid_path(&username) {
        return Err(ApiError::validation(
            "username",
            "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or '.'",
        ));
    }
    if state
        .store
        .users
        .user_by_username(&username)
        .await?
        .is_some()
    {
        return Err(ApiError::Message(
            StatusCode::CONFLICT,
            "Username has already been taken".into(),
        ));
    }
    let user = state
        .store
        .users
        .create_user(NewUser {
            name: req
                .name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| username.clone()),
            username,
            email: req.email,
            is_admin: req.admin.unwrap_or(false),
        })
        .await?;
    tracing::info!(user_id = user.id, username = %user.username, "created user");
    Ok((StatusCode::CREATED, Json(present::user(&user, &base, true))).into_response())
}

/// `GET /api/v4/users/:id` (administrators see every user, others themselves).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let me = caller.require(&[Scope::ReadUser])?;
    let id: i64 = id.parse().map_err(|_| ApiError::RouteNotFound)?;
    if !me.is_admin && me.id != id {
        return Err(ApiError::NotFound("User"));
    }
    let user = state
        .store
        .users
        .user_by_id(id)
        .await?
        .ok_or(ApiError::NotFound("User"))?;
    Ok(Json(present::user(&user, &base, me.is_admin)).into_response())
}

/// `POST /api/v4/users/:id/personal_access_tokens` (administrators).
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let id: i64 = id.parse().map_err(|_| ApiError::RouteNotFound)?;
    let user = state
        .store
        .users
        .user_by_id(id)
        .await?
        .ok_or(ApiError::NotFound("User"))?;
    let req: CreatePersonalAccessTokenRequest = params.parse()?;
    let name = req
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::InvalidParams("name is missing".into()))?;
    let scope_names = req
        .scopes
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::InvalidParams("scopes is missing".into()))?;
    let scopes = scope_names
        .iter()
        .map(|s| Scope::parse(s))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::InvalidParams("scopes does not have a valid value".into()))?;
    let expires_at = match req.expires_at.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => {
            let date = NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| ApiError::InvalidParams("expires_at is invalid".into()))?;
            Some(Utc.from_utc_datetime(&date.and_time(chrono::NaiveTime::MIN)))
        }
        None => None,
    };
    let secret = Secret::generate(PERSONAL_ACCESS_TOKEN_PREFIX);
    let token = state
        .store
        .users
        .create_token(NewPersonalAccessToken {
            user_id: user.id,
            name,
            token_digest: secret.digest(),
            token_short: secret.short(),
            scopes,
            expires_at,
        })
        .await?;
    tracing::info!(user_id = user.id, token = %secret, "created personal access token");
    Ok((
        StatusCode::CREATED,
        Json(PersonalAccessToken {
            id: token.id,
            name: token.name.clone(),
            revoked: token.revoked,
            created_at: Some(token.created_at),
            scopes: token.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            user_id: user.id,
            active: !token.revoked && !token.is_expired(now()),
            expires_at: token.expires_at.map(|t| t.format("%Y-%m-%d").to_string()),
            token: Some(secret.expose().to_owned()),
        }),
    )
        .into_response())
}
