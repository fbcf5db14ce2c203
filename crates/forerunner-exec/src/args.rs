//! The command line of `forerunner exec`, in two steps: [`ExecArgs`] is what
//! clap parses, [`Options`] what the command runs with (validated, the
//! environment and the terminal taken into account). Resolving is pure, so
//! it is unit-tested.

use std::path::PathBuf;

use clap::ValueEnum;
use forerunner_pipeline::Selection;

/// Exit statuses, for `--help`.
const EXIT_STATUS_HELP: &str = "\
Exit status:
  0    the pipeline passed (allowed failures included)
  1    the pipeline failed, was canceled, or is blocked by a manual job
  2    nothing ran: bad arguments, not a git repository, no or invalid
       .gitlab-ci.yml, no job for this ref, no Docker engine
  130  interrupted (Ctrl-C)

Examples:
  forerunner exec                       run the pipeline of HEAD
  forerunner exec --working-tree test   run `test` (and what it needs) on uncommitted changes
  forerunner exec --list --ref v1.2.0   show the jobs a tag pipeline would have
  forerunner exec deploy --variable ENV=staging   run the manual job `deploy`";

/// Run this repository's .gitlab-ci.yml here, through an embedded coordinator and runner.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct ExecArgs {
    /// Jobs to run, with every job they need; the whole pipeline when none
    /// is given. A parallel job's name selects all its instances. A manual
    /// job runs only when it is named here.
    #[arg(value_name = "JOB")]
    pub jobs: Vec<String>,

    /// Also run every job of this stage (repeatable).
    #[arg(long, value_name = "STAGE")]
    pub stage: Vec<String>,

    /// Print the planned jobs (stage, name, when, needs) and exit without
    /// running anything; with --verbose, every field of every job.
    #[arg(long)]
    pub list: bool,

    /// Run this branch, tag or commit instead of HEAD.
    #[arg(long = "ref", value_name = "REF", conflicts_with = "working_tree")]
    pub ref_name: Option<String>,

    /// Run the working tree as it is: uncommitted and untracked (not
    /// ignored) changes included. The repository's index, refs and files are
    /// left untouched.
    #[arg(long)]
    pub working_tree: bool,

    /// A pipeline variable, KEY=VALUE (repeatable); KEY alone takes the
    /// value from the environment.
    #[arg(long = "variable", value_name = "KEY=VALUE")]
    pub variables: Vec<String>,

    /// Where jobs run.
    #[arg(long, value_enum, default_value_t = ExecutorKind::Shell)]
    pub executor: ExecutorKind,

    /// Image for jobs without `image:` (docker executor).
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_DOCKER_IMAGE)]
    pub docker_image: String,

    /// How many jobs may run at once [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Keep the coordinator's data (database, traces, artifacts, logs) in
    /// DIR instead of a temporary directory removed at the end.
    #[arg(long, value_name = "DIR")]
    pub keep_data: Option<PathBuf>,

    /// Run as if started in DIR.
    #[arg(short = 'C', value_name = "DIR")]
    pub directory: Option<PathBuf>,

    /// Show every line of the job logs (the runner's own steps too).
    #[arg(short, long)]
    pub verbose: bool,

    /// When to use colours (auto: when stdout is a terminal and NO_COLOR is
    /// not set).
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// The default image of the docker executor.
pub const DEFAULT_DOCKER_IMAGE: &str = "alpine:latest";

/// `--executor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// Jobs run as processes on this machine.
    Shell,
    /// Jobs run in containers of the local Docker engine.
    Docker,
}

impl ExecutorKind {
    /// The runner's name of the executor.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Shell => "shell",
            ExecutorKind::Docker => "docker",
        }
    }
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colours on a terminal, unless `NO_COLOR` is set or `TERM=dumb`.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Which commit runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// HEAD (its branch, or the commit when detached).
    Head,
    /// A branch, tag or commit of the repository.
    Ref(String),
    /// HEAD plus the uncommitted changes.
    WorkingTree,
}

/// What `exec` runs with.
#[derive(Debug, Clone)]
pub struct Options {
    /// Named jobs and stages (empty: all).
    pub selection: Selection,
    /// `--list`.
    pub list: bool,
    /// Which commit.
    pub source: Source,
    /// Pipeline variables in order (a later one with the same key wins).
    pub variables: Vec<(String, String)>,
    /// The executor.
    pub executor: ExecutorKind,
    /// Default image of the docker executor.
    pub docker_image: String,
    /// Jobs at once (at least 1).
    pub concurrency: usize,
    /// `--keep-data`.
    pub keep_data: Option<PathBuf>,
    /// Where to look for the repository.
    pub directory: PathBuf,
    /// `--verbose`.
    pub verbose: bool,
    /// Colour codes on stdout.
    pub color: bool,
    /// Whether stdout is a terminal (progress line).
    pub tty: bool,
}

/// A command line that cannot be run; the text says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What `resolve` needs to know about the process.
pub struct Environment<'a> {
    /// Reads an environment variable.
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// Whether stdout is a terminal.
    pub stdout_tty: bool,
    /// The current directory.
    pub current_dir: PathBuf,
    /// The number of CPUs.
    pub cpus: usize,
}

impl Options {
    /// Validates `args` and decides what the environment leaves open.
    pub fn resolve(args: ExecArgs, env: &Environment<'_>) -> Result<Options, UsageError> {
        let mut variables = Vec::with_capacity(args.variables.len());
        for v in &args.variables {
            variables.push(parse_variable(v, env.var)?);
        }
        for name in args.jobs.iter().chain(&args.stage) {
            if name.trim().is_empty() {
                return Err(UsageError(
                    "a job or stage name is empty; quote names that contain spaces, e.g. \"test 1/2\""
                        .into(),
                ));
            }
        }
        let concurrency = match args.concurrency {
            Some(0) => {
                return Err(UsageError(
                    "--concurrency must be at least 1 (jobs would never start)".into(),
                ))
            }
            Some(n) => n,
            None => env.cpus.max(1),
        };
        let no_color = (env.var)("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = (env.var)("TERM").as_deref() == Some("dumb");
        let color = match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => env.stdout_tty && !no_color && !dumb,
        };
        let source = match (args.ref_name, args.working_tree) {
            (Some(r), _) if r.trim().is_empty() => {
                return Err(UsageError(
                    "--ref is empty; give a branch, tag or commit".into(),
                ))
            }
            (Some(r), _) => Source::Ref(r),
            (None, true) => Source::WorkingTree,
            (None, false) => Source::Head,
        };
        let directory = match args.directory {
            Some(d) if d.is_absolute() => d,
            Some(d) => env.current_dir.join(d),
            None => env.current_dir.clone(),
        };
        Ok(Options {
            selection: Selection {
                jobs: args.jobs,
                stages: args.stage,
            },
            list: args.list,
            source,
            variables,
            executor: args.executor,
            docker_image: args.docker_image,
            concurrency,
            keep_data: args.keep_data.map(|d| {
                if d.is_absolute() {
                    d
                } else {
                    env.current_dir.join(d)
                }
            }),
            directory,
            verbose: args.verbose,
            color,
            tty: env.stdout_tty && (env.var)("TERM").as_deref() != Some("dumb"),
        })
    }
}

/// `KEY=VALUE`, or `KEY` with the value from the environment.
fn parse_variable(
    text: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, String), UsageError> {
    let (key, value) = match text.split_once('=') {
        Some((k, v)) => (k, Some(v.to_owned())),
        None => (text, None),
    };
    let valid = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(UsageError(format!(
            "--variable {text:?}: the name must be letters, digits and `_`, not starting with a digit (KEY=VALUE)"
        )));
    }
    let value = match value {
        Some(v) => v,
        None => var(key).ok_or_else(|| {
            UsageError(format!(
                "--variable {key}: {key} is not set in the environment; give a value with --variable {key}=VALUE"
            ))
        })?,
    };
    Ok((key.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ExecArgs,
    }

    fn resolve_with(
        argv: &[&str],
        vars: &[(&str, &str)],
        tty: bool,
    ) -> Result<Options, UsageError> {
        let cli = Cli::try_parse_from(std::iter::once("exec").chain(argv.iter().copied()))
            .map_err(|e| UsageError(e.to_string()))?;
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Options::resolve(
            cli.args,
            &Environment {
                var: &lookup,
                stdout_tty: tty,
                current_dir: PathBuf::from("/work/repo"),
                cpus: 4,
            },
        )
    }

    fn resolve(argv: &[&str]) -> Result<Options, UsageError> {
        resolve_with(argv, &[], false)
    }

    #[test]
    fn job_names_and_stages_become_the_selection() {
        let o = resolve(&["build", "test 1/2", "--stage", "lint", "--stage", "deploy"]).unwrap();
        assert_eq!(o.selection.jobs, ["build", "test 1/2"]);
        assert_eq!(o.selection.stages, ["lint", "deploy"]);
        let all = resolve(&[]).unwrap();
        assert!(all.selection.is_empty(), "no names: the whole pipeline");
    }

    #[test]
    fn empty_names_are_refused() {
        assert!(resolve(&[""]).unwrap_err().0.contains("empty"));
        assert!(resolve(&["--stage", " "]).is_err());
    }

    #[test]
    fn variables_are_parsed_in_order() {
        let o = resolve_with(
            &[
                "--variable",
                "A=1",
                "--variable",
                "B=x=y",
                "--variable",
                "HOME_DIR",
                "--variable",
                "E=",
            ],
            &[("HOME_DIR", "/home/me")],
            false,
        )
        .unwrap();
        assert_eq!(
            o.variables,
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "x=y".to_owned()),
                ("HOME_DIR".to_owned(), "/home/me".to_owned()),
                ("E".to_owned(), String::new()),
            ]
        );
        assert!(resolve(&["--variable", "1A=x"])
            .unwrap_err()
            .0
            .contains("name"));
        assert!(resolve(&["--variable", "=x"]).is_err());
        let missing = resolve(&["--variable", "NOT_SET"]).unwrap_err().0;
        assert!(missing.contains("not set in the environment"), "{missing}");
    }

    #[test]
    fn the_source_is_head_a_ref_or_the_working_tree() {
        assert_eq!(resolve(&[]).unwrap().source, Source::Head);
        assert_eq!(
            resolve(&["--ref", "v1.0"]).unwrap().source,
            Source::Ref("v1.0".into())
        );
        assert_eq!(
            resolve(&["--working-tree"]).unwrap().source,
            Source::WorkingTree
        );
        assert!(resolve(&["--ref", "main", "--working-tree"]).is_err());
        assert!(resolve(&["--ref", ""]).is_err());
    }

    #[test]
    fn colour_follows_the_terminal_and_no_color() {
        assert!(!resolve_with(&[], &[], false).unwrap().color);
        assert!(resolve_with(&[], &[], true).unwrap().color);
        assert!(!resolve_with(&[], &[("NO_COLOR", "1")], true).unwrap().color);
        assert!(
            resolve_with(&[], &[("NO_COLOR", "")], true).unwrap().color,
            "an empty NO_COLOR does not count"
        );
        assert!(!resolve_with(&[], &[("TERM", "dumb")], true).unwrap().color);
        assert!(
            resolve_with(&["--color", "always"], &[("NO_COLOR", "1")], false)
                .unwrap()
                .color
        );
        assert!(
            !resolve_with(&["--color", "never"], &[], true)
                .unwrap()
                .color
        );
    }

    #[test]
    fn concurrency_defaults_to_the_cpus() {
        assert_eq!(resolve(&[]).unwrap().concurrency, 4);
        assert_eq!(resolve(&["--concurrency", "1"]).unwrap().concurrency, 1);
        assert!(resolve(&["--concurrency", "0"]).is_err());
    }

    #[test]
    fn relative_directories_are_made_absolute() {
        let o = resolve(&["-C", "sub", "--keep-data", "data"]).unwrap();
        assert_eq!(o.directory, PathBuf::from("/work/repo/sub"));
        assert_eq!(o.keep_data, Some(PathBuf::from("/work/repo/data")));
    }

    #[test]
    fn executors() {
        assert_eq!(resolve(&[]).unwrap().executor, ExecutorKind::Shell);
        let o = resolve(&["--executor", "docker", "--docker-image", "busybox"]).unwrap();
        assert_eq!(
            (o.executor, o.docker_image.as_str()),
            (ExecutorKind::Docker, "busybox")
        );
        assert!(resolve(&["--executor", "kubernetes"]).is_err());
    }
}
