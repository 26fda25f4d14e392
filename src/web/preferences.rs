//! The email preference page (`/p/<token>`, linked from emails as
//! `links.preferences`): a `GET` shows marketing email on or off and the lists
//! the recipient is on or may join; a `POST` of that form saves it, each change
//! with its consent. The token is the email's signed link token; a forged one
//! finds no one. A `GET` changes nothing. And the double opt-in link
//! (`/confirm/<token>`), which works the same way.

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::unsubscribe::{html_page, masked};
use crate::email::escape_html;
use crate::engine::worker::Worker;

/// The routes, for any state that holds a worker.
pub fn routes<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    Worker: FromRef<S>,
{
    axum::Router::new().route("/p/{token}", axum::routing::get(page::<S>).post(save::<S>))
}

fn not_found() -> Response {
    html_page(
        StatusCode::NOT_FOUND,
        "This link does not work",
        "<p>The preferences link is incomplete or was changed. Use the link in the email as it arrived.</p>",
    )
}

fn unavailable(e: &crate::engine::EngineError) -> Response {
    tracing::error!(error = %e, "preference page failed");
    html_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "<p>Something went wrong on our side. Nothing was changed; try the link again in a minute.</p>",
    )
}

async fn page<S>(State(worker): State<Worker>, Path(token): Path<String>) -> Response
where
    Worker: FromRef<S>,
{
    let name = worker.engine().settings.workspace_name.clone();
    let prefs = match worker.preferences(token).await {
        Ok(Some(p)) => p,
        Ok(None) => return not_found(),
        Err(e) => return unavailable(&e),
    };
    let who = escape_html(&masked(&prefs.address));
    if let Some(reason) = &prefs.blocked {
        return html_page(
            StatusCode::OK,
            "Email preferences",
            &format!(
                "<p>{who} gets no email from {} ({}). Reply to an email from us if this is a mistake.</p>",
                escape_html(&name),
                escape_html(reason)
            ),
        );
    }
    let mut lists = String::new();
    for l in &prefs.lists {
        lists.push_str(&format!(
            "<p><label><input type=\"checkbox\" name=\"list\" value=\"{}\"{}> <strong>{}</strong></label>{}</p>",
            escape_html(&l.id),
            if l.member { " checked" } else { "" },
            escape_html(&l.name),
            l.description
                .as_deref()
                .map(|d| format!("<br><small>{}</small>", escape_html(d)))
                .unwrap_or_default(),
        ));
    }
    html_page(
        StatusCode::OK,
        "Email preferences",
        &format!(
            "<p>What {} sends to <strong>{who}</strong>:</p><form method=\"post\">\
             <p><label><input type=\"checkbox\" name=\"marketing\" value=\"yes\"{}> Marketing email (news, tips, offers)</label></p>\
             {lists}<p><button type=\"submit\">Save</button></p></form>\
             <p><small>Emails you ask for, such as receipts, arrive whatever you choose here.</small></p>",
            escape_html(&name),
            if prefs.unsubscribed { "" } else { " checked" },
        ),
    )
}

async fn save<S>(
    State(worker): State<Worker>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response
where
    Worker: FromRef<S>,
{
    if !super::is_form(&headers, false) {
        return super::json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the preference form posts application/x-www-form-urlencoded",
        );
    }
    let mut marketing = false;
    let mut chosen = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "marketing" => marketing = v == "yes",
            "list" => chosen.push(v.into_owned()),
            _ => {}
        }
    }
    match worker.save_preferences(token, marketing, chosen).await {
        Ok(Some(saved)) => {
            let said = if let Some(reason) = &saved.blocked {
                format!(
                    "<p>Nothing was changed: this address gets no email ({}).</p>",
                    escape_html(reason)
                )
            } else if !marketing {
                "<p>You get no more marketing email from us. Emails you ask for, such as receipts, still arrive.</p>".to_string()
            } else {
                "<p>Your choices are saved.</p>".to_string()
            };
            html_page(StatusCode::OK, "Preferences saved", &said)
        }
        Ok(None) => super::json_error(StatusCode::NOT_FOUND, "no email has this preferences link"),
        Err(e) => unavailable(&e),
    }
}

/// The double opt-in link (`/confirm/<token>`): a `GET` shows one button (mail
/// scanners fetch links, and a scanner must not subscribe anyone); its `POST`
/// confirms.
pub fn confirm_routes<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    Worker: FromRef<S>,
{
    axum::Router::new().route(
        "/confirm/{token}",
        axum::routing::get(confirm_page::<S>).post(confirm::<S>),
    )
}

fn confirm_not_found() -> Response {
    html_page(
        StatusCode::NOT_FOUND,
        "This link does not work",
        "<p>The confirmation link is incomplete or was changed. Use the link in the email as it arrived, or sign up again.</p>",
    )
}

async fn confirm_page<S>(State(worker): State<Worker>, Path(token): Path<String>) -> Response
where
    Worker: FromRef<S>,
{
    match worker.confirmation_list(token).await {
        Ok(Some(list)) => html_page(
            StatusCode::OK,
            "Confirm your subscription",
            &format!(
                "<p>Join <strong>{}</strong>?</p><form method=\"post\"><button type=\"submit\">Yes, subscribe me</button></form>",
                escape_html(&list)
            ),
        ),
        Ok(None) => confirm_not_found(),
        Err(e) => unavailable(&e),
    }
}

async fn confirm<S>(State(worker): State<Worker>, Path(token): Path<String>) -> Response
where
    Worker: FromRef<S>,
{
    use crate::engine::doi::Confirmed;
    let name = worker.engine().settings.workspace_name.clone();
    match worker.confirm_list(token).await {
        Ok(Some(Confirmed::Joined { list, .. } | Confirmed::Already { list })) => {
            let shown = worker
                .engine()
                .lists
                .get(&list)
                .map_or(list.clone(), |l| l.name.clone());
            html_page(
                StatusCode::OK,
                "You are subscribed",
                &format!(
                    "<p>Thank you: you are on <strong>{}</strong> from {}.</p>",
                    escape_html(&shown),
                    escape_html(&name)
                ),
            )
        }
        Ok(Some(Confirmed::Expired)) => html_page(
            StatusCode::GONE,
            "This link has expired",
            "<p>Confirmation links work for seven days, and only the newest one. Sign up again to get a new link.</p>",
        ),
        Ok(None) => confirm_not_found(),
        Err(e) => unavailable(&e),
    }
}
