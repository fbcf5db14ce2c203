//! Variable expansion as GitLab does it on the server side.
//!
//! GitLab's `ExpandVariables` replaces `$VAR`, `${VAR}` and `%VAR%` in the
//! few places the server expands (rules paths, environment names, resource
//! groups, workflow names, image names). Scripts are never expanded here:
//! the shell on the runner does that. Variable values that refer to other
//! variables are expanded first (bounded), as GitLab sorts and expands the
//! variables collection before evaluating rules.

use std::collections::HashMap;

/// What to do with a reference to an unknown variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unknown {
    /// Replace it with the empty string (`ExpandVariables.expand`).
    Empty,
    /// Leave `$NAME` as written (`ExpandVariables.expand_existing`).
    Keep,
}

/// Expands variable references in `text`.
pub(crate) fn expand(text: &str, vars: &HashMap<String, String>, unknown: Unknown) -> String {
    if !text.contains(['$', '%']) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(['$', '%']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let (name, len) = reference_at(tail);
        match name {
            Some(name) => {
                match vars.get(name) {
                    Some(value) => out.push_str(value),
                    None if unknown == Unknown::Keep => out.push_str(&tail[..len]),
                    None => {}
                }
                rest = &tail[len..];
            }
            None => {
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Recognises `$NAME`, `${NAME}` or `%NAME%` at the start of `text`; returns
/// the name and the length of the reference.
fn reference_at(text: &str) -> (Option<&str>, usize) {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let name_len = |s: &str| s.find(|c: char| !is_name(c)).unwrap_or(s.len());
    if let Some(after) = text.strip_prefix("${") {
        let n = name_len(after);
        if n > 0 && after[n..].starts_with('}') {
            return (Some(&after[..n]), n + 3);
        }
    } else if let Some(after) = text.strip_prefix('$') {
        let n = name_len(after);
        if n > 0 {
            return (Some(&after[..n]), n + 1);
        }
    } else if let Some(after) = text.strip_prefix('%') {
        let n = name_len(after);
        if n > 0 && after[n..].starts_with('%') {
            return (Some(&after[..n]), n + 2);
        }
    }
    (None, 0)
}

/// Expands references between the values of `vars` (only for keys in
/// `expandable`), a few rounds deep, as the runner would.
pub(crate) fn expand_values(vars: &mut HashMap<String, String>, raw: &[String]) {
    for _ in 0..4 {
        let snapshot = vars.clone();
        let mut changed = false;
        for (key, value) in vars.iter_mut() {
            if raw.contains(key) || !value.contains(['$', '%']) {
                continue;
            }
            let expanded = expand(value, &snapshot, Unknown::Keep);
            if expanded.len() > 65_536 {
                continue;
            }
            if expanded != *value {
                *value = expanded;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_reference_forms() {
        let vars: HashMap<String, String> = [("A", "x"), ("B_2", "y")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(expand("$A-${B_2}-%A%", &vars, Unknown::Empty), "x-y-x");
        assert_eq!(expand("$NOPE/$A", &vars, Unknown::Empty), "/x");
        assert_eq!(expand("$NOPE/$A", &vars, Unknown::Keep), "$NOPE/x");
        assert_eq!(expand("100% $ {A}", &vars, Unknown::Empty), "100% $ {A}");
        assert_eq!(expand("${A", &vars, Unknown::Empty), "${A");
    }

    #[test]
    fn nested_values() {
        let mut vars: HashMap<String, String> = [("A", "$B/a"), ("B", "$C/b"), ("C", "c")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        expand_values(&mut vars, &[]);
        assert_eq!(vars["A"], "c/b/a");
    }
}
