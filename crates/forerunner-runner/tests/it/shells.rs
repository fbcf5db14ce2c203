//! Golden tests of the bash script generator: `tests/data/shells/NAME.json`
//! describes the stage, `NAME.sh` is the expected script. Re-bless with
//! `UPDATE_EXPECT=1`. Other tests here run the generated scripts with bash.

use std::path::Path;
use std::process::Command;

use forerunner_runner::shells::bash::{
    self, GitSources, GitStrategy, ScriptEnv, ScriptVar, SubmoduleStrategy,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    stage: String,
    #[serde(default)]
    variables: Vec<Var>,
    #[serde(default = "default_dir")]
    project_dir: String,
    #[serde(default)]
    debug_trace: bool,
    #[serde(default)]
    lines: Vec<String>,
    #[serde(default)]
    git: Option<Git>,
}

#[derive(Deserialize)]
struct Var {
    key: String,
    value: String,
    #[serde(default)]
    file: bool,
}

#[derive(Deserialize)]
struct Git {
    strategy: String,
    #[serde(default)]
    depth: i64,
    #[serde(default = "yes")]
    checkout: bool,
    #[serde(default = "default_clean")]
    clean_flags: String,
    #[serde(default)]
    submodules: String,
    #[serde(default)]
    refspecs: Vec<String>,
}

fn default_dir() -> String {
    "/builds/t3_abcdef/0/group/project".into()
}
fn yes() -> bool {
    true
}
fn default_clean() -> String {
    "-ffdx".into()
}

fn render(case: &Case) -> String {
    let vars: Vec<ScriptVar> = case
        .variables
        .iter()
        .map(|v| ScriptVar {
            key: v.key.clone(),
            value: v.value.clone(),
            file: v.file,
        })
        .collect();
    let tmp = format!("{}.tmp", case.project_dir);
    let env = ScriptEnv {
        variables: &vars,
        project_dir: &case.project_dir,
        tmp_dir: &tmp,
        debug_trace: case.debug_trace,
    };
    match case.stage.as_str() {
        "step_script" | "after_script" => bash::user_script(&env, &case.lines),
        "get_sources" => {
            let g = case.git.as_ref().expect("get_sources case needs `git`");
            bash::get_sources(
                &env,
                &GitSources {
                    strategy: GitStrategy::parse(&g.strategy, true).expect("strategy"),
                    repo_url: "http://127.0.0.1:8080/group/project.git",
                    refspecs: &g.refspecs,
                    sha: "0123456789abcdef0123456789abcdef01234567",
                    ref_name: "main",
                    depth: g.depth,
                    checkout: g.checkout,
                    clean_flags: &g.clean_flags,
                    submodules: SubmoduleStrategy::parse(&g.submodules).expect("submodules"),
                    token_var: "CI_JOB_TOKEN",
                },
            )
        }
        other => panic!("unknown stage {other}"),
    }
}

#[test]
fn golden_scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/shells");
    let bless = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for input in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        cases += 1;
        let case: Case = serde_json::from_str(&std::fs::read_to_string(input).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let got = render(&case);
        let expected_path = input.with_extension("sh");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!(
                "{}: output differs (UPDATE_EXPECT=1 to bless)\n--- expected\n{expected}\n--- got\n{got}",
                input.display()
            ));
        }
    }
    assert!(cases >= 5, "expected golden cases in {}", dir.display());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs a user script with bash, returning (exit code, stdout).
fn run_script(vars: &[ScriptVar], lines: &[&str]) -> (i32, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let project = project.to_str().unwrap().to_owned();
    let tmp = format!("{project}.tmp");
    let env = ScriptEnv {
        variables: vars,
        project_dir: &project,
        tmp_dir: &tmp,
        debug_trace: false,
    };
    let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    let script = bash::user_script(&env, &lines);
    let mut child = Command::new("bash")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        dir,
    )
}

#[test]
fn script_stops_at_first_failure_with_its_exit_code() {
    let (code, out, _d) = run_script(&[], &["echo one", "exit 7", "echo never"]);
    assert_eq!(code, 7);
    assert!(out.contains("$ echo one") && out.contains("one\n"));
    assert!(!out.contains("never\n"), "{out}");
}

#[test]
fn pipefail_fails_a_pipeline() {
    let (code, _, _d) = run_script(&[], &["false | cat", "echo after"]);
    assert_eq!(code, 1);
}

#[test]
fn variables_and_file_variables_reach_the_script() {
    let vars = vec![
        ScriptVar {
            key: "GREETING".into(),
            value: "it's $NOT_EXPANDED \"quoted\"".into(),
            file: false,
        },
        ScriptVar {
            key: "KEYFILE".into(),
            value: "line1\nline2\n".into(),
            file: true,
        },
        ScriptVar {
            key: "bad-name".into(),
            value: "skipped".into(),
            file: false,
        },
    ];
    let (code, out, _d) = run_script(
        &vars,
        &[
            "echo \"[$GREETING]\"",
            "cat \"$KEYFILE\"",
            "pwd",
            "test \"$(cat $KEYFILE)\" = \"$(printf 'line1\\nline2')\"",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("[it's $NOT_EXPANDED \"quoted\"]"), "{out}");
    assert!(out.contains("line1\nline2\n"), "{out}");
    assert!(out.contains("/project\n"), "{out}");
}

#[test]
fn multi_line_commands_run_whole_and_show_first_line() {
    let (code, out, _d) = run_script(&[], &["for i in 1 2; do\n  echo \"n$i\"\ndone"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("$ for i in 1 2; do # collapsed multi-line command"),
        "{out}"
    );
    assert!(out.contains("n1\nn2\n"), "{out}");
}

#[test]
fn script_does_not_read_the_runner_stdin() {
    let (code, out, _d) = run_script(&[], &["read -r line || echo no-stdin"]);
    assert_eq!(code, 0);
    assert!(out.contains("no-stdin"), "{out}");
}
