//! The variables of a job as GitLab sends them to a runner: predefined ones
//! (`CI`, `CI_JOB_*`, `CI_PIPELINE_*`, `CI_PROJECT_*`, `CI_COMMIT_*`,
//! `CI_SERVER_*`, …), then the YAML variables, then group, project and
//! pipeline variables. The runner lets later entries win, which gives
//! GitLab's precedence: pipeline > project > group > YAML > predefined.
//! Protected group and project variables only reach jobs of protected refs.

use forerunner_protocol::jobs::JobVariable;

use crate::domain::{CiVariable, Group, Job, Pipeline, Project, Runner};

/// What the predefined variables are made of.
pub struct JobContext<'a> {
    /// `http(s)://host[:port]` as the runner reaches the coordinator.
    pub base_url: &'a str,
    /// The job's project.
    pub project: &'a Project,
    /// The project's namespace path (`group/sub` or the owner's username).
    pub namespace: &'a str,
    /// The project's group and its ancestors, nearest first.
    pub groups: &'a [Group],
    /// The pipeline.
    pub pipeline: &'a Pipeline,
    /// The job.
    pub job: &'a Job,
    /// The job token, in clear.
    pub token: &'a str,
    /// The runner running the job.
    pub runner: &'a Runner,
}

fn var(key: &str, value: impl Into<String>) -> JobVariable {
    JobVariable {
        key: key.into(),
        value: value.into(),
        public: true,
        masked: false,
        file: false,
        raw: false,
    }
}

/// GitLab's `CI_COMMIT_REF_SLUG`: lowercase, runs of characters other than
/// `0-9a-z` replaced by `-`, at most 63 bytes, no leading or trailing `-`.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_start_matches('-').chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// The predefined variables of a job.
pub fn predefined(ctx: &JobContext<'_>) -> Vec<JobVariable> {
    let JobContext {
        base_url,
        project,
        pipeline,
        job,
        runner,
        ..
    } = *ctx;
    let url = url::Url::parse(base_url).ok();
    let host = url
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let port = url
        .as_ref()
        .and_then(url::Url::port_or_known_default)
        .map(|p| p.to_string())
        .unwrap_or_default();
    let scheme = url
        .as_ref()
        .map(|u| u.scheme().to_owned())
        .unwrap_or_else(|| "http".into());
    let project_url = format!("{base_url}/{}", project.full_path);
    let repo_url = repository_url(base_url, &project.full_path, ctx.token);
    let mut vars = vec![
        var("CI", "true"),
        var("GITLAB_CI", "true"),
        var("CI_SERVER", "yes"),
        var("CI_SERVER_NAME", "GitLab"),
        var("CI_SERVER_URL", base_url),
        var("CI_SERVER_HOST", host.clone()),
        var("CI_SERVER_PORT", port),
        var("CI_SERVER_PROTOCOL", scheme),
        var("CI_SERVER_FQDN", host),
        var("CI_SERVER_VERSION", crate::api::meta::GITLAB_VERSION),
        var("CI_API_V4_URL", format!("{base_url}/api/v4")),
        var("CI_API_GRAPHQL_URL", format!("{base_url}/api/graphql")),
        JobVariable {
            public: false,
            masked: true,
            ..var("CI_JOB_TOKEN", ctx.token)
        },
        var("CI_JOB_ID", job.id.to_string()),
        var("CI_JOB_NAME", job.name.clone()),
        var("CI_JOB_NAME_SLUG", slug(&job.name)),
        var("CI_JOB_STAGE", job.stage.clone()),
        var("CI_JOB_URL", format!("{project_url}/-/jobs/{}", job.id)),
        var(
            "CI_JOB_STARTED_AT",
            job.started_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
        ),
        var(
            "CI_JOB_TIMEOUT",
            job.timeout.unwrap_or_default().to_string(),
        ),
        var("CI_JOB_MANUAL", (job.when == "manual").to_string()),
        var("CI_PIPELINE_ID", pipeline.id.to_string()),
        var("CI_PIPELINE_IID", pipeline.iid.to_string()),
        var("CI_PIPELINE_SOURCE", pipeline.source.clone()),
        var(
            "CI_PIPELINE_URL",
            format!("{project_url}/-/pipelines/{}", pipeline.id),
        ),
        var(
            "CI_PIPELINE_CREATED_AT",
            pipeline
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        var("CI_PROJECT_ID", project.id.to_string()),
        var("CI_PROJECT_NAME", project.path.clone()),
        var("CI_PROJECT_TITLE", project.name.clone()),
        var("CI_PROJECT_PATH", project.full_path.clone()),
        var("CI_PROJECT_PATH_SLUG", slug(&project.full_path)),
        var("CI_PROJECT_NAMESPACE", ctx.namespace),
        var(
            "CI_PROJECT_ROOT_NAMESPACE",
            ctx.namespace.split('/').next().unwrap_or_default(),
        ),
        var("CI_PROJECT_URL", project_url.clone()),
        var("CI_PROJECT_VISIBILITY", project.visibility.clone()),
        var("CI_PROJECT_REPOSITORY_LANGUAGES", ""),
        var("CI_DEFAULT_BRANCH", project.default_branch.clone()),
        JobVariable {
            public: false,
            ..var("CI_REPOSITORY_URL", repo_url)
        },
        var("CI_COMMIT_SHA", pipeline.sha.clone()),
        var(
            "CI_COMMIT_SHORT_SHA",
            pipeline.sha.chars().take(8).collect::<String>(),
        ),
        var("CI_COMMIT_BEFORE_SHA", pipeline.before_sha.clone()),
        var("CI_COMMIT_REF_NAME", pipeline.ref_name.clone()),
        var("CI_COMMIT_REF_SLUG", slug(&pipeline.ref_name)),
        var("CI_COMMIT_REF_PROTECTED", pipeline.protected.to_string()),
        var("CI_COMMIT_MESSAGE", pipeline.commit.message.clone()),
        var(
            "CI_COMMIT_TITLE",
            pipeline.commit.message.lines().next().unwrap_or_default(),
        ),
        var(
            "CI_COMMIT_DESCRIPTION",
            pipeline
                .commit
                .message
                .split_once('\n')
                .map_or("", |(_, rest)| rest.trim_start_matches('\n')),
        ),
        var("CI_COMMIT_AUTHOR", pipeline.commit.author.clone()),
        var("CI_COMMIT_TIMESTAMP", pipeline.commit.timestamp.clone()),
        var("CI_RUNNER_ID", runner.id.to_string()),
        var(
            "CI_RUNNER_DESCRIPTION",
            runner.description.clone().unwrap_or_default(),
        ),
        var(
            "CI_RUNNER_TAGS",
            serde_json::to_string(&runner.tags).unwrap_or_default(),
        ),
        var("CI_REGISTRY_USER", "gitlab-ci-token"),
        JobVariable {
            public: false,
            masked: true,
            ..var("CI_REGISTRY_PASSWORD", ctx.token)
        },
        var("CI_DEPENDENCY_PROXY_USER", "gitlab-ci-token"),
        JobVariable {
            public: false,
            masked: true,
            ..var("CI_DEPENDENCY_PROXY_PASSWORD", ctx.token)
        },
        var(
            "GITLAB_USER_ID",
            job.user_id
                .or(pipeline.user_id)
                .unwrap_or_default()
                .to_string(),
        ),
        var("GITLAB_FEATURES", ""),
    ];
    if pipeline.tag {
        vars.push(var("CI_COMMIT_TAG", pipeline.ref_name.clone()));
    } else {
        vars.push(var("CI_COMMIT_BRANCH", pipeline.ref_name.clone()));
    }
    if let Some(name) = &pipeline.name {
        vars.push(var("CI_PIPELINE_NAME", name.clone()));
    }
    if let Some(group) = ctx.groups.first() {
        vars.push(var("CI_PROJECT_NAMESPACE_ID", group.id.to_string()));
    }
    if let Some((index, total)) = job.spec.parallel {
        vars.push(var("CI_NODE_INDEX", index.to_string()));
        vars.push(var("CI_NODE_TOTAL", total.to_string()));
    } else {
        vars.push(var("CI_NODE_TOTAL", "1"));
    }
    if let Some(env) = &job.spec.environment {
        vars.push(var("CI_ENVIRONMENT_NAME", env.clone()));
        vars.push(var("CI_ENVIRONMENT_SLUG", slug(env)));
    }
    vars
}

/// A stored CI/CD variable as the runner gets it.
pub fn from_ci_variable(v: &CiVariable) -> JobVariable {
    JobVariable {
        key: v.key.clone(),
        value: v.value.clone(),
        public: false,
        masked: v.masked,
        file: v.variable_type == "file",
        raw: v.raw,
    }
}

/// `http(s)://gitlab-ci-token:<token>@host/<project>.git`.
pub fn repository_url(base_url: &str, project_path: &str, token: &str) -> String {
    match base_url.split_once("://") {
        Some((scheme, rest)) => {
            format!("{scheme}://gitlab-ci-token:{token}@{rest}/{project_path}.git")
        }
        None => format!("{base_url}/{project_path}.git"),
    }
}

/// Every variable of a job in the order the runner applies them.
pub fn job_variables(
    ctx: &JobContext<'_>,
    group_vars: &[Vec<CiVariable>],
    project_vars: &[CiVariable],
) -> Vec<JobVariable> {
    let mut out = predefined(ctx);
    for v in &ctx.job.spec.variables {
        out.push(JobVariable {
            raw: v.raw,
            ..var(&v.key, v.value.clone())
        });
    }
    let visible = |v: &&CiVariable| !v.protected || ctx.pipeline.protected;
    // Outermost group first, so nearer groups win.
    for vars in group_vars.iter().rev() {
        out.extend(vars.iter().filter(visible).map(from_ci_variable));
    }
    out.extend(project_vars.iter().filter(visible).map(from_ci_variable));
    for v in &ctx.pipeline.variables {
        out.push(JobVariable {
            public: false,
            file: v.variable_type == "file",
            ..var(&v.key, v.value.clone())
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_like_gitlab() {
        assert_eq!(slug("feature/Add-Thing"), "feature-add-thing");
        assert_eq!(slug("--x--"), "x");
        assert_eq!(slug(&"a".repeat(70)).len(), 63);
    }

    #[test]
    fn repository_urls_carry_the_token() {
        assert_eq!(
            repository_url("http://h:8080", "g/p", "glcbt-x"),
            "http://gitlab-ci-token:glcbt-x@h:8080/g/p.git"
        );
    }
}
