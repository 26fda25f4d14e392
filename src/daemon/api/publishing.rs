//! `/api/publishing`: publish a site of the running workspace to static files
//! (`public/<site>/` under the workspace, as `funnel publish` writes them, links
//! checked by the build), and each site's publishing status from the audit log.

use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, ApiResult, actor};
use crate::access::Principal;
use crate::daemon::Daemon;

pub async fn publish(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(site): Path<String>,
) -> ApiResult {
    super::known_site(&d, &site)?;
    let ws = d.workspace();
    let public_url = ws
        .config
        .as_ref()
        .map(|c| c.value.public_url.to_string())
        .unwrap_or_else(|| format!("http://{}", d.addr));
    let dir = d.root.join("public").join(&site);
    let name = site.clone();
    let started = std::time::Instant::now();
    let done = tokio::task::spawn_blocking(move || {
        let opts = crate::publish::Options {
            public_url,
            base_url: None,
        };
        let build = crate::publish::build(&ws, &name, &opts)?;
        let written = crate::publish::output::write(&build, &dir)?;
        Ok::<_, crate::publish::PublishError>((build.pages.len(), build.files.len(), written))
    })
    .await
    .map_err(ApiError::internal)?;
    let (pages, files, written) = done.map_err(|e| {
        // A site that does not build is the workspace's problem, told as it is.
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
    })?;
    let report = json!({
        "site": site,
        "folder": format!("public/{site}"),
        "pages": pages,
        "files": files,
        "written": written.written,
        "unchanged": written.unchanged,
        "removed": written.removed,
        "ms": started.elapsed().as_millis() as u64,
    });
    let (by, details, id, now) = (actor(&who), report.clone(), site.clone(), d.worker().now());
    d.worker()
        .store()
        .write(move |db| crate::audit::record(db, &by, "publish", "site", Some(&id), &details, now))
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(report).into_response())
}

pub async fn status(State(d): State<Arc<Daemon>>, Path(site): Path<String>) -> ApiResult {
    super::known_site(&d, &site)?;
    let url = d
        .sites()
        .iter()
        .find(|s| s.name == site)
        .map(|s| format!("{}/", s.url));
    let id = site.clone();
    let last = d
        .worker()
        .store()
        .read_async(move |db| {
            use crate::store::db::OptionalRow as _;
            db.prepare_cached(
                "SELECT actor, details, recorded_at FROM audit_log \
                 WHERE entity = 'site' AND entity_id = ?1 AND action = 'publish' \
                 ORDER BY recorded_at DESC, id DESC LIMIT 1",
            )?
            .query_row(crate::store::db::params![id], |r| {
                Ok(json!({
                    "by": r.get::<String>(0)?,
                    "report": r.get::<serde_json::Value>(1)?,
                    "at": r.get::<i64>(2)?,
                }))
            })
            .optional()
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(json!({"site": site, "live_url": url, "last_publish": last})).into_response())
}
