//! The structural check: a spanned YAML tree walked against the file kind's JSON
//! Schema, reporting every unknown, missing and mistyped key in one pass.
//!
//! It understands the subset of draft-07 that `schema` generates: `$ref`, `allOf`,
//! `anyOf`/`oneOf`, `type`, `enum`, `const`, `properties`, `required`,
//! `additionalProperties`, `items`, `minimum` and `maximum`. Tagged unions are
//! resolved by their discriminator (`type:` or the single key), so a misspelt
//! step type gets "did you mean" rather than a wall of alternatives.

use std::cell::{OnceCell, RefCell};
use std::path::Path;

use serde_json::Value as J;

use crate::diagnostic::{Code, Diagnostic, did_you_mean, suggest};
use crate::model::FileKind;
use crate::validate::values;
use crate::yaml::{Node, Value};

/// The schemas one workspace load checks against: parsed from the built-in
/// copies as a kind is first met, and dropped with the load. Kept for the whole
/// process they would be a megabyte of an idle daemon's heap.
#[derive(Debug, Default)]
pub struct Schemas {
    parsed: [OnceCell<J>; FileKind::ALL.len()],
}

impl Schemas {
    fn get(&self, kind: FileKind) -> &J {
        let at = FileKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.parsed[at].get_or_init(|| {
            serde_json::from_str(crate::schema::committed_text(kind))
                .unwrap_or_else(|_| crate::schema::schema_for(kind))
        })
    }
}

/// Checks `root` against the schema of `kind`. Structural problems go to `diags`
/// and mean the file cannot be typed; format problems (a bad duration, a plain-text
/// secret) go to `formats` and leave the file usable for further checks.
pub fn check(
    root: &Node,
    kind: FileKind,
    schemas: &Schemas,
    file: &Path,
    diags: &mut Vec<Diagnostic>,
    formats: &mut Vec<Diagnostic>,
) {
    let schema = schemas.get(kind);
    let walker = Walker {
        root: schema,
        file,
        formats: RefCell::new(Vec::new()),
    };
    walker.node(root, schema, None, diags);
    formats.extend(walker.formats.into_inner());
}

struct Walker<'a> {
    root: &'a J,
    file: &'a Path,
    formats: RefCell<Vec<Diagnostic>>,
}

/// The key a value stands under, for messages.
type KeyName<'a> = Option<&'a str>;

impl<'a> Walker<'a> {
    fn resolve(&self, mut schema: &'a J) -> &'a J {
        for _ in 0..32 {
            let Some(r) = schema.get("$ref").and_then(J::as_str) else {
                return schema;
            };
            let Some(name) = r.strip_prefix("#/definitions/") else {
                return schema;
            };
            match self.root.get("definitions").and_then(|d| d.get(name)) {
                Some(s) => schema = s,
                None => return schema,
            }
        }
        schema
    }

    fn node(&self, node: &Node, schema: &'a J, key: KeyName, diags: &mut Vec<Diagnostic>) {
        let format = schema
            .get("$ref")
            .and_then(J::as_str)
            .and_then(|r| r.strip_prefix("#/definitions/"));
        let schema = self.resolve(schema);
        if let Some(name) = format
            && matches!(&node.value, Value::Str(_))
            && let Some(d) = values::check_format(name, node, self.file)
        {
            self.formats.borrow_mut().push(d);
        }
        match schema {
            J::Bool(true) => return,
            J::Bool(false) => {
                diags.push(Diagnostic::error(
                    Code::UnknownKey,
                    self.file,
                    node.span,
                    "no value is allowed here",
                ));
                return;
            }
            _ => {}
        }
        if let Some(J::Array(all)) = schema.get("allOf") {
            for s in all {
                self.node(node, s, key, diags);
            }
            // A wrapper (`allOf` plus a description) says nothing more itself.
            let own = [
                "oneOf",
                "anyOf",
                "type",
                "enum",
                "const",
                "properties",
                "items",
            ];
            if !own.iter().any(|k| schema.get(*k).is_some()) {
                return;
            }
        }
        let variants = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(J::as_array);
        if let Some(variants) = variants {
            self.union(node, variants, key, diags);
            return;
        }
        if let Some(types) = schema.get("type")
            && !type_matches(node, types)
        {
            diags.push(self.wrong_type(node, &type_names(types), key));
            return;
        }
        if let Some(J::Array(options)) = schema.get("enum") {
            self.enumeration(node, options, key, diags);
            return;
        }
        if let Some(c) = schema.get("const") {
            if node.to_json() != *c {
                diags.push(Diagnostic::error(
                    Code::InvalidValue,
                    self.file,
                    node.span,
                    format!("{} must be `{}`", describe_key(key), display_json(c)),
                ));
            }
            return;
        }
        match &node.value {
            Value::Map(entries) => self.object(node, entries, schema, diags),
            Value::Seq(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for item in items {
                        self.node(item, item_schema, key, diags);
                    }
                }
            }
            Value::Int(_) | Value::Float(_) => self.range(node, schema, key, diags),
            _ => {}
        }
    }

    fn object(
        &self,
        node: &Node,
        entries: &[crate::yaml::Entry],
        schema: &'a J,
        diags: &mut Vec<Diagnostic>,
    ) {
        let props = schema.get("properties").and_then(J::as_object);
        let additional = schema.get("additionalProperties");
        for entry in entries {
            match props.and_then(|p| p.get(&entry.key)) {
                Some(s) => self.node(&entry.value, s, Some(&entry.key), diags),
                None => match additional {
                    Some(J::Bool(false)) => {
                        let names = props.map(|p| p.keys().map(String::as_str).collect::<Vec<_>>());
                        let hint = names
                            .as_ref()
                            .and_then(|n| did_you_mean(&entry.key, n.iter().copied()))
                            .or_else(|| {
                                names.map(|n| format!("known keys here: {}", n.join(", ")))
                            });
                        diags.push(
                            Diagnostic::error(
                                Code::UnknownKey,
                                self.file,
                                entry.key_span,
                                format!("unknown key `{}`", entry.key),
                            )
                            .maybe_help(hint),
                        );
                    }
                    Some(s @ J::Object(_)) => {
                        // Named values of free text (headers, data) may hide secrets;
                        // maps of names to types or settings may not.
                        let text_values = self.resolve(s).get("enum").is_none();
                        if text_values
                            && let Some(d) =
                                values::check_secret_key(&entry.key, &entry.value, self.file)
                        {
                            self.formats.borrow_mut().push(d);
                        }
                        self.node(&entry.value, s, Some(&entry.key), diags);
                    }
                    Some(J::Bool(true)) | None => {
                        if let Some(d) =
                            values::check_secret_key(&entry.key, &entry.value, self.file)
                        {
                            self.formats.borrow_mut().push(d);
                        }
                        self.free(&entry.value);
                    }
                    _ => {}
                },
            }
        }
        if let Some(J::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(J::as_str) {
                if !entries.iter().any(|e| e.key == name) {
                    diags.push(
                        Diagnostic::error(
                            Code::MissingKey,
                            self.file,
                            head_span(node),
                            format!("missing required key `{name}`"),
                        )
                        .maybe_help(property_help(props, name)),
                    );
                }
            }
        }
    }

    fn enumeration(&self, node: &Node, options: &[J], key: KeyName, diags: &mut Vec<Diagnostic>) {
        let value = node.to_json();
        if options.contains(&value) {
            return;
        }
        let names: Vec<String> = options.iter().map(display_json).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let hint = suggest(node.as_str().unwrap_or_default(), &names, "expected one of");
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                self.file,
                node.span,
                format!(
                    "`{}` is not a valid value for {}",
                    display_json(&value),
                    describe_key(key)
                ),
            )
            .with_help(hint),
        );
    }

    fn range(&self, node: &Node, schema: &J, key: KeyName, diags: &mut Vec<Diagnostic>) {
        let n = match node.value {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
            _ => return,
        };
        let min = schema.get("minimum").and_then(J::as_f64);
        let max = schema.get("maximum").and_then(J::as_f64);
        let out = min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m);
        if out {
            let bounds = match (min, max) {
                (Some(a), Some(b)) => format!("from {a} to {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                (None, None) => String::new(),
            };
            diags.push(Diagnostic::error(
                Code::InvalidValue,
                self.file,
                node.span,
                format!("{} must be {bounds}", describe_key(key)),
            ));
        }
    }

    fn union(&self, node: &Node, variants: &'a [J], key: KeyName, diags: &mut Vec<Diagnostic>) {
        // `null` is fine when a variant allows it; otherwise drop the null variant.
        // The unresolved variants are kept for recursion, so that `node` still sees
        // a `$ref` to a format type such as `DurationText`.
        let (non_null, originals): (Vec<&J>, Vec<&'a J>) = variants
            .iter()
            .map(|v| (self.resolve(v), v))
            .filter(|(r, _)| !is_null_schema(r))
            .unzip();
        if node.value == Value::Null && non_null.len() < variants.len() {
            return;
        }
        if let [only] = originals.as_slice() {
            self.node(node, only, key, diags);
            return;
        }
        if let Value::Map(entries) = &node.value {
            if let Some(tag) = internal_tag(&non_null) {
                self.tagged(node, entries, &non_null, tag, key, diags);
                return;
            }
            if let Some(keys) = external_tags(&non_null) {
                self.externally_tagged(node, entries, &non_null, &keys, diags);
                return;
            }
        }
        // Untagged: the first variant that accepts the node wins; otherwise report
        // the closest one among those of the node's own kind.
        let mut best: Option<Vec<Diagnostic>> = None;
        for variant in &non_null {
            let accepts_kind = variant.get("type").is_none_or(|t| type_matches(node, t));
            let mut trial = Vec::new();
            self.node(node, variant, key, &mut trial);
            if trial.is_empty() {
                return;
            }
            if accepts_kind && best.as_ref().is_none_or(|b| trial.len() < b.len()) {
                best = Some(trial);
            }
        }
        match best {
            Some(found) => diags.extend(found),
            None => {
                let mut names: Vec<String> = Vec::new();
                for v in &non_null {
                    let t = v
                        .get("type")
                        .map(type_names)
                        .or_else(|| v.get("enum").map(|_| "a name".to_string()))
                        .unwrap_or_else(|| "value".to_string());
                    if !names.contains(&t) {
                        names.push(t);
                    }
                }
                diags.push(self.wrong_type(node, &names.join(" or "), key));
            }
        }
    }

    fn tagged(
        &self,
        node: &Node,
        entries: &[crate::yaml::Entry],
        variants: &[&'a J],
        tag: &str,
        key: KeyName,
        diags: &mut Vec<Diagnostic>,
    ) {
        let names: Vec<&str> = variants.iter().filter_map(|v| tag_value(v, tag)).collect();
        let Some(entry) = entries.iter().find(|e| e.key == tag) else {
            diags.push(
                Diagnostic::error(
                    Code::MissingKey,
                    self.file,
                    head_span(node),
                    format!("missing required key `{tag}`"),
                )
                .with_help(format!("`{tag}` is one of: {}", names.join(", "))),
            );
            return;
        };
        let given = entry.value.as_str().unwrap_or_default();
        match variants.iter().find(|v| tag_value(v, tag) == Some(given)) {
            Some(variant) => self.node(node, variant, key, diags),
            None => {
                let hint = suggest(given, &names, &format!("`{tag}` is one of"));
                diags.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        self.file,
                        entry.value.span,
                        format!("unknown {tag} `{}`", display_node(&entry.value)),
                    )
                    .with_help(hint),
                );
            }
        }
    }

    fn externally_tagged(
        &self,
        node: &Node,
        entries: &[crate::yaml::Entry],
        variants: &[&'a J],
        keys: &[&str],
        diags: &mut Vec<Diagnostic>,
    ) {
        let chosen: Vec<&crate::yaml::Entry> = entries
            .iter()
            .filter(|e| keys.contains(&e.key.as_str()))
            .collect();
        for entry in entries {
            if !keys.contains(&entry.key.as_str()) {
                let hint = suggest(&entry.key, keys, "expected one of");
                diags.push(
                    Diagnostic::error(
                        Code::UnknownKey,
                        self.file,
                        entry.key_span,
                        format!("unknown key `{}`", entry.key),
                    )
                    .with_help(hint),
                );
            }
        }
        match chosen.as_slice() {
            [] if entries.is_empty() => diags.push(
                Diagnostic::error(
                    Code::MissingKey,
                    self.file,
                    node.span,
                    "expected exactly one key",
                )
                .with_help(format!("one of: {}", keys.join(", "))),
            ),
            [] => {}
            [entry] => {
                if let Some(variant) = variants.iter().find(|v| {
                    v.get("required")
                        .and_then(J::as_array)
                        .and_then(|r| r.first())
                        .and_then(J::as_str)
                        == Some(entry.key.as_str())
                }) && let Some(s) = variant.get("properties").and_then(|p| p.get(&entry.key))
                {
                    self.node(&entry.value, s, Some(&entry.key), diags);
                }
            }
            [_, second, ..] => diags.push(
                Diagnostic::error(
                    Code::UnknownKey,
                    self.file,
                    second.key_span,
                    format!("only one key is allowed here; found `{}` too", second.key),
                )
                .with_help("wrap several conditions in `all:` or `any:`"),
            ),
        }
    }

    /// Free-form values (bodies, data): only secret-looking keys are checked.
    fn free(&self, node: &Node) {
        match &node.value {
            Value::Map(entries) => {
                for e in entries {
                    if let Some(d) = values::check_secret_key(&e.key, &e.value, self.file) {
                        self.formats.borrow_mut().push(d);
                    }
                    self.free(&e.value);
                }
            }
            Value::Seq(items) => items.iter().for_each(|i| self.free(i)),
            _ => {}
        }
    }

    fn wrong_type(&self, node: &Node, expected: &str, key: KeyName) -> Diagnostic {
        let found = node.kind_name();
        let help = match (&node.value, expected.contains("string")) {
            (Value::Int(_) | Value::Float(_) | Value::Bool(_), true) => {
                Some("quote the value to make it a string".to_string())
            }
            (Value::Null, _) => Some("give a value, or remove the key".to_string()),
            _ => None,
        };
        Diagnostic::error(
            Code::WrongType,
            self.file,
            node.span,
            format!("{} expects {expected}, found {found}", describe_key(key)),
        )
        .maybe_help(help)
    }
}

/// Where to point for a problem with a whole mapping: its first key, so the
/// report shows one line rather than the whole block.
fn head_span(node: &Node) -> crate::yaml::Span {
    match &node.value {
        Value::Map(entries) if !entries.is_empty() => entries[0].key_span,
        _ => node.span,
    }
}

fn describe_key(key: KeyName) -> String {
    match key {
        Some(k) => format!("`{k}`"),
        None => "this value".to_string(),
    }
}

fn property_help(props: Option<&serde_json::Map<String, J>>, name: &str) -> Option<String> {
    let desc = props?.get(name)?.get("description")?.as_str()?;
    let first = desc.split("\n\n").next().unwrap_or(desc).replace('\n', " ");
    Some(format!("`{name}`: {first}"))
}

fn is_null_schema(schema: &J) -> bool {
    schema.get("type") == Some(&J::String("null".into()))
}

/// The property every variant requires with one fixed string value (`type:`).
fn internal_tag<'s>(variants: &[&'s J]) -> Option<&'s str> {
    let first = variants.first()?;
    let props = first.get("properties")?.as_object()?;
    props
        .keys()
        .find(|k| variants.iter().all(|v| tag_value(v, k).is_some()))
        .map(String::as_str)
}

fn tag_value<'s>(variant: &'s J, tag: &str) -> Option<&'s str> {
    let prop = variant.get("properties")?.get(tag)?;
    if let Some(c) = prop.get("const").and_then(J::as_str) {
        return Some(c);
    }
    match prop.get("enum").and_then(J::as_array).map(Vec::as_slice) {
        Some([J::String(s)]) => Some(s),
        _ => None,
    }
}

/// For `{key: value}` unions: each variant requires one distinct key.
fn external_tags<'s>(variants: &[&'s J]) -> Option<Vec<&'s str>> {
    let mut keys = Vec::new();
    for v in variants {
        let required = v.get("required")?.as_array()?;
        let props = v.get("properties")?.as_object()?;
        if required.len() != 1 || props.len() != 1 {
            return None;
        }
        keys.push(required[0].as_str()?);
    }
    Some(keys)
}

fn type_matches(node: &Node, types: &J) -> bool {
    let one = |t: &str| {
        matches!(
            (t, &node.value),
            ("null", Value::Null)
                | ("boolean", Value::Bool(_))
                | ("integer", Value::Int(_))
                | ("number", Value::Int(_) | Value::Float(_))
                | ("string", Value::Str(_))
                | ("array", Value::Seq(_))
                | ("object", Value::Map(_))
        )
    };
    match types {
        J::String(t) => one(t),
        J::Array(ts) => ts.iter().filter_map(J::as_str).any(one),
        _ => true,
    }
}

fn type_names(types: &J) -> String {
    let name = |t: &str| match t {
        "array" => "a list",
        "object" => "a mapping",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "true or false",
        "null" => "nothing",
        _ => "a value",
    };
    match types {
        J::String(t) => name(t).to_string(),
        J::Array(ts) => ts
            .iter()
            .filter_map(J::as_str)
            .filter(|t| *t != "null")
            .map(name)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "a value".to_string(),
    }
}

fn display_json(v: &J) -> String {
    match v {
        J::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn display_node(node: &Node) -> String {
    display_json(&node.to_json())
}
