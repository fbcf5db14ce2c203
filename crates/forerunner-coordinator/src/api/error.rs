//! `ApiError`: every failure a handler can answer, rendered with GitLab's
//! exact status codes and bodies (`shared/research/server-api.md` §1.3).
//!
//! Internal errors are logged here, once, with their cause chain; the client
//! only sees `500 Internal Server Error`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use forerunner_protocol::errors::ErrorBody;
use serde_json::json;

use crate::store::StoreError;

/// A failed API request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `401 {"message":"401 Unauthorized"}`.
    #[error("401 Unauthorized")]
    Unauthorized,
    /// `401` OAuth error for an expired or revoked token.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// `403` OAuth error: the token lacks a scope; the field lists the scopes
    /// that would do.
    #[error("insufficient scope, needs one of: {0}")]
    InsufficientScope(String),
    /// `403 {"message":"403 Forbidden"}`, or `"403 Forbidden - <reason>"`.
    #[error("403 Forbidden")]
    Forbidden(Option<String>),
    /// `404 {"message":"404 <what> Not Found"}` (`what` empty: `404 Not Found`).
    #[error("404 {0} Not Found")]
    NotFound(&'static str),
    /// `404 {"error":"404 Not Found"}`: no such route (e.g. a non-numeric id).
    #[error("404 Not Found")]
    RouteNotFound,
    /// `404 {"message":"404 Not found"}` (a failed `Model.find`).
    #[error("404 Not found")]
    RecordNotFound,
    /// `400 {"message":"400 Bad request - <reason>"}`.
    #[error("400 Bad request - {0}")]
    BadRequest(String),
    /// `400 {"error":"<text>"}`: parameter validation, as Grape reports it.
    #[error("{0}")]
    InvalidParams(String),
    /// `400 {"message":{"field":["error", …]}}`: model validation.
    #[error("validation failed")]
    Validation(serde_json::Map<String, serde_json::Value>),
    /// A status with a ready `{"message": …}` text (`409 Conflict`, …).
    #[error("{1}")]
    Message(StatusCode, String),
    /// `410 {"message":"410 Gone - <reason>"}`.
    #[error("410 Gone - {0}")]
    Gone(&'static str),
    /// `500`; the cause is logged, not shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// `403 Forbidden - <reason>`.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::Forbidden(Some(reason.into()))
    }

    /// A one-field model validation error.
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        let mut map = serde_json::Map::new();
        map.insert(field.to_owned(), json!([message.into()]));
        Self::Validation(map)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => {
                ApiError::validation(&what.replace(' ', "_"), "has already been taken")
            }
            StoreError::NotFound(_) => ApiError::RecordNotFound,
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!(ErrorBody::message("401 Unauthorized")),
            ),
            ApiError::InvalidToken(description) => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_token", "error_description": description}),
            ),
            ApiError::InsufficientScope(scopes) => (
                StatusCode::FORBIDDEN,
                json!({
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided by the access token.",
                    "scope": scopes,
                }),
            ),
            ApiError::Forbidden(None) => (
                StatusCode::FORBIDDEN,
                json!(ErrorBody::message("403 Forbidden")),
            ),
            ApiError::Forbidden(Some(reason)) => (
                StatusCode::FORBIDDEN,
                json!(ErrorBody::message(format!("403 Forbidden - {reason}"))),
            ),
            ApiError::NotFound("") => (
                StatusCode::NOT_FOUND,
                json!(ErrorBody::message("404 Not Found")),
            ),
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                json!(ErrorBody::message(format!("404 {what} Not Found"))),
            ),
            ApiError::RouteNotFound => (
                StatusCode::NOT_FOUND,
                json!(ErrorBody::error("404 Not Found")),
            ),
            ApiError::RecordNotFound => (
                StatusCode::NOT_FOUND,
                json!(ErrorBody::message("404 Not found")),
            ),
            ApiError::BadRequest(reason) => (
                StatusCode::BAD_REQUEST,
                json!(ErrorBody::message(format!("400 Bad request - {reason}"))),
            ),
            ApiError::InvalidParams(text) => {
                (StatusCode::BAD_REQUEST, json!(ErrorBody::error(text)))
            }
            ApiError::Validation(fields) => (StatusCode::BAD_REQUEST, json!({"message": fields})),
            ApiError::Message(status, text) => (status, json!(ErrorBody::message(text))),
            ApiError::Gone(reason) => (
                StatusCode::GONE,
                json!(ErrorBody::message(format!("410 Gone - {reason}"))),
            ),
            ApiError::Internal(err) => {
                tracing::error!(error = %format!("{err:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!(ErrorBody::message("500 Internal Server Error")),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
