//! Changes to a site's component instances as edits of its `site.yaml` text:
//! add an instance to one of the site's pages, set an instance's config, remove
//! one. Only the instance's own lines change; every other line (comments,
//! anchors, order, quoting) stays as written, so the proposal's diff is the
//! change and nothing else. The result is not validated here: the caller puts it
//! through the workspace's validator like any other edit.
//!
//! An instance is found where the site writes it: on one of its own pages
//! (`pages[].components[]`), else among the overrides of the template's
//! instances (`components.<id>`). An instance only the template has gets an
//! override added.

use serde_json::{Map, Value as Json};

use crate::yaml::{self, Entry, Node, Value};

/// One change to a site's instances.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new instance at the end of the components of the site's page `page`.
    Add {
        page: String,
        id: String,
        component: String,
        config: Map<String, Json>,
    },
    /// The instance's config, replaced whole.
    Configure {
        id: String,
        config: Map<String, Json>,
    },
    /// The instance removed from its page (a template's instance: its override).
    Remove { id: String },
}

/// Why a change could not be written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    #[error("the site file does not parse: {0}")]
    Unreadable(String),
    #[error("the site has no page `{0}` of its own; add the instance to one of its pages")]
    NoPage(String),
    #[error("the site already has an instance `{0}`")]
    Exists(String),
    #[error("the site has no instance `{0}`")]
    NoInstance(String),
    #[error(
        "`{0}` comes from the site's template and has no override to remove; set its config instead"
    )]
    Inherited(String),
}

/// Where the site writes an instance.
enum Found<'a> {
    /// On the site's page: the page's component list and the item's index.
    Page { list: &'a Node, index: usize },
    /// An override of a template instance: the `components` entry.
    Override { map: &'a Node, index: usize },
}

/// `source` with `change` applied. `inherited` says whether an instance id not
/// written in the file is one of the template's (then a config gets an override).
pub fn apply(
    source: &str,
    change: &Change,
    inherited: impl Fn(&str) -> bool,
) -> Result<String, EditError> {
    let parsed = yaml::parse(source);
    let root = match (parsed.root, parsed.problems.first()) {
        (Some(root), None) => root,
        (_, Some(p)) => return Err(EditError::Unreadable(p.message.clone())),
        (None, None) => return Err(EditError::Unreadable("the file is empty".into())),
    };
    match change {
        Change::Add {
            page,
            id,
            component,
            config,
        } => {
            if find(&root, id).is_some() || inherited(id) {
                return Err(EditError::Exists(id.clone()));
            }
            let list = root
                .get("pages")
                .and_then(|p| match &p.value {
                    Value::Seq(pages) => pages
                        .iter()
                        .find(|pg| pg.get("path").and_then(Node::as_str) == Some(page.as_str())),
                    _ => None,
                })
                .and_then(|pg| pg.entry("components"))
                .ok_or_else(|| EditError::NoPage(page.clone()))?;
            let item = instance(id, component, config);
            Ok(append_item(source, list, &item))
        }
        Change::Configure { id, config } => match find(&root, id) {
            Some(Found::Page { list, index }) => {
                let Value::Seq(items) = &list.value else {
                    return Err(EditError::NoInstance(id.clone()));
                };
                let node = &items[index];
                // The config alone where it is written in block style: the
                // item's other lines stay as they are.
                if let Some(entry) = node.entry("config")
                    && !is_alias(source, entry)
                    && !written_inline(source, node)
                {
                    return Ok(replace_entry(source, entry, &Json::Object(config.clone())));
                }
                let mut item = node.to_json();
                if let Some(obj) = item.as_object_mut() {
                    obj.insert("config".into(), Json::Object(config.clone()));
                }
                Ok(replace_item(source, node, &item))
            }
            Some(Found::Override { map, index }) => {
                let entries = map.as_map().unwrap_or_default();
                let entry = &entries[index];
                let value = serde_json::json!({ "config": config });
                Ok(replace_entry(source, entry, &value))
            }
            None if inherited(id) => {
                let value = serde_json::json!({ id.clone(): { "config": config } });
                Ok(add_override(source, &root, &value))
            }
            None => Err(EditError::NoInstance(id.clone())),
        },
        Change::Remove { id } => match find(&root, id) {
            Some(Found::Page { list, index }) => {
                let Value::Seq(items) = &list.value else {
                    return Err(EditError::NoInstance(id.clone()));
                };
                Ok(remove_item(source, items, index))
            }
            Some(Found::Override { map, index }) => {
                let entries = map.as_map().unwrap_or_default();
                Ok(remove_lines(source, &entries[index], entries.len() == 1))
            }
            None if inherited(id) => Err(EditError::Inherited(id.clone())),
            None => Err(EditError::NoInstance(id.clone())),
        },
    }
}

fn instance(id: &str, component: &str, config: &Map<String, Json>) -> Json {
    let mut item = Map::new();
    item.insert("id".into(), Json::String(id.to_string()));
    item.insert("component".into(), Json::String(component.to_string()));
    if !config.is_empty() {
        item.insert("config".into(), Json::Object(config.clone()));
    }
    Json::Object(item)
}

fn find<'a>(root: &'a Node, id: &str) -> Option<Found<'a>> {
    if let Some(Value::Seq(pages)) = root.get("pages").map(|p| &p.value) {
        for page in pages {
            let Some(list) = page.get("components") else {
                continue;
            };
            if let Value::Seq(items) = &list.value
                && let Some(index) = items
                    .iter()
                    .position(|i| i.get("id").and_then(Node::as_str) == Some(id))
            {
                return Some(Found::Page { list, index });
            }
        }
    }
    let map = root.get("components")?;
    let index = map.as_map()?.iter().position(|e| e.key == id)?;
    Some(Found::Override { map, index })
}

/// Whether an entry's value is an alias (`*nav`) of a value written elsewhere.
fn is_alias(source: &str, entry: &Entry) -> bool {
    source
        .get(entry.value.span.start.offset..)
        .is_some_and(|t| t.starts_with('*'))
}

/// Where the text of `node` ends: after its last scalar (the span of a block
/// collection ends at the next token, past comments that belong to what
/// follows), or after the closing bracket of a flow collection; then past the
/// rest of the line when only blanks or a comment are left on it.
fn end_of(source: &str, node: &Node) -> usize {
    to_line_end(source, last_leaf_end(source, node))
}

/// Whether a node's span covers exactly its text: a collection in flow style
/// (`{ … }`, `[ … ]`) or an alias (`*nav`).
fn written_inline(source: &str, node: &Node) -> bool {
    source
        .get(node.span.start.offset..)
        .is_some_and(|t| t.starts_with('{') || t.starts_with('[') || t.starts_with('*'))
}

fn last_leaf_end(source: &str, node: &Node) -> usize {
    if written_inline(source, node) {
        return node.span.end.offset;
    }
    match &node.value {
        Value::Seq(items) => items
            .iter()
            .map(|i| last_leaf_end(source, i))
            .max()
            .unwrap_or(node.span.end.offset),
        Value::Map(entries) => entries
            .iter()
            .map(|e| last_leaf_end(source, &e.value).max(e.key_span.end.offset))
            .max()
            .unwrap_or(node.span.end.offset),
        _ => node.span.end.offset,
    }
}

/// `at`, moved past the end of its line when the rest of it is blank or a
/// comment; a position at the start of a line (or in its indentation) stays
/// at the line's start.
fn to_line_end(source: &str, at: usize) -> usize {
    let at = at.min(source.len());
    // A block scalar's span runs on over the next line's indentation.
    let start = line_start(source, at);
    if source[start..at].trim().is_empty() {
        return start;
    }
    let rest = &source[at..];
    let line = rest.split('\n').next().unwrap_or("");
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        (at + line.len() + 1).min(source.len())
    } else {
        at
    }
}

/// The start of the line holding `at`.
fn line_start(source: &str, at: usize) -> usize {
    source[..at.min(source.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1)
}

/// A sequence item's mapping as block YAML placed after a `- ` at `dash` columns.
fn item_text(item: &Json, dash: usize) -> String {
    let block = yaml::emit(item, dash + 2);
    format!("{}- {}", " ".repeat(dash), block.trim_start_matches(' '))
}

/// The column of the `-` introducing the item that starts at `at`.
fn dash_column(source: &str, at: usize) -> usize {
    let start = line_start(source, at);
    let line = &source[start..at.min(source.len())];
    line.find('-')
        .unwrap_or_else(|| line.len().saturating_sub(2))
}

fn append_item(source: &str, list: &Entry, item: &Json) -> String {
    let node = &list.value;
    if let Value::Seq(items) = &node.value
        && let Some(last) = items.last()
    {
        let dash = dash_column(source, last.span.start.offset);
        let at = end_of(source, last);
        let mut out = String::with_capacity(source.len() + 256);
        out.push_str(&source[..at]);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&item_text(item, dash));
        out.push_str(&source[at..]);
        return out;
    }
    // An empty list (`components: []`): written again as a block list.
    let key_col = list.key_span.start.col.saturating_sub(1);
    let from = list.key_span.start.offset;
    let to = end_of(source, node).max(list.key_span.end.offset);
    let mut text = format!("components:\n{}", item_text(item, key_col + 2));
    if !source[to..].is_empty() && !source[..to].ends_with('\n') {
        text.push('\n');
    }
    splice(source, from, to, &text)
}

fn replace_item(source: &str, old: &Node, item: &Json) -> String {
    let from = line_start(source, old.span.start.offset);
    let dash = dash_column(source, old.span.start.offset);
    splice(source, from, end_of(source, old), &item_text(item, dash))
}

fn remove_item(source: &str, items: &[Node], index: usize) -> String {
    let old = &items[index];
    let from = line_start(source, old.span.start.offset);
    splice(source, from, end_of(source, old), "")
}

fn replace_entry(source: &str, entry: &Entry, value: &Json) -> String {
    let col = entry.key_span.start.col.saturating_sub(1);
    let from = line_start(source, entry.key_span.start.offset);
    let to = end_of(source, &entry.value);
    let mut text = yaml::emit(&serde_json::json!({ entry.key.clone(): value }), col);
    // An anchor on the old value (`config: &nav`) stays on the new one, so the
    // aliases elsewhere in the file share the new value.
    if let Some(anchor) = anchor_after(source, entry) {
        let head = format!("{}:\n", entry.key);
        if let Some(at) = text.find(&head) {
            text.replace_range(at..at + head.len(), &format!("{}: &{anchor}\n", entry.key));
        }
    }
    splice(source, from, to, &text)
}

/// The anchor written between an entry's key and its value, if any.
fn anchor_after<'s>(source: &'s str, entry: &Entry) -> Option<&'s str> {
    // The value's span may start at its anchor or after it.
    let rest = source.get(entry.key_span.end.offset..)?;
    let rest = &rest[..rest.find('\n').unwrap_or(rest.len())];
    let after = rest
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('&')?;
    let name = after.split(|c: char| c.is_whitespace()).next()?;
    (!name.is_empty()).then_some(name)
}

fn remove_lines(source: &str, entry: &Entry, only: bool) -> String {
    let from = line_start(source, entry.key_span.start.offset);
    let to = end_of(source, &entry.value);
    let text = if only {
        // The last override gone: an empty map, not a `components:` of null.
        format!(
            "{}{{}}\n",
            " ".repeat(entry.key_span.start.col.saturating_sub(1))
        )
    } else {
        String::new()
    };
    let out = splice(source, from, to, &text);
    if only {
        // `components:\n  {}` reads as a map holding `{}`; say it on one line.
        return out.replacen(&format!("components:\n{text}"), "components: {}\n", 1);
    }
    out
}

fn add_override(source: &str, root: &Node, value: &Json) -> String {
    match root.entry("components") {
        Some(entry) if matches!(&entry.value.value, Value::Map(m) if !m.is_empty()) => {
            let Value::Map(entries) = &entry.value.value else {
                return source.to_string();
            };
            let last = &entries[entries.len() - 1];
            let col = last.key_span.start.col.saturating_sub(1);
            let at = end_of(source, &last.value);
            let mut out = source[..at].to_string();
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&yaml::emit(value, col));
            out.push_str(&source[at..]);
            out
        }
        Some(entry) => {
            // `components: {}` (or empty): written again as a block map.
            let from = line_start(source, entry.key_span.start.offset);
            let to =
                end_of(source, &entry.value).max(to_line_end(source, entry.key_span.end.offset));
            let text = format!("components:\n{}", yaml::emit(value, 2));
            splice(source, from, to, &text)
        }
        None => {
            let mut out = source.to_string();
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str("components:\n");
            out.push_str(&yaml::emit(value, 2));
            out
        }
    }
}

fn splice(source: &str, from: usize, to: usize, text: &str) -> String {
    let mut out = String::with_capacity(source.len() + text.len());
    out.push_str(&source[..from]);
    out.push_str(text);
    out.push_str(&source[to.max(from)..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SITE: &str = "\
# A site.
name: Demo
template: t
pages:
  - path: /about
    title: About
    components:
      - id: about-nav
        component: navbar
        # shared below
        config: &nav
          links: [{ label: Home, href: / }]
      - id: about-hero
        component: hero
        config:
          headline: Hello
      - { id: about-cta, component: cta, config: { heading: Hi } }

components:
  # Inherited navbars get the same links.
  nav: { config: *nav }
  hero:
    config:
      headline: Home
";

    fn cfg(v: Json) -> Map<String, Json> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn data(text: &str) -> Json {
        let parsed = yaml::parse(text);
        assert!(parsed.problems.is_empty(), "{:?}\n{text}", parsed.problems);
        parsed.root.expect("parses").to_json()
    }

    fn inherited(id: &str) -> bool {
        ["nav", "hero", "footer"].contains(&id)
    }

    #[test]
    fn configure_replaces_only_the_instance() {
        let out = apply(
            SITE,
            &Change::Configure {
                id: "about-hero".into(),
                config: cfg(json!({"headline": "New", "subheadline": "Sub"})),
            },
            inherited,
        )
        .expect("applies");
        let d = data(&out);
        assert_eq!(
            d["pages"][0]["components"][1]["config"],
            json!({"headline": "New", "subheadline": "Sub"})
        );
        assert_eq!(d["pages"][0]["components"][2]["id"], "about-cta");
        // Everything else is byte for byte as it was.
        assert!(out.starts_with("# A site.\n"));
        assert!(out.contains("        # shared below\n        config: &nav\n"));
        assert!(out.contains("  nav: { config: *nav }\n"));
        assert_eq!(data(SITE)["components"], d["components"]);
    }

    #[test]
    fn configure_rewrites_a_flow_item_and_an_aliased_override() {
        let out = apply(
            SITE,
            &Change::Configure {
                id: "about-cta".into(),
                config: cfg(json!({"heading": "Bye"})),
            },
            inherited,
        )
        .expect("applies");
        assert_eq!(
            data(&out)["pages"][0]["components"][2],
            json!({"id": "about-cta", "component": "cta", "config": {"heading": "Bye"}})
        );
        let out = apply(
            SITE,
            &Change::Configure {
                id: "nav".into(),
                config: cfg(json!({"links": []})),
            },
            inherited,
        )
        .expect("applies");
        let d = data(&out);
        assert_eq!(d["components"]["nav"], json!({"config": {"links": []}}));
        assert_eq!(d["components"]["hero"]["config"]["headline"], "Home");
        assert!(out.contains("config: &nav"), "the anchor stays: {out}");
        // The anchored config itself, changed: the aliases share the new value.
        let out = apply(
            SITE,
            &Change::Configure {
                id: "about-nav".into(),
                config: cfg(json!({"links": [{"label": "Blog", "href": "/blog"}]})),
            },
            inherited,
        )
        .expect("applies");
        let d = data(&out);
        assert_eq!(
            d["components"]["nav"]["config"]["links"][0]["label"], "Blog",
            "{out}"
        );
        assert!(
            out.contains("        # shared below\n        config: &nav\n"),
            "{out}"
        );
    }

    #[test]
    fn an_inherited_instance_gets_an_override() {
        let out = apply(
            SITE,
            &Change::Configure {
                id: "footer".into(),
                config: cfg(json!({"address": "1 Main St"})),
            },
            inherited,
        )
        .expect("applies");
        let d = data(&out);
        assert_eq!(d["components"]["footer"]["config"]["address"], "1 Main St");
        assert_eq!(d["components"]["hero"]["config"]["headline"], "Home");
    }

    #[test]
    fn add_appends_to_the_page_and_refuses_duplicates() {
        let add = |id: &str, page: &str| Change::Add {
            page: page.into(),
            id: id.into(),
            component: "contact-form".into(),
            config: cfg(json!({"heading": "Write to us", "fields": ["email"]})),
        };
        let out = apply(SITE, &add("about-form", "/about"), inherited).expect("applies");
        let d = data(&out);
        let list = d["pages"][0]["components"].as_array().expect("list");
        assert_eq!(list.len(), 4);
        assert_eq!(list[3]["id"], "about-form");
        assert_eq!(list[3]["config"]["fields"], json!(["email"]));
        assert_eq!(
            apply(SITE, &add("about-hero", "/about"), inherited),
            Err(EditError::Exists("about-hero".into()))
        );
        assert_eq!(
            apply(SITE, &add("hero", "/about"), inherited),
            Err(EditError::Exists("hero".into()))
        );
        assert_eq!(
            apply(SITE, &add("x", "/nowhere"), inherited),
            Err(EditError::NoPage("/nowhere".into()))
        );
    }

    #[test]
    fn remove_takes_out_the_item_or_the_override() {
        let out = apply(
            SITE,
            &Change::Remove {
                id: "about-hero".into(),
            },
            inherited,
        )
        .expect("applies");
        let d = data(&out);
        let ids: Vec<&str> = d["pages"][0]["components"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|i| i["id"].as_str())
            .collect();
        assert_eq!(ids, ["about-nav", "about-cta"]);
        let out = apply(SITE, &Change::Remove { id: "hero".into() }, inherited).expect("applies");
        let d = data(&out);
        assert!(d["components"].get("hero").is_none());
        assert!(d["components"].get("nav").is_some());
        assert_eq!(
            apply(
                SITE,
                &Change::Remove {
                    id: "footer".into()
                },
                inherited
            ),
            Err(EditError::Inherited("footer".into()))
        );
        assert_eq!(
            apply(SITE, &Change::Remove { id: "ghost".into() }, inherited),
            Err(EditError::NoInstance("ghost".into()))
        );
    }

    #[test]
    fn a_block_alias_is_replaced_with_its_line() {
        let src = "name: D\ntemplate: t\npages:\n  - path: /a\n    title: A\n    components:\n      - id: n\n        component: navbar\n        config: &nav\n          cta_label: Go\ncomponents:\n  nav:\n    config: *nav # shared\n  hero:\n    config: { headline: H }\n";
        let out = apply(
            src,
            &Change::Configure {
                id: "nav".into(),
                config: cfg(json!({"cta_label": "Stop"})),
            },
            inherited,
        )
        .expect("applies");
        let d = data(&out);
        assert_eq!(
            d["components"]["nav"]["config"]["cta_label"], "Stop",
            "{out}"
        );
        assert_eq!(d["components"]["hero"]["config"]["headline"], "H", "{out}");
        assert_eq!(
            d["pages"][0]["components"][0]["config"]["cta_label"], "Go",
            "{out}"
        );
    }

    #[test]
    fn the_last_override_removed_leaves_an_empty_map() {
        let src = "name: D\ntemplate: t\npages: []\ncomponents:\n  hero:\n    config:\n      headline: H\n";
        let out = apply(src, &Change::Remove { id: "hero".into() }, inherited).expect("applies");
        assert_eq!(data(&out)["components"], json!({}));
    }
}

#[cfg(test)]
mod demo_tests {
    use super::*;
    use serde_json::json;

    const DEMO: &str = include_str!("../sites/demo/site.yaml");

    #[test]
    fn the_demo_site_s_hero_is_configured_in_place() {
        let out = apply(
            DEMO,
            &Change::Configure {
                id: "about-hero".into(),
                config: json!({"headline": "New"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            },
            |_| false,
        )
        .expect("applies");
        let parsed = yaml::parse(&out);
        assert!(parsed.problems.is_empty(), "{:?}\n{out}", parsed.problems);
        let before = yaml::parse(DEMO).root.expect("demo").to_json();
        let mut after = parsed.root.expect("edited").to_json();
        assert_eq!(
            after["pages"][0]["components"][1]["config"],
            json!({"headline": "New"})
        );
        after["pages"][0]["components"][1]["config"] =
            before["pages"][0]["components"][1]["config"].clone();
        assert_eq!(after, before, "nothing else changed");
    }
}
