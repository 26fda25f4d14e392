//! `/api/analytics` (a site's figures) and `/api/ai/suggest-workflows`
//! (the seed's request and response, answered from the recipe library).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;

use super::{ApiError, ApiResult, query};
use crate::daemon::Daemon;

#[derive(Debug, serde::Deserialize)]
pub struct Period {
    /// Days back from now (default 30, at most 366).
    days: Option<i64>,
}

pub async fn site(State(d): State<Arc<Daemon>>, Path(site): Path<String>, uri: Uri) -> ApiResult {
    let q: Period = query(&uri)?;
    super::known_site(&d, &site)?;
    let days = q.days.unwrap_or(30).clamp(1, 366);
    let now = d.worker().now();
    let since = now - days * 86_400_000;
    let report = d
        .worker()
        .store()
        .read_async(move |db| {
            crate::analytics::site_report(db, &site, since, now)
                .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(report).into_response())
}

/// The seed's request for workflow suggestions.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestBody {
    /// The component type, e.g. `contact_form` or `contact-form`.
    component_type: String,
    /// The instance's config: its `fields` (names, or the form's field objects),
    /// heading, button label…
    #[serde(default)]
    component_config: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    site_context: SiteContext,
    /// A site of the workspace: its industry and goals fill in what
    /// `site_context` leaves out, and the workflows are written for it.
    #[serde(default)]
    site: Option<String>,
    /// The component instance of `site` the workflows start from.
    #[serde(default)]
    instance: Option<String>,
    /// How many suggestions (default 3, at most 20).
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteContext {
    #[serde(default)]
    industry: Option<String>,
    #[serde(default)]
    goals: Vec<String>,
}

pub async fn suggest(
    State(d): State<Arc<Daemon>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    use crate::model::recipe::{Goal, Industry};
    let b: SuggestBody = super::json_body(&headers, &body)?;
    let ws = d.workspace();
    let unprocessable = |field: &str, message: String| {
        ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, message)
    };
    // The seed writes `contact_form`; component ids are `contact-form`.
    let component = b.component_type.trim().replace('_', "-");
    if !ws.components.contains_key(&component) {
        return Err(unprocessable(
            "component_type",
            format!(
                "no component `{}`",
                b.component_type.chars().take(60).collect::<String>()
            ),
        ));
    }
    if let Some(site) = &b.site
        && !ws.sites.contains_key(site)
    {
        return Err(unprocessable(
            "site",
            format!("no site `{}`", site.chars().take(60).collect::<String>()),
        ));
    }
    // The instance goes into the workflow's YAML: only one the site has.
    if let Some(instance) = &b.instance {
        let known = b.site.as_deref().is_some_and(|site| {
            crate::suggest::site_components(&ws, site)
                .iter()
                .any(|(id, _, _)| id == instance)
        });
        if !known {
            return Err(unprocessable(
                "instance",
                format!(
                    "no component instance `{}` on the site (`instance` needs `site`)",
                    instance.chars().take(60).collect::<String>()
                ),
            ));
        }
    }
    let industry = match &b.site_context.industry {
        Some(text) => Some(Industry::parse(text).ok_or_else(|| {
            let all: Vec<&str> = Industry::ALL.iter().map(|i| i.as_str()).collect();
            unprocessable(
                "site_context.industry",
                format!("unknown industry; industries: {}", all.join(", ")),
            )
        })?),
        None => b
            .site
            .as_deref()
            .and_then(|s| crate::suggest::site_industry(&ws, s)),
    };
    let mut goals = Vec::new();
    for g in &b.site_context.goals {
        goals.push(Goal::parse(g).ok_or_else(|| {
            let all: Vec<&str> = Goal::ALL.iter().map(|g| g.as_str()).collect();
            unprocessable(
                "site_context.goals",
                format!("unknown goal; goals: {}", all.join(", ")),
            )
        })?);
    }
    if goals.is_empty()
        && let Some(site) = &b.site
    {
        goals = ws.sites[site.as_str()].value.goals.clone();
    }
    let mut config = b.component_config;
    // The seed lists a form's fields by name; the component's config holds
    // field objects.
    if let Some(serde_json::Value::Array(fields)) = config.get_mut("fields") {
        for f in fields.iter_mut() {
            if let serde_json::Value::String(name) = f {
                *f = serde_json::json!({"name": name});
            }
        }
    }
    let query = crate::suggest::rank::Query {
        component,
        config,
        industry,
        goals,
    };
    // Reading the workspace's recipes is file work: off the async threads.
    let (site, instance) = (b.site.clone(), b.instance.clone());
    let found = tokio::task::spawn_blocking(move || {
        let library = crate::suggest::recipes::load(&ws.root)?;
        crate::suggest::suggest(&ws, &library, &query, site.as_deref(), instance.as_deref())
    })
    .await
    .map_err(ApiError::internal)?;
    let mut found = found.map_err(|e| unprocessable("component_type", e.to_string()))?;
    found
        .suggestions
        .truncate(b.limit.unwrap_or(3).clamp(1, 20));
    Ok(axum::Json(serde_json::json!({
        "suggestions": found.suggestions,
        "excluded": found.excluded,
        "industry": found.industry,
        "goals": found.goals,
    }))
    .into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct MinutesQuery {
    /// Unix ms (default: the last hour).
    since: Option<i64>,
    limit: Option<usize>,
}

pub async fn minutes(State(d): State<Arc<Daemon>>, uri: Uri) -> ApiResult {
    let q: MinutesQuery = query(&uri)?;
    let since = q
        .since
        .unwrap_or_else(|| crate::store::now_ms() - 3_600_000);
    let limit = q.limit.unwrap_or(1_000).min(10_000);
    let rows = d
        .worker()
        .store()
        .read_async(move |db| crate::daemon::rollup::read(db, since, limit))
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(serde_json::json!({ "minutes": rows })).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct OptimizeQuery {
    /// A workflow, campaign, email template or site (default: everything).
    target: Option<String>,
    /// Days back from now (default 30, at most 366).
    days: Option<i64>,
}

/// `GET /api/ai/optimize`: the advice of `funnel optimize`.
pub async fn optimize(State(d): State<Arc<Daemon>>, uri: Uri) -> ApiResult {
    let q: OptimizeQuery = query(&uri)?;
    let ws = d.workspace();
    let scope = crate::optimize::Scope::of(&ws, q.target.as_deref())
        .map_err(|m| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "target", m))?;
    let now = d.worker().now();
    let since = now - q.days.unwrap_or(30).clamp(1, 366) * 86_400_000;
    let advice = d
        .worker()
        .store()
        .read_async(move |db| crate::optimize::advise(db, &ws, &scope, since, now))
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(serde_json::json!({ "advice": advice })).into_response())
}
