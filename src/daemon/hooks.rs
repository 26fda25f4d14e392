//! Inbound webhooks: `POST /hooks/{path}` starts the workflows whose `webhook`
//! trigger names that path. A trigger with a `secret` takes only signed posts:
//! `Funnel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, or
//! Stripe's `Stripe-Signature`, which is the same scheme, within 300 s of the
//! daemon's clock, each signature once (a replay cache remembers them for as
//! long as they are fresh). The answer (202) comes once the event and the
//! executions it started are stored.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value as Json, json};
use sha2::Sha256;

use super::Daemon;
use crate::engine::ingest::Event;
use crate::model::workflow::TriggerKind;
use crate::web::json_error;

/// How far a signature's time may be from the daemon's clock, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// Signatures seen in the last [`TOLERANCE_SECS`], at most this many.
const REPLAY_CAPACITY: usize = 100_000;

/// Why a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Missing,
    Malformed,
    Stale,
    Wrong,
    Replayed,
}

impl Refused {
    fn answer(&self) -> Response {
        let (status, message) = match self {
            Refused::Missing => (
                StatusCode::UNAUTHORIZED,
                "this hook takes signed posts (Funnel-Signature: t=…,v1=…)",
            ),
            Refused::Malformed => (
                StatusCode::UNAUTHORIZED,
                "the signature header is not t=<unix seconds>,v1=<hex>",
            ),
            Refused::Stale => (
                StatusCode::UNAUTHORIZED,
                "the signature's time is more than 300 s from ours",
            ),
            Refused::Wrong => (StatusCode::UNAUTHORIZED, "the signature does not match"),
            Refused::Replayed => (StatusCode::CONFLICT, "this signed post was taken already"),
        };
        json_error(status, message)
    }
}

/// The signatures seen recently, so that a captured post cannot be sent again.
#[derive(Debug, Default)]
pub struct ReplayCache {
    seen: Mutex<Seen>,
}

/// Signatures by value, and in the order they expire.
#[derive(Debug, Default)]
struct Seen {
    by_signature: HashMap<String, i64>,
    order: VecDeque<(i64, String)>,
}

impl ReplayCache {
    /// Records `sig` (made at `t`); false when it was seen already.
    fn first_time(&self, sig: &str, t: i64, now: i64) -> bool {
        let Ok(mut guard) = self.seen.lock() else {
            return false;
        };
        let Seen {
            by_signature: map,
            order,
        } = &mut *guard;
        while let Some((at, _)) = order.front()
            && (*at < now - TOLERANCE_SECS || order.len() >= REPLAY_CAPACITY)
        {
            if let Some((_, s)) = order.pop_front() {
                map.remove(&s);
            }
        }
        if map.contains_key(sig) {
            return false;
        }
        map.insert(sig.to_string(), t);
        order.push_back((t.max(now), sig.to_string()));
        true
    }
}

/// Checks a `t=…,v1=…` header over `body` with `secret` at `now` (Unix seconds).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secret: &[u8],
    now: i64,
    seen: &ReplayCache,
) -> Result<(), Refused> {
    let header = header.ok_or(Refused::Missing)?;
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| Refused::Malformed)?),
            Some(("v1", v)) => candidates.push(hex::decode(v).map_err(|_| Refused::Malformed)?),
            Some(_) => {}
            None => return Err(Refused::Malformed),
        }
    }
    let t = t.ok_or(Refused::Malformed)?;
    if candidates.is_empty() {
        return Err(Refused::Malformed);
    }
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(Refused::Stale);
    }
    let matching = candidates.iter().find(|sig| {
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
            return false;
        };
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(sig).is_ok()
    });
    let Some(sig) = matching else {
        return Err(Refused::Wrong);
    };
    if !seen.first_time(&hex::encode(sig), t, now) {
        return Err(Refused::Replayed);
    }
    Ok(())
}

/// The secret a `${NAME}` reference names, from the environment.
fn secret_value(reference: &str) -> Option<String> {
    let name = reference.strip_prefix("${")?.strip_suffix('}')?;
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub async fn receive(
    State(d): State<Arc<Daemon>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = path.trim_matches('/').to_string();
    let engine = d.worker().engine();
    let secrets: Vec<Option<String>> = engine
        .workflows()
        .filter_map(|(_, p)| match &p.workflow.trigger.kind {
            TriggerKind::Webhook {
                path: wanted,
                secret,
                ..
            } if wanted.trim_matches('/') == path => {
                Some(secret.as_ref().map(|s| s.as_str().to_string()))
            }
            _ => None,
        })
        .collect();
    if secrets.is_empty() {
        return json_error(
            StatusCode::NOT_FOUND,
            format!(
                "no workflow takes webhooks at `{}`",
                path.chars().take(100).collect::<String>()
            ),
        );
    }
    if let Some(enc) = headers.get(header::CONTENT_ENCODING)
        && !enc.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a webhook is sent without Content-Encoding",
        );
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json_body {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a webhook's body is application/json",
        );
    }
    // Every workflow on the path that names a secret must have it set, and the
    // post must be signed with it.
    let now_secs = d.worker().now() / 1000;
    for reference in secrets.iter().flatten() {
        let Some(secret) = secret_value(reference) else {
            tracing::error!(secret = %reference, path, "a webhook's secret is not set; posts refused");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "this hook's secret is not configured on the server",
            );
        };
        let signature = headers
            .get("funnel-signature")
            .or_else(|| headers.get("stripe-signature"))
            .and_then(|v| v.to_str().ok());
        if let Err(why) = verify(signature, &body, secret.as_bytes(), now_secs, &d.replays) {
            return why.answer();
        }
    }
    let payload: Json = match serde_json::from_slice(&body) {
        Ok(v @ Json::Object(_)) => v,
        Ok(_) => return json_error(StatusCode::BAD_REQUEST, "a webhook's body is a JSON object"),
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {e}"),
            );
        }
    };
    let event = Event {
        kind: "webhook".into(),
        data: json!({"path": path, "payload": payload}),
        ..Event::default()
    };
    match d.worker().ingest(event).await {
        Ok(done) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({"accepted": true, "started": done.started.len()})),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, path, "webhook not stored");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the webhook could not be stored; send it again",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &str) -> String {
        let mac = crate::analytics::token::hmac_sha256(
            secret.as_bytes(),
            format!("{t}.{body}").as_bytes(),
        );
        format!("t={t},v1={}", hex::encode(mac))
    }

    #[test]
    fn signatures_are_checked_for_key_time_form_and_replay() {
        let seen = ReplayCache::default();
        let body = r#"{"a":1}"#;
        let now = 1_800_000_000;
        let good = sign("s3cret", now - 10, body);
        assert_eq!(
            verify(Some(&good), body.as_bytes(), b"s3cret", now, &seen),
            Ok(())
        );
        assert_eq!(
            verify(Some(&good), body.as_bytes(), b"s3cret", now, &seen),
            Err(Refused::Replayed)
        );
        let other = sign("other", now, body);
        assert_eq!(
            verify(Some(&other), body.as_bytes(), b"s3cret", now, &seen),
            Err(Refused::Wrong)
        );
        let tampered = sign("s3cret", now, body);
        assert_eq!(
            verify(Some(&tampered), br#"{"a":2}"#, b"s3cret", now, &seen),
            Err(Refused::Wrong)
        );
        let old = sign("s3cret", now - 301, body);
        assert_eq!(
            verify(Some(&old), body.as_bytes(), b"s3cret", now, &seen),
            Err(Refused::Stale)
        );
        for bad in ["", "t=x,v1=00", "v1=00", "t=5", "t=5,v1=zz", "garbage"] {
            assert_eq!(
                verify(Some(bad), body.as_bytes(), b"s3cret", now, &seen),
                Err(Refused::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            verify(None, body.as_bytes(), b"s3cret", now, &seen),
            Err(Refused::Missing)
        );
        // Stripe sends a v0 and several v1 values; one matching v1 is enough.
        let stripe = format!(
            "t={},v0=abc,v1={},{}",
            now,
            "00".repeat(32),
            sign("s3cret", now, "{}").split(',').nth(1).unwrap_or("")
        );
        assert_eq!(verify(Some(&stripe), b"{}", b"s3cret", now, &seen), Ok(()));
    }
}
