//! Who is calling: personal access tokens for the management API, runner
//! tokens for the runner API, plus the request's base URL and client address.
//!
//! A personal access token is read from `PRIVATE-TOKEN`, `Authorization:
//! Bearer` or the `private_token` query parameter. Unknown tokens answer 401,
//! expired or revoked ones GitLab's OAuth `invalid_token`, and a token without
//! a fitting scope `insufficient_scope` (§1.5). Runner tokens come from the
//! `token` parameter; unknown or expired ones answer `403 Forbidden` (§1.6).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method};
use forerunner_protocol::paths::PRIVATE_TOKEN_HEADER;

use crate::api::error::ApiError;
use crate::api::params::Params;
use crate::api::AppState;
use crate::domain::{digest, now, Auth, Runner, Scope, User};

/// The authenticated user of a management request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user and the token used.
    pub auth: Auth,
    method: Method,
}

impl Caller {
    /// The user, if the token carries `api` (or `read_api` on GET/HEAD), or
    /// one of `extra`.
    pub fn require(&self, extra: &[Scope]) -> Result<&User, ApiError> {
        let token = &self.auth.token;
        let read = self.method == Method::GET || self.method == Method::HEAD;
        let mut accepted = vec![Scope::Api];
        if read {
            accepted.push(Scope::ReadApi);
        }
        accepted.extend_from_slice(extra);
        if accepted.iter().any(|s| token.has(*s)) {
            Ok(&self.auth.user)
        } else {
            let names = accepted
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            Err(ApiError::InsufficientScope(names))
        }
    }

    /// The user, if it is an administrator (`403 Forbidden` otherwise) and
    /// the token carries `api` (or `read_api` on reads).
    pub fn require_admin(&self) -> Result<&User, ApiError> {
        let user = self.require(&[])?;
        if user.is_admin {
            Ok(user)
        } else {
            Err(ApiError::Forbidden(None))
        }
    }
}

fn presented_token(parts: &Parts) -> Option<String> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
    };
    if let Some(token) = header(PRIVATE_TOKEN_HEADER) {
        return Some(token);
    }
    if let Some(value) = header(header::AUTHORIZATION.as_str()) {
        if let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        {
            return Some(token.trim().to_owned());
        }
    }
    Params::from_query(parts.uri.query())
        .ok()
        .and_then(|p| p.str("private_token"))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = presented_token(parts)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let auth = state
            .store
            .users
            .authenticate(&digest(&token))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if auth.token.revoked {
            return Err(ApiError::InvalidToken(
                "Token was revoked. You have to re-authorize from the user.",
            ));
        }
        if auth.token.is_expired(now()) {
            return Err(ApiError::InvalidToken(
                "Token is expired. You can either do re-authorization or token refresh.",
            ));
        }
        if auth.user.state != "active" {
            return Err(ApiError::Unauthorized);
        }
        Ok(Caller {
            auth,
            method: parts.method.clone(),
        })
    }
}

/// The runner authenticated by the `token` parameter: `400` when missing,
/// `403 Forbidden` when unknown or expired.
pub async fn authenticate_runner(state: &AppState, token: &str) -> Result<Runner, ApiError> {
    if token.is_empty() {
        return Err(ApiError::InvalidParams("token is missing".into()));
    }
    state
        .store
        .runners
        .runner_by_token(&digest(token), now())
        .await?
        .ok_or(ApiError::Forbidden(None))
}

/// The base URL of the request as the client sees it (`http://host:port`),
/// from `X-Forwarded-Proto`/`X-Forwarded-Host` or `Host`, falling back to
/// the bound address. Links and `web_url`s are built under it.
#[derive(Debug, Clone)]
pub struct BaseUrl(pub String);

impl BaseUrl {
    /// The URL of `path` (starting with `/`) under the base.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.0, path)
    }
}

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty() && !v.contains(['/', ' ', '\\']))
        };
        let scheme = match header("x-forwarded-proto") {
            Some("https") => "https",
            _ => "http",
        };
        let host = header("x-forwarded-host")
            .or_else(|| header(header::HOST.as_str()))
            .map(str::to_owned)
            .unwrap_or_else(|| state.local_addr.to_string());
        Ok(BaseUrl(format!("{scheme}://{host}")))
    }
}

/// The client's IP address, when the server knows it.
#[derive(Debug, Clone)]
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string()),
        ))
    }
}
