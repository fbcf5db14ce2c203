//! What `exec` prints about a pipeline as a whole: the `--list` table, the
//! final summary table, the closing line, and durations. Pure: rows in,
//! text out (golden-tested below).

use std::fmt::Write as _;
use std::time::Duration;

use forerunner_pipeline::model::When;
use forerunner_pipeline::{Plan, Selection};

use crate::style::{Style, BOLD, DIM, GREEN, RED, YELLOW};

/// A duration as people read it: `0.4s`, `12.3s`, `1m 05s`, `1h 02m`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        let tenths = (secs * 10.0).round() / 10.0;
        if tenths < 60.0 {
            return format!("{tenths:.1}s");
        }
    }
    let total = d.as_secs() + u64::from(d.subsec_millis() >= 500);
    if total < 3600 {
        format!("{}m {:02}s", total / 60, total % 60)
    } else {
        format!("{}h {:02}m", total / 3600, (total % 3600) / 60)
    }
}

/// Left-aligned cells padded to `widths`, joined by two spaces; colours are
/// applied after padding so they do not upset the alignment.
fn row(cells: &[(String, Option<&str>)], widths: &[usize], style: Style) -> String {
    let mut line = String::from("  ");
    let last = cells.len().saturating_sub(1);
    for (i, ((text, code), width)) in cells.iter().zip(widths).enumerate() {
        let padded = if i == last {
            text.clone()
        } else {
            format!("{text:<width$}")
        };
        match code {
            Some(code) => {
                // Paint the text only, not the padding after it.
                let pad = padded.len() - text.len();
                line.push_str(&style.paint(code, text));
                line.push_str(&" ".repeat(pad));
            }
            None => line.push_str(&padded),
        }
        if i != last {
            line.push_str("  ");
        }
    }
    line.truncate(line.trim_end().len());
    line.push('\n');
    line
}

fn widths(header: &[&str], rows: &[Vec<(String, Option<&str>)>]) -> Vec<usize> {
    header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| r[i].0.chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect()
}

fn table(header: &[&str], rows: &[Vec<(String, Option<&str>)>], style: Style) -> String {
    let widths = widths(header, rows);
    let head: Vec<(String, Option<&str>)> =
        header.iter().map(|h| (h.to_string(), Some(BOLD))).collect();
    let mut out = row(&head, &widths, style);
    for r in rows {
        out.push_str(&row(r, &widths, style));
    }
    out
}

/// The `--list` table: one row per planned job, in pipeline order.
pub fn list(plan: &Plan, selection: &Selection, style: Style) -> String {
    let rows: Vec<Vec<(String, Option<&str>)>> = plan
        .jobs
        .iter()
        .map(|job| {
            let when = match job.when {
                When::Manual if selection.names(job) => "manual (played)".to_owned(),
                When::Manual => "manual (not run)".to_owned(),
                When::Delayed => match &job.start_in {
                    Some(d) => format!("delayed {}", d.text),
                    None => "delayed".to_owned(),
                },
                w => w.as_str().to_owned(),
            };
            let needs = match &job.needs {
                None if plan.jobs.iter().any(|j| j.stage_index < job.stage_index) => {
                    "(earlier stages)".to_owned()
                }
                None => "-".to_owned(),
                Some(n) if n.is_empty() => "-".to_owned(),
                Some(n) => n
                    .iter()
                    .map(|n| n.job.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let when_code = (job.when == When::Manual && !selection.names(job)).then_some(DIM);
            vec![
                (job.stage.clone(), None),
                (job.name.clone(), None),
                (when, when_code),
                (needs, None),
            ]
        })
        .collect();
    table(&["STAGE", "JOB", "WHEN", "NEEDS"], &rows, style)
}

/// How a job ended, as the summary shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Passed.
    Passed,
    /// Failed, and that fails the pipeline.
    Failed,
    /// Failed, but `allow_failure` lets the pipeline pass.
    FailedAllowed,
    /// Canceled (Ctrl-C).
    Canceled,
    /// Not run: what it waited for did not allow it.
    Skipped,
    /// A manual job nobody played.
    Manual,
    /// Never started (the pipeline ended first: blocked or interrupted).
    NotStarted,
    /// Still running when `exec` stopped following it.
    Running,
}

impl Status {
    fn text(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::FailedAllowed => "failed (allowed)",
            Status::Canceled => "canceled",
            Status::Skipped => "skipped",
            Status::Manual => "manual",
            Status::NotStarted => "not started",
            Status::Running => "running",
        }
    }

    fn code(self) -> &'static str {
        match self {
            Status::Passed => GREEN,
            Status::Failed => RED,
            Status::FailedAllowed | Status::Canceled | Status::Running => YELLOW,
            Status::Skipped | Status::Manual | Status::NotStarted => DIM,
        }
    }
}

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// Job name.
    pub name: String,
    /// Stage.
    pub stage: String,
    /// How it ended.
    pub status: Status,
    /// Why it failed, when it failed for something else than its script
    /// (`job_execution_timeout`, `runner_system_failure`, …).
    pub reason: Option<String>,
    /// How long it ran.
    pub duration: Option<Duration>,
    /// Its script's exit code (0 when it passed).
    pub exit_code: Option<i32>,
    /// How many attempts it took (1 without retries).
    pub attempts: u32,
}

/// The final table: job, stage, status, duration, exit code.
pub fn summary(rows: &[JobRow], style: Style) -> String {
    let cells: Vec<Vec<(String, Option<&str>)>> = rows
        .iter()
        .map(|r| {
            let mut status = r.status.text().to_owned();
            if let Some(reason) = &r.reason {
                let _ = write!(status, ": {}", reason.replace('_', " "));
            }
            if r.attempts > 1 {
                let _ = write!(status, " (attempt {})", r.attempts);
            }
            vec![
                (r.name.clone(), None),
                (r.stage.clone(), None),
                (status, Some(r.status.code())),
                (r.duration.map_or_else(|| "-".to_owned(), duration), None),
                (
                    r.exit_code
                        .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                    None,
                ),
            ]
        })
        .collect();
    table(
        &["JOB", "STAGE", "STATUS", "DURATION", "EXIT"],
        &cells,
        style,
    )
}

/// The pipeline's outcome, as the closing line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every job passed (or was allowed to fail).
    Passed,
    /// A job failed.
    Failed,
    /// Canceled by Ctrl-C.
    Canceled,
    /// Waiting for a manual job that was not named.
    Blocked,
}

/// `    Finished pipeline passed in 12.3s: 3 passed, 1 skipped`.
pub fn closing(verdict: Verdict, total: Duration, rows: &[JobRow], style: Style) -> String {
    let (verb, code, what) = match verdict {
        Verdict::Passed => ("Finished", GREEN, "pipeline passed"),
        Verdict::Failed => ("Finished", RED, "pipeline failed"),
        Verdict::Canceled => ("Canceled", YELLOW, "pipeline canceled"),
        Verdict::Blocked => ("Blocked", YELLOW, "pipeline blocked by a manual job"),
    };
    let order = [
        Status::Passed,
        Status::Failed,
        Status::FailedAllowed,
        Status::Canceled,
        Status::Skipped,
        Status::Manual,
        Status::NotStarted,
        Status::Running,
    ];
    let counts: Vec<String> = order
        .iter()
        .filter_map(|s| {
            let n = rows.iter().filter(|r| r.status == *s).count();
            (n > 0).then(|| format!("{n} {}", s.text()))
        })
        .collect();
    let mut line = style.status(code, verb, &format!("{what} in {}", duration(total)));
    if !counts.is_empty() {
        let _ = write!(line, ": {}", counts.join(", "));
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use forerunner_pipeline::{compile, plan, NoFiles, PlanInput, PlanOutcome};

    use super::*;

    const PLAIN: Style = Style { color: false };

    #[test]
    fn durations_read_naturally() {
        let d = |ms: u64| duration(Duration::from_millis(ms));
        assert_eq!(d(0), "0.0s");
        assert_eq!(d(440), "0.4s");
        assert_eq!(d(12_345), "12.3s");
        assert_eq!(d(59_960), "1m 00s");
        assert_eq!(d(65_000), "1m 05s");
        assert_eq!(d(3_599_000), "59m 59s");
        assert_eq!(d(3_720_000), "1h 02m");
    }

    fn rows() -> Vec<JobRow> {
        let row = |name: &str, stage: &str, status, secs: Option<u64>, exit: Option<i32>| JobRow {
            name: name.into(),
            stage: stage.into(),
            status,
            reason: None,
            duration: secs.map(Duration::from_millis),
            exit_code: exit,
            attempts: 1,
        };
        let mut timed_out = row("slow", "test", Status::Failed, Some(3_600_000), None);
        timed_out.reason = Some("job_execution_timeout".into());
        let mut flaky = row("flaky", "test", Status::Passed, Some(2_000), Some(0));
        flaky.attempts = 2;
        vec![
            row("build", "build", Status::Passed, Some(2_340), Some(0)),
            row(
                "unit: [linux, 1.85]",
                "test",
                Status::Failed,
                Some(61_200),
                Some(1),
            ),
            row("lint", "test", Status::FailedAllowed, Some(800), Some(3)),
            timed_out,
            flaky,
            row("deploy", "deploy", Status::Manual, None, None),
            row("notify", "deploy", Status::Skipped, None, None),
        ]
    }

    #[test]
    fn summary_table() {
        let expected = [
            "  JOB                  STAGE   STATUS                         DURATION  EXIT",
            "  build                build   passed                         2.3s      0",
            "  unit: [linux, 1.85]  test    failed                         1m 01s    1",
            "  lint                 test    failed (allowed)               0.8s      3",
            "  slow                 test    failed: job execution timeout  1h 00m    -",
            "  flaky                test    passed (attempt 2)             2.0s      0",
            "  deploy               deploy  manual                         -         -",
            "  notify               deploy  skipped                        -         -",
            "",
        ]
        .join("\n");
        assert_eq!(summary(&rows(), PLAIN), expected);
    }

    #[test]
    fn coloured_cells_keep_their_alignment() {
        let coloured = summary(&rows(), Style { color: true });
        let stripped: String = coloured
            .lines()
            .map(|l| crate::trace::strip_escapes(l) + "\n")
            .collect();
        assert_eq!(stripped, summary(&rows(), PLAIN));
        assert!(coloured.contains("\x1b[1;31mfailed\x1b[0m"), "{coloured}");
    }

    #[test]
    fn closing_lines() {
        let total = Duration::from_millis(73_400);
        assert_eq!(
            closing(Verdict::Failed, total, &rows(), PLAIN),
            "    Finished pipeline failed in 1m 13s: 2 passed, 2 failed, 1 failed (allowed), 1 skipped, 1 manual\n"
        );
        assert_eq!(
            closing(Verdict::Passed, Duration::from_millis(900), &[], PLAIN),
            "    Finished pipeline passed in 0.9s\n"
        );
        assert_eq!(
            closing(Verdict::Canceled, Duration::from_secs(4), &[], PLAIN),
            "    Canceled pipeline canceled in 4.0s\n"
        );
    }

    #[test]
    fn list_table() {
        let yaml = "
stages: [build, test, deploy]
build:
  stage: build
  script: make
unit:
  stage: test
  needs: [build]
  parallel: 2
  script: test
e2e:
  stage: test
  script: e2e
lint:
  stage: test
  needs: []
  script: lint
deploy:
  stage: deploy
  when: manual
  script: deploy
later:
  stage: deploy
  when: delayed
  start_in: 5 minutes
  script: later
";
        let model = compile(".gitlab-ci.yml", yaml, &NoFiles).model.unwrap();
        let PlanOutcome::Created(p) = plan(&model, &PlanInput::branch("main")).outcome else {
            panic!("a pipeline");
        };
        let expected = [
            "  STAGE   JOB       WHEN               NEEDS",
            "  build   build     on_success         -",
            "  test    unit 1/2  on_success         build",
            "  test    unit 2/2  on_success         build",
            "  test    e2e       on_success         (earlier stages)",
            "  test    lint      on_success         -",
            "  deploy  deploy    manual (not run)   (earlier stages)",
            "  deploy  later     delayed 5 minutes  (earlier stages)",
            "",
        ]
        .join("\n");
        assert_eq!(list(&p, &Selection::default(), PLAIN), expected);
        let named = Selection {
            jobs: vec!["deploy".into()],
            stages: vec![],
        };
        let listed = list(&p, &named, PLAIN);
        let deploy = listed.lines().find(|l| l.contains(" deploy ")).unwrap();
        assert!(deploy.contains("manual (played)"), "{listed}");
    }
}
