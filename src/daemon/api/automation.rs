//! `/api/workflows` and `/api/automation`: the running workflows, their
//! statistics, starting one by hand, and the executions with retry and cancel.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value as Json, json};

use super::{ApiError, ApiResult, json_body, query};
use crate::access::Principal;
use crate::daemon::Daemon;
use crate::engine::EngineError;
use crate::engine::manage::{self, Filter};

/// An engine error as an answer: unknown things are 404, bad data 422, the rest
/// the server's trouble.
pub fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::UnknownWorkflow(_) | EngineError::UnknownExecution(_) => {
            ApiError::not_found(e.to_string())
        }
        EngineError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
        other => ApiError::internal(other),
    }
}

pub async fn workflows(State(d): State<Arc<Daemon>>) -> ApiResult {
    let engine = d.worker().engine();
    let overrides = d
        .worker()
        .store()
        .read_async(|db| {
            crate::engine::Engine::overrides(db)
                .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))
        })
        .await
        .map_err(ApiError::internal)?;
    let list: Vec<Json> = engine
        .workflows()
        .map(|(id, p)| {
            json!({
                "id": id,
                "name": p.workflow.name,
                "trigger": crate::engine::trigger_type(&p.workflow.trigger.kind),
                "active": engine.is_active(id, &overrides),
                "version": p.hash,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "workflows": list })).into_response())
}

/// The `days` of `GET /api/workflows/{id}/analytics` (the seed's).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Days {
    /// Days back from now (default 30, at most 366).
    days: Option<i64>,
}

pub async fn workflow_analytics(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult {
    let q: Days = query(&uri)?;
    if d.worker().engine().workflow(&id).is_none() {
        return Err(engine_error(EngineError::UnknownWorkflow(id)));
    }
    let days = q.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "days",
            "days must be 1 to 366",
        ));
    }
    let now = d.worker().now();
    let since = now - days * 86_400_000;
    let stats = d
        .worker()
        .store()
        .read_async(move |db| {
            manage::stats(db, &id, since, now + 1)
                .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(stats).into_response())
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Execute {
    #[serde(default)]
    trigger_data: Json,
}

pub async fn execute(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let req: Execute = json_body(&headers, &body)?;
    let data = match req.trigger_data {
        Json::Null => json!({}),
        Json::Object(o) => Json::Object(o),
        _ => {
            return Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "trigger_data",
                "`trigger_data` is an object",
            ));
        }
    };
    let started = d
        .worker()
        .start_workflow(&id, data)
        .await
        .map_err(engine_error)?;
    use crate::engine::ingest::Started;
    let (status, body) = match started {
        Started::Running(ex) => (
            StatusCode::ACCEPTED,
            json!({"started": true, "execution": uid_of(&d, ex).await?}),
        ),
        Started::Failed(ex) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"started": false, "execution": uid_of(&d, ex).await?, "error": {"code": "unprocessable_entity", "message": "the trigger data does not fit the workflow's trigger; see the execution"}}),
        ),
        Started::Filtered => (
            StatusCode::OK,
            json!({"started": false, "reason": "the trigger's conditions do not hold"}),
        ),
    };
    Ok((status, axum::Json(body)).into_response())
}

async fn uid_of(d: &Daemon, id: i64) -> Result<String, ApiError> {
    d.worker()
        .store()
        .read_async(move |db| {
            db.query_row(
                "SELECT uid FROM executions WHERE id = ?1",
                crate::store::db::params![id],
                |r| r.get(0),
            )
        })
        .await
        .map_err(ApiError::internal)
}

#[derive(Debug, serde::Deserialize)]
pub struct ExecutionQuery {
    workflow: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
}

pub async fn executions(State(d): State<Arc<Daemon>>, uri: Uri) -> ApiResult {
    let q: ExecutionQuery = query(&uri)?;
    let f = Filter {
        workflow: q.workflow,
        status: q.status,
        limit: q.limit.unwrap_or(50).min(500),
    };
    let rows = d
        .worker()
        .store()
        .read_async(move |db| {
            manage::list(db, &f).map_err(|e| crate::store::StoreError::Invalid(e.to_string()))
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(json!({ "executions": rows })).into_response())
}

pub async fn execution(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> ApiResult {
    let found = d
        .worker()
        .store()
        .read_async(move |db| Ok(manage::show(db, &id)))
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(found.map_err(engine_error)?).into_response())
}

pub async fn retry(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult {
    let by = super::actor(&who);
    let outcome = d
        .worker()
        .transact(d.worker().now(), move |ctx| manage::retry(ctx, &id, &by))
        .await
        .map_err(engine_error)?;
    Ok(axum::Json(json!({ "retried": outcome })).into_response())
}

pub async fn cancel(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult {
    let by = super::actor(&who);
    let cancelled = d
        .worker()
        .transact(d.worker().now(), move |ctx| manage::cancel(ctx, &id, &by))
        .await
        .map_err(engine_error)?;
    Ok(axum::Json(json!({ "cancelled": cancelled })).into_response())
}

/// `GET /api/automation/stream`: server-sent events, one per execution that ends
/// (`finished`) or step that fails (`step_failed`), each sent once its
/// transaction committed; a comment every 15 s keeps proxies from closing the
/// stream. A client too slow to keep up is told how many events it missed.
pub async fn stream(State(d): State<Arc<Daemon>>) -> axum::response::Response {
    use tokio::sync::broadcast::error::RecvError;
    let rx = d.worker().notes();
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        let frame = match tokio::time::timeout(std::time::Duration::from_secs(15), rx.recv()).await
        {
            Err(_) => ": keep-alive\n\n".to_string(),
            Ok(Ok(note)) => {
                let data = serde_json::to_string(&note).unwrap_or_else(|_| "{}".into());
                let kind = match &note {
                    crate::engine::run::Note::Finished { .. } => "finished",
                    crate::engine::run::Note::StepFailed { .. } => "step_failed",
                };
                format!("event: {kind}\ndata: {data}\n\n")
            }
            Ok(Err(RecvError::Lagged(n))) => {
                format!("event: lagged\ndata: {{\"missed\": {n}}}\n\n")
            }
            Ok(Err(RecvError::Closed)) => return None,
        };
        Some((
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from(frame)),
            rx,
        ))
    });
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/event-stream"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        axum::body::Body::from_stream(events),
    )
        .into_response()
}
