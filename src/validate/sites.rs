//! Sites against their templates, and templates against their components: required
//! variables, value types, component instances (existing, unique ids, known config
//! keys) and page paths.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value as J;

use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::model::FileKind;
use crate::model::site_template::{ComponentInstance, Page};
use crate::model::variable::{ValueType, VariableSpec};
use crate::validate::values::{check_url, is_color, is_email};
use crate::validate::{Located, join};
use crate::workspace::Workspace;
use crate::yaml::Seg;

/// A component instance of a site, and the file and path where it is written.
#[derive(Debug, Clone)]
pub struct InstanceRef<'a> {
    pub instance: &'a ComponentInstance,
    pub page: &'a Page,
    pub at: Located<'a>,
    pub path: Vec<Seg>,
}

/// The pages of a site: the template's, replaced or extended by the site's own.
pub fn site_pages<'a>(
    ws: &'a Workspace,
    site: &str,
) -> Option<Vec<(&'a Page, Located<'a>, Vec<Seg>)>> {
    let doc = ws.sites.get(site)?;
    let site_at = Located::of(ws, doc);
    let mut pages: Vec<(&Page, Located, Vec<Seg>)> = Vec::new();
    // Without its template the site's pages are unknown, not empty: say nothing
    // about them rather than report every instance as missing.
    let tpl = ws.site_templates.get(doc.value.template.as_str())?;
    {
        let tpl_at = Located::of(ws, tpl);
        for (i, page) in tpl.value.pages.iter().enumerate() {
            if !doc.value.pages.iter().any(|p| p.path == page.path) {
                pages.push((page, tpl_at, crate::path!["pages", i]));
            }
        }
    }
    for (i, page) in doc.value.pages.iter().enumerate() {
        pages.push((page, site_at, crate::path!["pages", i]));
    }
    Some(pages)
}

/// Every component instance of a site, in page order.
pub fn site_instances<'a>(ws: &'a Workspace, site: &str) -> Option<Vec<InstanceRef<'a>>> {
    let pages = site_pages(ws, site)?;
    let mut out = Vec::new();
    for (page, at, base) in pages {
        for (j, instance) in page.components.iter().enumerate() {
            out.push(InstanceRef {
                instance,
                page,
                at,
                path: join(&base, [Seg::from("components"), Seg::Index(j)]),
            });
        }
    }
    Some(out)
}

/// Paths every site host answers itself: form posts, beacons, and the links in
/// emails (unsubscribe, view, open, click). A page there would never be served.
const RESERVED_PATHS: &[&str] = &[
    "/f/",
    "/t",
    "/u/",
    "/e/",
    "/o/",
    "/c/",
    "/p/",
    "/confirm/",
    "/email/",
    "/__funnel/",
];

fn reserved_path(at: &Located<'_>, i: usize, path: &str, out: &mut Vec<Diagnostic>) {
    let taken = RESERVED_PATHS
        .iter()
        .find(|r| path == r.trim_end_matches('/') || (r.ends_with('/') && path.starts_with(*r)));
    if let Some(r) = taken {
        out.push(
            at.error(
                Code::InvalidValue,
                &crate::path!["pages", i, "path"],
                format!("the path `{path}` is funnel's own (`{r}` answers form posts, tracking and email links)"),
            )
            .with_help("choose another path for this page"),
        );
    }
}

pub fn check(ws: &Workspace, out: &mut Vec<Diagnostic>) {
    for doc in ws.site_templates.values() {
        let at = Located::of(ws, doc);
        for (name, spec) in &doc.value.variables {
            if let Some(default) = &spec.default
                && let Err((code, why)) = check_value(spec, default)
            {
                out.push(at.error(
                    code,
                    &crate::path!["variables", name.as_str(), "default"],
                    format!("the default of `{name}` {why}"),
                ));
            }
        }
        let mut paths: HashMap<&str, usize> = HashMap::new();
        let mut ids: HashMap<&str, usize> = HashMap::new();
        for (i, page) in doc.value.pages.iter().enumerate() {
            reserved_path(&at, i, page.path.as_str(), out);
            if paths.insert(page.path.as_str(), i).is_some() {
                out.push(at.error(
                    Code::DuplicatePage,
                    &crate::path!["pages", i, "path"],
                    format!("two pages have the path `{}`", page.path),
                ));
            }
            for (j, inst) in page.components.iter().enumerate() {
                let path = crate::path!["pages", i, "components", j];
                if ids.insert(inst.id.as_str(), i).is_some() {
                    out.push(duplicate_instance(&at, &path, inst.id.as_str()));
                }
                instance_config(ws, inst, &at, &path, None, out);
            }
        }
    }

    for doc in ws.components.values() {
        let at = Located::of(ws, doc);
        for (name, spec) in &doc.value.config {
            if let Some(default) = &spec.default
                && let Err((code, why)) = check_value(spec, default)
            {
                let path = crate::path!["config", name.as_str(), "default"];
                out.push(at.error(code, &path, format!("the default of `{name}` {why}")));
            }
        }
    }

    for (site_id, doc) in &ws.sites {
        let at = Located::of(ws, doc);
        let site = &doc.value;
        let Some(tpl) = ws.site_templates.get(site.template.as_str()) else {
            if !ws.knows(FileKind::SiteTemplate, site.template.as_str()) {
                out.push(
                    at.error(
                        Code::UnknownTemplate,
                        &crate::path!["template"],
                        format!("no site template `{}`", site.template),
                    )
                    .with_help(
                        did_you_mean(site.template.as_str(), ws.ids(FileKind::SiteTemplate))
                            .unwrap_or_else(|| {
                                "`funnel templates list` shows the templates".into()
                            }),
                    ),
                );
            }
            continue;
        };
        let vars = &tpl.value.variables;
        for (name, spec) in vars {
            match site.customizations.get(name) {
                Some(value) => {
                    if let Err((code, why)) = check_value(spec, value) {
                        out.push(at.error(
                            code,
                            &crate::path!["customizations", name.as_str()],
                            format!("`{name}` {why}"),
                        ));
                    }
                }
                None if spec.default.is_none() => out.push(
                    at.error(
                        Code::MissingVariable,
                        &crate::path!["customizations"],
                        format!(
                            "template `{}` needs `{name}` ({}), which has no default",
                            site.template,
                            spec.kind.name()
                        ),
                    )
                    .with_help(format!("add `{name}:` under `customizations`")),
                ),
                None => {}
            }
        }
        for name in site.customizations.keys() {
            if !vars.contains_key(name) {
                let path = crate::path!["customizations", name.as_str()];
                out.push(
                    Diagnostic::error(
                        Code::UnknownVariable,
                        at.file,
                        at.key_span(&path),
                        format!("template `{}` has no variable `{name}`", site.template),
                    )
                    .maybe_help(did_you_mean(name, vars.keys().map(String::as_str))),
                );
            }
        }

        let mut paths: HashMap<&str, usize> = HashMap::new();
        for (i, page) in site.pages.iter().enumerate() {
            reserved_path(&at, i, page.path.as_str(), out);
            if paths.insert(page.path.as_str(), i).is_some() {
                out.push(at.error(
                    Code::DuplicatePage,
                    &crate::path!["pages", i, "path"],
                    format!("two pages of this site have the path `{}`", page.path),
                ));
            }
        }
        let Some(instances) = site_instances(ws, site_id) else {
            continue;
        };
        let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
        for inst in &instances {
            let id = inst.instance.id.as_str();
            // Template pages are checked on their own; here only the site's pages.
            let from_site = inst.at.file == at.file;
            if seen.insert(id, ()).is_some() && from_site {
                out.push(duplicate_instance(&inst.at, &inst.path, id));
            }
            if from_site {
                let overrides = None;
                instance_config(ws, inst.instance, &inst.at, &inst.path, overrides, out);
            }
        }
        for (id, ov) in &site.components {
            let path = crate::path!["components", id.as_str()];
            match instances.iter().find(|i| i.instance.id.as_str() == id) {
                None => out.push(
                    Diagnostic::error(
                        Code::UnknownComponent,
                        at.file,
                        at.key_span(&path),
                        format!("site `{site_id}` has no component instance `{id}` to override"),
                    )
                    .maybe_help(did_you_mean(
                        id,
                        instances.iter().map(|i| i.instance.id.as_str()),
                    )),
                ),
                Some(inst) => {
                    instance_config(ws, inst.instance, &at, &path, Some(&ov.config), out);
                }
            }
        }
    }
}

fn duplicate_instance(at: &Located, path: &[Seg], id: &str) -> Diagnostic {
    at.error(
        Code::DuplicateComponentId,
        &join(path, [Seg::from("id")]),
        format!("component instance id `{id}` is used twice in this site"),
    )
    .with_help("instance ids are unique within a site; workflows name them")
}

/// An instance's config against its component's declared fields. With `overrides`,
/// the override map (at `path`/config) is checked instead of the instance's own.
fn instance_config(
    ws: &Workspace,
    inst: &ComponentInstance,
    at: &Located,
    path: &[Seg],
    overrides: Option<&BTreeMap<String, J>>,
    out: &mut Vec<Diagnostic>,
) {
    let component = inst.component.as_str();
    let Some(def) = ws.components.get(component) else {
        if overrides.is_none() && !ws.knows(FileKind::Component, component) {
            out.push(
                at.error(
                    Code::UnknownComponent,
                    &join(path, [Seg::from("component")]),
                    format!("no component `{component}`"),
                )
                .with_help(
                    did_you_mean(component, ws.ids(FileKind::Component))
                        .unwrap_or_else(|| "`funnel components list` shows the components".into()),
                ),
            );
        }
        return;
    };
    let config = overrides.unwrap_or(&inst.config);
    for (key, value) in config {
        let key_path = join(path, [Seg::from("config"), Seg::from(key)]);
        match def.value.config.get(key) {
            None => out.push(
                Diagnostic::error(
                    Code::UnknownVariable,
                    at.file,
                    at.key_span(&key_path),
                    format!("component `{component}` has no config field `{key}`"),
                )
                .maybe_help(did_you_mean(
                    key,
                    def.value.config.keys().map(String::as_str),
                )),
            ),
            Some(spec) => {
                if let Err((code, why)) = check_value(spec, value) {
                    out.push(at.error(code, &key_path, format!("`{key}` {why}")));
                }
            }
        }
    }
    if overrides.is_none() {
        for (key, spec) in &def.value.config {
            if spec.default.is_none() && !inst.config.contains_key(key) {
                out.push(
                    at.error(
                        Code::MissingVariable,
                        path,
                        format!(
                            "component `{component}` needs config `{key}`, which has no default"
                        ),
                    )
                    .with_help(format!("add `{key}:` under this instance's `config`")),
                );
            }
        }
    }
}

/// Whether `value` fits `spec`; the error's text completes "`name` …". A value of
/// the right kind in the wrong format (a string that is no color) gets the format's
/// own code; a value of the wrong kind gets `variable-type`.
pub fn check_value(spec: &VariableSpec, value: &J) -> Result<(), (Code, String)> {
    check_kind(spec, value).map_err(|why| {
        let code = match (spec.kind, value) {
            (ValueType::Color, J::String(_)) => Code::InvalidColor,
            (ValueType::Email, J::String(_)) => Code::InvalidEmail,
            (ValueType::Url, J::String(_)) => Code::InvalidUrl,
            (ValueType::Select, J::String(_)) => Code::InvalidValue,
            _ => Code::VariableType,
        };
        (code, why)
    })
}

fn check_kind(spec: &VariableSpec, value: &J) -> Result<(), String> {
    let text = value.as_str();
    // Values may be templates over the site's variables; their type shows at render.
    if text.is_some_and(|t| t.contains("{{")) {
        return Ok(());
    }
    // An empty address or image means "none"; the markup leaves it out.
    let optional_kind = matches!(
        spec.kind,
        ValueType::Url | ValueType::Email | ValueType::Image
    );
    if optional_kind && text == Some("") {
        return Ok(());
    }
    let expect = |what: &str| Err(format!("must be {what}, found {}", json_kind(value)));
    match spec.kind {
        ValueType::String | ValueType::Text | ValueType::Font | ValueType::Image => {
            if text.is_none() {
                return expect("text");
            }
        }
        ValueType::Number => {
            if !value.is_number() {
                return expect("a number");
            }
        }
        ValueType::Integer => {
            if !(value.is_i64() || value.is_u64()) {
                return expect("an integer");
            }
        }
        ValueType::Boolean => {
            if !value.is_boolean() {
                return expect("true or false");
            }
        }
        ValueType::Color => match text {
            Some(t) if is_color(t) => {}
            Some(t) => return Err(format!("must be a hex color such as #3b82f6, found `{t}`")),
            None => return expect("a hex color"),
        },
        ValueType::Email => match text {
            Some(t) if is_email(t) => {}
            Some(t) => return Err(format!("must be an email address, found `{t}`")),
            None => return expect("an email address"),
        },
        ValueType::Url => match text {
            Some(t) if t.starts_with('/') || check_url(t).is_ok() => {}
            Some(t) => return Err(format!("must be a URL or a path, found `{t}`")),
            None => return expect("a URL"),
        },
        ValueType::Select => match text {
            Some(t) if spec.options.iter().any(|o| o == t) => {}
            Some(t) => {
                return Err(format!(
                    "must be one of {}, found `{t}`",
                    spec.options.join(", ")
                ));
            }
            None => return expect("one of the options"),
        },
        ValueType::List => {
            if !value.is_array() {
                return expect("a list");
            }
        }
        ValueType::Object => {
            if !value.is_object() {
                return expect("a mapping");
            }
        }
        ValueType::FormFields => {
            let fields = value.as_array().ok_or_else(|| {
                format!("must be a list of form fields, found {}", json_kind(value))
            })?;
            for (i, f) in fields.iter().enumerate() {
                if serde_json::from_value::<crate::model::variable::FormField>(f.clone()).is_err() {
                    return Err(format!(
                        "item {} must be a form field with `name` (and optional `label`, `type`, `required`, `options`)",
                        i + 1
                    ));
                }
            }
        }
    }
    Ok(())
}

fn json_kind(v: &J) -> &'static str {
    match v {
        J::Null => "nothing",
        J::Bool(_) => "a boolean",
        J::Number(_) => "a number",
        J::String(_) => "text",
        J::Array(_) => "a list",
        J::Object(_) => "a mapping",
    }
}
