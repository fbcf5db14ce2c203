//! `allowed_images` and `allowed_services`: which job images a runner accepts.
//!
//! The official runner matches each pattern with doublestar globbing: `*` and `?` stop at `/`,
//! `**` crosses it, `[a-z]`/`[!a-z]` are character classes and `{a,b}` alternatives. An empty
//! list allows everything, and the runner's own images (`[runners.docker] image`, configured
//! services) are always allowed. This module is pure; the executor prints [`not_allowed_message`]
//! and fails the job when [`image_allowed`] says no.

/// Whether `image` may be used given the `allowed` patterns and the runner's own `internal`
/// images.
pub fn image_allowed(image: &str, allowed: &[String], internal: &[&str]) -> bool {
    allowed.is_empty()
        || internal.contains(&image)
        || allowed.iter().any(|pattern| glob_match(pattern, image))
}

/// The lines the official runner prints for an image that is not allowed; `kind` is `images` or
/// `services`.
pub fn not_allowed_message(image: &str, kind: &str, allowed: &[String]) -> String {
    let mut msg = format!("ERROR: The {image} is not present on list of allowed {kind}\n");
    for pattern in allowed {
        msg.push_str(&format!("- {pattern}\n"));
    }
    msg.push_str(
        "\nPlease check runner's configuration: \
         http://doc.gitlab.com/ci/docker/using_docker_images.html#overwrite-image-and-services\n",
    );
    msg
}

/// Doublestar-style matching of the whole of `text` against `pattern`.
fn glob_match(pattern: &str, text: &str) -> bool {
    expand_braces(pattern).iter().any(|p| {
        let p: Vec<char> = p.chars().collect();
        let t: Vec<char> = text.chars().collect();
        match_here(&p, &t)
    })
}

/// `a{b,c}d` becomes `abd` and `acd`; nested and repeated braces are expanded too.
fn expand_braces(pattern: &str) -> Vec<String> {
    let Some(open) = pattern.find('{') else {
        return vec![pattern.to_owned()];
    };
    let mut depth = 0;
    let mut close = None;
    let mut splits = Vec::new();
    for (i, c) in pattern[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            ',' if depth == 1 => splits.push(open + i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![pattern.to_owned()]; // An unclosed brace is literal.
    };
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(splits);
    bounds.push(close);
    bounds
        .windows(2)
        .flat_map(|w| expand_braces(&format!("{head}{}{tail}", &pattern[w[0] + 1..w[1]])))
        .collect()
}

fn match_here(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') if p.get(1) == Some(&'*') => {
            let mut rest = &p[2..];
            while rest.first() == Some(&'*') {
                rest = &rest[1..];
            }
            // `**/` also matches nothing at all, so `**/ruby` matches `ruby`.
            if rest.first() == Some(&'/') && match_here(&rest[1..], t) {
                return true;
            }
            (0..=t.len()).any(|i| match_here(rest, &t[i..]))
        }
        Some('*') => {
            let rest = &p[1..];
            for i in 0..=t.len() {
                if match_here(rest, &t[i..]) {
                    return true;
                }
                if t.get(i) == Some(&'/') {
                    break;
                }
            }
            false
        }
        Some('?') => t.first().is_some_and(|&c| c != '/') && match_here(&p[1..], &t[1..]),
        Some('[') => match (class_end(p), t.first()) {
            (Some(end), Some(&c)) => {
                c != '/' && class_matches(&p[1..end], c) && match_here(&p[end + 1..], &t[1..])
            }
            (Some(_), None) => false,
            (None, _) => t.first() == Some(&'[') && match_here(&p[1..], &t[1..]),
        },
        Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && match_here(&p[2..], &t[1..]),
        Some(&c) => t.first() == Some(&c) && match_here(&p[1..], &t[1..]),
    }
}

/// The index of the `]` closing the class that starts at `p[0]`.
fn class_end(p: &[char]) -> Option<usize> {
    let mut i = 1;
    if matches!(p.get(i), Some('!' | '^')) {
        i += 1;
    }
    if p.get(i) == Some(&']') {
        i += 1; // A leading `]` is a member.
    }
    (i..p.len()).find(|&j| p[j] == ']')
}

fn class_matches(class: &[char], c: char) -> bool {
    let (negated, class) = match class.first() {
        Some('!' | '^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut found = false;
    let mut i = 0;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == '-' {
            found |= (class[i]..=class[i + 2]).contains(&c);
            i += 3;
        } else {
            found |= class[i] == c;
            i += 1;
        }
    }
    found != negated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(patterns: &[&str], image: &str) -> bool {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        image_allowed(image, &patterns, &["runner-default:1"])
    }

    #[test]
    fn empty_list_allows_everything_and_internal_images_are_always_allowed() {
        assert!(allowed(&[], "anything:latest"));
        assert!(allowed(&["ruby:*"], "runner-default:1"));
    }

    #[test]
    fn patterns_from_the_official_docs() {
        assert!(allowed(&["ruby:*", "python:*", "php:*"], "ruby:3.3"));
        assert!(!allowed(&["ruby:*", "python:*", "php:*"], "alpine:3"));
        assert!(allowed(
            &["my.registry.tld:5000/*:*"],
            "my.registry.tld:5000/tool:1"
        ));
        assert!(!allowed(
            &["my.registry.tld:5000/*:*"],
            "my.registry.tld:5000/group/tool:1"
        ));
    }

    #[test]
    fn double_star_crosses_slashes() {
        assert!(allowed(
            &["registry.example.com/**"],
            "registry.example.com/a/b:1"
        ));
        assert!(allowed(&["**/ruby:*"], "ruby:3"));
        assert!(allowed(&["**/ruby:*"], "docker.io/library/ruby:3"));
        assert!(!allowed(&["*/ruby:*"], "docker.io/library/ruby:3"));
    }

    #[test]
    fn classes_alternatives_and_question_marks() {
        assert!(allowed(&["alpine:3.{19,20}"], "alpine:3.20"));
        assert!(!allowed(&["alpine:3.{19,20}"], "alpine:3.18"));
        assert!(allowed(&["node:2[0-2]"], "node:21"));
        assert!(!allowed(&["node:2[!0-2]"], "node:21"));
        assert!(allowed(&["go:1.2?"], "go:1.23"));
        assert!(!allowed(&["go:1.2?"], "go:1.2"));
    }

    #[test]
    fn message_matches_the_official_runner() {
        let msg = not_allowed_message("alpine:3", "images", &["ruby:*".into(), "php:*".into()]);
        assert_eq!(
            msg,
            "ERROR: The alpine:3 is not present on list of allowed images\n- ruby:*\n- php:*\n\n\
             Please check runner's configuration: \
             http://doc.gitlab.com/ci/docker/using_docker_images.html#overwrite-image-and-services\n"
        );
    }
}
