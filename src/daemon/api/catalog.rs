//! `/api/templates` and `/api/components`: the template catalog and the component
//! library of the running workspace.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, ApiResult, query};
use crate::daemon::Daemon;

#[derive(Debug, serde::Deserialize)]
pub struct TemplateQuery {
    category: Option<String>,
    search: Option<String>,
    limit: Option<usize>,
}

pub async fn templates(State(d): State<Arc<Daemon>>, uri: Uri) -> ApiResult {
    let q: TemplateQuery = query(&uri)?;
    let ws = d.workspace();
    let mut list = crate::catalog::list(&ws, q.category.as_deref(), q.search.as_deref());
    list.truncate(q.limit.unwrap_or(100).min(500));
    Ok(axum::Json(json!({ "templates": list })).into_response())
}

pub async fn template(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> ApiResult {
    let ws = d.workspace();
    let t = crate::catalog::show(&ws, &id).ok_or_else(|| no_template(&id))?;
    Ok(axum::Json(t).into_response())
}

pub async fn template_components(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> ApiResult {
    let ws = d.workspace();
    let t = crate::catalog::show(&ws, &id).ok_or_else(|| no_template(&id))?;
    let pages: Vec<_> = t
        .pages
        .iter()
        .map(|p| {
            json!({
                "path": p.path,
                "components": p.components.iter().map(|(instance, component)| {
                    json!({"id": instance, "component": component})
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(
        axum::Json(json!({"template": id, "pages": pages, "components": t.components}))
            .into_response(),
    )
}

pub async fn components(State(d): State<Arc<Daemon>>) -> ApiResult {
    let ws = d.workspace();
    Ok(axum::Json(json!({ "components": crate::catalog::components(&ws) })).into_response())
}

pub async fn component_workflows(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> ApiResult {
    let ws = d.workspace();
    if !ws.components.contains_key(&id) {
        return Err(ApiError::not_found(format!(
            "no component `{}`",
            id.chars().take(100).collect::<String>()
        )));
    }
    Ok(
        axum::Json(json!({"component": id, "workflows": crate::catalog::connections(&ws, &id)}))
            .into_response(),
    )
}

fn no_template(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no template `{}`",
        id.chars().take(100).collect::<String>()
    ))
}
