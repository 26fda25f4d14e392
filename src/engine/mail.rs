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
    let subject = match subject.map(|s| exprs.render(s.as_str(), scope)).transpose() {
        Ok(s) => s,
        Err(e) => return Ok(Outcome::Fail(e.to_string())),
    };
    let composed = compose(
        settings,
        &signing_key,
        &Compose {
            template_id,
            template,
            layout: ctx.engine.layout_for(template),
            contact: &contact,
            data: Json::Object(rendered_data),
            extra: json!({"trigger": ex.trigger, "vars": ex.state.vars}),
            subject,
            subject_template: None,
            to: &recipient,
            send_uid: &send_uid,
            key: &key,
            opens: settings.track_opens,
            clicks: settings.track_clicks,
        },
        ctx.now,
    );
    let (rendered, eml) = match composed {
        Ok(c) => c,
        Err(e) => return Ok(Outcome::Fail(e)),
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

/// One email to compose for one recipient.
#[derive(Debug)]
pub struct Compose<'a> {
    pub template_id: &'a str,
    pub template: &'a crate::model::email_template::EmailTemplate,
    /// The layout around it, if it names one.
    pub layout: Option<&'a crate::model::email_layout::EmailLayout>,
    /// The contact as expressions see it (or null).
    pub contact: &'a Json,
    pub data: Json,
    /// More of the template's scope (a workflow's `trigger` and `vars`).
    pub extra: Json,
    /// A subject rendered already (a workflow step's, with its own scope).
    pub subject: Option<String>,
    /// A subject template from a workspace file, rendered here with the email's
    /// scope (a campaign's or its variant's).
    pub subject_template: Option<&'a str>,
    pub to: &'a str,
    /// The send's public id, which its links are signed with.
    pub send_uid: &'a str,
    /// The idempotency key (the Message-ID derives from it).
    pub key: &'a str,
    pub opens: bool,
    pub clicks: bool,
}

/// Renders, completes and builds one message: the template with the contact, the
/// data and the send's signed links; for marketing the postal address and an
/// unsubscribe link when the template forgot them and the `List-Unsubscribe`
/// headers; links into the sites tagged with the contact's token; tracking;
/// the MIME text, DKIM-signed. Shared by workflow steps and campaigns.
pub fn compose(
    settings: &super::Settings,
    signing_key: &[u8],
    c: &Compose<'_>,
    now: crate::store::UnixMs,
) -> Result<(email::Rendered, String), String> {
    let links = email::links::for_send(signing_key, &settings.public_url, c.send_uid);
    let mut scope = json!({
        "contact": c.contact,
        "data": c.data,
        "workspace": {
            "name": settings.workspace_name,
            "public_url": settings.public_url,
            "postal_address": settings.postal_address,
        },
        "links": {
            "unsubscribe": links.unsubscribe,
            "view_in_browser": links.view_in_browser,
            "preferences": links.preferences,
        },
    });
    if let (Some(s), Some(extra)) = (scope.as_object_mut(), c.extra.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    let ctx = context(&scope);
    let subject = match (&c.subject, c.subject_template) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(t)) => Some(
            super::expr::Compiled::default()
                .render(t, &ctx)
                .map_err(|e| e.to_string())?,
        ),
        (None, None) => None,
    };
    let mut rendered = email::render(
        c.template_id,
        c.template,
        c.layout,
        &ctx,
        &settings.from,
        settings.reply_to.as_deref(),
        c.to,
        subject,
    )
    .map_err(|e| e.to_string())?;
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
    if let Some(uid) = c.contact.get("id").and_then(Json::as_str)
        && !settings.site_origins.is_empty()
    {
        let t = token::issue(signing_key, uid, now);
        rendered.html = token::tag_links(&rendered.html, &settings.site_origins, &t);
        rendered.text = token::tag_links(&rendered.text, &settings.site_origins, &t);
    }
    if c.clicks {
        rendered.html = email::tracking::wrap_links(
            &rendered.html,
            &settings.public_url,
            signing_key,
            c.send_uid,
        );
    }
    if c.opens {
        rendered.html = email::tracking::add_pixel(
            &rendered.html,
            &settings.public_url,
            &email::links::token(signing_key, c.send_uid),
        );
    }
    let dkim = match &settings.dkim {
        None => None,
        Some(Ok(signer)) => Some(signer),
        Some(Err(e)) => return Err(e.clone()),
    };
    // The Message-ID names the send, so a provider's report that quotes it
    // (SendGrid's `smtp-id`, Mailgun's `message-id`, SES's common headers) finds
    // it; it is in the sender's domain, as receivers expect.
    let domain = rendered
        .from
        .parse::<lettre::message::Mailbox>()
        .map(|m| m.email.domain().to_string())
        .unwrap_or_else(|_| "funnel.local".to_string());
    rendered.message_id = Some(format!("<{}@{domain}>", c.send_uid));
    rendered.return_path = settings
        .return_path
        .as_deref()
        .and_then(|base| email::links::return_path(signing_key, base, c.send_uid));
    rendered.unsubscribe_mailto = settings
        .return_path
        .as_deref()
        .and_then(|base| email::links::mailto_unsubscribe(signing_key, base, c.send_uid));
    let eml = email::to_eml(&rendered, c.key, now, dkim).map_err(|e| e.to_string())?;
    Ok((rendered, eml))
}
