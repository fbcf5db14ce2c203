//! Who may see and change what. Deliberately simple until memberships exist:
//! administrators may do anything; a group is owned by its creator, a
//! project by its creator and by the owner of its group (ancestors
//! included).

use crate::api::error::ApiResult;
use crate::api::AppState;
use crate::domain::{Group, Project, Runner, User};
use forerunner_protocol::runners::RunnerType;

/// Whether `user` owns `group` or one of its ancestors.
pub async fn owns_group(state: &AppState, user: &User, group: &Group) -> ApiResult<bool> {
    if group.is_owned_by(user) {
        return Ok(true);
    }
    let chain = state.store.namespaces.group_and_ancestors(group.id).await?;
    Ok(chain.iter().any(|g| g.is_owned_by(user)))
}

/// Whether `user` owns `project` (directly or through its group).
pub async fn owns_project(state: &AppState, user: &User, project: &Project) -> ApiResult<bool> {
    if user.is_admin || project.creator_id == Some(user.id) {
        return Ok(true);
    }
    match project.group_id {
        Some(group_id) => match state.store.namespaces.group_by_id(group_id).await? {
            Some(group) => owns_group(state, user, &group).await,
            None => Ok(false),
        },
        None => Ok(false),
    }
}

/// Whether `user` may read `project` (owners; public projects for everyone).
pub async fn can_read_project(state: &AppState, user: &User, project: &Project) -> ApiResult<bool> {
    Ok(project.visibility == "public" || owns_project(state, user, project).await?)
}

/// Whether `user` may read `group` (owners; public groups for everyone).
pub async fn can_read_group(state: &AppState, user: &User, group: &Group) -> ApiResult<bool> {
    Ok(group.visibility == "public" || owns_group(state, user, group).await?)
}

/// Whether `user` may manage `runner`: administrators; the owner of a group
/// runner's group; the owner of any project a project runner serves.
pub async fn can_manage_runner(state: &AppState, user: &User, runner: &Runner) -> ApiResult<bool> {
    if user.is_admin {
        return Ok(true);
    }
    match runner.runner_type {
        RunnerType::InstanceType => Ok(false),
        RunnerType::GroupType => match runner.group_id {
            Some(id) => match state.store.namespaces.group_by_id(id).await? {
                Some(group) => owns_group(state, user, &group).await,
                None => Ok(false),
            },
            None => Ok(false),
        },
        RunnerType::ProjectType => {
            for id in &runner.project_ids {
                if let Some(project) = state.store.namespaces.project_by_id(*id).await? {
                    if owns_project(state, user, &project).await? {
                        return Ok(true);
                    }
                }
            }
            Ok(false)
        }
    }
}

/// Whether `user` may read `runner`: instance runners are visible to every
/// user, others to those who may manage them.
pub async fn can_read_runner(state: &AppState, user: &User, runner: &Runner) -> ApiResult<bool> {
    Ok(runner.runner_type == RunnerType::InstanceType
        || can_manage_runner(state, user, runner).await?)
}
