//! `sites/<id>/site.yaml`: a site built from a template.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalar::{Ident, TemplateText};
use super::site_template::Page;

/// A site. Its id is its folder name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub name: String,
    /// The site template id (`templates/sites/<id>/`, built in or the workspace's).
    pub template: Ident,
    /// Custom domain, e.g. `www.acme.example`; written to CNAME on publish.
    #[serde(default)]
    pub domain: Option<String>,
    /// The industry the site serves, for workflow suggestions (`funnel suggest`).
    #[serde(default)]
    pub industry: Option<super::recipe::Industry>,
    /// What the site is for, most important first, for workflow suggestions.
    #[serde(default)]
    pub goals: Vec<super::recipe::Goal>,
    /// Values for the template's variables.
    #[serde(default)]
    pub customizations: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub seo: Option<Seo>,
    /// Pages that replace the template's page with the same path, or add new ones.
    #[serde(default)]
    pub pages: Vec<Page>,
    /// Config overrides for component instances of inherited pages, by instance id.
    #[serde(default)]
    pub components: BTreeMap<String, InstanceOverride>,
}

/// Search and social metadata.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Seo {
    #[serde(default)]
    pub title: Option<TemplateText>,
    #[serde(default)]
    pub description: Option<TemplateText>,
    /// Social preview image (OpenGraph, Twitter).
    #[serde(default)]
    pub image: Option<String>,
    /// The site's X/Twitter handle, e.g. `@acme`.
    #[serde(default)]
    pub twitter: Option<String>,
    /// BCP 47 language tag of the pages. Default `en`.
    #[serde(default)]
    pub language: Option<String>,
    /// Keep the whole site out of search engines.
    #[serde(default)]
    pub noindex: bool,
}

/// New config values for one inherited component instance.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceOverride {
    pub config: BTreeMap<String, serde_json::Value>,
}
