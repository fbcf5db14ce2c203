//! `POST /api/v4/user/runners`: create a runner with a personal access token
//! (the new workflow, §3). The answer carries a `glrt-t{1,2,3}_…` token.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use forerunner_protocol::runners::{
    CreateUserRunnerRequest, RunnerRegistrationDetails, RunnerType,
};

use crate::api::access;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::api::runners::{check_params, full_messages, mint_runner_token, new_runner};
use crate::api::AppState;
use crate::domain::{RegistrationType, Scope};

/// `POST /api/v4/user/runners`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
) -> ApiResult<Response> {
    let user = caller.require(&[Scope::CreateRunner])?.clone();
    let req: CreateUserRunnerRequest = params.parse()?;
    let runner_type = match req.runner_type.as_deref() {
        None | Some("") => return Err(ApiError::InvalidParams("runner_type is missing".into())),
        Some(s) => RunnerType::parse(s).ok_or_else(|| {
            ApiError::InvalidParams("runner_type does not have a valid value".into())
        })?,
    };
    match runner_type {
        RunnerType::GroupType if req.group_id.is_none() => {
            return Err(ApiError::InvalidParams("group_id is missing".into()))
        }
        RunnerType::ProjectType if req.project_id.is_none() => {
            return Err(ApiError::InvalidParams("project_id is missing".into()))
        }
        _ => {}
    }
    let attrs = check_params(&req.attributes)?;
    let (group_id, project_id) = match runner_type {
        RunnerType::InstanceType => {
            if !user.is_admin {
                return Err(ApiError::forbidden("Insufficient permissions"));
            }
            (None, None)
        }
        RunnerType::GroupType => {
            let group = match req.group_id {
                Some(id) => state.store.namespaces.group_by_id(id).await?,
                None => None,
            }
            .ok_or_else(|| ApiError::BadRequest("Missing/invalid group".into()))?;
            if !group.is_owned_by(&user) {
                return Err(ApiError::forbidden("Insufficient permissions"));
            }
            (Some(group.id), None)
        }
        RunnerType::ProjectType => {
            let project = match req.project_id {
                Some(id) => state.store.namespaces.project_by_id(id).await?,
                None => None,
            }
            .ok_or_else(|| ApiError::BadRequest("Missing/invalid project".into()))?;
            if !access::owns_project(&state, &user, &project).await? {
                return Err(ApiError::forbidden("Insufficient permissions"));
            }
            (None, Some(project.id))
        }
    };
    let token = mint_runner_token(runner_type, RegistrationType::AuthenticatedUser);
    let mut new = new_runner(
        runner_type,
        RegistrationType::AuthenticatedUser,
        &token,
        attrs,
    )
    .map_err(|errors| ApiError::BadRequest(full_messages(&errors)))?;
    new.group_id = group_id;
    new.project_id = project_id;
    new.creator_id = Some(user.id);
    let runner = state.store.runners.create_runner(new).await?;
    tracing::info!(
        runner_id = runner.id,
        runner_type = runner_type.as_str(),
        user = %user.username,
        token = %token,
        "created runner"
    );
    Ok((
        StatusCode::CREATED,
        Json(RunnerRegistrationDetails {
            id: runner.id,
            token: token.expose().to_owned(),
            token_expires_at: runner.token_expires_at,
        }),
    )
        .into_response())
}
