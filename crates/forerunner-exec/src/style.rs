//! Terminal colours: ANSI SGR codes when colour is on, plain text otherwise.

/// Bold green (passed, status verbs).
pub const GREEN: &str = "1;32";
/// Bold red (failed, errors).
pub const RED: &str = "1;31";
/// Bold yellow (allowed failures, cancels, warnings).
pub const YELLOW: &str = "1;33";
/// Bold cyan (section headers, notes).
pub const CYAN: &str = "1;36";
/// Bold.
pub const BOLD: &str = "1";
/// Dim (quiet details).
pub const DIM: &str = "2";

/// Colours for job-name prefixes, in turn (no red: that means failure).
pub const JOB_COLOURS: &[&str] = &["36", "35", "34", "33", "32", "96", "95", "94"];

/// Whether to colour, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Colour codes on or off.
    pub color: bool,
}

impl Style {
    /// `text` in the SGR colour `code` (e.g. [`GREEN`]), or plain.
    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// A cargo-style status line: `verb` right-aligned in 12 columns and
    /// coloured, then `text`.
    pub fn status(&self, code: &str, verb: &str, text: &str) -> String {
        format!("{} {text}", self.paint(code, &format!("{verb:>12}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paints_only_with_colour() {
        let on = Style { color: true };
        let off = Style { color: false };
        assert_eq!(on.paint(GREEN, "ok"), "\x1b[1;32mok\x1b[0m");
        assert_eq!(off.paint(GREEN, "ok"), "ok");
        assert_eq!(on.paint(GREEN, ""), "");
        assert_eq!(off.status(GREEN, "Passed", "build"), "      Passed build");
    }
}
