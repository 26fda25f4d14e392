//! `POST /f/{site}/{instance}`: a form post from a published page. Works without
//! JavaScript: the answer is a redirect to the form's success page, carrying a
//! signed contact token so that the thank-you page's tracking ties the visit to
//! the contact. A filled honeypot gets the same redirect and is dropped.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value as Json};

use super::{SiteServer, client, field_error, json_error};
use crate::crm::attribution;
use crate::engine::site_traffic::{self, FormOutcome, FormPost};

/// Fields per form, and characters per field, at most.
const MAX_FIELDS: usize = 50;
const MAX_VALUE_CHARS: usize = 5_000;

/// The page a post came from, and its UTM parameters, from the Referer.
fn origin(headers: &HeaderMap) -> (String, Map<String, Json>) {
    let referer = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let after_host = referer
        .split_once("://")
        .map_or(referer, |(_, rest)| rest)
        .split_once('/')
        .map_or("", |(_, path)| path);
    let (path, query) = after_host.split_once('?').unwrap_or((after_host, ""));
    let path = format!("/{}", path.split('#').next().unwrap_or(""));
    let mut utm = Map::new();
    for (k, v) in serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default() {
        if let Some(key) = k.strip_prefix("utm_")
            && attribution::UTM_KEYS.contains(&key)
        {
            utm.insert(key.into(), Json::String(v.chars().take(200).collect()));
        }
    }
    (path, utm)
}

/// A redirect target that stays on the site: a path, never `//host` or a URL.
///
/// Browsers drop tab, CR and LF inside a URL and read `\` as `/`, and some hosts
/// decode `%2F` before routing, so anything that could turn into `//host` on the
/// way is refused: only printable ASCII without spaces or backslashes, starting
/// with one `/`, whose percent-decoded form holds no control character, slash
/// pair or backslash at its start either.
fn safe_path(p: Option<&str>) -> String {
    const FALLBACK: &str = "/thank-you";
    let Some(p) = p else {
        return FALLBACK.into();
    };
    let printable = p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if !printable || p.len() > 300 || !p.starts_with('/') || p.starts_with("//") {
        return FALLBACK.into();
    }
    let decoded: Vec<u8> = percent_decode(p.as_bytes());
    let path_end = decoded
        .iter()
        .position(|b| *b == b'?' || *b == b'#')
        .unwrap_or(decoded.len());
    let path = &decoded[..path_end];
    if path.starts_with(b"//")
        || path
            .iter()
            .any(|b| b.is_ascii_control() || *b == b'\\' || *b == b' ')
        || p[..p.find(['?', '#']).unwrap_or(p.len())]
            .to_ascii_lowercase()
            .contains("%2f")
    {
        return FALLBACK.into();
    }
    p.to_string()
}

/// `%XX` escapes decoded; malformed ones kept as they are.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(text) = std::str::from_utf8(hex)
            && let Ok(b) = u8::from_str_radix(text, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// How the client wants answers: a browser's form post (`Accept: text/html`, no
/// JSON) gets redirects, everything else JSON.
fn wants_html(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("text/html") && !accept.contains("application/json")
}

/// The body's fields as pairs: urlencoded, or a JSON object of scalars.
fn fields_of(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, Box<Response>> {
    if let Some(enc) = headers.get(header::CONTENT_ENCODING)
        && !enc.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        return Err(Box::new(json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a form post is sent without Content-Encoding",
        )));
    }
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match kind.as_str() {
        "application/x-www-form-urlencoded" => serde_urlencoded::from_bytes(body).map_err(|e| {
            Box::new(json_error(
                StatusCode::BAD_REQUEST,
                format!("the body is not a form (application/x-www-form-urlencoded): {e}"),
            ))
        }),
        "application/json" => {
            let doc: Map<String, Json> = serde_json::from_slice(body).map_err(|e| {
                Box::new(json_error(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not a JSON object: {e}"),
                ))
            })?;
            doc.into_iter()
                .map(|(k, v)| match v {
                    Json::String(t) => Ok((k, t)),
                    Json::Number(n) => Ok((k, n.to_string())),
                    Json::Bool(b) => Ok((k, b.to_string())),
                    Json::Null => Ok((k, String::new())),
                    _ => Err(Box::new(field_error(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "field `{}` must be text, a number or a boolean",
                            k.chars().take(64).collect::<String>()
                        ),
                        &k.chars().take(64).collect::<String>(),
                    ))),
                })
                .collect()
        }
        _ => Err(Box::new(json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a form post is application/x-www-form-urlencoded or application/json",
        ))),
    }
}

pub async fn submit(
    State(s): State<Arc<SiteServer>>,
    Path((site, instance)): Path<(String, String)>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if site != s.site {
        return json_error(StatusCode::NOT_FOUND, format!("no site `{site}` here"));
    }
    let build = s.current();
    let Some(spec) = build.forms.get(&instance) else {
        return json_error(
            StatusCode::NOT_FOUND,
            format!("site `{site}` has no form `{instance}`"),
        );
    };
    if !super::gate::same_origin(&headers) {
        return json_error(
            StatusCode::FORBIDDEN,
            "the post comes from another site (Origin)",
        );
    }
    let client_ip = s.gate.client_ip(addr.ip(), &headers);
    if let Err(wait) = s.gate.admit(client_ip) {
        let mut r = json_error(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many posts from this address; try again in {wait} s"),
        );
        if let Ok(v) = header::HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let pairs = match fields_of(&headers, &body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let mut fields = Map::new();
    let (mut redirect, mut honeypot) = (None, false);
    for (k, v) in pairs {
        match k.as_str() {
            "_hp" => honeypot |= !v.trim().is_empty(),
            "_redirect" => redirect = Some(v),
            k if k.starts_with('_') || k.is_empty() || k.len() > 64 => {}
            _ => {
                if fields.len() >= MAX_FIELDS {
                    return json_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("a form has at most {MAX_FIELDS} fields"),
                    );
                }
                let v: String = v.trim().chars().take(MAX_VALUE_CHARS).collect();
                fields.insert(k, Json::String(v));
            }
        }
    }
    let target = safe_path(redirect.as_deref());
    let html = wants_html(&headers);
    if honeypot {
        tracing::info!(site, instance, "form post with a filled honeypot dropped");
        return success(html || !wants_json(&headers), &target);
    }
    let email = fields
        .get("email")
        .and_then(Json::as_str)
        .map(crate::store::ops::normalize_email)
        .filter(|e| !e.is_empty());
    let mut to_fix: Vec<String> = spec
        .required
        .iter()
        .filter(|f| {
            fields
                .get(*f)
                .and_then(Json::as_str)
                .is_none_or(str::is_empty)
        })
        .cloned()
        .collect();
    let bad_email = email
        .as_ref()
        .filter(|e| !crate::validate::values::is_email(e))
        .cloned();
    if bad_email.is_some() && !to_fix.iter().any(|f| f == "email") {
        to_fix.push("email".into());
    }
    if !to_fix.is_empty() {
        if html {
            // Back to the form, naming what to fix; the page keeps its anchor.
            let back = format!("{}?fix={}#{instance}", spec.page, to_fix.join(","));
            return Redirect::to(&back).into_response();
        }
        let message = match &bad_email {
            Some(e) if to_fix.len() == 1 => {
                format!("`{e}` is not an email address; go back and correct it")
            }
            _ => format!("fill in: {}", to_fix.join(", ")),
        };
        return field_error(StatusCode::UNPROCESSABLE_ENTITY, message, &to_fix.join(","));
    }
    let (page, utm) = origin(&headers);
    let (address, user_agent) = client(&s.gate, &addr, &headers);
    let post = FormPost {
        site,
        instance,
        page,
        fields,
        utm,
        email,
        address,
        user_agent,
    };
    let shown = (post.instance.clone(), post.page.clone(), post.email.clone());
    let worker = s.worker.clone();
    // The answer waits for the post to be durable, never for what its workflows
    // do next: their remote calls, emails and delays run on the worker.
    let result = worker
        .transact_retrying(worker.now(), move |ctx| {
            site_traffic::form_post(ctx, post.clone())
        })
        .await;
    match result {
        Ok(outcome) => {
            s.notice(form_line(&shown, &outcome));
            let to = match &outcome.token {
                Some(t) => format!(
                    "{target}{}ft={t}",
                    if target.contains('?') { '&' } else { '?' }
                ),
                None => target,
            };
            success(html || !wants_json(&headers), &to)
        }
        Err(e) => {
            tracing::error!(error = %e, "form post failed");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the form could not be saved; please try again",
            )
        }
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

/// A stored post's answer: the redirect to the thank-you page, or for a client
/// that asked for JSON, the same target in a JSON body.
fn success(redirect: bool, to: &str) -> Response {
    if redirect {
        Redirect::to(to).into_response()
    } else {
        axum::Json(serde_json::json!({"ok": true, "redirect": to})).into_response()
    }
}

/// One line on a form post: `form contact-form on / from ada@acme.test (new
/// contact) → contact-form-follow-up`.
fn form_line(
    (instance, page, email): &(String, String, Option<String>),
    outcome: &FormOutcome,
) -> String {
    let who = match (email, outcome.contact) {
        (Some(e), Some((_, true))) => format!(" from {e} (new contact)"),
        (Some(e), _) => format!(" from {e}"),
        (None, _) => String::new(),
    };
    let started = if outcome.started.is_empty() {
        " (no workflow started)".to_string()
    } else {
        format!(" → {}", outcome.started.join(", "))
    };
    format!("form {instance} on {page}{who}{started}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_the_site() {
        assert_eq!(safe_path(Some("/thanks")), "/thanks");
        assert_eq!(safe_path(Some("//evil.example")), "/thank-you");
        assert_eq!(safe_path(Some("https://evil.example")), "/thank-you");
        assert_eq!(safe_path(Some("/\\evil")), "/thank-you");
        assert_eq!(safe_path(None), "/thank-you");
    }

    #[test]
    fn redirects_refuse_what_browsers_turn_into_another_host() {
        // Browsers drop tab, CR and LF from URLs and read `\` as `/`; a redirect
        // that becomes `//evil.example` after that leaves the site with the token.
        for tricky in [
            "/\tevil.example",
            "/\t/evil.example",
            "/\r/evil.example",
            "/\n/evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%5C/evil.example",
            "/%5cevil.example",
            "/%09/evil.example",
            "/ /evil.example",
            "/\u{0}/evil.example",
            "thank-you",
            "",
        ] {
            assert_eq!(safe_path(Some(tricky)), "/thank-you", "{tricky:?}");
        }
        assert_eq!(
            safe_path(Some("/thanks?plan=pro#top")),
            "/thanks?plan=pro#top"
        );
        assert_eq!(safe_path(Some("/caf%C3%A9/merci")), "/caf%C3%A9/merci");
    }

    #[test]
    fn the_origin_page_and_utm_come_from_the_referer() {
        let mut h = HeaderMap::new();
        h.insert(
            header::REFERER,
            "http://127.0.0.1:4000/pricing?utm_source=ads&utm_campaign=x&other=1#plans"
                .parse()
                .expect("header"),
        );
        let (page, utm) = origin(&h);
        assert_eq!(page, "/pricing");
        assert_eq!(utm.len(), 2);
        assert_eq!(origin(&HeaderMap::new()).0, "/");
    }
}
