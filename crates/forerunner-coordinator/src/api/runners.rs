//! The runner-token API: legacy registration (`POST /runners`),
//! `POST /runners/verify`, `DELETE /runners`, `DELETE /runners/managers` and
//! `POST /runners/reset_authentication_token` (§2, §4).
//!
//! Also home of what runner creation shares with `POST /user/runners` and
//! `PUT /runners/:id`: attribute validation and token minting.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use forerunner_protocol::runners::{
    AccessLevel, RegisterRunnerRequest, ResetTokenResponse, RunnerAttributes, RunnerInfo,
    RunnerRegistrationDetails, RunnerTokenRequest, RunnerType, UnregisterManagerRequest,
    VerifyRunnerRequest,
};
use forerunner_protocol::tokens::{short_token, CREATED_RUNNER_PREFIX, REGISTERED_RUNNER_PREFIX};
use serde_json::{json, Map, Value};

use crate::api::auth::{authenticate_runner, ClientIp};
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::api::AppState;
use crate::domain::{
    digest, now, AppSettings, ManagerHeartbeat, NewRunner, RegistrationType, Runner, RunnerManager,
    Secret,
};

/// The `system_id` GitLab records when a runner sends none.
pub const LEGACY_SYSTEM_ID: &str = "<legacy>";
/// Most tags a runner may carry.
const MAX_TAGS: usize = 50;
/// Shortest allowed `maximum_timeout`, in seconds.
const MIN_MAXIMUM_TIMEOUT: i64 = 600;
/// Longest `maintenance_note`.
const MAX_NOTE: usize = 1024;

/// Runner attributes after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidAttributes {
    /// Description.
    pub description: Option<String>,
    /// Note.
    pub maintenance_note: Option<String>,
    /// Tags (`None`: not given).
    pub tags: Option<Vec<String>>,
    /// Takes untagged jobs.
    pub run_untagged: Option<bool>,
    /// Locked.
    pub locked: Option<bool>,
    /// Access level.
    pub access_level: Option<AccessLevel>,
    /// Maximum timeout.
    pub maximum_timeout: Option<i64>,
    /// `!paused` (or `active`).
    pub active: Option<bool>,
}

/// Checks GitLab's parameter rules (Grape: `400 {"error": …}`) and returns
/// the attributes; model rules are checked by [`model_errors`].
pub fn check_params(attrs: &RunnerAttributes) -> ApiResult<ValidAttributes> {
    if attrs.maintainer_note.is_some() && attrs.maintenance_note.is_some() {
        return Err(ApiError::InvalidParams(
            "maintainer_note, maintenance_note are mutually exclusive".into(),
        ));
    }
    if attrs.active.is_some() && attrs.paused.is_some() {
        return Err(ApiError::InvalidParams(
            "active, paused are mutually exclusive".into(),
        ));
    }
    let access_level = match attrs.access_level.as_deref() {
        None => None,
        Some(s) => Some(AccessLevel::parse(s).ok_or_else(|| {
            ApiError::InvalidParams("access_level does not have a valid value".into())
        })?),
    };
    Ok(ValidAttributes {
        description: attrs.description.clone(),
        maintenance_note: attrs
            .maintenance_note
            .clone()
            .or_else(|| attrs.maintainer_note.clone()),
        tags: attrs.tag_list.clone().map(dedup_tags),
        run_untagged: attrs.run_untagged,
        locked: attrs.locked,
        access_level,
        maximum_timeout: attrs.maximum_timeout,
        active: attrs.paused.map(|p| !p).or(attrs.active),
    })
}

fn dedup_tags(mut tags: Vec<String>) -> Vec<String> {
    tags.sort();
    tags.dedup();
    tags
}

/// GitLab's model validation of a runner's resulting state: field → messages.
pub fn model_errors(
    tags: &[String],
    run_untagged: bool,
    maximum_timeout: Option<i64>,
    maintenance_note: Option<&str>,
) -> Map<String, Value> {
    let mut errors = Map::new();
    let mut add = |field: &str, msg: &str| {
        if let Some(list) = errors
            .entry(field.to_owned())
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            list.push(json!(msg));
        }
    };
    if tags.len() > MAX_TAGS {
        add(
            "tags_list",
            "Too many tags specified. Please limit the number of tags to 50",
        );
    }
    if !run_untagged && tags.is_empty() {
        add(
            "tags_list",
            "can not be empty when runner is not allowed to pick untagged jobs",
        );
    }
    if maximum_timeout.is_some_and(|t| t < MIN_MAXIMUM_TIMEOUT) {
        add("maximum_timeout", "needs to be at least 10 minutes");
    }
    if maintenance_note.is_some_and(|n| n.chars().count() > MAX_NOTE) {
        add(
            "maintenance_note",
            "is too long (maximum is 1024 characters)",
        );
    }
    errors
}

/// Model errors as one sentence (`Tags list can not be empty …`), the way
/// `POST /user/runners` reports them.
pub fn full_messages(errors: &Map<String, Value>) -> String {
    let mut out = Vec::new();
    for (field, msgs) in errors {
        let mut name = field.replace('_', " ");
        if let Some(first) = name.get(..1) {
            name = first.to_uppercase() + &name[1..];
        }
        for msg in msgs.as_array().into_iter().flatten() {
            out.push(format!("{name} {}", msg.as_str().unwrap_or_default()));
        }
    }
    out.join(", ")
}

/// A fresh authentication token for a runner of this kind: `glrt-t1_…`
/// (instance), `glrt-t2_…` (group), `glrt-t3_…` (project) for created
/// runners, `glrtr-…` for runners from legacy registration.
pub fn mint_runner_token(runner_type: RunnerType, registration: RegistrationType) -> Secret {
    match registration {
        RegistrationType::AuthenticatedUser => Secret::generate(&format!(
            "{CREATED_RUNNER_PREFIX}{}",
            runner_type.token_partition()
        )),
        RegistrationType::RegistrationToken => Secret::generate(REGISTERED_RUNNER_PREFIX),
    }
}

/// Builds the [`NewRunner`] of validated attributes with GitLab's defaults
/// (active, not locked, runs untagged, not protected); `Err` is a model
/// validation error map.
pub fn new_runner(
    runner_type: RunnerType,
    registration: RegistrationType,
    token: &Secret,
    attrs: ValidAttributes,
) -> Result<NewRunner, Map<String, Value>> {
    let tags = attrs.tags.unwrap_or_default();
    let run_untagged = attrs.run_untagged.unwrap_or(true);
    let errors = model_errors(
        &tags,
        run_untagged,
        attrs.maximum_timeout,
        attrs.maintenance_note.as_deref(),
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewRunner {
        runner_type,
        registration_type: registration,
        token_digest: token.digest(),
        token_short: token.short(),
        description: attrs.description,
        maintenance_note: attrs.maintenance_note,
        active: attrs.active.unwrap_or(true),
        locked: attrs.locked.unwrap_or(false),
        run_untagged,
        access_level: attrs.access_level.unwrap_or(AccessLevel::NotProtected),
        maximum_timeout: attrs.maximum_timeout,
        group_id: None,
        project_id: None,
        creator_id: None,
        name: None,
        tags,
    })
}

/// What a runner says about itself, read leniently: GitLab only requires
/// `info` to be an object, so a field of an unexpected type (a feature that
/// is not a boolean, a number where a string was expected) is ignored rather
/// than failing the request.
pub fn lenient_info(info: Option<Value>) -> RunnerInfo {
    let Some(Value::Object(map)) = info else {
        return RunnerInfo::default();
    };
    let text = |key: &str| match map.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    RunnerInfo {
        name: text("name"),
        version: text("version"),
        revision: text("revision"),
        platform: text("platform"),
        architecture: text("architecture"),
        executor: text("executor"),
        shell: text("shell"),
        features: map.get("features").and_then(Value::as_object).map(|f| {
            f.iter()
                .filter_map(|(k, v)| forerunner_protocol::de::bool_value(v).map(|b| (k.clone(), b)))
                .collect()
        }),
        config: map.get("config").cloned(),
        labels: map.get("labels").and_then(Value::as_object).map(|l| {
            l.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        }),
    }
}

/// What a registration token registers: where the runner goes, and
/// whether that namespace still accepts registration tokens.
struct Registrar {
    runner_type: RunnerType,
    group_id: Option<i64>,
    project_id: Option<i64>,
    allowed: bool,
}

/// Resolves a registration token in GitLab's order: the instance token, a
/// project's, then a group's (§2).
async fn resolve_registration_token(
    state: &AppState,
    settings: &AppSettings,
    token_digest: &str,
) -> ApiResult<Option<Registrar>> {
    let namespaces = &state.store.namespaces;
    if settings.registration_token_digest.as_deref() == Some(token_digest) {
        return Ok(Some(Registrar {
            runner_type: RunnerType::InstanceType,
            group_id: None,
            project_id: None,
            allowed: true,
        }));
    }
    if let Some(project) = namespaces.project_by_runners_token(token_digest).await? {
        let allowed = match project.group_id {
            Some(group_id) => namespaces
                .group_by_id(group_id)
                .await?
                .is_none_or(|g| g.allow_runner_registration_token),
            None => true,
        };
        return Ok(Some(Registrar {
            runner_type: RunnerType::ProjectType,
            group_id: None,
            project_id: Some(project.id),
            allowed,
        }));
    }
    Ok(namespaces
        .group_by_runners_token(token_digest)
        .await?
        .map(|group| Registrar {
            runner_type: RunnerType::GroupType,
            group_id: Some(group.id),
            project_id: None,
            allowed: group.allow_runner_registration_token,
        }))
}

/// `POST /api/v4/runners`: legacy registration with a registration token.
pub async fn register(State(state): State<AppState>, mut params: Params) -> ApiResult<Response> {
    let info = lenient_info(params.take("info"));
    let req: RegisterRunnerRequest = params.parse()?;
    if req.token.is_empty() {
        return Err(ApiError::InvalidParams("token is missing".into()));
    }
    let attrs = check_params(&req.attributes)?;
    let settings = state.store.settings.settings().await?;
    let registrar = resolve_registration_token(&state, &settings, &digest(&req.token)).await?;
    let Some(registrar) = registrar else {
        if !settings.allow_runner_registration_token {
            return Err(ApiError::Gone("runner registration disallowed"));
        }
        tracing::info!(token = %short_token(&req.token), "refused registration with an invalid token");
        return Err(ApiError::forbidden("invalid token supplied"));
    };
    if !(settings.allow_runner_registration_token && registrar.allowed) {
        return Err(ApiError::Gone("runner registration disallowed"));
    }
    let runner_type = registrar.runner_type;
    let token = mint_runner_token(runner_type, RegistrationType::RegistrationToken);
    let mut new = new_runner(
        runner_type,
        RegistrationType::RegistrationToken,
        &token,
        attrs,
    )
    .map_err(ApiError::Validation)?;
    new.group_id = registrar.group_id;
    new.project_id = registrar.project_id;
    new.name = info.name;
    let runner = state.store.runners.create_runner(new).await?;
    tracing::info!(
        runner_id = runner.id,
        runner_type = runner_type.as_str(),
        token = %token,
        "registered runner with a registration token"
    );
    Ok(created(&runner, token.expose()))
}

fn created(runner: &Runner, token: &str) -> Response {
    (
        StatusCode::CREATED,
        Json(RunnerRegistrationDetails {
            id: runner.id,
            token: token.to_owned(),
            token_expires_at: runner.token_expires_at,
        }),
    )
        .into_response()
}

/// Authenticates a runner token and records the contact of the machine
/// that sent it (GitLab's `authenticate_runner!` with `ensure_runner_manager`):
/// the manager `(runner, system_id)` is created or updated with `info` and
/// the client address, and both get `contacted_at = now`. `POST
/// /runners/verify` uses it, and so will `POST /jobs/request`.
pub async fn authenticate_and_record_contact(
    state: &AppState,
    token: &str,
    system_id: Option<&str>,
    info: RunnerInfo,
    ip: Option<String>,
) -> ApiResult<(Runner, RunnerManager)> {
    let system_id = system_id
        .filter(|s| !s.is_empty())
        .unwrap_or(LEGACY_SYSTEM_ID);
    if system_id.chars().count() > 64 {
        return Err(ApiError::InvalidParams(
            "system_id is too long (maximum is 64 characters)".into(),
        ));
    }
    let runner = authenticate_runner(state, token).await?;
    let heartbeat = ManagerHeartbeat {
        system_id: system_id.to_owned(),
        version: info.version,
        revision: info.revision,
        platform: info.platform,
        architecture: info.architecture,
        executor: info.executor,
        ip_address: ip,
    };
    let manager = state
        .store
        .runners
        .heartbeat(runner.id, heartbeat, now())
        .await?;
    Ok((runner, manager))
}

/// `POST /api/v4/runners/verify`: checks a token and records the machine.
pub async fn verify(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    mut params: Params,
) -> ApiResult<Response> {
    let info = lenient_info(params.take("info"));
    let req: VerifyRunnerRequest = params.parse()?;
    let (runner, _) =
        authenticate_and_record_contact(&state, &req.token, req.system_id.as_deref(), info, ip)
            .await?;
    tracing::debug!(runner_id = runner.id, token = %runner.token_short, "verified runner");
    Ok(Json(RunnerRegistrationDetails {
        id: runner.id,
        token: req.token,
        token_expires_at: runner.token_expires_at,
    })
    .into_response())
}

/// `DELETE /api/v4/runners`: a runner removes itself.
pub async fn unregister(State(state): State<AppState>, params: Params) -> ApiResult<StatusCode> {
    let req: RunnerTokenRequest = params.parse()?;
    let runner = authenticate_runner(&state, &req.token).await?;
    state.store.runners.delete_runner(runner.id).await?;
    tracing::info!(runner_id = runner.id, token = %runner.token_short, "runner unregistered");
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v4/runners/managers`: a machine stops using a token.
pub async fn unregister_manager(
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<StatusCode> {
    let req: UnregisterManagerRequest = params.parse()?;
    if req.token.is_empty() {
        return Err(ApiError::InvalidParams("token is missing".into()));
    }
    if req.system_id.is_empty() {
        return Err(ApiError::InvalidParams("system_id is missing".into()));
    }
    let runner = authenticate_runner(&state, &req.token).await?;
    if !state
        .store
        .runners
        .delete_manager(runner.id, &req.system_id)
        .await?
    {
        return Err(ApiError::NotFound("Runner manager not found"));
    }
    tracing::info!(runner_id = runner.id, system_id = %req.system_id, "runner manager unregistered");
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a runner's token and answers `201 {token, token_expires_at}`.
pub async fn reset_token_of(state: &AppState, runner: &Runner) -> ApiResult<Response> {
    let token = mint_runner_token(runner.runner_type, runner.registration_type);
    state
        .store
        .runners
        .set_runner_token(runner.id, &token.digest(), &token.short(), None)
        .await?;
    tracing::info!(runner_id = runner.id, old = %runner.token_short, new = %token, "reset runner token");
    Ok((
        StatusCode::CREATED,
        Json(ResetTokenResponse {
            token: token.expose().to_owned(),
            token_expires_at: None,
        }),
    )
        .into_response())
}

/// `POST /api/v4/runners/reset_authentication_token`: a runner rotates its
/// own token.
pub async fn reset_token(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    let req: RunnerTokenRequest = params.parse()?;
    let runner = authenticate_runner(&state, &req.token).await?;
    reset_token_of(&state, &runner).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_rules() {
        let e = model_errors(&[], false, Some(60), None);
        assert_eq!(
            full_messages(&e),
            "Maximum timeout needs to be at least 10 minutes, Tags list can not be empty when runner is not allowed to pick untagged jobs"
        );
        assert!(model_errors(&["a".into()], false, Some(600), Some("n")).is_empty());
    }

    #[test]
    fn info_is_read_leniently() {
        let info = lenient_info(Some(json!({
            "name": "gitlab-runner", "version": 17, "platform": ["x"],
            "features": {"refspecs": true, "odd": "yes", "bad": {}},
            "labels": {"a": "b", "n": 1}, "config": {"gpus": ""}
        })));
        assert_eq!(info.name.as_deref(), Some("gitlab-runner"));
        assert_eq!(info.version.as_deref(), Some("17"));
        assert_eq!(info.platform, None);
        let features = info.features.unwrap();
        assert_eq!(features.len(), 2);
        assert!(features["refspecs"] && features["odd"]);
        assert_eq!(info.labels.unwrap().len(), 1);
        assert_eq!(lenient_info(Some(json!("text"))), RunnerInfo::default());
    }

    #[test]
    fn tokens_by_kind() {
        let t = mint_runner_token(RunnerType::GroupType, RegistrationType::AuthenticatedUser);
        assert!(t.expose().starts_with("glrt-t2_"));
        let t = mint_runner_token(RunnerType::GroupType, RegistrationType::RegistrationToken);
        assert!(t.expose().starts_with("glrtr-"));
    }
}
