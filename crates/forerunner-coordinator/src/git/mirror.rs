//! Bare mirrors of project repositories and the questions the pipeline
//! planner asks about them.
//!
//! [`Mirrors`] owns the directory `<data dir>/repositories`, where the
//! repository of project `group/sub/project` lives at
//! `repositories/group/sub/project.git`. [`RepoMirror::sync`] creates it with
//! `git clone --mirror` from the project's `import_url` and refreshes it with
//! `git fetch --prune`; the other methods read it (resolve a ref, read a
//! file, list files, list changed files, find a parent commit). One
//! [`tokio::sync::Mutex`] per repository keeps two syncs of the same project
//! from running at once; reads take no lock, because git updates refs
//! atomically and a new mirror is moved into place only once complete.
//!
//! Only branches and tags are mirrored (`+refs/heads/*` and `+refs/tags/*`),
//! so refs the coordinator creates itself, such as `refs/pipelines/<id>`
//! ([`RepoMirror::keep_pipeline_ref`]), survive `--prune`.
//!
//! Credentials embedded in an `http(s)://user:password@…` `import_url` are
//! passed to git as an `Authorization` header through the environment: they
//! never appear on a command line, in the mirror's config file or in an
//! error message.
//!
//! This module does not decide when to sync (on pipeline creation, on a
//! timer, …), does not know which projects exist, and never writes to the
//! `import_url` repository.
use std::{
    collections::{BTreeMap, HashMap},
    ffi::OsString,
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::git::{
    command::{stderr_text, Git},
    names::{self, is_zero_sha, looks_like_sha, ImportSource},
    redact_credentials, GitError, ZERO_SHA,
};

/// The default limit for one clone or fetch from an `import_url`.
const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(600);

/// The repository mirrors of one coordinator, under `<data dir>/repositories`.
///
/// Cheap to clone; clones share the per-repository sync locks, so create one
/// `Mirrors` at startup and hand clones to whoever needs it.
#[derive(Clone)]
pub struct Mirrors {
    root: PathBuf,
    git: Git,
    sync_timeout: Duration,
    /// One lock per project path, created on first use. A `std` mutex: it is
    /// held only to look up or insert an entry, never across an `.await`.
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<SyncState>>>>>,
}

impl fmt::Debug for Mirrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mirrors")
            .field("root", &self.root)
            .field("sync_timeout", &self.sync_timeout)
            .finish_non_exhaustive()
    }
}

impl Mirrors {
    /// Mirrors kept under `<data_dir>/repositories`. Nothing is created on
    /// disk until the first sync.
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        Self::at(data_dir.as_ref().join("repositories"))
    }

    /// Mirrors kept directly under `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            git: Git::new(Vec::new()),
            sync_timeout: DEFAULT_SYNC_TIMEOUT,
            locks: Arc::default(),
        }
    }

    /// Sets an environment variable for every git process started through
    /// these mirrors, including `git http-backend` (e.g. `GIT_SSH_COMMAND`,
    /// or `GIT_CONFIG_GLOBAL=/dev/null` to ignore the user's git config).
    pub fn with_git_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        let mut env = self.git.env().to_vec();
        env.push((key.into(), value.into()));
        self.git = Git::new(env);
        self
    }

    /// Sets how long one clone or fetch may take before it is killed
    /// (default 10 minutes).
    pub fn with_sync_timeout(mut self, timeout: Duration) -> Self {
        self.sync_timeout = timeout;
        self
    }

    /// The directory holding all mirrors.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the mirror of `project_path` lives (it may not exist yet).
    pub fn repository_dir(&self, project_path: &str) -> Result<PathBuf, GitError> {
        let project = names::project_path(project_path)?;
        Ok(self.root.join(format!("{project}.git")))
    }

    /// The mirror of `project_path` (`namespace/project`, with or without
    /// `.git`), whether or not it has been synced yet.
    pub fn project(&self, project_path: &str) -> Result<RepoMirror, GitError> {
        let project = names::project_path(project_path)?.to_owned();
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(locks.entry(project.clone()).or_default())
        };
        Ok(RepoMirror {
            dir: self.root.join(format!("{project}.git")),
            project,
            git: self.git.clone(),
            sync_timeout: self.sync_timeout,
            lock,
            verified: Arc::default(),
        })
    }

    pub(crate) fn git(&self) -> &Git {
        &self.git
    }
}

/// Whether a ref is a branch or a tag, or a bare commit sha.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefKind {
    /// `refs/heads/<name>`.
    Branch,
    /// `refs/tags/<name>`.
    Tag,
    /// A commit named by its sha rather than by a ref. GitLab's `ref_type`
    /// has no value for it.
    Commit,
}

impl RefKind {
    /// GitLab's `ref_type` (`"branch"` or `"tag"`), or `"commit"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Branch => "branch",
            RefKind::Tag => "tag",
            RefKind::Commit => "commit",
        }
    }

    fn of_full_name(full_name: &str) -> Option<(RefKind, &str)> {
        if let Some(name) = full_name.strip_prefix("refs/heads/") {
            Some((RefKind::Branch, name))
        } else {
            full_name
                .strip_prefix("refs/tags/")
                .map(|name| (RefKind::Tag, name))
        }
    }
}

impl fmt::Display for RefKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A branch, tag or commit and the commit it points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedRef {
    /// Branch, tag or bare commit.
    pub kind: RefKind,
    /// The short name (`main`, `v1.0`), or for a commit the full sha.
    pub name: String,
    /// The full commit sha; for an annotated tag, the commit it points at.
    pub sha: String,
}

impl ResolvedRef {
    /// The fully qualified ref (`refs/heads/main`, `refs/tags/v1.0`), or
    /// `None` for a bare commit.
    pub fn full_name(&self) -> Option<String> {
        match self.kind {
            RefKind::Branch => Some(format!("refs/heads/{}", self.name)),
            RefKind::Tag => Some(format!("refs/tags/{}", self.name)),
            RefKind::Commit => None,
        }
    }

    /// The `git_info.refspecs` GitLab gives a runner for a job on this ref,
    /// as `Ci::BuildRunnerPresenter#refspecs` builds them: the pipeline's
    /// persistent ref when there is one (see
    /// [`RepoMirror::keep_pipeline_ref`]), then with a shallow `depth` only
    /// this branch or tag, and with `depth == 0` every branch and tag.
    pub fn refspecs(&self, pipeline_ref: Option<u64>, depth: u32) -> Vec<String> {
        let branch = |name: &str| format!("+refs/heads/{name}:refs/remotes/origin/{name}");
        let tag = |name: &str| format!("+refs/tags/{name}:refs/tags/{name}");
        let mut specs: Vec<String> = pipeline_ref
            .map(|id| format!("+refs/pipelines/{id}:refs/pipelines/{id}"))
            .into_iter()
            .collect();
        if depth > 0 {
            match self.kind {
                RefKind::Branch => specs.push(branch(&self.name)),
                RefKind::Tag => specs.push(tag(&self.name)),
                RefKind::Commit => {}
            }
        } else {
            specs.push(branch("*"));
            specs.push(tag("*"));
        }
        specs
    }
}

/// A commit's author, time and message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitInfo {
    /// `Name <email>`.
    pub author: String,
    /// Committer date, ISO 8601.
    pub timestamp: String,
    /// The full message.
    pub message: String,
    /// The first parent, `None` for a root commit.
    pub parent: Option<String>,
}

/// What a sync changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Whether this sync created the mirror (a first clone).
    pub created: bool,
    /// Branches and tags that appeared, moved or disappeared, sorted by kind
    /// and name.
    pub updates: Vec<RefUpdate>,
}

/// One branch or tag that changed during a sync, like one line of a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefUpdate {
    /// Branch or tag.
    pub kind: RefKind,
    /// The short name.
    pub name: String,
    /// The commit before the sync, `None` if the ref is new.
    pub before: Option<String>,
    /// The commit after the sync, `None` if the ref was deleted.
    pub after: Option<String>,
}

impl RefUpdate {
    /// The `before_sha` GitLab would give a push pipeline for this update:
    /// the previous commit, or [`ZERO_SHA`] for a new ref.
    pub fn before_sha(&self) -> &str {
        self.before.as_deref().unwrap_or(ZERO_SHA)
    }
}

/// What this process knows about a mirror between syncs, kept under its
/// sync lock.
#[derive(Debug, Default)]
struct SyncState {
    /// The URL `remote.origin.url` was set to by this process, so that an
    /// unchanged `import_url` does not rewrite the mirror's config on every
    /// sync.
    origin_url: Option<String>,
}

/// The mirror of one project's repository. Obtained from [`Mirrors::project`].
#[derive(Clone)]
pub struct RepoMirror {
    project: String,
    dir: PathBuf,
    git: Git,
    sync_timeout: Duration,
    /// Serialises syncs of this repository. An async mutex: it is held across
    /// the `git clone`/`git fetch` awaits.
    lock: Arc<tokio::sync::Mutex<SyncState>>,
    /// Commits this handle has verified (name as asked → full sha), so that
    /// the reads of one pipeline creation ask git once, not once per read.
    /// Per handle: [`Mirrors::project`] hands out a fresh one each time.
    verified: Arc<Mutex<HashMap<String, String>>>,
}

impl fmt::Debug for RepoMirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepoMirror")
            .field("project", &self.project)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl RepoMirror {
    /// The project path, without `.git`.
    pub fn project_path(&self) -> &str {
        &self.project
    }

    /// The bare repository directory (`…/repositories/<project>.git`).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Whether the mirror has been created by a sync.
    pub async fn exists(&self) -> bool {
        tokio::fs::try_exists(self.dir.join("HEAD"))
            .await
            .unwrap_or(false)
    }

    /// Brings the mirror in step with `import_url` (a local path or a
    /// `file://`, `http(s)://`, `git://` or `ssh://` URL; credentials may be
    /// embedded as `user:password@`): clones it if it does not exist yet,
    /// otherwise points `origin` at `import_url` and fetches with `--prune`.
    ///
    /// Waits for any sync of the same project already running. Reports the
    /// branches and tags that changed.
    ///
    /// The sync runs in its own task and finishes even if the caller stops
    /// waiting (a cancelled request, say): killing git in the middle of a
    /// fetch could leave ref lock files that break the next one. Only the
    /// sync timeout kills it.
    pub async fn sync(&self, import_url: &str) -> Result<SyncReport, GitError> {
        names::import_url(import_url)?;
        let source = names::import_source(import_url);
        let mirror = self.clone();
        match tokio::spawn(async move { mirror.sync_locked(source).await }).await {
            Ok(result) => result,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_cancelled) => Err(GitError::SyncInterrupted {
                project: self.project.clone(),
            }),
        }
    }

    async fn sync_locked(&self, source: ImportSource) -> Result<SyncReport, GitError> {
        let mut state = self.lock.lock().await;
        let created = !self.exists().await;
        let before = if created {
            BTreeMap::new()
        } else {
            self.ref_map().await?
        };
        if created {
            self.clone_from(&source).await?;
            state.origin_url = Some(source.url.clone());
        } else {
            self.fetch_from(&source, &mut state).await?;
        }
        let after = self.ref_map().await?;
        let mut updates = Vec::new();
        for (key, sha) in &after {
            if before.get(key) != Some(sha) {
                updates.push(RefUpdate {
                    kind: key.0,
                    name: key.1.clone(),
                    before: before.get(key).cloned(),
                    after: Some(sha.clone()),
                });
            }
        }
        for (key, sha) in &before {
            if !after.contains_key(key) {
                updates.push(RefUpdate {
                    kind: key.0,
                    name: key.1.clone(),
                    before: Some(sha.clone()),
                    after: None,
                });
            }
        }
        updates.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        tracing::debug!(project = %self.project, created, updates = updates.len(), "synced repository mirror");
        Ok(SyncReport { created, updates })
    }

    async fn clone_from(&self, source: &ImportSource) -> Result<(), GitError> {
        let parent = self.dir.parent().unwrap_or(&self.dir);
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|source| GitError::Io {
                action: "create directory",
                path: parent.to_owned(),
                source,
            })?;
        // Clone next to the final place and move it there when complete, so
        // readers never see a half-cloned repository. Valid project
        // directories all end in `.git`, so this name cannot collide.
        let mut partial = self.dir.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        remove_dir_if_present(&partial).await?;
        let result = self.clone_into(source, &partial).await;
        if result.is_err() {
            // Best effort: the error at hand is the one worth reporting.
            let _ = tokio::fs::remove_dir_all(&partial).await;
        }
        result
    }

    async fn clone_into(&self, source: &ImportSource, partial: &Path) -> Result<(), GitError> {
        let mut command = self.remote_command(None, source);
        command
            .args(["clone", "--mirror", "--quiet", "--", source.url.as_str()])
            .arg(partial);
        self.fetch_command(command, source).await?;
        for args in [
            &[
                "config",
                "--replace-all",
                "remote.origin.fetch",
                "+refs/heads/*:refs/heads/*",
            ][..],
            &[
                "config",
                "--add",
                "remote.origin.fetch",
                "+refs/tags/*:refs/tags/*",
            ],
            // Runners may fetch a pipeline's sha directly, and partially.
            &["config", "uploadpack.allowAnySHA1InWant", "true"],
            &["config", "uploadpack.allowFilter", "true"],
        ] {
            self.git.run_ok(partial, args, None).await?;
        }
        tokio::fs::rename(partial, &self.dir)
            .await
            .map_err(|source| GitError::Io {
                action: "move the new mirror into place at",
                path: self.dir.clone(),
                source,
            })
    }

    async fn fetch_from(
        &self,
        source: &ImportSource,
        state: &mut SyncState,
    ) -> Result<(), GitError> {
        // `import_url` may have changed since the last sync.
        if state.origin_url.as_deref() != Some(source.url.as_str()) {
            self.git
                .run_ok(
                    &self.dir,
                    &["config", "remote.origin.url", source.url.as_str()],
                    None,
                )
                .await?;
            state.origin_url = Some(source.url.clone());
        }
        let mut command = self.remote_command(Some(&self.dir), source);
        command.args(["fetch", "--prune", "--quiet", "origin"]);
        // The remote's HEAD is read while the fetch runs: both only read the
        // source.
        let (fetched, remote_head) = tokio::join!(
            self.fetch_command(command, source),
            self.remote_head(source)
        );
        fetched?;
        if let Some(target) = remote_head {
            self.follow_remote_head(&target).await;
        }
        Ok(())
    }

    /// The branch the remote's `HEAD` points at (`refs/heads/…`), if it
    /// says.
    async fn remote_head(&self, source: &ImportSource) -> Option<String> {
        let mut command = self.remote_command(Some(&self.dir), source);
        command.args(["ls-remote", "--symref", "origin", "HEAD"]);
        let output = match tokio::time::timeout(self.sync_timeout, command.output()).await {
            Ok(Ok(output)) if output.status.success() => output,
            Ok(Ok(output)) => {
                tracing::debug!(project = %self.project, stderr = %stderr_text(&output), "could not read the remote HEAD");
                return None;
            }
            _ => return None,
        };
        let listing = String::from_utf8_lossy(&output.stdout);
        listing.lines().find_map(|line| {
            let (symref, name) = line.strip_prefix("ref: ")?.split_once('\t')?;
            (name == "HEAD" && symref.starts_with("refs/heads/")).then(|| symref.to_owned())
        })
    }

    /// Points `HEAD` at `target`, the remote's default branch, if that
    /// changed since the mirror was created (`git fetch` does not).
    /// Failures are logged and ignored: the mirror itself is up to date.
    async fn follow_remote_head(&self, target: &str) {
        let current = self.default_branch().await.ok().flatten();
        if current.as_deref() == target.strip_prefix("refs/heads/") {
            return;
        }
        if let Err(err) = self
            .git
            .run_ok(&self.dir, &["symbolic-ref", "HEAD", target], None)
            .await
        {
            tracing::warn!(project = %self.project, error = %err, "could not follow the remote's default branch");
        }
    }

    /// A git command that talks to the `import_url`, with its credentials
    /// (if any) in the environment rather than on the command line.
    fn remote_command(
        &self,
        git_dir: Option<&Path>,
        source: &ImportSource,
    ) -> tokio::process::Command {
        let mut command = self.git.command(git_dir);
        if let Some(authorization) = &source.authorization {
            command
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", authorization);
        }
        command
    }

    /// Runs a clone or fetch with the sync timeout and maps its failure.
    async fn fetch_command(
        &self,
        mut command: tokio::process::Command,
        source: &ImportSource,
    ) -> Result<(), GitError> {
        let url = || redact_credentials(&source.url).into_owned();
        let output = match tokio::time::timeout(self.sync_timeout, command.output()).await {
            Err(_elapsed) => {
                return Err(GitError::SyncTimedOut {
                    project: self.project.clone(),
                    url: url(),
                    timeout: self.sync_timeout,
                })
            }
            Ok(Err(source)) => return Err(GitError::GitUnavailable { source }),
            Ok(Ok(output)) => output,
        };
        if output.status.success() {
            Ok(())
        } else {
            Err(GitError::ImportFailed {
                project: self.project.clone(),
                url: url(),
                stderr: stderr_text(&output),
            })
        }
    }

    /// Deletes the mirror (e.g. when its project is deleted), waiting for a
    /// running sync to finish first. Deleting a missing mirror is not an
    /// error.
    pub async fn remove(&self) -> Result<(), GitError> {
        let mut state = self.lock.lock().await;
        state.origin_url = None;
        remove_dir_if_present(&self.dir).await
    }

    /// All branches and tags with the commits they point at, sorted by kind
    /// and name.
    pub async fn list_refs(&self) -> Result<Vec<ResolvedRef>, GitError> {
        self.ensure_exists().await?;
        Ok(self
            .ref_map()
            .await?
            .into_iter()
            .map(|((kind, name), sha)| ResolvedRef { kind, name, sha })
            .collect())
    }

    async fn ref_map(&self) -> Result<BTreeMap<(RefKind, String), String>, GitError> {
        let refs = self
            .for_each_ref(&["refs/heads", "refs/tags"])
            .await?
            .into_iter()
            .filter_map(|(full_name, sha)| {
                RefKind::of_full_name(&full_name).map(|(kind, name)| ((kind, name.to_owned()), sha))
            })
            .collect();
        Ok(refs)
    }

    /// `(full ref name, peeled sha)` for every ref matching `patterns`
    /// (prefix patterns, as `git for-each-ref` takes them).
    async fn for_each_ref(&self, patterns: &[&str]) -> Result<Vec<(String, String)>, GitError> {
        let mut args = vec![
            "for-each-ref",
            "--format=%(objectname) %(*objectname) %(refname)",
            "--",
        ];
        args.extend_from_slice(patterns);
        let out = self.git.run_ok(&self.dir, &args, None).await?;
        let text = String::from_utf8_lossy(&out);
        let refs = text
            .lines()
            .filter_map(|line| {
                let (object, rest) = line.split_once(' ')?;
                let (peeled, full_name) = rest.split_once(' ')?;
                let sha = if peeled.is_empty() { object } else { peeled };
                Some((full_name.to_owned(), sha.to_owned()))
            })
            .collect();
        Ok(refs)
    }

    /// Resolves a branch or tag name (short, or as `refs/heads/…` /
    /// `refs/tags/…`), or a full or abbreviated commit sha, to a commit.
    ///
    /// A short name that is both a branch and a tag is an error
    /// ([`GitError::AmbiguousRef`]), as in GitLab.
    pub async fn resolve_ref(&self, name: &str) -> Result<ResolvedRef, GitError> {
        self.ensure_exists().await?;
        let not_found = || GitError::RefNotFound {
            project: self.project.clone(),
            name: name.to_owned(),
        };
        if names::ref_name(name).is_ok() {
            let candidates: Vec<String> = if RefKind::of_full_name(name).is_some() {
                vec![name.to_owned()]
            } else {
                vec![format!("refs/heads/{name}"), format!("refs/tags/{name}")]
            };
            let patterns: Vec<&str> = candidates.iter().map(String::as_str).collect();
            let mut found: Vec<ResolvedRef> = self
                .for_each_ref(&patterns)
                .await?
                .into_iter()
                .filter(|(full_name, _)| candidates.contains(full_name))
                .filter_map(|(full_name, sha)| {
                    let (kind, short) = RefKind::of_full_name(&full_name)?;
                    Some(ResolvedRef {
                        kind,
                        name: short.to_owned(),
                        sha,
                    })
                })
                .collect();
            match found.len() {
                0 => {}
                1 => return Ok(found.remove(0)),
                _ => {
                    return Err(GitError::AmbiguousRef {
                        project: self.project.clone(),
                        name: name.to_owned(),
                    })
                }
            }
        } else if !looks_like_sha(name) {
            // Report the name problem rather than "not found".
            names::ref_name(name)?;
        }
        if looks_like_sha(name) {
            if let Some(sha) = self.peel_to_commit(name).await? {
                return Ok(ResolvedRef {
                    kind: RefKind::Commit,
                    name: sha.clone(),
                    sha,
                });
            }
        }
        Err(not_found())
    }

    /// The full sha of the commit `rev` names, or `None`.
    async fn peel_to_commit(&self, rev: &str) -> Result<Option<String>, GitError> {
        let spec = format!("{rev}^{{commit}}");
        let args = [
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            spec.as_str(),
        ];
        let output = self.git.run(Some(&self.dir), &args, None).await?;
        match output.status.code() {
            Some(0) => Ok(Some(
                String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            )),
            Some(1) => Ok(None),
            _ => Err(crate::git::command::command_failed(
                &self.dir, &args, &output,
            )),
        }
    }

    /// The full sha of commit `sha` (full or abbreviated), or
    /// [`GitError::CommitNotFound`].
    async fn commit(&self, sha: &str) -> Result<String, GitError> {
        self.ensure_exists().await?;
        let not_found = || GitError::CommitNotFound {
            project: self.project.clone(),
            sha: sha.to_owned(),
        };
        if !looks_like_sha(sha) {
            return Err(not_found());
        }
        let known = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sha)
            .cloned();
        if let Some(full) = known {
            return Ok(full);
        }
        let full = self.peel_to_commit(sha).await?.ok_or_else(not_found)?;
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sha.to_owned(), full.clone());
        Ok(full)
    }

    /// The content of the file at `path` in commit `sha`, or `None` if the
    /// commit has no file there (nothing at that path, or a directory or a
    /// submodule). A leading `/` or `./` is ignored, as for GitLab's
    /// `include:local`.
    ///
    /// An unknown commit is an error ([`GitError::CommitNotFound`]), not
    /// `None`. Symbolic links are returned as stored (the link target).
    pub async fn read_file(&self, sha: &str, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let commit = self.commit(sha).await?;
        let path = names::file_path(path)?;
        let request = format!("{commit}:{path}\n");
        let args = ["cat-file", "--batch"];
        let out = self
            .git
            .run_ok(&self.dir, &args, Some(request.as_bytes()))
            .await?;
        let malformed = || GitError::Command {
            command: args.join(" "),
            dir: self.dir.clone(),
            stderr: "unexpected output from git cat-file --batch".to_owned(),
        };
        let header_end = out.iter().position(|&b| b == b'\n').ok_or_else(malformed)?;
        let header = String::from_utf8_lossy(&out[..header_end]);
        if header.ends_with(" missing") || header.ends_with(" ambiguous") {
            return Ok(None);
        }
        let mut fields = header.split(' ');
        let (Some(_oid), Some(kind), Some(size)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(malformed());
        };
        if kind != "blob" {
            return Ok(None);
        }
        let size: usize = size.parse().map_err(|_| malformed())?;
        let content = out
            .get(header_end + 1..header_end + 1 + size)
            .ok_or_else(malformed)?;
        Ok(Some(content.to_vec()))
    }

    /// Every file path in commit `sha` (regular files and symbolic links, not
    /// directories or submodules), relative to the repository root, in git's
    /// order. Used for `rules:exists`.
    pub async fn list_files(&self, sha: &str) -> Result<Vec<String>, GitError> {
        let commit = self.commit(sha).await?;
        let args = ["ls-tree", "-r", "-z", "--full-tree", commit.as_str()];
        let out = self.git.run_ok(&self.dir, &args, None).await?;
        let files = out
            .split(|&b| b == 0)
            .filter_map(|entry| {
                // "<mode> SP <type> SP <object> TAB <path>"
                let tab = entry.iter().position(|&b| b == b'\t')?;
                let meta = std::str::from_utf8(&entry[..tab]).ok()?;
                (meta.split(' ').nth(1) == Some("blob"))
                    .then(|| String::from_utf8_lossy(&entry[tab + 1..]).into_owned())
            })
            .collect();
        Ok(files)
    }

    /// The paths that differ between commits `before` and `after` (added,
    /// modified or deleted; a rename lists both paths). An empty or all-zero
    /// `before` means "no previous commit": every file of `after` is listed.
    /// Used for `rules:changes`.
    pub async fn changed_files(&self, before: &str, after: &str) -> Result<Vec<String>, GitError> {
        if before.is_empty() || is_zero_sha(before) {
            return self.list_files(after).await;
        }
        let after = self.commit(after).await?;
        let before = self.commit(before).await?;
        let args = [
            "diff-tree",
            "-r",
            "-z",
            "--name-only",
            "--no-renames",
            "--no-commit-id",
            before.as_str(),
            after.as_str(),
        ];
        let out = self.git.run_ok(&self.dir, &args, None).await?;
        Ok(out
            .split(|&b| b == 0)
            .filter(|path| !path.is_empty())
            .map(|path| String::from_utf8_lossy(path).into_owned())
            .collect())
    }

    /// The first parent of commit `sha`, or `None` for a root commit.
    pub async fn parent_sha(&self, sha: &str) -> Result<Option<String>, GitError> {
        Ok(self.commit_info(sha).await?.parent)
    }

    /// What `CI_COMMIT_*` variables tell about commit `sha`, and its first
    /// parent (one git process for both).
    pub async fn commit_info(&self, sha: &str) -> Result<CommitInfo, GitError> {
        let commit = self.commit(sha).await?;
        let args = [
            "log",
            "-1",
            "--format=%P%x00%an <%ae>%x00%cI%x00%B",
            commit.as_str(),
        ];
        let out = self.git.run_ok(&self.dir, &args, None).await?;
        let text = String::from_utf8_lossy(&out);
        let mut parts = text.splitn(4, '\0');
        let parent = parts
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .map(str::to_owned);
        Ok(CommitInfo {
            author: parts.next().unwrap_or_default().to_owned(),
            timestamp: parts.next().unwrap_or_default().to_owned(),
            message: parts.next().unwrap_or_default().trim_end().to_owned(),
            parent,
        })
    }

    /// The branch the mirror's `HEAD` points at (the `import_url`
    /// repository's default branch when the mirror was created), or `None`
    /// if `HEAD` is detached.
    pub async fn default_branch(&self) -> Result<Option<String>, GitError> {
        self.ensure_exists().await?;
        let args = ["symbolic-ref", "--quiet", "HEAD"];
        let output = self.git.run(Some(&self.dir), &args, None).await?;
        match output.status.code() {
            Some(0) => Ok(String::from_utf8_lossy(&output.stdout)
                .trim()
                .strip_prefix("refs/heads/")
                .map(str::to_owned)),
            Some(1) => Ok(None),
            _ => Err(crate::git::command::command_failed(
                &self.dir, &args, &output,
            )),
        }
    }

    /// Creates or moves `refs/pipelines/<pipeline_id>` to commit `sha`, as
    /// GitLab does, so the pipeline's commit stays fetchable (runners fetch
    /// `+refs/pipelines/<id>:refs/pipelines/<id>`) even after its branch
    /// moves on. Syncs leave these refs alone.
    pub async fn keep_pipeline_ref(&self, pipeline_id: u64, sha: &str) -> Result<(), GitError> {
        let commit = self.commit(sha).await?;
        let name = format!("refs/pipelines/{pipeline_id}");
        self.git
            .run_ok(
                &self.dir,
                &["update-ref", name.as_str(), commit.as_str()],
                None,
            )
            .await?;
        Ok(())
    }

    /// Deletes `refs/pipelines/<pipeline_id>`; deleting a missing ref is not
    /// an error.
    pub async fn remove_pipeline_ref(&self, pipeline_id: u64) -> Result<(), GitError> {
        self.ensure_exists().await?;
        let name = format!("refs/pipelines/{pipeline_id}");
        self.git
            .run_ok(&self.dir, &["update-ref", "-d", name.as_str()], None)
            .await?;
        Ok(())
    }

    async fn ensure_exists(&self) -> Result<(), GitError> {
        if self.exists().await {
            Ok(())
        } else {
            Err(GitError::NotMirrored {
                project: self.project.clone(),
                path: self.dir.clone(),
            })
        }
    }
}

async fn remove_dir_if_present(path: &Path) -> Result<(), GitError> {
    match tokio::fs::remove_dir_all(path).await {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(GitError::Io {
            action: "remove stale directory",
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(kind: RefKind, name: &str) -> ResolvedRef {
        ResolvedRef {
            kind,
            name: name.to_owned(),
            sha: "a".repeat(40),
        }
    }

    #[test]
    fn refspecs_follow_gitlab() {
        let main = resolved(RefKind::Branch, "main");
        assert_eq!(
            main.refspecs(Some(12), 20),
            [
                "+refs/pipelines/12:refs/pipelines/12",
                "+refs/heads/main:refs/remotes/origin/main"
            ]
        );
        assert_eq!(
            main.refspecs(None, 1),
            ["+refs/heads/main:refs/remotes/origin/main"]
        );
        assert_eq!(
            resolved(RefKind::Tag, "v1.0").refspecs(None, 50),
            ["+refs/tags/v1.0:refs/tags/v1.0"]
        );
        assert_eq!(
            main.refspecs(Some(3), 0),
            [
                "+refs/pipelines/3:refs/pipelines/3",
                "+refs/heads/*:refs/remotes/origin/*",
                "+refs/tags/*:refs/tags/*",
            ]
        );
        let commit = resolved(RefKind::Commit, &"a".repeat(40));
        assert_eq!(
            commit.refspecs(Some(4), 20),
            ["+refs/pipelines/4:refs/pipelines/4"]
        );
        assert_eq!(commit.full_name(), None);
    }
}
