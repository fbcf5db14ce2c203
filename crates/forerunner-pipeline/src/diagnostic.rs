//! Diagnostics: what is wrong with a `.gitlab-ci.yml`, where, and how bad.
//!
//! Every stage of the crate (YAML loading, includes, `extends`, validation
//! and planning) pushes [`Diagnostic`]s into a list instead of returning
//! early, so a caller sees every problem of a file at once. This module owns
//! the diagnostic type and its one-line rendering; it does not decide what is
//! an error, the stages do.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// GitLab would accept the file; the diagnostic points at something
    /// ignored, deprecated or not acted upon by Forerunner.
    Warning,
    /// GitLab would refuse to create a pipeline from this file.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A position in a source file: the file name as given by the caller (or
/// the `include: local` path), and a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mark {
    /// File the position is in, e.g. `.gitlab-ci.yml` or `ci/build.yml`.
    pub file: Arc<str>,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column number.
    pub col: u32,
}

impl Mark {
    /// A position at line 1, column 1 of `file`, used for problems that
    /// concern a whole file (an empty file, a missing include).
    pub fn start_of(file: &Arc<str>) -> Mark {
        Mark {
            file: Arc::clone(file),
            line: 1,
            col: 1,
        }
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One problem found in a pipeline configuration.
///
/// `path` is the YAML path of the offending value in the configuration
/// *after* includes and `extends` were merged, e.g. `jobs.build.script[2]`
/// or `workflow.rules[0].if`; `mark` is where that value was written, which
/// may be in an included file or in the job it was inherited from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where the offending value is written.
    pub mark: Mark,
    /// YAML path of the offending value, empty for the whole file.
    pub path: String,
    /// What is wrong and, when known, what to do about it. Lowercase, no
    /// trailing period.
    pub message: String,
}

impl Diagnostic {
    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Renders as `error .gitlab-ci.yml:3:5 jobs.build.script: message`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.severity, self.mark)?;
        if !self.path.is_empty() {
            write!(f, " {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Collects diagnostics for one run of a stage.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    pub(crate) items: Vec<Diagnostic>,
    /// Rendered diagnostics already pushed, to say each problem once.
    seen: HashSet<String>,
    /// Problems not kept because [`MAX_DIAGNOSTICS`] were already kept.
    pub(crate) dropped: usize,
}

/// Most diagnostics kept for one file; a broken file can produce one per
/// value, and nobody reads past the first few hundred.
pub(crate) const MAX_DIAGNOSTICS: usize = 1000;

impl Sink {
    pub(crate) fn error(&mut self, mark: &Mark, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, mark, path, message.into());
    }

    pub(crate) fn warning(&mut self, mark: &Mark, path: &str, message: impl Into<String>) {
        self.push(Severity::Warning, mark, path, message.into());
    }

    fn push(&mut self, severity: Severity, mark: &Mark, path: &str, message: String) {
        // The same problem can be reached twice (a value shared through an
        // alias or inherited by several jobs at the same path); say it once.
        let diagnostic = Diagnostic {
            severity,
            mark: mark.clone(),
            path: path.to_owned(),
            message,
        };
        if self.items.len() >= MAX_DIAGNOSTICS {
            if severity == Severity::Error && !self.items.iter().any(Diagnostic::is_error) {
                // Never hide the fact that there are errors.
                self.items.pop();
                self.dropped += 1;
            } else {
                self.dropped += 1;
                return;
            }
        }
        if self.seen.insert(diagnostic.to_string()) {
            self.items.push(diagnostic);
        }
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }
}

/// Appends `key` to a YAML path, quoting keys that would be ambiguous.
pub(crate) fn join_key(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !key.starts_with('-');
    let key = if plain {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// Appends a sequence index to a YAML path.
pub(crate) fn join_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}
