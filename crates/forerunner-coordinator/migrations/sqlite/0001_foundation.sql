-- Users, tokens, groups, projects, runners and runner managers.
--
-- Conventions: timestamps are INTEGER milliseconds since the Unix epoch (UTC),
-- booleans are INTEGER 0/1, every secret is stored only as the lowercase hex
-- SHA-256 digest of the token (`*_digest`) next to its loggable short form
-- (`*_short`). Pipelines, jobs, job tokens, traces and artifacts come in a
-- later migration; `runners.queue_version` is the per-runner value a long
-- polling `POST /jobs/request` compares with `last_update`.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    username    TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    email       TEXT,
    is_admin    INTEGER NOT NULL DEFAULT 0,
    state       TEXT    NOT NULL DEFAULT 'active',
    created_at  INTEGER NOT NULL
);

CREATE TABLE personal_access_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    token_digest  TEXT    NOT NULL UNIQUE,
    token_short   TEXT    NOT NULL,
    -- space-separated: api read_api create_runner read_user manage_runner …
    scopes        TEXT    NOT NULL,
    expires_at    INTEGER,
    revoked       INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);

CREATE TABLE groups (
    id                               INTEGER PRIMARY KEY AUTOINCREMENT,
    name                             TEXT    NOT NULL,
    path                             TEXT    NOT NULL,
    full_path                        TEXT    NOT NULL UNIQUE,
    parent_id                        INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    description                      TEXT,
    visibility                       TEXT    NOT NULL DEFAULT 'private',
    creator_id                       INTEGER REFERENCES users(id) ON DELETE SET NULL,
    runners_token_digest             TEXT    UNIQUE,
    runners_token_short              TEXT,
    allow_runner_registration_token  INTEGER NOT NULL DEFAULT 1,
    created_at                       INTEGER NOT NULL
);

CREATE TABLE projects (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    name                    TEXT    NOT NULL,
    path                    TEXT    NOT NULL,
    full_path               TEXT    NOT NULL UNIQUE,
    -- NULL: the creator's personal namespace
    group_id                INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    creator_id              INTEGER REFERENCES users(id) ON DELETE SET NULL,
    description             TEXT,
    visibility              TEXT    NOT NULL DEFAULT 'private',
    import_url              TEXT,
    default_branch          TEXT    NOT NULL DEFAULT 'main',
    runners_token_digest    TEXT    UNIQUE,
    runners_token_short     TEXT,
    shared_runners_enabled  INTEGER NOT NULL DEFAULT 1,
    group_runners_enabled   INTEGER NOT NULL DEFAULT 1,
    created_at              INTEGER NOT NULL
);

-- Exactly one row (id = 1).
CREATE TABLE application_settings (
    id                                  INTEGER PRIMARY KEY CHECK (id = 1),
    allow_runner_registration_token     INTEGER NOT NULL DEFAULT 1,
    runners_registration_token_digest   TEXT,
    runners_registration_token_short    TEXT,
    updated_at                          INTEGER NOT NULL
);

CREATE TABLE runners (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    runner_type        TEXT    NOT NULL CHECK (runner_type IN ('instance_type', 'group_type', 'project_type')),
    -- authenticated_user (POST /user/runners) or registration_token (POST /runners)
    registration_type  TEXT    NOT NULL,
    token_digest       TEXT    NOT NULL UNIQUE,
    token_short        TEXT    NOT NULL,
    token_expires_at   INTEGER,
    description        TEXT,
    maintenance_note   TEXT,
    active             INTEGER NOT NULL DEFAULT 1,
    locked             INTEGER NOT NULL DEFAULT 0,
    run_untagged       INTEGER NOT NULL DEFAULT 1,
    access_level       TEXT    NOT NULL DEFAULT 'not_protected',
    maximum_timeout    INTEGER,
    -- owner of a group_type runner
    group_id           INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    creator_id         INTEGER REFERENCES users(id) ON DELETE SET NULL,
    -- info.name reported at registration
    name               TEXT,
    contacted_at       INTEGER,
    -- bumped whenever the set of jobs this runner could pick may have changed
    queue_version      INTEGER NOT NULL DEFAULT 1,
    created_at         INTEGER NOT NULL
);

CREATE TABLE runner_tags (
    runner_id  INTEGER NOT NULL REFERENCES runners(id) ON DELETE CASCADE,
    tag        TEXT    NOT NULL,
    PRIMARY KEY (runner_id, tag)
);
CREATE INDEX runner_tags_by_tag ON runner_tags(tag);

-- Projects a project_type runner serves (the first one is its owner).
CREATE TABLE runner_projects (
    runner_id   INTEGER NOT NULL REFERENCES runners(id) ON DELETE CASCADE,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (runner_id, project_id)
);
CREATE INDEX runner_projects_by_project ON runner_projects(project_id);

-- One machine (system_id) using a runner's token.
CREATE TABLE runner_managers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    runner_id     INTEGER NOT NULL REFERENCES runners(id) ON DELETE CASCADE,
    system_id     TEXT    NOT NULL,
    version       TEXT,
    revision      TEXT,
    platform      TEXT,
    architecture  TEXT,
    executor      TEXT,
    ip_address    TEXT,
    contacted_at  INTEGER,
    created_at    INTEGER NOT NULL,
    UNIQUE (runner_id, system_id)
);
