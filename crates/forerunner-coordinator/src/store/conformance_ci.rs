//! The [`CiStore`](crate::store::CiStore) part of the conformance suite:
//! pipeline numbering, conditional status changes, the exactly-once claim
//! under concurrency, retries and CI/CD variables.

use forerunner_protocol::runners::{AccessLevel, RunnerType};

use crate::domain::{
    digest, now, CiVariable, CommitDetails, JobChange, JobSpec, JobStatus, NewJob, NewPipeline,
    NewProject, NewRunner, Page, RegistrationType, VariableOwner,
};
use crate::store::{JobFilter, Store, StoreError};

fn job(name: &str, stage_index: i64) -> NewJob {
    NewJob {
        name: name.into(),
        stage: format!("stage{stage_index}"),
        stage_index,
        when: "on_success".into(),
        allow_failure: false,
        tags: vec!["docker".into()],
        spec: JobSpec {
            script: vec!["true".into()],
            ..JobSpec::default()
        },
        attempt: 0,
        user_id: None,
    }
}

fn pipeline(project_id: i64) -> NewPipeline {
    NewPipeline {
        project_id,
        ref_name: "main".into(),
        tag: false,
        sha: "a".repeat(40),
        before_sha: "0".repeat(40),
        source: "api".into(),
        protected: true,
        user_id: None,
        name: None,
        variables: vec![],
        commit: CommitDetails {
            message: "subject\n\nbody".into(),
            ..CommitDetails::default()
        },
    }
}

/// Runs the CI checks on a store (projects may already exist).
pub(crate) async fn pipelines_and_jobs(store: &Store) {
    let project = store
        .namespaces
        .create_project(NewProject {
            name: "ci".into(),
            path: "ci".into(),
            full_path: "conformance/ci".into(),
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
    let ci = &store.ci;
    let (first, jobs) = ci
        .create_pipeline(pipeline(project.id), vec![job("a", 1), job("b", 2)], now())
        .await
        .unwrap();
    assert_eq!(first.iid, 1);
    assert_eq!(first.commit.message, "subject\n\nbody");
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.status == JobStatus::Created));
    assert_eq!(jobs[0].spec.script, ["true"]);
    let (second, _) = ci
        .create_pipeline(pipeline(project.id), vec![], now())
        .await
        .unwrap();
    assert_eq!(second.iid, 2, "pipelines are numbered per project");
    let listed = ci
        .list_pipelines(project.id, &JobFilter::default(), Page::ALL)
        .await
        .unwrap();
    assert_eq!(listed.total, 2);
    assert_eq!(listed.items[0].id, second.id, "newest first");

    let a = &jobs[0];
    let pending = JobChange {
        queued_at: Some(now()),
        ..JobChange::default()
    };
    assert_eq!(
        ci.start_jobs(&[(a.id, JobStatus::Pending, pending.clone())])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        ci.start_jobs(&[(a.id, JobStatus::Pending, pending)])
            .await
            .unwrap(),
        0,
        "only created jobs start"
    );
    let queued = ci.queued_jobs(0, 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].tags, ["docker"]);
    assert!(queued[0].protected);

    let runner = store
        .runners
        .create_runner(NewRunner {
            runner_type: RunnerType::InstanceType,
            registration_type: RegistrationType::AuthenticatedUser,
            token_digest: digest("glrt-ci-conformance"),
            token_short: "glrt-ci".into(),
            description: None,
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
            tags: vec![],
        })
        .await
        .unwrap();
    // Many concurrent claims of one job: exactly one wins.
    let claims = (0..16).map(|i| {
        let ci = ci.clone();
        let (id, runner_id) = (a.id, runner.id);
        tokio::spawn(async move {
            ci.claim_job(id, runner_id, &digest(&format!("t{i}")), 60, now())
                .await
                .unwrap()
        })
    });
    let mut winners = 0;
    for c in claims {
        if c.await.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    let running = ci.job_by_id(a.id).await.unwrap().unwrap();
    assert_eq!(running.status, JobStatus::Running);
    assert_eq!(running.timeout, Some(60));
    let token_owner = (0..16)
        .map(|i| digest(&format!("t{i}")))
        .collect::<Vec<_>>();
    let mut found = 0;
    for d in &token_owner {
        if ci.job_by_token(d).await.unwrap().is_some() {
            found += 1;
        }
    }
    assert_eq!(found, 1, "only the winner's token is stored");
    assert!(ci.queued_jobs(0, 10).await.unwrap().is_empty());

    assert!(!ci
        .transition_job(
            a.id,
            &[JobStatus::Pending],
            JobStatus::Canceled,
            JobChange::default()
        )
        .await
        .unwrap());
    assert!(ci
        .transition_job(
            a.id,
            &[JobStatus::Running],
            JobStatus::Failed,
            JobChange {
                failure_reason: Some("script_failure".into()),
                exit_code: Some(2),
                finished_at: Some(now()),
                ..JobChange::default()
            },
        )
        .await
        .unwrap());
    let mut next = job("a", 1);
    next.attempt = 1;
    let retry = ci.retry_job(a.id, next.clone(), now()).await.unwrap();
    assert_eq!(retry.attempt, 1);
    assert!(ci.job_by_id(a.id).await.unwrap().unwrap().retried);
    assert!(matches!(
        ci.retry_job(a.id, next, now()).await,
        Err(StoreError::NotFound(_))
    ));
    let latest = ci
        .list_jobs(project.id, Some(first.id), &JobFilter::default(), Page::ALL)
        .await
        .unwrap();
    assert_eq!(latest.total, 2, "retried attempts are hidden by default");
    let all = ci
        .list_jobs(
            project.id,
            Some(first.id),
            &JobFilter {
                include_retried: true,
                ..JobFilter::default()
            },
            Page::ALL,
        )
        .await
        .unwrap();
    assert_eq!(all.total, 3);
    assert_eq!(
        ci.jobs_before_stage(first.id, 2).await.unwrap().len(),
        1,
        "latest attempts of earlier stages"
    );

    let owner = VariableOwner::Project(project.id);
    let var = CiVariable {
        key: "K".into(),
        value: "v".into(),
        variable_type: "env_var".into(),
        protected: false,
        masked: false,
        raw: false,
        environment_scope: "*".into(),
        description: None,
    };
    ci.create_variable(owner, var.clone()).await.unwrap();
    assert!(matches!(
        ci.create_variable(owner, var.clone()).await,
        Err(StoreError::Conflict(_))
    ));
    ci.update_variable(
        owner,
        CiVariable {
            value: "w".into(),
            ..var.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(ci.variables(owner).await.unwrap()[0].value, "w");
    assert!(ci.delete_variable(owner, "K").await.unwrap());
    assert!(!ci.delete_variable(owner, "K").await.unwrap());
    assert!(matches!(
        ci.update_variable(owner, var).await,
        Err(StoreError::NotFound(_))
    ));
}
