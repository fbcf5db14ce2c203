//! `.gitlab-ci.yml` diagnostics as a compiler prints them: the message, the
//! position, and the source line with a caret under the column.
//!
//! ```text
//! error: jobs.build.script: `script` must be a string or a list of strings
//!  --> .gitlab-ci.yml:3:11
//!   |
//! 3 |   script: 12
//!   |           ^
//! ```

use std::fmt::Write as _;

use forerunner_pipeline::{Diagnostic, Severity};

use crate::style::{Style, BOLD, CYAN, RED, YELLOW};

/// Renders `d`; `source` is the text of the file it points into, when it
/// could be read (the snippet is left out otherwise).
pub fn render(d: &Diagnostic, source: Option<&str>, style: Style) -> String {
    let (label, code) = match d.severity {
        Severity::Error => ("error", RED),
        Severity::Warning => ("warning", YELLOW),
    };
    let mut out = style.paint(code, label);
    out.push_str(&style.paint(BOLD, ": "));
    let message = if d.path.is_empty() {
        d.message.clone()
    } else {
        format!("{}: {}", d.path, d.message)
    };
    out.push_str(&style.paint(BOLD, &message));
    out.push('\n');
    let line_no = d.mark.line as usize;
    let line = source.and_then(|s| s.lines().nth(line_no.checked_sub(1)?));
    let gutter = line_no.to_string().len().max(1);
    let _ = writeln!(
        out,
        "{}{} {}",
        " ".repeat(gutter),
        style.paint(CYAN, "-->"),
        d.mark
    );
    if let Some(line) = line {
        let bar = style.paint(CYAN, "|");
        let _ = writeln!(out, "{} {bar}", " ".repeat(gutter));
        let _ = writeln!(
            out,
            "{} {bar} {}",
            style.paint(CYAN, &line_no.to_string()),
            line.trim_end()
        );
        // The caret sits under the column, counting characters (tabs kept
        // as tabs so it lines up whatever their width).
        let lead: String = line
            .chars()
            .take((d.mark.col as usize).saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(
            out,
            "{} {bar} {lead}{}",
            " ".repeat(gutter),
            style.paint(code, "^")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use forerunner_pipeline::{compile, Mark, NoFiles};

    use super::*;

    const PLAIN: Style = Style { color: false };

    #[test]
    fn an_error_with_its_source_line() {
        let source = "stages: [build]\nbuild:\n  script: 12\n";
        let compiled = compile(".gitlab-ci.yml", source, &NoFiles);
        let d = compiled
            .diagnostics
            .iter()
            .find(|d| d.is_error())
            .expect("`script: 12` is an error");
        let text = render(d, Some(source), PLAIN);
        let caret = format!("{}^", " ".repeat(d.mark.col as usize - 1));
        let expected = format!(
            "error: {}: {}\n --> .gitlab-ci.yml:3:{col}\n  |\n3 |   script: 12\n  | {caret}\n",
            d.path,
            d.message,
            col = d.mark.col,
        );
        assert_eq!(text, expected);
        assert_eq!(d.mark.line, 3);
    }

    #[test]
    fn without_source_only_the_position() {
        let d = Diagnostic {
            severity: Severity::Warning,
            mark: Mark {
                file: Arc::from("ci/included.yml"),
                line: 12,
                col: 4,
            },
            path: String::new(),
            message: "something is ignored".into(),
        };
        assert_eq!(
            render(&d, None, PLAIN),
            "warning: something is ignored\n  --> ci/included.yml:12:4\n"
        );
        // A line past the end of the text is like no text.
        assert_eq!(
            render(&d, Some("one line\n"), PLAIN),
            render(&d, None, PLAIN)
        );
    }

    #[test]
    fn broken_yaml_points_at_the_line() {
        let source = "build:\n  script: [unclosed\n";
        let compiled = compile(".gitlab-ci.yml", source, &NoFiles);
        let d = compiled.diagnostics.first().expect("a syntax error");
        let text = render(d, Some(source), PLAIN);
        assert!(text.starts_with("error: "), "{text}");
        assert!(text.contains("--> .gitlab-ci.yml:"), "{text}");
    }
}
