//! Expressions and templates: each compiles with minijinja, and uses only names that
//! exist where it stands.
//!
//! Workflow scope: `trigger` (its fields where a schema says which: a form's fields,
//! a declared payload), `contact` (built-in and custom fields), `steps.<id>` of
//! earlier steps, `vars` (declared or set earlier), `workflow`, `execution`, `now`,
//! `error`; `item` and `index` inside `for_each`; `event` in a wait's `match`.
//! Email templates see `contact`, `data`, `workspace`, `links` and `now`; site pages
//! and component markup see `site`, `page`, `config` and a few render values.

use std::collections::BTreeSet;

use minijinja::Environment;

use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::model::site_template::Page;
use crate::model::step::StepKind;
use crate::model::variable::ValueType;
use crate::model::workflow::{Trigger, TriggerKind, Workflow};
use crate::validate::graph::flatten;
use crate::validate::references::CONTACT_FIELDS;
use crate::validate::sites::site_instances;
use crate::validate::{Located, join};
use crate::workspace::Workspace;
use crate::yaml::{Node, Seg, Value};

/// Globals minijinja itself provides.
const GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "loop",
    "true",
    "false",
    "none",
];

/// How a string is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A bare expression (a condition).
    Expr,
    /// Text with `{{ … }}` placeholders.
    Template,
    /// A JSON value whose strings are templates.
    Tree,
}

/// Which names exist, and what is known below them.
#[derive(Debug, Default, Clone)]
struct Scope<'a> {
    roots: BTreeSet<&'static str>,
    steps: BTreeSet<&'a str>,
    vars: Option<BTreeSet<String>>,
    trigger: Option<TriggerShape>,
    contact: bool,
    custom_fields: Option<BTreeSet<String>>,
    /// Names checked one level down, e.g. `site` → declared variables.
    children: Vec<(&'static str, BTreeSet<String>)>,
}

/// What is known of `trigger.*` for one trigger kind.
#[derive(Debug, Default, Clone)]
struct TriggerShape {
    keys: BTreeSet<&'static str>,
    /// `fields` of a form, or `payload` of an event, when declared.
    nested: Option<(&'static str, BTreeSet<String>)>,
}

pub fn check(ws: &Workspace, out: &mut Vec<Diagnostic>) {
    let env = environment();
    // No fields.yaml at all means no custom fields; one that failed to load means
    // they are unknown, and nothing is said about them.
    let custom_fields: Option<BTreeSet<String>> = match &ws.fields {
        Some(f) => Some(f.value.fields.keys().cloned().collect()),
        None if ws.knows(crate::model::FileKind::Fields, "fields") => None,
        None => Some(BTreeSet::new()),
    };
    for doc in ws.workflows.values() {
        let at = Located::of(ws, doc);
        workflow(ws, &env, &doc.value, &at, custom_fields.clone(), out);
    }
    let email_scope = |extra: &[&'static str]| {
        let mut roots: BTreeSet<&'static str> =
            ["contact", "data", "workspace", "links", "now"].into();
        roots.extend(extra);
        let mut scope = Scope {
            roots,
            contact: true,
            custom_fields: custom_fields.clone(),
            ..Scope::default()
        };
        scope.children.push((
            "links",
            ["unsubscribe", "view_in_browser", "preferences"]
                .map(String::from)
                .into(),
        ));
        scope
    };
    for doc in ws.email_templates.values() {
        let at = Located::of(ws, doc);
        let scope = email_scope(&[]);
        for key in ["subject", "preheader", "html", "text"] {
            check_at(&env, &at, &crate::path![key], Mode::Template, &scope, out);
        }
    }
    // A layout sees what its emails see, and `content`: their body.
    for doc in ws.email_layouts.values() {
        let at = Located::of(ws, doc);
        let scope = email_scope(&["content"]);
        for key in ["html", "text"] {
            check_at(&env, &at, &crate::path![key], Mode::Template, &scope, out);
        }
    }
    for doc in ws.site_templates.values() {
        let at = Located::of(ws, doc);
        let scope = site_scope(doc.value.variables.keys().cloned().collect());
        pages(&env, &at, &doc.value.pages, &scope, out);
    }
    for doc in ws.sites.values() {
        let at = Located::of(ws, doc);
        let vars = ws
            .site_templates
            .get(doc.value.template.as_str())
            .map(|t| t.value.variables.keys().cloned().collect())
            .unwrap_or_default();
        let scope = site_scope(vars);
        for key in ["title", "description"] {
            check_at(
                &env,
                &at,
                &crate::path!["seo", key],
                Mode::Template,
                &scope,
                out,
            );
        }
        pages(&env, &at, &doc.value.pages, &scope, out);
        check_at(
            &env,
            &at,
            &crate::path!["components"],
            Mode::Tree,
            &scope,
            out,
        );
    }
    for (id, (file, text)) in &ws.component_markup {
        let Some(def) = ws.components.get(id) else {
            continue;
        };
        let mut scope = site_scope(BTreeSet::new());
        scope
            .roots
            .extend(["config", "instance", "form_action", "public_url", "h"]);
        scope
            .children
            .push(("config", def.value.config.keys().cloned().collect()));
        // Any site's variables may be used by a shared component: `site.*` is open.
        scope.children.retain(|(root, _)| *root != "site");
        markup(&env, file, text, &scope, out);
    }
}

/// Page titles, descriptions and component config of a template's or site's pages.
fn pages(
    env: &Environment,
    at: &Located,
    pages: &[Page],
    scope: &Scope,
    out: &mut Vec<Diagnostic>,
) {
    for (i, page) in pages.iter().enumerate() {
        for key in ["title", "description"] {
            check_at(
                env,
                at,
                &crate::path!["pages", i, key],
                Mode::Template,
                scope,
                out,
            );
        }
        for j in 0..page.components.len() {
            let p = crate::path!["pages", i, "components", j, "config"];
            check_at(env, at, &p, Mode::Tree, scope, out);
        }
    }
}

fn site_scope(vars: BTreeSet<String>) -> Scope<'static> {
    let mut site: BTreeSet<String> = vars;
    site.extend(["id", "name", "url", "domain", "language"].map(String::from));
    Scope {
        roots: ["site", "page", "now"].into(),
        children: vec![("site", site)],
        ..Scope::default()
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(100_000));
    env
}

fn workflow(
    ws: &Workspace,
    env: &Environment,
    wf: &Workflow,
    at: &Located,
    custom_fields: Option<BTreeSet<String>>,
    out: &mut Vec<Diagnostic>,
) {
    let mut vars: BTreeSet<String> = wf.vars.keys().cloned().collect();
    let mut scope = Scope {
        roots: [
            "trigger",
            "contact",
            "steps",
            "vars",
            "workflow",
            "execution",
            "now",
            "error",
        ]
        .into(),
        vars: None,
        trigger: Some(trigger_shape(ws, &wf.trigger)),
        contact: true,
        custom_fields,
        ..Scope::default()
    };
    // Set-vars anywhere in the workflow may run before a later loop iteration: a
    // variable is known once any earlier step in document order sets it.
    scope.vars = Some(vars.clone());
    for (i, _) in wf.trigger.conditions.iter().enumerate() {
        check_at(
            env,
            at,
            &crate::path!["trigger", "conditions", i],
            Mode::Expr,
            &scope,
            out,
        );
    }
    for s in flatten(wf) {
        let step = s.step;
        let mut local = scope.clone();
        local.vars = Some(vars.clone());
        if s.in_for_each {
            local.roots.extend(["item", "index"]);
        }
        if step.when.is_some() {
            check_at(
                env,
                at,
                &join(&s.path, [Seg::from("when")]),
                Mode::Expr,
                &local,
                out,
            );
        }
        for (key, mode) in fields(&step.kind) {
            let path = join(&s.path, key.iter().map(|k| Seg::from(*k)));
            if matches!(step.kind, StepKind::WaitForEvent { .. }) && key == ["match"] {
                let mut with_event = local.clone();
                with_event.roots.insert("event");
                check_at(env, at, &path, mode, &with_event, out);
            } else {
                check_at(env, at, &path, mode, &local, out);
            }
        }
        if let StepKind::Switch { cases, .. } = &step.kind {
            for i in 0..cases.len() {
                let p = join(
                    &s.path,
                    [Seg::from("cases"), Seg::Index(i), Seg::from("when")],
                );
                check_at(env, at, &p, Mode::Expr, &local, out);
            }
        }
        if let StepKind::SetVars { vars: set } = &step.kind {
            vars.extend(set.keys().cloned());
        }
        scope.steps.insert(step.id.as_str());
    }
}

/// The keys of a step kind that hold expressions or templates.
fn fields(kind: &StepKind) -> Vec<(Vec<&'static str>, Mode)> {
    use Mode::{Expr, Template, Tree};
    let v = |k: &'static str, m: Mode| (vec![k], m);
    match kind {
        StepKind::SendEmail { .. } => {
            vec![v("to", Template), v("subject", Template), v("data", Tree)]
        }
        StepKind::UpsertContact { .. } => vec![
            v("email", Template),
            v("name", Template),
            v("phone", Template),
            v("fields", Tree),
            v("tags", Tree),
        ],
        StepKind::UpdateContact { .. } => vec![v("fields", Tree)],
        StepKind::AddTag { .. } | StepKind::RemoveTag { .. } => vec![v("tags", Tree)],
        StepKind::AddActivity { .. } => vec![v("data", Tree)],
        StepKind::Http { .. } => vec![v("url", Template), v("headers", Tree), v("body", Tree)],
        StepKind::Slack { .. } => vec![v("text", Template)],
        StepKind::Discord { .. } => vec![v("content", Template)],
        StepKind::SocialPost { .. } => vec![v("status", Template)],
        StepKind::SetVars { .. } => vec![v("vars", Tree)],
        StepKind::Log { .. } => vec![v("message", Template)],
        StepKind::If { .. } => vec![v("condition", Expr)],
        StepKind::ForEach { .. } => vec![v("items", Expr)],
        StepKind::Loop { .. } => vec![v("while", Expr)],
        StepKind::WaitUntil { .. } => vec![v("time", Template)],
        StepKind::WaitForEvent { .. } => vec![v("match", Expr)],
        StepKind::SubWorkflow { .. } => vec![v("input", Tree)],
        StepKind::Fail { .. } => vec![v("message", Template)],
        _ => Vec::new(),
    }
}

fn trigger_shape(ws: &Workspace, trigger: &Trigger) -> TriggerShape {
    // Any workflow may also be run by another's `sub_workflow` step, which passes
    // `input` and names its `parent`.
    let mut keys: BTreeSet<&'static str> = ["type", "id", "occurred_at", "input", "parent"].into();
    let mut nested = None;
    let extra: &[&'static str] = match &trigger.kind {
        TriggerKind::FormSubmission { site, component } => {
            // The form's fields, from the instance's config or the component's default.
            let fields = site_instances(ws, site.as_str()).and_then(|instances| {
                let inst = instances
                    .into_iter()
                    .find(|i| i.instance.id == *component)?;
                let def = ws.components.get(inst.instance.component.as_str())?;
                let (name, spec) = def
                    .value
                    .config
                    .iter()
                    .find(|(_, s)| s.kind == ValueType::FormFields)?;
                // A site's override wins over the page's config, which wins over
                // the component's default.
                let overridden = ws
                    .sites
                    .get(site.as_str())
                    .and_then(|s| s.value.components.get(component.as_str()))
                    .and_then(|o| o.config.get(name));
                let value = overridden
                    .or_else(|| inst.instance.config.get(name))
                    .or(spec.default.as_ref())?;
                let names: BTreeSet<String> = value
                    .as_array()?
                    .iter()
                    .filter_map(|f| f.get("name")?.as_str().map(String::from))
                    .collect();
                Some(names)
            });
            nested = fields.map(|f| ("fields", f));
            &[
                "site",
                "component",
                "page",
                "fields",
                "utm",
                "visitor",
                "referrer",
                "contact_created",
            ]
        }
        TriggerKind::PageEvent { .. } => &[
            "site",
            "page",
            "component",
            "event",
            "value",
            "count",
            "utm",
            "visitor",
            "referrer",
            "element",
            "x",
            "y",
        ],
        TriggerKind::Schedule { .. } => &["scheduled_at", "cron", "timezone"],
        TriggerKind::CustomEvent { payload, .. } | TriggerKind::Webhook { payload, .. } => {
            nested = payload
                .as_ref()
                .map(|p| ("payload", p.keys().cloned().collect()));
            &["event", "payload", "path", "headers", "query"]
        }
        TriggerKind::ContactCreated { .. } => &["source"],
        TriggerKind::TagAdded { .. } => &["tag"],
        TriggerKind::ListJoined { .. } => &["list"],
        TriggerKind::FieldChanged { .. } => &["field", "from", "to"],
        TriggerKind::ScoreCrossed { .. } => &["threshold", "score", "previous_score", "direction"],
        TriggerKind::StageChanged { .. } => &["from", "to"],
        TriggerKind::DealStageChanged { .. } => {
            &["pipeline", "stage", "from_stage", "deal_id", "value"]
        }
        TriggerKind::EmailOpened { .. }
        | TriggerKind::EmailClicked { .. }
        | TriggerKind::EmailBounced { .. }
        | TriggerKind::EmailUnsubscribed { .. } => &["template", "email_id", "url", "reason"],
    };
    keys.extend(extra.iter().copied());
    TriggerShape { keys, nested }
}

/// Checks the string(s) at `path` of a document, if present.
fn check_at(
    env: &Environment,
    at: &Located,
    path: &[Seg],
    mode: Mode,
    scope: &Scope,
    out: &mut Vec<Diagnostic>,
) {
    let Some(node) = at.node(path) else { return };
    match (&node.value, mode) {
        (Value::Str(text), Mode::Expr) => one(env, at, node, text, true, scope, out),
        (Value::Str(text), Mode::Template | Mode::Tree) => {
            one(env, at, node, text, false, scope, out)
        }
        (Value::Seq(items), Mode::Tree) => {
            for i in 0..items.len() {
                check_at(
                    env,
                    at,
                    &join(path, [Seg::Index(i)]),
                    Mode::Tree,
                    scope,
                    out,
                );
            }
        }
        (Value::Map(entries), Mode::Tree) => {
            for e in entries {
                check_at(
                    env,
                    at,
                    &join(path, [Seg::from(&e.key)]),
                    Mode::Tree,
                    scope,
                    out,
                );
            }
        }
        _ => {}
    }
}

fn one(
    env: &Environment,
    at: &Located,
    node: &Node,
    text: &str,
    expr: bool,
    scope: &Scope,
    out: &mut Vec<Diagnostic>,
) {
    if !expr && !text.contains("{{") && !text.contains("{%") {
        return;
    }
    let names = if expr {
        match env.compile_expression(text) {
            Ok(e) => e.undeclared_variables(true),
            Err(err) => {
                let pos = node.inner_pos(at.text, err.range().map_or(0, |r| r.start));
                out.push(
                    Diagnostic::error(
                        Code::ExpressionSyntax,
                        at.file,
                        crate::yaml::Span {
                            start: pos,
                            end: pos,
                        },
                        format!("the expression does not compile: {}", err_text(&err)),
                    )
                    .with_help(
                        "conditions are bare minijinja expressions, e.g. `contact.score >= 50`",
                    ),
                );
                return;
            }
        }
    } else {
        match env.template_from_str(text) {
            Ok(t) => t.undeclared_variables(true),
            Err(err) => {
                let pos = node.inner_pos(at.text, err.range().map_or(0, |r| r.start));
                out.push(
                    Diagnostic::error(
                        Code::TemplateSyntax,
                        at.file,
                        crate::yaml::Span {
                            start: pos,
                            end: pos,
                        },
                        format!("the template does not compile: {}", err_text(&err)),
                    )
                    .with_help(
                        "placeholders are written `{{ name }}`; blocks `{% if … %}…{% endif %}`",
                    ),
                );
                return;
            }
        }
    };
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for name in &names {
        if let Some((message, help)) = unknown(name, scope) {
            if !reported.insert(message.clone()) {
                continue;
            }
            let (offset, len) = find_name(text, name);
            let start = node.inner_pos(at.text, offset);
            let end = node.inner_pos(at.text, offset + len);
            out.push(
                Diagnostic::error(
                    Code::UnknownName,
                    at.file,
                    crate::yaml::Span { start, end },
                    message,
                )
                .maybe_help(help),
            );
        }
    }
}

fn err_text(err: &minijinja::Error) -> String {
    err.detail()
        .map_or_else(|| err.kind().to_string(), str::to_string)
}

/// Where a dotted name is written in the text (byte offset and length).
fn find_name(text: &str, name: &str) -> (usize, usize) {
    let mut parts: Vec<&str> = name.split('.').collect();
    while !parts.is_empty() {
        let probe = parts.join(".");
        if let Some(i) = find_word(text, &probe) {
            return (i, probe.len());
        }
        parts.pop();
    }
    (0, 0)
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find(word).map(|i| i + from) {
        let before = i.checked_sub(1).map(|b| bytes[b]);
        let after = bytes.get(i + word.len()).copied();
        let ok = before.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.'))
            && after.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_'));
        if ok {
            return Some(i);
        }
        from = i + word.len();
    }
    None
}

/// Why `name` does not exist in `scope`, with a hint.
fn unknown(name: &str, scope: &Scope) -> Option<(String, Option<String>)> {
    let mut parts = name.split('.');
    let root = parts.next()?;
    let second = parts.next();
    let third = parts.next();
    if GLOBALS.contains(&root) {
        return None;
    }
    if !scope.roots.contains(root) {
        let hint = did_you_mean(root, scope.roots.iter().copied()).unwrap_or_else(|| {
            format!(
                "names here: {}",
                scope.roots.iter().copied().collect::<Vec<_>>().join(", ")
            )
        });
        return Some((format!("unknown name `{root}`"), Some(hint)));
    }
    let second = second?;
    match root {
        "steps" if !scope.steps.contains(second) => Some((
            format!("`steps.{second}`: no earlier step has the id `{second}`"),
            did_you_mean(second, scope.steps.iter().copied())
                .or_else(|| Some("a step can read the outputs of steps that run before it".into())),
        )),
        "vars" => {
            let vars = scope.vars.as_ref()?;
            (!vars.contains(second)).then(|| {
                (
                    format!("`vars.{second}` is not declared"),
                    did_you_mean(second, vars.iter().map(String::as_str)).or_else(|| {
                        Some(
                            "declare it under `vars:` or set it in an earlier `set_vars` step"
                                .into(),
                        )
                    }),
                )
            })
        }
        "contact" if scope.contact => {
            if second == "fields" {
                let third = third?;
                let custom = scope.custom_fields.as_ref()?;
                return (!custom.contains(third)).then(|| {
                    (
                        format!("`contact.fields.{third}`: no custom field `{third}`"),
                        did_you_mean(third, custom.iter().map(String::as_str)).or_else(|| {
                            Some("custom fields are defined in contacts/fields.yaml".into())
                        }),
                    )
                });
            }
            (!CONTACT_FIELDS.contains(&second)).then(|| {
                let custom_hint = scope
                    .custom_fields
                    .as_ref()
                    .filter(|c| c.contains(second))
                    .map(|_| {
                        format!("`{second}` is a custom field: write `contact.fields.{second}`")
                    });
                (
                    format!("contacts have no field `{second}`"),
                    custom_hint.or_else(|| did_you_mean(second, CONTACT_FIELDS.iter().copied())),
                )
            })
        }
        "trigger" => {
            let shape = scope.trigger.as_ref()?;
            if !shape.keys.contains(second) {
                return Some((
                    format!("this trigger has no `{second}`"),
                    did_you_mean(second, shape.keys.iter().copied()).or_else(|| {
                        Some(format!(
                            "its data: {}",
                            shape.keys.iter().copied().collect::<Vec<_>>().join(", ")
                        ))
                    }),
                ));
            }
            let (key, names) = shape.nested.as_ref()?;
            let third = third?;
            (second == *key && !names.contains(third)).then(|| {
                (
                    format!(
                        "`trigger.{key}.{third}`: no such {}",
                        if *key == "fields" {
                            "form field"
                        } else {
                            "payload field"
                        }
                    ),
                    did_you_mean(third, names.iter().map(String::as_str)).or_else(|| {
                        Some(format!(
                            "declared: {}",
                            names
                                .iter()
                                .map(String::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }),
                )
            })
        }
        _ => {
            let (_, children) = scope.children.iter().find(|(r, _)| *r == root)?;
            (!children.contains(second)).then(|| {
                (
                    format!("`{root}` has no `{second}`"),
                    did_you_mean(second, children.iter().map(String::as_str)),
                )
            })
        }
    }
}

/// Component markup: compiles, and uses only its config fields.
fn markup(
    env: &Environment,
    file: &std::path::Path,
    text: &str,
    scope: &Scope,
    out: &mut Vec<Diagnostic>,
) {
    let node = Node {
        value: Value::Str(text.to_string()),
        span: crate::yaml::Span::default(),
        style: crate::yaml::Style::Plain,
    };
    let at = Located {
        file,
        root: &node,
        text,
    };
    let mut found = Vec::new();
    one(env, &at, &node, text, false, scope, &mut found);
    // Positions inside the markup file: the whole file is the template.
    for mut d in found {
        let (line, col) = line_col(text, d.offset);
        d.line = line;
        d.column = col;
        out.push(d);
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
