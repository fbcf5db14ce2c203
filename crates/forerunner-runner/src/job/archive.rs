//! Artifact and cache archives: which files go in, and zip in and out.
//!
//! Selection follows GitLab's rules for `artifacts:` and `cache:`: `paths`
//! are relative to the project directory and may be literal files,
//! directories (taken recursively) or glob patterns with `**`; `exclude`
//! patterns drop matching files (a pattern matching a directory drops all of
//! it); `untracked` adds the files git does not track (the caller lists them).
//! Nothing outside the project directory is ever taken, and `.git` is never
//! walked.
//!
//! Extraction refuses entries that would land outside the destination
//! (absolute paths, `..`), and never writes through a symlink.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

/// An error while selecting or archiving files.
#[derive(Debug)]
pub struct ArchiveError(pub String);

impl std::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArchiveError {}

fn err(msg: impl Into<String>) -> ArchiveError {
    ArchiveError(msg.into())
}

fn io_err(what: &str, path: &Path, e: io::Error) -> ArchiveError {
    err(format!("failed to {what} {}: {e}", path.display()))
}

fn has_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

fn matcher(pattern: &str) -> Result<GlobMatcher, ArchiveError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| err(format!("invalid pattern {pattern:?}: {e}")))
}

/// Normalises a user pattern: strips `./` and a trailing `/`; refuses
/// patterns that leave the project directory.
fn normalise(pattern: &str) -> Result<String, ArchiveError> {
    let p = pattern.trim();
    let p = p.strip_prefix("./").unwrap_or(p).trim_end_matches('/');
    if p.starts_with('/') || Path::new(p).components().any(|c| c == Component::ParentDir) {
        return Err(err(format!(
            "path {pattern:?} is outside the project directory: artifact and cache paths must be relative to $CI_PROJECT_DIR"
        )));
    }
    Ok(if p.is_empty() { ".".into() } else { p.into() })
}

/// Every file, directory and symlink below `root` (relative, `/`-separated),
/// `.git` excluded. Symlinks are listed, never followed.
fn walk(root: &Path) -> Result<Vec<(String, bool)>, ArchiveError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let entries = fs::read_dir(&dir).map_err(|e| io_err("read directory", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err("read directory", &dir, e))?;
            let name = entry.file_name();
            if rel.as_os_str().is_empty() && name == ".git" {
                continue;
            }
            let child = rel.join(&name);
            let kind = entry
                .file_type()
                .map_err(|e| io_err("stat", &entry.path(), e))?;
            let text = child.to_string_lossy().replace('\\', "/");
            if kind.is_dir() {
                out.push((text, true));
                stack.push(child);
            } else {
                out.push((text, false));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Selects the files (and symlinks) to archive, relative to `root`, sorted.
/// A `paths` entry that matches nothing is reported in the second value so
/// the job log can warn about it, as the official runner does.
pub fn select(
    root: &Path,
    paths: &[String],
    exclude: &[String],
    untracked: &[String],
) -> Result<(Vec<String>, Vec<String>), ArchiveError> {
    let all = walk(root)?;
    let under =
        |dir: &str, path: &str| dir == "." || path == dir || path.starts_with(&format!("{dir}/"));
    let mut chosen = BTreeSet::new();
    let mut unmatched = Vec::new();
    for raw in paths {
        let pattern = normalise(raw)?;
        let before = chosen.len();
        let mut matched_any = false;
        if has_glob(&pattern) {
            let m = matcher(&pattern)?;
            let dirs: Vec<&str> = all
                .iter()
                .filter(|(p, _)| m.is_match(p))
                .map(|(p, is_dir)| {
                    matched_any = true;
                    if !is_dir {
                        chosen.insert(p.clone());
                    }
                    p.as_str()
                })
                .collect();
            for (p, is_dir) in &all {
                if !is_dir && dirs.iter().any(|d| under(d, p)) {
                    chosen.insert(p.clone());
                }
            }
        } else {
            for (p, is_dir) in &all {
                if under(&pattern, p) {
                    matched_any = true;
                    if !is_dir {
                        chosen.insert(p.clone());
                    }
                }
            }
        }
        if !matched_any && chosen.len() == before {
            unmatched.push(raw.clone());
        }
    }
    for raw in untracked {
        let p = normalise(raw)?;
        if all.iter().any(|(q, is_dir)| q == &p && !is_dir) {
            chosen.insert(p);
        }
    }
    let excludes = exclude
        .iter()
        .map(|e| normalise(e).and_then(|p| matcher(&p)))
        .collect::<Result<Vec<_>, _>>()?;
    let excluded = |path: &str| {
        let mut prefix = String::new();
        for (i, part) in path.split('/').enumerate() {
            if i > 0 {
                prefix.push('/');
            }
            prefix.push_str(part);
            if excludes.iter().any(|m| m.is_match(&prefix)) {
                return true;
            }
        }
        false
    };
    let files = chosen.into_iter().filter(|p| !excluded(p)).collect();
    Ok((files, unmatched))
}

/// Writes a zip of `files` (relative to `root`) to `out`, keeping unix
/// permissions and storing symlinks as symlinks.
pub fn write_zip<W: Write + Seek>(
    root: &Path,
    files: &[String],
    out: W,
) -> Result<W, ArchiveError> {
    use std::os::unix::fs::PermissionsExt as _;
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new(out);
    for rel in files {
        let path = root.join(rel);
        let meta = fs::symlink_metadata(&path).map_err(|e| io_err("stat", &path, e))?;
        let mode = meta.permissions().mode() & 0o7777;
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(mode);
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(|e| io_err("read link", &path, e))?;
            zip.add_symlink(rel.as_str(), target.to_string_lossy(), opts)
                .map_err(|e| err(format!("failed to add {rel} to the archive: {e}")))?;
        } else if meta.is_file() {
            zip.start_file(rel.as_str(), opts)
                .map_err(|e| err(format!("failed to add {rel} to the archive: {e}")))?;
            let mut f = File::open(&path).map_err(|e| io_err("open", &path, e))?;
            io::copy(&mut f, &mut zip).map_err(|e| io_err("archive", &path, e))?;
        }
    }
    zip.finish()
        .map_err(|e| err(format!("failed to finish the archive: {e}")))
}

/// Extracts a zip into `dest`, refusing entries that would leave it and never
/// writing through a symlink. Returns the number of entries extracted.
pub fn extract_zip<R: Read + Seek>(archive: R, dest: &Path) -> Result<usize, ArchiveError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut zip =
        zip::ZipArchive::new(archive).map_err(|e| err(format!("not a valid zip archive: {e}")))?;
    fs::create_dir_all(dest).map_err(|e| io_err("create directory", dest, e))?;
    let mut links = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| err(format!("corrupt archive entry {i}: {e}")))?;
        let Some(rel) = entry.enclosed_name() else {
            return Err(err(format!(
                "archive entry {:?} would be extracted outside {}",
                entry.name(),
                dest.display()
            )));
        };
        let target = dest.join(&rel);
        ensure_no_symlink_between(dest, &rel)?;
        if entry.is_dir() {
            fs::create_dir_all(&target).map_err(|e| io_err("create directory", &target, e))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err("create directory", parent, e))?;
        }
        if entry.is_symlink() {
            let mut link = String::new();
            entry
                .read_to_string(&mut link)
                .map_err(|e| io_err("read link entry for", &target, e))?;
            links.push((target, link));
            continue;
        }
        if fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
            fs::remove_file(&target).map_err(|e| io_err("replace", &target, e))?;
        }
        let mut f = File::create(&target).map_err(|e| io_err("create", &target, e))?;
        io::copy(&mut entry, &mut f).map_err(|e| io_err("extract", &target, e))?;
        if let Some(mode) = entry.unix_mode() {
            fs::set_permissions(&target, fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| io_err("set permissions of", &target, e))?;
        }
    }
    let count = zip.len();
    // Symlinks last, so no file is ever written through one.
    for (target, link) in links {
        let _ = fs::remove_file(&target);
        std::os::unix::fs::symlink(&link, &target)
            .map_err(|e| io_err("create symlink", &target, e))?;
    }
    Ok(count)
}

fn ensure_no_symlink_between(dest: &Path, rel: &Path) -> Result<(), ArchiveError> {
    let mut here = dest.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        here.push(part);
        if fs::symlink_metadata(&here).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(err(format!(
                "archive entry {} would be written through the symlink {}",
                rel.display(),
                here.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "out/bin/app",
            "out/bin/app.o",
            "out/lib/x.o",
            "out/readme.txt",
            "logs/a.log",
            "logs/deep/b.log",
            "src/main.rs",
            ".git/config",
            "top.txt",
        ] {
            let p = d.path().join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, f).unwrap();
        }
        std::os::unix::fs::symlink("top.txt", d.path().join("link.txt")).unwrap();
        d
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn selection_rules() {
        let d = tree();
        let (files, unmatched) = select(
            d.path(),
            &s(&["out/", "logs/**/*.log", "./top.txt", "missing/", "link.txt"]),
            &s(&["**/*.o", "out/lib"]),
            &[],
        )
        .unwrap();
        assert_eq!(
            files,
            s(&[
                "link.txt",
                "logs/a.log",
                "logs/deep/b.log",
                "out/bin/app",
                "out/readme.txt",
                "top.txt"
            ])
        );
        assert_eq!(unmatched, s(&["missing/"]));
        let (files, _) = select(d.path(), &s(&["*"]), &[], &[]).unwrap();
        assert!(
            files.contains(&"src/main.rs".to_string()),
            "a matched dir is taken whole"
        );
        assert!(
            !files.iter().any(|f| f.starts_with(".git/")),
            ".git is never archived"
        );
        let (files, _) = select(d.path(), &[], &[], &s(&["src/main.rs", "nope"])).unwrap();
        assert_eq!(files, s(&["src/main.rs"]));
    }

    #[test]
    fn refuses_paths_outside_the_project() {
        let d = tree();
        for bad in ["../etc", "/etc/passwd", "out/../../x"] {
            let e = select(d.path(), &s(&[bad]), &[], &[]).unwrap_err();
            assert!(e.0.contains("outside the project directory"), "{e}");
        }
    }

    #[test]
    fn zip_round_trip_keeps_modes_and_symlinks() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = tree();
        fs::set_permissions(
            d.path().join("out/bin/app"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let (files, _) = select(d.path(), &s(&["out", "link.txt", "top.txt"]), &[], &[]).unwrap();
        let buf = write_zip(d.path(), &files, Cursor::new(Vec::new()))
            .unwrap()
            .into_inner();
        let to = tempfile::tempdir().unwrap();
        assert_eq!(
            extract_zip(Cursor::new(buf), to.path()).unwrap(),
            files.len()
        );
        assert_eq!(
            fs::read_to_string(to.path().join("out/bin/app")).unwrap(),
            "out/bin/app"
        );
        let mode = fs::metadata(to.path().join("out/bin/app"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs::read_link(to.path().join("link.txt")).unwrap(),
            Path::new("top.txt")
        );
        assert_eq!(
            fs::read_to_string(to.path().join("link.txt")).unwrap(),
            "top.txt"
        );
    }

    #[test]
    fn extraction_refuses_traversal() {
        use zip::write::SimpleFileOptions;
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("../evil.txt", SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"x").unwrap();
        let buf = w.finish().unwrap().into_inner();
        let to = tempfile::tempdir().unwrap();
        let e = extract_zip(Cursor::new(buf), &to.path().join("dest")).unwrap_err();
        assert!(e.0.contains("outside"), "{e}");
        assert!(!to.path().join("evil.txt").exists());
    }

    #[test]
    fn extraction_never_writes_through_a_symlink() {
        use zip::write::SimpleFileOptions;
        let outside = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), to.path().join("dir")).unwrap();
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("dir/owned.txt", SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"x").unwrap();
        let buf = w.finish().unwrap().into_inner();
        assert!(extract_zip(Cursor::new(buf), to.path()).is_err());
        assert!(!outside.path().join("owned.txt").exists());
    }
}
