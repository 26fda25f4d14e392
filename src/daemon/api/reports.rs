//! `/api/analytics` reports beyond a site's figures: ROI per workflow and
//! campaign, forecasts, click heat maps and the paths to a conversion, the
//! same numbers `funnel analytics roi|forecast|heatmap|paths` prints. Each is
//! a read over a period of `days` (default 30, at most 366) ending now.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, ApiResult, known_site, query};
use crate::daemon::Daemon;
use crate::store::{StoreError, UnixMs};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Days {
    days: Option<i64>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeatQuery {
    days: Option<i64>,
    /// Only this page (a path such as `/pricing`).
    page: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastQuery {
    /// Only this workflow.
    workflow: Option<String>,
}

/// `(since, now)` for `days` back from the worker's clock.
fn period(d: &Daemon, days: Option<i64>) -> (UnixMs, UnixMs) {
    let now = d.worker().now();
    (now - days.unwrap_or(30).clamp(1, 366) * DAY_MS, now)
}

/// `GET /api/analytics/roi?days=N`.
pub async fn roi(State(d): State<Arc<Daemon>>, uri: Uri) -> ApiResult {
    let q: Days = query(&uri)?;
    let (since, now) = period(&d, q.days);
    let (window, cost) = crate::analytics::roi::settings(&d.workspace());
    let r = d
        .worker()
        .store()
        .read_async(move |db| crate::analytics::roi::report(db, since, now, window, cost))
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(r).into_response())
}

/// `GET /api/analytics/forecast?workflow=ID`.
pub async fn forecast(State(d): State<Arc<Daemon>>, uri: Uri) -> ApiResult {
    let q: ForecastQuery = query(&uri)?;
    if let Some(w) = &q.workflow
        && !d.workspace().workflows.contains_key(w)
    {
        return Err(ApiError::not_found(format!(
            "no workflow `{}`",
            w.chars().take(100).collect::<String>()
        )));
    }
    let now = d.worker().now();
    let (window, _) = crate::analytics::roi::settings(&d.workspace());
    let r = d
        .worker()
        .store()
        .read_async(move |db| {
            crate::analytics::forecast::report(db, q.workflow.as_deref(), now, window)
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(r).into_response())
}

/// `GET /api/analytics/sites/{site}/heatmap?days=N&page=P`.
pub async fn heatmap(
    State(d): State<Arc<Daemon>>,
    Path(site): Path<String>,
    uri: Uri,
) -> ApiResult {
    let q: HeatQuery = query(&uri)?;
    known_site(&d, &site)?;
    let (since, now) = period(&d, q.days);
    let mut pages = d
        .worker()
        .store()
        .read_async(move |db| crate::analytics::heatmap::report(db, &site, since, now))
        .await
        .map_err(ApiError::internal)?;
    if let Some(page) = q.page {
        pages.retain(|p| p.page == page);
    }
    Ok(axum::Json(json!({ "pages": pages })).into_response())
}

/// `GET /api/analytics/sites/{site}/paths?days=N`: the paths to a form post
/// and the pages visits end on without one.
pub async fn paths(State(d): State<Arc<Daemon>>, Path(site): Path<String>, uri: Uri) -> ApiResult {
    let q: Days = query(&uri)?;
    known_site(&d, &site)?;
    let (since, now) = period(&d, q.days);
    let (r, exits) = d
        .worker()
        .store()
        .read_async(move |db| {
            Ok::<_, StoreError>((
                crate::analytics::paths::report(db, &site, since, now)?,
                crate::analytics::paths::exits(db, &site, since, now)?,
            ))
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(json!({
        "site": r.site,
        "conversions": r.conversions,
        "paths": r.paths,
        "exits": exits,
    }))
    .into_response())
}
