//! `POST /email/events/{provider}`: the bounce and complaint webhooks of SES
//! (through SNS), SendGrid, Mailgun and Postmark. Each call is verified as its
//! provider signs it (a 401 otherwise, nothing recorded), then its reports are
//! applied at once; the answer counts what they did. A provider funnel.yaml
//! does not name is a 404.

use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::email::providers::{self, ProviderError};
use crate::engine::worker::Worker;

/// The largest report batch accepted (SendGrid batches its events).
const MAX_EVENTS_BODY: usize = 1024 * 1024;

/// The route, for any state that holds a worker.
pub fn routes<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    Worker: FromRef<S>,
{
    axum::Router::new()
        .route(
            "/email/events/{provider}",
            axum::routing::post(receive::<S>),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_EVENTS_BODY))
}

async fn receive<S>(
    State(worker): State<Worker>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response
where
    Worker: FromRef<S>,
{
    if !providers::PROVIDERS.contains(&provider.as_str()) {
        return super::json_error(
            StatusCode::NOT_FOUND,
            format!(
                "no email provider `{provider}`; one of {}",
                providers::PROVIDERS.join(", ")
            ),
        );
    }
    let header = move |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let inbound = {
        let settings = &worker.engine().settings;
        providers::read(
            &provider,
            settings.email_events.as_ref(),
            &settings.root,
            &|name| worker.secret(name),
            &header,
            &body,
        )
    };
    let inbound = match inbound {
        Ok(i) => i,
        Err(e) => {
            let status = match &e {
                ProviderError::NotConfigured(_) => StatusCode::NOT_FOUND,
                ProviderError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                ProviderError::Malformed(_) => StatusCode::BAD_REQUEST,
                ProviderError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            if status.is_server_error() {
                tracing::error!(provider, error = %e, "email events refused");
            } else {
                tracing::warn!(provider, error = %e, "email events refused");
            }
            return super::json_error(status, e.to_string());
        }
    };
    if let Some(url) = &inbound.confirm {
        tracing::info!(
            provider,
            url,
            "SNS asks to confirm the subscription: open this URL once"
        );
    }
    let ignored = inbound.ignored;
    let confirm = inbound.confirm.clone();
    match worker.record_reports(inbound.reports).await {
        Ok(t) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "bounces": t.bounces,
                "complaints": t.complaints,
                "unsubscribes": t.unsubscribes,
                "known": t.known,
                "unmatched": t.unmatched,
                "ignored": ignored,
                "confirm_subscription": confirm,
            })),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(provider, error = %e, "email events not recorded");
            // A 5xx makes the provider deliver the batch again later.
            super::json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the events could not be stored; send them again",
            )
        }
    }
}
