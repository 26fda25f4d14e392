//! The template catalog, as the seed's template APIs describe it: site templates
//! listed with filters, one template's variables, pages and components, a new
//! site instantiated from a template with customizations, and the component
//! library with the workflows wired to each component's events.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value as Json;

use crate::model::component::{ComponentEvent, Slot};
use crate::model::site_template::{SiteTemplate, TemplateCategory};
use crate::model::variable::{ValueType, VariableSpec};
use crate::model::workflow::TriggerKind;
use crate::workspace::{Origin, Workspace};

/// One line of the template list.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateSummary {
    pub id: String,
    pub name: String,
    pub category: String,
    pub tags: Vec<String>,
    pub description: String,
    pub pages: usize,
    /// Built into the binary, or the workspace's own.
    pub builtin: bool,
}

/// A category's name as files write it (`real_estate`).
pub fn category_name(c: TemplateCategory) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The list line of template `id`.
fn summary(ws: &Workspace, id: &str) -> Option<TemplateSummary> {
    let (tpl, origin) = ws.site_template(id)?;
    Some(summary_of(id, &tpl, origin))
}

fn summary_of(id: &str, tpl: &SiteTemplate, origin: Origin) -> TemplateSummary {
    TemplateSummary {
        id: id.to_string(),
        name: tpl.name.clone(),
        category: category_name(tpl.category),
        tags: tpl.tags.clone(),
        description: tpl.description.trim().to_string(),
        pages: tpl.pages.len(),
        builtin: origin == Origin::Builtin,
    }
}

/// Templates in `category` (when given) whose id, name, description or tags
/// contain every word of `search` (case-insensitive), sorted by category and id.
pub fn list(ws: &Workspace, category: Option<&str>, search: Option<&str>) -> Vec<TemplateSummary> {
    let words: Vec<String> = search
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let mut out: Vec<TemplateSummary> = ws
        .site_template_ids()
        .filter_map(|id| summary(ws, id))
        .filter(|t| category.is_none_or(|c| t.category == c.replace('-', "_")))
        .filter(|t| {
            let hay = format!("{} {} {} {}", t.id, t.name, t.description, t.tags.join(" "))
                .to_lowercase();
            words.iter().all(|w| hay.contains(w.as_str()))
        })
        .collect();
    out.sort_by(|a, b| (&a.category, &a.id).cmp(&(&b.category, &b.id)));
    out
}

/// One template in full.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateDetail {
    #[serde(flatten)]
    pub summary: TemplateSummary,
    pub variables: BTreeMap<String, VariableSpec>,
    pub pages: Vec<PageOutline>,
    /// The components its pages use.
    pub components: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PageOutline {
    pub path: String,
    pub title: String,
    /// (instance id, component id), in page order.
    pub components: Vec<(String, String)>,
}

/// The template `id`, if there is one.
pub fn show(ws: &Workspace, id: &str) -> Option<TemplateDetail> {
    let (tpl, origin) = ws.site_template(id)?;
    let summary = summary_of(id, &tpl, origin);
    let pages: Vec<PageOutline> = tpl
        .pages
        .iter()
        .map(|p| PageOutline {
            path: p.path.clone(),
            title: p.title.to_string(),
            components: p
                .components
                .iter()
                .map(|c| (c.id.to_string(), c.component.to_string()))
                .collect(),
        })
        .collect();
    let components = pages
        .iter()
        .flat_map(|p| p.components.iter().map(|(_, c)| c.clone()))
        .collect();
    Some(TemplateDetail {
        summary,
        variables: tpl.variables.clone(),
        pages,
        components,
    })
}

/// Why a site could not be made from a template.
#[derive(Debug, thiserror::Error)]
pub enum InstantiateError {
    #[error("no template `{0}`")]
    NoTemplate(String),
    #[error("`{0}` is not a site name: use lowercase letters, digits and dashes")]
    BadName(String),
    #[error("the template has no variable `{name}`; its variables are: {known}")]
    UnknownVariable { name: String, known: String },
    #[error("`{name}`: {why}")]
    BadValue { name: String, why: String },
    #[error("these variables have no default and need a value (--set NAME=VALUE): {0}")]
    Missing(String),
}

/// A `--set` value as the variable's type wants it.
pub fn typed_value(spec: &VariableSpec, text: &str) -> Result<Json, String> {
    Ok(match spec.kind {
        ValueType::Integer => Json::from(
            text.trim()
                .parse::<i64>()
                .map_err(|_| format!("`{text}` is not a whole number"))?,
        ),
        ValueType::Number => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Json::from)
            .ok_or_else(|| format!("`{text}` is not a number"))?,
        ValueType::Boolean => match text.trim() {
            "true" | "yes" => Json::Bool(true),
            "false" | "no" => Json::Bool(false),
            _ => return Err(format!("`{text}` is not true or false")),
        },
        ValueType::List | ValueType::Object | ValueType::FormFields => {
            serde_json::from_str(text).map_err(|e| format!("expects JSON here: {e}"))?
        }
        _ => Json::String(text.to_string()),
    })
}

/// The variables of `template` that have no default and are not in `sets`.
pub fn missing_variables(
    ws: &Workspace,
    template: &str,
    sets: &[(String, String)],
) -> Vec<(String, VariableSpec)> {
    ws.site_template(template)
        .map(|(tpl, _)| {
            tpl.variables
                .iter()
                .filter(|(k, s)| s.default.is_none() && !sets.iter().any(|(n, _)| n == *k))
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The text of `sites/<name>/site.yaml` for a new site from `template`, with the
/// given customizations (required variables must be among them) and, if given,
/// the site's own domain (its canonical URLs, sitemap and form actions use it).
pub fn instantiate(
    ws: &Workspace,
    template: &str,
    name: &str,
    display_name: Option<&str>,
    domain: Option<&str>,
    sets: &[(String, String)],
) -> Result<String, InstantiateError> {
    let (tpl, _) = ws
        .site_template(template)
        .ok_or_else(|| InstantiateError::NoTemplate(template.to_string()))?;
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if !valid_name {
        return Err(InstantiateError::BadName(name.to_string()));
    }
    let vars = &tpl.variables;
    let mut values: BTreeMap<String, Json> = BTreeMap::new();
    for (k, v) in sets {
        let spec = vars
            .get(k)
            .ok_or_else(|| InstantiateError::UnknownVariable {
                name: k.clone(),
                known: vars.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
        let value = typed_value(spec, v).map_err(|why| InstantiateError::BadValue {
            name: k.clone(),
            why,
        })?;
        values.insert(k.clone(), value);
    }
    let missing: Vec<&str> = vars
        .iter()
        .filter(|(k, s)| s.default.is_none() && !values.contains_key(*k))
        .map(|(k, _)| k.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(InstantiateError::Missing(missing.join(", ")));
    }
    let title = display_name
        .map(String::from)
        .or_else(|| {
            values
                .get("company_name")
                .and_then(Json::as_str)
                .map(String::from)
        })
        .unwrap_or_else(|| name.to_string());
    let mut text = format!(
        "# yaml-language-server: $schema=../../schema/site.schema.json\n# Made with `funnel new site {name} --template {template}`.\nname: {}\ntemplate: {template}\n",
        yaml_scalar(&Json::String(title))
    );
    if let Some(d) = domain {
        text.push_str(&format!(
            "domain: {}\n",
            yaml_scalar(&Json::String(d.to_string()))
        ));
    }
    if values.is_empty() {
        text.push_str("customizations: {}\n");
    } else {
        text.push_str("customizations:\n");
        for (k, v) in &values {
            text.push_str(&format!("  {k}: {}\n", yaml_scalar(v)));
        }
    }
    // The rest, commented, so the file shows what can be changed.
    let rest: Vec<(&String, &VariableSpec)> = vars
        .iter()
        .filter(|(k, _)| !values.contains_key(*k))
        .collect();
    if !rest.is_empty() {
        text.push_str("  # Defaults of the template, to change here:\n");
        for (k, spec) in rest {
            if let Some(d) = &spec.default {
                text.push_str(&format!("  # {k}: {}\n", yaml_scalar(d)));
            }
        }
    }
    Ok(text)
}

/// A value as one line of YAML (JSON is YAML; strings always quoted).
fn yaml_scalar(v: &Json) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// One component of the library.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentSummary {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub slot: Slot,
    pub events: Vec<ComponentEvent>,
    /// Templates that use it.
    pub templates: Vec<String>,
    pub builtin: bool,
}

pub fn components(ws: &Workspace) -> Vec<ComponentSummary> {
    // Parsed once here: a built-in template no site uses is not kept loaded.
    let templates: Vec<(&str, std::borrow::Cow<'_, SiteTemplate>)> = ws
        .site_template_ids()
        .filter_map(|id| ws.site_template(id).map(|(t, _)| (id, t)))
        .collect();
    ws.components
        .iter()
        .map(|(id, doc)| ComponentSummary {
            id: id.clone(),
            name: doc.value.name.clone(),
            description: doc.value.description.clone(),
            slot: doc.value.slot,
            events: doc.value.events.clone(),
            templates: templates
                .iter()
                .filter(|(_, t)| {
                    t.pages
                        .iter()
                        .any(|p| p.components.iter().any(|c| c.component.as_str() == id))
                })
                .map(|(t, _)| (*t).to_string())
                .collect(),
            builtin: ws.file(doc.file).origin == Origin::Builtin,
        })
        .collect()
}

/// A workflow wired to a component instance's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub workflow: String,
    pub trigger: String,
    pub site: Option<String>,
    pub instance: String,
}

/// The workflows whose trigger names an instance of `component` on some site (a
/// form submission to it, or a page event of it).
pub fn connections(ws: &Workspace, component: &str) -> Vec<Connection> {
    // (site, instance id) of every instance of the component.
    let mut instances: BTreeSet<(String, String)> = BTreeSet::new();
    for site in ws.sites.keys() {
        if let Some(all) = crate::validate::sites::site_instances(ws, site) {
            for i in all {
                if i.instance.component.as_str() == component {
                    instances.insert((site.clone(), i.instance.id.to_string()));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (id, wf) in &ws.workflows {
        let (kind, site, inst) = match &wf.value.trigger.kind {
            TriggerKind::FormSubmission { site, component } => (
                "form_submission",
                Some(site.to_string()),
                component.to_string(),
            ),
            TriggerKind::PageEvent {
                site,
                component: Some(component),
                ..
            } => (
                "page_event",
                site.as_ref().map(ToString::to_string),
                component.to_string(),
            ),
            _ => continue,
        };
        let hit = instances
            .iter()
            .any(|(s, i)| *i == inst && site.as_ref().is_none_or(|w| w == s));
        if hit {
            out.push(Connection {
                workflow: id.clone(),
                trigger: kind.into(),
                site,
                instance: inst,
            });
        }
    }
    out
}
