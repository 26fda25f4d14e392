//! `POST /api/sync`: one round of `funnel sync` (an editor's token): the
//! laptop's page of changes applied, then the next page of this store's feed
//! for it, in one transaction. `status: true` only counts what waits.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, ApiResult, json_body};
use crate::access::Principal;
use crate::daemon::Daemon;
use crate::store::StoreError;
use crate::sync::session::{self, Request};
use crate::sync::store::{self as sync_store, Cursor};

/// The largest round accepted: a page of [`sync_store::MAX_PAGE`] changes
/// with room for activities' data.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

pub async fn exchange(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let req: Request = json_body(&headers, &body)?;
    let unprocessable =
        |field: &str, why: String| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, why);
    if req.node.is_empty() || req.node.len() > 64 {
        return Err(unprocessable(
            "node",
            "`node` is the syncing store's id (1 to 64 characters)".into(),
        ));
    }
    Cursor::parse(&req.since).map_err(|e| unprocessable("since", e.to_string()))?;
    if req.limit.is_some_and(|l| l > sync_store::MAX_PAGE) {
        return Err(unprocessable(
            "limit",
            format!(
                "`limit` is 0 (send nothing back) to {}",
                sync_store::MAX_PAGE
            ),
        ));
    }
    sync_store::check(&req.changes).map_err(|e| unprocessable("changes", e.to_string()))?;
    // Erasing people through the API needs an owner; a page carrying an
    // erasure is the same act.
    let erases = req.changes.iter().any(|c| {
        c.item.starts_with("s:")
            && c.value.get("reason").and_then(|r| r.as_str()) == Some("forgotten")
    });
    if erases && who.role < crate::access::Role::Owner {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this page erases people, which needs the owner role; token `{}` is a {} (an owner syncs it, or erases them on the hub)",
                who.name, who.role
            ),
        ));
    }
    let by = super::actor(&who);
    let engine = d.worker().engine();
    let req = Arc::new(req);
    let mut attempt = 1;
    // Rounds of one sync arrive side by side; on PostgreSQL two that change
    // the same contacts in another order may deadlock, and the one failed
    // left nothing behind: it runs again.
    let answer = loop {
        let (req, by, engine) = (req.clone(), by.clone(), engine.clone());
        let answer = d
            .worker()
            .store()
            .write_alone(move |db| {
                let now = crate::store::now_ms();
                let resp = session::serve(db, &req, now, Some(&engine.scoring))
                    .map_err(session::into_store)?;
                if resp.applied.applied > 0 {
                    crate::audit::record(
                        db,
                        &by,
                        "sync",
                        "store",
                        Some(&req.node),
                        &json!({"applied": resp.applied.applied, "skipped": resp.applied.skipped}),
                        now,
                    )?;
                }
                Ok(resp)
            })
            .await;
        match answer {
            Err(e) if e.is_transient() && attempt < session::ATTEMPTS => attempt += 1,
            other => break other,
        }
    };
    match answer {
        Ok(resp) => Ok(axum::Json(resp).into_response()),
        Err(StoreError::Invalid(why)) => Err(unprocessable("changes", why)),
        Err(e) => Err(ApiError::internal(e)),
    }
}
