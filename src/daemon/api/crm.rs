//! `/api/crm`: contacts (listed by segment in pages, created or updated by email,
//! shown whole), activities on a contact's timeline; and `/api/tokens`. Changes go
//! through the same library calls as the command line, so they start workflows
//! (`contact_created`, `tag_added`, …) as a form would.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value as Json, json};

use super::{ApiError, ApiResult, json_body, query};
use crate::access::Principal;
use crate::crm::{CrmError, contact, directory};
use crate::daemon::Daemon;
use crate::store::db::{Db, OptionalRow, params};
use crate::store::{NewActivity, NewContact, StoreError};

fn crm_error(e: CrmError) -> ApiError {
    match e {
        CrmError::NoContact(_) | CrmError::NotFound(_) => ApiError::not_found(e.to_string()),
        CrmError::BadEmail(_) => {
            ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "email", e.to_string())
        }
        CrmError::Store(s) => ApiError::internal(s),
        other => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
    }
}

/// A CRM error inside a read whose request was checked before it (a known
/// segment, a contact just found): the server's trouble, not the client's.
fn keep(e: CrmError) -> StoreError {
    StoreError::Invalid(format!("crm: {e}"))
}

/// A contact named by its uid, email or numeric id.
pub(super) fn resolve(db: Db<'_>, key: &str) -> Result<i64, CrmError> {
    if !key.contains('@') {
        let by_uid: Option<i64> = db
            .prepare_cached("SELECT id FROM contacts WHERE uid = ?1")?
            .query_row(params![key], |r| r.get(0))
            .optional()?;
        if let Some(id) = by_uid {
            return Ok(id);
        }
    }
    contact::resolve(db, key)
}

#[derive(Debug, serde::Deserialize)]
pub struct ContactQuery {
    segment: Option<String>,
    limit: Option<usize>,
    /// The last id of the previous page.
    after: Option<i64>,
}

pub async fn contacts(State(d): State<Arc<Daemon>>, uri: Uri) -> ApiResult {
    let q: ContactQuery = query(&uri)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let after = q.after.unwrap_or(0);
    let engine = d.worker().engine();
    let def = match &q.segment {
        Some(s) => Some(engine.scoring.segments.get(s).cloned().ok_or_else(|| {
            ApiError::field(
                StatusCode::NOT_FOUND,
                "segment",
                format!("no segment `{}`", s.chars().take(100).collect::<String>()),
            )
        })?),
        None => None,
    };
    let now = d.worker().now();
    let rows = d
        .worker()
        .store()
        .read_async(move |db| {
            let scoring = &engine.scoring;
            match &def {
                Some(def) => {
                    let ids =
                        crate::crm::segment::segment_members(db, scoring, def, now, after, limit)
                            .map_err(keep)?;
                    ids.into_iter()
                        .map(|id| directory::summary(db, id).map_err(keep))
                        .collect::<Result<Vec<_>, _>>()
                }
                None => directory::list(db, scoring, None, now, after, limit).map_err(keep),
            }
        })
        .await
        .map_err(ApiError::internal)?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(axum::Json(json!({
        "contacts": rows,
        "segment": q.segment,
        "next_after": next,
    }))
    .into_response())
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContactBody {
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    /// The component instance the contact came from (`contact-form-1`).
    #[serde(default)]
    source_component: Option<String>,
    #[serde(default)]
    custom_fields: BTreeMap<String, Json>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    lists: Vec<String>,
}

pub async fn upsert(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let b: NewContactBody = json_body(&headers, &body)?;
    if !crate::validate::values::is_email(&crate::store::ops::normalize_email(&b.email)) {
        return Err(crm_error(CrmError::BadEmail(
            b.email.chars().take(200).collect(),
        )));
    }
    let u = contact::Upsert {
        contact: NewContact {
            email: b.email,
            name: b.name,
            phone: b.phone,
            source_component: b.source_component,
            ..Default::default()
        },
        fields: b.custom_fields,
        tags: b.tags,
        lists: b.lists,
    };
    let by = super::actor(&who);
    let result = d
        .worker()
        .crm_change(move |db, now| {
            let normalized = crate::store::ops::normalize_email(&u.contact.email);
            let before = match contact::id_by_email(db, &normalized)? {
                Some(id) => Some(contact_state(db, id)?),
                None => None,
            };
            let (id, events) = contact::upsert(db, &u, now)?;
            let created = events
                .iter()
                .any(|e| matches!(e, crate::crm::CrmEvent::ContactCreated { .. }));
            let after = contact_state(db, id)?;
            let uid = after["uid"].as_str().map(String::from);
            crate::audit::record(
                db,
                &by,
                if created { "create" } else { "update" },
                "contact",
                uid.as_deref(),
                &json!({"before": before, "after": after}),
                now,
            )?;
            Ok(((id, created), events))
        })
        .await;
    let ((id, created), done) = result.map_err(super::automation::engine_error)?;
    let summary = d
        .worker()
        .store()
        .read_async(move |db| directory::summary(db, id).map_err(keep))
        .await
        .map_err(ApiError::internal)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(json!({
            "contact": summary,
            "created": created,
            "workflows_started": done.started.len(),
        })),
    )
        .into_response())
}

/// What an audit entry keeps of a contact: its summary, tags and fields.
fn contact_state(db: Db<'_>, id: i64) -> Result<Json, CrmError> {
    let s = directory::summary(db, id)?;
    Ok(json!({
        "uid": s.uid,
        "email": s.email,
        "name": s.name,
        "status": s.status,
        "stage": s.stage,
        "tags": contact::tags(db, id)?,
        "fields": contact::fields(db, id)?,
    }))
}

pub async fn contact(State(d): State<Arc<Daemon>>, Path(key): Path<String>) -> ApiResult {
    let engine = d.worker().engine();
    let now = d.worker().now();
    let found = d
        .worker()
        .store()
        .read_async(move |db| {
            Ok((|| -> Result<Json, CrmError> {
                let id = resolve(db, &key)?;
                let view = contact::view(db, id, &engine.scoring, now)?;
                let timeline = directory::timeline(db, id, None, 50)?;
                Ok(json!({"contact": view, "timeline": timeline}))
            })())
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(found.map_err(crm_error)?).into_response())
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Json,
}

pub async fn activity(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let b: ActivityBody = json_body(&headers, &body)?;
    let kind = b.kind.trim().to_string();
    let valid = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "type",
            "`type` is 1 to 64 lowercase letters, digits, `_` or `-` (page_view, call, …)",
        ));
    }
    if !matches!(b.data, Json::Object(_) | Json::Null) {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "data",
            "`data` is an object",
        ));
    }
    let engine = d.worker().engine();
    let by = super::actor(&who);
    let result = d
        .worker()
        .crm_change(move |db, now| {
            let id = resolve(db, &key)?;
            let occurred = b
                .data
                .get("timestamp")
                .and_then(Json::as_str)
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map_or(now, |t| t.as_millisecond());
            let subject = b
                .data
                .get("page")
                .or_else(|| b.data.get("subject"))
                .and_then(Json::as_str)
                .map(|s| s.chars().take(200).collect());
            let a = NewActivity {
                contact_id: id,
                kind: kind.clone(),
                subject,
                data: if b.data.is_null() { json!({}) } else { b.data },
                source: Some("api".into()),
                occurred_at: occurred,
            };
            let (activity, events) = contact::add_activity(db, &a, &engine.scoring)?;
            let uid = directory::summary(db, id)?.uid;
            crate::audit::record(
                db,
                &by,
                "add_activity",
                "contact",
                Some(&uid),
                &json!({"activity": a.kind, "subject": a.subject}),
                now,
            )?;
            Ok((activity, events))
        })
        .await;
    let (activity, _) = result.map_err(|e| match e {
        crate::engine::EngineError::Invalid(m) if m.starts_with("no contact") => {
            ApiError::not_found(m)
        }
        other => super::automation::engine_error(other),
    })?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "activity": activity })),
    )
        .into_response())
}

pub async fn tokens(State(d): State<Arc<Daemon>>) -> ApiResult {
    let list = d
        .worker()
        .store()
        .read_async(|db| {
            crate::access::list(db, false).map_err(|e| StoreError::Invalid(e.to_string()))
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(json!({ "tokens": list })).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct AuditQuery {
    /// Unix ms.
    since: Option<i64>,
    actor: Option<String>,
    limit: Option<usize>,
}

pub async fn audit(State(d): State<Arc<Daemon>>, uri: Uri) -> ApiResult {
    let q: AuditQuery = query(&uri)?;
    let limit = q.limit.unwrap_or(100).min(1000);
    let entries = d
        .worker()
        .store()
        .read_async(move |db| {
            crate::audit::list(db, q.since.unwrap_or(0), q.actor.as_deref(), limit)
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(json!({ "entries": entries })).into_response())
}
