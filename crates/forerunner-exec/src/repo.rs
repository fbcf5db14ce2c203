//! The user's repository, read-only, and the source repository the embedded
//! coordinator imports.
//!
//! The coordinator's project does not point at the user's repository but at
//! a bare repository in the data directory ([`SourceRepo`]) that borrows the
//! user's objects (`objects/info/alternates`) and holds one ref: the branch,
//! tag or commit to run. That keeps the import to what runs, whatever shape
//! the user's repository has (linked worktree, hundreds of refs).
//!
//! `--working-tree` makes a snapshot commit of the work tree without
//! touching the user's index, refs, files or object database: a copy of the
//! index (`GIT_INDEX_FILE`) takes `git add --all` (uncommitted and untracked,
//! not ignored, changes), `git write-tree` and `git commit-tree` write their
//! objects into the source repository (`GIT_OBJECT_DIRECTORY`) while reading
//! the user's (`GIT_ALTERNATE_OBJECT_DIRECTORIES`).

use std::path::{Path, PathBuf};
use std::process::Output;

use tokio::process::Command;

/// Why the repository cannot be run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RepoError {
    /// `git` is not installed.
    #[error("failed to run git ({0}); install git and make sure it is on PATH")]
    NoGit(std::io::Error),
    /// Not inside a work tree.
    #[error("{} is not in a git repository; run forerunner exec inside one (or point -C at it)", .0.display())]
    NotARepository(PathBuf),
    /// HEAD has no commit yet.
    #[error("the repository has no commit yet; commit something, or pass --working-tree to run the files as they are")]
    NoCommits,
    /// `--ref` names nothing.
    #[error("there is no branch, tag or commit `{0}` in this repository (see `git branch -a` and `git tag`)")]
    UnknownRef(String),
    /// A git command failed.
    #[error("git {args} failed: {stderr}")]
    Git {
        /// The arguments.
        args: String,
        /// What git said.
        stderr: String,
    },
    /// A file could not be written.
    #[error("failed to {action} {}: {source}", .path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What kind of ref a pipeline runs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    /// A branch (`CI_COMMIT_BRANCH`).
    Branch,
    /// A tag (`CI_COMMIT_TAG`).
    Tag,
    /// A bare commit (detached HEAD, `--ref <sha>`).
    Commit,
}

/// The commit to run and the ref it runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Branch or tag name, or the full sha for a commit.
    pub(crate) ref_name: String,
    /// Its kind.
    pub(crate) kind: RefKind,
    /// The commit.
    pub(crate) sha: String,
    /// Whether the commit is a snapshot of the working tree.
    pub(crate) snapshot: bool,
}

impl Target {
    /// `branch main`, `tag v1.0`, `commit 3f2a1b9`, for messages.
    pub(crate) fn describe(&self) -> String {
        let short = &self.sha[..self.sha.len().min(8)];
        match self.kind {
            RefKind::Branch => format!("branch {} at {short}", self.ref_name),
            RefKind::Tag => format!("tag {} at {short}", self.ref_name),
            RefKind::Commit => format!("commit {short}"),
        }
    }

    /// The ref the source repository holds for this target.
    fn full_ref(&self) -> String {
        match self.kind {
            RefKind::Branch => format!("refs/heads/{}", self.ref_name),
            RefKind::Tag => format!("refs/tags/{}", self.ref_name),
            RefKind::Commit => "refs/forerunner/exec".to_owned(),
        }
    }
}

/// The user's repository (only read).
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    /// The work tree's top directory.
    pub(crate) toplevel: PathBuf,
    /// The object database (`.git/objects`, the common one for a linked
    /// worktree).
    pub(crate) objects: PathBuf,
    /// The index of this work tree.
    pub(crate) index: PathBuf,
}

async fn run(command: &mut Command, args_text: &str) -> Result<Output, RepoError> {
    let output = command
        .kill_on_drop(true)
        .output()
        .await
        .map_err(RepoError::NoGit)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(RepoError::Git {
            args: args_text.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl Repo {
    fn git(&self) -> Command {
        let mut c = Command::new("git");
        c.current_dir(&self.toplevel);
        c
    }

    async fn read(&self, args: &[&str]) -> Result<String, RepoError> {
        run(self.git().args(args), &args.join(" "))
            .await
            .map(|o| stdout(&o))
    }

    /// `git` succeeded with these arguments (`false` also when git failed
    /// for another reason: callers use it for questions).
    async fn check(&self, args: &[&str]) -> bool {
        self.git()
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }

    /// The repository whose work tree contains `dir`.
    pub(crate) async fn discover(dir: &Path) -> Result<Repo, RepoError> {
        let output = Command::new("git")
            .current_dir(dir)
            .args([
                "rev-parse",
                "--path-format=absolute",
                "--show-toplevel",
                "--git-path",
                "objects",
                "--git-path",
                "index",
            ])
            .output()
            .await;
        let output = match output {
            Ok(o) => o,
            // A missing directory is reported as such, not as missing git.
            Err(e) if !dir.is_dir() => {
                return Err(RepoError::Io {
                    action: "enter",
                    path: dir.to_owned(),
                    source: e,
                })
            }
            Err(e) => return Err(RepoError::NoGit(e)),
        };
        if !output.status.success() {
            return Err(RepoError::NotARepository(dir.to_owned()));
        }
        let text = stdout(&output);
        let mut lines = text.lines();
        let (Some(toplevel), Some(objects), Some(index)) =
            (lines.next(), lines.next(), lines.next())
        else {
            return Err(RepoError::NotARepository(dir.to_owned()));
        };
        Ok(Repo {
            toplevel: PathBuf::from(toplevel),
            objects: PathBuf::from(objects),
            index: PathBuf::from(index),
        })
    }

    /// The name to give the coordinator's project: the work tree's directory
    /// name, reduced to what a project path allows.
    pub(crate) fn project_path(&self) -> String {
        let name = self
            .toplevel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        project_path(&name)
    }

    /// HEAD's commit, if there is one.
    pub(crate) async fn head_sha(&self) -> Option<String> {
        self.read(&["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
            .await
            .ok()
            .filter(|s| !s.is_empty())
    }

    /// HEAD's branch (also when it has no commit yet); `None` when detached.
    pub(crate) async fn head_branch(&self) -> Option<String> {
        self.read(&["symbolic-ref", "--quiet", "--short", "HEAD"])
            .await
            .ok()
            .filter(|s| !s.is_empty())
    }

    /// The default branch, as GitLab would know it: the remote's HEAD
    /// (`origin/HEAD`), else `init.defaultBranch`, `main` or `master` when
    /// such a branch exists, else the current branch.
    pub(crate) async fn default_branch(&self) -> String {
        if let Ok(remote_head) = self
            .read(&[
                "symbolic-ref",
                "--quiet",
                "--short",
                "refs/remotes/origin/HEAD",
            ])
            .await
        {
            if let Some(branch) = remote_head.strip_prefix("origin/") {
                return branch.to_owned();
            }
        }
        let configured = self
            .read(&["config", "--get", "init.defaultBranch"])
            .await
            .ok();
        for candidate in configured
            .iter()
            .map(String::as_str)
            .chain(["main", "master"])
        {
            let full = format!("refs/heads/{candidate}");
            if self
                .check(&["show-ref", "--verify", "--quiet", &full])
                .await
            {
                return candidate.to_owned();
            }
        }
        self.head_branch().await.unwrap_or_else(|| "main".into())
    }

    /// What runs without `--ref` or `--working-tree`: HEAD.
    pub(crate) async fn head_target(&self) -> Result<Target, RepoError> {
        let sha = self.head_sha().await.ok_or(RepoError::NoCommits)?;
        Ok(match self.head_branch().await {
            Some(branch) => Target {
                ref_name: branch,
                kind: RefKind::Branch,
                sha,
                snapshot: false,
            },
            None => Target {
                ref_name: sha.clone(),
                kind: RefKind::Commit,
                sha,
                snapshot: false,
            },
        })
    }

    /// What `--ref name` runs.
    pub(crate) async fn ref_target(&self, name: &str) -> Result<Target, RepoError> {
        let spec = format!("{name}^{{commit}}");
        let sha = self
            .read(&[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ])
            .await
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| RepoError::UnknownRef(name.to_owned()))?;
        let exists = |full: String| async move {
            self.check(&["show-ref", "--verify", "--quiet", &full])
                .await
        };
        let (ref_name, kind) = if let Some(b) = name.strip_prefix("refs/heads/") {
            (b.to_owned(), RefKind::Branch)
        } else if let Some(t) = name.strip_prefix("refs/tags/") {
            (t.to_owned(), RefKind::Tag)
        } else if exists(format!("refs/heads/{name}")).await {
            (name.to_owned(), RefKind::Branch)
        } else if exists(format!("refs/tags/{name}")).await {
            (name.to_owned(), RefKind::Tag)
        } else if let (true, Some((_, branch))) = (
            exists(format!("refs/remotes/{name}")).await,
            name.split_once('/'),
        ) {
            // origin/feature runs as the branch `feature`, as it would on
            // the server.
            (branch.to_owned(), RefKind::Branch)
        } else {
            (sha.clone(), RefKind::Commit)
        };
        Ok(Target {
            ref_name,
            kind,
            sha,
            snapshot: false,
        })
    }

    /// How many paths `git status` reports (changed, staged, untracked),
    /// without refreshing the index.
    pub(crate) async fn uncommitted_changes(&self) -> usize {
        self.read(&["--no-optional-locks", "status", "--porcelain"])
            .await
            .map(|s| s.lines().filter(|l| !l.is_empty()).count())
            .unwrap_or(0)
    }

    /// Whether `path` exists in the work tree.
    pub(crate) fn has_work_tree_file(&self, path: &str) -> bool {
        self.toplevel.join(path).is_file()
    }
}

/// A project path GitLab accepts: letters, digits, `_`, `-`, `.`, not
/// starting with `-` or `.`.
pub(crate) fn project_path(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches(['-', '.']);
    let trimmed = trimmed.strip_suffix(".git").unwrap_or(trimmed);
    if trimmed.is_empty() {
        "project".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The bare repository the coordinator imports (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct SourceRepo {
    /// Its directory (the project's `import_url`).
    pub(crate) path: PathBuf,
    /// The user's object database it borrows from.
    borrowed: PathBuf,
}

impl SourceRepo {
    /// Creates it at `path`, borrowing `repo`'s objects.
    pub(crate) async fn create(path: &Path, repo: &Repo) -> Result<SourceRepo, RepoError> {
        let path_text = path.display().to_string();
        run(
            Command::new("git").args(["init", "--quiet", "--bare", &path_text]),
            "init --bare",
        )
        .await?;
        let alternates = path.join("objects").join("info").join("alternates");
        std::fs::write(&alternates, format!("{}\n", repo.objects.display())).map_err(|source| {
            RepoError::Io {
                action: "write",
                path: alternates.clone(),
                source,
            }
        })?;
        Ok(SourceRepo {
            path: path.to_owned(),
            borrowed: repo.objects.clone(),
        })
    }

    fn git(&self) -> Command {
        let mut c = Command::new("git");
        c.arg("--git-dir").arg(&self.path);
        c
    }

    /// Points the target's ref (and HEAD, for a branch) at its commit.
    pub(crate) async fn publish(&self, target: &Target) -> Result<(), RepoError> {
        let full = target.full_ref();
        run(
            self.git().args(["update-ref", &full, &target.sha]),
            "update-ref",
        )
        .await?;
        if target.kind == RefKind::Branch {
            run(
                self.git().args(["symbolic-ref", "HEAD", &full]),
                "symbolic-ref HEAD",
            )
            .await?;
        }
        Ok(())
    }

    /// The text of `path` at commit `sha`, if it is a readable file.
    pub(crate) async fn file_at(&self, sha: &str, path: &str) -> Option<String> {
        let spec = format!("{sha}:{path}");
        let output = self
            .git()
            .args(["cat-file", "blob", &spec])
            .stderr(std::process::Stdio::null())
            .output()
            .await
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// A commit of `repo`'s work tree as it is (see the module docs), on
    /// top of HEAD; HEAD itself when nothing changed. `index` is where the
    /// copy of the index goes.
    pub(crate) async fn snapshot(&self, repo: &Repo, index: &Path) -> Result<Target, RepoError> {
        let head = repo.head_sha().await;
        let branch = repo.head_branch().await;
        let env = |c: &mut Command| {
            c.current_dir(&repo.toplevel)
                .env("GIT_INDEX_FILE", index)
                .env("GIT_OBJECT_DIRECTORY", self.path.join("objects"))
                .env("GIT_ALTERNATE_OBJECT_DIRECTORIES", &self.borrowed);
        };
        let git = |args: &[&str]| {
            let mut c = Command::new("git");
            env(&mut c);
            c.args(args);
            c
        };
        // A copy of the index keeps its file stats, so only changed files
        // are read again; without one (or if the copy is refused), start
        // from HEAD's tree.
        let copied = repo.index.is_file() && std::fs::copy(&repo.index, index).is_ok();
        if !(copied
            && run(&mut git(&["add", "--all", "--", ":/"]), "add")
                .await
                .is_ok())
        {
            let _ = std::fs::remove_file(index);
            if head.is_some() {
                run(&mut git(&["read-tree", "HEAD"]), "read-tree HEAD").await?;
            }
            run(&mut git(&["add", "--all", "--", ":/"]), "add --all").await?;
        }
        let tree = stdout(&run(&mut git(&["write-tree"]), "write-tree").await?);
        if let Some(head) = &head {
            let head_tree = repo
                .read(&["rev-parse", &format!("{head}^{{tree}}")])
                .await?;
            if head_tree == tree {
                // Nothing uncommitted: run HEAD itself.
                let mut target = repo.head_target().await?;
                target.snapshot = false;
                return Ok(target);
            }
        }
        let message = format!(
            "forerunner exec: the working tree of {} with its uncommitted changes",
            branch.as_deref().unwrap_or("a detached HEAD")
        );
        let mut command = git(&["commit-tree", &tree, "-m", &message]);
        if let Some(head) = &head {
            command.args(["-p", head]);
        }
        if !repo.check(&["var", "GIT_AUTHOR_IDENT"]).await {
            // No identity configured: the snapshot is exec's.
            for (k, v) in [
                ("GIT_AUTHOR_NAME", "forerunner exec"),
                ("GIT_AUTHOR_EMAIL", "exec@forerunner.invalid"),
                ("GIT_COMMITTER_NAME", "forerunner exec"),
                ("GIT_COMMITTER_EMAIL", "exec@forerunner.invalid"),
            ] {
                command.env(k, v);
            }
        }
        let sha = stdout(&run(&mut command, "commit-tree").await?);
        Ok(match branch {
            Some(branch) => Target {
                ref_name: branch,
                kind: RefKind::Branch,
                sha,
                snapshot: true,
            },
            None => Target {
                ref_name: sha.clone(),
                kind: RefKind::Commit,
                sha,
                snapshot: true,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_paths_are_what_gitlab_accepts() {
        assert_eq!(project_path("forerunner"), "forerunner");
        assert_eq!(project_path("my repo (copy)"), "my-repo--copy-");
        assert_eq!(project_path(".hidden"), "hidden");
        assert_eq!(project_path("repo.git"), "repo");
        assert_eq!(project_path("---"), "project");
        assert_eq!(project_path("é"), "project");
    }

    #[test]
    fn targets_describe_themselves() {
        let t = Target {
            ref_name: "main".into(),
            kind: RefKind::Branch,
            sha: "3f2a1b9c0d".into(),
            snapshot: false,
        };
        assert_eq!(t.describe(), "branch main at 3f2a1b9c");
        assert_eq!(t.full_ref(), "refs/heads/main");
        let c = Target {
            kind: RefKind::Commit,
            ref_name: "3f2a1b9c0d".into(),
            ..t
        };
        assert_eq!(c.describe(), "commit 3f2a1b9c");
        assert_eq!(c.full_ref(), "refs/forerunner/exec");
    }
}
