//! Who may clone a project over HTTP: `gitlab-ci-token` with the token of a
//! job of that project that is running (or being canceled), as GitLab
//! allows a job to fetch its own repository.

use async_trait::async_trait;

use crate::domain::digest;
use crate::git::{Access, Authorizer, BasicCredentials};
use crate::store::Store;

/// The job-token [`Authorizer`].
pub struct JobTokenAuthorizer {
    store: Store,
}

impl JobTokenAuthorizer {
    /// An authorizer over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Authorizer for JobTokenAuthorizer {
    async fn authorize(&self, project_path: &str, credentials: &BasicCredentials) -> Access {
        if credentials.username() != "gitlab-ci-token" || credentials.password().is_empty() {
            return Access::Denied;
        }
        let job = match self
            .store
            .ci
            .job_by_token(&digest(credentials.password()))
            .await
        {
            Ok(Some(job)) if job.status.is_executing() => job,
            Ok(_) => return Access::Denied,
            Err(err) => {
                tracing::error!(error = %err, "failed to look up a job token");
                return Access::Denied;
            }
        };
        match self.store.namespaces.project_by_id(job.project_id).await {
            Ok(Some(p)) if p.full_path == project_path => Access::Granted,
            _ => Access::Denied,
        }
    }
}
