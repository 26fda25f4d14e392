//! `POST /t`: a beacon of the tracking script. Recorded in the analytics tables
//! under the day's visitor hash; a valid contact token (from a tracked email link
//! or a form's redirect) ties the visitor to the contact, and a known visitor's
//! events go through the engine's ingestion as `page_event`s (the timeline,
//! scoring, touches and page-event workflows).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{SiteServer, client, json_error};
use crate::analytics::Beacon;
use crate::engine::site_traffic;

pub async fn beacon(
    State(s): State<Arc<SiteServer>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(enc) = headers.get(axum::http::header::CONTENT_ENCODING)
        && !enc.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a beacon is sent without Content-Encoding",
        );
    }
    let b = match Beacon::parse(&body) {
        Ok(b) => b,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if b.site != s.site {
        return json_error(StatusCode::NOT_FOUND, format!("no site `{}` here", b.site));
    }
    let (address, ua) = client(&s.gate, &addr, &headers);
    let worker = s.worker.clone();
    let result = worker
        .transact(worker.now(), move |ctx| {
            site_traffic::beacon(ctx, &b, &address, &ua)
        })
        .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "tracking beacon failed");
            json_error(StatusCode::SERVICE_UNAVAILABLE, "not recorded")
        }
    }
}
