//! GitLab REST API v4 as the coordinator serves it: the router, shared
//! state, and one module per endpoint group. Handlers are thin: they decode
//! [`params::Params`], authenticate ([`auth`]), call the [`crate::store`] and
//! present the result ([`present`]); every failure is an
//! [`error::ApiError`] rendered with GitLab's exact body.

pub mod access;
pub mod auth;
pub mod error;
pub mod groups;
pub mod job_requests;
pub mod manage_runners;
pub mod meta;
pub mod pagination;
pub mod params;
pub mod pipelines;
pub mod present;
pub mod projects;
pub mod runners;
pub mod settings;
pub mod user_runners;
pub mod users;
pub mod variables;

use std::net::SocketAddr;

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use std::sync::Arc;

use crate::ci::git_auth::JobTokenAuthorizer;
use crate::ci::Ci;
use crate::git::GitHttp;

/// Largest accepted trace patch body.
const MAX_TRACE_PATCH: usize = 16 * 1024 * 1024;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Persistence.
    pub store: Store,
    /// The address the server is bound to (fallback for the base URL).
    pub local_addr: SocketAddr,
    /// Cancelled when the server starts shutting down: long-running
    /// handlers (long polling) must return early on it, since a graceful
    /// shutdown waits for every in-flight request.
    pub shutdown: CancellationToken,
    /// Pipelines, the job queue and their files.
    pub ci: Ci,
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let v4 = Router::new()
        .route("/version", get(meta::version))
        .route("/user", get(users::current))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", get(users::get))
        .route(
            "/users/{id}/personal_access_tokens",
            post(users::create_token),
        )
        .route(
            "/application/settings",
            get(settings::get).put(settings::update),
        )
        .route("/user/runners", post(user_runners::create))
        .route(
            "/runners",
            post(runners::register)
                .delete(runners::unregister)
                .get(manage_runners::list_owned),
        )
        .route("/runners/verify", post(runners::verify))
        .route("/runners/managers", delete(runners::unregister_manager))
        .route(
            "/runners/reset_authentication_token",
            post(runners::reset_token),
        )
        .route(
            "/runners/reset_registration_token",
            post(settings::reset_instance_token),
        )
        .route("/runners/all", get(manage_runners::list_all))
        .route(
            "/runners/{id}",
            get(manage_runners::get)
                .put(manage_runners::update)
                .delete(manage_runners::delete),
        )
        .route("/runners/{id}/managers", get(manage_runners::managers))
        .route(
            "/runners/{id}/reset_authentication_token",
            post(manage_runners::reset_token),
        )
        .route("/projects", get(projects::list).post(projects::create))
        .route("/projects/{id}", get(projects::get).put(projects::update))
        .route(
            "/projects/{id}/runners",
            get(manage_runners::list_for_project).post(manage_runners::assign_to_project),
        )
        .route(
            "/projects/{id}/runners/reset_registration_token",
            post(settings::reset_project_token),
        )
        .route(
            "/projects/{id}/runners/{runner_id}",
            delete(manage_runners::unassign_from_project),
        )
        .route("/groups", get(groups::list).post(groups::create))
        .route("/groups/{id}", get(groups::get))
        .route("/groups/{id}/runners", get(manage_runners::list_for_group))
        .route(
            "/groups/{id}/runners/reset_registration_token",
            post(settings::reset_group_token),
        )
        .route("/jobs/request", post(job_requests::request))
        .route("/jobs/{id}", put(job_requests::update))
        .route(
            "/jobs/{id}/trace",
            patch(job_requests::patch_trace).layer(DefaultBodyLimit::max(MAX_TRACE_PATCH)),
        )
        .route(
            "/jobs/{id}/artifacts",
            post(job_requests::upload_artifacts)
                .get(job_requests::download_artifacts)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/projects/{id}/pipeline", post(pipelines::create))
        .route("/projects/{id}/pipelines", get(pipelines::list))
        .route(
            "/projects/{id}/pipelines/{pipeline_id}",
            get(pipelines::get),
        )
        .route(
            "/projects/{id}/pipelines/{pipeline_id}/jobs",
            get(pipelines::pipeline_jobs),
        )
        .route(
            "/projects/{id}/pipelines/{pipeline_id}/cancel",
            post(pipelines::cancel),
        )
        .route(
            "/projects/{id}/pipelines/{pipeline_id}/retry",
            post(pipelines::retry),
        )
        .route("/projects/{id}/jobs", get(pipelines::list_jobs))
        .route("/projects/{id}/jobs/{job_id}", get(pipelines::get_job))
        .route("/projects/{id}/jobs/{job_id}/trace", get(pipelines::trace))
        .route(
            "/projects/{id}/jobs/{job_id}/cancel",
            post(pipelines::cancel_job),
        )
        .route(
            "/projects/{id}/jobs/{job_id}/retry",
            post(pipelines::retry_job),
        )
        .route(
            "/projects/{id}/jobs/{job_id}/play",
            post(pipelines::play_job),
        )
        .route(
            "/projects/{id}/jobs/{job_id}/artifacts",
            get(pipelines::artifacts),
        )
        .route(
            "/projects/{id}/jobs/{job_id}/artifacts/{*artifact_path}",
            get(pipelines::artifact_file),
        )
        .route(
            "/projects/{id}/variables",
            get(variables::list_project).post(variables::create_project),
        )
        .route(
            "/projects/{id}/variables/{key}",
            get(variables::get_project)
                .put(variables::update_project)
                .delete(variables::delete_project),
        )
        .route(
            "/groups/{id}/variables",
            get(variables::list_group).post(variables::create_group),
        )
        .route(
            "/groups/{id}/variables/{key}",
            get(variables::get_group)
                .put(variables::update_group)
                .delete(variables::delete_group),
        );
    let git = GitHttp::new(
        state.ci.mirrors().clone(),
        Arc::new(JobTokenAuthorizer::new(state.store.clone())),
    );
    Router::new()
        .route("/-/health", get(meta::health))
        .route("/-/readiness", get(meta::readiness))
        .route("/-/liveness", get(meta::liveness))
        .nest("/api/v4", v4)
        .fallback(move |request: Request<axum::body::Body>| {
            let git = git.clone();
            async move {
                if GitHttp::is_git_path(request.uri().path()) {
                    git.serve(request).await
                } else {
                    meta::not_found().await
                }
            }
        })
        .method_not_allowed_fallback(meta::method_not_allowed)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            // Only the path is logged: query strings may carry tokens.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id,
                )
            }),
        )
        // Outermost: every request (and its answer) gets an X-Request-Id.
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
