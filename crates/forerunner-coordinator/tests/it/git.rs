//! Tests of `forerunner_coordinator::git` against real repositories: each
//! test builds a source repository in a temporary directory with the `git`
//! CLI, mirrors it, and checks the mirror functions; the HTTP tests serve
//! the mirror on 127.0.0.1:0 and clone, fetch and push with the real `git`
//! client.
//!
//! Every git process runs with `GIT_TERMINAL_PROMPT=0` and without the
//! machine's global or system config, so nothing hangs or depends on the
//! host.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::Arc,
    time::Duration,
};

use async_trait::async_trait;
use axum::{body::Body, Router};
use forerunner_coordinator::git::{
    Access, Authorizer, BasicCredentials, GitError, GitHttp, Mirrors, RefKind, RefUpdate, ZERO_SHA,
};
use http::{header, Request, StatusCode};
use tempfile::TempDir;
use tower::ServiceExt;

const PROJECT: &str = "group/project";
const GOOD_TOKEN: &str = "glcbt-64_good-job-token";

const CI_YAML: &str = "include:\n  - local: /ci/build.yml\n\ntest:\n  script: echo test\n";
const BUILD_YAML: &str = "build:\n  script: make\n";

/// Environment for every git process the tests start.
const GIT_ENV: [(&str, &str); 4] = [
    ("GIT_TERMINAL_PROMPT", "0"),
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_ASKPASS", ""),
];
const GIT_CONFIG: [&str; 8] = [
    "-c",
    "user.name=Forerunner Test",
    "-c",
    "user.email=test@forerunner.invalid",
    "-c",
    "init.defaultBranch=main",
    "-c",
    "advice.detachedHead=false",
];

/// Runs git synchronously in `dir` and returns trimmed stdout; panics with
/// git's stderr on failure.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .envs(GIT_ENV)
        .args(GIT_CONFIG)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("failed to run git");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Runs git asynchronously (for commands that talk to the test server on
/// the same runtime) and returns its output whatever the exit status.
async fn git_client(dir: &Path, args: &[&str]) -> Output {
    let run = tokio::process::Command::new("git")
        .envs(GIT_ENV)
        .args(GIT_CONFIG)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("git client timed out")
        .expect("failed to run git")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, path: &str, content: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A source repository and an empty data directory:
///
/// - `main`: `c1` (`.gitlab-ci.yml` including `/ci/build.yml`, `README.md`,
///   `ci/nested/.gitlab-ci.yml`), then `c2` (changes `README.md`, adds
///   `src/lib.rs`).
/// - tag `v1.0` (annotated) at `c1`, tag `light` (lightweight) at `c2`.
/// - `feature`: `c3` on top of `c2` (adds `docs/guide.md`, deletes `README.md`).
struct Fixture {
    tmp: TempDir,
    source: PathBuf,
    mirrors: Mirrors,
    c1: String,
    c2: String,
    c3: String,
}

impl Fixture {
    fn new() -> Self {
        let tmp = TempDir::new().unwrap();
        let source = tmp.path().join("source");
        std::fs::create_dir(&source).unwrap();
        git(&source, &["init", "--quiet"]);
        write(&source, ".gitlab-ci.yml", CI_YAML);
        write(&source, "ci/build.yml", BUILD_YAML);
        write(
            &source,
            "ci/nested/.gitlab-ci.yml",
            "nested:\n  script: true\n",
        );
        write(&source, "README.md", "hello\n");
        git(&source, &["add", "."]);
        git(&source, &["commit", "--quiet", "-m", "first"]);
        let c1 = git(&source, &["rev-parse", "HEAD"]);
        git(&source, &["tag", "-a", "-m", "release 1.0", "v1.0"]);
        write(&source, "README.md", "hello again\n");
        write(&source, "src/lib.rs", "// lib\n");
        git(&source, &["add", "."]);
        git(&source, &["commit", "--quiet", "-m", "second"]);
        let c2 = git(&source, &["rev-parse", "HEAD"]);
        git(&source, &["tag", "light"]);
        git(&source, &["checkout", "--quiet", "-b", "feature"]);
        write(&source, "docs/guide.md", "# guide\n");
        git(&source, &["rm", "--quiet", "README.md"]);
        git(&source, &["add", "."]);
        git(&source, &["commit", "--quiet", "-m", "third"]);
        let c3 = git(&source, &["rev-parse", "HEAD"]);
        git(&source, &["checkout", "--quiet", "main"]);
        let mirrors = Mirrors::new(tmp.path().join("data"))
            .with_git_env("GIT_CONFIG_GLOBAL", "/dev/null")
            .with_git_env("GIT_CONFIG_NOSYSTEM", "1");
        Self {
            tmp,
            source,
            mirrors,
            c1,
            c2,
            c3,
        }
    }

    fn import_url(&self) -> String {
        self.source.to_str().unwrap().to_owned()
    }

    /// A fixture whose project is already mirrored.
    async fn synced() -> Self {
        let fixture = Self::new();
        fixture
            .mirrors
            .project(PROJECT)
            .unwrap()
            .sync(&fixture.import_url())
            .await
            .unwrap();
        fixture
    }

    /// An empty directory for a client checkout.
    fn client_dir(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

fn update(kind: RefKind, name: &str, before: Option<&str>, after: Option<&str>) -> RefUpdate {
    RefUpdate {
        kind,
        name: name.to_owned(),
        before: before.map(str::to_owned),
        after: after.map(str::to_owned),
    }
}

#[tokio::test]
async fn first_sync_creates_a_bare_mirror_and_reports_every_ref() {
    let fixture = Fixture::new();
    let mirror = fixture.mirrors.project("group/project.git").unwrap();
    assert!(!mirror.exists().await);
    assert_eq!(
        mirror.path(),
        fixture
            .tmp
            .path()
            .join("data/repositories/group/project.git")
    );

    let report = mirror.sync(&fixture.import_url()).await.unwrap();

    assert!(report.created);
    let (c1, c2, c3) = (Some(&*fixture.c1), Some(&*fixture.c2), Some(&*fixture.c3));
    assert_eq!(
        report.updates,
        vec![
            update(RefKind::Branch, "feature", None, c3),
            update(RefKind::Branch, "main", None, c2),
            update(RefKind::Tag, "light", None, c2),
            update(RefKind::Tag, "v1.0", None, c1),
        ]
    );
    assert_eq!(report.updates[0].before_sha(), ZERO_SHA);
    assert!(mirror.exists().await);
    assert_eq!(
        git(mirror.path(), &["rev-parse", "--is-bare-repository"]),
        "true"
    );
    assert_eq!(
        mirror.default_branch().await.unwrap().as_deref(),
        Some("main")
    );
    assert_eq!(mirror.list_refs().await.unwrap().len(), 4);
    // No half-cloned directory is left behind.
    assert!(!fixture
        .tmp
        .path()
        .join("data/repositories/group/project.git.partial")
        .exists());
}

#[tokio::test]
async fn resolve_ref_finds_branches_tags_and_commits() {
    let fixture = Fixture::synced().await;
    let mirror = fixture.mirrors.project(PROJECT).unwrap();

    let main = mirror.resolve_ref("main").await.unwrap();
    assert_eq!(
        (main.kind, main.name.as_str(), main.sha.as_str()),
        (RefKind::Branch, "main", &*fixture.c2)
    );
    assert_eq!(main.full_name().as_deref(), Some("refs/heads/main"));

    // An annotated tag resolves to the commit it points at.
    let tag = mirror.resolve_ref("v1.0").await.unwrap();
    assert_eq!((tag.kind, tag.sha.as_str()), (RefKind::Tag, &*fixture.c1));
    assert_eq!(tag.kind.as_str(), "tag");
    let light = mirror.resolve_ref("refs/tags/light").await.unwrap();
    assert_eq!(
        (light.kind, light.name.as_str(), light.sha.as_str()),
        (RefKind::Tag, "light", &*fixture.c2)
    );
    let feature = mirror.resolve_ref("refs/heads/feature").await.unwrap();
    assert_eq!(feature.sha, fixture.c3);

    let full = mirror.resolve_ref(&fixture.c3).await.unwrap();
    assert_eq!(
        (full.kind, full.sha.as_str()),
        (RefKind::Commit, &*fixture.c3)
    );
    let short = mirror.resolve_ref(&fixture.c1[..10]).await.unwrap();
    assert_eq!(
        (short.kind, short.sha.as_str()),
        (RefKind::Commit, &*fixture.c1)
    );
    assert_eq!(short.full_name(), None);

    // "feat" is a prefix of a branch, not a branch.
    let err = mirror.resolve_ref("feat").await.unwrap_err();
    assert!(matches!(err, GitError::RefNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("\"feat\" not found"), "{err}");
    let err = mirror.resolve_ref("deadbeefdeadbeef").await.unwrap_err();
    assert!(matches!(err, GitError::RefNotFound { .. }), "{err:?}");
    let err = mirror.resolve_ref("--output=/tmp/x").await.unwrap_err();
    assert!(matches!(err, GitError::InvalidRef { .. }), "{err:?}");

    // A name that is both a branch and a tag is ambiguous, as in GitLab.
    git(&fixture.source, &["branch", "twin"]);
    git(&fixture.source, &["tag", "twin"]);
    mirror.sync(&fixture.import_url()).await.unwrap();
    let err = mirror.resolve_ref("twin").await.unwrap_err();
    assert!(matches!(err, GitError::AmbiguousRef { .. }), "{err:?}");
    assert_eq!(
        mirror.resolve_ref("refs/tags/twin").await.unwrap().kind,
        RefKind::Tag
    );
}

#[tokio::test]
async fn read_file_returns_content_none_for_missing_and_errors_for_bad_input() {
    let fixture = Fixture::synced().await;
    let mirror = fixture.mirrors.project(PROJECT).unwrap();

    let ci = mirror
        .read_file(&fixture.c2, ".gitlab-ci.yml")
        .await
        .unwrap();
    assert_eq!(ci.as_deref(), Some(CI_YAML.as_bytes()));
    // Included files are named from the repository root, with a leading '/'.
    let build = mirror
        .read_file(&fixture.c2, "/ci/build.yml")
        .await
        .unwrap();
    assert_eq!(build.as_deref(), Some(BUILD_YAML.as_bytes()));
    let nested = mirror
        .read_file(&fixture.c1, "ci/nested/.gitlab-ci.yml")
        .await
        .unwrap();
    assert_eq!(nested.as_deref(), Some(&b"nested:\n  script: true\n"[..]));
    // The same path differs by commit.
    let old = mirror.read_file(&fixture.c1, "README.md").await.unwrap();
    assert_eq!(old.as_deref(), Some(&b"hello\n"[..]));

    // Missing files and directories are None, not errors.
    assert_eq!(
        mirror.read_file(&fixture.c1, "src/lib.rs").await.unwrap(),
        None
    );
    assert_eq!(
        mirror.read_file(&fixture.c3, "README.md").await.unwrap(),
        None
    );
    assert_eq!(mirror.read_file(&fixture.c2, "ci").await.unwrap(), None);
    assert_eq!(
        mirror
            .read_file(&fixture.c2, "no/such file.yml")
            .await
            .unwrap(),
        None
    );

    let err = mirror
        .read_file(&"1".repeat(40), ".gitlab-ci.yml")
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::CommitNotFound { .. }), "{err:?}");
    let err = mirror
        .read_file("main", ".gitlab-ci.yml")
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::CommitNotFound { .. }), "{err:?}");
    let err = mirror
        .read_file(&fixture.c2, "../../etc/passwd")
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::InvalidFilePath { .. }), "{err:?}");
}

#[tokio::test]
async fn list_files_changed_files_and_parent_sha() {
    let fixture = Fixture::synced().await;
    let mirror = fixture.mirrors.project(PROJECT).unwrap();

    let mut files = mirror.list_files(&fixture.c3).await.unwrap();
    files.sort();
    assert_eq!(
        files,
        [
            ".gitlab-ci.yml",
            "ci/build.yml",
            "ci/nested/.gitlab-ci.yml",
            "docs/guide.md",
            "src/lib.rs"
        ]
    );

    let mut changed = mirror
        .changed_files(&fixture.c1, &fixture.c2)
        .await
        .unwrap();
    changed.sort();
    assert_eq!(changed, ["README.md", "src/lib.rs"]);
    let mut changed = mirror
        .changed_files(&fixture.c2, &fixture.c3)
        .await
        .unwrap();
    changed.sort();
    assert_eq!(changed, ["README.md", "docs/guide.md"]);
    assert!(mirror
        .changed_files(&fixture.c2, &fixture.c2)
        .await
        .unwrap()
        .is_empty());
    // No previous commit: every file counts as changed.
    let mut all = mirror.changed_files(ZERO_SHA, &fixture.c1).await.unwrap();
    all.sort();
    assert_eq!(
        all,
        [
            ".gitlab-ci.yml",
            "README.md",
            "ci/build.yml",
            "ci/nested/.gitlab-ci.yml"
        ]
    );
    assert_eq!(
        mirror.changed_files("", &fixture.c1).await.unwrap().len(),
        4
    );
    let err = mirror
        .changed_files(&"2".repeat(40), &fixture.c1)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::CommitNotFound { .. }), "{err:?}");

    assert_eq!(
        mirror.parent_sha(&fixture.c3).await.unwrap().as_deref(),
        Some(&*fixture.c2)
    );
    assert_eq!(
        mirror.parent_sha(&fixture.c2).await.unwrap().as_deref(),
        Some(&*fixture.c1)
    );
    assert_eq!(mirror.parent_sha(&fixture.c1).await.unwrap(), None);

    // commit_info reads the parent in the same git run.
    let info = mirror.commit_info(&fixture.c3).await.unwrap();
    assert_eq!(info.parent.as_deref(), Some(&*fixture.c2));
    assert_eq!(info.author, "Forerunner Test <test@forerunner.invalid>");
    assert!(!info.message.is_empty() && !info.timestamp.is_empty());
    assert_eq!(mirror.commit_info(&fixture.c1).await.unwrap().parent, None);
    // An abbreviated sha is verified once, then remembered; an unknown one
    // is still an error.
    let short = &fixture.c2[..10];
    assert_eq!(
        mirror.parent_sha(short).await.unwrap().as_deref(),
        Some(&*fixture.c1)
    );
    assert_eq!(
        mirror.commit_info(short).await.unwrap().parent.as_deref(),
        Some(&*fixture.c1)
    );
    let err = mirror.commit_info(&"3".repeat(40)).await.unwrap_err();
    assert!(matches!(err, GitError::CommitNotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn resync_fetches_new_commits_prunes_deleted_refs_and_keeps_pipeline_refs() {
    let fixture = Fixture::synced().await;
    let mirror = fixture.mirrors.project(PROJECT).unwrap();
    mirror.keep_pipeline_ref(7, &fixture.c3).await.unwrap();

    write(&fixture.source, "src/lib.rs", "// changed\n");
    git(&fixture.source, &["commit", "--quiet", "-am", "fourth"]);
    let c4 = git(&fixture.source, &["rev-parse", "HEAD"]);
    git(&fixture.source, &["branch", "--quiet", "-D", "feature"]);
    git(&fixture.source, &["tag", "v2.0"]);

    let report = mirror.sync(&fixture.import_url()).await.unwrap();

    assert!(!report.created);
    assert_eq!(
        report.updates,
        vec![
            update(RefKind::Branch, "feature", Some(&fixture.c3), None),
            update(RefKind::Branch, "main", Some(&fixture.c2), Some(&c4)),
            update(RefKind::Tag, "v2.0", None, Some(&c4)),
        ]
    );
    assert_eq!(report.updates[1].before_sha(), fixture.c2);
    assert_eq!(mirror.resolve_ref("main").await.unwrap().sha, c4);
    assert!(mirror.resolve_ref("feature").await.is_err());
    // The pipeline ref survived the prune, so its commit is still readable.
    assert_eq!(
        git(mirror.path(), &["rev-parse", "refs/pipelines/7"]),
        fixture.c3
    );
    assert!(mirror
        .read_file(&fixture.c3, "docs/guide.md")
        .await
        .unwrap()
        .is_some());
    mirror.remove_pipeline_ref(7).await.unwrap();
    mirror.remove_pipeline_ref(7).await.unwrap();
    assert_eq!(git(mirror.path(), &["for-each-ref", "refs/pipelines"]), "");

    // Nothing changed: an empty report.
    let report = mirror.sync(&fixture.import_url()).await.unwrap();
    assert!(report.updates.is_empty(), "{report:?}");
}

#[tokio::test]
async fn sync_follows_a_changed_import_url_given_as_file_url() {
    let fixture = Fixture::synced().await;
    let mirror = fixture.mirrors.project(PROJECT).unwrap();
    let other = fixture.client_dir("other");
    git(&other, &["init", "--quiet"]);
    write(&other, ".gitlab-ci.yml", "other:\n  script: true\n");
    git(&other, &["add", "."]);
    git(&other, &["commit", "--quiet", "-m", "other"]);
    let other_sha = git(&other, &["rev-parse", "HEAD"]);

    let url = format!("file://{}", other.display());
    let report = mirror.sync(&url).await.unwrap();

    assert!(report.updates.contains(&update(
        RefKind::Branch,
        "main",
        Some(&fixture.c2),
        Some(&other_sha)
    )));
    assert!(report
        .updates
        .contains(&update(RefKind::Branch, "feature", Some(&fixture.c3), None)));
    assert_eq!(mirror.resolve_ref("main").await.unwrap().sha, other_sha);
    assert_eq!(git(mirror.path(), &["config", "remote.origin.url"]), url);

    // An unchanged URL leaves the config alone; going back is followed too.
    mirror.sync(&url).await.unwrap();
    mirror.sync(&fixture.import_url()).await.unwrap();
    assert_eq!(mirror.resolve_ref("main").await.unwrap().sha, fixture.c2);
    assert_eq!(
        git(mirror.path(), &["config", "remote.origin.url"]),
        fixture.import_url()
    );
}

#[tokio::test]
async fn resync_follows_the_default_branch_and_remove_deletes_the_mirror() {
    let fixture = Fixture::synced().await;
    let mirror = fixture.mirrors.project(PROJECT).unwrap();
    git(&fixture.source, &["checkout", "--quiet", "feature"]);

    mirror.sync(&fixture.import_url()).await.unwrap();

    assert_eq!(
        mirror.default_branch().await.unwrap().as_deref(),
        Some("feature")
    );
    mirror.remove().await.unwrap();
    assert!(!mirror.exists().await);
    assert!(!mirror.path().exists());
    mirror.remove().await.unwrap();
}

#[tokio::test]
async fn sync_failures_say_what_failed_and_never_leak_credentials() {
    let fixture = Fixture::new();
    let mirror = fixture.mirrors.project(PROJECT).unwrap();

    let err = mirror.resolve_ref("main").await.unwrap_err();
    assert!(matches!(err, GitError::NotMirrored { .. }), "{err:?}");
    assert!(err.to_string().contains("sync it"), "{err}");

    let missing = fixture.tmp.path().join("no-such-repo");
    let err = mirror.sync(missing.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(err, GitError::ImportFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-repo"), "{err}");
    assert!(!mirror.exists().await);

    // Port 1 on localhost refuses connections.
    let err = mirror
        .sync("http://someone:s3cr3t-password@127.0.0.1:1/group/project.git")
        .await
        .unwrap_err();
    let message = format!("{err} {err:?}");
    assert!(matches!(err, GitError::ImportFailed { .. }), "{err:?}");
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains("s3cr3t"), "{message}");
    assert!(!message.contains("someone"), "{message}");

    let err = mirror
        .sync("ext::sh -c touch% /tmp/pwned")
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::InvalidImportUrl { .. }), "{err:?}");

    let err = fixture.mirrors.project("../escape").unwrap_err();
    assert!(
        matches!(err, GitError::InvalidProjectPath { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn sync_that_hangs_is_stopped_at_the_timeout() {
    let fixture = Fixture::new();
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mirrors = fixture
        .mirrors
        .clone()
        .with_sync_timeout(Duration::from_millis(1500));
    let mirror = mirrors.project(PROJECT).unwrap();

    let err = mirror
        .sync(&format!("http://user:hidden@{addr}/group/project.git"))
        .await
        .unwrap_err();

    assert!(matches!(err, GitError::SyncTimedOut { .. }), "{err:?}");
    assert!(!err.to_string().contains("hidden"), "{err}");
    assert!(!mirror.exists().await);
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_syncs_of_one_project_run_one_at_a_time() {
    let fixture = Fixture::new();
    let url = fixture.import_url();
    let syncs = (0..6).map(|_| {
        // Separate handles, as separate requests would have.
        let mirror = fixture.mirrors.project(PROJECT).unwrap();
        let url = url.clone();
        tokio::spawn(async move { mirror.sync(&url).await })
    });
    let reports: Vec<_> = futures::future::join_all(syncs)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect();

    assert_eq!(reports.iter().filter(|report| report.created).count(), 1);
    assert_eq!(
        reports
            .iter()
            .filter(|report| !report.updates.is_empty())
            .count(),
        1
    );
}

#[tokio::test]
async fn a_sync_abandoned_by_its_caller_still_completes() {
    let fixture = Fixture::new();
    let mirror = fixture.mirrors.project(PROJECT).unwrap();

    let abandoned =
        tokio::time::timeout(Duration::from_millis(1), mirror.sync(&fixture.import_url())).await;
    assert!(abandoned.is_err(), "the first sync finished within 1 ms");

    // This waits for the abandoned sync, which created the mirror.
    let report = mirror.sync(&fixture.import_url()).await.unwrap();
    assert!(!report.created, "{report:?}");
    assert!(report.updates.is_empty(), "{report:?}");
    assert_eq!(mirror.resolve_ref("main").await.unwrap().sha, fixture.c2);
}

/// Grants `gitlab-ci-token:<GOOD_TOKEN>` access to [`PROJECT`] only.
struct JobTokens;

#[async_trait]
impl Authorizer for JobTokens {
    async fn authorize(&self, project_path: &str, credentials: &BasicCredentials) -> Access {
        if project_path == PROJECT
            && credentials.username() == "gitlab-ci-token"
            && credentials.password() == GOOD_TOKEN
        {
            Access::Granted
        } else {
            Access::Denied
        }
    }
}

fn git_http(fixture: &Fixture) -> GitHttp {
    GitHttp::new(fixture.mirrors.clone(), Arc::new(JobTokens))
}

/// Serves the fixture's mirrors on 127.0.0.1:0 and returns the address.
async fn serve(fixture: &Fixture) -> SocketAddr {
    serve_with(git_http(fixture)).await
}

async fn serve_with(git: GitHttp) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app: Router = git.router();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

fn repo_url(addr: SocketAddr, credentials: Option<&str>) -> String {
    match credentials {
        Some(credentials) => format!("http://{credentials}@{addr}/{PROJECT}.git"),
        None => format!("http://{addr}/{PROJECT}.git"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clone_and_shallow_fetch_over_http_with_the_job_token() {
    let fixture = Fixture::synced().await;
    let addr = serve(&fixture).await;
    let url = repo_url(addr, Some(&format!("gitlab-ci-token:{GOOD_TOKEN}")));
    let clients = fixture.client_dir("clients");

    for version in ["2", "0"] {
        let dir = format!("clone-v{version}");
        let protocol = format!("protocol.version={version}");
        let output = git_client(&clients, &["-c", &protocol, "clone", "--quiet", &url, &dir]).await;
        assert!(
            output.status.success(),
            "clone (protocol v{version}) failed: {}",
            stderr(&output)
        );
        let checkout = clients.join(&dir);
        assert_eq!(git(&checkout, &["rev-parse", "HEAD"]), fixture.c2);
        assert_eq!(
            std::fs::read_to_string(checkout.join(".gitlab-ci.yml")).unwrap(),
            CI_YAML
        );
        assert_eq!(git(&checkout, &["rev-parse", "origin/feature"]), fixture.c3);
    }

    // What a runner does: a fresh repository, then a shallow fetch.
    let runner = fixture.client_dir("runner");
    git(&runner, &["init", "--quiet"]);
    git(&runner, &["remote", "add", "origin", &url]);
    let output = git_client(
        &runner,
        &[
            "fetch",
            "--depth",
            "1",
            "origin",
            "+refs/heads/main:refs/remotes/origin/main",
            "+refs/tags/*:refs/tags/*",
        ],
    )
    .await;
    assert!(
        output.status.success(),
        "shallow fetch failed: {}",
        stderr(&output)
    );
    assert_eq!(
        git(&runner, &["rev-parse", "refs/remotes/origin/main"]),
        fixture.c2
    );
    assert_eq!(
        git(
            &runner,
            &["rev-list", "--count", "refs/remotes/origin/main"]
        ),
        "1"
    );

    // A commit that is no branch tip is fetchable by sha.
    let output = git_client(&runner, &["fetch", "--depth", "1", "origin", &fixture.c1]).await;
    assert!(
        output.status.success(),
        "fetch by sha failed: {}",
        stderr(&output)
    );
    git(
        &runner,
        &["cat-file", "-e", &format!("{}^{{commit}}", fixture.c1)],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clone_over_http_fails_without_a_valid_job_token() {
    let fixture = Fixture::synced().await;
    let addr = serve(&fixture).await;
    let clients = fixture.client_dir("clients");

    for (case, credentials) in [
        (
            "wrong token",
            Some("gitlab-ci-token:glcbt-wrong".to_owned()),
        ),
        ("wrong user", Some(format!("root:{GOOD_TOKEN}"))),
    ] {
        let url = repo_url(addr, credentials.as_deref());
        let output = git_client(&clients, &["clone", "--quiet", &url, "checkout"]).await;
        assert!(!output.status.success(), "{case}: clone succeeded");
        assert!(
            stderr(&output).contains("Authentication failed"),
            "{case}: {}",
            stderr(&output)
        );
        assert!(!clients.join("checkout").exists(), "{case}");
    }

    // The job token of one project does not open another project.
    let other = fixture.mirrors.project("group/other").unwrap();
    other.sync(&fixture.import_url()).await.unwrap();
    let url = format!("http://gitlab-ci-token:{GOOD_TOKEN}@{addr}/group/other.git");
    let output = git_client(&clients, &["clone", "--quiet", &url, "other"]).await;
    assert!(
        !output.status.success(),
        "clone of another project succeeded"
    );
    assert!(
        stderr(&output).contains("Authentication failed"),
        "{}",
        stderr(&output)
    );

    // Without credentials git would prompt; prompts are disabled.
    let output = git_client(
        &clients,
        &["clone", "--quiet", &repo_url(addr, None), "checkout"],
    )
    .await;
    assert!(!output.status.success(), "anonymous clone succeeded");
    assert!(
        stderr(&output).contains("could not read Username"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_push_over_http_is_refused() {
    let fixture = Fixture::synced().await;
    let addr = serve(&fixture).await;
    let url = repo_url(addr, Some(&format!("gitlab-ci-token:{GOOD_TOKEN}")));
    let clients = fixture.client_dir("clients");
    let output = git_client(&clients, &["clone", "--quiet", &url, "checkout"]).await;
    assert!(output.status.success(), "clone failed: {}", stderr(&output));
    let checkout = clients.join("checkout");
    write(&checkout, "new.txt", "new\n");
    git(&checkout, &["add", "."]);
    git(&checkout, &["commit", "--quiet", "-m", "push me"]);

    let output = git_client(&checkout, &["push", "origin", "HEAD:main"]).await;

    assert!(!output.status.success(), "push succeeded");
    assert!(stderr(&output).contains("403"), "{}", stderr(&output));
    let mirror = fixture.mirrors.project(PROJECT).unwrap();
    assert_eq!(mirror.resolve_ref("main").await.unwrap().sha, fixture.c2);
}

fn basic(credentials: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

async fn body_bytes(response: axum::response::Response) -> Vec<u8> {
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn http_endpoint_status_codes() {
    let fixture = Fixture::synced().await;
    let app: Router = git_http(&fixture).router();
    let good = basic(&format!("gitlab-ci-token:{GOOD_TOKEN}"));
    let call = |method: &str, uri: &str, authorization: Option<&str>| {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        app.clone().oneshot(request.body(Body::empty()).unwrap())
    };

    let response = call(
        "GET",
        "/group/project.git/info/refs?service=git-upload-pack",
        None,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Basic realm=\"GitLab\""
    );

    let bad = basic("gitlab-ci-token:nope");
    let response = call(
        "GET",
        "/group/project.git/info/refs?service=git-upload-pack",
        Some(&bad),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let response = call(
        "GET",
        "/group/project.git/info/refs?service=git-upload-pack",
        Some(&good),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-git-upload-pack-advertisement"
    );
    let body = body_bytes(response).await;
    assert!(
        body.starts_with(b"001e# service=git-upload-pack\n"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(String::from_utf8_lossy(&body).contains("refs/heads/main"));

    // Without `.git`, as GitLab also accepts.
    let response = call(
        "GET",
        "/group/project/info/refs?service=git-upload-pack",
        Some(&good),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    for uri in [
        "/group/project.git/info/refs?service=git-receive-pack",
        "/group/project.git/info/refs",
    ] {
        let response = call("GET", uri, Some(&good)).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{uri}");
    }
    let response = call("POST", "/group/project.git/git-receive-pack", Some(&good))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = call("GET", "/group/project.git/git-upload-pack", Some(&good))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let response = call("GET", "/group/project.git/HEAD", Some(&good))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = call("GET", "/api/v4/version", Some(&good)).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Authorized, but the project was never mirrored.
    std::fs::remove_dir_all(fixture.mirrors.repository_dir(PROJECT).unwrap()).unwrap();
    let response = call(
        "GET",
        "/group/project.git/info/refs?service=git-upload-pack",
        Some(&good),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// A protocol v2 `ls-refs` request in pkt-line framing.
fn ls_refs_request() -> Vec<u8> {
    let mut request = Vec::new();
    for line in ["command=ls-refs\n", "object-format=sha1\n"] {
        request.extend(format!("{:04x}{line}", line.len() + 4).into_bytes());
    }
    request.extend(b"0001");
    let line = "ref-prefix refs/heads/\n";
    request.extend(format!("{:04x}{line}", line.len() + 4).into_bytes());
    request.extend(b"0000");
    request
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("failed to run gzip");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    output.stdout
}

#[tokio::test]
async fn upload_pack_accepts_protocol_v2_gzip_and_chunked_request_bodies() {
    let fixture = Fixture::synced().await;
    let app: Router = git_http(&fixture).router();
    let good = basic(&format!("gitlab-ci-token:{GOOD_TOKEN}"));
    let plain = ls_refs_request();

    // (Content-Encoding, body, whether to send Content-Length or stream it in chunks)
    let cases = [
        (None, plain.clone(), true),
        (Some("gzip"), gzip(&plain), true),
        (None, plain.clone(), false),
        (Some("gzip"), gzip(&plain), false),
    ];
    for (encoding, body, sized) in cases {
        let mut request = Request::builder()
            .method("POST")
            .uri("/group/project.git/git-upload-pack")
            .header(header::AUTHORIZATION, &good)
            .header(
                header::CONTENT_TYPE,
                "application/x-git-upload-pack-request",
            )
            .header("Git-Protocol", "version=2");
        if let Some(encoding) = encoding {
            request = request.header(header::CONTENT_ENCODING, encoding);
        }
        let body = if sized {
            request = request.header(header::CONTENT_LENGTH, body.len());
            Body::from(body)
        } else {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                body.chunks(7).map(|chunk| Ok(chunk.to_vec())).collect();
            Body::from_stream(futures::stream::iter(chunks))
        };
        let case = (encoding, sized);
        let response = app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::OK, "{case:?}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/x-git-upload-pack-result"
        );
        let body = String::from_utf8_lossy(&body_bytes(response).await).into_owned();
        assert!(
            body.contains(&format!("{} refs/heads/main", fixture.c2)),
            "{case:?}: {body}"
        );
        assert!(body.contains("refs/heads/feature"), "{case:?}: {body}");
        assert!(!body.contains("refs/tags/"), "{case:?}: {body}");
        assert!(body.ends_with("0000"), "{case:?}: {body}");
    }
}

/// Runs `git http-backend` by hand for one request: (headers, body).
fn http_backend_by_hand(
    fixture: &Fixture,
    method: &str,
    path_info: &str,
    query: &str,
    protocol: Option<&str>,
    body: &[u8],
) -> (Vec<(String, String)>, Vec<u8>) {
    use std::io::Write as _;
    let mut command = Command::new("git");
    command
        .envs(GIT_ENV)
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", fixture.mirrors.root())
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", query)
        .env("REMOTE_USER", "gitlab-ci-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if method == "POST" {
        command
            .env("CONTENT_TYPE", "application/x-git-upload-pack-request")
            .env("CONTENT_LENGTH", body.len().to_string());
    }
    if let Some(protocol) = protocol {
        command.env("GIT_PROTOCOL", protocol);
    }
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    let out = output.stdout;
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let headers = String::from_utf8_lossy(&out[..end])
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    (headers, out[end + 4..].to_vec())
}

#[tokio::test]
async fn upload_pack_run_directly_answers_byte_for_byte_as_http_backend() {
    let fixture = Fixture::synced().await;
    let app: Router = git_http(&fixture).router();
    let good = basic(&format!("gitlab-ci-token:{GOOD_TOKEN}"));
    let ls_refs = ls_refs_request();
    /// (method, path, query, Git-Protocol, body)
    type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a [u8]);
    let cases: [Case<'_>; 4] = [
        ("GET", "info/refs", "service=git-upload-pack", None, b""),
        (
            "GET",
            "info/refs",
            "service=git-upload-pack",
            Some("version=1"),
            b"",
        ),
        (
            "GET",
            "info/refs",
            "service=git-upload-pack",
            Some("version=2"),
            b"",
        ),
        ("POST", "git-upload-pack", "", Some("version=2"), &ls_refs),
    ];
    for (method, path, query, protocol, body) in cases {
        let case = (method, path, protocol);
        let uri = if query.is_empty() {
            format!("/{PROJECT}.git/{path}")
        } else {
            format!("/{PROJECT}.git/{path}?{query}")
        };
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, &good);
        if method == "POST" {
            request = request
                .header(
                    header::CONTENT_TYPE,
                    "application/x-git-upload-pack-request",
                )
                .header(header::CONTENT_LENGTH, body.len());
        }
        if let Some(protocol) = protocol {
            request = request.header("Git-Protocol", protocol);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::from(body.to_vec())).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{case:?}");
        let got_headers: Vec<(String, String)> =
            ["content-type", "cache-control", "pragma", "expires"]
                .iter()
                .map(|h| {
                    let v = response
                        .headers()
                        .get(*h)
                        .map(|v| v.to_str().unwrap().to_owned());
                    (h.to_string(), v.unwrap_or_default())
                })
                .collect();
        let got = body_bytes(response).await;

        let (headers, expected) = http_backend_by_hand(
            &fixture,
            method,
            &format!("/{PROJECT}.git/{path}"),
            query,
            protocol,
            body,
        );
        for (name, value) in &got_headers {
            let want = headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default();
            assert_eq!(value, want, "{case:?}: header {name}");
        }
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "{case:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_from_an_http_url_sends_embedded_credentials_without_storing_them() {
    let fixture = Fixture::synced().await;
    let addr = serve(&fixture).await;
    let copy = fixture.mirrors.project("copies/project").unwrap();

    let url = repo_url(addr, Some(&format!("gitlab-ci-token:{GOOD_TOKEN}")));
    let report = copy.sync(&url).await.unwrap();

    assert!(report.created);
    assert_eq!(copy.resolve_ref("main").await.unwrap().sha, fixture.c2);
    assert_eq!(copy.resolve_ref("v1.0").await.unwrap().sha, fixture.c1);
    let config = std::fs::read_to_string(copy.path().join("config")).unwrap();
    assert!(
        config.contains(&format!("url = http://{addr}/group/project.git")),
        "{config}"
    );
    assert!(!config.contains(GOOD_TOKEN), "{config}");
    // A second sync fetches with the same credentials.
    copy.sync(&url).await.unwrap();

    let err = copy
        .sync(&repo_url(addr, Some("gitlab-ci-token:glcbt-wrong-secret")))
        .await
        .unwrap_err();
    let message = format!("{err} {err:?}");
    assert!(matches!(err, GitError::ImportFailed { .. }), "{message}");
    assert!(!message.contains("glcbt-wrong-secret"), "{message}");
}

#[tokio::test]
async fn git_router_merges_into_a_stateful_router_and_nests_under_a_base_path() {
    #[derive(Clone)]
    struct AppState {
        name: &'static str,
    }
    let fixture = Fixture::synced().await;
    let good = basic(&format!("gitlab-ci-token:{GOOD_TOKEN}"));
    let api = Router::new().route(
        "/api/v4/version",
        axum::routing::get(
            |axum::extract::State(state): axum::extract::State<AppState>| async move { state.name },
        ),
    );
    let merged: Router = api
        .merge(git_http(&fixture).router())
        .with_state(AppState { name: "forerunner" });
    let nested: Router = Router::new().nest("/gitlab", git_http(&fixture).router());
    let get = |app: &Router, uri: &str| {
        let request = Request::get(uri)
            .header(header::AUTHORIZATION, &good)
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(request)
    };

    let response = get(&merged, "/api/v4/version").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response).await, b"forerunner");
    let response = get(
        &merged,
        "/group/project.git/info/refs?service=git-upload-pack",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = get(&merged, "/api/v4/no-such-endpoint").await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let response = get(
        &nested,
        "/gitlab/group/project.git/info/refs?service=git-upload-pack",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = get(
        &nested,
        "/group/project.git/info/refs?service=git-upload-pack",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clone_over_http_streams_a_large_pack() {
    let fixture = Fixture::new();
    // 8 MiB that does not compress, so the pack is about as large.
    let mut data = Vec::with_capacity(8 << 20);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < 8 << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    std::fs::write(fixture.source.join("blob.bin"), &data).unwrap();
    git(&fixture.source, &["add", "blob.bin"]);
    git(&fixture.source, &["commit", "--quiet", "-m", "large"]);
    let mirror = fixture.mirrors.project(PROJECT).unwrap();
    mirror.sync(&fixture.import_url()).await.unwrap();
    let addr = serve(&fixture).await;
    let clients = fixture.client_dir("clients");

    let url = repo_url(addr, Some(&format!("gitlab-ci-token:{GOOD_TOKEN}")));
    let output = git_client(&clients, &["clone", "--quiet", &url, "checkout"]).await;

    assert!(output.status.success(), "clone failed: {}", stderr(&output));
    assert!(
        std::fs::read(clients.join("checkout/blob.bin")).unwrap() == data,
        "blob.bin differs"
    );
}

#[tokio::test]
async fn a_fallback_handler_can_dispatch_git_paths_and_keep_its_own_404() {
    let fixture = Fixture::synced().await;
    let git = git_http(&fixture);
    let good = basic(&format!("gitlab-ci-token:{GOOD_TOKEN}"));
    // How a coordinator whose fallback answers GitLab's JSON 404 wires it.
    let app: Router = Router::new()
        .route("/api/v4/version", axum::routing::get(|| async { "v" }))
        .fallback(move |request: axum::extract::Request| {
            let git = git.clone();
            async move {
                if GitHttp::is_git_path(request.uri().path()) {
                    git.serve(request).await
                } else {
                    use axum::response::IntoResponse;
                    (StatusCode::NOT_FOUND, "{\"error\":\"404 Not Found\"}").into_response()
                }
            }
        });
    let get = |uri: &str| {
        let request = Request::get(uri)
            .header(header::AUTHORIZATION, &good)
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(request)
    };

    let response = get("/group/project.git/info/refs?service=git-upload-pack")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = get("/api/v4/nothing-here").await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(body_bytes(response).await, br#"{"error":"404 Not Found"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clones_share_a_limited_number_of_backends() {
    let fixture = Fixture::synced().await;
    let addr = serve_with(git_http(&fixture).with_max_concurrent_backends(1)).await;
    let url = repo_url(addr, Some(&format!("gitlab-ci-token:{GOOD_TOKEN}")));
    let clients = fixture.client_dir("clients");

    let clones = (0..4).map(|i| {
        let (clients, url) = (clients.clone(), url.clone());
        async move {
            let dir = format!("checkout-{i}");
            let output = git_client(&clients, &["clone", "--quiet", &url, &dir]).await;
            (dir, output)
        }
    });
    for (dir, output) in futures::future::join_all(clones).await {
        assert!(output.status.success(), "{dir}: {}", stderr(&output));
        assert_eq!(git(&clients.join(&dir), &["rev-parse", "HEAD"]), fixture.c2);
    }
}
