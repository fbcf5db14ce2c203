//! `POST/GET /api/v4/projects`, `GET/PUT /api/v4/projects/:id`.
//!
//! A project's repository source is `import_url`: a local path or a URL the
//! pipelines issue clones from.

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use forerunner_protocol::management::{self as wire, CreateProjectRequest, UpdateProjectRequest};

use crate::api::access;
use crate::api::auth::{BaseUrl, Caller};
use crate::api::error::{ApiError, ApiResult};
use crate::api::groups::{valid_path, visibility};
use crate::api::manage_runners::find_project;
use crate::api::pagination::Pagination;
use crate::api::params::Params;
use crate::api::present;
use crate::api::AppState;
use crate::domain::namespace::path_from_name;
use crate::domain::{NewProject, Project, ProjectUpdate};

/// The wire entity of a project, with its namespace resolved.
pub async fn present_project(
    state: &AppState,
    project: &Project,
    base: &BaseUrl,
) -> ApiResult<wire::Project> {
    let group = match project.group_id {
        Some(id) => state.store.namespaces.group_by_id(id).await?,
        None => None,
    };
    let owner = match (project.group_id, project.creator_id) {
        (None, Some(id)) => state.store.users.user_by_id(id).await?,
        _ => None,
    };
    let mut namespace = present::namespace(group.as_ref(), owner.as_ref(), base);
    if let Some(g) = &group {
        namespace.name = g.full_name.clone();
    }
    Ok(present::project(project, namespace, base))
}

/// `POST /api/v4/projects`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    params: Params,
) -> ApiResult<Response> {
    let user = caller.require(&[])?.clone();
    let req: CreateProjectRequest = params.parse()?;
    let name = req.name.filter(|n| !n.trim().is_empty());
    let path = req.path.filter(|p| !p.is_empty());
    let (name, path) = match (name, path) {
        (Some(n), Some(p)) => (n, p),
        (Some(n), None) => {
            let p = path_from_name(&n);
            (n, p)
        }
        (None, Some(p)) => (p.clone(), p),
        (None, None) => {
            return Err(ApiError::InvalidParams(
                "name, path are missing, at least one parameter must be provided".into(),
            ))
        }
    };
    if !valid_path(&path) {
        return Err(ApiError::validation(
            "path",
            "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or '.'",
        ));
    }
    let (group_id, prefix) = match req.namespace_id {
        Some(id) => {
            let group = state.store.namespaces.group_by_id(id).await?;
            match group {
                Some(g) if access::owns_group(&state, &user, &g).await? => {
                    (Some(g.id), g.full_path)
                }
                _ => return Err(ApiError::validation("namespace", "is not valid")),
            }
        }
        None => (None, user.username.clone()),
    };
    let project = state
        .store
        .namespaces
        .create_project(NewProject {
            full_path: format!("{prefix}/{path}"),
            name,
            path,
            group_id,
            creator_id: Some(user.id),
            description: req.description,
            visibility: visibility(req.visibility.as_deref())?,
            import_url: req.import_url.filter(|u| !u.is_empty()),
            default_branch: req
                .default_branch
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "main".into()),
            runners_token: None,
        })
        .await?;
    tracing::info!(project_id = project.id, path = %project.full_path, "created project");
    let body = present_project(&state, &project, &base).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v4/projects`: all projects for administrators, owned ones
/// otherwise.
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
        .list_projects(owner, pagination.window())
        .await?;
    let mut items = Vec::with_capacity(paged.items.len());
    for p in &paged.items {
        items.push(present_project(&state, p, &base).await?);
    }
    Ok(pagination.respond(&base, &uri, paged.total, items))
}

/// `GET /api/v4/projects/:id` (numeric id or URL-encoded full path).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let project = find_project(&state, &id)
        .await?
        .ok_or(ApiError::NotFound("Project"))?;
    if !access::can_read_project(&state, user, &project).await? {
        return Err(ApiError::NotFound("Project"));
    }
    Ok(Json(present_project(&state, &project, &base).await?).into_response())
}

/// `PUT /api/v4/projects/:id`: description, `import_url`, default branch,
/// visibility and which runners may run its jobs (owners).
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let user = caller.require(&[])?;
    let project = find_project(&state, &id)
        .await?
        .ok_or(ApiError::NotFound("Project"))?;
    if !access::can_read_project(&state, user, &project).await? {
        return Err(ApiError::NotFound("Project"));
    }
    if !access::owns_project(&state, user, &project).await? {
        return Err(ApiError::Forbidden(None));
    }
    let req: UpdateProjectRequest = params.parse()?;
    let update = ProjectUpdate {
        description: req.description,
        import_url: req.import_url,
        default_branch: req.default_branch.filter(|b| !b.is_empty()),
        visibility: match req.visibility {
            Some(v) => Some(visibility(Some(&v))?),
            None => None,
        },
        shared_runners_enabled: req.shared_runners_enabled,
        group_runners_enabled: req.group_runners_enabled,
    };
    let project = state
        .store
        .namespaces
        .update_project(project.id, update)
        .await?;
    tracing::info!(project_id = project.id, "updated project");
    Ok(Json(present_project(&state, &project, &base).await?).into_response())
}
