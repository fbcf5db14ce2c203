//! Bash script generation: one script per job stage, as pure functions of
//! their inputs, so every case is a golden file.
//!
//! The shape follows the official runner's bash shell: a script fed on stdin
//! to `bash` that exports the job's variables, writes file-type variables to
//! files, changes into the project directory and runs the stage body under
//! `errexit` and `pipefail`, echoing each user command as `$ command` in
//! green before running it. Stage scripts do not print section markers: the
//! runner writes those into the trace itself.
//!
//! Nothing here runs a process or touches the file system.
//!
//! Every process a script starts costs a few milliseconds of a job, so the
//! scripts avoid the ones that do nothing in the common case: directories
//! that exist are not made again, lock files that are not there are not
//! removed, bash's own `pipefail` is used without asking `grep`, and the
//! git credentials header is computed here rather than by `base64` and
//! `tr` in a subshell.

use std::fmt::Write as _;

/// A variable as the script sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptVar {
    /// Name; names that are not valid shell identifiers are skipped.
    pub key: String,
    /// Value (the file's content for file-type variables).
    pub value: String,
    /// Written to `<tmp dir>/<key>`, the variable holding the path.
    pub file: bool,
}

/// Where the stage runs and what it sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptEnv<'a> {
    /// All job variables, later entries winning.
    pub variables: &'a [ScriptVar],
    /// `CI_PROJECT_DIR`.
    pub project_dir: &'a str,
    /// Directory for file variables and other temporary files
    /// (`<project dir>.tmp`).
    pub tmp_dir: &'a str,
    /// `CI_DEBUG_TRACE=true`: trace every command (`set -o xtrace`).
    pub debug_trace: bool,
}

/// How to get the sources (`get_sources` stage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSources<'a> {
    /// `clone`, `fetch` or `none` (`GIT_STRATEGY`).
    pub strategy: GitStrategy,
    /// Repository URL without credentials.
    pub repo_url: &'a str,
    /// Refspecs to fetch.
    pub refspecs: &'a [String],
    /// Commit to check out.
    pub sha: &'a str,
    /// Branch or tag name, for the local branch.
    pub ref_name: &'a str,
    /// Shallow depth (0 = full history).
    pub depth: i64,
    /// `GIT_CHECKOUT` (default true).
    pub checkout: bool,
    /// `GIT_CLEAN_FLAGS` (default `-ffdx`; `none` disables cleaning).
    pub clean_flags: &'a str,
    /// `GIT_SUBMODULE_STRATEGY`.
    pub submodules: SubmoduleStrategy,
    /// Name of the variable holding the job token used for HTTP auth. The
    /// header is computed from its value in [`ScriptEnv::variables`] (where
    /// the script exports it anyway); it is passed to git for each command
    /// only, so it is never stored in `.git/config`.
    pub token_var: &'a str,
}

/// `GIT_STRATEGY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitStrategy {
    /// Fresh clone: remove the project directory first.
    Clone,
    /// Reuse the existing checkout and fetch.
    Fetch,
    /// Do not touch the sources.
    None,
}

impl GitStrategy {
    /// Parses `GIT_STRATEGY` (empty → fetch when allowed, else clone).
    pub fn parse(value: &str, allow_fetch: bool) -> Option<Self> {
        match value {
            "" => Some(if allow_fetch {
                Self::Fetch
            } else {
                Self::Clone
            }),
            "clone" => Some(Self::Clone),
            "fetch" => Some(Self::Fetch),
            "none" | "empty" => Some(Self::None),
            _ => None,
        }
    }
}

/// `GIT_SUBMODULE_STRATEGY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmoduleStrategy {
    /// No submodules.
    None,
    /// Top-level submodules.
    Normal,
    /// Submodules of submodules too.
    Recursive,
}

impl SubmoduleStrategy {
    /// Parses `GIT_SUBMODULE_STRATEGY` (empty → none).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "" | "none" => Some(Self::None),
            "normal" => Some(Self::Normal),
            "recursive" => Some(Self::Recursive),
            _ => None,
        }
    }
}

/// Quotes `s` for bash as one word, with ANSI-C quoting (`$'…'`) when it
/// holds control characters and plain single quotes otherwise.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        return s.to_owned();
    }
    if s.chars().any(|c| c.is_control()) {
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The fixed head of every script, then the body run in a subshell that
/// cannot read the runner's stdin.
fn wrap(env: &ScriptEnv<'_>, body: &str) -> String {
    let mut s = String::new();
    s.push_str("#!/usr/bin/env bash\n\n");
    s.push_str("trap 'exit 1' TERM\n\n");
    if env.debug_trace {
        s.push_str("set -o xtrace\n");
    }
    // Bash has pipefail; other shells are asked (`set -o pipefail` is fatal
    // in a POSIX shell that lacks it).
    s.push_str("if [ -n \"${BASH_VERSION-}\" ] || set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit\n");
    s.push_str("set +o noclobber\n");
    let _ = writeln!(s, ": | (trap 'exit 1' TERM; eval {})", quote(body));
    s.push_str("exit 0\n");
    s
}

/// `mkdir -p dir`, skipped (no process) when the directory exists.
fn make_dir(dir: &str, b: &mut String) {
    let dir = quote(dir);
    let _ = writeln!(b, "[ -d {dir} ] || mkdir -p {dir}");
}

/// Exports the variables and writes file variables, as the start of a body.
fn write_variables(env: &ScriptEnv<'_>, b: &mut String) {
    make_dir(env.tmp_dir, b);
    for var in env.variables.iter().filter(|v| is_identifier(&v.key)) {
        if var.file {
            let path = format!("{}/{}", env.tmp_dir, var.key);
            let _ = writeln!(b, "printf '%s' {} > {}", quote(&var.value), quote(&path));
            let _ = writeln!(b, "export {}={}", var.key, quote(&path));
        } else {
            let _ = writeln!(b, "export {}={}", var.key, quote(&var.value));
        }
    }
}

/// Echoes `line` as the job log shows commands: `$ command` in green; a
/// multi-line command shows its first line and a note.
fn echo_command(line: &str, b: &mut String) {
    let shown = match line.trim_end().split_once('\n') {
        Some((first, _)) => format!("{first} # collapsed multi-line command"),
        None => line.trim_end().to_owned(),
    };
    let _ = writeln!(b, "echo {}", quote(&format!("\x1b[32;1m$ {shown}\x1b[0;m")));
}

/// The `step_script` stage: the job's `script` lines (before_script already
/// merged in by the server), each echoed then run; the first failure stops
/// the script with its exit code.
pub fn user_script(env: &ScriptEnv<'_>, lines: &[String]) -> String {
    let mut b = String::new();
    write_variables(env, &mut b);
    let _ = writeln!(b, "cd {}", quote(env.project_dir));
    for line in lines {
        echo_command(line, &mut b);
        b.push_str(line.trim_end());
        b.push('\n');
    }
    wrap(env, &b)
}

/// The `get_sources` stage: clone or fetch the repository into the project
/// directory and check out the job's commit. The job token is read from the
/// variable named by `token_var` and passed as an HTTP header for this
/// command only, so it is never stored in `.git/config` nor printed.
pub fn get_sources(env: &ScriptEnv<'_>, git: &GitSources<'_>) -> String {
    let mut b = String::new();
    write_variables(env, &mut b);
    let dir = quote(env.project_dir);
    if git.strategy == GitStrategy::None {
        b.push_str("echo 'Skipping Git repository setup'\n");
        make_dir(env.project_dir, &mut b);
        return wrap(env, &b);
    }
    let auth = format!(
        "git -c {}",
        quote(&format!(
            "http.extraHeader=Authorization: Basic {}",
            basic_credentials(env, git.token_var)
        ))
    );
    if git.strategy == GitStrategy::Clone {
        let _ = writeln!(b, "rm -rf {dir}");
    }
    make_dir(env.project_dir, &mut b);
    let _ = writeln!(b, "cd {dir}");
    if git.depth > 0 {
        let _ = writeln!(
            b,
            "echo {}",
            quote(&format!(
                "Fetching changes with git depth set to {}...",
                git.depth
            ))
        );
    } else {
        b.push_str("echo 'Fetching changes...'\n");
    }
    b.push_str("if [ ! -d .git ]; then git init -q; fi\n");
    b.push_str("if [ -e .git/index.lock ] || [ -e .git/shallow.lock ] || [ -e .git/HEAD.lock ]; then rm -f .git/index.lock .git/shallow.lock .git/HEAD.lock; fi\n");
    let url = quote(git.repo_url);
    let _ = writeln!(
        b,
        "git remote set-url origin {url} 2> /dev/null || git remote add origin {url}"
    );
    let mut fetch = format!("{auth} fetch origin --prune --quiet");
    if git.depth > 0 {
        let _ = write!(fetch, " --depth {}", git.depth);
    }
    for spec in git.refspecs {
        let _ = write!(fetch, " {}", quote(spec));
    }
    b.push_str(&fetch);
    b.push('\n');
    if git.checkout {
        let _ = writeln!(
            b,
            "echo {}",
            quote(&format!(
                "Checking out {} as detached HEAD (ref is {})...",
                git.sha.get(..8).unwrap_or(git.sha),
                git.ref_name
            ))
        );
        let _ = writeln!(b, "git checkout -f -q {}", quote(git.sha));
        if git.clean_flags != "none" && !git.clean_flags.is_empty() {
            let _ = writeln!(b, "git clean {}", git.clean_flags);
        }
        match git.submodules {
            SubmoduleStrategy::None => {}
            SubmoduleStrategy::Normal => {
                let _ = writeln!(b, "{auth} submodule sync");
                let _ = writeln!(b, "{auth} submodule update --init");
            }
            SubmoduleStrategy::Recursive => {
                let _ = writeln!(b, "{auth} submodule sync --recursive");
                let _ = writeln!(b, "{auth} submodule update --init --recursive");
            }
        }
    } else {
        b.push_str("echo 'Skipping Git checkout'\n");
    }
    wrap(env, &b)
}

/// `base64("gitlab-ci-token:<token>")`, the token being the value of
/// `token_var` (the last definition wins, as in the exported variables).
fn basic_credentials(env: &ScriptEnv<'_>, token_var: &str) -> String {
    let token = env
        .variables
        .iter()
        .rev()
        .find(|v| v.key == token_var && !v.file)
        .map_or("", |v| v.value.as_str());
    git_basic_credentials(token)
}

/// The HTTP Basic credentials git sends for a job token:
/// `base64("gitlab-ci-token:<token>")`. As secret as the token: the job log
/// masks it.
pub fn git_basic_credentials(token: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("gitlab-ci-token:{token}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("plain-word_1.2"), "plain-word_1.2");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("a\nb"), r"$'a\nb'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert!(is_identifier("CI_JOB_ID") && !is_identifier("1X") && !is_identifier("A-B"));
    }
}
