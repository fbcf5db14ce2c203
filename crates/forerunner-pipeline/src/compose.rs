//! Composition: `include`, `extends` and `!reference`, in GitLab's order.
//!
//! GitLab builds the effective configuration in three steps before it
//! validates anything: included files are deep-merged under the main file
//! (the main file wins), then every `extends` is resolved by deep-merging
//! the parents (hashes merge, everything else is replaced), then
//! `!reference` tags are replaced by the values they point at. This module
//! performs those steps on [`Node`] trees and reports problems; it does not
//! know which keys are valid, the linter does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::diagnostic::{join_key, Mark, Sink};
use crate::yaml::{self, Key, Node, Value};

/// Most files one pipeline may include, as GitLab.
const MAX_INCLUDES: usize = 150;
/// Deepest chain of nested includes, as GitLab.
const MAX_INCLUDE_DEPTH: usize = 100;
/// Deepest `extends` chain, as GitLab.
const MAX_EXTENDS_DEPTH: usize = 10;
/// Deepest chain of `!reference`s pointing at `!reference`s, as GitLab.
const MAX_REFERENCE_DEPTH: usize = 10;
/// Most nodes the composed document may grow to.
const MAX_COMPOSED_NODES: usize = yaml::MAX_NODES;

/// Reads files of the repository for `include: local`.
///
/// Paths are relative to the repository root, without a leading `/`.
/// Return `None` when the file does not exist.
pub trait FileReader {
    /// The content of the file at `path`, or `None` if there is none.
    fn read(&self, path: &str) -> Option<String>;

    /// Every file path of the repository, for wildcard includes such as
    /// `include: ci/*.yml`; `None` (the default) when the reader cannot
    /// list files, which makes wildcard includes an error.
    fn files(&self) -> Option<Vec<String>> {
        None
    }
}

impl<F: Fn(&str) -> Option<String>> FileReader for F {
    fn read(&self, path: &str) -> Option<String> {
        self(path)
    }
}

impl FileReader for HashMap<String, String> {
    fn read(&self, path: &str) -> Option<String> {
        self.get(path).cloned()
    }

    fn files(&self) -> Option<Vec<String>> {
        Some(self.keys().cloned().collect())
    }
}

/// A reader for pipelines that include nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFiles;

impl FileReader for NoFiles {
    fn read(&self, _path: &str) -> Option<String> {
        None
    }
}

/// Deep merge as Rails' `Hash#deep_merge`: hashes merge key by key, any
/// other value in `over` replaces the one in `base`.
pub(crate) fn deep_merge(base: &Node, over: &Node) -> Node {
    match (&base.value, &over.value) {
        (Value::Map(b), Value::Map(o)) => {
            let over_index: HashMap<&str, usize> = o
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.name.as_str(), i))
                .collect();
            let base_keys: HashSet<&str> = b.iter().map(|(k, _)| k.name.as_str()).collect();
            let mut entries: Vec<(Key, Node)> = Vec::with_capacity(b.len() + o.len());
            for (k, v) in b {
                match over_index.get(k.name.as_str()).map(|&i| &o[i]) {
                    Some((ok, ov)) => entries.push((ok.clone(), deep_merge(v, ov))),
                    None => entries.push((k.clone(), v.clone())),
                }
            }
            for (k, v) in o {
                if !base_keys.contains(k.name.as_str()) {
                    entries.push((k.clone(), v.clone()));
                }
            }
            Node::new(Value::Map(entries), over.mark.clone())
        }
        _ => over.clone(),
    }
}

struct Includer<'a> {
    reader: &'a dyn FileReader,
    sink: &'a mut Sink,
    included: Vec<String>,
    stack: Vec<String>,
}

/// Loads `source` and everything it includes, merged.
pub(crate) fn load(
    file: &str,
    source: &str,
    reader: &dyn FileReader,
    sink: &mut Sink,
) -> Option<Node> {
    let name: Arc<str> = Arc::from(file);
    let root = yaml::parse(&name, source, sink)?;
    let mut includer = Includer {
        reader,
        sink,
        included: Vec::new(),
        stack: vec![normalize_path(file)],
    };
    Some(includer.process(root, 0))
}

fn normalize_path(path: &str) -> String {
    let mut p = path.trim();
    while let Some(rest) = p.strip_prefix("./").or_else(|| p.strip_prefix('/')) {
        p = rest;
    }
    p.to_owned()
}

impl Includer<'_> {
    /// Replaces the `include` key of `root` by the merged included files.
    fn process(&mut self, root: Node, depth: usize) -> Node {
        let Value::Map(entries) = &root.value else {
            return root;
        };
        let Some(pos) = entries.iter().position(|(k, _)| k.name == "include") else {
            return root;
        };
        let mut entries = entries.clone();
        let (_, include) = entries.remove(pos);
        let main = Node::new(Value::Map(entries), root.mark.clone());
        let mut merged: Option<Node> = None;
        for (path, mark, ipath) in self.local_paths(&include) {
            let Some(node) = self.include_one(&path, &mark, &ipath, depth) else {
                continue;
            };
            merged = Some(match merged {
                None => node,
                Some(acc) => deep_merge(&acc, &node),
            });
        }
        match merged {
            Some(acc) => deep_merge(&acc, &main),
            None => main,
        }
    }

    fn include_one(&mut self, path: &str, mark: &Mark, ipath: &str, depth: usize) -> Option<Node> {
        if self.stack.iter().any(|p| p == path) {
            self.sink.error(
                mark,
                ipath,
                format!("include `{path}` includes itself through a chain of includes; remove the cycle"),
            );
            return None;
        }
        if self.included.iter().any(|p| p == path) {
            // GitLab ignores a file included twice.
            return None;
        }
        if depth + 1 > MAX_INCLUDE_DEPTH {
            self.sink.error(
                mark,
                ipath,
                format!("includes are nested more than {MAX_INCLUDE_DEPTH} levels deep"),
            );
            return None;
        }
        if self.included.len() >= MAX_INCLUDES {
            self.sink.error(
                mark,
                ipath,
                format!("more than {MAX_INCLUDES} files are included; merge some of them"),
            );
            return None;
        }
        if !(path.ends_with(".yml") || path.ends_with(".yaml")) {
            self.sink.error(
                mark,
                ipath,
                format!(
                    "included file `{path}` does not have a .yml or .yaml extension; rename it"
                ),
            );
            return None;
        }
        self.included.push(path.to_owned());
        let Some(text) = self.reader.read(path) else {
            self.sink.error(
                mark,
                ipath,
                format!("local file `{path}` does not exist; check the path, which is relative to the repository root"),
            );
            return None;
        };
        let name: Arc<str> = Arc::from(path);
        let node = yaml::parse(&name, &text, self.sink)?;
        match &node.value {
            Value::Map(_) => {}
            Value::Null => return None,
            _ => {
                self.sink.error(
                    &node.mark,
                    "",
                    format!(
                        "included file `{path}` must contain a hash of jobs and keywords, found {}",
                        node.type_name()
                    ),
                );
                return None;
            }
        }
        self.stack.push(path.to_owned());
        let node = self.process(node, depth + 1);
        self.stack.pop();
        Some(node)
    }

    /// The local paths named by an `include` value, in order; other kinds
    /// of includes are reported.
    fn local_paths(&mut self, include: &Node) -> Vec<(String, Mark, String)> {
        let items: Vec<(String, &Node)> = match &include.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("include[{i}]"), n))
                .collect(),
            _ => vec![("include".to_owned(), include)],
        };
        let mut out = Vec::new();
        for (ipath, item) in items {
            match &item.value {
                Value::Str(s) if s.starts_with("https://") || s.starts_with("http://") => {
                    self.unsupported(item, &ipath, "remote");
                }
                Value::Str(s) => self.push_local(&mut out, s, &item.mark, &ipath),
                Value::Map(entries) => {
                    let mut local = None;
                    for (k, v) in entries {
                        let kpath = join_key(&ipath, &k.name);
                        match k.name.as_str() {
                            "local" => match &v.value {
                                Value::Str(s) => local = Some((s.clone(), v.mark.clone())),
                                _ => self.sink.error(
                                    &v.mark,
                                    &kpath,
                                    format!("`include:local` must be a string path, found {}", v.type_name()),
                                ),
                            },
                            "remote" | "template" | "project" | "component" | "artifact" => {
                                self.unsupported(item, &ipath, &k.name);
                            }
                            "file" | "ref" | "job" | "inputs" | "cache" | "integrity" => {}
                            "rules" => self.sink.warning(
                                &k.mark,
                                &kpath,
                                "`include:rules` is not evaluated: the file is always included",
                            ),
                            other => self.sink.error(
                                &k.mark,
                                &kpath,
                                format!("unknown include key `{other}`; use `local: path/to/file.yml`"),
                            ),
                        }
                    }
                    if let Some((path, mark)) = local {
                        self.push_local(&mut out, &path, &mark, &join_key(&ipath, "local"));
                    }
                }
                _ => self.sink.error(
                    &item.mark,
                    &ipath,
                    format!(
                        "`include` takes a path, a hash such as `local: ci/build.yml` or a list of them, found {}",
                        item.type_name()
                    ),
                ),
            }
        }
        out
    }

    fn push_local(
        &mut self,
        out: &mut Vec<(String, Mark, String)>,
        path: &str,
        mark: &Mark,
        ipath: &str,
    ) {
        if path.contains('$') {
            self.sink.error(
                mark,
                ipath,
                format!("variables in include paths (`{path}`) are not supported; write the path literally"),
            );
            return;
        }
        if path.contains(['*', '?', '[']) {
            let Some(files) = self.reader.files() else {
                self.sink.error(
                    mark,
                    ipath,
                    format!(
                        "wildcard includes (`{path}`) need a file listing, which this caller does not provide; \
                         list the files one by one"
                    ),
                );
                return;
            };
            let pattern = normalize_path(path);
            let mut matched: Vec<String> = files
                .into_iter()
                .filter(|f| crate::glob::matches(&pattern, f))
                .filter(|f| f.ends_with(".yml") || f.ends_with(".yaml"))
                .collect();
            matched.sort();
            if matched.is_empty() {
                self.sink.error(
                    mark,
                    ipath,
                    format!("wildcard include `{path}` matches no file; check the pattern"),
                );
            }
            for m in matched {
                out.push((m, mark.clone(), ipath.to_owned()));
            }
            return;
        }
        out.push((normalize_path(path), mark.clone(), ipath.to_owned()));
    }

    fn unsupported(&mut self, item: &Node, ipath: &str, kind: &str) {
        self.sink.error(
            &item.mark,
            ipath,
            format!(
                "`include:{kind}` is not supported by forerunner; copy the file into the repository and use `include: local`"
            ),
        );
    }
}

/// Resolves `extends` of every top-level entry, in place. Returns false
/// when the result would be too large to process.
pub(crate) fn resolve_extends(root: &mut Node, sink: &mut Sink) -> bool {
    let Value::Map(entries) = &root.value else {
        return true;
    };
    let names: Vec<String> = entries.iter().map(|(k, _)| k.name.clone()).collect();
    let original = entries.clone();
    let mut resolved: HashMap<String, (Node, usize)> = HashMap::new();
    let mut total = 0usize;
    for name in &names {
        let mut stack = Vec::new();
        if let Some((node, _)) = resolve_entry(name, &original, &mut resolved, &mut stack, sink) {
            total = total.saturating_add(node.size(MAX_COMPOSED_NODES + 1));
            if total > MAX_COMPOSED_NODES {
                sink.error(
                    &node.mark,
                    &job_path(name),
                    "`extends` makes the configuration too large to process; share less through `extends`",
                );
                return false;
            }
        }
    }
    if let Value::Map(entries) = &mut root.value {
        for (k, v) in entries.iter_mut() {
            if let Some((node, _)) = resolved.remove(&k.name) {
                *v = node;
            }
        }
    }
    true
}

fn resolve_entry(
    name: &str,
    original: &[(Key, Node)],
    resolved: &mut HashMap<String, (Node, usize)>,
    stack: &mut Vec<String>,
    sink: &mut Sink,
) -> Option<(Node, usize)> {
    if let Some(done) = resolved.get(name) {
        return Some(done.clone());
    }
    let (_, node) = original.iter().find(|(k, _)| k.name == name)?;
    let Some(extends) = node.get("extends") else {
        return Some((node.clone(), 0));
    };
    let path = join_key(&join_key("jobs", name), "extends");
    if stack.iter().any(|s| s == name) {
        sink.error(
            &extends.mark,
            &path,
            format!(
                "circular dependency detected in `extends`: {} -> {name}; remove one of the links",
                stack.join(" -> ")
            ),
        );
        return None;
    }
    if stack.len() >= MAX_EXTENDS_DEPTH {
        sink.error(
            &extends.mark,
            &path,
            format!(
                "`extends` is nested more than {MAX_EXTENDS_DEPTH} levels deep; flatten the chain"
            ),
        );
        return None;
    }
    let parents: Vec<(String, Mark)> = match &extends.value {
        Value::Str(s) => vec![(s.clone(), extends.mark.clone())],
        Value::Seq(items) => items
            .iter()
            .filter_map(|i| match &i.value {
                Value::Str(s) => Some((s.clone(), i.mark.clone())),
                _ => {
                    sink.error(
                        &i.mark,
                        &path,
                        format!(
                            "`extends` entries must be job names, found {}",
                            i.type_name()
                        ),
                    );
                    None
                }
            })
            .collect(),
        _ => {
            sink.error(
                &extends.mark,
                &path,
                format!(
                    "`extends` must be a job name or a list of job names, found {}",
                    extends.type_name()
                ),
            );
            vec![]
        }
    };
    stack.push(name.to_owned());
    let mut merged: Option<Node> = None;
    let mut depth = 1;
    for (parent, mark) in parents {
        let Some(base) = original
            .iter()
            .find(|(k, _)| k.name == parent)
            .map(|(_, n)| n)
        else {
            sink.error(
                &mark,
                &path,
                format!("`{name}` extends `{parent}`, which is not defined; check the name or define the hidden job `.{}`", parent.trim_start_matches('.')),
            );
            continue;
        };
        if !matches!(base.value, Value::Map(_)) {
            sink.error(
                &mark,
                &path,
                format!("`{name}` extends `{parent}`, which is not a hash"),
            );
            continue;
        }
        let Some((base, parent_depth)) = resolve_entry(&parent, original, resolved, stack, sink)
        else {
            continue;
        };
        depth = depth.max(parent_depth + 1);
        merged = Some(match merged {
            None => base,
            Some(acc) => deep_merge(&acc, &base),
        });
    }
    stack.pop();
    let own = without_key(node, "extends");
    let result = match merged {
        Some(base) => deep_merge(&without_key(&base, "extends"), &own),
        None => own,
    };
    if depth > MAX_EXTENDS_DEPTH {
        sink.error(
            &extends.mark,
            &path,
            format!(
                "`extends` is nested {depth} levels deep, more than GitLab's limit of {MAX_EXTENDS_DEPTH}; flatten the chain"
            ),
        );
    }
    resolved.insert(name.to_owned(), (result.clone(), depth));
    Some((result, depth))
}

fn without_key(node: &Node, key: &str) -> Node {
    match &node.value {
        Value::Map(entries) => Node::new(
            Value::Map(
                entries
                    .iter()
                    .filter(|(k, _)| k.name != key)
                    .cloned()
                    .collect(),
            ),
            node.mark.clone(),
        ),
        _ => node.clone(),
    }
}

/// Replaces every `!reference` by a copy of the value it points at.
pub(crate) fn resolve_references(root: &mut Node, sink: &mut Sink) {
    let lookup = root.clone();
    let mut budget = MAX_COMPOSED_NODES.saturating_sub(root.size(MAX_COMPOSED_NODES));
    let mut over_budget = false;
    resolve_in(root, &lookup, "", 0, &mut budget, &mut over_budget, sink);
}

fn resolve_in(
    node: &mut Node,
    root: &Node,
    path: &str,
    depth: usize,
    budget: &mut usize,
    over: &mut bool,
    sink: &mut Sink,
) {
    match &mut node.value {
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve_in(
                    item,
                    root,
                    &format!("{path}[{i}]"),
                    depth,
                    budget,
                    over,
                    sink,
                );
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                let p = if path.is_empty() && depth == 0 {
                    job_path(&k.name)
                } else {
                    join_key(path, &k.name)
                };
                resolve_in(v, root, &p, depth, budget, over, sink);
            }
        }
        Value::Reference(items) => {
            let replacement = lookup_reference(items, &node.mark, root, path, depth, sink);
            // A failed reference becomes an empty list, so that a script
            // using it does not also report a wrong line type.
            let mut replacement =
                replacement.unwrap_or_else(|| Node::new(Value::Seq(Vec::new()), node.mark.clone()));
            let size = replacement.size(*budget + 1);
            if size > *budget {
                if !*over {
                    sink.error(
                        &node.mark,
                        path,
                        "`!reference` values expand to too large a document; reference smaller values",
                    );
                }
                *over = true;
                *node = Node::new(Value::Null, node.mark.clone());
                return;
            }
            *budget -= size;
            if depth + 1 > MAX_REFERENCE_DEPTH {
                if contains_reference(&replacement) {
                    sink.error(
                        &node.mark,
                        path,
                        format!("`!reference` tags are nested more than {MAX_REFERENCE_DEPTH} levels deep"),
                    );
                    *node = Node::new(Value::Null, node.mark.clone());
                    return;
                }
            } else {
                resolve_in(&mut replacement, root, path, depth + 1, budget, over, sink);
            }
            *node = replacement;
        }
        _ => {}
    }
}

fn contains_reference(node: &Node) -> bool {
    match &node.value {
        Value::Reference(_) => true,
        Value::Seq(items) => items.iter().any(contains_reference),
        Value::Map(entries) => entries.iter().any(|(_, v)| contains_reference(v)),
        _ => false,
    }
}

fn lookup_reference(
    items: &[Node],
    mark: &Mark,
    root: &Node,
    path: &str,
    _depth: usize,
    sink: &mut Sink,
) -> Option<Node> {
    let mut keys = Vec::new();
    for item in items {
        match &item.value {
            Value::Str(s) => keys.push(s.clone()),
            Value::Int(i) => keys.push(i.to_string()),
            _ => {
                sink.error(
                    &item.mark,
                    path,
                    "`!reference` takes a list of key names such as `!reference [.setup, script]`",
                );
                return None;
            }
        }
    }
    if keys.is_empty() || keys.len() > 10 {
        sink.error(
            mark,
            path,
            "`!reference` takes between 1 and 10 key names such as `!reference [.setup, script]`",
        );
        return None;
    }
    let mut current = root;
    for (i, key) in keys.iter().enumerate() {
        match current.get(key) {
            Some(next) => current = next,
            None => {
                sink.error(
                    mark,
                    path,
                    format!(
                        "`!reference [{}]` could not be found: {} has no key `{key}`; check the spelling",
                        keys.join(", "),
                        if i == 0 {
                            "the configuration".to_owned()
                        } else {
                            format!("`{}`", keys[..i].join("."))
                        }
                    ),
                );
                return None;
            }
        }
    }
    Some(current.clone())
}

/// The diagnostic path of a top-level key: reserved keywords stay as they
/// are, anything else is a job under `jobs`.
pub(crate) fn job_path(name: &str) -> String {
    if crate::lint::is_global_keyword(name) {
        join_key("", name)
    } else {
        join_key("jobs", name)
    }
}
