//! [`CiStore`] on SQLite: pipelines, jobs and CI/CD variables.
//!
//! Dispatch relies on one statement: [`CiStore::claim_job`] is an
//! `UPDATE … WHERE id = ? AND status = 'pending'`, and SQLite runs writes one
//! at a time, so of any number of concurrent claims of a job exactly one
//! changes a row. Every other status change is conditional the same way
//! ([`CiStore::transition_job`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{backend, unique, SqliteStore};
use crate::domain::{
    from_millis, to_millis, ArtifactsArchive, CiVariable, CommitDetails, Job, JobChange, JobSpec,
    JobStatus, NewJob, NewPipeline, Page, Paged, Pipeline, PipelineVariable, QueuedJob,
    VariableOwner,
};
use crate::store::{CiStore, JobFilter, StoreError, StoreResult};

const JOB_COLUMNS: &str = "id, pipeline_id, project_id, name, stage, stage_index, status, run_when,
    allow_failure, tags, spec, retried, attempt, runner_id, failure_reason, exit_code, timeout,
    user_id, created_at, queued_at, scheduled_at, started_at, finished_at, last_contact_at,
    artifacts_filename, artifacts_size, artifacts_expire_at";

const PIPELINE_COLUMNS: &str = "id, iid, project_id, ref, tag, sha, before_sha, source, status,
    protected, user_id, name, variables, commit_message, commit_author, commit_timestamp,
    created_at, updated_at, started_at, finished_at";

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} is unreadable: {err}").into())
}

fn status_of(text: &str) -> StoreResult<JobStatus> {
    JobStatus::parse(text).ok_or_else(|| corrupt("status", text))
}

fn opt_time(row: &SqliteRow, col: &str) -> StoreResult<Option<DateTime<Utc>>> {
    Ok(row
        .try_get::<Option<i64>, _>(col)
        .map_err(backend)?
        .map(from_millis))
}

fn job_from_row(row: &SqliteRow) -> StoreResult<Job> {
    let get_str = |c: &str| row.try_get::<String, _>(c).map_err(backend);
    let tags: Vec<String> =
        serde_json::from_str(&get_str("tags")?).map_err(|e| corrupt("job tags", e))?;
    let spec: JobSpec =
        serde_json::from_str(&get_str("spec")?).map_err(|e| corrupt("job spec", e))?;
    let artifacts = match row
        .try_get::<Option<String>, _>("artifacts_filename")
        .map_err(backend)?
    {
        Some(filename) => Some(ArtifactsArchive {
            filename,
            size: row
                .try_get::<Option<i64>, _>("artifacts_size")
                .map_err(backend)?
                .unwrap_or(0),
            expire_at: opt_time(row, "artifacts_expire_at")?,
        }),
        None => None,
    };
    Ok(Job {
        id: row.try_get("id").map_err(backend)?,
        pipeline_id: row.try_get("pipeline_id").map_err(backend)?,
        project_id: row.try_get("project_id").map_err(backend)?,
        name: get_str("name")?,
        stage: get_str("stage")?,
        stage_index: row.try_get("stage_index").map_err(backend)?,
        status: status_of(&get_str("status")?)?,
        when: get_str("run_when")?,
        allow_failure: row.try_get("allow_failure").map_err(backend)?,
        tags,
        spec,
        retried: row.try_get("retried").map_err(backend)?,
        attempt: row.try_get("attempt").map_err(backend)?,
        runner_id: row.try_get("runner_id").map_err(backend)?,
        failure_reason: row.try_get("failure_reason").map_err(backend)?,
        exit_code: row.try_get("exit_code").map_err(backend)?,
        timeout: row.try_get("timeout").map_err(backend)?,
        user_id: row.try_get("user_id").map_err(backend)?,
        created_at: from_millis(row.try_get("created_at").map_err(backend)?),
        queued_at: opt_time(row, "queued_at")?,
        scheduled_at: opt_time(row, "scheduled_at")?,
        started_at: opt_time(row, "started_at")?,
        finished_at: opt_time(row, "finished_at")?,
        last_contact_at: opt_time(row, "last_contact_at")?,
        artifacts,
    })
}

fn pipeline_from_row(row: &SqliteRow) -> StoreResult<Pipeline> {
    let get_str = |c: &str| row.try_get::<String, _>(c).map_err(backend);
    let variables: Vec<PipelineVariable> = serde_json::from_str(&get_str("variables")?)
        .map_err(|e| corrupt("pipeline variables", e))?;
    Ok(Pipeline {
        id: row.try_get("id").map_err(backend)?,
        iid: row.try_get("iid").map_err(backend)?,
        project_id: row.try_get("project_id").map_err(backend)?,
        ref_name: get_str("ref")?,
        tag: row.try_get("tag").map_err(backend)?,
        sha: get_str("sha")?,
        before_sha: get_str("before_sha")?,
        source: get_str("source")?,
        status: status_of(&get_str("status")?)?,
        protected: row.try_get("protected").map_err(backend)?,
        user_id: row.try_get("user_id").map_err(backend)?,
        name: row.try_get("name").map_err(backend)?,
        variables,
        commit: CommitDetails {
            message: get_str("commit_message")?,
            author: get_str("commit_author")?,
            timestamp: get_str("commit_timestamp")?,
        },
        created_at: from_millis(row.try_get("created_at").map_err(backend)?),
        updated_at: from_millis(row.try_get("updated_at").map_err(backend)?),
        started_at: opt_time(row, "started_at")?,
        finished_at: opt_time(row, "finished_at")?,
    })
}

fn variable_from_row(row: &SqliteRow) -> StoreResult<CiVariable> {
    Ok(CiVariable {
        key: row.try_get("key").map_err(backend)?,
        value: row.try_get("value").map_err(backend)?,
        variable_type: row.try_get("variable_type").map_err(backend)?,
        protected: row.try_get("protected").map_err(backend)?,
        masked: row.try_get("masked").map_err(backend)?,
        raw: row.try_get("raw").map_err(backend)?,
        environment_scope: row.try_get("environment_scope").map_err(backend)?,
        description: row.try_get("description").map_err(backend)?,
    })
}

fn owner_column(owner: VariableOwner) -> (&'static str, i64) {
    match owner {
        VariableOwner::Project(id) => ("project_id", id),
        VariableOwner::Group(id) => ("group_id", id),
    }
}

fn json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(Box::new(e)))
}

async fn insert_job(
    conn: &mut sqlx::SqliteConnection,
    pipeline_id: i64,
    project_id: i64,
    job: &NewJob,
    now: DateTime<Utc>,
) -> StoreResult<i64> {
    let id = sqlx::query(
        "INSERT INTO jobs (pipeline_id, project_id, name, stage, stage_index, status, run_when,
             allow_failure, tags, spec, attempt, user_id, created_at)
         VALUES (?, ?, ?, ?, ?, 'created', ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(pipeline_id)
    .bind(project_id)
    .bind(&job.name)
    .bind(&job.stage)
    .bind(job.stage_index)
    .bind(&job.when)
    .bind(job.allow_failure)
    .bind(json(&job.tags)?)
    .bind(json(&job.spec)?)
    .bind(job.attempt)
    .bind(job.user_id)
    .bind(to_millis(now))
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?
    .try_get::<i64, _>(0)
    .map_err(backend)?;
    Ok(id)
}

async fn transition(
    conn: &mut sqlx::SqliteConnection,
    job_id: i64,
    from: &[JobStatus],
    to: JobStatus,
    change: JobChange,
) -> StoreResult<bool> {
    let mut qb = QueryBuilder::<Sqlite>::new("UPDATE jobs SET status = ");
    qb.push_bind(to.as_str());
    qb.push(", failure_reason = COALESCE(")
        .push_bind(change.failure_reason)
        .push(", failure_reason)");
    qb.push(", exit_code = COALESCE(")
        .push_bind(change.exit_code)
        .push(", exit_code)");
    qb.push(", queued_at = COALESCE(")
        .push_bind(change.queued_at.map(to_millis))
        .push(", queued_at)");
    qb.push(", scheduled_at = COALESCE(")
        .push_bind(change.scheduled_at.map(to_millis))
        .push(", scheduled_at)");
    qb.push(", finished_at = COALESCE(")
        .push_bind(change.finished_at.map(to_millis))
        .push(", finished_at)");
    qb.push(", user_id = COALESCE(")
        .push_bind(change.user_id)
        .push(", user_id)");
    qb.push(", allow_failure = COALESCE(")
        .push_bind(change.allow_failure)
        .push(", allow_failure)");
    qb.push(" WHERE id = ").push_bind(job_id);
    push_statuses(&mut qb, from);
    let done = qb.build().execute(&mut *conn).await.map_err(backend)?;
    Ok(done.rows_affected() == 1)
}

fn push_statuses(qb: &mut QueryBuilder<'_, Sqlite>, statuses: &[JobStatus]) {
    if statuses.is_empty() {
        return;
    }
    qb.push(" AND status IN (");
    let mut list = qb.separated(", ");
    for s in statuses {
        list.push_bind(s.as_str());
    }
    list.push_unseparated(")");
}

#[async_trait]
impl CiStore for SqliteStore {
    async fn create_pipeline(
        &self,
        new: NewPipeline,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Pipeline, Vec<Job>)> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let id: i64 = sqlx::query(
            "INSERT INTO pipelines (project_id, iid, ref, tag, sha, before_sha, source, status,
                 protected, user_id, name, variables, commit_message, commit_author,
                 commit_timestamp, created_at, updated_at)
             VALUES (?, (SELECT COALESCE(MAX(iid), 0) + 1 FROM pipelines WHERE project_id = ?),
                 ?, ?, ?, ?, ?, 'created', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(new.project_id)
        .bind(new.project_id)
        .bind(&new.ref_name)
        .bind(new.tag)
        .bind(&new.sha)
        .bind(&new.before_sha)
        .bind(&new.source)
        .bind(new.protected)
        .bind(new.user_id)
        .bind(&new.name)
        .bind(json(&new.variables)?)
        .bind(&new.commit.message)
        .bind(&new.commit.author)
        .bind(&new.commit.timestamp)
        .bind(to_millis(now))
        .bind(to_millis(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?
        .try_get(0)
        .map_err(backend)?;
        for job in &jobs {
            insert_job(&mut tx, id, new.project_id, job, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        let pipeline = self
            .pipeline_by_id(id)
            .await?
            .ok_or(StoreError::NotFound("pipeline"))?;
        let jobs = self.pipeline_jobs(id).await?;
        Ok((pipeline, jobs))
    }

    async fn pipeline_by_id(&self, id: i64) -> StoreResult<Option<Pipeline>> {
        let row = sqlx::query(&format!(
            "SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(pipeline_from_row).transpose()
    }

    async fn list_pipelines(
        &self,
        project_id: i64,
        filter: &JobFilter,
        page: Page,
    ) -> StoreResult<Paged<Pipeline>> {
        let build = |select: &str| {
            let mut qb = QueryBuilder::<Sqlite>::new(format!(
                "SELECT {select} FROM pipelines WHERE project_id = "
            ));
            qb.push_bind(project_id);
            push_statuses(&mut qb, &filter.statuses);
            if let Some(r) = &filter.ref_name {
                qb.push(" AND ref = ").push_bind(r.clone());
            }
            qb
        };
        let total: i64 = build("COUNT(*)")
            .build()
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)?;
        let mut qb = build(PIPELINE_COLUMNS);
        qb.push(" ORDER BY id DESC LIMIT ")
            .push_bind(page.limit)
            .push(" OFFSET ")
            .push_bind(page.offset);
        let rows = qb.build().fetch_all(&self.pool).await.map_err(backend)?;
        let items = rows
            .iter()
            .map(pipeline_from_row)
            .collect::<StoreResult<_>>()?;
        Ok(Paged { items, total })
    }

    async fn set_pipeline_status(
        &self,
        id: i64,
        status: JobStatus,
        started_at: Option<DateTime<Utc>>,
        finished_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE pipelines SET status = ?, started_at = COALESCE(started_at, ?),
                 finished_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(started_at.map(to_millis))
        .bind(finished_at.map(to_millis))
        .bind(to_millis(now))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn pipeline_jobs(&self, pipeline_id: i64) -> StoreResult<Vec<Job>> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE pipeline_id = ? ORDER BY id"
        ))
        .bind(pipeline_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(job_from_row).collect()
    }

    async fn jobs_before_stage(&self, pipeline_id: i64, below_stage: i64) -> StoreResult<Vec<Job>> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE pipeline_id = ? AND stage_index < ? AND retried = 0 ORDER BY id"
        ))
        .bind(pipeline_id)
        .bind(below_stage)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(job_from_row).collect()
    }

    async fn job_by_id(&self, id: i64) -> StoreResult<Option<Job>> {
        let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn job_by_token(&self, digest: &str) -> StoreResult<Option<Job>> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE token_digest = ?"
        ))
        .bind(digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn list_jobs(
        &self,
        project_id: i64,
        pipeline_id: Option<i64>,
        filter: &JobFilter,
        page: Page,
    ) -> StoreResult<Paged<Job>> {
        let build = |select: &str| {
            let mut qb = QueryBuilder::<Sqlite>::new(format!(
                "SELECT {select} FROM jobs WHERE project_id = "
            ));
            qb.push_bind(project_id);
            if let Some(p) = pipeline_id {
                qb.push(" AND pipeline_id = ").push_bind(p);
            }
            if !filter.include_retried {
                qb.push(" AND retried = 0");
            }
            push_statuses(&mut qb, &filter.statuses);
            qb
        };
        let total: i64 = build("COUNT(*)")
            .build()
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)?;
        let mut qb = build(JOB_COLUMNS);
        // A pipeline's jobs come in order; a project's newest first.
        qb.push(if pipeline_id.is_some() {
            " ORDER BY id"
        } else {
            " ORDER BY id DESC"
        });
        qb.push(" LIMIT ")
            .push_bind(page.limit)
            .push(" OFFSET ")
            .push_bind(page.offset);
        let rows = qb.build().fetch_all(&self.pool).await.map_err(backend)?;
        let items = rows.iter().map(job_from_row).collect::<StoreResult<_>>()?;
        Ok(Paged { items, total })
    }

    async fn queued_jobs(&self, after: i64, limit: i64) -> StoreResult<Vec<QueuedJob>> {
        let rows = sqlx::query(
            "SELECT j.id, j.project_id, j.tags, pl.protected, p.group_id,
                    p.shared_runners_enabled, p.group_runners_enabled
             FROM jobs j
             JOIN pipelines pl ON pl.id = j.pipeline_id
             JOIN projects p ON p.id = j.project_id
             WHERE j.status = 'pending' AND j.id > ?
             ORDER BY j.id LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let tags: String = row.try_get("tags").map_err(backend)?;
                Ok(QueuedJob {
                    id: row.try_get("id").map_err(backend)?,
                    project_id: row.try_get("project_id").map_err(backend)?,
                    group_id: row.try_get("group_id").map_err(backend)?,
                    tags: serde_json::from_str(&tags).map_err(|e| corrupt("job tags", e))?,
                    protected: row.try_get("protected").map_err(backend)?,
                    shared_runners_enabled: row
                        .try_get("shared_runners_enabled")
                        .map_err(backend)?,
                    group_runners_enabled: row.try_get("group_runners_enabled").map_err(backend)?,
                })
            })
            .collect()
    }

    async fn claim_job(
        &self,
        job_id: i64,
        runner_id: i64,
        token_digest: &str,
        timeout: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'running', runner_id = ?, token_digest = ?, timeout = ?,
                 started_at = ?, last_contact_at = ?
             WHERE id = ? AND status = 'pending'",
        )
        .bind(runner_id)
        .bind(token_digest)
        .bind(timeout)
        .bind(to_millis(now))
        .bind(to_millis(now))
        .bind(job_id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn transition_job(
        &self,
        job_id: i64,
        from: &[JobStatus],
        to: JobStatus,
        change: JobChange,
    ) -> StoreResult<bool> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        transition(&mut conn, job_id, from, to, change).await
    }

    async fn start_jobs(&self, changes: &[(i64, JobStatus, JobChange)]) -> StoreResult<usize> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let mut moved = 0;
        for (id, to, change) in changes {
            if transition(&mut tx, *id, &[JobStatus::Created], *to, change.clone()).await? {
                moved += 1;
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(moved)
    }

    async fn touch_job(&self, job_id: i64, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE jobs SET last_contact_at = ? WHERE id = ?")
            .bind(to_millis(now))
            .bind(job_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn set_job_artifacts(
        &self,
        job_id: i64,
        filename: &str,
        size: i64,
        expire_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE jobs SET artifacts_filename = ?, artifacts_size = ?, artifacts_expire_at = ?
             WHERE id = ?",
        )
        .bind(filename)
        .bind(size)
        .bind(expire_at.map(to_millis))
        .bind(job_id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn retry_job(&self, job_id: i64, next: NewJob, now: DateTime<Utc>) -> StoreResult<Job> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let row = sqlx::query(
            "UPDATE jobs SET retried = 1 WHERE id = ? AND retried = 0
             RETURNING pipeline_id, project_id",
        )
        .bind(job_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?
        .ok_or(StoreError::NotFound("job"))?;
        let pipeline_id: i64 = row.try_get(0).map_err(backend)?;
        let project_id: i64 = row.try_get(1).map_err(backend)?;
        let id = insert_job(&mut tx, pipeline_id, project_id, &next, now).await?;
        tx.commit().await.map_err(backend)?;
        self.job_by_id(id).await?.ok_or(StoreError::NotFound("job"))
    }

    async fn jobs_in(&self, statuses: &[JobStatus]) -> StoreResult<Vec<Job>> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1"));
        push_statuses(&mut qb, statuses);
        qb.push(" ORDER BY id");
        let rows = qb.build().fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(job_from_row).collect()
    }

    async fn variables(&self, owner: VariableOwner) -> StoreResult<Vec<CiVariable>> {
        let (column, id) = owner_column(owner);
        let rows = sqlx::query(&format!(
            "SELECT key, value, variable_type, protected, masked, raw, environment_scope,
                    description
             FROM ci_variables WHERE {column} = ? ORDER BY key, id"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(variable_from_row).collect()
    }

    async fn create_variable(&self, owner: VariableOwner, var: CiVariable) -> StoreResult<()> {
        let (column, id) = owner_column(owner);
        sqlx::query(&format!(
            "INSERT INTO ci_variables ({column}, key, value, variable_type, protected, masked,
                 raw, environment_scope, description)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(id)
        .bind(&var.key)
        .bind(&var.value)
        .bind(&var.variable_type)
        .bind(var.protected)
        .bind(var.masked)
        .bind(var.raw)
        .bind(&var.environment_scope)
        .bind(&var.description)
        .execute(&self.pool)
        .await
        .map_err(unique("key"))?;
        Ok(())
    }

    async fn update_variable(&self, owner: VariableOwner, var: CiVariable) -> StoreResult<()> {
        let (column, id) = owner_column(owner);
        let done = sqlx::query(&format!(
            "UPDATE ci_variables SET value = ?, variable_type = ?, protected = ?, masked = ?,
                 raw = ?, environment_scope = ?, description = ?
             WHERE {column} = ? AND key = ?"
        ))
        .bind(&var.value)
        .bind(&var.variable_type)
        .bind(var.protected)
        .bind(var.masked)
        .bind(var.raw)
        .bind(&var.environment_scope)
        .bind(&var.description)
        .bind(id)
        .bind(&var.key)
        .execute(&self.pool)
        .await
        .map_err(unique("key"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("variable"));
        }
        Ok(())
    }

    async fn delete_variable(&self, owner: VariableOwner, key: &str) -> StoreResult<bool> {
        let (column, id) = owner_column(owner);
        let done = sqlx::query(&format!(
            "DELETE FROM ci_variables WHERE {column} = ? AND key = ?"
        ))
        .bind(id)
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}
