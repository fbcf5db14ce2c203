//! Project and group CI/CD variables: `GET/POST /projects/:id/variables`,
//! `GET/PUT/DELETE /projects/:id/variables/:key`, and the same under
//! `/groups/:id`. Owners only, as values are secrets.

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use forerunner_protocol::ci::Variable;

use crate::api::access;
use crate::api::auth::{BaseUrl, Caller};
use crate::api::error::{ApiError, ApiResult};
use crate::api::manage_runners::{find_group, find_project};
use crate::api::pagination::Pagination;
use crate::api::params::Params;
use crate::api::AppState;
use crate::domain::{CiVariable, VariableOwner};

/// Whether a path is about a project's or a group's variables.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Project,
    Group,
}

async fn owner(
    state: &AppState,
    caller: &Caller,
    kind: Kind,
    id: &str,
) -> ApiResult<VariableOwner> {
    let user = caller.require(&[])?;
    match kind {
        Kind::Project => {
            let project = find_project(state, id)
                .await?
                .ok_or(ApiError::NotFound("Project"))?;
            if !access::owns_project(state, user, &project).await? {
                return Err(ApiError::NotFound("Project"));
            }
            Ok(VariableOwner::Project(project.id))
        }
        Kind::Group => {
            let group = find_group(state, id)
                .await?
                .ok_or(ApiError::NotFound("Group"))?;
            if !access::owns_group(state, user, &group).await? {
                return Err(ApiError::NotFound("Group"));
            }
            Ok(VariableOwner::Group(group.id))
        }
    }
}

fn present(v: &CiVariable) -> Variable {
    Variable {
        key: v.key.clone(),
        value: v.value.clone(),
        variable_type: v.variable_type.clone(),
        protected: v.protected,
        masked: v.masked,
        hidden: false,
        raw: v.raw,
        environment_scope: v.environment_scope.clone(),
        description: v.description.clone(),
    }
}

fn flag(params: &Params, key: &str, default: bool) -> ApiResult<bool> {
    match params.0.get(key) {
        None | Some(serde_json::Value::Null) => Ok(default),
        Some(v) => forerunner_protocol::de::bool_value(v)
            .ok_or_else(|| ApiError::InvalidParams(format!("{key} is invalid"))),
    }
}

/// Applies the parameters to `base` and checks GitLab's model rules.
fn apply(params: &Params, mut var: CiVariable) -> ApiResult<CiVariable> {
    if let Some(value) = params.str("value") {
        var.value = value;
    }
    if let Some(t) = params.str("variable_type") {
        if t != "env_var" && t != "file" {
            return Err(ApiError::InvalidParams(
                "variable_type does not have a valid value".into(),
            ));
        }
        var.variable_type = t;
    }
    var.protected = flag(params, "protected", var.protected)?;
    var.masked = flag(params, "masked", var.masked)?;
    var.raw = flag(params, "raw", var.raw)?;
    if let Some(scope) = params.str("environment_scope").filter(|s| !s.is_empty()) {
        var.environment_scope = scope;
    }
    if params.has("description") {
        var.description = params.str("description");
    }
    if var.key.is_empty()
        || var.key.len() > 255
        || !var
            .key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(ApiError::validation(
            "key",
            "can contain only letters, digits and '_'.",
        ));
    }
    if var.masked && (var.value.len() < 8 || var.value.chars().any(char::is_whitespace)) {
        return Err(ApiError::validation("value", "is invalid"));
    }
    Ok(var)
}

async fn list(
    state: AppState,
    caller: Caller,
    base: BaseUrl,
    uri: axum::http::Uri,
    kind: Kind,
    id: String,
    params: Params,
) -> ApiResult<Response> {
    let owner = owner(&state, &caller, kind, &id).await?;
    let pagination = Pagination::from_params(&params)?;
    let all = state.store.ci.variables(owner).await?;
    let window = pagination.window();
    let items: Vec<Variable> = all
        .iter()
        .skip(usize::try_from(window.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(window.limit).unwrap_or(usize::MAX))
        .map(present)
        .collect();
    Ok(pagination.respond(
        &base,
        &uri,
        i64::try_from(all.len()).unwrap_or(i64::MAX),
        items,
    ))
}

async fn find(state: &AppState, owner: VariableOwner, key: &str) -> ApiResult<CiVariable> {
    state
        .store
        .ci
        .variables(owner)
        .await?
        .into_iter()
        .find(|v| v.key == key)
        .ok_or(ApiError::NotFound("Variable"))
}

async fn create(
    state: AppState,
    caller: Caller,
    kind: Kind,
    id: String,
    params: Params,
) -> ApiResult<Response> {
    let owner = owner(&state, &caller, kind, &id).await?;
    let key = params
        .str("key")
        .ok_or_else(|| ApiError::InvalidParams("key is missing".into()))?;
    if !params.has("value") {
        return Err(ApiError::InvalidParams("value is missing".into()));
    }
    let var = apply(
        &params,
        CiVariable {
            key: key.clone(),
            value: String::new(),
            variable_type: "env_var".into(),
            protected: false,
            masked: false,
            raw: false,
            environment_scope: "*".into(),
            description: None,
        },
    )?;
    match state.store.ci.create_variable(owner, var.clone()).await {
        Ok(()) => {}
        Err(crate::store::StoreError::Conflict(_)) => {
            return Err(ApiError::validation(
                "key",
                format!("({key}) has already been taken"),
            ))
        }
        Err(err) => return Err(err.into()),
    }
    Ok((StatusCode::CREATED, Json(present(&var))).into_response())
}

async fn update(
    state: AppState,
    caller: Caller,
    kind: Kind,
    id: String,
    key: String,
    params: Params,
) -> ApiResult<Response> {
    let owner = owner(&state, &caller, kind, &id).await?;
    let current = find(&state, owner, &key).await?;
    let var = apply(&params, current)?;
    state.store.ci.update_variable(owner, var.clone()).await?;
    Ok(Json(present(&var)).into_response())
}

async fn get(
    state: AppState,
    caller: Caller,
    kind: Kind,
    id: String,
    key: String,
) -> ApiResult<Response> {
    let owner = owner(&state, &caller, kind, &id).await?;
    Ok(Json(present(&find(&state, owner, &key).await?)).into_response())
}

async fn delete(
    state: AppState,
    caller: Caller,
    kind: Kind,
    id: String,
    key: String,
) -> ApiResult<Response> {
    let owner = owner(&state, &caller, kind, &id).await?;
    if !state.store.ci.delete_variable(owner, &key).await? {
        return Err(ApiError::NotFound("Variable"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /projects/:id/variables`.
pub async fn list_project(
    State(s): State<AppState>,
    c: Caller,
    b: BaseUrl,
    OriginalUri(u): OriginalUri,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    list(s, c, b, u, Kind::Project, id, p).await
}
/// `GET /groups/:id/variables`.
pub async fn list_group(
    State(s): State<AppState>,
    c: Caller,
    b: BaseUrl,
    OriginalUri(u): OriginalUri,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    list(s, c, b, u, Kind::Group, id, p).await
}
/// `POST /projects/:id/variables`.
pub async fn create_project(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    create(s, c, Kind::Project, id, p).await
}
/// `POST /groups/:id/variables`.
pub async fn create_group(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    create(s, c, Kind::Group, id, p).await
}
/// `GET /projects/:id/variables/:key`.
pub async fn get_project(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    get(s, c, Kind::Project, id, key).await
}
/// `GET /groups/:id/variables/:key`.
pub async fn get_group(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    get(s, c, Kind::Group, id, key).await
}
/// `PUT /projects/:id/variables/:key`.
pub async fn update_project(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
    p: Params,
) -> ApiResult<Response> {
    update(s, c, Kind::Project, id, key, p).await
}
/// `PUT /groups/:id/variables/:key`.
pub async fn update_group(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
    p: Params,
) -> ApiResult<Response> {
    update(s, c, Kind::Group, id, key, p).await
}
/// `DELETE /projects/:id/variables/:key`.
pub async fn delete_project(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    delete(s, c, Kind::Project, id, key).await
}
/// `DELETE /groups/:id/variables/:key`.
pub async fn delete_group(
    State(s): State<AppState>,
    c: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    delete(s, c, Kind::Group, id, key).await
}
