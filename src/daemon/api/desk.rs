//! The desk over HTTP: the reads and changes of `funnel tui`, so the TUI runs on
//! a team's daemon (`funnel tui --remote NAME`) exactly as on a local store.
//! Each request gets a [`Local`] desk on the daemon's own worker, under the
//! token's name, on a blocking thread: the same code answers both ways, so a
//! remote screen shows what a local one would, and a change is audited with
//! `token:NAME` and starts the workflows it triggers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, ApiResult, json_body, query};
use crate::access::{Principal, Role};
use crate::crm::directory::Cursor;
use crate::daemon::Daemon;
use crate::desk::local::Local;
use crate::desk::{Change, ErrorKind, Source, SourceError};
use crate::model::contacts::Condition;

/// Contacts a page holds at most.
const PAGE_MAX: usize = 500;

/// A desk on the daemon's worker, changes recorded as the token.
fn desk(d: &Daemon, who: &Principal) -> Local {
    let fields = d
        .workspace()
        .fields
        .as_ref()
        .map(|f| f.value.fields.keys().cloned().collect())
        .unwrap_or_default();
    let actor = (who.role >= Role::Editor).then(|| super::actor(who));
    Local::on_worker(
        d.worker().clone(),
        tokio::runtime::Handle::current(),
        "daemon".into(),
        actor,
    )
    .with_fields(fields)
}

/// Runs `f` on a desk on a blocking thread (its reads and changes wait on the
/// store) and answers its result as JSON.
async fn on_desk<T, F>(d: &Daemon, who: &Principal, f: F) -> ApiResult
where
    T: Serialize + Send + 'static,
    F: FnOnce(&Local) -> crate::desk::Result<T> + Send + 'static,
{
    let local = desk(d, who);
    let out = tokio::task::spawn_blocking(move || f(&local))
        .await
        .map_err(ApiError::internal)?;
    out.map(|v| axum::Json(v).into_response())
        .map_err(source_error)
}

/// A desk's failure as its status: the remote desk maps the status back.
fn source_error(e: SourceError) -> ApiError {
    match e.kind {
        ErrorKind::Invalid => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.message),
        ErrorKind::NotFound => ApiError::not_found(e.message),
        ErrorKind::Refused => ApiError::new(StatusCode::FORBIDDEN, e.message),
        ErrorKind::Unavailable => ApiError::internal(e.message),
    }
}

/// `GET /api/workspace`: who the token is and what the workspace has.
pub async fn workspace(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
) -> ApiResult {
    let role = who.role;
    on_desk(&d, &who, move |desk| {
        Ok(json!({ "role": role, "info": desk.info() }))
    })
    .await
}

/// The body of a page of contacts.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageBody {
    /// A contact condition, as segments write them (`{"all": [{"tag": "vip"},
    /// {"score": {"gte": 50}}]}`; schema/segments.schema.json); none: every
    /// contact. Recursive, so shown here as any JSON.
    #[serde(default, rename = "where")]
    #[schemars(with = "Option<serde_json::Value>")]
    filter: Option<Condition>,
    /// Where the page starts (`"first"`, `{"below": id}`, `{"above": id}`,
    /// `{"at_or_below": id}`, `"last"`), newest first.
    #[serde(default = "first")]
    cursor: Cursor,
    /// At most this many (1 to 500; 50).
    #[serde(default)]
    limit: Option<usize>,
}

fn first() -> Cursor {
    Cursor::First
}

/// `POST /api/crm/contacts/page`: a keyset page of contacts meeting a condition.
pub async fn page(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let b: PageBody = json_body(&headers, &body)?;
    let limit = b.limit.unwrap_or(50).clamp(1, PAGE_MAX);
    on_desk(&d, &who, move |desk| {
        let rows = desk.contacts(b.filter.as_ref(), b.cursor, limit)?;
        Ok(json!({ "contacts": rows }))
    })
    .await
}

/// The body of a count of contacts.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountBody {
    /// A contact condition, as segments write them; none: every contact.
    #[serde(default, rename = "where")]
    #[schemars(with = "Option<serde_json::Value>")]
    filter: Option<Condition>,
}

/// `POST /api/crm/contacts/count`: how many contacts meet a condition.
pub async fn count(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let b: CountBody = json_body(&headers, &body)?;
    on_desk(&d, &who, move |desk| {
        Ok(json!({ "count": desk.count(b.filter.as_ref())? }))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

/// `GET /api/crm/contacts/search?q=`: contacts matching every word, best first.
pub async fn search(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    uri: Uri,
) -> ApiResult {
    let q: SearchQuery = query(&uri)?;
    if q.q.len() > 500 {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "q",
            "a search is at most 500 bytes",
        ));
    }
    let limit = q.limit.unwrap_or(50).clamp(1, PAGE_MAX);
    on_desk(&d, &who, move |desk| {
        Ok(json!({ "contacts": desk.search(&q.q, limit)? }))
    })
    .await
}

/// `GET /api/crm/contacts/{id}/detail`: everything the detail pane shows.
pub async fn detail(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult {
    let id = contact_id(&d, id).await?;
    on_desk(&d, &who, move |desk| desk.contact(id)).await
}

/// `GET /api/crm/contacts/{id}/export`: everything held about a person.
pub async fn export(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult {
    let id = contact_id(&d, id).await?;
    on_desk(&d, &who, move |desk| desk.export_data(id)).await
}

/// A contact named by its uid, email or numeric id.
async fn contact_id(d: &Daemon, key: String) -> Result<i64, ApiError> {
    d.worker()
        .store()
        .read_async(move |db| Ok(super::crm::resolve(db, &key)))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| source_error(e.into()))
}

/// `GET /api/crm/pipelines/{id}/board`: a column per stage.
pub async fn board(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult {
    on_desk(&d, &who, move |desk| {
        if !desk.info().pipelines.iter().any(|p| p.id == id) {
            return Err(SourceError::of(
                ErrorKind::NotFound,
                format!("no pipeline `{}`", id.chars().take(100).collect::<String>()),
            ));
        }
        Ok(json!({ "columns": desk.board(&id)? }))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct LimitQuery {
    limit: Option<usize>,
}

/// `GET /api/crm/duplicates`: likely duplicate pairs, best first.
pub async fn duplicates(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    uri: Uri,
) -> ApiResult {
    let q: LimitQuery = query(&uri)?;
    let limit = q.limit.unwrap_or(100).clamp(1, PAGE_MAX);
    on_desk(&d, &who, move |desk| {
        Ok(json!({ "pairs": desk.duplicates(limit)? }))
    })
    .await
}

/// `GET /api/crm/campaigns/overview`: each campaign's state, plan or numbers.
pub async fn campaigns(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
) -> ApiResult {
    on_desk(&d, &who, |desk| {
        Ok(json!({ "campaigns": desk.campaigns()? }))
    })
    .await
}

/// `GET /api/automation/counts`: executions per workflow and status, 30 days.
pub async fn counts(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
) -> ApiResult {
    on_desk(&d, &who, |desk| {
        Ok(json!({ "workflows": desk.workflow_counts()? }))
    })
    .await
}

/// `GET /api/analytics/dashboard`: the dashboard's totals and series.
pub async fn dashboard(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
) -> ApiResult {
    on_desk(&d, &who, |desk| desk.dashboard()).await
}

/// `POST /api/changes`: one change, as the TUI makes it; erasing a person or
/// deleting contacts needs an owner.
pub async fn change(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    use crate::crm::bulk::Action;
    let c: Change = json_body(&headers, &body)?;
    let erases = matches!(
        &c,
        Change::Forget { .. }
            | Change::Bulk {
                action: Action::Delete,
                ..
            }
            | Change::BulkFilter {
                action: Action::Delete,
                ..
            }
    );
    if erases && who.role < Role::Owner {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "erasing people needs the owner role; token `{}` is a {}",
                who.name, who.role
            ),
        ));
    }
    on_desk(&d, &who, move |desk| {
        Ok(json!({ "message": desk.apply(c)? }))
    })
    .await
}
