//! YAML text → [`Node`] tree with positions, the way GitLab's loader sees it.
//!
//! Built on the event parser of `yaml-rust2` so that every value keeps the
//! line and column it was written at. This module resolves what YAML itself
//! defines: anchors and aliases, merge keys (`<<`), YAML 1.1 scalars as
//! Ruby's Psych reads them (`yes`/`on` are booleans), and keeps the
//! `!reference` tag as a [`Value::Reference`] for the composer to resolve.
//! It knows nothing about GitLab keywords.
//!
//! Hostile input is bounded: nesting depth and the number of nodes created
//! by alias expansion are capped, so neither a "billion laughs" document nor
//! a deeply nested one can exhaust memory or the stack.

use std::collections::HashMap;
use std::sync::Arc;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::compose::job_path;
use crate::diagnostic::{join_index, join_key, Mark, Sink};

/// Deepest nesting of collections accepted, aliases included.
pub(crate) const MAX_DEPTH: usize = 128;
/// Most nodes one document may expand to through aliases.
pub(crate) const MAX_NODES: usize = 500_000;

/// A YAML value with the position it was written at.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) mark: Mark,
}

/// A mapping key: its text and where it was written.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) mark: Mark,
}

/// The value of a [`Node`].
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order; keys are unique.
    Map(Vec<(Key, Node)>),
    /// `!reference [job, key, ...]`, still unresolved.
    Reference(Vec<Node>),
}

impl Node {
    pub(crate) fn new(value: Value, mark: Mark) -> Node {
        Node { value, mark }
    }

    /// Looks up a key of a mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn entries(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// A short name of the node's type for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        self.value.type_name()
    }

    /// Counts the nodes of this tree, stopping early past `limit`.
    pub(crate) fn size(&self, limit: usize) -> usize {
        let mut count = 0;
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            count += 1;
            if count > limit {
                break;
            }
            match &node.value {
                Value::Seq(items) | Value::Reference(items) => stack.extend(items),
                Value::Map(entries) => stack.extend(entries.iter().map(|(_, v)| v)),
                _ => {}
            }
        }
        count
    }
}

impl Value {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a hash",
            Value::Reference(_) => "a !reference",
        }
    }
}

/// One collection being built from events.
enum Frame {
    Seq {
        items: Vec<Node>,
        mark: Mark,
        anchor: usize,
        reference: bool,
        height: usize,
    },
    Map {
        entries: Vec<(Key, Node)>,
        /// Position of each key in `entries`, for duplicate detection.
        index: HashMap<String, usize>,
        merges: Vec<Node>,
        key: Option<(Key, bool)>,
        mark: Mark,
        anchor: usize,
        height: usize,
    },
}

struct Builder<'a> {
    file: Arc<str>,
    sink: &'a mut Sink,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    docs: Vec<Node>,
    /// Set when a limit was hit; the document is then dropped.
    aborted: bool,
    /// Whether the last scalar was unquoted: only a plain `<<` is a merge key.
    last_plain: bool,
    /// YAML path of the value being built, for diagnostics.
    path: String,
}

impl Builder<'_> {
    /// The YAML path of the slot the next value fills.
    fn current_path(&self) -> String {
        let mut path = String::new();
        for (depth, frame) in self.stack.iter().enumerate() {
            match frame {
                Frame::Map {
                    key: Some((k, _)), ..
                } if depth == 0 => path = job_path(&k.name),
                Frame::Map {
                    key: Some((k, _)), ..
                } => path = join_key(&path, &k.name),
                Frame::Map { key: None, .. } => {}
                Frame::Seq { items, .. } => path = join_index(&path, items.len()),
            }
        }
        path
    }

    fn mark(&self, m: Marker) -> Mark {
        Mark {
            file: Arc::clone(&self.file),
            line: u32::try_from(m.line()).unwrap_or(u32::MAX),
            col: u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
        }
    }

    fn count(&mut self, n: usize, mark: &Mark) {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES && !self.aborted {
            self.sink.error(
                mark,
                &self.path,
                format!(
                    "the document expands to more than {MAX_NODES} values through aliases; \
                     reduce the use of aliases"
                ),
            );
            self.aborted = true;
        }
    }

    fn check_depth(&mut self, extra: usize, mark: &Mark) {
        if self.stack.len() + extra > MAX_DEPTH && !self.aborted {
            self.sink.error(
                mark,
                &self.path,
                format!(
                    "values are nested more than {MAX_DEPTH} levels deep; flatten the document"
                ),
            );
            self.aborted = true;
        }
    }

    fn event(&mut self, ev: Event, marker: Marker) {
        if self.aborted {
            return;
        }
        self.path = self.current_path();
        let mark = self.mark(marker);
        match ev {
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
            Event::Alias(id) => {
                let Some((node, height)) = self.anchors.get(&id).cloned() else {
                    self.sink.error(
                        &mark,
                        &self.path,
                        "alias refers to an anchor that is not defined before it; \
                         define the anchor (`&name`) first",
                    );
                    self.finish(Node::new(Value::Null, mark), 0, 0);
                    return;
                };
                self.check_depth(height, &mark);
                let size = node.size(MAX_NODES + 1);
                self.count(size, &mark);
                if self.aborted {
                    return;
                }
                self.last_plain = false;
                self.finish(node, 0, height);
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, &mark);
                self.last_plain = style == TScalarStyle::Plain;
                let value = self.scalar(text, style, tag.as_ref(), &mark);
                self.finish(Node::new(value, mark), anchor, 0);
            }
            Event::SequenceStart(anchor, tag) => {
                self.count(1, &mark);
                self.check_depth(1, &mark);
                let reference = match &tag {
                    Some(t) if is_reference(t) => true,
                    Some(t) => {
                        self.unknown_tag(t, &mark);
                        false
                    }
                    None => false,
                };
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    mark,
                    anchor,
                    reference,
                    height: 0,
                });
            }
            Event::MappingStart(anchor, tag) => {
                self.count(1, &mark);
                self.check_depth(1, &mark);
                if let Some(t) = &tag {
                    if is_reference(t) {
                        self.sink.error(
                            &mark,
                            &self.path,
                            "`!reference` takes a list such as `!reference [.setup, script]`, not a hash",
                        );
                    } else {
                        self.unknown_tag(t, &mark);
                    }
                }
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    index: HashMap::new(),
                    merges: Vec::new(),
                    key: None,
                    mark,
                    anchor,
                    height: 0,
                });
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    items,
                    mark,
                    anchor,
                    reference,
                    height,
                }) => {
                    let value = if reference {
                        Value::Reference(items)
                    } else {
                        Value::Seq(items)
                    };
                    self.finish(Node::new(value, mark), anchor, height + 1);
                }
                Some(other) => self.stack.push(other),
                None => {}
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map {
                    mut entries,
                    mut index,
                    merges,
                    mark,
                    anchor,
                    height,
                    ..
                }) => {
                    // Explicit keys win over merged ones, and earlier merge
                    // sources win over later ones (YAML merge key spec).
                    for source in merges {
                        if let Value::Map(merged) = source.value {
                            for (k, v) in merged {
                                if !index.contains_key(&k.name) {
                                    index.insert(k.name.clone(), entries.len());
                                    entries.push((k, v));
                                }
                            }
                        }
                    }
                    self.finish(Node::new(Value::Map(entries), mark), anchor, height + 1);
                }
                Some(other) => self.stack.push(other),
                None => {}
            },
        }
    }

    fn unknown_tag(&mut self, tag: &Tag, mark: &Mark) {
        self.sink.warning(
            mark,
            &self.path,
            format!(
                "unknown YAML tag `{}{}` is ignored; GitLab only knows `!reference`",
                tag.handle, tag.suffix
            ),
        );
    }

    fn scalar(
        &mut self,
        text: String,
        style: TScalarStyle,
        tag: Option<&Tag>,
        mark: &Mark,
    ) -> Value {
        if let Some(tag) = tag {
            match (tag.handle.as_str(), tag.suffix.as_str()) {
                ("!!", "str") | ("tag:yaml.org,2002:", "str") => return Value::Str(text),
                ("!!", _) | ("tag:yaml.org,2002:", _) => {}
                _ if is_reference(tag) => {
                    self.sink.error(
                        mark,
                        &self.path,
                        "`!reference` takes a list such as `!reference [.setup, script]`, not a scalar",
                    );
                    return Value::Null;
                }
                _ => self.unknown_tag(tag, mark),
            }
        }
        if style != TScalarStyle::Plain {
            return Value::Str(text);
        }
        resolve_plain(text)
    }

    /// Attaches a completed node to its parent (or makes it a document).
    fn finish(&mut self, node: Node, anchor: usize, height: usize) {
        self.path = self.current_path();
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), height));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq {
                items, height: h, ..
            }) => {
                *h = (*h).max(height);
                items.push(node);
            }
            Some(Frame::Map {
                entries,
                index,
                merges,
                key,
                height: h,
                ..
            }) => {
                *h = (*h).max(height);
                match key.take() {
                    None => {
                        let plain_merge =
                            matches!(&node.value, Value::Str(s) if s == "<<") && self.last_plain;
                        let name = match &node.value {
                            Value::Null => String::new(),
                            Value::Bool(b) => b.to_string(),
                            Value::Int(i) => i.to_string(),
                            Value::Float(f) => f.to_string(),
                            Value::Str(s) => s.clone(),
                            _ => {
                                self.sink.error(
                                    &node.mark,
                                    &self.path,
                                    "a hash key must be a plain value, not a list or hash; \
                                     rewrite the key as a string",
                                );
                                String::from("<invalid key>")
                            }
                        };
                        *key = Some((
                            Key {
                                name,
                                mark: node.mark,
                            },
                            plain_merge,
                        ));
                    }
                    Some((k, true)) => match node.value {
                        Value::Map(_) => merges.push(node),
                        Value::Seq(items) => {
                            for item in items {
                                if matches!(item.value, Value::Map(_)) {
                                    merges.push(item);
                                } else {
                                    self.sink.error(
                                        &item.mark,
                                        &self.path,
                                        "merge key `<<` takes a hash or a list of hashes; \
                                         use `<<: *anchor` with an anchored hash",
                                    );
                                }
                            }
                        }
                        _ => self.sink.error(
                            &k.mark,
                            &self.path,
                            "merge key `<<` takes a hash or a list of hashes; \
                             use `<<: *anchor` with an anchored hash",
                        ),
                    },
                    Some((k, false)) => {
                        if let Some(slot) = index.get(&k.name).and_then(|&i| entries.get_mut(i)) {
                            self.sink.warning(
                                &k.mark,
                                &self.path,
                                format!(
                                    "duplicate key `{}` (first at line {}) replaces the earlier value; \
                                     remove one of them",
                                    k.name, slot.0.mark.line
                                ),
                            );
                            *slot = (k, node);
                        } else {
                            index.insert(k.name.clone(), entries.len());
                            entries.push((k, node));
                        }
                    }
                }
            }
        }
    }
}

fn is_reference(tag: &Tag) -> bool {
    tag.handle == "!" && tag.suffix == "reference"
}

/// Resolves an unquoted scalar with YAML 1.1 rules as Ruby's Psych does.
fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        _ => {}
    }
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "true" | "yes" | "on" => return Value::Bool(true),
        "false" | "no" | "off" => return Value::Bool(false),
        _ => {}
    }
    if let Some(i) = parse_int(&text) {
        return Value::Int(i);
    }
    if looks_like_float(&text) {
        if let Ok(f) = text.replace('_', "").parse::<f64>() {
            return Value::Float(f);
        }
    }
    match lower.as_str() {
        ".inf" | "+.inf" => return Value::Float(f64::INFINITY),
        "-.inf" => return Value::Float(f64::NEG_INFINITY),
        ".nan" => return Value::Float(f64::NAN),
        _ => {}
    }
    Value::Str(text)
}

fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(&hex.replace('_', ""), 16).ok()?
    } else if let Some(bin) = digits.strip_prefix("0b") {
        i64::from_str_radix(&bin.replace('_', ""), 2).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..].replace('_', ""), 8).ok()?
    } else {
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
            || digits.starts_with('_')
        {
            return None;
        }
        digits.replace('_', "").parse::<i64>().ok()?
    };
    Some(if negative {
        value.checked_neg()?
    } else {
        value
    })
}

fn looks_like_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mut dots = 0;
    let mut digits = 0;
    for c in mantissa.chars() {
        match c {
            '.' => dots += 1,
            '0'..='9' => digits += 1,
            '_' => {}
            _ => return false,
        }
    }
    if dots > 1 || digits == 0 || (dots == 0 && exponent.is_none()) {
        return false;
    }
    match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        }
    }
}

/// Parses one YAML file. Returns `None` (with an error in `sink`) when the
/// text is not YAML or breaks a limit; an empty document gives `Null`.
pub(crate) fn parse(file: &Arc<str>, text: &str, sink: &mut Sink) -> Option<Node> {
    let mut builder = Builder {
        file: Arc::clone(file),
        sink,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        docs: Vec::new(),
        aborted: false,
        last_plain: false,
        path: String::new(),
    };
    // Editors on Windows may start the file with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((ev, marker)) => {
                builder.event(ev, marker);
                if builder.aborted {
                    return None;
                }
            }
            Err(e) => {
                let mark = builder.mark(*e.marker());
                let message = if e.info().contains("unknown anchor") {
                    "an alias (`*name`) refers to an anchor that is not defined before it; \
                     define the anchor (`&name`) first"
                        .to_owned()
                } else {
                    format!("invalid YAML: {}; check indentation and quoting", e.info())
                };
                builder.sink.error(&mark, "", message);
                return None;
            }
        }
    }
    let mut docs = builder.docs.into_iter();
    let Some(first) = docs.next() else {
        return Some(Node::new(Value::Null, Mark::start_of(file)));
    };
    if let Some(second) = docs.next() {
        if first.get("spec").is_some() {
            sink.warning(
                &first.mark,
                "spec",
                "`spec:` headers (inputs) are not supported; the header is ignored",
            );
            return Some(second);
        }
        sink.warning(
            &second.mark,
            "",
            "only the first YAML document of a file is used; remove the `---` separator",
        );
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Option<Node>, Vec<String>) {
        let mut sink = Sink::default();
        let node = parse(&Arc::from("t.yml"), text, &mut sink);
        (node, sink.items.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn scalars_follow_yaml_1_1() {
        let (node, _) = load("a: yes\nb: 1_000\nc: 1.10\nd: '1.10'\ne: ~\nf: 0x1F\ng: 1.2.3\n");
        let node = node.unwrap();
        assert!(matches!(node.get("a").unwrap().value, Value::Bool(true)));
        assert!(matches!(node.get("b").unwrap().value, Value::Int(1000)));
        assert!(matches!(node.get("c").unwrap().value, Value::Float(_)));
        assert!(matches!(node.get("d").unwrap().value, Value::Str(_)));
        assert!(matches!(node.get("e").unwrap().value, Value::Null));
        assert!(matches!(node.get("f").unwrap().value, Value::Int(31)));
        assert!(matches!(node.get("g").unwrap().value, Value::Str(_)));
    }

    #[test]
    fn merge_keys_and_positions() {
        let (node, diags) = load("base: &b\n  x: 1\n  y: 2\njob:\n  <<: *b\n  y: 3\n");
        assert!(diags.is_empty(), "{diags:?}");
        let job = node.unwrap().get("job").unwrap().clone();
        assert!(matches!(job.get("x").unwrap().value, Value::Int(1)));
        assert!(matches!(job.get("y").unwrap().value, Value::Int(3)));
        assert_eq!(job.get("y").unwrap().mark.line, 6);
        assert_eq!(job.get("y").unwrap().mark.col, 6);
    }

    #[test]
    fn billion_laughs_is_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let (node, diags) = load(&text);
        assert!(node.is_none());
        assert!(diags[0].contains("aliases"), "{diags:?}");
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let (node, diags) = load("\u{feff}build:\n  script: x\n");
        assert!(diags.is_empty());
        assert!(node.unwrap().get("build").is_some());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let text = "[".repeat(10_000);
        let (node, diags) = load(&text);
        assert!(node.is_none());
        assert_eq!(diags.len(), 1);
    }
}
