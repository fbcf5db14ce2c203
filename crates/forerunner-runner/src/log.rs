//! The official runner's "runner" log format, for commands' output on stderr.
//!
//! A line is the level prefix (`WARNING: `, `ERROR: `, `FATAL: `), the
//! message left-aligned in a 50-column field (minus the prefix), then
//! ` key=value` pairs sorted by key — logrus's `RunnerTextFormatter`. Colour
//! codes are added only when stderr is a terminal; without them the text is
//! byte for byte what `gitlab-runner` prints.
//!
//! Never pass a full token as a message or field value, except where the
//! official runner prints one (`list`); use
//! [`forerunner_protocol::tokens::short_token`].

use std::io::{IsTerminal, Write};

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Debug detail (white when coloured).
    Debug,
    /// Normal progress, no prefix.
    Info,
    /// `WARNING: ` (yellow).
    Warn,
    /// `ERROR: ` (red).
    Error,
    /// `FATAL: ` (red).
    Fatal,
}

impl Level {
    fn prefix(self) -> &'static str {
        match self {
            Self::Debug | Self::Info => "",
            Self::Warn => "WARNING: ",
            Self::Error => "ERROR: ",
            Self::Fatal => "FATAL: ",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Self::Debug => "\x1b[37;1m",
            Self::Info => "",
            Self::Warn => "\x1b[0;33m",
            Self::Error | Self::Fatal => "\x1b[31;1m",
        }
    }
}

const RESET: &str = "\x1b[0;m";

/// Formats one line (with its trailing newline) in the runner format.
pub fn format_line(level: Level, message: &str, fields: &[(&str, &str)], color: bool) -> String {
    let (c, reset) = if color {
        (level.color(), RESET)
    } else {
        ("", "")
    };
    let prefix = level.prefix();
    let width = 50usize.saturating_sub(prefix.len());
    let mut out = format!("{c}{prefix}{message:<width$}{reset} ");
    let mut sorted: Vec<_> = fields.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in sorted {
        out.push_str(&format!(" {c}{k}{reset}={v}"));
    }
    out.push('\n');
    out
}

/// Writes runner-format lines to stderr.
#[derive(Debug, Clone, Copy)]
pub struct Logger {
    color: bool,
}

impl Default for Logger {
    fn default() -> Self {
        Self::stderr()
    }
}

impl Logger {
    /// A logger for stderr, coloured when stderr is a terminal.
    pub fn stderr() -> Self {
        Self {
            color: std::io::stderr().is_terminal(),
        }
    }

    /// Writes one line at `level`.
    pub fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        let line = format_line(level, message, fields, self.color);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    /// An info line.
    pub fn info(&self, message: &str, fields: &[(&str, &str)]) {
        self.log(Level::Info, message, fields);
    }

    /// A `WARNING: ` line.
    pub fn warn(&self, message: &str, fields: &[(&str, &str)]) {
        self.log(Level::Warn, message, fields);
    }

    /// An `ERROR: ` line.
    pub fn error(&self, message: &str, fields: &[(&str, &str)]) {
        self.log(Level::Error, message, fields);
    }

    /// The `Runtime platform` line every official command starts with.
    pub fn runtime_platform(&self) {
        let pid = std::process::id().to_string();
        self.info(
            "Runtime platform",
            &[
                ("arch", go_arch()),
                ("os", std::env::consts::OS),
                ("pid", &pid),
                ("revision", crate::REVISION),
                ("version", crate::VERSION),
            ],
        );
    }
}

/// The architecture under Go's name (`amd64`, `arm64`, …), as GitLab expects it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_logrus_runner_formatter() {
        assert_eq!(
            format_line(
                Level::Info,
                "Listing configured runners",
                &[("ConfigFile", "/etc/gitlab-runner/config.toml")],
                false
            ),
            "Listing configured runners                          ConfigFile=/etc/gitlab-runner/config.toml\n"
        );
        assert_eq!(
            format_line(
                Level::Info,
                "my-runner",
                &[
                    ("URL", "https://gitlab.com/"),
                    ("Executor", "shell"),
                    ("Token", "t")
                ],
                false
            ),
            format!(
                "{:<50}  Executor=shell Token=t URL=https://gitlab.com/\n",
                "my-runner"
            )
        );
        let warn = format_line(Level::Warn, "x", &[], false);
        assert_eq!(warn, format!("WARNING: {:<41} \n", "x"));
        let coloured = format_line(Level::Error, "e", &[("k", "v")], true);
        assert_eq!(
            coloured,
            format!(
                "\x1b[31;1mERROR: {:<43}\x1b[0;m  \x1b[31;1mk\x1b[0;m=v\n",
                "e"
            )
        );
    }
}
