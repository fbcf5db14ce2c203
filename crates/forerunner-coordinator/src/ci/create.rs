//! Creating a pipeline: sync the project's mirror from its `import_url`,
//! resolve the ref, read `.gitlab-ci.yml` (and every YAML file it could
//! include) at that commit, compile and plan it with `forerunner-pipeline`,
//! store the pipeline and its jobs, and let [`crate::ci::progress`] start
//! the first jobs.
//!
//! Two steps, so a caller can look at the plan before anything is stored:
//! [`Ci::prepare_pipeline`] (sync, resolve, read, compile, plan, select) and
//! [`Ci::create_prepared`] (store, start); [`Ci::create_pipeline`] does both.
//!
//! Refusals carry GitLab's `base` messages ("Reference not found",
//! "Missing CI config file", the compiler's diagnostics, …), which the API
//! answers as `400 {"message":{"base":[…]}}`. Configuration problems keep
//! their structure ([`CiError::Config`]) for callers that print them with
//! their position.

use std::collections::HashMap;

use forerunner_pipeline::model::{AllowFailure, CacheKey, When as YamlWhen};
use forerunner_pipeline::{
    compile, plan, select, Diagnostic, FileReader, Plan, PlanInput, PlanOutcome, PlannedJob,
    Selection,
};
use forerunner_protocol::jobs::{ArtifactSpec, CacheSpec, Image, JobVariable, When};

use crate::ci::{Ci, CiError};
use crate::domain::{
    now, CommitDetails, JobSpec, NeedSpec, NewJob, NewPipeline, Pipeline, PipelineVariable,
    Project, RetrySpec, YamlVariable,
};
use crate::git::{GitError, RefKind, ZERO_SHA};

/// The configuration file read at the pipeline's commit.
pub const CI_CONFIG_PATH: &str = ".gitlab-ci.yml";

/// What `POST /projects/:id/pipeline` asks for.
#[derive(Debug, Clone, Default)]
pub struct PipelineRequest {
    /// Branch, tag or commit.
    pub ref_name: String,
    /// Variables for every job.
    pub variables: Vec<PipelineVariable>,
    /// Who asks.
    pub user_id: Option<i64>,
    /// `api`, `web`, `push`, …
    pub source: String,
    /// Keep only these jobs and stages, with every job they wait for
    /// ([`forerunner_pipeline::select`]). Internal: the REST API always
    /// creates the whole pipeline; `forerunner exec JOB…` uses it. Empty
    /// (the default) keeps everything.
    pub selection: Selection,
}

/// A pipeline planned from the repository but not stored yet:
/// [`Ci::prepare_pipeline`] makes it, [`Ci::create_prepared`] stores it.
/// Between the two a caller can show the plan and the warnings, or stop
/// (`forerunner exec --list`).
#[derive(Debug, Clone)]
pub struct PreparedPipeline {
    /// The branch or tag name (or the sha, for a commit).
    pub ref_name: String,
    /// Whether `ref_name` is a tag.
    pub tag: bool,
    /// Whether `ref_name` is a commit sha rather than a branch or tag.
    pub commit_ref: bool,
    /// The commit.
    pub sha: String,
    /// Its parent (or the zero sha).
    pub before_sha: String,
    /// Whether the ref is protected (the default branch).
    pub protected: bool,
    /// `CI_PIPELINE_SOURCE`.
    pub source: String,
    /// Message, author and time of the commit.
    pub commit: CommitDetails,
    /// The planned jobs (after the request's selection).
    pub plan: Plan,
    /// Warnings of compiling and planning; errors refuse the pipeline
    /// ([`CiError::Config`]).
    pub warnings: Vec<Diagnostic>,
}

/// The repository's files at one commit, as the planner reads them:
/// YAML files are loaded ahead (reads are async, the planner is not).
struct RepoFiles {
    yaml: HashMap<String, String>,
    all: Vec<String>,
}

impl FileReader for RepoFiles {
    fn read(&self, path: &str) -> Option<String> {
        self.yaml.get(path).cloned()
    }

    fn files(&self) -> Option<Vec<String>> {
        Some(self.all.clone())
    }
}

fn rejected(message: impl Into<String>) -> CiError {
    CiError::Rejected(vec![message.into()])
}

impl Ci {
    /// Creates a pipeline for `project` (see the module docs).
    pub async fn create_pipeline(
        &self,
        project: &Project,
        request: PipelineRequest,
    ) -> Result<Pipeline, CiError> {
        let prepared = self.prepare_pipeline(project, &request).await?;
        self.create_prepared(project, request, prepared).await
    }

    /// Syncs the mirror, resolves the ref, reads, compiles and plans
    /// `.gitlab-ci.yml` and applies the request's selection; stores nothing.
    pub async fn prepare_pipeline(
        &self,
        project: &Project,
        request: &PipelineRequest,
    ) -> Result<PreparedPipeline, CiError> {
        let import_url = project
            .import_url
            .as_deref()
            .ok_or_else(|| rejected("The project has no repository: set its import_url first"))?;
        let mirror = self
            .mirrors()
            .project(&project.full_path)
            .map_err(anyhow::Error::new)?;
        mirror.sync(import_url).await.map_err(|err| {
            tracing::warn!(project_id = project.id, error = %err, "repository sync failed");
            rejected(format!("Failed to fetch the repository: {err}"))
        })?;
        let resolved = match mirror.resolve_ref(&request.ref_name).await {
            Ok(r) => r,
            Err(GitError::RefNotFound { .. } | GitError::InvalidRef { .. }) => {
                return Err(rejected("Reference not found"))
            }
            Err(err) => return Err(CiError::Other(err.into())),
        };
        let sha = resolved.sha.clone();
        let all = mirror.list_files(&sha).await.map_err(anyhow::Error::new)?;
        let mut yaml = HashMap::new();
        for path in all
            .iter()
            .filter(|p| p.ends_with(".yml") || p.ends_with(".yaml"))
        {
            if let Some(bytes) = mirror
                .read_file(&sha, path)
                .await
                .map_err(anyhow::Error::new)?
            {
                yaml.insert(path.clone(), String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        let Some(source) = yaml.get(CI_CONFIG_PATH).cloned() else {
            return Err(rejected("Missing CI config file"));
        };
        let files = RepoFiles { yaml, all };
        let compiled = compile(CI_CONFIG_PATH, &source, &files);
        let mut diagnostics = compiled.diagnostics;
        let Some(model) = compiled
            .model
            .filter(|_| !diagnostics.iter().any(|d| d.is_error()))
        else {
            return Err(CiError::Config(diagnostics));
        };
        let is_tag = resolved.kind == RefKind::Tag;
        let protected = !is_tag && resolved.name == project.default_branch;
        let (commit, before_sha) = match mirror.commit_info(&sha).await {
            Ok(info) => (
                CommitDetails {
                    message: info.message,
                    author: info.author,
                    timestamp: info.timestamp,
                },
                info.parent,
            ),
            Err(err) => {
                tracing::warn!(project_id = project.id, error = %err, "failed to read the commit message");
                (CommitDetails::default(), None)
            }
        };
        let before_sha = before_sha.unwrap_or_else(|| ZERO_SHA.to_owned());
        let source_name = if request.source.is_empty() {
            "api".to_owned()
        } else {
            request.source.clone()
        };
        let mut input = if is_tag {
            PlanInput::tag(&resolved.name)
        } else {
            PlanInput::branch(&resolved.name)
        };
        input.protected = protected;
        input.source = source_name.clone();
        input.existing_files = files.all.clone();
        input.variables = vec![
            ("CI_DEFAULT_BRANCH".into(), project.default_branch.clone()),
            ("CI_PROJECT_PATH".into(), project.full_path.clone()),
            ("CI_PROJECT_NAME".into(), project.path.clone()),
            ("CI_COMMIT_SHA".into(), sha.clone()),
        ];
        input.variables.extend(
            request
                .variables
                .iter()
                .map(|v| (v.key.clone(), v.value.clone())),
        );
        let report = plan(&model, &input);
        diagnostics.extend(report.diagnostics);
        let planned = match report.outcome {
            PlanOutcome::Created(p) => p,
            PlanOutcome::NotCreated(reason) => return Err(CiError::NotCreated(reason)),
            PlanOutcome::Failed => return Err(CiError::Config(diagnostics)),
        };
        let planned = select(&model, &planned, &request.selection).map_err(CiError::Selection)?;
        Ok(PreparedPipeline {
            ref_name: resolved.name.clone(),
            tag: is_tag,
            commit_ref: resolved.kind == RefKind::Commit,
            sha,
            before_sha,
            protected,
            source: source_name,
            commit,
            plan: planned,
            warnings: diagnostics,
        })
    }

    /// Stores a pipeline [`Ci::prepare_pipeline`] planned for `project` and
    /// `request`, and starts its first jobs.
    pub async fn create_prepared(
        &self,
        project: &Project,
        request: PipelineRequest,
        prepared: PreparedPipeline,
    ) -> Result<Pipeline, CiError> {
        let planned = prepared.plan;
        let jobs = planned
            .jobs
            .iter()
            .map(|j| new_job(j, request.user_id))
            .collect();
        let sha = prepared.sha;
        let (pipeline, _) = self
            .store()
            .ci
            .create_pipeline(
                NewPipeline {
                    project_id: project.id,
                    ref_name: prepared.ref_name,
                    tag: prepared.tag,
                    sha: sha.clone(),
                    before_sha: prepared.before_sha,
                    source: prepared.source,
                    protected: prepared.protected,
                    user_id: request.user_id,
                    name: planned.name.clone(),
                    variables: request.variables,
                    commit: prepared.commit,
                },
                jobs,
                now(),
            )
            .await?;
        let mirror = self
            .mirrors()
            .project(&project.full_path)
            .map_err(anyhow::Error::new)?;
        if let Ok(id) = u64::try_from(pipeline.id) {
            if let Err(err) = mirror.keep_pipeline_ref(id, &sha).await {
                tracing::warn!(pipeline_id = pipeline.id, error = %err, "failed to keep the pipeline ref");
            }
        }
        tracing::info!(
            project_id = project.id,
            pipeline_id = pipeline.id,
            jobs = planned.jobs.len(),
            "created pipeline"
        );
        self.advance(pipeline.id).await?;
        Ok(self
            .store()
            .ci
            .pipeline_by_id(pipeline.id)
            .await?
            .unwrap_or(pipeline))
    }
}

fn when(w: YamlWhen) -> When {
    match w {
        YamlWhen::OnFailure => When::OnFailure,
        YamlWhen::Always => When::Always,
        _ => When::OnSuccess,
    }
}

/// The stored form of a planned job.
pub fn new_job(job: &PlannedJob, user_id: Option<i64>) -> NewJob {
    let (allow_failure, exit_codes) = match &job.allow_failure {
        AllowFailure::No => (false, Vec::new()),
        AllowFailure::Yes => (true, Vec::new()),
        AllowFailure::ExitCodes(codes) => (false, codes.clone()),
    };
    let mut artifacts = Vec::new();
    if let Some(a) = &job.artifacts {
        if !a.paths.is_empty() || a.untracked {
            artifacts.push(ArtifactSpec {
                name: a.name.clone().unwrap_or_default(),
                untracked: a.untracked,
                paths: a.paths.clone(),
                exclude: a.exclude.clone(),
                when: a.when.map(when).unwrap_or_default(),
                artifact_type: "archive".into(),
                artifact_format: "zip".into(),
                expire_in: a.expire_in.as_ref().map(|d| d.text.clone()),
            });
        }
        for report in &a.reports {
            artifacts.push(ArtifactSpec {
                name: report.kind.clone(),
                untracked: false,
                paths: report.paths.clone(),
                exclude: Vec::new(),
                when: When::Always,
                artifact_type: report.kind.clone(),
                artifact_format: "gzip".into(),
                expire_in: a.expire_in.as_ref().map(|d| d.text.clone()),
            });
        }
    }
    let cache = job
        .cache
        .iter()
        .map(|c| CacheSpec {
            key: match &c.key {
                CacheKey::Literal(k) => k.clone(),
                CacheKey::Files { files, prefix } => format!(
                    "{}-{}",
                    prefix.clone().unwrap_or_else(|| "files".into()),
                    crate::domain::digest(&files.join("\n"))
                        .chars()
                        .take(16)
                        .collect::<String>()
                ),
            },
            untracked: c.untracked,
            policy: c.policy.clone(),
            paths: c.paths.clone(),
            when: when(c.when),
            fallback_keys: c.fallback_keys.clone(),
        })
        .collect();
    let spec = JobSpec {
        needs: job.needs.as_ref().map(|needs| {
            needs
                .iter()
                .map(|n| NeedSpec {
                    job: n.job.clone(),
                    artifacts: n.artifacts,
                    optional: n.optional,
                })
                .collect()
        }),
        dependencies: job.dependencies.clone(),
        image: job.image.as_ref().map(|i| Image {
            name: i.name.clone(),
            entrypoint: i.entrypoint.clone().unwrap_or_default(),
            pull_policy: i.pull_policy.clone(),
            ..Image::default()
        }),
        services: job
            .services
            .iter()
            .map(|s| Image {
                name: s.name.clone(),
                alias: s.alias.clone(),
                command: s.command.clone().unwrap_or_default(),
                entrypoint: s.entrypoint.clone().unwrap_or_default(),
                pull_policy: s.pull_policy.clone(),
                variables: s
                    .variables
                    .iter()
                    .map(|v| JobVariable {
                        key: v.key.clone(),
                        value: v.value.clone(),
                        public: true,
                        masked: false,
                        file: false,
                        raw: !v.expand,
                    })
                    .collect(),
            })
            .collect(),
        variables: job
            .variables
            .iter()
            .map(|v| YamlVariable {
                key: v.key.clone(),
                value: v.value.clone(),
                raw: !v.expand,
            })
            .collect(),
        before_script: job.before_script.clone(),
        script: job.script.clone(),
        after_script: job.after_script.clone(),
        artifacts,
        cache,
        timeout: job.timeout,
        retry: RetrySpec {
            max: job.retry.max,
            when: job.retry.when.clone(),
            exit_codes: job.retry.exit_codes.clone(),
        },
        allow_failure_exit_codes: exit_codes,
        start_in: job.start_in.as_ref().map(|d| d.seconds),
        environment: job.environment.as_ref().map(|e| e.name.clone()),
        parallel: job.parallel.as_ref().map(|p| (p.index, p.total)),
    };
    let mut tags = job.tags.clone();
    tags.sort();
    tags.dedup();
    NewJob {
        name: job.name.clone(),
        stage: job.stage.clone(),
        stage_index: i64::try_from(job.stage_index).unwrap_or(0),
        when: job.when.as_str().to_owned(),
        allow_failure,
        tags,
        spec,
        attempt: 0,
        user_id,
    }
}
