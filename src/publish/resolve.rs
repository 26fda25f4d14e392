//! A site as the publisher sees it: the template's pages with the site's own
//! replacing or adding pages by path, every component instance's config with its
//! defaults filled in and the site's overrides applied, and every text rendered
//! against the site's variables.

use std::collections::{BTreeMap, HashMap};

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value as Json, json};

use super::PublishError;
use crate::model::component::Slot;
use crate::model::site::Seo;
use crate::model::site_template::Page;
use crate::model::variable::{ValueType, VariableSpec};
use crate::workspace::{Origin, Workspace};

/// A site ready to render.
#[derive(Debug, Clone)]
pub struct ResolvedSite {
    pub id: String,
    pub name: String,
    pub template: String,
    pub template_origin: Origin,
    /// The variables: the template's defaults under the site's customizations.
    pub vars: Map<String, Json>,
    pub specs: BTreeMap<String, VariableSpec>,
    pub pages: Vec<ResolvedPage>,
    pub seo: Option<Seo>,
    pub domain: Option<String>,
    pub language: String,
}

#[derive(Debug, Clone)]
pub struct ResolvedPage {
    pub path: String,
    pub title: String,
    pub description: Option<String>,
    pub noindex: bool,
    pub instances: Vec<ResolvedInstance>,
}

#[derive(Debug, Clone)]
pub struct ResolvedInstance {
    pub id: String,
    pub component: String,
    pub slot: Slot,
    pub config: Json,
}

impl ResolvedSite {
    /// The site's own address, without a trailing slash.
    pub fn base_url(&self, opts: &super::Options) -> String {
        let base = opts.base_url.clone().unwrap_or_else(|| match &self.domain {
            Some(d) => format!("https://{d}"),
            None => opts.public_url.clone(),
        });
        base.trim_end_matches('/').to_string()
    }

    /// The same site with every value naming an asset (`assets/logo.svg`) turned
    /// into its published address.
    pub fn with_assets(mut self, urls: &HashMap<String, String>) -> ResolvedSite {
        for v in self.vars.values_mut() {
            rewrite(v, urls);
        }
        for page in &mut self.pages {
            for inst in &mut page.instances {
                rewrite(&mut inst.config, urls);
            }
        }
        self
    }
}

fn rewrite(v: &mut Json, urls: &HashMap<String, String>) {
    match v {
        Json::String(s) => {
            let key = s.trim_start_matches("./").trim_start_matches('/');
            if let Some(url) = urls.get(key) {
                *s = url.clone();
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|i| rewrite(i, urls)),
        Json::Object(map) => map.values_mut().for_each(|i| rewrite(i, urls)),
        _ => {}
    }
}

/// Resolves `site` of the workspace.
pub fn resolve(ws: &Workspace, site: &str) -> Result<ResolvedSite, PublishError> {
    let doc = ws
        .sites
        .get(site)
        .ok_or_else(|| PublishError::NoSite(site.to_string()))?;
    let s = &doc.value;
    let tpl =
        ws.site_templates
            .get(s.template.as_str())
            .ok_or_else(|| PublishError::NoTemplate {
                site: site.to_string(),
                template: s.template.to_string(),
            })?;
    let template_origin = ws.file(tpl.file).origin;
    let mut vars = Map::new();
    for (name, spec) in &tpl.value.variables {
        if let Some(d) = &spec.default {
            vars.insert(name.clone(), d.clone());
        }
    }
    for (name, v) in &s.customizations {
        vars.insert(name.clone(), v.clone());
    }
    let invalid = |message: String| PublishError::Invalid {
        site: site.to_string(),
        message,
    };
    for (name, spec) in &tpl.value.variables {
        if !vars.contains_key(name) {
            return Err(invalid(format!(
                "the template's variable `{name}` has no value (set it in customizations)"
            )));
        }
        if spec.kind == ValueType::Color
            && let Some(c) = vars.get(name).and_then(Json::as_str)
            && !crate::validate::values::is_color(c)
        {
            return Err(invalid(format!("`{name}`: `{c}` is not a hex colour")));
        }
    }
    let text = Texts::new(&vars);
    let mut pages: Vec<&Page> = tpl
        .value
        .pages
        .iter()
        .filter(|p| !s.pages.iter().any(|own| own.path == p.path))
        .collect();
    pages.extend(s.pages.iter());
    let mut out = Vec::new();
    for page in pages {
        let mut instances = Vec::new();
        for inst in &page.components {
            let comp = ws.components.get(inst.component.as_str()).ok_or_else(|| {
                invalid(format!(
                    "page {}: no component `{}`",
                    page.path, inst.component
                ))
            })?;
            let mut config = Map::new();
            for (name, spec) in &comp.value.config {
                if let Some(d) = &spec.default {
                    config.insert(name.clone(), d.clone());
                }
            }
            for (k, v) in &inst.config {
                config.insert(k.clone(), v.clone());
            }
            if let Some(o) = s.components.get(inst.id.as_str()) {
                for (k, v) in &o.config {
                    config.insert(k.clone(), v.clone());
                }
            }
            let mut config = Json::Object(config);
            text.render_tree(&mut config)
                .map_err(|e| PublishError::Render {
                    site: site.to_string(),
                    page: page.path.clone(),
                    instance: inst.id.to_string(),
                    message: e,
                })?;
            instances.push(ResolvedInstance {
                id: inst.id.to_string(),
                component: inst.component.to_string(),
                slot: comp.value.slot,
                config,
            });
        }
        let render = |t: &str| {
            text.render(t)
                .map_err(|e| invalid(format!("page {}: {e}", page.path)))
        };
        out.push(ResolvedPage {
            path: page.path.clone(),
            title: render(page.title.as_str())?,
            description: page
                .description
                .as_ref()
                .map(|d| render(d.as_str()))
                .transpose()?,
            noindex: page.noindex || s.seo.as_ref().is_some_and(|x| x.noindex),
            instances,
        });
    }
    let mut seo = s.seo.clone();
    if let Some(seo) = &mut seo {
        for t in [&mut seo.title, &mut seo.description].into_iter().flatten() {
            let rendered = text.render(t.as_str()).map_err(&invalid)?;
            *t = crate::model::scalar::TemplateText(rendered);
        }
    }
    Ok(ResolvedSite {
        id: site.to_string(),
        name: s.name.clone(),
        template: s.template.to_string(),
        template_origin,
        vars,
        specs: tpl.value.variables.clone(),
        pages: out,
        language: seo
            .as_ref()
            .and_then(|x| x.language.clone())
            .unwrap_or_else(|| "en".into()),
        seo,
        domain: s.domain.clone(),
    })
}

/// Texts with `{{ site.… }}` placeholders, rendered without escaping (the markup
/// escapes them where it writes them).
struct Texts {
    env: Environment<'static>,
    ctx: minijinja::Value,
}

impl Texts {
    fn new(vars: &Map<String, Json>) -> Texts {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_fuel(Some(50_000));
        let ctx = minijinja::Value::from(minijinja::value::Serde(json!({ "site": vars })));
        Texts { env, ctx }
    }

    fn render(&self, text: &str) -> Result<String, String> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(text.to_string());
        }
        self.env
            .render_str(text, &self.ctx)
            .map_err(|e| format!("`{text}`: {e}"))
    }

    fn render_tree(&self, v: &mut Json) -> Result<(), String> {
        match v {
            Json::String(s) => *s = self.render(s)?,
            Json::Array(items) => {
                for i in items {
                    self.render_tree(i)?;
                }
            }
            Json::Object(map) => {
                for i in map.values_mut() {
                    self.render_tree(i)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
