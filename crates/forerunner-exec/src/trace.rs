//! Job traces → terminal lines. Pure: bytes in, [`Line`]s out.
//!
//! A trace is what the runner sent the coordinator: the job's output with
//! ANSI colours, `\r` redraws, and GitLab's collapsible-section markers
//! (`section_start:<unix time>:<name>[options]\r\x1b[0K<header>` …
//! `section_end:<unix time>:<name>\r\x1b[0K`). [`TraceRenderer`] splits it
//! into complete lines and turns markers into [`Line::Header`]s, so no raw
//! marker or erase-line escape reaches the terminal. Colour codes are kept
//! (and closed at the end of each line) when colour is on, and removed
//! otherwise; a `\r` redraw keeps what a terminal would finally show.
//!
//! Unless `verbose`, the content of the runner's own sections (preparing
//! the executor, getting sources, caches, artifacts, cleanup) and the lines
//! outside any section (the `Running with …` preamble, `Job succeeded`) are
//! hidden: their headers still say what happens, and lines that report a
//! problem (`ERROR:`, `WARNING:`, `fatal:`) are always shown. A trace
//! without any section marker is shown whole.

/// The runner's own sections, hidden unless verbose (the script's sections
/// — `step_script`, `after_script` and any section a script opens — are not).
const RUNNER_SECTIONS: &[&str] = &[
    "prepare_executor",
    "prepare_script",
    "get_sources",
    "restore_cache",
    "download_artifacts",
    "archive_cache",
    "archive_cache_on_failure",
    "upload_artifacts_on_success",
    "upload_artifacts_on_failure",
    "cleanup_file_variables",
];

/// A line longer than this without a newline is shown in pieces.
const MAX_LINE: usize = 64 * 1024;

/// Lines kept before the first section marker, shown at the end when the
/// trace never has one.
const MAX_PREAMBLE: usize = 200;

/// One line to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A section starts: its header text (escapes removed).
    Header {
        /// The header text, or the section name when there is none.
        title: String,
        /// Whether it is one of the runner's own sections (shown dimmed).
        runner: bool,
    },
    /// A line of output (colour codes kept only when colour is on, and
    /// then closed at the end).
    Text(String),
}

/// Turns one job's trace into lines, chunk by chunk.
#[derive(Debug)]
pub struct TraceRenderer {
    verbose: bool,
    color: bool,
    /// Bytes after the last newline.
    partial: Vec<u8>,
    /// Open sections, innermost last.
    open: Vec<String>,
    /// Whether a section marker was seen.
    seen_marker: bool,
    /// Lines before the first marker (not yet known to be a preamble), and
    /// whether each is shown anyway (a problem, or verbose).
    preamble: Vec<(Line, bool)>,
}

impl TraceRenderer {
    /// A renderer; `verbose` shows every line, `color` keeps colour codes.
    pub fn new(verbose: bool, color: bool) -> Self {
        Self {
            verbose,
            color,
            partial: Vec::new(),
            open: Vec::new(),
            seen_marker: false,
            preamble: Vec::new(),
        }
    }

    /// The lines completed by `bytes`.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Line> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..pos]);
            rest = &rest[pos + 1..];
            let line = std::mem::take(&mut self.partial);
            self.line(&line, &mut out);
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_LINE {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, &mut out);
        }
        out
    }

    /// The last, unterminated line, and a preamble never followed by a
    /// section; call once the trace is complete.
    pub fn finish(&mut self) -> Vec<Line> {
        let mut out = Vec::new();
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, &mut out);
        }
        if !self.seen_marker {
            out.splice(0..0, self.preamble.drain(..).map(|(line, _)| line));
        }
        out
    }

    fn line(&mut self, bytes: &[u8], out: &mut Vec<Line>) {
        let text = String::from_utf8_lossy(bytes);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let Some(first) = find_marker(text) else {
            self.text(text, out);
            return;
        };
        let mut rest = text;
        let mut next = Some(first);
        while let Some((start, marker)) = next {
            if start > 0 {
                self.text(&rest[..start], out);
            }
            rest = &rest[start + marker.len..];
            if !self.seen_marker {
                // What came before the first section is the runner's
                // preamble: only its problems are shown.
                self.seen_marker = true;
                out.extend(
                    self.preamble
                        .drain(..)
                        .filter(|(_, problem)| *problem)
                        .map(|(line, _)| line),
                );
            }
            match marker.kind {
                MarkerKind::Start => {
                    // The header runs to the next marker.
                    let end = find_marker(rest).map_or(rest.len(), |(i, _)| i);
                    let title = strip_escapes(&redraw(&rest[..end]));
                    let title = title.trim();
                    rest = &rest[end..];
                    out.push(Line::Header {
                        title: if title.is_empty() {
                            marker.name.to_owned()
                        } else {
                            title.to_owned()
                        },
                        runner: RUNNER_SECTIONS.contains(&marker.name),
                    });
                    self.open.push(marker.name.to_owned());
                }
                MarkerKind::End => {
                    if let Some(i) = self.open.iter().rposition(|n| n == marker.name) {
                        self.open.truncate(i);
                    }
                }
            }
            next = find_marker(rest);
        }
        if !rest.is_empty() {
            self.text(rest, out);
        }
    }

    /// Shows (or hides) one line, or the text of a line between markers.
    fn text(&mut self, raw: &str, out: &mut Vec<Line>) {
        let shown = redraw(raw);
        let plain = strip_escapes(&shown);
        if plain.trim().is_empty() && raw.contains(['\x1b', '\r']) {
            // Only escapes: the erase-line codes around markers.
            return;
        }
        let problem = is_problem(&plain);
        let line = Line::Text(if self.color {
            keep_colours(&shown)
        } else {
            plain
        });
        if !self.seen_marker {
            if self.preamble.len() < MAX_PREAMBLE {
                self.preamble.push((line, problem || self.verbose));
            }
            return;
        }
        let in_script = self
            .open
            .last()
            .is_some_and(|name| !RUNNER_SECTIONS.contains(&name.as_str()));
        if self.verbose || problem || in_script {
            out.push(line);
        }
    }
}

/// A line that reports a problem, shown whatever section it is in.
fn is_problem(plain: &str) -> bool {
    let t = plain.trim_start();
    ["ERROR:", "WARNING:", "FATAL:", "fatal:"]
        .iter()
        .any(|p| t.starts_with(p))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkerKind {
    Start,
    End,
}

#[derive(Debug)]
struct Marker<'a> {
    kind: MarkerKind,
    name: &'a str,
    /// Bytes the marker takes, with its `[options]`, `\r` and `\x1b[0K`.
    len: usize,
}

/// The first well-formed section marker in `s`: its byte offset and parts.
fn find_marker(s: &str) -> Option<(usize, Marker<'_>)> {
    let mut from = 0;
    while from < s.len() {
        let hay = &s[from..];
        let candidates = [
            hay.find("section_start:").map(|i| (i, MarkerKind::Start)),
            hay.find("section_end:").map(|i| (i, MarkerKind::End)),
        ];
        let (i, kind) = candidates.into_iter().flatten().min_by_key(|(i, _)| *i)?;
        let at = from + i;
        if let Some(marker) = parse_marker(&s[at..], kind) {
            return Some((at, marker));
        }
        from = at + 1;
    }
    None
}

/// `section_(start|end):<digits>:<name>[<options>]\r` followed by an
/// optional `\x1b[0K`.
fn parse_marker(s: &str, kind: MarkerKind) -> Option<Marker<'_>> {
    let prefix = match kind {
        MarkerKind::Start => "section_start:",
        MarkerKind::End => "section_end:",
    };
    let rest = s.strip_prefix(prefix)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let rest = rest[digits..].strip_prefix(':')?;
    let name_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        .count();
    if name_len == 0 {
        return None;
    }
    let name = &rest[..name_len];
    let mut tail = &rest[name_len..];
    if tail.starts_with('[') {
        let close = tail.find(']')?;
        tail = &tail[close + 1..];
    }
    let tail = tail.strip_prefix('\r')?;
    let tail = tail.strip_prefix("\x1b[0K").unwrap_or(tail);
    Some(Marker {
        kind,
        name,
        len: s.len() - tail.len(),
    })
}

/// What a terminal finally shows of a line with `\r` redraws: the last
/// non-empty part (a progress bar's last state).
fn redraw(s: &str) -> String {
    match s.rsplit('\r').find(|part| !strip_escapes(part).is_empty()) {
        Some(part) => part.to_owned(),
        None => s.rsplit('\r').next().unwrap_or("").to_owned(),
    }
}

/// `s` without any escape sequence (CSI, OSC, or a lone ESC) or other
/// control character except tab.
pub fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => skip_escape(&mut chars),
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// `s` with its SGR colour codes (`ESC [ … m`) kept and every other escape
/// removed, closed with a reset when it used any colour.
fn keep_colours(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut coloured = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' if chars.peek() == Some(&'[') => {
                let mut seq = String::from("\x1b[");
                chars.next();
                let mut last = None;
                for c in chars.by_ref() {
                    seq.push(c);
                    if ('\x40'..='\x7e').contains(&c) {
                        last = Some(c);
                        break;
                    }
                }
                if last == Some('m') {
                    out.push_str(&seq);
                    coloured = true;
                }
            }
            '\x1b' => skip_escape(&mut chars),
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    if coloured {
        out.push_str("\x1b[0m");
    }
    out
}

/// Skips the rest of an escape sequence whose ESC was just read.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.peek() {
        Some('[') => {
            chars.next();
            for c in chars.by_ref() {
                if ('\x40'..='\x7e').contains(&c) {
                    break;
                }
            }
        }
        Some(']') => {
            // OSC: up to BEL or ESC \.
            chars.next();
            while let Some(c) = chars.next() {
                if c == '\x07' {
                    break;
                }
                if c == '\x1b' {
                    if chars.peek() == Some(&'\\') {
                        chars.next();
                    }
                    break;
                }
            }
        }
        Some(_) => {
            chars.next();
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What our runner writes for a short successful job.
    const TRACE: &str = concat!(
        "Running with forerunner 0.1.0 (unknown)\n",
        "  on forerunner-exec t1_abcdef\n",
        "section_start:1700000000:prepare_executor\r\x1b[0K\x1b[36;1mPreparing the \"shell\" executor\x1b[0;m\n",
        "Using Shell executor...\n",
        "section_end:1700000001:prepare_executor\r\x1b[0K",
        "section_start:1700000001:get_sources\r\x1b[0K\x1b[36;1mGetting source from Git repository\x1b[0;m\n",
        "Fetching changes...\n",
        "fatal: could not read Username\n",
        "section_end:1700000002:get_sources\r\x1b[0K",
        "section_start:1700000002:step_script\r\x1b[0K\x1b[36;1mExecuting \"step_script\" stage of the job script\x1b[0;m\n",
        "\x1b[32;1m$ make\x1b[0;m\n",
        "compiling\n",
        "\n",
        "10%\r50%\r100%\n",
        "section_end:1700000003:step_script\r\x1b[0K",
        "section_start:1700000003:upload_artifacts_on_success\r\x1b[0K\x1b[36;1mUploading artifacts for successful job\x1b[0;m\n",
        "Uploading artifacts...\n",
        "section_end:1700000004:upload_artifacts_on_success\r\x1b[0K",
        "\x1b[32;1mJob succeeded\x1b[0;m\n",
    );

    fn render(trace: &str, verbose: bool, color: bool) -> Vec<Line> {
        let mut r = TraceRenderer::new(verbose, color);
        let mut lines = r.push(trace.as_bytes());
        lines.extend(r.finish());
        lines
    }

    fn text(s: &str) -> Line {
        Line::Text(s.into())
    }

    fn header(s: &str, runner: bool) -> Line {
        Line::Header {
            title: s.into(),
            runner,
        }
    }

    #[test]
    fn sections_become_headers_and_runner_sections_are_quiet() {
        assert_eq!(
            render(TRACE, false, false),
            [
                header("Preparing the \"shell\" executor", true),
                header("Getting source from Git repository", true),
                text("fatal: could not read Username"),
                header("Executing \"step_script\" stage of the job script", false),
                text("$ make"),
                text("compiling"),
                text(""),
                text("100%"),
                header("Uploading artifacts for successful job", true),
            ]
        );
    }

    #[test]
    fn verbose_shows_every_line() {
        assert_eq!(
            render(TRACE, true, false),
            [
                text("Running with forerunner 0.1.0 (unknown)"),
                text("  on forerunner-exec t1_abcdef"),
                header("Preparing the \"shell\" executor", true),
                text("Using Shell executor..."),
                header("Getting source from Git repository", true),
                text("Fetching changes..."),
                text("fatal: could not read Username"),
                header("Executing \"step_script\" stage of the job script", false),
                text("$ make"),
                text("compiling"),
                text(""),
                text("100%"),
                header("Uploading artifacts for successful job", true),
                text("Uploading artifacts..."),
                text("Job succeeded"),
            ]
        );
    }

    #[test]
    fn colours_are_kept_and_closed_when_wanted() {
        let lines = render(TRACE, false, true);
        assert!(
            lines.contains(&text("\x1b[32;1m$ make\x1b[0;m\x1b[0m")),
            "{lines:?}"
        );
        assert!(
            lines.contains(&text("compiling")),
            "no reset without colour"
        );
    }

    #[test]
    fn chunks_split_anywhere_give_the_same_lines() {
        let whole = render(TRACE, false, true);
        for size in [1, 2, 3, 7, 64] {
            let mut r = TraceRenderer::new(false, true);
            let mut lines = Vec::new();
            for chunk in TRACE.as_bytes().chunks(size) {
                lines.extend(r.push(chunk));
            }
            lines.extend(r.finish());
            assert_eq!(lines, whole, "chunks of {size}");
        }
    }

    #[test]
    fn script_sections_and_collapsed_options_are_understood() {
        let trace = concat!(
            "section_start:1:step_script\r\x1b[0KExecuting\n",
            "\x1b[0Ksection_start:1700000000:my_tests[collapsed=true]\r\x1b[0KRunning the tests\n",
            "ok 1\n",
            "\x1b[0Ksection_end:1700000009:my_tests\r\x1b[0K\n",
            "after\n",
        );
        assert_eq!(
            render(trace, false, false),
            [
                header("Executing", false),
                header("Running the tests", false),
                text("ok 1"),
                text("after"),
            ]
        );
    }

    #[test]
    fn a_marker_after_output_without_newline_splits_the_line() {
        let trace = concat!(
            "section_start:1:step_script\r\x1b[0Kscript\n",
            "no newline at the end",
            "section_end:2:step_script\r\x1b[0K",
            "section_start:2:after_script\r\x1b[0KRunning after_script\n",
            "cleanup\n",
        );
        assert_eq!(
            render(trace, false, false),
            [
                header("script", false),
                text("no newline at the end"),
                header("Running after_script", false),
                text("cleanup"),
            ]
        );
    }

    #[test]
    fn marker_look_alikes_are_text() {
        let trace =
            "section_start:1:step_script\r\x1b[0Kx\necho section_start:abc and section_end:1:\n";
        assert_eq!(
            render(trace, false, false),
            [
                header("x", false),
                text("echo section_start:abc and section_end:1:")
            ]
        );
    }

    #[test]
    fn a_trace_without_sections_is_shown_whole() {
        assert_eq!(
            render("one\ntwo\nERROR: three", false, false),
            [text("one"), text("two"), text("ERROR: three")]
        );
    }

    #[test]
    fn preamble_problems_keep_their_place() {
        let trace = "Running with x\nWARNING: old\nsection_start:1:step_script\r\x1b[0Kgo\nout\n";
        assert_eq!(
            render(trace, false, false),
            [text("WARNING: old"), header("go", false), text("out")]
        );
    }

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(
            strip_escapes("\x1b[31;1mred\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07"),
            "red link"
        );
        assert_eq!(keep_colours("\x1b[0Kplain"), "plain");
        assert_eq!(keep_colours("\x1b[1ma\x1b[2Kb"), "\x1b[1mab\x1b[0m");
        assert_eq!(redraw("10%\r50%\r"), "50%");
    }
}
