//! `/api/analytics` (a site's figures) and `/api/ai`, which answers 501 until
//! workflow suggestions exist.

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
    if !d.workspace().sites.contains_key(&site) {
        return Err(ApiError::not_found(format!(
            "no site `{}`",
            site.chars().take(100).collect::<String>()
        )));
    }
    let days = q.days.unwrap_or(30).clamp(1, 366);
    let since = d.worker().now() - days * 86_400_000;
    let report = d
        .worker()
        .store()
        .read_async(move |db| {
            crate::analytics::site_report(db, &site, since)
                .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(report).into_response())
}

pub async fn suggest() -> ApiResult {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "workflow suggestions are not available yet",
    ))
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
