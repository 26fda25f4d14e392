//! Email engagement over HTTP: the open pixel (`GET /o/<token>`), the click
//! redirect (`GET /c/<token>?u=<url>`, a 302 only to the URL its signature
//! covers) and view in browser (`GET /e/<token>`, the message's HTML under a
//! content security policy that runs no script). Forged tokens find nothing
//! and record nothing.

use axum::extract::{FromRef, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::email::tracking::PIXEL_GIF;
use crate::engine::worker::Worker;

/// The routes, for any state that holds a worker.
pub fn routes<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    Worker: FromRef<S>,
{
    axum::Router::new()
        .route("/o/{token}", axum::routing::get(open::<S>))
        .route("/c/{token}", axum::routing::get(click::<S>))
        .route("/e/{token}", axum::routing::get(view::<S>))
}

fn unavailable(e: &crate::engine::EngineError) -> Response {
    tracing::error!(error = %e, "email link failed");
    super::json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the store did not answer; try again",
    )
}

async fn open<S>(State(worker): State<Worker>, Path(token): Path<String>) -> Response
where
    Worker: FromRef<S>,
{
    match worker.record_open(token).await {
        Ok(true) => (
            [
                (header::CONTENT_TYPE, "image/gif"),
                (header::CACHE_CONTROL, "no-store, private"),
            ],
            PIXEL_GIF,
        )
            .into_response(),
        Ok(false) => super::json_error(StatusCode::NOT_FOUND, "no email has this image"),
        Err(e) => unavailable(&e),
    }
}

#[derive(Debug, serde::Deserialize)]
struct Target {
    u: Option<String>,
}

async fn click<S>(
    State(worker): State<Worker>,
    Path(token): Path<String>,
    Query(target): Query<Target>,
) -> Response
where
    Worker: FromRef<S>,
{
    let Some(url) = target
        .u
        .filter(|u| u.len() <= crate::email::tracking::MAX_URL)
    else {
        return super::json_error(StatusCode::BAD_REQUEST, "the link has no target (`u`)");
    };
    let Ok(location) = header::HeaderValue::from_str(&url) else {
        return super::json_error(StatusCode::BAD_REQUEST, "the target is not a valid URL");
    };
    match worker.record_click(token, url).await {
        Ok(true) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, location),
                (
                    header::CACHE_CONTROL,
                    header::HeaderValue::from_static("no-store"),
                ),
                (
                    header::REFERRER_POLICY,
                    header::HeaderValue::from_static("no-referrer"),
                ),
            ],
        )
            .into_response(),
        Ok(false) => super::json_error(
            StatusCode::NOT_FOUND,
            "this link was not sent in any email (it was changed or is incomplete)",
        ),
        Err(e) => unavailable(&e),
    }
}

async fn view<S>(State(worker): State<Worker>, Path(token): Path<String>) -> Response
where
    Worker: FromRef<S>,
{
    match worker.view_email(token).await {
        Ok(Some(html)) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store, private"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
                ),
                (header::HeaderName::from_static("x-robots-tag"), "noindex"),
            ],
            html,
        )
            .into_response(),
        Ok(None) => super::json_error(StatusCode::NOT_FOUND, "no email has this link"),
        Err(e) => unavailable(&e),
    }
}
