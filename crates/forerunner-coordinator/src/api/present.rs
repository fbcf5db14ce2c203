//! Conversions from domain types to the wire entities of
//! `forerunner_protocol::management` (GitLab's Grape entities).

use chrono::{DateTime, Utc};
use forerunner_protocol::management as wire;
use forerunner_protocol::runners::RunnerType;

use crate::api::auth::BaseUrl;
use crate::domain::{Group, Project, Runner, RunnerManager, User};

/// `Entities::UserBasic`.
pub fn user_basic(user: &User, base: &BaseUrl) -> wire::UserBasic {
    wire::UserBasic {
        id: user.id,
        username: user.username.clone(),
        name: user.name.clone(),
        state: user.state.clone(),
        locked: false,
        avatar_url: None,
        web_url: base.join(&format!("/{}", user.username)),
    }
}

/// `Entities::UserPublic`, with `is_admin` when `show_admin`.
pub fn user(user: &User, base: &BaseUrl, show_admin: bool) -> wire::User {
    wire::User {
        basic: user_basic(user, base),
        created_at: Some(user.created_at),
        email: user.email.clone(),
        is_admin: show_admin.then_some(user.is_admin),
        bot: false,
        can_create_group: true,
        can_create_project: true,
        two_factor_enabled: false,
        external: false,
    }
}

/// `Entities::Ci::Runner`; `created_by` when the creator is given.
pub fn runner(
    runner: &Runner,
    creator: Option<&User>,
    base: &BaseUrl,
    now: DateTime<Utc>,
) -> wire::Runner {
    wire::Runner {
        id: runner.id,
        description: runner.description.clone(),
        ip_address: None,
        active: runner.active,
        paused: !runner.active,
        is_shared: runner.runner_type == RunnerType::InstanceType,
        runner_type: runner.runner_type,
        name: runner.name.clone(),
        online: runner.is_online(now),
        created_by: creator.map(|u| user_basic(u, base)),
        created_at: Some(runner.created_at),
        status: runner.status(now),
        job_execution_status: wire::JobExecutionStatus::Idle,
    }
}

/// `Entities::Ci::RunnerDetails`; version and platform come from the most
/// recently contacted manager.
pub fn runner_details(
    r: &Runner,
    creator: Option<&User>,
    managers: &[RunnerManager],
    projects: &[Project],
    group: Option<&Group>,
    base: &BaseUrl,
    now: DateTime<Utc>,
) -> wire::RunnerDetails {
    let latest = managers.iter().max_by_key(|m| m.contacted_at);
    let from_latest = |f: fn(&RunnerManager) -> &Option<String>| latest.and_then(|m| f(m).clone());
    wire::RunnerDetails {
        runner: runner(r, creator, base, now),
        tag_list: r.tags.clone(),
        run_untagged: r.run_untagged,
        locked: r.locked,
        maximum_timeout: r.maximum_timeout,
        access_level: r.access_level.as_str().to_owned(),
        version: from_latest(|m| &m.version),
        revision: from_latest(|m| &m.revision),
        platform: from_latest(|m| &m.platform),
        architecture: from_latest(|m| &m.architecture),
        contacted_at: r.contacted_at,
        maintenance_note: r.maintenance_note.clone(),
        projects: projects
            .iter()
            .map(|p| wire::BasicProject {
                id: p.id,
                name: p.name.clone(),
                name_with_namespace: p.full_path.replace('/', " / "),
                path: p.path.clone(),
                path_with_namespace: p.full_path.clone(),
            })
            .collect(),
        groups: group
            .map(|g| wire::BasicGroup {
                id: g.id,
                name: g.name.clone(),
                web_url: base.join(&format!("/groups/{}", g.full_path)),
            })
            .into_iter()
            .collect(),
    }
}

/// `Entities::Ci::RunnerManager`.
pub fn manager(m: &RunnerManager, now: DateTime<Utc>) -> wire::RunnerManager {
    wire::RunnerManager {
        id: m.id,
        system_id: m.system_id.clone(),
        version: m.version.clone(),
        revision: m.revision.clone(),
        platform: m.platform.clone(),
        architecture: m.architecture.clone(),
        executor: m.executor.clone(),
        created_at: Some(m.created_at),
        contacted_at: m.contacted_at,
        ip_address: m.ip_address.clone(),
        status: m.status(now),
        job_execution_status: wire::JobExecutionStatus::Idle,
    }
}

/// `Entities::Group`.
pub fn group(g: &Group, base: &BaseUrl) -> wire::Group {
    wire::Group {
        id: g.id,
        name: g.name.clone(),
        path: g.path.clone(),
        full_path: g.full_path.clone(),
        full_name: g.full_name.clone(),
        description: g.description.clone(),
        visibility: g.visibility.clone(),
        web_url: base.join(&format!("/groups/{}", g.full_path)),
        parent_id: g.parent_id,
        created_at: Some(g.created_at),
    }
}

/// The namespace of a project: its group, or its creator's personal namespace.
pub fn namespace(group: Option<&Group>, owner: Option<&User>, base: &BaseUrl) -> wire::Namespace {
    match (group, owner) {
        (Some(g), _) => wire::Namespace {
            id: g.id,
            name: g.name.clone(),
            path: g.path.clone(),
            kind: "group".into(),
            full_path: g.full_path.clone(),
            parent_id: g.parent_id,
            web_url: base.join(&format!("/groups/{}", g.full_path)),
        },
        (None, Some(u)) => wire::Namespace {
            id: u.id,
            name: u.name.clone(),
            path: u.username.clone(),
            kind: "user".into(),
            full_path: u.username.clone(),
            parent_id: None,
            web_url: base.join(&format!("/{}", u.username)),
        },
        (None, None) => wire::Namespace {
            id: 0,
            name: String::new(),
            path: String::new(),
            kind: "user".into(),
            full_path: String::new(),
            parent_id: None,
            web_url: base.0.clone(),
        },
    }
}

/// `Entities::Project`.
pub fn project(p: &Project, namespace: wire::Namespace, base: &BaseUrl) -> wire::Project {
    let name_with_namespace = if namespace.kind == "group" {
        format!("{} / {}", namespace.name.replace('/', " / "), p.name)
    } else {
        format!("{} / {}", namespace.name, p.name)
    };
    wire::Project {
        id: p.id,
        name: p.name.clone(),
        path: p.path.clone(),
        path_with_namespace: p.full_path.clone(),
        name_with_namespace,
        description: p.description.clone(),
        default_branch: Some(p.default_branch.clone()),
        visibility: p.visibility.clone(),
        web_url: base.join(&format!("/{}", p.full_path)),
        created_at: Some(p.created_at),
        namespace,
        import_url: p.import_url.clone(),
        shared_runners_enabled: p.shared_runners_enabled,
        group_runners_enabled: p.group_runners_enabled,
        creator_id: p.creator_id,
    }
}
