//! Pages to HTML: each component instance rendered from its `component.html`
//! (autoescaped) inside a wrapper the tracking script recognises, placed in the
//! header, main or footer landmark by its slot, inside the page shell with its
//! metadata (canonical, OpenGraph, Twitter, JSON-LD).

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde_json::{Value as Json, json};

use super::resolve::{ResolvedPage, ResolvedSite};
use super::{Options, PublishError};
use crate::model::component::Slot;
use crate::workspace::Workspace;

const PAGE: &str = include_str!("page.html");

/// What every page of a build shares.
#[derive(Debug)]
pub struct Shared<'a> {
    pub css: String,
    pub js: String,
    pub opts: &'a Options,
}

/// The output file of a page path: `/` → `index.html`, `/404` → `404.html`,
/// `/pricing` → `pricing/index.html`.
pub fn file_of(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    match trimmed {
        "" => "index.html".into(),
        "404" => "404.html".into(),
        p => format!("{p}/index.html"),
    }
}

/// Renders every page: (path, file, html).
pub fn render_site(
    ws: &Workspace,
    site: &ResolvedSite,
    shared: &Shared<'_>,
) -> Result<Vec<(String, String, String)>, PublishError> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(2_000_000));
    env.set_formatter(crate::engine::expr::html_formatter);
    let used: std::collections::BTreeSet<&str> = site
        .pages
        .iter()
        .flat_map(|p| p.instances.iter().map(|i| i.component.as_str()))
        .collect();
    for id in used {
        let (_, text) = ws
            .component_markup
            .get(id)
            .ok_or_else(|| PublishError::Invalid {
                site: site.id.clone(),
                message: format!("component `{id}` has no component.html"),
            })?;
        env.add_template_owned(format!("{id}.html"), text.clone())
            .map_err(|e| PublishError::Invalid {
                site: site.id.clone(),
                message: format!("component `{id}`: {e}"),
            })?;
    }
    env.add_template("page.html", PAGE)
        .map_err(|e| PublishError::Invalid {
            site: site.id.clone(),
            message: format!("page shell: {e}"),
        })?;
    let site_vars = Value::from(minijinja::value::Serde(&site.vars));
    let base = site.base_url(shared.opts);
    let public = shared.opts.public_url.trim_end_matches('/');
    let mut out = Vec::new();
    for page in &site.pages {
        let html = render_page(&env, site, page, &site_vars, &base, public, shared)?;
        out.push((page.path.clone(), file_of(&page.path), html));
    }
    Ok(out)
}

fn render_page(
    env: &Environment<'_>,
    site: &ResolvedSite,
    page: &ResolvedPage,
    site_vars: &Value,
    base: &str,
    public: &str,
    shared: &Shared<'_>,
) -> Result<String, PublishError> {
    let mut slots = [String::new(), String::new(), String::new()];
    let mut first_main = true;
    for inst in &page.instances {
        let h = if inst.slot == Slot::Main && first_main {
            first_main = false;
            1
        } else {
            2
        };
        let ctx = minijinja::context! {
            config => Value::from(minijinja::value::Serde(&inst.config)),
            site => site_vars.clone(),
            instance => minijinja::context! { id => &inst.id, component => &inst.component },
            page => minijinja::context! { path => &page.path, title => &page.title },
            h => h,
            form_action => format!("{public}/f/{}/{}", site.id, inst.id),
            public_url => public,
        };
        let fail = |e: minijinja::Error| PublishError::Render {
            site: site.id.clone(),
            page: page.path.clone(),
            instance: inst.id.clone(),
            message: e.to_string(),
        };
        let body = env
            .get_template(&format!("{}.html", inst.component))
            .and_then(|t| t.render(&ctx))
            .map_err(fail)?;
        let slot = match inst.slot {
            Slot::Header => 0,
            Slot::Main => 1,
            Slot::Footer => 2,
        };
        let wrapped = format!(
            "<div class=\"fc fc-{}\" data-fc=\"{}\">\n{}\n</div>\n",
            attr(&inst.component),
            attr(&inst.id),
            compact(&body)
        );
        slots[slot].push_str(&wrapped);
    }
    let seo = site.seo.as_ref();
    let canonical = format!("{base}{}", if page.path == "/" { "/" } else { &page.path });
    let description = page
        .description
        .clone()
        .or_else(|| seo.and_then(|s| s.description.as_ref().map(|d| d.to_string())));
    let title = if page.path == "/" {
        seo.and_then(|s| s.title.as_ref().map(|t| t.to_string()))
            .unwrap_or_else(|| page.title.clone())
    } else {
        page.title.clone()
    };
    let image = seo
        .and_then(|s| s.image.clone())
        .map(|i| absolute(&i, base));
    let logo = site
        .vars
        .get("logo")
        .and_then(Json::as_str)
        .filter(|l| !l.is_empty())
        .map(|l| absolute(l, base));
    let org_name = site
        .vars
        .get("company_name")
        .and_then(Json::as_str)
        .unwrap_or(&site.name)
        .to_string();
    let mut org = json!({"@type": "Organization", "name": org_name, "url": format!("{base}/")});
    if let Some(logo) = &logo {
        org["logo"] = json!(logo);
    }
    if let Some(email) = site.vars.get("contact_email").and_then(Json::as_str) {
        org["email"] = json!(email);
    }
    let mut webpage = json!({
        "@type": "WebPage",
        "name": title,
        "url": canonical,
        "inLanguage": site.language,
    });
    if let Some(d) = &description {
        webpage["description"] = json!(d);
    }
    let json_ld = serde_json::to_string(&json!({
        "@context": "https://schema.org",
        "@graph": [org, webpage],
    }))
    .unwrap_or_default()
    // Inside <script>: no `</script>` can end it early, whatever the texts hold.
    .replace('<', "\\u003c")
    .replace('>', "\\u003e")
    .replace('&', "\\u0026");
    let slug = match page.path.trim_matches('/') {
        "" => "home".to_string(),
        p => p.replace('/', "-"),
    };
    let theme = site
        .vars
        .get("primary_color")
        .and_then(Json::as_str)
        .unwrap_or("#ffffff")
        .to_string();
    let ctx = minijinja::context! {
        lang => &site.language,
        og_locale => site.language.replace('-', "_"),
        title => title,
        description => description,
        noindex => page.noindex,
        canonical => canonical,
        theme_color => theme,
        site_name => &site.name,
        image => image,
        twitter => seo.and_then(|s| s.twitter.clone()),
        css => &shared.css,
        js => &shared.js,
        json_ld => Value::from_safe_string(json_ld),
        template => &site.template,
        slug => slug,
        header => Value::from_safe_string(std::mem::take(&mut slots[0])),
        main => Value::from_safe_string(std::mem::take(&mut slots[1])),
        footer => Value::from_safe_string(std::mem::take(&mut slots[2])),
        endpoint => format!("{public}/t"),
        site_id => &site.id,
    };
    env.get_template("page.html")
        .and_then(|t| t.render(ctx))
        .map_err(|e| PublishError::Render {
            site: site.id.clone(),
            page: page.path.clone(),
            instance: "(page)".into(),
            message: e.to_string(),
        })
}

/// An absolute URL for a path on the site.
fn absolute(url: &str, base: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        url.to_string()
    } else {
        format!("{base}/{}", url.trim_start_matches('/'))
    }
}

/// Text for an attribute value written between double quotes.
fn attr(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

/// Markup without indentation or blank lines (no component writes `<pre>`, and
/// textareas start empty, so leading whitespace carries no meaning).
fn compact(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    for line in html.lines() {
        let line = line.trim();
        if !line.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(line);
        }
    }
    out
}

/// A generated icon: the first letter of the company name on its primary colour.
pub fn favicon(site: &ResolvedSite) -> String {
    let name = site
        .vars
        .get("company_name")
        .and_then(Json::as_str)
        .unwrap_or(&site.name);
    let letter: String = name
        .chars()
        .find(|c| c.is_alphanumeric())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_else(|| "F".into());
    let color = site
        .vars
        .get("primary_color")
        .and_then(Json::as_str)
        .filter(|c| crate::validate::values::is_color(c))
        .unwrap_or("#1d4ed8");
    let on = super::css::text_on(color).unwrap_or("#fff");
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 64 64\"><rect width=\"64\" height=\"64\" rx=\"14\" fill=\"{color}\"/><text x=\"32\" y=\"44\" font-family=\"system-ui,sans-serif\" font-size=\"36\" font-weight=\"700\" text-anchor=\"middle\" fill=\"{on}\">{}</text></svg>\n",
        attr(&letter).replace('>', "&gt;")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_paths_map_to_files() {
        assert_eq!(file_of("/"), "index.html");
        assert_eq!(file_of("/404"), "404.html");
        assert_eq!(file_of("/pricing"), "pricing/index.html");
        assert_eq!(file_of("/a/b/"), "a/b/index.html");
    }
}
