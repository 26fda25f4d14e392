//! `/api/sites/{site}/components`: a site's component instances, with the
//! workflows wired to each, and their changes (add, configure, remove) as
//! proposals: an edit of the site's `site.yaml` (see [`crate::site_edit`]),
//! validated and committed on a branch, live once an owner approves it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};

use super::proposals::propose;
use super::{ApiError, ApiResult, json_body};
use crate::access::Principal;
use crate::daemon::Daemon;
use crate::site_edit::{self, Change, EditError};
use crate::workspace::Workspace;

fn shown(id: &str) -> String {
    id.chars().take(100).collect()
}

fn no_site(site: &str) -> ApiError {
    ApiError::not_found(format!("no site `{}`", shown(site)))
}

/// `GET /api/sites/{site}/components`.
pub async fn list(State(d): State<Arc<Daemon>>, Path(site): Path<String>) -> ApiResult {
    let ws = d.workspace();
    let doc = ws.sites.get(&site).ok_or_else(|| no_site(&site))?;
    let all = crate::validate::sites::site_instances(&ws, &site).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "site `{}` names template `{}`, which the workspace does not have",
                shown(&site),
                doc.value.template.as_str()
            ),
        )
    })?;
    let own: Vec<&str> = doc.value.pages.iter().map(|p| p.path.as_str()).collect();
    // Each component's connections once: finding them walks every site and workflow.
    let mut connections: BTreeMap<&str, Vec<crate::catalog::Connection>> = BTreeMap::new();
    for i in &all {
        let component = i.instance.component.as_str();
        if !connections.contains_key(component) {
            connections.insert(component, crate::catalog::connections(&ws, component));
        }
    }
    let list: Vec<Json> = all
        .iter()
        .map(|i| {
            let id = i.instance.id.as_str();
            let wired: Vec<Json> = connections
                .get(i.instance.component.as_str())
                .into_iter()
                .flatten()
                .filter(|c| c.instance == id && c.site.as_deref().is_none_or(|s| s == site))
                .map(|c| json!({"workflow": c.workflow, "trigger": c.trigger}))
                .collect();
            json!({
                "id": id,
                "component": i.instance.component.as_str(),
                "page": i.page.path,
                "inherited": !own.contains(&i.page.path.as_str()),
                "config": i.instance.config,
                "override": doc.value.components.get(id).map(|o| &o.config),
                "workflows": wired,
            })
        })
        .collect();
    Ok(axum::Json(json!({"site": site, "components": list})).into_response())
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    /// The path of one of the site's own pages.
    page: String,
    id: String,
    /// The component (`GET /api/components`).
    component: String,
    #[serde(default)]
    config: Map<String, Json>,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigBody {
    config: Map<String, Json>,
    #[serde(default)]
    title: Option<String>,
}

/// `POST /api/sites/{site}/components`: propose a new instance.
pub async fn add(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(site): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let b: AddBody = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let title = b
        .title
        .clone()
        .unwrap_or_else(|| format!("Add {} `{}` to {site}{}", b.component, b.id, b.page));
    let change = Change::Add {
        page: b.page,
        id: b.id,
        component: b.component,
        config: b.config,
    };
    edit(&d, &who, &site, &change, title).await
}

/// `PUT /api/sites/{site}/components/{id}`: propose an instance's new config.
pub async fn configure(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path((site, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let b: ConfigBody = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let title = b
        .title
        .clone()
        .unwrap_or_else(|| format!("Configure `{id}` on {site}"));
    let change = Change::Configure {
        id,
        config: b.config,
    };
    edit(&d, &who, &site, &change, title).await
}

/// `DELETE /api/sites/{site}/components/{id}`: propose removing an instance.
pub async fn remove(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path((site, id)): Path<(String, String)>,
) -> Response {
    let title = format!("Remove `{id}` from {site}");
    edit(&d, &who, &site, &Change::Remove { id }, title).await
}

/// Writes `change` into the site's file as the working tree has it, and
/// proposes the result.
async fn edit(
    d: &Arc<Daemon>,
    who: &Principal,
    site: &str,
    change: &Change,
    title: String,
) -> Response {
    let ws = d.workspace();
    let Some(doc) = ws.sites.get(site) else {
        return no_site(site).into_response();
    };
    let Some(file) = ws.files.get(doc.file) else {
        return no_site(site).into_response();
    };
    let rel = file.rel.to_string_lossy().replace('\\', "/");
    let source = match std::fs::read_to_string(d.root.join(&rel)) {
        Ok(s) => s,
        Err(e) => {
            return ApiError::new(StatusCode::CONFLICT, format!("`{rel}` cannot be read: {e}"))
                .into_response();
        }
    };
    let text = match site_edit::apply(&source, change, |id| inherited(&ws, site, id)) {
        Ok(t) => t,
        Err(e) => return edit_error(&e).into_response(),
    };
    propose(d, who, title, BTreeMap::from([(rel, Some(text))])).await
}

/// Whether the site has an instance `id` anywhere (its pages or its template's).
fn inherited(ws: &Workspace, site: &str, id: &str) -> bool {
    crate::validate::sites::site_instances(ws, site)
        .is_some_and(|all| all.iter().any(|i| i.instance.id.as_str() == id))
}

fn edit_error(e: &EditError) -> ApiError {
    match e {
        EditError::NoInstance(_) => ApiError::not_found(e.to_string()),
        EditError::Exists(_) => ApiError::field(StatusCode::CONFLICT, "id", e.to_string()),
        EditError::NoPage(_) => {
            ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "page", e.to_string())
        }
        EditError::Inherited(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        EditError::Unreadable(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
    }
}
