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

/// Sends the `tracing` events of this crate (executors report through it
/// what happens outside a job's log: a custom executor's `cleanup_exec`
/// output, Docker leftovers removed, cleanups that failed) to stderr in the
/// runner format: info and above, debug too with `debug`. Other crates'
/// events are dropped. Does nothing if a subscriber is installed already.
pub fn install_tracing(debug: bool) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let level = if debug {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let filter = tracing_subscriber::filter::Targets::new().with_target("forerunner_runner", level);
    let subscriber = tracing_subscriber::fmt()
        .event_format(RunnerFormat::new(std::io::stderr().is_terminal()))
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::DEBUG)
        .finish()
        .with(filter);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// A `tracing_subscriber` event format producing runner-format lines, so
/// the `run` loop can log through `tracing` and still print what
/// `gitlab-runner` prints:
/// `tracing_subscriber::fmt().event_format(RunnerFormat::new(color))`.
/// Span fields are not printed; event fields are, sorted by name.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunnerFormat {
    color: bool,
}

impl RunnerFormat {
    /// A format with or without colour codes.
    pub fn new(color: bool) -> Self {
        Self { color }
    }
}

#[derive(Default)]
struct FieldCollector {
    message: String,
    fields: Vec<(String, String)>,
}

impl tracing::field::Visit for FieldCollector {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.fields
                .push((field.name().to_owned(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields.push((field.name().to_owned(), text));
        }
    }
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for RunnerFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut collected = FieldCollector::default();
        event.record(&mut collected);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::INFO => Level::Info,
            _ => Level::Debug,
        };
        let fields: Vec<(&str, &str)> = collected
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        writer.write_str(&format_line(level, &collected.message, &fields, self.color))
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

    #[test]
    fn tracing_events_use_the_runner_format() {
        use std::sync::{Arc, Mutex};

        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(RunnerFormat::new(false))
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(
                unhealthy_requests = 3,
                unhealthy_requests_limit = 3,
                "Runner \"https://gitlab.example.com/t3_abcdef\" is unhealthy and will be disabled for 1h0m0s seconds!"
            );
            tracing::info!(builds = 0, "Configuration loaded");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            out,
            "ERROR: Runner \"https://gitlab.example.com/t3_abcdef\" is unhealthy and will be disabled for 1h0m0s seconds!  unhealthy_requests=3 unhealthy_requests_limit=3\n\
             Configuration loaded                                builds=0\n"
        );
    }
}
