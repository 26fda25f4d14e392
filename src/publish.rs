//! Publishing sites: a site's pages resolved from its template and overrides
//! ([`resolve`]), its assets fingerprinted ([`assets`]), its stylesheet built from
//! the variables ([`css`]), its pages rendered ([`render`]), its internal links
//! checked ([`links`]), and the result written to a folder, rewriting only what
//! changed ([`output`]). A build is held in memory, so the preview server serves
//! the same bytes `funnel publish` writes.

pub mod assets;
pub mod css;
pub mod links;
pub mod output;
pub mod render;
pub mod resolve;

use std::collections::BTreeMap;

use crate::workspace::Workspace;

/// The tracking script every page loads (under 2 KB; no cookies, no storage).
pub const TRACKING_JS: &str = include_str!("publish/tracking.js");

/// Why a site could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("no site `{0}` in sites/")]
    NoSite(String),
    #[error("site `{site}`: no template `{template}`")]
    NoTemplate { site: String, template: String },
    #[error("site `{site}`, page {page}, component `{instance}`: {message}")]
    Render {
        site: String,
        page: String,
        instance: String,
        message: String,
    },
    #[error("site `{site}`: {message}")]
    Invalid { site: String, message: String },
    #[error("site `{site}`: {} broken internal link(s):\n{}", .links.len(), links::describe(.links))]
    BrokenLinks {
        site: String,
        links: Vec<links::BrokenLink>,
    },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// How a build addresses the world.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where forms post and tracking reports go (`funnel.yaml`'s `public_url`, or
    /// the preview server's address).
    pub public_url: String,
    /// The site's own address for canonical links, OpenGraph and the sitemap; by
    /// default `https://{domain}`, else `public_url`.
    pub base_url: Option<String>,
}

/// What a form takes, from its component instance's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormSpec {
    /// The page it is on (a rejected post from a browser goes back there).
    pub page: String,
    /// Fields a post must fill: those its `fields` mark `required`; a form
    /// without a `fields` list asks for an email address.
    pub required: Vec<String>,
}

impl FormSpec {
    fn of(page: &str, config: &serde_json::Value) -> FormSpec {
        let required = match config.get("fields").and_then(|f| f.as_array()) {
            Some(fields) => fields
                .iter()
                .filter(|f| f.get("required").and_then(serde_json::Value::as_bool) == Some(true))
                .filter_map(|f| f.get("name").and_then(|n| n.as_str()).map(String::from))
                .collect(),
            None => vec!["email".to_string()],
        };
        FormSpec {
            page: page.to_string(),
            required,
        }
    }
}

/// A built site: every output file by its path (`index.html`, `pricing/index.html`,
/// `assets/logo.3f2a9c1d.svg`, …).
#[derive(Debug, Clone, Default)]
pub struct Build {
    pub site: String,
    pub files: BTreeMap<String, Vec<u8>>,
    /// The pages, by URL path, and their file.
    pub pages: Vec<(String, String)>,
    /// Instances whose component takes form submissions, by instance id: what
    /// `POST /f/{site}/{instance}` accepts.
    pub forms: std::collections::BTreeMap<String, FormSpec>,
}

/// Builds one site in memory: renders, checks links; nothing is written.
pub fn build(ws: &Workspace, site: &str, opts: &Options) -> Result<Build, PublishError> {
    let resolved = resolve::resolve(ws, site)?;
    let assets = assets::collect(ws, &resolved)?;
    let resolved = resolved.with_assets(&assets.urls);
    let stylesheet = css::stylesheet(ws, &resolved);
    let mut files = assets.files;
    let css_path = assets::fingerprinted("assets/site.css", stylesheet.as_bytes());
    files.insert(css_path.clone(), stylesheet.into_bytes());
    let js_path = assets::fingerprinted("assets/t.js", TRACKING_JS.as_bytes());
    files.insert(js_path.clone(), TRACKING_JS.as_bytes().to_vec());
    let favicon = render::favicon(&resolved);
    files.insert("favicon.svg".into(), favicon.into_bytes());
    let shared = render::Shared {
        css: format!("/{css_path}"),
        js: format!("/{js_path}"),
        opts,
    };
    let pages = render::render_site(ws, &resolved, &shared)?;
    let forms = resolved
        .pages
        .iter()
        .flat_map(|p| p.instances.iter().map(move |i| (p, i)))
        .filter(|(_, i)| {
            ws.components.get(&i.component).is_some_and(|c| {
                c.value
                    .events
                    .contains(&crate::model::component::ComponentEvent::Submit)
            })
        })
        .map(|(p, i)| (i.id.clone(), FormSpec::of(&p.path, &i.config)))
        .collect();
    let mut out = Build {
        site: site.to_string(),
        files,
        pages: Vec::new(),
        forms,
    };
    for (path, file, html) in pages {
        out.files.insert(file.clone(), html.into_bytes());
        out.pages.push((path, file));
    }
    let base = resolved.base_url(opts);
    out.files.insert(
        "sitemap.xml".into(),
        output::sitemap(&resolved, &base).into_bytes(),
    );
    out.files.insert(
        "robots.txt".into(),
        output::robots(&resolved, &base).into_bytes(),
    );
    if let Some(domain) = &resolved.domain {
        out.files
            .insert("CNAME".into(), format!("{domain}\n").into_bytes());
    }
    let broken = links::check(&out);
    if !broken.is_empty() {
        return Err(PublishError::BrokenLinks {
            site: site.to_string(),
            links: broken,
        });
    }
    Ok(out)
}
