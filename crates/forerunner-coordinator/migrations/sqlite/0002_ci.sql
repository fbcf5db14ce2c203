-- Pipelines, jobs, CI/CD variables.
--
-- Conventions as in 0001: INTEGER milliseconds, INTEGER booleans, secrets
-- only as SHA-256 digests. A job's YAML-derived definition (script, image,
-- artifacts, …) is one JSON document (`spec`) written once at creation;
-- everything that changes while the job runs has its own column. Trace
-- bytes and artifact archives live in files under the data directory, never
-- in rows.

CREATE TABLE pipelines (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id       INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    -- per-project sequence number
    iid              INTEGER NOT NULL,
    ref              TEXT    NOT NULL,
    tag              INTEGER NOT NULL DEFAULT 0,
    sha              TEXT    NOT NULL,
    before_sha       TEXT    NOT NULL,
    source           TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    protected        INTEGER NOT NULL DEFAULT 0,
    user_id          INTEGER REFERENCES users(id) ON DELETE SET NULL,
    name             TEXT,
    -- CI_COMMIT_MESSAGE, CI_COMMIT_AUTHOR, CI_COMMIT_TIMESTAMP
    commit_message   TEXT    NOT NULL DEFAULT '',
    commit_author    TEXT    NOT NULL DEFAULT '',
    commit_timestamp TEXT    NOT NULL DEFAULT '',
    -- JSON array of {key, value, variable_type} given at creation
    variables        TEXT    NOT NULL DEFAULT '[]',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    UNIQUE (project_id, iid)
);

CREATE TABLE jobs (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline_id          INTEGER NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    project_id           INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name                 TEXT    NOT NULL,
    stage                TEXT    NOT NULL,
    stage_index          INTEGER NOT NULL,
    status               TEXT    NOT NULL,
    -- on_success, on_failure, always, manual, delayed
    run_when             TEXT    NOT NULL,
    allow_failure        INTEGER NOT NULL DEFAULT 0,
    -- JSON array of tags, sorted
    tags                 TEXT    NOT NULL DEFAULT '[]',
    -- JSON: the job's definition (domain::JobSpec)
    spec                 TEXT    NOT NULL,
    -- 1 once a newer attempt of the same job exists
    retried              INTEGER NOT NULL DEFAULT 0,
    -- attempt number, 0 for the first run
    attempt              INTEGER NOT NULL DEFAULT 0,
    runner_id            INTEGER REFERENCES runners(id) ON DELETE SET NULL,
    token_digest         TEXT    UNIQUE,
    failure_reason       TEXT,
    exit_code            INTEGER,
    -- timeout in seconds the job was given (capped by the runner)
    timeout              INTEGER,
    user_id              INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at           INTEGER NOT NULL,
    queued_at            INTEGER,
    scheduled_at         INTEGER,
    started_at           INTEGER,
    finished_at          INTEGER,
    -- last trace patch or update from the runner
    last_contact_at      INTEGER,
    -- the archive artifact, if uploaded
    artifacts_filename   TEXT,
    artifacts_size       INTEGER,
    artifacts_expire_at  INTEGER
);
CREATE INDEX jobs_by_pipeline ON jobs(pipeline_id);
CREATE INDEX jobs_by_project ON jobs(project_id);
CREATE INDEX jobs_by_status ON jobs(status, id);

-- Project and group CI/CD variables (exactly one owner set).
CREATE TABLE ci_variables (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id         INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    group_id           INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    key                TEXT    NOT NULL,
    value              TEXT    NOT NULL,
    -- env_var or file
    variable_type      TEXT    NOT NULL DEFAULT 'env_var',
    protected          INTEGER NOT NULL DEFAULT 0,
    masked             INTEGER NOT NULL DEFAULT 0,
    raw                INTEGER NOT NULL DEFAULT 0,
    environment_scope  TEXT    NOT NULL DEFAULT '*',
    description        TEXT,
    CHECK ((project_id IS NULL) <> (group_id IS NULL))
);
CREATE UNIQUE INDEX ci_variables_project_key ON ci_variables(project_id, key, environment_scope) WHERE project_id IS NOT NULL;
CREATE UNIQUE INDEX ci_variables_group_key ON ci_variables(group_id, key, environment_scope) WHERE group_id IS NOT NULL;
