//! Health probes (`/-/health`, `/-/readiness`, `/-/liveness`), `GET /version`
//! and the catch-all 404 and 405.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use forerunner_protocol::management::Version;
use serde_json::json;

use crate::api::auth::Caller;
use crate::api::error::ApiResult;
use crate::api::AppState;

/// The GitLab version whose API the coordinator follows.
pub const GITLAB_VERSION: &str = "17.11.0-forerunner";

/// `GET /-/health`: the process is up (GitLab answers plain text).
pub async fn health() -> &'static str {
    "GitLab OK"
}

/// `GET /-/liveness`.
pub async fn liveness() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// `GET /-/readiness`: the database answers.
pub async fn readiness(State(state): State<AppState>) -> Response {
    match state.store.settings.settings().await {
        Ok(_) => Json(json!({"status": "ok", "master_check": [{"status": "ok"}]})).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "failed", "master_check": [{"status": "failed"}]})),
            )
                .into_response()
        }
    }
}

/// `GET /api/v4/version`.
pub async fn version(caller: Caller) -> ApiResult<Response> {
    caller.require(&[])?;
    Ok(Json(Version {
        version: GITLAB_VERSION.to_owned(),
        revision: format!("forerunner-{}", env!("CARGO_PKG_VERSION")),
    })
    .into_response())
}

/// Any unknown route: `404 {"error":"404 Not Found"}`.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "404 Not Found"})),
    )
        .into_response()
}

/// A known route with another method: `405 {"error":"405 Not Allowed"}`.
pub async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({"error": "405 Not Allowed"})),
    )
        .into_response()
}
