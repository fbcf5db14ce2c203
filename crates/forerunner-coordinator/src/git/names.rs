//! Validation of the names the git layer passes to the `git` CLI: project
//! paths, ref names, file paths, import URLs and shas, plus redaction of
//! credentials embedded in URLs.
//!
//! Everything here is pure. The checks keep user-supplied strings from being
//! read as command-line options or from escaping the mirror directory; they
//! do not try to replicate every rule of `git check-ref-format`, since git
//! itself rejects the rest.
use std::borrow::Cow;

use base64::Engine;

use crate::git::GitError;

/// The all-zero sha GitLab uses for "no commit", e.g. as the `before_sha` of
/// a pipeline created through the API or of the first push to a branch.
pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Replaces the user-info part of every URL in `text` (`scheme://user:pass@host`)
/// with `***`, so messages can be logged and shown without leaking credentials.
///
/// ```
/// use forerunner_coordinator::git::redact_credentials;
/// assert_eq!(
///     redact_credentials("fatal: unable to access 'https://u:secret@host/g/p.git/'"),
///     "fatal: unable to access 'https://***@host/g/p.git/'",
/// );
/// ```
pub fn redact_credentials(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(pos) = rest.find("://") {
        let (before, after_scheme) = rest.split_at(pos + 3);
        out.push_str(before);
        // The authority ends at the first '/', whitespace or quote; user info
        // is whatever precedes the last '@' inside it.
        let authority_end = after_scheme
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || "'\"<>`".contains(c)
            })
            .unwrap_or(after_scheme.len());
        let authority = &after_scheme[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
                changed = true;
            }
            None => out.push_str(authority),
        }
        rest = &after_scheme[authority_end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// Checks a project path (`namespace/project`, nested groups allowed) and
/// returns it without a trailing `.git`.
pub(crate) fn project_path(path: &str) -> Result<&str, GitError> {
    let invalid = |reason| GitError::InvalidProjectPath {
        path: path.to_owned(),
        reason,
    };
    let trimmed = path.strip_suffix(".git").unwrap_or(path);
    if trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    for segment in trimmed.split('/') {
        if segment.is_empty() {
            return Err(invalid(
                "it has an empty segment (leading, trailing or double '/')",
            ));
        }
        if segment == "." || segment == ".." {
            return Err(invalid("a segment is '.' or '..'"));
        }
        if segment.starts_with('-') {
            return Err(invalid("a segment starts with '-'"));
        }
        if segment.ends_with(".git") {
            return Err(invalid("a group segment ends with .git"));
        }
        if !segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(invalid(
                "segments may only contain letters, digits, '_', '-' and '.'",
            ));
        }
    }
    Ok(trimmed)
}

/// Checks a branch or tag name (short, or fully qualified as `refs/…`).
pub(crate) fn ref_name(name: &str) -> Result<(), GitError> {
    let invalid = |reason| GitError::InvalidRef {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.starts_with(['-', '/']) || name.ends_with(['/', '.']) {
        return Err(invalid(
            "it starts with '-' or '/', or ends with '/' or '.'",
        ));
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") || name.ends_with(".lock")
    {
        return Err(invalid(
            "it contains '..', '@{' or '//', or ends with .lock",
        ));
    }
    if name
        .chars()
        .any(|c| c.is_ascii_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
    {
        return Err(invalid(
            "it contains whitespace, a control character or one of ~ ^ : ? * [ \\",
        ));
    }
    Ok(())
}

/// Checks a path inside the repository and returns it relative to the root:
/// a leading `/` or `./` is dropped, as GitLab does for `include:local`.
pub(crate) fn file_path(path: &str) -> Result<String, GitError> {
    let invalid = |reason| GitError::InvalidFilePath {
        path: path.to_owned(),
        reason,
    };
    if path.contains(['\n', '\0']) {
        return Err(invalid("it contains a newline or NUL"));
    }
    let segments: Vec<&str> = path
        .split('/')
        .filter(|segment| !segment.is_empty() && *segment != ".")
        .collect();
    if segments.contains(&"..") {
        return Err(invalid("it contains '..'"));
    }
    if segments.is_empty() {
        return Err(invalid("it names the repository root, not a file"));
    }
    Ok(segments.join("/"))
}

/// Checks that `import_url` is a plain path or a URL git fetches from
/// without running commands, and that it cannot be read as an option.
pub(crate) fn import_url(url: &str) -> Result<(), GitError> {
    let invalid = |reason| GitError::InvalidImportUrl {
        url: redact_credentials(url).into_owned(),
        reason,
    };
    if url.trim().is_empty() {
        return Err(invalid("it is empty"));
    }
    if url.starts_with('-') {
        return Err(invalid("it starts with '-'"));
    }
    if url.chars().any(|c| c.is_ascii_control()) {
        return Err(invalid("it contains a control character"));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        if !matches!(
            scheme.to_ascii_lowercase().as_str(),
            "file" | "http" | "https" | "git" | "ssh" | "git+ssh" | "ssh+git"
        ) {
            return Err(invalid(
                "only file://, http(s)://, git:// and ssh:// URLs or local paths are supported",
            ));
        }
    } else if url.contains("::") {
        // `<transport>::<address>` runs a remote helper (e.g. `ext::`, which
        // runs arbitrary commands).
        return Err(invalid(
            "remote-helper URLs (`<transport>::…`) are not supported",
        ));
    }
    Ok(())
}

/// An `import_url` split into what git may see and store, and the
/// credentials it must not.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ImportSource {
    /// The URL without a password, safe for argv, logs and the mirror's
    /// `remote.origin.url`.
    pub(crate) url: String,
    /// For `http(s)://user:password@…`, the `Authorization` header that
    /// carries the credentials instead (passed to git through the
    /// environment as `http.extraHeader`).
    pub(crate) authorization: Option<String>,
}

impl std::fmt::Debug for ImportSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportSource")
            .field("url", &self.url)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Moves the user info of an `http(s)://` `import_url` into an
/// `Authorization: Basic` header, so credentials never appear in a process
/// list, in git's messages or in the mirror's config file. Other URLs and
/// paths are returned unchanged.
pub(crate) fn import_source(import_url: &str) -> ImportSource {
    let unchanged = || ImportSource {
        url: import_url.to_owned(),
        authorization: None,
    };
    let Ok(mut url) = url::Url::parse(import_url) else {
        return unchanged();
    };
    if !matches!(url.scheme(), "http" | "https")
        || (url.username().is_empty() && url.password().is_none())
    {
        return unchanged();
    }
    let user = percent_decode(url.username());
    let password = percent_decode(url.password().unwrap_or(""));
    let (Ok(()), Ok(())) = (url.set_username(""), url.set_password(None)) else {
        return unchanged();
    };
    let token = base64::engine::general_purpose::STANDARD.encode([user, password].join(":"));
    ImportSource {
        url: url.into(),
        authorization: Some(format!("Authorization: Basic {token}")),
    }
}

/// Decodes `%XX` escapes (as in URL user info); invalid escapes stay as is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `text` looks like a full or abbreviated hexadecimal object name.
pub(crate) fn looks_like_sha(text: &str) -> bool {
    (4..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `sha` is the all-zero object name ("no commit").
pub(crate) fn is_zero_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_user_info_only() {
        assert_eq!(redact_credentials("no url here"), "no url here");
        assert_eq!(
            redact_credentials("https://host/g/p.git"),
            "https://host/g/p.git"
        );
        assert_eq!(
            redact_credentials("https://gitlab-ci-token:glcbt-x@host:8080/g/p.git and http://a@b/"),
            "https://***@host:8080/g/p.git and http://***@b/"
        );
        assert_eq!(redact_credentials("'http://u:p@h'"), "'http://***@h'");
        assert_eq!(redact_credentials("http://u:p@h"), "http://***@h");
        assert_eq!(
            redact_credentials("x http://u:p%40x@h/y"),
            "x http://***@h/y"
        );
    }

    #[test]
    fn project_paths() {
        assert_eq!(project_path("group/project").unwrap(), "group/project");
        assert_eq!(project_path("a/b/c.git").unwrap(), "a/b/c");
        assert_eq!(
            project_path("my-group/my_project.v2").unwrap(),
            "my-group/my_project.v2"
        );
        // GitLab allows a leading '.' or '_'.
        assert_eq!(project_path("_g/.dotfiles").unwrap(), "_g/.dotfiles");
        for bad in [
            "", "/g/p", "g/p/", "g//p", "g/../p", "g/./p", "g/-p", "-g/p", "g/p q", "g.git/p",
            ".git",
        ] {
            assert!(project_path(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn ref_names() {
        for good in [
            "main",
            "feature/x",
            "v1.0.0",
            "refs/heads/main",
            "release-1_2",
        ] {
            ref_name(good).unwrap();
        }
        for bad in [
            "", "-n", "a..b", "a b", "a:b", "a^", "x@{1}", "x.lock", "x/", "/x", "a\\b", "a*",
        ] {
            assert!(ref_name(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn file_paths() {
        assert_eq!(file_path(".gitlab-ci.yml").unwrap(), ".gitlab-ci.yml");
        assert_eq!(file_path("/ci/build.yml").unwrap(), "ci/build.yml");
        assert_eq!(file_path("./ci//build.yml").unwrap(), "ci/build.yml");
        for bad in ["", "/", "../x", "ci/../../x", "a\nb"] {
            assert!(file_path(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn import_urls() {
        for good in [
            "/srv/repos/p.git",
            "file:///srv/p",
            "https://u:p@host/g/p.git",
            "git@host:g/p.git",
            "ssh://host/p",
        ] {
            import_url(good).unwrap();
        }
        for bad in [
            "",
            "-uhttp://x",
            "ext::sh -c touch% /tmp/pwned",
            "fd::3",
            "ftp://host/p",
        ] {
            assert!(import_url(bad).is_err(), "{bad:?} should be rejected");
        }
        let err = import_url("ftp://u:secret@host/p").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn import_sources_keep_credentials_out_of_the_url() {
        let source = import_source("https://gitlab-ci-token:p%40ss@host:8443/g/p.git");
        assert_eq!(source.url, "https://host:8443/g/p.git");
        // base64("gitlab-ci-token:p@ss")
        assert_eq!(
            source.authorization.as_deref(),
            Some("Authorization: Basic Z2l0bGFiLWNpLXRva2VuOnBAc3M=")
        );
        assert!(!format!("{source:?}").contains("Z2l0"));
        for unchanged in [
            "https://host/g/p.git",
            "/srv/p.git",
            "git@host:g/p.git",
            "ssh://git@host/p",
            "file:///srv/p",
        ] {
            assert_eq!(
                import_source(unchanged),
                ImportSource {
                    url: unchanged.to_owned(),
                    authorization: None
                }
            );
        }
        assert_eq!(percent_decode("a%2Fb%zz%"), "a/b%zz%");
    }

    #[test]
    fn shas() {
        assert!(looks_like_sha("deadbeef"));
        assert!(looks_like_sha(ZERO_SHA));
        assert!(!looks_like_sha("main"));
        assert!(!looks_like_sha("abc"));
        assert!(is_zero_sha(ZERO_SHA));
        assert!(!is_zero_sha(""));
        assert!(!is_zero_sha("0000001"));
    }
}
