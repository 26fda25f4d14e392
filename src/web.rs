//! The HTTP side of sites: a built site's files (compressed, with cache headers
//! as a production host sends them), form posts (`POST /f/{site}/{instance}`) and
//! tracking beacons (`POST /t`) fed to the engine's ingestion and the analytics
//! tables, and the preview's live reload. The daemon mounts these routes for
//! each site it serves (`funnel up`, `funnel daemon`, and `funnel preview`, the
//! daemon for one site).

pub mod email_events;
pub mod files;
pub mod forms;
pub mod gate;
pub mod preferences;
pub mod track;
pub mod tracking;
pub mod unsubscribe;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::engine::worker::Worker;
use crate::publish::Build;

/// What the routes share.
#[derive(Debug)]
pub struct SiteServer {
    pub site: String,
    pub build: RwLock<Arc<Build>>,
    pub worker: Worker,
    /// Bumped at every rebuild; the live-reload script waits for a change.
    pub version: tokio::sync::watch::Sender<u64>,
    /// Whether pages get the live-reload script's endpoint.
    pub live_reload: bool,
    /// Where one-line notices go (a form post arrived), for a shell that shows
    /// them; `None` keeps them to the log.
    pub notices: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    /// Client addresses, rate limits and origins, shared by the process's sites.
    pub gate: Arc<gate::Gate>,
}

impl SiteServer {
    pub fn current(&self) -> Arc<Build> {
        self.build
            .read()
            .map(|b| b.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Passes a one-line notice on to whoever shows them.
    pub fn notice(&self, line: String) {
        // The line names the person (their address): shown to whoever runs the
        // preview, kept out of operators' logs below debug.
        tracing::debug!(site = %self.site, "{line}");
        if let Some(tx) = &self.notices {
            let _ = tx.send(line);
        }
    }

    /// Swaps in a new build and tells waiting pages to reload.
    pub fn replace(&self, build: Build) {
        match self.build.write() {
            Ok(mut b) => *b = Arc::new(build),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(build),
        }
        self.version.send_modify(|v| *v += 1);
    }
}

/// The largest request body accepted (a form post).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: Arc<SiteServer>) -> Router {
    Router::new()
        .route("/f/{site}/{instance}", post(forms::submit))
        .route("/t", post(track::beacon))
        .route("/__funnel/reload.js", get(reload_script))
        .route("/__funnel/wait", get(wait_for_change))
        .merge(unsubscribe::routes())
        .merge(tracking::routes())
        .merge(email_events::routes())
        .merge(preferences::routes())
        .merge(preferences::confirm_routes())
        .fallback(get(files::serve))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state)
}

/// Whether a request's body is an HTML form post (urlencoded, or multipart
/// when `multipart` allows it), by its `Content-Type`.
pub fn is_form(headers: &axum::http::HeaderMap, multipart: bool) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.starts_with("application/x-www-form-urlencoded")
                || (multipart && t.starts_with("multipart/form-data"))
        })
}

/// A 4xx or 5xx answer with a JSON body: `{"error": {"code", "message"}}`, the
/// code named after the status (`not_found`, `unprocessable_entity`, …).
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    error_body(
        status,
        json!({"code": code_of(status), "message": message.into()}),
    )
}

/// The same, naming the request's field at fault.
pub fn field_error(status: StatusCode, message: impl Into<String>, field: &str) -> Response {
    error_body(
        status,
        json!({"code": code_of(status), "message": message.into(), "field": field}),
    )
}

fn error_body(status: StatusCode, error: serde_json::Value) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({ "error": error })),
    )
        .into_response()
}

/// `Not Found` → `not_found`.
fn code_of(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
        .replace(['-', ' '], "_")
        .replace('\'', "")
}

/// The client's address and browser, for the daily visitor hash: the address a
/// trusted proxy forwarded, else the socket's.
pub fn client(gate: &gate::Gate, addr: &SocketAddr, headers: &HeaderMap) -> (String, String) {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    (gate.client_ip(addr.ip(), headers).to_string(), ua)
}

async fn reload_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        "(function(){var v=null;function w(){fetch('/__funnel/wait'+(v===null?'':'?v='+v)).then(function(r){return r.text()}).then(function(n){if(v!==null&&n!==v){location.reload();return}v=n;w()}).catch(function(){setTimeout(w,1000)})}w()})();\n",
    )
        .into_response()
}

#[derive(Debug, serde::Deserialize)]
struct Wait {
    v: Option<u64>,
}

/// Answers with the build version once it differs from `v` (or after 25 s).
async fn wait_for_change(
    axum::extract::State(s): axum::extract::State<Arc<SiteServer>>,
    axum::extract::Query(q): axum::extract::Query<Wait>,
) -> Response {
    let mut rx = s.version.subscribe();
    let current = *rx.borrow();
    if let Some(v) = q.v
        && v == current
    {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(25), rx.changed()).await;
    }
    let now = *rx.borrow();
    ([(header::CACHE_CONTROL, "no-store")], now.to_string()).into_response()
}
