//! The editable config.toml document: every change to the file goes through
//! [`ConfigDocument`], which edits a `toml_edit` document so that comments,
//! key order, formatting and keys Forerunner does not know are kept byte for
//! byte, and saves it atomically (temp file in the same directory, fsync,
//! rename; mode 0600, directory 0700).
//!
//! New `[[runners]]` entries are appended as text in the official runner's
//! layout (two-space indentation, its key order), so a file that only gains
//! an entry changes only at its end.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

use crate::config::{Config, ConfigError};

/// What a freshly created config.toml holds, as the official runner writes it.
const NEW_FILE: &str = "concurrent = 1\ncheck_interval = 0\nshutdown_timeout = 0\n\n[session_server]\n  session_timeout = 1800\n";

/// A new `[[runners]]` entry: top-level keys, then `[runners.<section>]`
/// tables, each in the order given.
#[derive(Debug, Clone, Default)]
pub struct NewRunner {
    /// `key = value` pairs of the entry, in order.
    pub keys: Vec<(String, Value)>,
    /// Sub-tables (`"docker"`, `"cache"`, `"cache.s3"`, …) with their pairs.
    pub sections: Vec<(String, Vec<(String, Value)>)>,
}

impl NewRunner {
    /// Renders the entry as the official runner lays it out.
    pub(crate) fn render(&self) -> String {
        let mut out = String::from("[[runners]]\n");
        for (k, v) in &self.keys {
            out.push_str(&format!("  {k} = {}\n", render_value(v)));
        }
        for (section, pairs) in &self.sections {
            let depth = section.matches('.').count();
            let indent = "  ".repeat(depth + 1);
            out.push_str(&format!("{indent}[runners.{section}]\n"));
            for (k, v) in pairs {
                out.push_str(&format!("{indent}  {k} = {}\n", render_value(v)));
            }
        }
        out
    }
}

/// Keys a template never provides: the identity of the new runner.
const IDENTITY_KEYS: &[&str] = &[
    "name",
    "url",
    "id",
    "token",
    "token_obtained_at",
    "token_expires_at",
];

impl NewRunner {
    /// Renders the entry with the keys it lacks filled from `template` (the
    /// `[[runners]]` table of a `--template-config` file), as the official
    /// runner merges templates: values given on the command line win, the
    /// template fills the rest (sub-tables merged key by key), and the
    /// template's identity keys (`token`, `url`, …) are ignored.
    fn render_with_template(&self, template: &Table) -> String {
        let mut doc: DocumentMut = self
            .render()
            .parse()
            .expect("a rendered runner entry is valid TOML");
        if let Some(entry) = doc
            .get_mut("runners")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|a| a.get_mut(0))
        {
            merge_missing(entry, template, true);
            let mut next = 1;
            renumber(entry, &mut next);
        }
        doc.to_string()
    }
}

fn merge_missing(ours: &mut Table, template: &Table, top: bool) {
    for (key, item) in template.iter() {
        if top && IDENTITY_KEYS.contains(&key) {
            continue;
        }
        match (ours.get_mut(key), item) {
            (None, _) => {
                ours.insert(key, item.clone());
                if let (Some(mut k), Some(tk)) = (ours.key_mut(key), template.key(key)) {
                    *k.leaf_decor_mut() = tk.leaf_decor().clone();
                }
            }
            (Some(Item::Table(mine)), Item::Table(theirs)) => merge_missing(mine, theirs, false),
            _ => {}
        }
    }
}

/// Gives `table` and its descendants consecutive document positions in
/// depth-first order, so merged tables print under their parent.
fn renumber(table: &mut Table, next: &mut usize) {
    table.set_position(*next);
    *next += 1;
    for (_, item) in table.iter_mut() {
        match item {
            Item::Table(t) => renumber(t, next),
            Item::ArrayOfTables(a) => {
                for t in a.iter_mut() {
                    renumber(t, next);
                }
            }
            _ => {}
        }
    }
}

/// Reads a `--template-config` file: it must hold exactly one `[[runners]]`.
pub fn load_template(path: &Path) -> Result<Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let doc = ConfigDocument::parse_doc(path, &text)?;
    let runners = doc.get("runners").and_then(Item::as_array_of_tables);
    match runners {
        Some(a) if a.len() == 1 => Ok(a.get(0).cloned().unwrap_or_default()),
        other => Err(ConfigError::Parse {
            path: path.to_owned(),
            line: None,
            key: Some("runners".to_owned()),
            message: format!(
                "a template config must contain exactly one [[runners]] section, found {}",
                other.map_or(0, ArrayOfTables::len)
            ),
        }),
    }
}

fn render_value(v: &Value) -> String {
    let mut v = v.clone();
    v.decor_mut().clear();
    v.to_string()
}

/// A TOML datetime value for `t`, or Go's zero time for `None` (what the
/// official runner writes for a token that does not expire).
pub fn datetime_value(t: Option<DateTime<Utc>>) -> Value {
    let text = t.map_or_else(
        || "0001-01-01T00:00:00Z".to_owned(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    let dt: toml_edit::Datetime = text.parse().unwrap_or_else(|_| {
        "0001-01-01T00:00:00Z"
            .parse()
            .expect("Go's zero time is a valid TOML datetime")
    });
    Value::from(dt)
}

/// config.toml as an editable document.
#[derive(Debug, Clone)]
pub struct ConfigDocument {
    path: PathBuf,
    doc: DocumentMut,
    existed: bool,
}

impl ConfigDocument {
    /// Reads `path`; a missing file gives the official runner's default
    /// content (not written until [`ConfigDocument::save`]).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (text, existed) = match std::fs::read_to_string(path) {
            Ok(text) => (text, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (NEW_FILE.to_owned(), false),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let doc = Self::parse_doc(path, &text)?;
        // Validate the typed view too, so edits never start from a file the
        // job loop could not read.
        Config::parse(path, &text, &|name| std::env::var(name).ok())?;
        Ok(Self {
            path: path.to_owned(),
            doc,
            existed,
        })
    }

    fn parse_doc(path: &Path, text: &str) -> Result<DocumentMut, ConfigError> {
        text.parse::<DocumentMut>()
            .map_err(|err| ConfigError::parse_at(path, text, err.span(), err.message()))
    }

    /// The file this document is saved to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file existed when loaded.
    pub fn existed(&self) -> bool {
        self.existed
    }

    /// The document text as it would be saved.
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// The typed view of the current text (`$VAR` expanded from the process environment).
    pub fn typed(&self) -> Result<Config, ConfigError> {
        Config::parse(&self.path, &self.text(), &|name| std::env::var(name).ok())
    }

    fn runners(&self) -> Option<&ArrayOfTables> {
        self.doc.get("runners").and_then(Item::as_array_of_tables)
    }

    fn runners_mut(&mut self) -> Option<&mut ArrayOfTables> {
        self.doc
            .get_mut("runners")
            .and_then(Item::as_array_of_tables_mut)
    }

    /// Number of `[[runners]]` entries.
    pub fn runner_count(&self) -> usize {
        self.runners().map_or(0, ArrayOfTables::len)
    }

    /// Appends a `[[runners]]` entry at the end of the file.
    pub fn append_runner(&mut self, runner: &NewRunner) -> Result<(), ConfigError> {
        self.append_rendered(&runner.render())
    }

    /// Appends a `[[runners]]` entry completed from a template's
    /// `[[runners]]` table (see [`load_template`]).
    pub fn append_runner_with_template(
        &mut self,
        runner: &NewRunner,
        template: &Table,
    ) -> Result<(), ConfigError> {
        self.append_rendered(&runner.render_with_template(template))
    }

    fn append_rendered(&mut self, rendered: &str) -> Result<(), ConfigError> {
        if self.doc.get("runners").is_some() && self.runners().is_none() {
            return Err(ConfigError::Write {
                path: self.path.clone(),
                message: "`runners` is not an array of `[[runners]]` tables; fix the file by hand"
                    .to_owned(),
            });
        }
        let mut text = self.text();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(rendered);
        self.doc = Self::parse_doc(&self.path, &text)?;
        Ok(())
    }

    /// Removes the entries at `indices` (0-based, any order).
    pub fn remove_runners(&mut self, indices: &[usize]) {
        let mut sorted = indices.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if let Some(runners) = self.runners_mut() {
            for &i in sorted.iter().rev() {
                if i < runners.len() {
                    runners.remove(i);
                }
            }
        }
    }

    /// Sets `key` of entry `index` (0-based) to `value`, keeping the old
    /// value's surrounding whitespace and comment. `section` is `None` for
    /// the entry itself or a dotted sub-table path (`"docker"`).
    pub fn set_runner_value(
        &mut self,
        index: usize,
        section: Option<&str>,
        key: &str,
        value: Value,
    ) -> Result<(), ConfigError> {
        let path = self.path.clone();
        let missing = || ConfigError::Write {
            path: path.clone(),
            message: format!("there is no [[runners]] entry #{}", index + 1),
        };
        let runners = self.runners_mut().ok_or_else(missing)?;
        let entry = runners.get_mut(index).ok_or_else(missing)?;
        let indent = key_indent(entry);
        let mut table = entry;
        if let Some(section) = section {
            for part in section.split('.') {
                let item = table
                    .entry(part)
                    .or_insert_with(|| Item::Table(Table::new()));
                table = item.as_table_mut().ok_or_else(|| ConfigError::Write {
                    path: path.clone(),
                    message: format!(
                        "`{part}` in [[runners]] entry #{} is not a table",
                        index + 1
                    ),
                })?;
            }
        }
        set_keeping_decor(table, key, value, indent.as_deref());
        Ok(())
    }

    /// Replaces `old_token` by `new_token` in every entry holding it (as
    /// after a token reset), with `token_obtained_at = obtained_at` and the
    /// new expiry (Go's zero time when it does not expire). Returns how many
    /// entries changed. The `run` loop's automatic rotation uses this, then
    /// [`ConfigDocument::save`].
    pub fn replace_token(
        &mut self,
        old_token: &str,
        new_token: &str,
        obtained_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<usize, ConfigError> {
        let indices: Vec<usize> = self
            .runners()
            .map(|aot| {
                aot.iter()
                    .enumerate()
                    .filter(|(_, t)| t.get("token").and_then(Item::as_str) == Some(old_token))
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default();
        for &i in &indices {
            self.set_runner_value(i, None, "token", Value::from(new_token))?;
            self.set_runner_value(
                i,
                None,
                "token_obtained_at",
                datetime_value(Some(obtained_at)),
            )?;
            self.set_runner_value(i, None, "token_expires_at", datetime_value(expires_at))?;
        }
        Ok(indices.len())
    }

    /// Writes the document atomically (see [`write_atomic`]).
    pub fn save(&mut self) -> Result<(), ConfigError> {
        write_atomic(&self.path, self.text().as_bytes())?;
        self.existed = true;
        Ok(())
    }
}

/// The indentation of the last key of `table` (without any comment lines
/// before it), to indent inserted keys alike.
fn key_indent(table: &Table) -> Option<String> {
    table
        .iter()
        .filter(|(_, item)| item.is_value())
        .last()
        .and_then(|(k, _)| {
            table.key(k).and_then(|key| {
                key.leaf_decor()
                    .prefix()
                    .and_then(|p| p.as_str())
                    .map(|p| p.rsplit('\n').next().unwrap_or_default())
                    .filter(|p| p.chars().all(|c| c == ' ' || c == '\t'))
                    .map(str::to_owned)
            })
        })
}

fn set_keeping_decor(table: &mut Table, key: &str, mut value: Value, indent: Option<&str>) {
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        Some(item) => *item = Item::Value(value),
        None => {
            table.insert(key, Item::Value(value));
            if let (Some(indent), Some(mut k)) = (indent, table.key_mut(key)) {
                k.leaf_decor_mut().set_prefix(indent);
            }
        }
    }
}

/// Writes `contents` to `path` so that a crash at any point leaves either the
/// old file or the new one: a temp file in the same directory (mode 0600) is
/// written and fsynced, renamed over `path`, and the directory is fsynced. A
/// missing directory is created with mode 0700.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), ConfigError> {
    let fail = |what: &str, e: std::io::Error| ConfigError::Write {
        path: path.to_owned(),
        message: format!("{what}: {e} (check that the directory exists and is writable)"),
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| fail("failed to create the directory", e))?;
    }
    let file_name = path.file_name().map_or_else(
        || "config.toml".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)
        .map_err(|e| fail("failed to create a temporary file", e))?;
    tmp.write_all(contents)
        .map_err(|e| fail("failed to write a temporary file", e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| fail("failed to flush a temporary file", e))?;
    tmp.persist(path)
        .map_err(|e| fail("failed to replace the file", e.error))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        // Makes the rename durable; not all filesystems support it.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# top comment
concurrent = 2 # trailing
unknown_global = "kept"

[[runners]]
  # about a
  name = "a"
  url = "https://gitlab.example.com/"
  token = "glrt-aaaaaaaaaaaaaaaaaaaa" # secret
  executor = "shell"
  mystery = [1, 2]
  [runners.docker]
    image = "alpine"

[[runners]]
  name = "b"
  url = "https://gitlab.example.com"
  token = "glrt-bbbbbbbbbbbbbbbbbbbb"
  executor = "docker"

[session_server]
  session_timeout = 1800
"#;

    fn doc() -> (tempfile::TempDir, ConfigDocument) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, FILE).unwrap();
        let d = ConfigDocument::load(&path).unwrap();
        (dir, d)
    }

    #[test]
    fn untouched_document_is_byte_identical() {
        let (_dir, d) = doc();
        assert_eq!(d.text(), FILE);
        assert_eq!(d.runner_count(), 2);
    }

    #[test]
    fn removing_an_entry_changes_nothing_else() {
        let (_dir, mut d) = doc();
        d.remove_runners(&[1]);
        let expected = FILE.replace(
            "[[runners]]\n  name = \"b\"\n  url = \"https://gitlab.example.com\"\n  token = \"glrt-bbbbbbbbbbbbbbbbbbbb\"\n  executor = \"docker\"\n\n",
            "",
        );
        assert_eq!(d.text(), expected);
    }

    #[test]
    fn setting_a_value_keeps_its_comment() {
        let (_dir, mut d) = doc();
        d.set_runner_value(0, None, "token", Value::from("glrt-new"))
            .unwrap();
        d.set_runner_value(0, None, "id", Value::from(7)).unwrap();
        d.set_runner_value(0, Some("docker"), "image", Value::from("debian"))
            .unwrap();
        let text = d.text();
        assert!(text.contains("  token = \"glrt-new\" # secret\n"), "{text}");
        assert!(text.contains("  mystery = [1, 2]\n  id = 7\n"), "{text}");
        assert!(text.contains("    image = \"debian\"\n"), "{text}");
        assert!(text.starts_with("# top comment\nconcurrent = 2 # trailing\n"));
    }

    #[test]
    fn appending_adds_text_at_the_end_only() {
        let (_dir, mut d) = doc();
        let new = NewRunner {
            keys: vec![
                ("name".into(), Value::from("c")),
                ("token_expires_at".into(), datetime_value(None)),
            ],
            sections: vec![("docker".into(), vec![("image".into(), Value::from("x"))])],
        };
        d.append_runner(&new).unwrap();
        let text = d.text();
        assert_eq!(
            text,
            format!("{FILE}\n[[runners]]\n  name = \"c\"\n  token_expires_at = 0001-01-01T00:00:00Z\n  [runners.docker]\n    image = \"x\"\n")
        );
        let typed = d.typed().unwrap();
        assert_eq!(typed.runners.len(), 3);
        assert_eq!(
            typed.runners[2].docker.as_ref().unwrap().image.as_deref(),
            Some("x")
        );
    }

    #[test]
    fn replacing_a_token_updates_every_copy() {
        let (_dir, mut d) = doc();
        let now = DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let n = d
            .replace_token("glrt-aaaaaaaaaaaaaaaaaaaa", "glrt-rotated", now, None)
            .unwrap();
        assert_eq!(n, 1);
        let text = d.text();
        assert!(
            text.contains("  token = \"glrt-rotated\" # secret\n"),
            "{text}"
        );
        assert!(
            text.contains("  token_obtained_at = 2025-01-02T03:04:05Z\n"),
            "{text}"
        );
        let typed = d.typed().unwrap();
        assert_eq!(typed.runners[0].token_obtained_at, Some(now));
        assert!(typed.runners[0].token_expires_at.is_none());
    }

    #[test]
    fn templates_fill_what_the_flags_left_out() {
        let (dir, mut d) = doc();
        let tpl = dir.path().join("template.toml");
        std::fs::write(
            &tpl,
            r#"[[runners]]
  name = "ignored"
  token = "ignored"
  output_limit = 8192
  executor = "custom"
  [runners.docker]
    image = "ignored:latest"
    memory = "1g"
    [[runners.docker.services]]
      name = "postgres:16"
  [runners.cache]
    Type = "s3"
    [runners.cache.s3]
      BucketName = "cache"
"#,
        )
        .unwrap();
        let template = load_template(&tpl).unwrap();
        let new = NewRunner {
            keys: vec![
                ("name".into(), Value::from("mine")),
                ("token".into(), Value::from("glrt-mine")),
                ("executor".into(), Value::from("docker")),
            ],
            sections: vec![(
                "docker".into(),
                vec![("image".into(), Value::from("alpine"))],
            )],
        };
        d.append_runner_with_template(&new, &template).unwrap();
        let typed = d.typed().unwrap();
        let r = typed.runners.last().unwrap();
        assert_eq!(
            (r.name.as_str(), r.token.as_str(), r.executor.as_str()),
            ("mine", "glrt-mine", "docker")
        );
        assert_eq!(r.output_limit, Some(8192));
        let docker = r.docker.as_ref().unwrap();
        assert_eq!(docker.image.as_deref(), Some("alpine"));
        assert_eq!(docker.memory.as_deref(), Some("1g"));
        let cache = r.cache.as_ref().unwrap();
        assert_eq!(
            cache.s3.as_ref().unwrap().bucket_name.as_deref(),
            Some("cache")
        );
        let text = d.text();
        assert!(text.starts_with(FILE), "{text}");
        let tail = &text[FILE.len()..];
        let docker_at = tail.find("[runners.docker]").unwrap();
        let services_at = tail.find("[[runners.docker.services]]").unwrap();
        let cache_at = tail.find("[runners.cache]").unwrap();
        assert!(tail.starts_with("\n[[runners]]\n"), "{tail}");
        assert!(docker_at < services_at && services_at < cache_at, "{tail}");

        std::fs::write(&tpl, "concurrent = 1\n").unwrap();
        let err = load_template(&tpl).unwrap_err().to_string();
        assert!(err.contains("exactly one [[runners]]"), "{err}");
    }

    #[test]
    fn save_is_0600_and_reloads() {
        let (dir, mut d) = doc();
        d.remove_runners(&[0]);
        d.save().unwrap();
        let path = dir.path().join("config.toml");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = ConfigDocument::load(&path).unwrap();
        assert_eq!(again.runner_count(), 1);
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn missing_file_starts_from_official_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.toml");
        let mut d = ConfigDocument::load(&path).unwrap();
        assert!(!d.existed());
        d.save().unwrap();
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        let typed = Config::load(&path).unwrap();
        assert_eq!(typed.concurrent(), 1);
        assert_eq!(typed.session_server.unwrap().session_timeout, Some(1800));
    }
}
