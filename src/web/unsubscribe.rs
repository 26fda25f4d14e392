//! Unsubscribing from the link in an email (`/u/<token>`): a `GET` shows a page
//! with one button and changes nothing (link scanners and previews fetch links);
//! a `POST` with `List-Unsubscribe=One-Click` (RFC 8058: what mail clients send
//! from their own unsubscribe button, and what the page's button sends)
//! unsubscribes at once. The token is signed; a forged one finds no one.

use axum::extract::{FromRef, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::email::escape_html;
use crate::engine::worker::Worker;

/// The field a one-click unsubscribe posts (RFC 8058 section 3.1).
const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

impl FromRef<std::sync::Arc<super::SiteServer>> for Worker {
    fn from_ref(s: &std::sync::Arc<super::SiteServer>) -> Worker {
        s.worker.clone()
    }
}

/// The routes, for any state that holds a worker.
pub fn routes<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    Worker: FromRef<S>,
{
    axum::Router::new().route(
        "/u/{token}",
        axum::routing::get(page::<S>).post(confirm::<S>),
    )
}

/// `a***@example.org`: enough for the recipient to recognize, not a full address
/// shown to whoever holds the link.
pub(super) fn masked(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

pub(super) fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"robots\" content=\"noindex\"><title>{title}</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#1f2933}}\
             button{{font:inherit;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #0f4c81;background:#0f4c81;color:#fff;cursor:pointer}}</style>\
             </head><body><main><h1>{title}</h1>{body}</main></body></html>"
        ),
    )
        .into_response()
}

fn not_found() -> Response {
    html_page(
        StatusCode::NOT_FOUND,
        "This link does not work",
        "<p>The unsubscribe link is incomplete or was changed. Use the link in the email as it arrived, or reply to the email and ask to be removed.</p>",
    )
}

async fn page<S>(State(worker): State<Worker>, Path(token): Path<String>) -> Response
where
    Worker: FromRef<S>,
{
    let name = worker.engine().settings.workspace_name.clone();
    match worker.link_recipient(token).await {
        Ok(Some(address)) => html_page(
            StatusCode::OK,
            "Unsubscribe",
            &format!(
                "<p>Stop marketing emails from {} to <strong>{}</strong>?</p>\
                 <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
                 <button type=\"submit\">Unsubscribe</button></form>",
                escape_html(&name),
                escape_html(&masked(&address)),
            ),
        ),
        Ok(None) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe page failed");
            html_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "<p>Something went wrong on our side. Nothing was changed; try the link again in a minute.</p>",
            )
        }
    }
}

async fn confirm<S>(
    State(worker): State<Worker>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response
where
    Worker: FromRef<S>,
{
    let form = super::is_form(&headers, true);
    // RFC 8058 asks for exactly this field; a multipart body carries it too.
    let one_click = form
        && std::str::from_utf8(&body)
            .is_ok_and(|b| b.split('&').any(|p| p.trim() == ONE_CLICK) || b.contains("One-Click"));
    if !one_click {
        return super::json_error(
            StatusCode::BAD_REQUEST,
            format!("an unsubscribe is a form POST of `{ONE_CLICK}` (RFC 8058)"),
        );
    }
    let name = worker.engine().settings.workspace_name.clone();
    match worker.unsubscribe(token, "one-click unsubscribe").await {
        Ok(Some(u)) => html_page(
            StatusCode::OK,
            "You are unsubscribed",
            &format!(
                "<p><strong>{}</strong> gets no more marketing emails from {}. Emails you ask for, such as receipts, still arrive.</p>",
                escape_html(&masked(&u.address)),
                escape_html(&name),
            ),
        ),
        Ok(None) => super::json_error(StatusCode::NOT_FOUND, "no email has this unsubscribe link"),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe failed");
            super::json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the unsubscribe was not stored; send it again",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_masked_on_the_page() {
        assert_eq!(super::masked("jane@acme.example"), "j***@acme.example");
        assert_eq!(super::masked("nobody"), "***");
    }
}
