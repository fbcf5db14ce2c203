//! `forerunner exec` end to end: the real binary on sample repositories
//! made here, with its embedded coordinator and runner (shell executor; the
//! docker executor when an engine answers). Each test checks the exit
//! status, the summary and the logs.
//!
//! Every run gets its own `HOME` and `XDG_CACHE_HOME` (the runner's
//! directory lives there) and a neutral git configuration.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};

use crate::runner_support::forerunner;
use forerunner_testkit::clean_command;

/// A sample repository on branch `main`, and a home for exec.
struct Sample {
    repo: tempfile::TempDir,
    home: tempfile::TempDir,
}

fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Sample {
    /// A repository whose first commit holds `files`.
    fn new(files: &[(&str, &str)]) -> Sample {
        let repo = tempfile::Builder::new()
            .prefix("exec-sample-")
            .tempdir()
            .unwrap();
        git_in(repo.path(), &["init", "--quiet", "--initial-branch=main"]);
        let s = Sample {
            repo,
            home: tempfile::tempdir().unwrap(),
        };
        s.commit(files);
        s
    }

    fn write(&self, files: &[(&str, &str)]) {
        for (path, content) in files {
            let full = self.repo.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content).unwrap();
        }
    }

    fn commit(&self, files: &[(&str, &str)]) {
        self.write(files);
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", "change"]);
    }

    fn git(&self, args: &[&str]) -> String {
        git_in(self.repo.path(), args)
    }

    fn short_sha(&self) -> String {
        self.git(&["rev-parse", "--short=8", "HEAD"])
    }

    /// `forerunner exec ARGS` in the repository, as a user would start it.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = forerunner(self.home.path());
        c.arg("exec")
            .args(args)
            .current_dir(self.repo.path())
            .env("XDG_CACHE_HOME", self.home.path().join("cache"));
        c
    }

    async fn exec(&self, args: &[&str]) -> Run {
        let child = self.command(args).spawn().expect("forerunner starts");
        let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
            .await
            .expect("forerunner exec finished in time")
            .unwrap();
        Run::from(out)
    }
}

/// What exec printed, and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    fn exits(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "exit status\n{}", self.all());
        // Never a panic, a backtrace or a raw section marker.
        for bad in [
            "panicked",
            "RUST_BACKTRACE",
            "section_start:",
            "section_end:",
            "\x1b[0K",
        ] {
            assert!(
                !self.all().contains(bad),
                "output has {bad:?}\n{}",
                self.all()
            );
        }
        self
    }

    #[track_caller]
    fn says(&self, needle: &str) -> &Self {
        assert!(
            self.all().contains(needle),
            "no {needle:?} in\n{}",
            self.all()
        );
        self
    }

    #[track_caller]
    fn never_says(&self, needle: &str) -> &Self {
        assert!(
            !self.all().contains(needle),
            "{needle:?} in\n{}",
            self.all()
        );
        self
    }

    /// The summary row of `job` (its cells, split on runs of spaces).
    #[track_caller]
    fn row(&self, job: &str) -> Vec<String> {
        let table = self
            .stdout
            .split("  JOB ")
            .nth(1)
            .unwrap_or_else(|| panic!("no summary table\n{}", self.all()));
        let line = table
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{job}  ")))
            .unwrap_or_else(|| panic!("no row for {job}\n{}", self.all()));
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[track_caller]
    fn has_no_row(&self, job: &str) -> &Self {
        let table = self.stdout.split("  JOB ").nth(1).unwrap_or("");
        assert!(
            !table
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{job}  "))),
            "{job} has a row\n{}",
            self.all()
        );
        self
    }
}

const PIPELINE: &str = r#"
stages: [build, test, deploy]
build:
  stage: build
  script:
    - mkdir -p out
    - echo "built from $CI_COMMIT_SHORT_SHA" > out/result.txt
  artifacts:
    paths: [out/]
unit:
  stage: test
  needs: [build]
  parallel:
    matrix:
      - OS: [linux, mac]
  script:
    - cat out/result.txt
    - echo "unit on $OS"
lint:
  stage: test
  script:
    - test -f out/result.txt && echo "lint got the artifact"
deploy:
  stage: deploy
  when: manual
  script:
    - echo "deploying $CI_COMMIT_REF_NAME"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn stages_needs_artifacts_and_a_parallel_matrix() {
    let s = Sample::new(&[(".gitlab-ci.yml", PIPELINE)]);
    let run = s.exec(&["--color", "never", "--concurrency", "2"]).await;
    run.exits(0);
    let sha = s.short_sha();
    // Live logs with the job name in front (jobs of `test` may run side by
    // side), section headers rendered as headers.
    run.says("Started build (stage build)")
        .says(&format!("unit: [linux] │ built from {sha}"))
        .says("unit: [mac]   │ unit on mac")
        .says("lint          │ lint got the artifact")
        .says("build         │ ▸ Executing \"step_script\" stage of the job script")
        .says("build         │ ▸ Uploading artifacts for successful job")
        .says(&format!("Running pipeline #1 for branch main at {sha}"));
    // The runner's own steps are headers only (no `Fetching changes...`).
    run.never_says("Fetching changes");
    for job in ["build", "unit: [linux]", "unit: [mac]", "lint"] {
        let row = run.row(job);
        assert_eq!(row[2], "passed", "{row:?}\n{}", run.all());
        assert_eq!(row[4], "0", "{row:?}");
        assert!(row[3].ends_with('s'), "a duration: {row:?}");
    }
    assert_eq!(run.row("unit: [mac]")[1], "test");
    assert_eq!(run.row("deploy")[2], "manual");
    run.never_says("deploying")
        .says("Finished pipeline passed in")
        .says("4 passed, 1 manual")
        .says("manual job not run: deploy; name it to run it: forerunner exec deploy");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_job_fails_the_pipeline_and_skips_what_waits_for_it() {
    let yaml = r#"
stages: [build, test]
build:
  stage: build
  script:
    - echo compiling
    - exit 3
  after_script:
    - echo "after build saw $CI_JOB_STATUS"
flaky:
  stage: build
  allow_failure: true
  script: exit 7
test:
  stage: test
  script: echo "never printed"
"#;
    let s = Sample::new(&[(".gitlab-ci.yml", yaml)]);
    let run = s.exec(&["--color", "never", "--concurrency", "1"]).await;
    run.exits(1)
        .says("after build saw failed")
        .says("Failed build in")
        .says(": exit code 3")
        .says("(allowed to fail)")
        .says("Skipped test")
        .never_says("never printed")
        .says("Finished pipeline failed in");
    // One job at a time: no name prefix.
    run.says("\ncompiling\n");
    assert_eq!(
        run.row("build")[2..],
        ["failed", run.row("build")[3].as_str(), "3"]
    );
    assert_eq!(run.row("flaky")[2], "failed (allowed)");
    assert_eq!(run.row("flaky")[4], "7");
    assert_eq!(run.row("test")[2..], ["skipped", "-", "-"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_and_variables_decide_which_jobs_exist() {
    let yaml = r#"
always:
  script: echo "greeting is $GREETING"
release-only:
  script: echo release
  rules:
    - if: $CI_COMMIT_BRANCH == "release"
on-request:
  script: echo "deploying to $TARGET"
  rules:
    - if: $TARGET
not-locally:
  script: echo "exec is $FORERUNNER_EXEC"
  rules:
    - if: $FORERUNNER_EXEC == "true"
      when: never
    - when: on_success
"#;
    let s = Sample::new(&[(".gitlab-ci.yml", yaml)]);
    let run = s.exec(&["--color", "never"]).await;
    run.exits(0)
        .says("greeting is \n")
        .has_no_row("release-only")
        .has_no_row("on-request")
        .has_no_row("not-locally");
    assert_eq!(run.row("always")[2], "passed");
    // FORERUNNER_EXEC tells rules they run locally, unless overridden.
    let run = s
        .exec(&["--color", "never", "--variable", "FORERUNNER_EXEC=false"])
        .await;
    run.exits(0).says("exec is false");

    let run = s
        .exec(&[
            "--color",
            "never",
            "--variable",
            "GREETING=hello there",
            "--variable",
            "TARGET=staging",
        ])
        .await;
    run.exits(0)
        .says("greeting is hello there")
        .says("deploying to staging")
        .has_no_row("release-only");
    assert_eq!(run.row("on-request")[2], "passed");

    // Naming a job its rules leave out says so.
    s.exec(&["release-only"])
        .await
        .exits(2)
        .says("job `release-only` (defined at .gitlab-ci.yml:")
        .says("is not in this pipeline");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_job_runs_when_named_with_what_it_needs() {
    let yaml = r#"
stages: [build, test, deploy]
build:
  stage: build
  script: echo "build ran" > built.txt
  artifacts:
    paths: [built.txt]
test:
  stage: test
  script: echo "test ran"
deploy:
  stage: deploy
  needs: [build]
  when: manual
  script:
    - cat built.txt
    - echo "deployed"
"#;
    let s = Sample::new(&[(".gitlab-ci.yml", yaml)]);
    let run = s.exec(&["deploy", "--color", "never"]).await;
    run.exits(0)
        .says("Playing manual job deploy")
        .says("build ran")
        .says("deployed")
        .never_says("test ran")
        .has_no_row("test");
    assert_eq!(run.row("deploy")[2], "passed");
    assert_eq!(run.row("build")[2], "passed");

    // `--stage` adds every job of a stage, with what they wait for.
    let run = s.exec(&["--stage", "test", "--color", "never"]).await;
    run.exits(0).says("test ran").has_no_row("deploy");
    assert_eq!(run.row("build")[2], "passed");

    // Unknown names get the closest one.
    s.exec(&["deplyo"])
        .await
        .exits(2)
        .says("there is no job `deplyo` in .gitlab-ci.yml (did you mean `deploy`?)");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_prints_the_plan_and_runs_nothing() {
    let marker = tempfile::tempdir().unwrap();
    let touched = marker.path().join("ran");
    let yaml = format!(
        "stages: [build, deploy]\nbuild:\n  stage: build\n  script: touch {}\nunit:\n  stage: build\n  needs: []\n  parallel: 2\n  script: 'true'\ndeploy:\n  stage: deploy\n  when: manual\n  script: 'true'\n",
        touched.display()
    );
    let s = Sample::new(&[(".gitlab-ci.yml", &yaml)]);
    let run = s.exec(&["--list", "--color", "never"]).await;
    run.exits(0)
        .says(&format!(
            "Planned pipeline for branch main at {} (4 jobs in 2 stages)",
            s.short_sha()
        ))
        .says("  STAGE   JOB       WHEN              NEEDS\n")
        .says("  build   build     on_success        -\n")
        .says("  build   unit 1/2  on_success        -\n")
        .says("  deploy  deploy    manual (not run)  (earlier stages)\n")
        .never_says("Started");
    assert!(!touched.exists(), "--list ran a job");
    // Selection applies to the list too.
    s.exec(&["--list", "deploy", "--color", "never"])
        .await
        .exits(0)
        .says("manual (played)");
    // Every field with --verbose.
    s.exec(&["--list", "-v", "--color", "never"])
        .await
        .exits(0)
        .says("job \"unit 2/2\" (stage build #1)")
        .says("  parallel: 2/2");
}

/// What must not change in the user's repository.
fn repository_state(s: &Sample) -> (String, String, String, Vec<u8>, String) {
    (
        s.git(&["status", "--porcelain"]),
        s.git(&["for-each-ref"]),
        s.git(&["rev-parse", "HEAD"]),
        std::fs::read(s.repo.path().join(".git/index")).unwrap(),
        s.git(&["count-objects", "-v"]),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_working_tree_runs_with_uncommitted_changes_and_stays_untouched() {
    let yaml = "show:\n  script:\n    - cat message.txt\n    - cat new.txt || echo 'no new.txt'\n";
    let s = Sample::new(&[(".gitlab-ci.yml", yaml), ("message.txt", "committed\n")]);
    s.write(&[
        ("message.txt", "edited, not committed\n"),
        ("new.txt", "untracked\n"),
    ]);
    s.write(&[
        (".gitignore", "ignored.txt\n"),
        ("ignored.txt", "ignored\n"),
    ]);
    let before = repository_state(&s);

    let run = s.exec(&["--color", "never"]).await;
    run.exits(0)
        .says("\ncommitted\n")
        .says("no new.txt")
        .says("3 uncommitted changes are not included; pass --working-tree to run them");

    let run = s.exec(&["--working-tree", "--color", "never"]).await;
    run.exits(0)
        .says("edited, not committed")
        .says("untracked")
        .says("uncommitted changes included");
    assert_eq!(repository_state(&s), before, "the repository changed");

    // A clean work tree just runs HEAD.
    s.commit(&[]);
    let run = s.exec(&["--working-tree", "--color", "never"]).await;
    run.exits(0)
        .says("the working tree has no uncommitted change: running HEAD")
        .says("edited, not committed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ref_runs_another_branch_or_tag() {
    let s = Sample::new(&[(
        ".gitlab-ci.yml",
        "job:\n  script: echo \"on $CI_COMMIT_REF_NAME tag=$CI_COMMIT_TAG\"\n",
    )]);
    s.git(&["tag", "v1.0"]);
    s.git(&["checkout", "--quiet", "-b", "feature"]);
    s.commit(&[(".gitlab-ci.yml", "job:\n  script: echo feature\n")]);
    s.exec(&["--ref", "v1.0", "--color", "never"])
        .await
        .exits(0)
        .says("for tag v1.0 at")
        .says("on v1.0 tag=v1.0");
    s.exec(&["--color", "never"])
        .await
        .exits(0)
        .says("for branch feature at")
        .says("\nfeature\n");
    s.exec(&["--ref", "nope"])
        .await
        .exits(2)
        .says("there is no branch, tag or commit `nope` in this repository");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_detached_head_or_a_sha_runs_as_a_commit_pipeline() {
    let s = Sample::new(&[(
        ".gitlab-ci.yml",
        "job:\n  script: echo \"at $CI_COMMIT_SHA\"\n",
    )]);
    let sha = s.git(&["rev-parse", "HEAD"]);
    s.git(&["checkout", "--quiet", "--detach", "HEAD"]);
    s.exec(&["--color", "never"])
        .await
        .exits(0)
        .says(&format!("for commit {}", &sha[..8]))
        .says(&format!("at {sha}"));
    s.git(&["checkout", "--quiet", "main"]);
    s.exec(&["--ref", &sha[..10], "--color", "never"])
        .await
        .exits(0)
        .says(&format!("at {sha}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn colour_on_request_and_section_headers_never_raw() {
    let s = Sample::new(&[(
        ".gitlab-ci.yml",
        "job:\n  script:\n    - printf '\\033[31mred\\033[0m\\n'\n",
    )]);
    let run = s.exec(&["--color", "always"]).await;
    run.exits(0)
        .says("\x1b[31mred")
        .says("\x1b[1;32m      Passed\x1b[0m job")
        .says("\x1b[1;36m▸ Executing \"step_script\" stage of the job script\x1b[0m");
    // Not a terminal: plain text, colours from the job removed.
    let run = s.exec(&[]).await;
    run.exits(0).says("\nred\n").never_says("\x1b[");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_gitlab_ci_yml_or_no_repository_is_explained() {
    let s = Sample::new(&[("README.md", "hello\n")]);
    s.exec(&[])
        .await
        .exits(2)
        .says("error: there is no .gitlab-ci.yml at the top of")
        .says("help: forerunner exec runs the pipeline a repository defines in .gitlab-ci.yml");
    s.write(&[(".gitlab-ci.yml", "job:\n  script: echo hi\n")]);
    s.exec(&[])
        .await
        .exits(2)
        .says(".gitlab-ci.yml is in the working tree but not in branch main")
        .says("pass --working-tree");

    let not_a_repo = tempfile::tempdir().unwrap();
    s.exec(&["-C", not_a_repo.path().to_str().unwrap()])
        .await
        .exits(2)
        .says("is not in a git repository");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_gitlab_ci_yml_is_shown_where_it_is_broken() {
    let yaml = "stages: [build]\nbuild:\n  script: 12\n  stage: nope\n";
    let s = Sample::new(&[(".gitlab-ci.yml", yaml)]);
    let run = s.exec(&["--color", "never"]).await;
    run.exits(2)
        .says("error: jobs.build.script: `script` must be a string or a list of strings")
        .says(" --> .gitlab-ci.yml:3:")
        .says("3 |   script: 12\n")
        .says(" --> .gitlab-ci.yml:4:")
        .says("error: .gitlab-ci.yml has 2 errors; nothing was run")
        .never_says("Running pipeline");

    s.commit(&[(".gitlab-ci.yml", "build:\n  script: [unclosed\n")]);
    s.exec(&["--color", "never"])
        .await
        .exits(2)
        .says("error: invalid YAML")
        .says(".gitlab-ci.yml:");
}

/// Pids of processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(pid);
            }
        }
    }
    found
}

/// A running exec whose stdout is read as it comes.
struct Live {
    child: tokio::process::Child,
    reader: BufReader<tokio::process::ChildStdout>,
    seen: String,
    errors: tokio::task::JoinHandle<String>,
}

impl Live {
    fn start(s: &Sample) -> Live {
        Live::start_with(s, &["--color", "never"])
    }

    fn start_with(s: &Sample, args: &[&str]) -> Live {
        let mut child = s.command(args).spawn().expect("forerunner starts");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let errors = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        Live {
            child,
            reader: BufReader::new(stdout),
            seen: String::new(),
            errors,
        }
    }

    /// Reads until `needle` was printed.
    async fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.seen.contains(needle) {
            let mut line = String::new();
            let n = tokio::time::timeout_at(deadline.into(), self.reader.read_line(&mut line))
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} in time:\n{}", self.seen))
                .unwrap();
            assert!(n > 0, "exec ended before {needle:?}:\n{}", self.seen);
            self.seen.push_str(&line);
        }
    }

    fn interrupt(&self) {
        let pid = self.child.id().expect("exec runs");
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (up to `within`) for exec to end; its exit code and output.
    async fn finish(mut self, within: Duration) -> (Option<i32>, String) {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("exec did not stop in time:\n{}", self.seen))
            .unwrap();
        let mut rest = String::new();
        let _ = self.reader.read_to_string(&mut rest).await;
        let errors = self.errors.await.unwrap_or_default();
        (
            status.code(),
            format!("{}{rest}--- stderr\n{errors}", self.seen),
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_cancels_gracefully_and_after_script_runs() {
    let marker = format!("{}.25", 4000 + std::process::id() % 1000);
    let yaml = format!(
        "slow:\n  script:\n    - echo started-slow\n    - sleep {marker}\n  after_script:\n    - echo \"after_script saw $CI_JOB_STATUS\"\n"
    );
    let s = Sample::new(&[(".gitlab-ci.yml", &yaml)]);
    let mut live = Live::start(&s);
    live.wait_for("started-slow").await;
    let sleeping = format!("sleep {marker}");
    assert!(!processes_with(&sleeping).is_empty(), "the job runs");
    let pressed = Instant::now();
    live.interrupt();
    let (code, out) = live.finish(Duration::from_secs(30)).await;
    let took = pressed.elapsed();
    assert_eq!(code, Some(130), "{out}");
    assert!(
        took < Duration::from_secs(15),
        "the cancel took {took:?}\n{out}"
    );
    for needle in [
        "Canceling the pipeline",
        "after_script saw canceled",
        "Canceled slow",
        "Canceled pipeline canceled in",
    ] {
        assert!(out.contains(needle), "no {needle:?} in\n{out}");
    }
    assert!(!out.contains("panicked"), "{out}");
    assert!(
        processes_with(&sleeping).is_empty(),
        "the job's process is still running"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_ctrl_c_aborts_and_leaves_nothing_running() {
    let marker = format!("{}.5", 5000 + std::process::id() % 1000);
    let yaml = format!(
        "slow:\n  script:\n    - echo started-slow\n    - sleep {marker}\n  after_script:\n    - echo after-script-started\n    - sleep {marker}\n"
    );
    let s = Sample::new(&[(".gitlab-ci.yml", &yaml)]);
    let mut live = Live::start(&s);
    live.wait_for("started-slow").await;
    live.interrupt();
    // The cancel is graceful: the after_script starts, and would sleep.
    live.wait_for("after-script-started").await;
    assert!(!processes_with(&format!("sleep {marker}")).is_empty());
    live.interrupt();
    let (code, out) = live.finish(Duration::from_secs(30)).await;
    assert_eq!(code, Some(130), "{out}");
    assert!(out.contains("Aborting"), "{out}");
    assert!(out.contains("Canceled pipeline canceled in"), "{out}");
    assert!(
        processes_with(&format!("sleep {marker}")).is_empty(),
        "a job process is still running"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_with_2() {
    let s = Sample::new(&[(".gitlab-ci.yml", "job:\n  script: 'true'\n")]);
    s.exec(&["--variable", "1BAD=x"])
        .await
        .exits(2)
        .says("--variable");
    s.exec(&["--ref", "main", "--working-tree"])
        .await
        .exits(2)
        .says("cannot be used with");
    s.exec(&["--concurrency", "0"]).await.exits(2);
    let kept = s.home.path().join("kept");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(kept.join("something"), "x").unwrap();
    s.exec(&["--keep-data", kept.to_str().unwrap()])
        .await
        .exits(2)
        .says("is not empty");
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_data_keeps_the_coordinator_and_the_logs() {
    let s = Sample::new(&[(".gitlab-ci.yml", "job:\n  script: echo kept\n")]);
    let kept = s.home.path().join("data");
    s.exec(&["--keep-data", kept.to_str().unwrap(), "--color", "never"])
        .await
        .exits(0)
        .says("kept the coordinator's data in");
    for file in [
        "coordinator/forerunner.sqlite3",
        "runner.log",
        "exec.log",
        "source.git/HEAD",
    ] {
        assert!(
            kept.join(file).exists(),
            "{file} missing in {}",
            kept.display()
        );
    }
    let trace: PathBuf = kept.join("coordinator/traces/1.log");
    assert!(std::fs::read_to_string(trace).unwrap().contains("kept"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_docker_executor_runs_jobs_in_containers() {
    use forerunner_runner::executors::docker::testimages::{
        ensure_test_images, BUSYBOX_IMAGE, IMAGE_MARKER,
    };
    use forerunner_runner::executors::docker::Engine;
    let engine = match Engine::connect(None).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("skipped: no Docker engine reachable ({e}) [the_docker_executor_runs_jobs_in_containers]");
            return;
        }
    };
    if let Err(e) = ensure_test_images(&engine).await {
        eprintln!("skipped: the test images could not be made ({e}) [the_docker_executor_runs_jobs_in_containers]");
        return;
    }
    let yaml = format!(
        "build:\n  stage: build\n  script:\n    - cat {IMAGE_MARKER}\n    - echo from-a-container > out.txt\n  artifacts:\n    paths: [out.txt]\ncheck:\n  stage: test\n  script: cat out.txt\n"
    );
    let s = Sample::new(&[(".gitlab-ci.yml", &yaml)]);
    let run = s
        .exec(&[
            "--executor",
            "docker",
            "--docker-image",
            BUSYBOX_IMAGE,
            "--color",
            "never",
        ])
        .await;
    run.exits(0)
        .says(BUSYBOX_IMAGE)
        .says("Preparing the \"docker\" executor")
        .says("from-a-container");
    assert_eq!(run.row("check")[2], "passed");
}

/// `forerunner exec ARGS` on a pseudo-terminal (through util-linux
/// `script`); `None` when `script` is not installed.
async fn exec_on_a_terminal(s: &Sample, args: &str, no_color: bool) -> Option<String> {
    let script = std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("script"))
        .find(|p| p.is_file())?;
    let command = format!("{} exec {args}", env!("CARGO_BIN_EXE_forerunner"));
    let mut c = clean_command(script, s.home.path());
    c.args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(s.repo.path())
        .env("XDG_CACHE_HOME", s.home.path().join("cache"))
        .env("TERM", "xterm");
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let out = tokio::time::timeout(Duration::from_secs(120), c.output())
        .await
        .expect("exec finished in time")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_gets_a_progress_line_and_colour_unless_no_color() {
    let s = Sample::new(&[(
        ".gitlab-ci.yml",
        "job:\n  script:\n    - echo working\n    - sleep 1\n",
    )]);
    let Some(out) = exec_on_a_terminal(&s, "", false).await else {
        eprintln!("skipped: `script` (util-linux) is needed for a pseudo-terminal");
        return;
    };
    // The progress line is drawn and erased in place…
    assert!(out.contains("\r\x1b[2K"), "{out:?}");
    assert!(out.contains("running job"), "{out:?}");
    // … and colours are on.
    assert!(out.contains("\x1b[1;32m      Passed\x1b[0m job"), "{out:?}");
    let out = exec_on_a_terminal(&s, "", true).await.unwrap();
    assert!(
        out.contains("running job"),
        "still a progress line: {out:?}"
    );
    assert!(!out.contains("\x1b[1;32m"), "NO_COLOR: {out:?}");
    assert!(out.contains("      Passed job in"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_with_the_docker_executor_leaves_no_container() {
    use forerunner_runner::executors::docker::testimages::{ensure_test_images, BUSYBOX_IMAGE};
    use forerunner_runner::executors::docker::Engine;
    const TEST: &str = "ctrl_c_with_the_docker_executor_leaves_no_container";
    let engine = match Engine::connect(None).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("skipped: no Docker engine reachable ({e}) [{TEST}]");
            return;
        }
    };
    if let Err(e) = ensure_test_images(&engine).await {
        eprintln!("skipped: the test images could not be made ({e}) [{TEST}]");
        return;
    }
    let Some(docker) = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("docker"))
        .find(|p| p.is_file())
    else {
        eprintln!("skipped: the docker CLI is needed to list containers [{TEST}]");
        return;
    };
    let yaml = "slow:\n  script:\n    - echo \"token=$CI_RUNNER_SHORT_TOKEN.\"\n    - echo started-slow\n    - sleep 300\n  after_script:\n    - echo after-script-in-docker\n";
    let s = Sample::new(&[(".gitlab-ci.yml", yaml)]);
    let mut live = Live::start_with(
        &s,
        &[
            "--executor",
            "docker",
            "--docker-image",
            BUSYBOX_IMAGE,
            "--color",
            "never",
        ],
    );
    live.wait_for("started-slow").await;
    let token = live
        .seen
        .lines()
        .find_map(|l| l.strip_prefix("token="))
        .and_then(|t| t.strip_suffix('.'))
        .map(str::to_owned)
        .expect("the job printed its runner's short token");
    let containers = || {
        let out = std::process::Command::new(&docker)
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=com.forerunner.runner.token={token}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert!(!containers().is_empty(), "the job runs in a container");
    live.interrupt();
    let (code, out) = live.finish(Duration::from_secs(90)).await;
    assert_eq!(code, Some(130), "{out}");
    assert!(out.contains("after-script-in-docker"), "{out}");
    assert_eq!(containers(), "", "containers left behind\n{out}");
}
