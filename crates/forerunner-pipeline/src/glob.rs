//! Glob matching as Ruby's `File.fnmatch?` with `FNM_PATHNAME`,
//! `FNM_DOTMATCH` and `FNM_EXTGLOB`, which GitLab uses for `rules:changes`,
//! `rules:exists` and `only:changes`.
//!
//! `*` and `?` stop at `/`, `**/` matches any number of directories, `[...]`
//! is a class (`[!...]` or `[^...]` negated), `{a,b}` is an alternative and
//! `\` escapes. Matching runs as a set of NFA states, so no pattern can make
//! it backtrack exponentially.

/// Most alternatives a `{a,b}` pattern may expand to.
const MAX_ALTERNATIVES: usize = 256;

/// True when `path` matches `pattern`.
pub(crate) fn matches(pattern: &str, path: &str) -> bool {
    let mut alternatives = Vec::new();
    expand_braces(pattern, &mut alternatives, 0);
    alternatives.iter().any(|p| match_one(&compile(p), path))
}

fn expand_braces(pattern: &str, out: &mut Vec<String>, depth: usize) {
    if out.len() >= MAX_ALTERNATIVES {
        return;
    }
    if depth > 32 {
        // Too many groups: match the rest literally rather than recurse.
        out.push(pattern.to_owned());
        return;
    }
    let chars: Vec<char> = pattern.chars().collect();
    // Find the first top-level `{` with a matching `}`.
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '{' => {
                let mut depth = 0;
                let mut commas = vec![];
                let mut j = i;
                while j < chars.len() {
                    match chars[j] {
                        '\\' => j += 1,
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        ',' if depth == 1 => commas.push(j),
                        _ => {}
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    break;
                }
                let prefix: String = chars[..i].iter().collect();
                let suffix: String = chars[j + 1..].iter().collect();
                let mut start = i + 1;
                commas.push(j);
                for end in commas {
                    let middle: String = chars[start..end].iter().collect();
                    expand_braces(&format!("{prefix}{middle}{suffix}"), out, depth + 1);
                    start = end + 1;
                }
                return;
            }
            _ => i += 1,
        }
    }
    if out.len() < MAX_ALTERNATIVES {
        out.push(pattern.to_owned());
    }
}

#[derive(Debug)]
enum Token {
    Char(char),
    /// `?`: one character other than `/`.
    One,
    /// `*` (`slash` false) or the `**` of `**/` (`slash` true).
    Star {
        slash: bool,
    },
    /// Epsilon jump forward to the given token index.
    Skip(usize),
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

fn compile(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                tokens.push(Token::Char(chars[i + 1]));
                i += 2;
            }
            '?' => {
                tokens.push(Token::One);
                i += 1;
            }
            '*' => {
                let double = chars.get(i + 1) == Some(&'*');
                let at_segment_start = i == 0 || chars[i - 1] == '/';
                if double && at_segment_start && chars.get(i + 2) == Some(&'/') {
                    let here = tokens.len();
                    tokens.push(Token::Skip(here + 3));
                    tokens.push(Token::Star { slash: true });
                    tokens.push(Token::Char('/'));
                    i += 3;
                } else {
                    tokens.push(Token::Star { slash: false });
                    i += if double { 2 } else { 1 };
                }
            }
            '[' => match parse_class(&chars, i) {
                Some((token, next)) => {
                    tokens.push(token);
                    i = next;
                }
                None => {
                    tokens.push(Token::Char('['));
                    i += 1;
                }
            },
            c => {
                tokens.push(Token::Char(c));
                i += 1;
            }
        }
    }
    tokens
}

fn parse_class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, items }, i + 1));
        }
        first = false;
        let c = if c == '\\' {
            i += 1;
            *chars.get(i)?
        } else {
            c
        };
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            items.push((c, chars[i + 2]));
            i += 3;
        } else {
            items.push((c, c));
            i += 1;
        }
    }
}

fn match_one(tokens: &[Token], path: &str) -> bool {
    let n = tokens.len();
    let mut current = vec![false; n + 1];
    current[0] = true;
    closure(tokens, &mut current);
    for c in path.chars() {
        let mut next = vec![false; n + 1];
        for (i, active) in current.iter().enumerate() {
            if !active || i == n {
                continue;
            }
            match &tokens[i] {
                Token::Char(t) if *t == c => next[i + 1] = true,
                Token::One if c != '/' => next[i + 1] = true,
                Token::Star { slash } if *slash || c != '/' => next[i] = true,
                Token::Class { negated, items } if c != '/' => {
                    let hit = items.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c));
                    if hit != *negated {
                        next[i + 1] = true;
                    }
                }
                _ => {}
            }
        }
        closure(tokens, &mut next);
        if !next.iter().any(|&a| a) {
            return false;
        }
        current = next;
    }
    current[n]
}

/// Adds the states reachable without consuming a character.
fn closure(tokens: &[Token], states: &mut [bool]) {
    // Epsilon edges only go forward, so one forward pass suffices.
    for i in 0..tokens.len() {
        if !states[i] {
            continue;
        }
        match tokens[i] {
            Token::Star { .. } => states[i + 1] = true,
            Token::Skip(to) => {
                states[i + 1] = true;
                if to < states.len() {
                    states[to] = true;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_stop_at_slashes() {
        assert!(matches("*.md", "README.md"));
        assert!(!matches("*.md", "docs/README.md"));
        assert!(matches("docs/*", "docs/a.md"));
        assert!(!matches("docs/*", "docs/a/b.md"));
        assert!(matches("*", ".hidden"));
    }

    #[test]
    fn double_star_matches_directories() {
        assert!(matches("**/*.rs", "main.rs"));
        assert!(matches("**/*.rs", "src/a/b/main.rs"));
        assert!(matches("src/**/*.rs", "src/lib.rs"));
        assert!(matches("src/**/*.rs", "src/x/y/lib.rs"));
        assert!(!matches("src/**/*.rs", "tests/lib.rs"));
        assert!(matches("backend/**/*", "backend/app/models/user.py"));
    }

    #[test]
    fn classes_braces_and_escapes() {
        assert!(matches("file[0-9].txt", "file7.txt"));
        assert!(!matches("file[!0-9].txt", "file7.txt"));
        assert!(matches("*.{yml,yaml}", "ci.yaml"));
        assert!(matches("{api,web}/**/*", "web/src/x.ts"));
        assert!(!matches("{api,web}/**/*", "docs/x.md"));
        assert!(matches("a\\*b", "a*b"));
        assert!(matches("Dockerfile", "Dockerfile"));
        assert!(!matches("Dockerfile", "Dockerfile.dev"));
        assert!(matches("file?.txt", "file1.txt"));
    }

    #[test]
    fn pathological_patterns_are_fast() {
        let pattern = "*a".repeat(50) + "b";
        let path = "a".repeat(200);
        assert!(!matches(&pattern, &path));
        let braces = "{a,b}".repeat(40);
        assert!(!matches(&braces, "c"));
    }
}
