//! YAML sources as spanned node trees.
//!
//! Owns turning the text of one workspace file into a [`Node`] tree that keeps the
//! line and column of every key and value, so that every later check (structure,
//! references, expressions) can point at the exact place. Hostile input is bounded
//! here: nesting depth, alias expansion and duplicate keys are checked while the tree
//! is built, never after. It does not know what any file means; `model` and
//! `validate` do.

use std::collections::HashMap;

mod emit;
pub use emit::emit;

use granit_parser::{Event, Parser, ScalarStyle};

/// Deepest nesting a workspace file may have. Real files stay under 20 levels.
pub const MAX_DEPTH: usize = 128;
/// Most nodes that aliases may add by expansion, across one file ("billion laughs").
pub const MAX_ALIAS_NODES: usize = 100_000;

/// A position in a source: 1-based line and column (in characters), and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
    pub offset: usize,
}

/// A range in a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    pub fn len(&self) -> usize {
        self.end.offset.saturating_sub(self.start.offset)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One value of a YAML document, resolved with the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A key and its value in a mapping; the key keeps its own span.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    /// How a string scalar was written; decides how offsets inside it map to columns.
    pub style: Style,
}

/// The notation of a scalar, as far as positions inside it are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
    Collection,
}

/// A step in a path from the root of a document to one of its nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl std::fmt::Display for Seg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seg::Key(k) => write!(f, "{k}"),
            Seg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl Node {
    /// The JSON-ish name of this node's kind, used in "expected X, found Y".
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "list",
            Value::Map(_) => "mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The entry under `key` of a mapping.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?.iter().find(|e| e.key == key)
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The node at `path`, if the document has it.
    pub fn at(&self, path: &[Seg]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(_)) => node.get(k)?,
                (Seg::Index(i), Value::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// Where to point for `path`: the value if it exists, else the deepest existing
    /// ancestor. For a key path the key's own span is returned when `key` is asked.
    pub fn span_at(&self, path: &[Seg], key: bool) -> Span {
        let mut node = self;
        let mut span = self.span;
        for (i, seg) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            match (seg, &node.value) {
                (Seg::Key(k), Value::Map(_)) => match node.entry(k) {
                    Some(e) => {
                        span = if last && key {
                            e.key_span
                        } else {
                            e.value.span
                        };
                        node = &e.value;
                    }
                    None => return span,
                },
                (Seg::Index(i), Value::Seq(items)) => match items.get(*i) {
                    Some(n) => {
                        span = n.span;
                        node = n;
                    }
                    None => return span,
                },
                _ => return span,
            }
        }
        span
    }

    /// The source position of byte `inner` of this string's value, when the scalar is
    /// written on one line in a way that keeps offsets (plain or simply quoted).
    pub fn inner_pos(&self, source: &str, inner: usize) -> Pos {
        let Value::Str(text) = &self.value else {
            return self.span.start;
        };
        let start = self.span.start;
        if self.style == Style::Block {
            return block_pos(source, start, text, inner);
        }
        let lead = usize::from(self.style == Style::Quoted);
        let raw_start = start.offset + lead;
        let raw = source.get(raw_start..raw_start + text.len());
        if raw != Some(text.as_str()) {
            return start;
        }
        let inner = inner.min(text.len());
        let chars = text.get(..inner).map_or(0, |s| s.chars().count());
        Pos {
            line: start.line,
            col: start.col + lead + chars,
            offset: raw_start + inner,
        }
    }

    /// Plain data, for typed deserialization once the structure is known to be right.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }

    fn count(&self) -> usize {
        match &self.value {
            Value::Seq(items) => 1 + items.iter().map(Node::count).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|e| e.value.count()).sum::<usize>(),
            _ => 1,
        }
    }
}

/// Why a source could not be read as one YAML document, or what was wrong on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub span: Span,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Syntax,
    DuplicateKey,
    TooDeep,
    AliasBudget,
    ComplexKey,
    MultipleDocuments,
}

/// The result of parsing: the tree when one could be built, and every problem seen.
#[derive(Debug, Default)]
pub struct Parsed {
    pub root: Option<Node>,
    pub problems: Vec<Problem>,
}

/// Maps parser markers (line, column in characters) to byte offsets.
struct LineIndex<'a> {
    source: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(source: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { source, starts }
    }

    /// A parser marker as a position. The byte offset comes from the marker when
    /// the parser knows it (string input does), so a long line is never rescanned.
    fn marker(&self, m: &granit_parser::Marker) -> Pos {
        match m.byte_offset() {
            Some(offset) if offset <= self.source.len() => Pos {
                line: m.line().max(1),
                col: m.col() + 1,
                offset,
            },
            _ => self.pos(m.line(), m.col()),
        }
    }

    /// `line` 1-based, `col` 0-based in characters, as the parser reports them.
    fn pos(&self, line: usize, col: usize) -> Pos {
        let line = line.max(1);
        let Some(&start) = self.starts.get(line - 1) else {
            return self.end();
        };
        let rest = &self.source[start..];
        let offset = start + rest.char_indices().nth(col).map_or(rest.len(), |(i, _)| i);
        Pos {
            line,
            col: col + 1,
            offset,
        }
    }

    fn end(&self) -> Pos {
        let line = self.starts.len();
        let start = self.starts[line - 1];
        Pos {
            line,
            col: self.source[start..].chars().count() + 1,
            offset: self.source.len(),
        }
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        start: Pos,
        anchor: usize,
    },
    Map {
        entries: Vec<Entry>,
        /// Key lookup, built once a mapping grows past a few keys, so duplicate
        /// checks stay linear without a table for every small mapping.
        keys: Option<HashMap<String, usize>>,
        pending_key: Option<(String, Span)>,
        start: Pos,
        anchor: usize,
    },
}

/// Parses one YAML document into a spanned tree, with every problem found.
pub fn parse(source: &str) -> Parsed {
    let index = LineIndex::new(source);
    let mut out = Parsed::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: Vec<(usize, Node, usize)> = Vec::new();
    let mut alias_nodes = 0usize;
    let mut documents = 0usize;
    let mut skip_key_depth: Option<usize> = None;

    let span_of = |s: &granit_parser::Span| Span {
        start: index.marker(&s.start),
        end: index.marker(&s.end),
    };

    for event in Parser::new_from_str(source) {
        let (event, raw_span) = match event {
            Ok(e) => e,
            Err(err) => {
                let pos = index.marker(err.marker());
                let info = err.info().to_string();
                // The parser's own nesting limit is the same problem as ours.
                let too_deep = info.contains("recursion limit");
                out.problems.push(Problem {
                    kind: if too_deep {
                        ProblemKind::TooDeep
                    } else {
                        ProblemKind::Syntax
                    },
                    span: Span {
                        start: pos,
                        end: pos,
                    },
                    message: if too_deep {
                        format!("nesting deeper than the parser allows ({info})")
                    } else {
                        info
                    },
                });
                out.root = None;
                return out;
            }
        };
        let span = span_of(&raw_span);
        let node = match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    out.problems.push(Problem {
                        kind: ProblemKind::MultipleDocuments,
                        span,
                        message: "a workspace file holds one YAML document; found a second `---`"
                            .into(),
                    });
                    return out;
                }
                continue;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = !matches!(style, ScalarStyle::Plain) || tag.is_some();
                let (value, style) = match style {
                    ScalarStyle::Plain if tag.is_none() => (resolve_plain(&text), Style::Plain),
                    ScalarStyle::Literal | ScalarStyle::Folded => {
                        (Value::Str(text.into_owned()), Style::Block)
                    }
                    _ => (Value::Str(text.into_owned()), Style::Quoted),
                };
                let style = if quoted && style == Style::Plain {
                    Style::Quoted
                } else {
                    style
                };
                let node = Node { value, span, style };
                if anchor != 0 {
                    anchors.push((anchor, node.clone(), 1));
                }
                node
            }
            Event::SequenceStart(_, anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    out.problems.push(too_deep(span));
                    return out;
                }
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    start: span.start,
                    anchor,
                });
                continue;
            }
            Event::MappingStart(_, anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    out.problems.push(too_deep(span));
                    return out;
                }
                stack.push(Frame::Map {
                    entries: Vec::new(),
                    keys: None,
                    pending_key: None,
                    start: span.start,
                    anchor,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = stack.pop() else { continue };
                // Vectors grow in steps of at least four; a file of many small
                // mappings would otherwise hold mostly spare capacity.
                let (value, start, anchor) = match frame {
                    Frame::Seq {
                        mut items,
                        start,
                        anchor,
                    } => {
                        items.shrink_to_fit();
                        (Value::Seq(items), start, anchor)
                    }
                    Frame::Map {
                        mut entries,
                        start,
                        anchor,
                        ..
                    } => {
                        entries.shrink_to_fit();
                        (Value::Map(entries), start, anchor)
                    }
                };
                let node = Node {
                    value,
                    span: Span {
                        start,
                        end: span.end,
                    },
                    style: Style::Collection,
                };
                if anchor != 0 {
                    let size = node.count();
                    anchors.push((anchor, node.clone(), size));
                }
                node
            }
            Event::Alias(id) => {
                let Some((_, target, size)) = anchors.iter().rev().find(|(a, _, _)| *a == id)
                else {
                    continue;
                };
                alias_nodes += size;
                if alias_nodes > MAX_ALIAS_NODES {
                    out.problems.push(Problem {
                        kind: ProblemKind::AliasBudget,
                        span,
                        message: format!(
                            "aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?)"
                        ),
                    });
                    return out;
                }
                let mut node = target.clone();
                node.span = span;
                node
            }
            _ => continue,
        };

        // Attach the finished node to its parent, or make it the root.
        let depth = stack.len();
        match stack.last_mut() {
            None => out.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                keys,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    let key = match &node.value {
                        Value::Str(s) => Some(s.clone()),
                        Value::Int(i) => Some(i.to_string()),
                        Value::Bool(b) => Some(b.to_string()),
                        Value::Float(f) => Some(f.to_string()),
                        Value::Null => Some(String::new()),
                        Value::Seq(_) | Value::Map(_) => None,
                    };
                    if key.is_none() {
                        out.problems.push(Problem {
                            kind: ProblemKind::ComplexKey,
                            span: node.span,
                            message: "keys must be plain strings".into(),
                        });
                        skip_key_depth = Some(depth);
                    }
                    *pending_key = Some((key.unwrap_or_default(), node.span));
                }
                Some((key, key_span)) => {
                    if skip_key_depth == Some(depth) {
                        skip_key_depth = None;
                    } else if let Some(first) = find_key(entries, keys, &key) {
                        out.problems.push(Problem {
                            kind: ProblemKind::DuplicateKey,
                            span: key_span,
                            message: format!(
                                "duplicate key `{key}` (first defined on line {})",
                                entries[first].key_span.start.line
                            ),
                        });
                    } else {
                        if let Some(keys) = keys {
                            keys.insert(key.clone(), entries.len());
                        }
                        entries.push(Entry {
                            key,
                            key_span,
                            value: node,
                        });
                    }
                }
            },
        }
    }
    out
}

/// Where byte `inner` of a literal block scalar's value stands in the source. The
/// scalar's span starts at its first content line; its lines follow one for one,
/// indented alike. (Folded scalars join lines, so positions there are approximate.)
fn block_pos(source: &str, start: Pos, text: &str, inner: usize) -> Pos {
    let inner = inner.min(text.len());
    let before = text.get(..inner).unwrap_or("");
    let line_in_value = before.matches('\n').count();
    let last = before.rsplit('\n').next().unwrap_or("");
    let indent = start.col.saturating_sub(1);
    let line = start.line + line_in_value;
    let line_start: usize = source
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let indent_bytes = source
        .get(line_start..)
        .map_or(0, |l| l.chars().take(indent).map(char::len_utf8).sum());
    Pos {
        line,
        col: indent + last.chars().count() + 1,
        offset: (line_start + indent_bytes + last.len()).min(source.len()),
    }
}

/// The index of `key` among a mapping's entries.
fn find_key(
    entries: &[Entry],
    keys: &mut Option<HashMap<String, usize>>,
    key: &str,
) -> Option<usize> {
    const SCAN: usize = 16;
    if keys.is_none() && entries.len() >= SCAN {
        *keys = Some(
            entries
                .iter()
                .enumerate()
                .map(|(i, e)| (e.key.clone(), i))
                .collect(),
        );
    }
    match keys {
        Some(map) => map.get(key).copied(),
        None => entries.iter().position(|e| e.key == key),
    }
}

fn too_deep(span: Span) -> Problem {
    Problem {
        kind: ProblemKind::TooDeep,
        span,
        message: format!("nesting deeper than {MAX_DEPTH} levels"),
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = text.parse::<i64>()
    {
        return Value::Int(i);
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Int(i);
    }
    if let Some(oct) = text.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Value::Int(i);
    }
    let looks_float = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.');
    if looks_float && let Ok(f) = text.parse::<f64>() {
        return Value::Float(f);
    }
    Value::Str(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let p = parse("name: demo\nsteps:\n  - id: a\n    type: log\n");
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let root = p.root.expect("root");
        let e = root.entry("steps").expect("steps");
        assert_eq!((e.key_span.start.line, e.key_span.start.col), (2, 1));
        let id = root
            .at(&[
                Seg::Key("steps".into()),
                Seg::Index(0),
                Seg::Key("id".into()),
            ])
            .expect("id");
        assert_eq!((id.span.start.line, id.span.start.col), (3, 9));
        assert_eq!(id.as_str(), Some("a"));
    }

    #[test]
    fn resolves_core_schema_scalars() {
        let p = parse("a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: yes\n");
        let r = p.root.expect("root");
        assert_eq!(r.get("a").map(|n| &n.value), Some(&Value::Int(1)));
        assert_eq!(r.get("b").map(|n| &n.value), Some(&Value::Float(1.5)));
        assert_eq!(r.get("c").map(|n| &n.value), Some(&Value::Bool(true)));
        assert_eq!(r.get("d").map(|n| &n.value), Some(&Value::Null));
        assert_eq!(r.get("e").map(|n| &n.value), Some(&Value::Str("1".into())));
        assert_eq!(
            r.get("f").map(|n| &n.value),
            Some(&Value::Str("yes".into()))
        );
    }

    #[test]
    fn reports_duplicate_keys_and_keeps_the_first() {
        let p = parse("a: 1\nb: 2\na: 3\n");
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].kind, ProblemKind::DuplicateKey);
        assert_eq!(p.problems[0].span.start.line, 3);
        let r = p.root.expect("root");
        assert_eq!(r.get("a").map(|n| &n.value), Some(&Value::Int(1)));
    }

    #[test]
    fn stops_an_alias_bomb() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let p = parse(&src);
        assert!(
            p.problems
                .iter()
                .any(|x| x.kind == ProblemKind::AliasBudget)
        );
    }

    #[test]
    fn stops_deep_nesting() {
        let src = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let p = parse(&src);
        assert!(!p.problems.is_empty());
        assert!(p.root.is_none());
    }

    #[test]
    fn maps_inner_offsets_of_plain_and_quoted_strings() {
        let src = "a: hello world\nb: \"x {{ y }}\"\n";
        let r = parse(src).root.expect("root");
        let a = r.get("a").expect("a");
        assert_eq!(a.inner_pos(src, 6).col, 10);
        let b = r.get("b").expect("b");
        assert_eq!(b.inner_pos(src, 5).col, 10);
    }
}
