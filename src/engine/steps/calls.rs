//! The step kinds whose effect leaves the transaction: an email queued in the
//! outbox, and HTTP, Slack, Discord and social posts handed to the worker with
//! their idempotency keys.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::{At, Outcome, Step, post, remote, timeout};
use crate::engine::expr::ExprError;
use crate::engine::remote::Request;
use crate::model::scalar::{Ident, Secret, TemplateText, Url};
use crate::model::step::{HttpMethod, Visibility};

pub(super) fn send_email(
    at: At<'_, '_>,
    template: &Ident,
    to: &Option<TemplateText>,
    subject: &Option<TemplateText>,
    data: &BTreeMap<String, Json>,
) -> Result<Outcome, Step> {
    let At {
        ctx,
        ex,
        fiber,
        scope,
        ..
    } = at;
    Ok(crate::engine::mail::send(
        ctx,
        ex,
        fiber,
        template.as_str(),
        to.as_ref(),
        subject.as_ref(),
        data,
        scope,
    )?)
}

pub(super) fn http(
    at: At<'_, '_>,
    method: &Option<HttpMethod>,
    url: &TemplateText,
    headers: &BTreeMap<String, TemplateText>,
    body: &Option<Json>,
    accept_status: &[u16],
) -> Result<Outcome, Step> {
    let At {
        ctx,
        ex,
        fiber,
        node,
        scope,
        program,
        ..
    } = at;
    let step = &program.nodes[node].step;
    let exprs = &program.exprs;
    Ok({
        let body = body
            .as_ref()
            .map(|b| exprs.render_request_tree(b, scope))
            .transpose()?;
        let method = method.unwrap_or(if body.is_some() {
            HttpMethod::Post
        } else {
            HttpMethod::Get
        });
        let headers = headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), exprs.render_request(v.as_str(), scope)?)))
            .collect::<Result<_, ExprError>>()?;
        let req = Request {
            kind: "http".into(),
            method: serde_json::to_value(method)
                .ok()
                .and_then(|m| m.as_str().map(String::from))
                .unwrap_or_else(|| "GET".into()),
            url: exprs.render_request(url.as_str(), scope)?,
            headers,
            body,
            timeout_ms: timeout(ctx, step),
            accept: accept_status.to_vec(),
        };
        remote(ctx, ex, fiber, req)?
    })
}

pub(super) fn slack(
    at: At<'_, '_>,
    webhook_url: &Secret,
    text: &TemplateText,
) -> Result<Outcome, Step> {
    chat_webhook(at, "slack", "text", webhook_url, text)
}

pub(super) fn discord(
    at: At<'_, '_>,
    webhook_url: &Secret,
    content: &TemplateText,
) -> Result<Outcome, Step> {
    chat_webhook(at, "discord", "content", webhook_url, content)
}

/// Slack and Discord webhooks: a POST of one rendered message under `field`.
fn chat_webhook(
    at: At<'_, '_>,
    kind: &str,
    field: &str,
    webhook_url: &Secret,
    message: &TemplateText,
) -> Result<Outcome, Step> {
    let At {
        ctx,
        ex,
        fiber,
        node,
        scope,
        program,
    } = at;
    let step = &program.nodes[node].step;
    let mut body = serde_json::Map::new();
    body.insert(
        field.to_string(),
        Json::String(program.exprs.render_request(message.as_str(), scope)?),
    );
    let req = post(
        kind,
        webhook_url.as_str(),
        Json::Object(body),
        timeout(ctx, step),
    );
    remote(ctx, ex, fiber, req)
}

pub(super) fn social_post(
    at: At<'_, '_>,
    instance_url: &Url,
    token: &Secret,
    status: &TemplateText,
    visibility: &Option<Visibility>,
) -> Result<Outcome, Step> {
    let At {
        ctx,
        ex,
        fiber,
        node,
        scope,
        program,
        ..
    } = at;
    let step = &program.nodes[node].step;
    let exprs = &program.exprs;
    Ok({
        let visibility = visibility
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or(json!("public"));
        let body = json!({"status": exprs.render_request(status.as_str(), scope)?, "visibility": visibility});
        let url = format!(
            "{}/api/v1/statuses",
            instance_url.as_str().trim_end_matches('/')
        );
        let mut req = post("social_post", &url, body, timeout(ctx, step));
        req.headers
            .insert("Authorization".into(), format!("Bearer {}", token.as_str()));
        remote(ctx, ex, fiber, req)?
    })
}
