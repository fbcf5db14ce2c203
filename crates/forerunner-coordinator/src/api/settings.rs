//! `GET/PUT /api/v4/application/settings` (the runner subset) and the
//! deprecated registration-token resets: `POST /runners/reset_registration_token`
//! (instance), `POST /groups/:id/runners/reset_registration_token` and
//! `POST /projects/:id/runners/reset_registration_token`.
//!
//! Registration tokens are stored only as digests, so resetting is the way
//! to obtain one through the API; the new token is shown once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use forerunner_protocol::management::{ApplicationSettings, UpdateApplicationSettingsRequest};
use forerunner_protocol::runners::ResetTokenResponse;
use forerunner_protocol::tokens::REGISTRATION_TOKEN_PREFIX;

use crate::api::access;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult};
use crate::api::manage_runners::{find_group, find_project};
use crate::api::params::Params;
use crate::api::AppState;
use crate::domain::{AppSettings, Secret};

fn present(settings: &AppSettings) -> ApplicationSettings {
    ApplicationSettings {
        id: 1,
        allow_runner_registration_token: settings.allow_runner_registration_token,
        valid_runner_registrars: vec!["project".into(), "group".into()],
        updated_at: Some(settings.updated_at),
    }
}

/// `GET /api/v4/application/settings`.
pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require_admin()?;
    let settings = state.store.settings.settings().await?;
    Ok(Json(present(&settings)).into_response())
}

/// `PUT /api/v4/application/settings`.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let req: UpdateApplicationSettingsRequest = params.parse()?;
    let settings = match req.allow_runner_registration_token {
        Some(allow) => {
            tracing::info!(allow, "changed allow_runner_registration_token");
            state
                .store
                .settings
                .set_allow_runner_registration_token(allow)
                .await?
        }
        None => state.store.settings.settings().await?,
    };
    Ok(Json(present(&settings)).into_response())
}

/// A fresh registration token (`GR1348941…`).
pub fn mint_registration_token() -> Secret {
    Secret::generate(REGISTRATION_TOKEN_PREFIX)
}

fn created(token: &Secret) -> Response {
    (
        StatusCode::CREATED,
        Json(ResetTokenResponse {
            token: token.expose().to_owned(),
            token_expires_at: None,
        }),
    )
        .into_response()
}

/// `POST /api/v4/runners/reset_registration_token` (administrators).
pub async fn reset_instance_token(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let token = mint_registration_token();
    state
        .store
        .settings
        .set_registration_token(&token.digest(), &token.short())
        .await?;
    tracing::info!(token = %token, "reset the instance registration token");
    Ok(created(&token))
}

/// `POST /api/v4/groups/:id/runners/reset_registration_token`.
pub async fn reset_group_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let group = find_group(&state, &id)
        .await?
        .ok_or(ApiError::NotFound("Group"))?;
    if !access::owns_group(&state, user, &group).await? {
        return Err(ApiError::Forbidden(None));
    }
    let token = mint_registration_token();
    state
        .store
        .namespaces
        .set_group_runners_token(group.id, Some((token.digest(), token.short())))
        .await?;
    tracing::info!(group_id = group.id, token = %token, "reset a group registration token");
    Ok(created(&token))
}

/// `POST /api/v4/projects/:id/runners/reset_registration_token`.
pub async fn reset_project_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let project = find_project(&state, &id)
        .await?
        .ok_or(ApiError::NotFound("Project"))?;
    if !access::owns_project(&state, user, &project).await? {
        return Err(ApiError::Forbidden(None));
    }
    let token = mint_registration_token();
    state
        .store
        .namespaces
        .set_project_runners_token(project.id, Some((token.digest(), token.short())))
        .await?;
    tracing::info!(project_id = project.id, token = %token, "reset a project registration token");
    Ok(created(&token))
}
