//! The runner against the real coordinator: pickup latency, a no-op job end
//! to end, and the runner's idle memory.
//!
//! Not a test: it prints figures (the targets of issue #6: pickup ≤ 25 ms
//! p50, no-op job ≤ 150 ms p50, idle RSS ≤ 8 MB). Nothing is faked:
//!
//! - the coordinator runs in process (testkit, fresh data dir,
//!   `127.0.0.1:0`) with a project whose `import_url` is a local git
//!   repository holding `noop: {script: [true]}`;
//! - a runner is created with `POST /user/runners` (`glrt-`) and registered
//!   with `forerunner register` (shell executor);
//! - the optimized `forerunner run` binary runs as a child process.
//!
//! One warm-up pipeline clones the repository into the builds directory;
//! every measured job then does what a job does by default
//! (`GIT_STRATEGY=fetch`): a `git fetch` of the builds directory over the
//! coordinator's smart HTTP, a checkout and a clean, then `true`. Between
//! rounds the runner is given time to settle back into a held long poll.
//!
//! Figures per round, from the coordinator's own records (millisecond
//! resolution) unless said otherwise:
//!
//! - **pickup**: the job was created (`created_at`, stored while the
//!   pipeline is created; it becomes pending in the same request) → the
//!   coordinator handed it to the runner's held `POST /jobs/request`
//!   (`started_at`, the claim). The runner reads the response right after
//!   the claim; its `PUT state=running` follows within the job's first
//!   milliseconds and is counted in the no-op figure.
//! - **no-op job end to end**: the job was created (`created_at`) → the
//!   coordinator accepted the runner's final `PUT state=success`
//!   (`finished_at`). Pickup, the whole job (fetch, checkout, clean,
//!   script) and the final trace/update exchange.
//! - **with pipeline creation**: `POST /projects/:id/pipeline` sent (the
//!   bench's clock, same machine) → `finished_at`: the above plus the
//!   mirror sync from `import_url` and the planning. The creation request's
//!   own duration is printed too.
//! - **idle RSS**: `VmRSS` of the runner process from `/proc/<pid>/status`,
//!   once before the first job (after it has been parked in a long poll for
//!   a while) and once 12 s after the last round (steady state: tokio's
//!   idle blocking threads live 10 s). Printed as the total, the anonymous
//!   part (heap, stacks: the process's own memory) and the file-backed part
//!   (touched pages of the executable and the C libraries, clean and shared
//!   with other processes mapping the same files); MB are MiB (1024 kB).
//!
//! Run with `cargo bench -p forerunner --bench runner`. `RUNNER_BENCH_ROUNDS`
//! sets the number of measured jobs (60 by default), `RUNNER_BENCH_LOG=1`
//! prints the runner's output (run with `--debug`) at the end.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use forerunner_testkit::{clean_command, GitRepo, TestCoordinator};
use serde_json::{json, Value};

const CI_YAML: &str = "noop:\n  script: [\"true\"]\n";

/// How long the runner is left alone between rounds, so that it sits in a
/// held `POST /jobs/request` when the next pipeline is created.
const SETTLE: Duration = Duration::from_millis(150);

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::var("RUNNER_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(60)
        .clamp(1, 10_000);
    let show_log = std::env::var_os("RUNNER_BENCH_LOG").is_some();

    let c = TestCoordinator::spawn().await;
    let repo = GitRepo::with_files(&[(".gitlab-ci.yml", CI_YAML), ("README.md", "hello\n")]);
    let project = c
        .root_request(
            reqwest::Method::POST,
            "/projects",
            Some(json!({"name": "bench", "import_url": repo.url()})),
        )
        .await?;
    let project_id = project["id"].as_i64().context("project id")?;
    let (_, token) = c.create_instance_runner().await;

    let dir = tempfile::Builder::new()
        .prefix("forerunner-bench-")
        .tempdir()?;
    let config = dir.path().join("config.toml");
    register(&c.url, &token, dir.path(), &config).await?;
    let log_path = dir.path().join("runner.log");
    let mut runner = spawn_runner(dir.path(), &config, &log_path, show_log)?;
    let pid = runner.id().context("the runner has no pid")?;
    // Whatever happens, the runner (and a profiling wrapper) goes away.
    let _group = KillGroupOnDrop(pid);

    // Idle: the runner has made its first request and the coordinator holds
    // it; give it time to settle (allocations after start-up are done).
    wait_for_contact(&c).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_fresh = Rss::of(pid)?;

    // Warm-up: the first job clones into the builds directory.
    let warm = one_round(&c, project_id).await?;
    eprintln!(
        "warm-up job (clone): {:.0} ms end to end",
        ms(warm.end_to_end)
    );

    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        tokio::time::sleep(SETTLE).await;
        match one_round(&c, project_id).await {
            Ok(r) => samples.push(r),
            Err(err) => {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("{err:#}\nrunner output:\n{log}");
            }
        }
    }
    // Settled: the runner is back in a held request and tokio's idle
    // blocking threads (kept 10 s after the last zip or file operation)
    // are gone.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let rss_after = Rss::of(pid)?;
    let threads = proc_status_field(pid, "Threads:").unwrap_or_default();

    // SIGTERM: the runner stops asking for jobs and exits.
    signal_group("TERM", pid);
    let _ = tokio::time::timeout(Duration::from_secs(20), runner.wait()).await;
    if show_log {
        eprintln!(
            "runner output:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    let mut pickup: Vec<f64> = samples.iter().map(|s| ms(s.pickup)).collect();
    let mut noop: Vec<f64> = samples.iter().map(|s| ms(s.end_to_end)).collect();
    let mut with_create: Vec<f64> = samples.iter().map(|s| ms(s.with_creation)).collect();
    let mut create: Vec<f64> = samples.iter().map(|s| ms(s.create)).collect();
    println!("runner benchmark: the real coordinator and `forerunner run` (shell executor)");
    println!("machine: {}", machine());
    println!("rounds: {rounds} no-op jobs after one warm-up clone (GIT_STRATEGY=fetch)");
    println!(
        "pickup latency (job created → claimed by the held request): {}   target p50 ≤ 25 ms",
        summary(&mut pickup)
    );
    println!(
        "no-op job end to end (job created → success): {}   target p50 ≤ 150 ms",
        summary(&mut noop)
    );
    println!(
        "  with pipeline creation (POST sent → success): {}",
        summary(&mut with_create)
    );
    println!(
        "  the creation request alone (mirror sync, planning): {}",
        summary(&mut create)
    );
    println!(
        "runner idle RSS: {} before the first job, {} after {rounds} jobs ({threads} threads)   target ≤ 8 MB",
        rss_fresh, rss_after,
    );
    println!("  {}", symbol_order());
    c.stop().await?;
    Ok(())
}

/// One measured pipeline.
struct Round {
    pickup: Duration,
    end_to_end: Duration,
    with_creation: Duration,
    create: Duration,
}

async fn one_round(c: &TestCoordinator, project_id: i64) -> anyhow::Result<Round> {
    let sent = SystemTime::now();
    let sent_at = Instant::now();
    let pipeline = c
        .root_request(
            reqwest::Method::POST,
            &format!("/projects/{project_id}/pipeline"),
            Some(json!({"ref": "main"})),
        )
        .await?;
    let create = sent_at.elapsed();
    let pipeline_id = pipeline["id"].as_i64().context("pipeline id")?;
    let jobs = c
        .root_request(
            reqwest::Method::GET,
            &format!("/projects/{project_id}/pipelines/{pipeline_id}/jobs"),
            None,
        )
        .await?;
    let job_id = jobs[0]["id"].as_i64().context("job id")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let job = c
            .root_request(
                reqwest::Method::GET,
                &format!("/projects/{project_id}/jobs/{job_id}"),
                None,
            )
            .await?;
        match job["status"].as_str() {
            Some("success") => break job,
            Some("failed" | "canceled") => bail!("the no-op job did not succeed: {job}"),
            _ if Instant::now() > deadline => bail!("the no-op job did not finish in 60 s: {job}"),
            // Coarse polling: the figures come from the coordinator's
            // timestamps, and the bench should not steal the runner's CPU.
            _ => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    };
    let time = |k: &str| -> anyhow::Result<DateTime<Utc>> {
        job[k]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| format!("job {job_id} has no {k}: {job}"))
    };
    let created = time("created_at")?;
    let started = time("started_at")?;
    let finished = time("finished_at")?;
    let sent: DateTime<Utc> = sent.into();
    let span = |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).to_std().unwrap_or_default();
    Ok(Round {
        pickup: span(created, started),
        end_to_end: span(created, finished),
        with_creation: span(sent, finished),
        create,
    })
}

/// `forerunner register` with the `glrt-` token (shell executor, builds and
/// caches under `dir`).
async fn register(url: &str, token: &str, dir: &Path, config: &Path) -> anyhow::Result<()> {
    let out = base_command(dir)
        .args([
            "register",
            "--non-interactive",
            "--url",
            url,
            "--token",
            token,
        ])
        .args(["--executor", "shell", "--name", "bench"])
        .arg("--builds-dir")
        .arg(dir.join("builds"))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .arg("--config")
        .arg(config)
        .output()
        .await
        .context("failed to run forerunner register")?;
    if !out.status.success() {
        bail!(
            "forerunner register failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn spawn_runner(
    dir: &Path,
    config: &Path,
    log: &Path,
    debug: bool,
) -> anyhow::Result<tokio::process::Child> {
    let log = std::fs::File::create(log)?;
    // A profiling wrapper, e.g. `RUNNER_BENCH_WRAP="strace -f -tt -o /tmp/t"`
    // (the RSS is then the wrapper's).
    let wrap = std::env::var("RUNNER_BENCH_WRAP").unwrap_or_default();
    let mut wrap = wrap.split_whitespace();
    let mut cmd = match wrap.next() {
        Some(program) => {
            let mut cmd = clean_command(program, dir);
            cmd.args(wrap).arg(env!("CARGO_BIN_EXE_forerunner"));
            cmd
        }
        None => base_command(dir),
    };
    cmd.arg("run")
        .arg("--config")
        .arg(config)
        .arg("--working-directory")
        .arg(dir)
        .stdout(log.try_clone()?)
        .stderr(log);
    if debug {
        cmd.arg("--debug");
    }
    // Its own process group, so that a wrapper and the runner under it get
    // the same signal.
    cmd.process_group(0);
    cmd.spawn().context("failed to start forerunner run")
}

/// `kill -<signal> -- -<group>`.
fn signal_group(signal: &str, group: u32) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
}

/// Kills the runner's process group when dropped.
struct KillGroupOnDrop(u32);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        signal_group("KILL", self.0);
    }
}

/// The optimized `forerunner` binary with a clean environment.
fn base_command(home: &Path) -> tokio::process::Command {
    clean_command(env!("CARGO_BIN_EXE_forerunner"), home)
}

/// Waits until the runner has asked for a job (its manager shows up).
async fn wait_for_contact(c: &TestCoordinator) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let runners: Value = c
            .root_request(reqwest::Method::GET, "/runners/all", None)
            .await?;
        if runners
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["status"] == "online")
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the runner did not contact the coordinator within 20 s: {runners}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the link's symbol order (build.rs) holds for the measured
/// executable: how many of `link/symbol-order.txt`'s functions it has and
/// how much of its code they are spread over (about their own size when the
/// linker laid them out side by side; most of `.text` when it did not).
fn symbol_order() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/link/symbol-order.txt");
    let order = std::fs::read_to_string(path).unwrap_or_default();
    let wanted: std::collections::HashSet<&str> = order.lines().filter(|l| !l.is_empty()).collect();
    let nm = std::process::Command::new("nm")
        .args(["--defined-only", "--print-size"])
        .arg(env!("CARGO_BIN_EXE_forerunner"))
        .output();
    let Ok(nm) = nm else {
        return "symbol order: not checked (no nm)".to_owned();
    };
    let symbols = String::from_utf8_lossy(&nm.stdout);
    // `address size type name`, code only.
    let (mut found, mut own, mut code) = (0usize, 0u64, 0u64);
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    for line in symbols.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [addr, size, kind, name] = f[..] else {
            continue;
        };
        if !kind.eq_ignore_ascii_case("t") {
            continue;
        }
        let (Ok(addr), Ok(size)) = (u64::from_str_radix(addr, 16), u64::from_str_radix(size, 16))
        else {
            continue;
        };
        code += size;
        if wanted.contains(name) {
            found += 1;
            own += size;
            lo = lo.min(addr);
            hi = hi.max(addr + size);
        }
    }
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    format!(
        "symbol order: {found} of the {} functions of link/symbol-order.txt are in the executable ({:.1} MB), \
         spread over {:.1} MB of its {:.1} MB of code (regenerate with scripts/symbol-order.sh when few match)",
        wanted.len(),
        mb(own),
        mb(hi.saturating_sub(lo.min(hi))),
        mb(code),
    )
}

fn proc_status_field(pid: u32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_owned())
}

/// A process's resident memory from `/proc/<pid>/status`, in KiB.
struct Rss {
    total: u64,
    anon: u64,
    file: u64,
}

impl Rss {
    fn of(pid: u32) -> anyhow::Result<Rss> {
        let kib = |field: &str| -> anyhow::Result<u64> {
            let v = proc_status_field(pid, field)
                .with_context(|| format!("no {field} for the runner process"))?;
            v.trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("unexpected {field} {v:?}"))
        };
        Ok(Rss {
            total: kib("VmRSS:")?,
            anon: kib("RssAnon:")?,
            file: kib("RssFile:")?,
        })
    }
}

impl std::fmt::Display for Rss {
    /// `8.2 MB (anonymous 0.4 MB, file-backed 7.8 MB)`: file-backed pages
    /// are the executable's and the C libraries' code and data the process
    /// has touched (clean, shared with other processes mapping them).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |kib: u64| kib as f64 / 1024.0;
        write!(
            f,
            "{:.1} MB (anonymous {:.1} MB, file-backed {:.1} MB)",
            mb(self.total),
            mb(self.anon),
            mb(self.file)
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `p50 … p95 … max …` of `v` (sorted in place).
fn summary(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i.min(v.len() - 1)]
    };
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        pct(0.50),
        pct(0.95),
        v.last().copied().unwrap_or_default()
    )
}

/// CPU count and model, for the record.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} cores available, {model}")
}
