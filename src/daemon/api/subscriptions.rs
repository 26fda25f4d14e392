//! `/api/hooks/subscriptions`: outbound webhook subscriptions, the REST hooks
//! pattern (subscribe with an event and a target URL, unsubscribe with
//! `DELETE`). A target is checked against the egress policy when it is
//! subscribed (its name resolved, each address checked) and again at every
//! delivery.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, ApiResult, json_body};
use crate::access::Principal;
use crate::daemon::Daemon;
use crate::subscriptions::{self, SubscriptionError};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeBody {
    /// A trigger type: `contact_created`, `tag_added`, `form_submission`,
    /// `deal_stage_changed`, `email_opened`, ….
    event: String,
    /// Where each event is posted (http or https; a private address only if
    /// funnel.yaml's `network.allow` names it).
    target_url: String,
}

/// Refuses a target the worker would refuse to deliver to, before it is stored.
async fn check_target(d: &Daemon, text: &str) -> Result<(), ApiError> {
    let bad = |why: String| {
        ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "target_url",
            format!(
                "`{}` cannot receive deliveries: {why}",
                text.chars().take(200).collect::<String>()
            ),
        )
    };
    if text.len() > 2_000 {
        return Err(bad("longer than 2,000 bytes".into()));
    }
    let url = reqwest::Url::parse(text).map_err(|e| bad(format!("not a URL ({e})")))?;
    let egress = d.worker().egress();
    egress.check_url(&url).map_err(bad)?;
    if let Some(url::Host::Domain(host)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| bad(format!("`{host}` does not resolve ({e})")))?
            .collect();
        egress.filter(host, addrs).map_err(bad)?;
    }
    Ok(())
}

/// `POST /api/hooks/subscriptions`: 201 with the id and the signing secret
/// (shown once).
pub async fn subscribe(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let b: SubscribeBody = json_body(&headers, &body)?;
    if !crate::engine::ingest::is_known_kind(&b.event) {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "event",
            SubscriptionError::UnknownEvent(b.event.chars().take(100).collect()).to_string(),
        ));
    }
    check_target(&d, &b.target_url).await?;
    let by = super::actor(&who);
    let (event, target) = (b.event.clone(), b.target_url.clone());
    let made = d
        .worker()
        .store()
        .write(move |db| {
            let now = crate::store::now_ms();
            let made = subscriptions::subscribe(db, &event, &target, &by, now);
            if let Ok((id, _)) = &made {
                crate::audit::record(
                    db,
                    &by,
                    "subscribe_hook",
                    "hook_subscription",
                    Some(id),
                    &json!({"event": event, "target_url": target}),
                    now,
                )?;
            }
            Ok(made)
        })
        .await
        .map_err(ApiError::internal)?;
    match made {
        Ok((id, secret)) => Ok((
            StatusCode::CREATED,
            axum::Json(json!({
                "id": id,
                "event": b.event,
                "target_url": b.target_url,
                "secret": secret,
            })),
        )
            .into_response()),
        Err(SubscriptionError::Store(e)) => Err(ApiError::internal(e)),
        Err(e @ SubscriptionError::TooMany) => {
            Err(ApiError::new(StatusCode::CONFLICT, e.to_string()))
        }
        Err(e) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
        )),
    }
}

/// `GET /api/hooks/subscriptions`: every subscription with its deliveries'
/// state (never a secret).
pub async fn list(State(d): State<Arc<Daemon>>) -> ApiResult {
    let all = d
        .worker()
        .store()
        .read_async(subscriptions::list)
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(json!({ "subscriptions": all })).into_response())
}

/// `DELETE /api/hooks/subscriptions/{id}`: no more deliveries, waiting ones
/// dropped; `unsubscribed` says whether it was there.
pub async fn unsubscribe(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult {
    let by = super::actor(&who);
    let key = id.clone();
    let gone = d
        .worker()
        .store()
        .write(move |db| {
            let now = crate::store::now_ms();
            let gone = subscriptions::unsubscribe(db, &key, now)?;
            if gone {
                crate::audit::record(
                    db,
                    &by,
                    "unsubscribe_hook",
                    "hook_subscription",
                    Some(&key),
                    &json!({}),
                    now,
                )?;
            }
            Ok(gone)
        })
        .await
        .map_err(ApiError::internal)?;
    // Idempotent, as a DELETE is: gone already is `"unsubscribed": false`.
    Ok(axum::Json(json!({ "id": id, "unsubscribed": gone })).into_response())
}
