//! [`GitRepo`]: a git repository made by a test, used as `import_url`.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _};

/// A non-bare repository in a temporary directory, on branch `main`.
pub struct GitRepo {
    dir: tempfile::TempDir,
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .with_context(|| format!("failed to run git {args:?}"))?;
    if !out.status.success() {
        bail!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl GitRepo {
    /// A repository whose first commit on `main` holds `files`
    /// (`(path, content)`). Panics when git fails.
    pub fn with_files(files: &[(&str, &str)]) -> GitRepo {
        let dir = tempfile::Builder::new()
            .prefix("forerunner-repo-")
            .tempdir()
            .expect("failed to create a temporary directory");
        git(dir.path(), &["init", "--quiet", "--initial-branch=main"]).expect("git init");
        let repo = GitRepo { dir };
        repo.commit(files, "initial commit");
        repo
    }

    /// Writes `files` and commits them on the current branch; returns the sha.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let full = self.dir.path().join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).expect("failed to create a directory");
            }
            std::fs::write(&full, content).expect("failed to write a file");
        }
        git(self.dir.path(), &["add", "--all"]).expect("git add");
        git(self.dir.path(), &["commit", "--quiet", "-m", message]).expect("git commit");
        git(self.dir.path(), &["rev-parse", "HEAD"]).expect("git rev-parse")
    }

    /// The directory (the `import_url`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The path as a string.
    pub fn url(&self) -> String {
        self.dir.path().display().to_string()
    }
}
