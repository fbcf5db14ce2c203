//! The `201` body of `POST /jobs/request`: everything a runner needs to run
//! one job, shaped as GitLab's `API::Entities::Ci::JobRequest::Response`.

use forerunner_protocol::failure::FailureReason;
use forerunner_protocol::jobs::{
    ArtifactsFile, Dependency, GitInfo, JobFeatures, JobInfo, JobResponse, JobStep, RunnerJobInfo,
    StepName, When,
};

use crate::ci::variables::{job_variables, repository_url, JobContext};
use crate::ci::{Ci, CiError};
use crate::domain::{now, Job, JobStatus, Runner, VariableOwner};
use crate::git::{RefKind, ResolvedRef};

/// `git_info.depth`: GitLab's default `ci_default_git_depth`.
pub const GIT_DEPTH: u32 = 20;

/// The jobs whose artifacts `job` downloads: `dependencies:` when given,
/// else the `needs:` with `artifacts: true`, else every job of earlier
/// stages (latest attempts).
pub fn dependencies_of<'a>(job: &Job, jobs: &'a [Job]) -> Vec<&'a Job> {
    let latest = jobs.iter().filter(|j| !j.retried && j.id != job.id);
    match (&job.spec.dependencies, &job.spec.needs) {
        (Some(names), _) => latest.filter(|j| names.contains(&j.name)).collect(),
        (None, Some(needs)) => latest
            .filter(|j| needs.iter().any(|n| n.artifacts && n.job == j.name))
            .collect(),
        (None, None) => latest.filter(|j| j.stage_index < job.stage_index).collect(),
    }
}

impl Ci {
    /// The payload of `job`, just claimed by `runner` with `token`.
    pub async fn payload(
        &self,
        job: &Job,
        runner: &Runner,
        token: &str,
        base_url: &str,
    ) -> Result<JobResponse, CiError> {
        let store = self.store();
        let missing = |what: &str| CiError::Other(anyhow::anyhow!("the job's {what} is gone"));
        let pipeline = store
            .ci
            .pipeline_by_id(job.pipeline_id)
            .await?
            .ok_or_else(|| missing("pipeline"))?;
        let project = store
            .namespaces
            .project_by_id(job.project_id)
            .await?
            .ok_or_else(|| missing("project"))?;
        let groups = match project.group_id {
            Some(g) => store.namespaces.group_and_ancestors(g).await?,
            None => Vec::new(),
        };
        let namespace = project
            .full_path
            .rsplit_once('/')
            .map_or("", |(ns, _)| ns)
            .to_owned();
        let mut group_vars = Vec::with_capacity(groups.len());
        for g in &groups {
            group_vars.push(store.ci.variables(VariableOwner::Group(g.id)).await?);
        }
        let project_vars = store
            .ci
            .variables(VariableOwner::Project(project.id))
            .await?;
        let ctx = JobContext {
            base_url,
            project: &project,
            namespace: &namespace,
            groups: &groups,
            pipeline: &pipeline,
            job,
            token,
            runner,
        };
        let variables = job_variables(&ctx, &group_vars, &project_vars);
        let timeout = job.timeout.unwrap_or(crate::ci::queue::DEFAULT_JOB_TIMEOUT);
        let mut steps = vec![JobStep {
            name: StepName::Script,
            script: job
                .spec
                .before_script
                .iter()
                .chain(&job.spec.script)
                .cloned()
                .collect(),
            timeout,
            when: When::OnSuccess,
            allow_failure: false,
        }];
        if !job.spec.after_script.is_empty() {
            steps.push(JobStep {
                name: StepName::AfterScript,
                script: job.spec.after_script.clone(),
                timeout,
                when: When::Always,
                allow_failure: true,
            });
        }
        // `needs:` may name jobs of the same stage; stage order alone
        // only earlier ones.
        let below = if job.spec.needs.is_some() || job.spec.dependencies.is_some() {
            job.stage_index + 1
        } else {
            job.stage_index
        };
        let jobs = store.ci.jobs_before_stage(pipeline.id, below).await?;
        let dependencies = dependencies_of(job, &jobs)
            .into_iter()
            .filter(|d| d.status == JobStatus::Success || d.artifacts.is_some())
            .map(|d| Dependency {
                id: d.id,
                name: d.name.clone(),
                token: token.to_owned(),
                artifacts_file: d.artifacts.as_ref().map(|a| ArtifactsFile {
                    filename: a.filename.clone(),
                    size: a.size,
                }),
            })
            .collect();
        let resolved = ResolvedRef {
            kind: if pipeline.tag {
                RefKind::Tag
            } else if pipeline.ref_name == pipeline.sha {
                // A pipeline for a bare commit stores its sha as the ref:
                // there is no branch to fetch, only the pipeline's ref.
                RefKind::Commit
            } else {
                RefKind::Branch
            },
            name: pipeline.ref_name.clone(),
            sha: pipeline.sha.clone(),
        };
        let queued = job
            .queued_at
            .map(|q| (now() - q).num_milliseconds() as f64 / 1000.0);
        Ok(JobResponse {
            id: job.id,
            token: token.to_owned(),
            allow_git_fetch: true,
            job_info: JobInfo {
                id: job.id,
                name: job.name.clone(),
                stage: job.stage.clone(),
                pipeline_id: pipeline.id,
                project_id: project.id,
                project_name: project.name.clone(),
                project_full_path: project.full_path.clone(),
                time_in_queue_seconds: queued,
            },
            git_info: GitInfo {
                repo_url: repository_url(base_url, &project.full_path, token),
                ref_name: pipeline.ref_name.clone(),
                sha: pipeline.sha.clone(),
                before_sha: pipeline.before_sha.clone(),
                ref_type: resolved.kind.as_str().to_owned(),
                refspecs: resolved.refspecs(u64::try_from(pipeline.id).ok(), GIT_DEPTH),
                depth: i64::from(GIT_DEPTH),
                protected: Some(pipeline.protected),
                repo_object_format: Some("sha1".into()),
            },
            runner_info: RunnerJobInfo {
                timeout,
                runner_session_url: None,
            },
            variables,
            steps,
            image: job.spec.image.clone(),
            services: job.spec.services.clone(),
            artifacts: job.spec.artifacts.clone(),
            cache: job.spec.cache.clone(),
            credentials: Vec::new(),
            dependencies,
            features: JobFeatures {
                trace_sections: true,
                failure_reasons: FailureReason::ADVERTISED
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
                token_mask_prefixes: Vec::new(),
            },
        })
    }
}
