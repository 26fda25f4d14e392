//! `templates/sites/<id>/template.yaml`: a site template's manifest and pages.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalar::{Ident, TemplateText};
use super::variable::VariableSpec;

/// A site template. Its id is its folder name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteTemplate {
    pub name: String,
    pub category: TemplateCategory,
    #[serde(default)]
    pub tags: Vec<String>,
    pub description: String,
    /// Preview image, relative to the template folder.
    #[serde(default)]
    pub preview: Option<String>,
    /// The variables a site sets in `customizations`; those without a default are
    /// required.
    #[serde(default)]
    pub variables: BTreeMap<String, VariableSpec>,
    pub pages: Vec<Page>,
}

/// A page: a path, metadata and the component instances it is composed of.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// The URL path, e.g. `/` or `/pricing`.
    pub path: String,
    pub title: TemplateText,
    #[serde(default)]
    pub description: Option<TemplateText>,
    /// Keep the page out of sitemap.xml and search engines.
    #[serde(default)]
    pub noindex: bool,
    pub components: Vec<ComponentInstance>,
}

/// A component placed on a page.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentInstance {
    /// Unique within the site; workflows name it in form and page triggers.
    pub id: Ident,
    /// The component id (`templates/components/<id>/`).
    pub component: Ident,
    /// Values for the component's config fields; strings are templates over the
    /// site's variables.
    #[serde(default)]
    pub config: BTreeMap<String, serde_json::Value>,
}

/// Template categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TemplateCategory {
    Saas,
    Agency,
    ProfessionalServices,
    Restaurant,
    Ecommerce,
    Event,
    Portfolio,
    Nonprofit,
    RealEstate,
    Fitness,
    Education,
    AppLaunch,
    Coaching,
    Webinar,
    Newsletter,
    LocalBusiness,
}
