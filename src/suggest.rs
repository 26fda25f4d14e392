//! Workflow suggestions: for a component of a site, the recipes that fit its
//! type, its events and form fields, the site's industry and goals, and the
//! workspace, ranked by a documented confidence, each with the reasons for
//! its place; and a recipe written into the workspace as a workflow and its
//! test, kept only if the workspace still validates.
//!
//! - [`recipes`]: the recipe library (built in, overridable by the workspace's
//!   `recipes/`), and a recipe instantiated for one component instance.
//! - [`rank`]: the confidence of each fitting recipe and its reasons.
//! - [`model`]: a draft from an optional language model, validated and
//!   repaired once, never written unvalidated.

pub mod model;
pub mod rank;
pub mod recipes;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::model::recipe::{Goal, Industry};
use crate::model::site_template::TemplateCategory;
use crate::workspace::Workspace;
use rank::{Excluded, Facts, Query, Ranked};
use recipes::LoadedRecipe;

/// What can go wrong with recipes and suggestions.
#[derive(Debug, thiserror::Error)]
pub enum SuggestError {
    #[error("{file}: {message}")]
    Recipe { file: String, message: String },
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Model(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One suggested workflow, in the seed's shape plus the reasons.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    pub recipe: String,
    pub name: String,
    pub description: String,
    pub confidence: f64,
    pub why: Vec<String>,
    pub parts: rank::Parts,
    /// The workflow, as JSON (its trigger and steps).
    pub workflow_template: Json,
}

/// The suggestions for one component instance (or a bare component type).
#[derive(Debug, Clone, Serialize)]
pub struct ForComponent {
    pub site: Option<String>,
    /// The instance id, when the component is one of a site's.
    pub instance: Option<String>,
    pub component: String,
    pub industry: Option<Industry>,
    pub goals: Vec<Goal>,
    /// Workflows that already start from this instance.
    pub existing: Vec<String>,
    pub suggestions: Vec<Suggestion>,
    pub excluded: Vec<Excluded>,
}

/// The industry a site template's category implies, if one does.
pub fn industry_of_category(c: TemplateCategory) -> Option<Industry> {
    Some(match c {
        TemplateCategory::Saas | TemplateCategory::AppLaunch => Industry::Saas,
        TemplateCategory::Agency | TemplateCategory::Portfolio => Industry::Agency,
        TemplateCategory::ProfessionalServices | TemplateCategory::Coaching => {
            Industry::ProfessionalServices
        }
        TemplateCategory::Restaurant => Industry::Restaurant,
        TemplateCategory::Ecommerce => Industry::Ecommerce,
        TemplateCategory::Event | TemplateCategory::Webinar => Industry::Events,
        TemplateCategory::Nonprofit => Industry::Nonprofit,
        TemplateCategory::RealEstate => Industry::RealEstate,
        TemplateCategory::Fitness => Industry::Fitness,
        TemplateCategory::Education => Industry::Education,
        TemplateCategory::LocalBusiness => Industry::LocalServices,
        TemplateCategory::Newsletter => return None,
    })
}

/// The site's industry: its own `industry`, else its template's category.
pub fn site_industry(ws: &Workspace, site: &str) -> Option<Industry> {
    let doc = ws.sites.get(site)?;
    doc.value.industry.or_else(|| {
        ws.site_template(doc.value.template.as_str())
            .and_then(|(t, _)| industry_of_category(t.category))
    })
}

/// What the workspace says about a component type configured as `config`.
pub fn facts(
    ws: &Workspace,
    component: &str,
    config: &Map<String, Json>,
) -> Result<Facts, SuggestError> {
    let def = ws.components.get(component).ok_or_else(|| {
        let known: Vec<&str> = ws.components.keys().map(String::as_str).collect();
        SuggestError::Input(format!(
            "no component `{component}`; components: {}",
            known.join(", ")
        ))
    })?;
    let fields = def
        .value
        .config
        .iter()
        .find(|(_, s)| s.kind == crate::model::variable::ValueType::FormFields)
        .and_then(|(name, spec)| config.get(name).or(spec.default.as_ref()))
        .and_then(Json::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|f| f.get("name")?.as_str().map(String::from))
                .collect::<BTreeSet<_>>()
        });
    let lists = ws
        .lists
        .as_ref()
        .map(|l| l.value.lists.keys().cloned().collect())
        .unwrap_or_default();
    Ok(Facts {
        events: def.value.events.clone(),
        fields,
        lists,
    })
}

/// Ranks the recipes for `query` and fills each with `site`/`instance` (or
/// placeholders' stand-ins for a bare component type).
pub fn suggest(
    ws: &Workspace,
    library: &BTreeMap<String, LoadedRecipe>,
    query: &Query,
    site: Option<&str>,
    instance: Option<&str>,
) -> Result<ForComponent, SuggestError> {
    let facts = facts(ws, &query.component, &query.config)?;
    let (ranked, excluded) = rank::rank(library.values(), query, &facts);
    let site_id = site.unwrap_or("my-site");
    let instance_id = instance.unwrap_or(&query.component);
    let suggestions = ranked
        .into_iter()
        .filter_map(|r: Ranked| {
            let recipe = library.get(&r.recipe)?;
            let filled = recipe.instantiate(site_id, instance_id, &r.recipe);
            let parsed = crate::yaml::parse(&filled.workflow);
            let workflow_template = parsed.root.map(|n| n.to_json()).unwrap_or(Json::Null);
            Some(Suggestion {
                recipe: r.recipe,
                name: recipe.meta.name.clone(),
                description: recipe.meta.description.trim().to_string(),
                confidence: r.confidence,
                why: r.reasons,
                parts: r.parts,
                workflow_template,
            })
        })
        .collect();
    Ok(ForComponent {
        site: site.map(String::from),
        instance: instance.map(String::from),
        component: query.component.clone(),
        industry: query.industry,
        goals: query.goals.clone(),
        existing: match (site, instance) {
            (Some(s), Some(i)) => workflows_from(ws, s, i),
            _ => Vec::new(),
        },
        suggestions,
        excluded,
    })
}

/// The workflows whose trigger names this instance of this site.
pub fn workflows_from(ws: &Workspace, site: &str, instance: &str) -> Vec<String> {
    use crate::model::workflow::TriggerKind;
    ws.workflows
        .iter()
        .filter(|(_, doc)| match &doc.value.trigger.kind {
            TriggerKind::FormSubmission { site: s, component } => {
                s.as_str() == site && component.as_str() == instance
            }
            TriggerKind::PageEvent {
                site: s,
                component: Some(component),
                ..
            } => s.as_ref().is_none_or(|s| s.as_str() == site) && component.as_str() == instance,
            _ => false,
        })
        .map(|(id, _)| id.clone())
        .collect()
}

/// Every component instance of `site` with its type and config, in page order
/// (an instance the site overrides carries the override's config).
pub fn site_components(ws: &Workspace, site: &str) -> Vec<(String, String, Map<String, Json>)> {
    let Some(instances) = crate::validate::sites::site_instances(ws, site) else {
        return Vec::new();
    };
    let overrides = ws.sites.get(site).map(|s| &s.value.components);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for i in instances {
        let id = i.instance.id.to_string();
        if !seen.insert(id.clone()) {
            continue;
        }
        let mut config: Map<String, Json> = i
            .instance
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(o) = overrides.and_then(|o| o.get(id.as_str())) {
            for (k, v) in &o.config {
                config.insert(k.clone(), v.clone());
            }
        }
        out.push((id, i.instance.component.to_string(), config));
    }
    out
}

/// A suggestion written into the workspace.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub workflow: String,
    pub files: Vec<PathBuf>,
}

/// Writes each recipe for its instance of `site` as a new workflow and its
/// test. The workspace is validated with all of them first, in a scratch
/// copy: if any does not validate, none is written (the inner `Err` holds
/// why).
pub fn write(
    root: &Path,
    picks: &[(&LoadedRecipe, &str)],
    site: &str,
) -> Result<Result<Vec<Written>, Vec<crate::diagnostic::Diagnostic>>, SuggestError> {
    let mut files = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for (recipe, instance) in picks {
        let mut id = free_workflow_id(root, &recipe.id, site);
        // Two instances given the same recipe: the second gets its own id.
        if ids.contains(&id) {
            id = free_workflow_id(root, &format!("{}-{instance}", recipe.id), site);
        }
        let filled = recipe.instantiate(site, instance, &id);
        files.push((format!("workflows/{id}.yaml"), filled.workflow));
        files.push((format!("workflows/tests/{id}.yaml"), filled.test));
        ids.push(id);
    }
    Ok(write_files(root, &ids.join(", "), &files)?.map(|w| {
        ids.iter()
            .map(|id| Written {
                workflow: id.clone(),
                files: w
                    .files
                    .iter()
                    .filter(|f| f.file_stem().is_some_and(|s| s.to_string_lossy() == *id))
                    .cloned()
                    .collect(),
            })
            .collect()
    }))
}

/// Validates the workspace as it would be with `files` (paths under `root`),
/// and writes them only if it has no error.
pub fn write_files(
    root: &Path,
    workflow: &str,
    files: &[(String, String)],
) -> Result<Result<Written, Vec<crate::diagnostic::Diagnostic>>, SuggestError> {
    let changes: BTreeMap<String, Option<String>> = files
        .iter()
        .map(|(p, t)| (p.clone(), Some(t.clone())))
        .collect();
    let errors = crate::proposals::validate_with(root, &changes)
        .map_err(|e| SuggestError::Input(e.to_string()))?;
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| SuggestError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, text).map_err(|source| SuggestError::Io {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(Ok(Written {
        workflow: workflow.to_string(),
        files: written,
    }))
}

/// The recipe's id as the workflow's, unless a workflow has it: then with the
/// site's id, then a number.
pub fn free_workflow_id(root: &Path, recipe: &str, site: &str) -> String {
    let taken = |id: &str| {
        root.join("workflows").join(format!("{id}.yaml")).exists()
            || root
                .join("workflows/tests")
                .join(format!("{id}.yaml"))
                .exists()
    };
    if !taken(recipe) {
        return recipe.to_string();
    }
    let with_site = format!("{site}-{recipe}");
    if !taken(&with_site) {
        return with_site;
    }
    (2..)
        .map(|n| format!("{with_site}-{n}"))
        .find(|id| !taken(id))
        .unwrap_or(with_site)
}
