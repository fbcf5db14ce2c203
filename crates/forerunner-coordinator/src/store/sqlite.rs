//! The SQLite backend of [`crate::store`].
//!
//! One connection pool over `forerunner.sqlite3` in WAL mode with foreign
//! keys on; migrations from `migrations/sqlite` are embedded and applied by
//! [`SqliteStore::open`]. Queries are plain `sqlx::query` calls (no
//! compile-time checked macros) so the crate builds without a database; the
//! integration tests are the type check. Timestamps are INTEGER milliseconds.

mod ci;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use forerunner_protocol::runners::{AccessLevel, RunnerType};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use crate::domain::runner::{ONLINE_CONTACT_TIMEOUT, STALE_TIMEOUT};
use crate::domain::{
    from_millis, now, to_millis, AppSettings, Auth, Group, ManagerHeartbeat, NewGroup,
    NewPersonalAccessToken, NewProject, NewRunner, NewUser, Page, Paged, PersonalAccessToken,
    Project, ProjectUpdate, RegistrationType, Runner, RunnerFilter, RunnerManager, RunnerScope,
    RunnerUpdate, Scope, StatusFilter, User,
};
use crate::store::{
    NamespaceStore, RunnerStore, SettingsStore, StoreError, StoreResult, UserStore,
};

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "forerunner.sqlite3";

/// Migrations embedded at compile time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens or creates the database at `path` and migrates it.
    pub async fn open(path: &Path) -> anyhow::Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str("sqlite://")
            .context("failed to build SQLite options")?
            .filename(path)
            .create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL's recommended durability: commits survive a crash of the
            // process and stay consistent on power loss without an fsync
            // per commit (the job queue commits on every pick).
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .with_context(|| format!("failed to open the database {}", path.display()))?;
        MIGRATOR.run(&pool).await.with_context(|| {
            format!(
                "failed to apply database migrations to {} (is it from a newer forerunner?)",
                path.display()
            )
        })?;
        sqlx::query(
            "INSERT OR IGNORE INTO application_settings (id, allow_runner_registration_token, updated_at) VALUES (1, 1, ?)",
        )
        .bind(to_millis(now()))
        .execute(&pool)
        .await
        .context("failed to initialise the application settings")?;
        Ok(SqliteStore { pool })
    }
}

fn backend(err: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(err))
}

/// Maps a unique-constraint violation to `Conflict(what)`.
fn unique(what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(what.to_owned())
        }
        _ => backend(err),
    }
}

fn opt_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(from_millis)
}

fn get<'r, T>(row: &'r SqliteRow, col: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(col).map_err(backend)
}

// ---------------------------------------------------------------- users

const USER_COLUMNS: &str = "u.id, u.username, u.name, u.email, u.is_admin, u.state, u.created_at";

fn user_from_row(row: &SqliteRow) -> StoreResult<User> {
    Ok(User {
        id: get(row, "id")?,
        username: get(row, "username")?,
        name: get(row, "name")?,
        email: get(row, "email")?,
        is_admin: get(row, "is_admin")?,
        state: get(row, "state")?,
        created_at: from_millis(get(row, "created_at")?),
    })
}

fn parse_scopes(s: &str) -> Vec<Scope> {
    s.split_whitespace().filter_map(Scope::parse).collect()
}

fn join_scopes(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn token_from_row(row: &SqliteRow) -> StoreResult<PersonalAccessToken> {
    Ok(PersonalAccessToken {
        id: get(row, "pat_id")?,
        user_id: get(row, "pat_user_id")?,
        name: get(row, "pat_name")?,
        token_short: get(row, "pat_token_short")?,
        scopes: parse_scopes(&get::<String>(row, "pat_scopes")?),
        expires_at: opt_time(get(row, "pat_expires_at")?),
        revoked: get(row, "pat_revoked")?,
        created_at: from_millis(get(row, "pat_created_at")?),
    })
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, name, email, is_admin, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&new.username)
        .bind(&new.name)
        .bind(&new.email)
        .bind(new.is_admin)
        .bind(to_millis(now()))
        .fetch_one(&self.pool)
        .await
        .map_err(unique("username"))?;
        self.user_by_id(id)
            .await?
            .ok_or(StoreError::NotFound("user"))
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.username = ?"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self, page: Page) -> StoreResult<Paged<User>> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u ORDER BY u.id LIMIT ? OFFSET ?"
        ))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let items = rows.iter().map(user_from_row).collect::<StoreResult<_>>()?;
        Ok(Paged { items, total })
    }

    async fn create_token(&self, new: NewPersonalAccessToken) -> StoreResult<PersonalAccessToken> {
        let created_at = now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO personal_access_tokens (user_id, name, token_digest, token_short, scopes, expires_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(new.user_id)
        .bind(&new.name)
        .bind(&new.token_digest)
        .bind(&new.token_short)
        .bind(join_scopes(&new.scopes))
        .bind(new.expires_at.map(to_millis))
        .bind(to_millis(created_at))
        .fetch_one(&self.pool)
        .await
        .map_err(unique("token"))?;
        Ok(PersonalAccessToken {
            id,
            user_id: new.user_id,
            name: new.name,
            token_short: new.token_short,
            scopes: new.scopes,
            expires_at: new.expires_at,
            revoked: false,
            created_at,
        })
    }

    async fn authenticate(&self, token_digest: &str) -> StoreResult<Option<Auth>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, t.id AS pat_id, t.user_id AS pat_user_id, t.name AS pat_name,
                    t.token_short AS pat_token_short, t.scopes AS pat_scopes,
                    t.expires_at AS pat_expires_at, t.revoked AS pat_revoked,
                    t.created_at AS pat_created_at
             FROM personal_access_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_digest = ?"
        ))
        .bind(token_digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Auth {
            user: user_from_row(&row)?,
            token: token_from_row(&row)?,
        }))
    }
}

// ---------------------------------------------------------------- groups and projects

const GROUP_COLUMNS: &str = "g.id, g.name, g.path, g.full_path, g.parent_id, g.description,
    g.visibility, g.creator_id, g.runners_token_short, g.allow_runner_registration_token,
    g.created_at";

fn group_from_row(row: &SqliteRow) -> StoreResult<Group> {
    Ok(Group {
        id: get(row, "id")?,
        name: get(row, "name")?,
        path: get(row, "path")?,
        full_path: get(row, "full_path")?,
        // Filled in by `with_full_name`.
        full_name: String::new(),
        parent_id: get(row, "parent_id")?,
        description: get(row, "description")?,
        visibility: get(row, "visibility")?,
        creator_id: get(row, "creator_id")?,
        runners_token_short: get(row, "runners_token_short")?,
        allow_runner_registration_token: get(row, "allow_runner_registration_token")?,
        created_at: from_millis(get(row, "created_at")?),
    })
}

const PROJECT_COLUMNS: &str = "p.id, p.name, p.path, p.full_path, p.group_id, p.creator_id,
    p.description, p.visibility, p.import_url, p.default_branch, p.runners_token_short,
    p.shared_runners_enabled, p.group_runners_enabled, p.created_at";

fn project_from_row(row: &SqliteRow) -> StoreResult<Project> {
    Ok(Project {
        id: get(row, "id")?,
        name: get(row, "name")?,
        path: get(row, "path")?,
        full_path: get(row, "full_path")?,
        group_id: get(row, "group_id")?,
        creator_id: get(row, "creator_id")?,
        description: get(row, "description")?,
        visibility: get(row, "visibility")?,
        import_url: get(row, "import_url")?,
        default_branch: get(row, "default_branch")?,
        runners_token_short: get(row, "runners_token_short")?,
        shared_runners_enabled: get(row, "shared_runners_enabled")?,
        group_runners_enabled: get(row, "group_runners_enabled")?,
        created_at: from_millis(get(row, "created_at")?),
    })
}

impl SqliteStore {
    async fn fetch_group(&self, clause: &str, bind: GroupKey<'_>) -> StoreResult<Option<Group>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE {clause}");
        let query = sqlx::query(&sql);
        let query = match bind {
            GroupKey::Id(id) => query.bind(id),
            GroupKey::Text(s) => query.bind(s),
        };
        let row = query.fetch_optional(&self.pool).await.map_err(backend)?;
        match row {
            Some(row) => Ok(Some(self.with_full_name(group_from_row(&row)?).await?)),
            None => Ok(None),
        }
    }

    /// Computes `full_name` (`Parent / Child`) from the ancestors' names.
    async fn with_full_name(&self, mut group: Group) -> StoreResult<Group> {
        let names: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE chain(id, parent_id, name, depth) AS (
                 SELECT id, parent_id, name, 0 FROM groups WHERE id = ?
                 UNION ALL
                 SELECT g.id, g.parent_id, g.name, c.depth + 1 FROM groups g JOIN chain c ON g.id = c.parent_id
             ) SELECT name FROM chain ORDER BY depth DESC",
        )
        .bind(group.id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        group.full_name = names.join(" / ");
        Ok(group)
    }

    async fn fetch_project(
        &self,
        clause: &str,
        bind: GroupKey<'_>,
    ) -> StoreResult<Option<Project>> {
        let sql = format!("SELECT {PROJECT_COLUMNS} FROM projects p WHERE {clause}");
        let query = sqlx::query(&sql);
        let query = match bind {
            GroupKey::Id(id) => query.bind(id),
            GroupKey::Text(s) => query.bind(s),
        };
        let row = query.fetch_optional(&self.pool).await.map_err(backend)?;
        row.as_ref().map(project_from_row).transpose()
    }
}

/// The value a single-row lookup binds.
enum GroupKey<'a> {
    Id(i64),
    Text(&'a str),
}

#[async_trait]
impl NamespaceStore for SqliteStore {
    async fn create_group(&self, new: NewGroup) -> StoreResult<Group> {
        let full_path = match new.parent_id {
            Some(parent_id) => {
                let parent = self
                    .group_by_id(parent_id)
                    .await?
                    .ok_or(StoreError::NotFound("parent group"))?;
                format!("{}/{}", parent.full_path, new.path)
            }
            None => new.path.clone(),
        };
        let (digest, short) = new.runners_token.unzip();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO groups (name, path, full_path, parent_id, description, visibility, creator_id,
                                 runners_token_digest, runners_token_short, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&new.name)
        .bind(&new.path)
        .bind(&full_path)
        .bind(new.parent_id)
        .bind(&new.description)
        .bind(&new.visibility)
        .bind(new.creator_id)
        .bind(digest)
        .bind(short)
        .bind(to_millis(now()))
        .fetch_one(&self.pool)
        .await
        .map_err(unique("path"))?;
        self.group_by_id(id)
            .await?
            .ok_or(StoreError::NotFound("group"))
    }

    async fn group_by_id(&self, id: i64) -> StoreResult<Option<Group>> {
        self.fetch_group("g.id = ?", GroupKey::Id(id)).await
    }

    async fn group_by_full_path(&self, full_path: &str) -> StoreResult<Option<Group>> {
        self.fetch_group("g.full_path = ?", GroupKey::Text(full_path))
            .await
    }

    async fn list_groups(&self, owner: Option<i64>, page: Page) -> StoreResult<Paged<Group>> {
        let filter = if owner.is_some() {
            "g.creator_id = ?1"
        } else {
            "?1 IS NULL"
        };
        let total: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM groups g WHERE {filter}"))
                .bind(owner)
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?;
        let rows = sqlx::query(&format!(
            "SELECT {GROUP_COLUMNS} FROM groups g WHERE {filter} ORDER BY g.id LIMIT ?2 OFFSET ?3"
        ))
        .bind(owner)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(self.with_full_name(group_from_row(row)?).await?);
        }
        Ok(Paged { items, total })
    }

    async fn group_and_ancestors(&self, id: i64) -> StoreResult<Vec<Group>> {
        let mut chain = Vec::new();
        let mut next = Some(id);
        while let Some(id) = next {
            // A cycle cannot be built through the API, but never loop forever.
            if chain.len() > 100 || chain.iter().any(|g: &Group| g.id == id) {
                break;
            }
            match self.group_by_id(id).await? {
                Some(group) => {
                    next = group.parent_id;
                    chain.push(group);
                }
                None => break,
            }
        }
        Ok(chain)
    }

    async fn create_project(&self, new: NewProject) -> StoreResult<Project> {
        let (digest, short) = new.runners_token.unzip();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO projects (name, path, full_path, group_id, creator_id, description, visibility,
                                   import_url, default_branch, runners_token_digest, runners_token_short, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&new.name)
        .bind(&new.path)
        .bind(&new.full_path)
        .bind(new.group_id)
        .bind(new.creator_id)
        .bind(&new.description)
        .bind(&new.visibility)
        .bind(&new.import_url)
        .bind(&new.default_branch)
        .bind(digest)
        .bind(short)
        .bind(to_millis(now()))
        .fetch_one(&self.pool)
        .await
        .map_err(unique("path"))?;
        self.project_by_id(id)
            .await?
            .ok_or(StoreError::NotFound("project"))
    }

    async fn project_by_id(&self, id: i64) -> StoreResult<Option<Project>> {
        self.fetch_project("p.id = ?", GroupKey::Id(id)).await
    }

    async fn project_by_full_path(&self, full_path: &str) -> StoreResult<Option<Project>> {
        self.fetch_project("p.full_path = ?", GroupKey::Text(full_path))
            .await
    }

    async fn update_project(&self, id: i64, update: ProjectUpdate) -> StoreResult<Project> {
        let done = sqlx::query(
            "UPDATE projects SET
                 description = COALESCE(?, description),
                 import_url = COALESCE(?, import_url),
                 default_branch = COALESCE(?, default_branch),
                 visibility = COALESCE(?, visibility),
                 shared_runners_enabled = COALESCE(?, shared_runners_enabled),
                 group_runners_enabled = COALESCE(?, group_runners_enabled)
             WHERE id = ?",
        )
        .bind(&update.description)
        .bind(&update.import_url)
        .bind(&update.default_branch)
        .bind(&update.visibility)
        .bind(update.shared_runners_enabled)
        .bind(update.group_runners_enabled)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("project"));
        }
        self.project_by_id(id)
            .await?
            .ok_or(StoreError::NotFound("project"))
    }

    async fn list_projects(&self, owner: Option<i64>, page: Page) -> StoreResult<Paged<Project>> {
        let filter = if owner.is_some() {
            "(p.creator_id = ?1 OR p.group_id IN (SELECT id FROM groups WHERE creator_id = ?1))"
        } else {
            "?1 IS NULL"
        };
        let total: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM projects p WHERE {filter}"))
                .bind(owner)
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?;
        let rows = sqlx::query(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects p WHERE {filter} ORDER BY p.id LIMIT ?2 OFFSET ?3"
        ))
        .bind(owner)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let items = rows
            .iter()
            .map(project_from_row)
            .collect::<StoreResult<_>>()?;
        Ok(Paged { items, total })
    }

    async fn set_group_runners_token(
        &self,
        group_id: i64,
        token: Option<(String, String)>,
    ) -> StoreResult<()> {
        let (digest, short) = token.unzip();
        let done = sqlx::query(
            "UPDATE groups SET runners_token_digest = ?, runners_token_short = ? WHERE id = ?",
        )
        .bind(digest)
        .bind(short)
        .bind(group_id)
        .execute(&self.pool)
        .await
        .map_err(unique("registration token"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("group"));
        }
        Ok(())
    }

    async fn set_project_runners_token(
        &self,
        project_id: i64,
        token: Option<(String, String)>,
    ) -> StoreResult<()> {
        let (digest, short) = token.unzip();
        let done = sqlx::query(
            "UPDATE projects SET runners_token_digest = ?, runners_token_short = ? WHERE id = ?",
        )
        .bind(digest)
        .bind(short)
        .bind(project_id)
        .execute(&self.pool)
        .await
        .map_err(unique("registration token"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("project"));
        }
        Ok(())
    }

    async fn group_by_runners_token(&self, digest: &str) -> StoreResult<Option<Group>> {
        self.fetch_group("g.runners_token_digest = ?", GroupKey::Text(digest))
            .await
    }

    async fn project_by_runners_token(&self, digest: &str) -> StoreResult<Option<Project>> {
        self.fetch_project("p.runners_token_digest = ?", GroupKey::Text(digest))
            .await
    }
}

// ---------------------------------------------------------------- runners

const RUNNER_COLUMNS: &str = "r.id, r.runner_type, r.registration_type, r.token_short,
    r.token_expires_at, r.description, r.maintenance_note, r.active, r.locked, r.run_untagged,
    r.access_level, r.maximum_timeout, r.group_id, r.creator_id, r.name, r.contacted_at,
    r.queue_version, r.created_at,
    (SELECT json_group_array(tag) FROM runner_tags t WHERE t.runner_id = r.id) AS tags,
    (SELECT group_concat(project_id) FROM
        (SELECT project_id FROM runner_projects rp WHERE rp.runner_id = r.id ORDER BY rp.created_at, rp.project_id)) AS project_ids";

fn runner_from_row(row: &SqliteRow) -> StoreResult<Runner> {
    let bad = |what: String| StoreError::Backend(what.into());
    let runner_type: String = get(row, "runner_type")?;
    let registration_type: String = get(row, "registration_type")?;
    let access_level: String = get(row, "access_level")?;
    let tags_json: Option<String> = get(row, "tags")?;
    let mut tags: Vec<String> = match tags_json {
        Some(json) => serde_json::from_str(&json)
            .map_err(|err| bad(format!("malformed tag list {json:?}: {err}")))?,
        None => Vec::new(),
    };
    tags.sort();
    let project_ids = get::<Option<String>>(row, "project_ids")?
        .map(|s| s.split(',').filter_map(|id| id.parse().ok()).collect())
        .unwrap_or_default();
    Ok(Runner {
        id: get(row, "id")?,
        runner_type: RunnerType::parse(&runner_type)
            .ok_or_else(|| bad(format!("unknown runner type {runner_type:?}")))?,
        registration_type: RegistrationType::parse(&registration_type)
            .ok_or_else(|| bad(format!("unknown registration type {registration_type:?}")))?,
        token_short: get(row, "token_short")?,
        token_expires_at: opt_time(get(row, "token_expires_at")?),
        description: get(row, "description")?,
        maintenance_note: get(row, "maintenance_note")?,
        active: get(row, "active")?,
        locked: get(row, "locked")?,
        run_untagged: get(row, "run_untagged")?,
        access_level: AccessLevel::parse(&access_level)
            .ok_or_else(|| bad(format!("unknown access level {access_level:?}")))?,
        maximum_timeout: get(row, "maximum_timeout")?,
        group_id: get(row, "group_id")?,
        creator_id: get(row, "creator_id")?,
        name: get(row, "name")?,
        contacted_at: opt_time(get(row, "contacted_at")?),
        queue_version: get(row, "queue_version")?,
        created_at: from_millis(get(row, "created_at")?),
        tags,
        project_ids,
    })
}

const MANAGER_COLUMNS: &str = "id, runner_id, system_id, version, revision, platform,
    architecture, executor, ip_address, contacted_at, created_at";

fn manager_from_row(row: &SqliteRow) -> StoreResult<RunnerManager> {
    Ok(RunnerManager {
        id: get(row, "id")?,
        runner_id: get(row, "runner_id")?,
        system_id: get(row, "system_id")?,
        version: get(row, "version")?,
        revision: get(row, "revision")?,
        platform: get(row, "platform")?,
        architecture: get(row, "architecture")?,
        executor: get(row, "executor")?,
        ip_address: get(row, "ip_address")?,
        contacted_at: opt_time(get(row, "contacted_at")?),
        created_at: from_millis(get(row, "created_at")?),
    })
}

/// Appends the WHERE clause of a runner list to `qb`.
fn push_runner_filter(
    qb: &mut QueryBuilder<'_, Sqlite>,
    filter: &RunnerFilter,
    now: DateTime<Utc>,
) {
    qb.push(" WHERE 1 = 1");
    match &filter.scope {
        RunnerScope::All => {}
        RunnerScope::OwnedBy(user) => {
            qb.push(" AND ((r.runner_type = 'group_type' AND r.group_id IN (SELECT id FROM groups WHERE creator_id = ")
                .push_bind(*user)
                .push(")) OR (r.runner_type = 'project_type' AND EXISTS (SELECT 1 FROM runner_projects rp JOIN projects p ON p.id = rp.project_id LEFT JOIN groups pg ON pg.id = p.group_id WHERE rp.runner_id = r.id AND (p.creator_id = ")
                .push_bind(*user)
                .push(" OR pg.creator_id = ")
                .push_bind(*user)
                .push("))))");
        }
        RunnerScope::AvailableTo {
            project_id,
            group_ids,
            instance,
        } => {
            qb.push(" AND (0");
            if let Some(project_id) = project_id {
                qb.push(" OR (r.runner_type = 'project_type' AND EXISTS (SELECT 1 FROM runner_projects rp WHERE rp.runner_id = r.id AND rp.project_id = ")
                    .push_bind(*project_id)
                    .push("))");
            }
            if !group_ids.is_empty() {
                qb.push(" OR (r.runner_type = 'group_type' AND r.group_id IN (");
                let mut ids = qb.separated(", ");
                for id in group_ids {
                    ids.push_bind(*id);
                }
                qb.push("))");
            }
            if *instance {
                qb.push(" OR r.runner_type = 'instance_type'");
            }
            qb.push(")");
        }
    }
    if !filter.types.is_empty() {
        qb.push(" AND r.runner_type IN (");
        let mut types = qb.separated(", ");
        for t in &filter.types {
            types.push_bind(t.as_str());
        }
        qb.push(")");
    }
    let online_deadline = to_millis(now - ONLINE_CONTACT_TIMEOUT);
    let stale_deadline = to_millis(now - STALE_TIMEOUT);
    match filter.status {
        None => {}
        Some(StatusFilter::Online) => {
            qb.push(" AND r.contacted_at > ").push_bind(online_deadline);
        }
        Some(StatusFilter::Offline) => {
            qb.push(" AND r.contacted_at <= ")
                .push_bind(online_deadline);
        }
        Some(StatusFilter::NeverContacted) => {
            qb.push(" AND r.contacted_at IS NULL");
        }
        Some(StatusFilter::Stale) => {
            qb.push(" AND r.created_at <= ")
                .push_bind(stale_deadline)
                .push(" AND (r.contacted_at IS NULL OR r.contacted_at <= ")
                .push_bind(stale_deadline)
                .push(")");
        }
        Some(StatusFilter::Active) => {
            qb.push(" AND r.active = 1");
        }
        Some(StatusFilter::Paused) => {
            qb.push(" AND r.active = 0");
        }
    }
    if let Some(active) = filter.active {
        qb.push(" AND r.active = ").push_bind(active);
    }
    for tag in &filter.tags {
        qb.push(" AND EXISTS (SELECT 1 FROM runner_tags t WHERE t.runner_id = r.id AND t.tag = ")
            .push_bind(tag.clone())
            .push(")");
    }
}

async fn replace_tags(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    runner_id: i64,
    tags: &[String],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM runner_tags WHERE runner_id = ?")
        .bind(runner_id)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    for tag in tags {
        sqlx::query("INSERT OR IGNORE INTO runner_tags (runner_id, tag) VALUES (?, ?)")
            .bind(runner_id)
            .bind(tag)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl RunnerStore for SqliteStore {
    async fn create_runner(&self, new: NewRunner) -> StoreResult<Runner> {
        let created_at = to_millis(now());
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO runners (runner_type, registration_type, token_digest, token_short, description,
                                  maintenance_note, active, locked, run_untagged, access_level, maximum_timeout,
                                  group_id, creator_id, name, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(new.runner_type.as_str())
        .bind(new.registration_type.as_str())
        .bind(&new.token_digest)
        .bind(&new.token_short)
        .bind(&new.description)
        .bind(&new.maintenance_note)
        .bind(new.active)
        .bind(new.locked)
        .bind(new.run_untagged)
        .bind(new.access_level.as_str())
        .bind(new.maximum_timeout)
        .bind(new.group_id)
        .bind(new.creator_id)
        .bind(&new.name)
        .bind(created_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(unique("token"))?;
        replace_tags(&mut tx, id, &new.tags).await?;
        if let Some(project_id) = new.project_id {
            sqlx::query(
                "INSERT INTO runner_projects (runner_id, project_id, created_at) VALUES (?, ?, ?)",
            )
            .bind(id)
            .bind(project_id)
            .bind(created_at)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        self.runner_by_id(id)
            .await?
            .ok_or(StoreError::NotFound("runner"))
    }

    async fn runner_by_id(&self, id: i64) -> StoreResult<Option<Runner>> {
        let row = sqlx::query(&format!(
            "SELECT {RUNNER_COLUMNS} FROM runners r WHERE r.id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(runner_from_row).transpose()
    }

    async fn runner_by_token(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Runner>> {
        let row = sqlx::query(&format!(
            "SELECT {RUNNER_COLUMNS} FROM runners r
             WHERE r.token_digest = ? AND (r.token_expires_at IS NULL OR r.token_expires_at >= ?)"
        ))
        .bind(digest)
        .bind(to_millis(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(runner_from_row).transpose()
    }

    async fn list_runners(
        &self,
        filter: &RunnerFilter,
        now: DateTime<Utc>,
        page: Page,
    ) -> StoreResult<Paged<Runner>> {
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM runners r");
        push_runner_filter(&mut count, filter, now);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        let mut select =
            QueryBuilder::<Sqlite>::new(format!("SELECT {RUNNER_COLUMNS} FROM runners r"));
        push_runner_filter(&mut select, filter, now);
        select
            .push(" ORDER BY r.id LIMIT ")
            .push_bind(page.limit)
            .push(" OFFSET ")
            .push_bind(page.offset);
        let rows = select
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let items = rows
            .iter()
            .map(runner_from_row)
            .collect::<StoreResult<_>>()?;
        Ok(Paged { items, total })
    }

    async fn update_runner(&self, id: i64, update: RunnerUpdate) -> StoreResult<Runner> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let done = sqlx::query(
            "UPDATE runners SET
                 description = COALESCE(?, description),
                 active = COALESCE(?, active),
                 run_untagged = COALESCE(?, run_untagged),
                 locked = COALESCE(?, locked),
                 access_level = COALESCE(?, access_level),
                 maximum_timeout = COALESCE(?, maximum_timeout),
                 maintenance_note = COALESCE(?, maintenance_note),
                 queue_version = queue_version + 1
             WHERE id = ?",
        )
        .bind(&update.description)
        .bind(update.active)
        .bind(update.run_untagged)
        .bind(update.locked)
        .bind(update.access_level.map(AccessLevel::as_str))
        .bind(update.maximum_timeout)
        .bind(&update.maintenance_note)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("runner"));
        }
        if let Some(tags) = &update.tags {
            replace_tags(&mut tx, id, tags).await?;
        }
        tx.commit().await.map_err(backend)?;
        self.runner_by_id(id)
            .await?
            .ok_or(StoreError::NotFound("runner"))
    }

    async fn delete_runner(&self, id: i64) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM runners WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_runner_token(
        &self,
        id: i64,
        digest: &str,
        short: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE runners SET token_digest = ?, token_short = ?, token_expires_at = ? WHERE id = ?",
        )
        .bind(digest)
        .bind(short)
        .bind(expires_at.map(to_millis))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(unique("token"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("runner"));
        }
        Ok(())
    }

    async fn heartbeat(
        &self,
        runner_id: i64,
        hb: ManagerHeartbeat,
        now: DateTime<Utc>,
    ) -> StoreResult<RunnerManager> {
        let now = to_millis(now);
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("UPDATE runners SET contacted_at = ? WHERE id = ?")
            .bind(now)
            .bind(runner_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let row = sqlx::query(&format!(
            "INSERT INTO runner_managers (runner_id, system_id, version, revision, platform, architecture,
                                          executor, ip_address, contacted_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
             ON CONFLICT (runner_id, system_id) DO UPDATE SET
                 version = COALESCE(excluded.version, version),
                 revision = COALESCE(excluded.revision, revision),
                 platform = COALESCE(excluded.platform, platform),
                 architecture = COALESCE(excluded.architecture, architecture),
                 executor = COALESCE(excluded.executor, executor),
                 ip_address = COALESCE(excluded.ip_address, ip_address),
                 contacted_at = excluded.contacted_at
             RETURNING {MANAGER_COLUMNS}"
        ))
        .bind(runner_id)
        .bind(&hb.system_id)
        .bind(&hb.version)
        .bind(&hb.revision)
        .bind(&hb.platform)
        .bind(&hb.architecture)
        .bind(&hb.executor)
        .bind(&hb.ip_address)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        let manager = manager_from_row(&row)?;
        tx.commit().await.map_err(backend)?;
        Ok(manager)
    }

    async fn managers(&self, runner_id: i64) -> StoreResult<Vec<RunnerManager>> {
        let rows = sqlx::query(&format!(
            "SELECT {MANAGER_COLUMNS} FROM runner_managers WHERE runner_id = ? ORDER BY id"
        ))
        .bind(runner_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(manager_from_row).collect()
    }

    async fn delete_manager(&self, runner_id: i64, system_id: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let done = sqlx::query("DELETE FROM runner_managers WHERE runner_id = ? AND system_id = ?")
            .bind(runner_id)
            .bind(system_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE runners SET contacted_at = NULL
             WHERE id = ? AND NOT EXISTS (SELECT 1 FROM runner_managers WHERE runner_id = ?)",
        )
        .bind(runner_id)
        .bind(runner_id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn assign_project(&self, runner_id: i64, project_id: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT OR IGNORE INTO runner_projects (runner_id, project_id, created_at) VALUES (?, ?, ?)",
        )
        .bind(runner_id)
        .bind(project_id)
        .bind(to_millis(now()))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() > 0 {
            sqlx::query("UPDATE runners SET queue_version = queue_version + 1 WHERE id = ?")
                .bind(runner_id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        }
        Ok(done.rows_affected() > 0)
    }

    async fn unassign_project(&self, runner_id: i64, project_id: i64) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM runner_projects WHERE runner_id = ? AND project_id = ?")
                .bind(runner_id)
                .bind(project_id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}

// ---------------------------------------------------------------- settings

#[async_trait]
impl SettingsStore for SqliteStore {
    async fn settings(&self) -> StoreResult<AppSettings> {
        let row = sqlx::query(
            "SELECT allow_runner_registration_token, runners_registration_token_digest,
                    runners_registration_token_short, updated_at
             FROM application_settings WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(AppSettings {
            allow_runner_registration_token: get(&row, "allow_runner_registration_token")?,
            registration_token_digest: get(&row, "runners_registration_token_digest")?,
            registration_token_short: get(&row, "runners_registration_token_short")?,
            updated_at: from_millis(get(&row, "updated_at")?),
        })
    }

    async fn set_allow_runner_registration_token(&self, allow: bool) -> StoreResult<AppSettings> {
        sqlx::query(
            "UPDATE application_settings SET allow_runner_registration_token = ?, updated_at = ? WHERE id = 1",
        )
        .bind(allow)
        .bind(to_millis(now()))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        self.settings().await
    }

    async fn set_registration_token(&self, digest: &str, short: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE application_settings SET runners_registration_token_digest = ?,
                 runners_registration_token_short = ?, updated_at = ? WHERE id = 1",
        )
        .bind(digest)
        .bind(short)
        .bind(to_millis(now()))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn conforms_to_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(&dir.path().join(DATABASE_FILE))
            .await
            .unwrap();
        crate::store::conformance::run_all(&Store::from_backend(Arc::new(sqlite))).await;
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_migrations_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DATABASE_FILE);
        let first = SqliteStore::open(&path).await.unwrap();
        first
            .set_allow_runner_registration_token(false)
            .await
            .unwrap();
        first.pool.close().await;
        let again = SqliteStore::open(&path).await.unwrap();
        assert!(
            !again
                .settings()
                .await
                .unwrap()
                .allow_runner_registration_token
        );
    }
}
