//! The behaviour every [`Store`] backend must show, as one test suite.
//!
//! Each backend's tests call [`run_all`] on a fresh, empty store: SQLite in
//! `sqlite.rs`, PostgreSQL when it is added. Handlers rely only on what is
//! checked here.

use chrono::Duration;
use forerunner_protocol::runners::{AccessLevel, RunnerType};

use crate::domain::{
    digest, now, ManagerHeartbeat, NewGroup, NewPersonalAccessToken, NewProject, NewRunner,
    NewUser, Page, ProjectUpdate, RegistrationType, RunnerFilter, RunnerScope, RunnerUpdate, Scope,
    StatusFilter,
};
use crate::store::{Store, StoreError};

/// Runs every check on an empty store.
pub(crate) async fn run_all(store: &Store) {
    users_and_tokens(store).await;
    groups_and_projects(store).await;
    runners(store).await;
    settings(store).await;
    super::conformance_ci::pipelines_and_jobs(store).await;
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        name: name.into(),
        email: None,
        is_admin: false,
    }
}

async fn users_and_tokens(store: &Store) {
    let a = store.users.create_user(new_user("u-a")).await.unwrap();
    let b = store.users.create_user(new_user("u-b")).await.unwrap();
    assert!(b.id > a.id);
    assert!(matches!(
        store.users.create_user(new_user("u-a")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.users.user_by_username("u-b").await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(store.users.user_by_id(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.users.user_by_id(-1).await.unwrap(), None);
    let page = store
        .users
        .list_users(Page {
            offset: 1,
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.items, vec![b.clone()]);

    let expires = now() + Duration::days(1);
    let token = store
        .users
        .create_token(NewPersonalAccessToken {
            user_id: a.id,
            name: "t".into(),
            token_digest: digest("glpat-one"),
            token_short: "one".into(),
            scopes: vec![Scope::Api, Scope::CreateRunner],
            expires_at: Some(expires),
        })
        .await
        .unwrap();
    let auth = store
        .users
        .authenticate(&digest("glpat-one"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(auth.user, a);
    assert_eq!(auth.token, token);
    assert_eq!(auth.token.expires_at, Some(expires));
    assert!(auth.token.has(Scope::CreateRunner) && !auth.token.has(Scope::ReadApi));
    assert!(store
        .users
        .authenticate(&digest("glpat-two"))
        .await
        .unwrap()
        .is_none());
}

async fn groups_and_projects(store: &Store) {
    let owner = store.users.create_user(new_user("g-owner")).await.unwrap();
    let group = |name: &str, parent_id| NewGroup {
        name: name.into(),
        path: name.to_lowercase(),
        parent_id,
        description: None,
        visibility: "private".into(),
        creator_id: Some(owner.id),
        runners_token: None,
    };
    let top = store
        .namespaces
        .create_group(group("Top", None))
        .await
        .unwrap();
    let sub = store
        .namespaces
        .create_group(group("Sub", Some(top.id)))
        .await
        .unwrap();
    assert_eq!(sub.full_path, "top/sub");
    assert_eq!(sub.full_name, "Top / Sub");
    assert!(matches!(
        store.namespaces.create_group(group("Top", None)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .namespaces
            .create_group(group("Orphan", Some(-5)))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let chain = store.namespaces.group_and_ancestors(sub.id).await.unwrap();
    assert_eq!(
        chain.iter().map(|g| g.id).collect::<Vec<_>>(),
        [sub.id, top.id]
    );
    assert_eq!(
        store
            .namespaces
            .group_by_full_path("top/sub")
            .await
            .unwrap(),
        Some(sub.clone())
    );
    let owned = store
        .namespaces
        .list_groups(Some(owner.id), Page::ALL)
        .await
        .unwrap();
    assert_eq!(owned.total, 2);

    let project = store
        .namespaces
        .create_project(NewProject {
            name: "App".into(),
            path: "app".into(),
            full_path: "top/sub/app".into(),
            group_id: Some(sub.id),
            creator_id: None,
            description: None,
            visibility: "private".into(),
            import_url: Some("/srv/app.git".into()),
            default_branch: "main".into(),
            runners_token: Some((digest("GR1348941p"), "GR1348941p".into())),
        })
        .await
        .unwrap();
    assert_eq!(project.import_url.as_deref(), Some("/srv/app.git"));
    assert_eq!(
        store
            .namespaces
            .project_by_full_path("top/sub/app")
            .await
            .unwrap(),
        Some(project.clone())
    );
    let updated = store
        .namespaces
        .update_project(
            project.id,
            ProjectUpdate {
                shared_runners_enabled: Some(false),
                import_url: Some("/srv/other.git".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!updated.shared_runners_enabled && updated.group_runners_enabled);
    assert_eq!(updated.import_url.as_deref(), Some("/srv/other.git"));
    assert_eq!(updated.default_branch, "main");
    assert!(matches!(
        store
            .namespaces
            .update_project(-1, ProjectUpdate::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
    let project = updated;
    // Owned through the group.
    let owned = store
        .namespaces
        .list_projects(Some(owner.id), Page::ALL)
        .await
        .unwrap();
    assert_eq!(owned.items, vec![project.clone()]);
    assert_eq!(
        store
            .namespaces
            .project_by_runners_token(&digest("GR1348941p"))
            .await
            .unwrap()
            .map(|p| p.id),
        Some(project.id)
    );
    store
        .namespaces
        .set_group_runners_token(top.id, Some((digest("GR1348941g"), "GR1348941g".into())))
        .await
        .unwrap();
    let found = store
        .namespaces
        .group_by_runners_token(&digest("GR1348941g"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.runners_token_short.as_deref(), Some("GR1348941g"));
    store
        .namespaces
        .set_project_runners_token(project.id, None)
        .await
        .unwrap();
    assert!(store
        .namespaces
        .project_by_runners_token(&digest("GR1348941p"))
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        store.namespaces.set_group_runners_token(-1, None).await,
        Err(StoreError::NotFound(_))
    ));
}

fn new_runner(runner_type: RunnerType, token: &str, tags: &[&str]) -> NewRunner {
    NewRunner {
        runner_type,
        registration_type: RegistrationType::AuthenticatedUser,
        token_digest: digest(token),
        token_short: token.chars().take(9).collect(),
        description: Some(token.into()),
        maintenance_note: None,
        active: true,
        locked: false,
        run_untagged: true,
        access_level: AccessLevel::NotProtected,
        maximum_timeout: None,
        group_id: None,
        project_id: None,
        creator_id: None,
        name: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

async fn runners(store: &Store) {
    let project = store
        .namespaces
        .create_project(NewProject {
            name: "r".into(),
            path: "r".into(),
            full_path: "runners/r".into(),
            group_id: None,
            creator_id: None,
            description: None,
            visibility: "private".into(),
            import_url: None,
            default_branch: "main".into(),
            runners_token: None,
        })
        .await
        .unwrap();
    let second = store
        .namespaces
        .create_project(NewProject {
            name: "s".into(),
            path: "s".into(),
            full_path: "runners/s".into(),
            group_id: None,
            creator_id: None,
            description: None,
            visibility: "private".into(),
            import_url: None,
            default_branch: "main".into(),
            runners_token: None,
        })
        .await
        .unwrap();
    let instance = store
        .runners
        .create_runner(new_runner(
            RunnerType::InstanceType,
            "glrt-t1_a",
            &["b", "a", "with \"quotes\", commas\u{1f}"],
        ))
        .await
        .unwrap();
    // Any character survives the round trip.
    assert_eq!(instance.tags, ["a", "b", "with \"quotes\", commas\u{1f}"]);
    assert_eq!(instance.contacted_at, None);
    let mut p = new_runner(RunnerType::ProjectType, "glrt-t3_b", &[]);
    p.project_id = Some(project.id);
    p.active = false;
    let project_runner = store.runners.create_runner(p).await.unwrap();
    assert_eq!(project_runner.project_ids, [project.id]);
    assert!(matches!(
        store
            .runners
            .create_runner(new_runner(RunnerType::InstanceType, "glrt-t1_a", &[]))
            .await,
        Err(StoreError::Conflict(_))
    ));

    let t = now();
    assert_eq!(
        store
            .runners
            .runner_by_token(&digest("glrt-t1_a"), t)
            .await
            .unwrap()
            .map(|r| r.id),
        Some(instance.id)
    );
    // Expired tokens are not found.
    store
        .runners
        .set_runner_token(
            instance.id,
            &digest("glrt-t1_new"),
            "t1_new",
            Some(t - Duration::seconds(1)),
        )
        .await
        .unwrap();
    assert!(store
        .runners
        .runner_by_token(&digest("glrt-t1_new"), t)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .runners
        .runner_by_token(&digest("glrt-t1_a"), t)
        .await
        .unwrap()
        .is_none());
    store
        .runners
        .set_runner_token(instance.id, &digest("glrt-t1_a"), "t1_a", None)
        .await
        .unwrap();

    // Filters.
    let list = |filter: RunnerFilter| async move {
        store
            .runners
            .list_runners(&filter, now(), Page::ALL)
            .await
            .unwrap()
            .items
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    let all = || RunnerFilter::new(RunnerScope::All);
    assert_eq!(list(all()).await, [instance.id, project_runner.id]);
    let mut f = all();
    f.types = vec![RunnerType::ProjectType];
    assert_eq!(list(f).await, [project_runner.id]);
    let mut f = all();
    f.tags = vec!["a".into(), "b".into()];
    assert_eq!(list(f).await, [instance.id]);
    let mut f = all();
    f.tags = vec!["a".into(), "nope".into()];
    assert_eq!(list(f).await, Vec::<i64>::new());
    let mut f = all();
    f.active = Some(false);
    assert_eq!(list(f).await, [project_runner.id]);
    let mut f = all();
    f.status = Some(StatusFilter::NeverContacted);
    assert_eq!(list(f).await, [instance.id, project_runner.id]);
    let available = RunnerFilter::new(RunnerScope::AvailableTo {
        project_id: Some(second.id),
        group_ids: vec![],
        instance: false,
    });
    assert_eq!(list(available.clone()).await, Vec::<i64>::new());
    let paged = store
        .runners
        .list_runners(
            &all(),
            now(),
            Page {
                offset: 1,
                limit: 5,
            },
        )
        .await
        .unwrap();
    assert_eq!((paged.total, paged.items.len()), (2, 1));

    // Heartbeats upsert managers and set contact times.
    let hb = |system_id: &str, version: Option<&str>| ManagerHeartbeat {
        system_id: system_id.into(),
        version: version.map(str::to_owned),
        ..Default::default()
    };
    let old = now() - Duration::hours(3);
    let m1 = store
        .runners
        .heartbeat(instance.id, hb("s_1", Some("1.0")), old)
        .await
        .unwrap();
    let mut f = all();
    f.status = Some(StatusFilter::Offline);
    assert_eq!(list(f).await, [instance.id]);
    let m1_again = store
        .runners
        .heartbeat(instance.id, hb("s_1", None), now())
        .await
        .unwrap();
    assert_eq!(m1_again.id, m1.id);
    assert_eq!(m1_again.version.as_deref(), Some("1.0"));
    assert_eq!(m1_again.created_at, m1.created_at);
    store
        .runners
        .heartbeat(instance.id, hb("s_2", None), now())
        .await
        .unwrap();
    let mut f = all();
    f.status = Some(StatusFilter::Online);
    assert_eq!(list(f).await, [instance.id]);
    assert_eq!(store.runners.managers(instance.id).await.unwrap().len(), 2);
    assert!(store
        .runners
        .delete_manager(instance.id, "s_1")
        .await
        .unwrap());
    assert!(!store
        .runners
        .delete_manager(instance.id, "s_1")
        .await
        .unwrap());
    let r = store
        .runners
        .runner_by_id(instance.id)
        .await
        .unwrap()
        .unwrap();
    assert!(r.contacted_at.is_some());
    assert!(store
        .runners
        .delete_manager(instance.id, "s_2")
        .await
        .unwrap());
    let r = store
        .runners
        .runner_by_id(instance.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.contacted_at, None);

    // Updates replace tags and bump the queue version.
    let updated = store
        .runners
        .update_runner(
            instance.id,
            RunnerUpdate {
                tags: Some(vec!["z".into()]),
                locked: Some(true),
                maximum_timeout: Some(3600),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.tags, ["z"]);
    assert!(updated.locked);
    assert_eq!(updated.maximum_timeout, Some(3600));
    assert_eq!(updated.description, instance.description);
    assert!(updated.queue_version > instance.queue_version);
    assert!(matches!(
        store
            .runners
            .update_runner(-1, RunnerUpdate::default())
            .await,
        Err(StoreError::NotFound(_))
    ));

    // Project assignments.
    assert!(store
        .runners
        .assign_project(project_runner.id, second.id)
        .await
        .unwrap());
    assert!(!store
        .runners
        .assign_project(project_runner.id, second.id)
        .await
        .unwrap());
    let r = store
        .runners
        .runner_by_id(project_runner.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.project_ids, [project.id, second.id]);
    assert!(r.queue_version > project_runner.queue_version);
    assert_eq!(list(available.clone()).await, [project_runner.id]);
    assert!(store
        .runners
        .unassign_project(project_runner.id, second.id)
        .await
        .unwrap());
    assert!(!store
        .runners
        .unassign_project(project_runner.id, second.id)
        .await
        .unwrap());

    // Deletion removes managers too.
    store
        .runners
        .heartbeat(project_runner.id, hb("s_9", None), now())
        .await
        .unwrap();
    assert!(store
        .runners
        .delete_runner(project_runner.id)
        .await
        .unwrap());
    assert!(!store
        .runners
        .delete_runner(project_runner.id)
        .await
        .unwrap());
    assert!(store
        .runners
        .managers(project_runner.id)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .runners
        .runner_by_id(project_runner.id)
        .await
        .unwrap()
        .is_none());
}

async fn settings(store: &Store) {
    let s = store.settings.settings().await.unwrap();
    assert!(s.allow_runner_registration_token);
    assert_eq!(s.registration_token_digest, None);
    let s = store
        .settings
        .set_allow_runner_registration_token(false)
        .await
        .unwrap();
    assert!(!s.allow_runner_registration_token);
    store
        .settings
        .set_registration_token(&digest("GR1348941i"), "GR1348941i")
        .await
        .unwrap();
    let s = store.settings.settings().await.unwrap();
    assert_eq!(s.registration_token_digest, Some(digest("GR1348941i")));
    assert_eq!(s.registration_token_short.as_deref(), Some("GR1348941i"));
}
