//! The `send_email` step: render the template for the execution's contact and queue
//! the message in the outbox under a key derived from execution and step, in the
//! step's own transaction. Delivery (the dev outbox folder now, SMTP later) reads
//! the outbox after the commit.

use std::collections::BTreeMap;

use minijinja::Value;
use serde_json::{Value as Json, json};

use super::EngineError;
use super::expr::context;
use super::run::{Ctx, Exec};
use super::steps::Outcome;
use crate::analytics::token;
use crate::email::{self, outbox};
use crate::model::scalar::TemplateText;

/// Statuses that stop marketing email (transactional email still goes).
const NO_MARKETING: &[&str] = &["unsubscribed", "bounced", "complained", "erased"];

#[allow(clippy::too_many_arguments)]
pub fn send(
    ctx: &mut Ctx<'_>,
    ex: &mut Exec,
    fiber: u32,
    template_id: &str,
    to: Option<&TemplateText>,
    subject: Option<&TemplateText>,
    data: &BTreeMap<String, Json>,
    scope: &Value,
) -> Result<Outcome, EngineError> {
    let Some(template) = ctx.engine.emails.get(template_id) else {
        return Ok(Outcome::Fail(format!("no email template `{template_id}`")));
    };
    let program = ex.program.clone();
    let exprs = &program.exprs;
    let contact = ex.contact_view.clone().unwrap_or(Json::Null);
    let recipient = match to {
        Some(t) => match exprs.render(t.as_str(), scope) {
            Ok(r) => r,
            Err(e) => return Ok(Outcome::Fail(e.to_string())),
        },
        None => match contact.get("email").and_then(Json::as_str) {
            Some(e) => e.to_string(),
            None => {
                return Ok(Outcome::Fail(
                    "no recipient: the execution has no contact and the step no `to`".into(),
                ));
            }
        },
    };
    let status = contact
        .get("status")
        .and_then(Json::as_str)
        .unwrap_or("active");
    let marketing = template
        .kind
        .is_none_or(|k| k == crate::model::email_template::EmailKind::Marketing);
    if marketing && NO_MARKETING.contains(&status) {
        return Ok(Outcome::Next(json!({
            "sent": false,
            "reason": format!("contact is {status}"),
            "template": template_id,
        })));
    }
    let mut rendered_data = serde_json::Map::new();
    for (k, v) in data {
        match exprs.render_tree(v, scope) {
            Ok(v) => {
                rendered_data.insert(k.clone(), v);
            }
            Err(e) => return Ok(Outcome::Fail(e.to_string())),
        }
    }
    let (_, key) = ex.effect_key(fiber);
    let settings = &ctx.engine.settings;
    let signing_key = token::key(ctx.conn)?;
    let send_uid = crate::uid::new(ctx.now);
    let links = email::links::for_send(&signing_key, &settings.public_url, &send_uid);
    let email_scope = json!({
        "contact": contact,
        "data": rendered_data,
        "workspace": {
            "name": settings.workspace_name,
            "public_url": settings.public_url,
            "postal_address": settings.postal_address,
        },
        "links": {
            "unsubscribe": links.unsubscribe,
            "view_in_browser": links.view_in_browser,
        },
        "trigger": ex.trigger,
        "vars": ex.state.vars,
    });
    let subject = match subject.map(|s| exprs.render(s.as_str(), scope)).transpose() {
        Ok(s) => s,
        Err(e) => return Ok(Outcome::Fail(e.to_string())),
    };
    let mut rendered = match email::render(
        template_id,
        template,
        &context(&email_scope),
        &settings.from,
        settings.reply_to.as_deref(),
        &recipient,
        subject,
    ) {
        Ok(r) => r,
        Err(e) => return Ok(Outcome::Fail(e.to_string())),
    };
    rendered.unsubscribe = Some(links.unsubscribe.clone());
    // A marketing email names the sender's postal address (CAN-SPAM and its
    // kin): added under the message when its template does not print it.
    if rendered.marketing
        && let Some(address) = settings.postal_address.as_deref()
        && !rendered.text.contains(address)
    {
        rendered.html.push_str(&format!(
            "\n<p style=\"font-size: 12px; color: #7b8794;\">{}</p>\n",
            email::escape_html(address)
        ));
        rendered.text.push_str(&format!("\n\n{address}\n"));
    }
    // And it always offers a way out, whatever its template forgot.
    if rendered.marketing && !rendered.html.contains(&links.unsubscribe) {
        rendered.html.push_str(&format!(
            "\n<p style=\"font-size: 12px; color: #7b8794;\"><a href=\"{}\">Unsubscribe</a></p>\n",
            email::escape_html(&links.unsubscribe)
        ));
        rendered
            .text
            .push_str(&format!("\nUnsubscribe: {}\n", links.unsubscribe));
    }
    // Links into the workspace's sites carry the contact's token, so that a click
    // arrives as the contact (see `analytics::token`).
    if let Some(uid) = contact.get("id").and_then(Json::as_str)
        && !settings.site_origins.is_empty()
    {
        let t = token::issue(&signing_key, uid, ctx.now);
        rendered.html = token::tag_links(&rendered.html, &settings.site_origins, &t);
        rendered.text = token::tag_links(&rendered.text, &settings.site_origins, &t);
    }
    if settings.track_clicks {
        rendered.html = email::tracking::wrap_links(
            &rendered.html,
            &settings.public_url,
            &signing_key,
            &send_uid,
        );
    }
    if settings.track_opens {
        rendered.html = email::tracking::add_pixel(
            &rendered.html,
            &settings.public_url,
            &email::links::token(&signing_key, &send_uid),
        );
    }
    let dkim = match &settings.dkim {
        None => None,
        Some(Ok(signer)) => Some(signer),
        Some(Err(e)) => return Ok(Outcome::Fail(e.clone())),
    };
    let eml = match email::to_eml(&rendered, &key, ctx.now, dkim) {
        Ok(m) => m,
        Err(e) => return Ok(Outcome::Fail(e.to_string())),
    };
    let queued = outbox::enqueue(
        ctx.conn,
        &key,
        &send_uid,
        &rendered,
        &eml,
        ex.contact_id,
        Some(ex.id),
        ctx.now,
    )?;
    if queued {
        ctx.fx.emails += 1;
    }
    Ok(Outcome::Next(json!({
        "sent": true,
        "template": template_id,
        "to": recipient,
        "subject": rendered.subject,
        "key": key,
    })))
}
