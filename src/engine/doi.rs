//! Double opt-in: a workflow that puts a contact on a list marked
//! `double_opt_in` (a form's signup, an `add_to_list` step) records a pending
//! request and emails a signed confirmation link instead; the contact joins
//! when they confirm (`/confirm/<token>`), and only then does `list_joined`
//! fire. The consent is recorded with its proof: the request, the
//! confirmation email that carried the link, and the moment it was used.
//! Lists joined by an operator (an import, the CLI, the API) join at once: the
//! operator vouches for the consent.

use serde_json::{Value as Json, json};

use super::EngineError;
use super::mail::{Compose, compose};
use super::run::Ctx;
use crate::crm::CrmEvent;
use crate::email::{links, outbox};
use crate::store::db::{OptionalRow, params};

/// How long a confirmation link works.
pub const VALID_MS: i64 = 7 * 24 * 3_600_000;

/// A request is not emailed again within this time (a form posted twice).
const RESEND_AFTER_MS: i64 = 3_600_000;

/// The built-in confirmation email, used when a list names none.
pub const DEFAULT_TEMPLATE: &str = "confirm-subscription";

/// Whether joining `list` needs a confirmation.
pub fn needs_confirmation(ctx: &Ctx<'_>, list: &str) -> bool {
    ctx.engine.lists.get(list).is_some_and(|l| l.double_opt_in)
}

/// Asks contact `contact_id` to confirm joining `list`: a pending request and
/// the confirmation email under `key` (the step's effect key). A member
/// already, or a request emailed within the hour, sends nothing. Returns
/// whether an email was queued.
pub fn request(
    ctx: &mut Ctx<'_>,
    contact_id: i64,
    list: &str,
    key: &str,
    execution_id: Option<i64>,
) -> Result<bool, EngineError> {
    let member: bool = ctx
        .conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM list_members WHERE list_id = ?1 AND contact_id = ?2)",
        )?
        .query_row(params![list, contact_id], |r| r.get(0))?;
    if member {
        return Ok(false);
    }
    let last: Option<i64> = ctx
        .conn
        .prepare_cached(
            "SELECT requested_at FROM list_requests WHERE list_id = ?1 AND contact_id = ?2 \
             AND confirmed_at IS NULL",
        )?
        .query_row(params![list, contact_id], |r| r.get(0))
        .optional()?;
    if last.is_some_and(|at| ctx.now - at < RESEND_AFTER_MS) {
        return Ok(false);
    }
    let now = ctx.now;
    ctx.conn
        .prepare_cached(
            "INSERT INTO list_requests (list_id, contact_id, requested_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (list_id, contact_id) DO UPDATE SET requested_at = excluded.requested_at, \
             confirmed_at = NULL",
        )?
        .execute(params![list, contact_id, now])?;
    let def = ctx.engine.lists.get(list);
    let template_id = def
        .and_then(|l| l.confirmation_template.as_ref())
        .map_or(DEFAULT_TEMPLATE, |t| t.as_str());
    let Some(template) = ctx.engine.emails.get(template_id) else {
        return Err(EngineError::Invalid(format!(
            "list `{list}` needs a confirmation email, and there is no email template `{template_id}`"
        )));
    };
    let contact = crate::crm::contact::view(ctx.conn, contact_id, &ctx.engine.scoring, now)?;
    let (Some(uid), Some(to)) = (
        contact.get("id").and_then(Json::as_str).map(String::from),
        contact
            .get("email")
            .and_then(Json::as_str)
            .map(String::from),
    ) else {
        return Ok(false);
    };
    let signing_key = crate::analytics::token::key(ctx.conn)?;
    let settings = &ctx.engine.settings;
    let url = format!(
        "{}/confirm/{}",
        settings.public_url,
        links::confirm_token(&signing_key, &uid, list, now)
    );
    let send_uid = crate::uid::new(now);
    let key = format!("{key}:confirm:{list}");
    let (rendered, eml) = compose(
        settings,
        &signing_key,
        &Compose {
            template_id,
            template,
            layout: ctx.engine.layout_for(template),
            contact: &contact,
            data: json!({
                "list": list,
                "list_name": def.map_or(list, |l| l.name.as_str()),
                "confirm_url": url,
            }),
            extra: json!({}),
            subject: None,
            subject_template: None,
            to: &to,
            send_uid: &send_uid,
            key: &key,
            // A confirmation is looked at once; it is not engagement.
            opens: false,
            clicks: false,
        },
        now,
    )
    .map_err(EngineError::Invalid)?;
    let queued = outbox::enqueue(
        ctx.conn,
        &key,
        &send_uid,
        &rendered,
        &eml,
        Some(contact_id),
        execution_id,
        now,
    )?;
    if queued {
        ctx.fx.emails += 1;
    }
    Ok(queued)
}

/// What a confirmation link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// Joined now.
    Joined { list: String, address: String },
    /// A member already (the link was used before).
    Already { list: String },
    /// The request is older than [`VALID_MS`], or was replaced by a newer one.
    Expired,
}

/// Confirms the request a verified token names (`contact_uid`, `list`,
/// `requested_at`): the contact joins, the consent is recorded with its proof,
/// and `list_joined` fires. `None` when no such contact or request exists.
pub fn confirm(
    ctx: &mut Ctx<'_>,
    contact_uid: &str,
    list: &str,
    requested_at: i64,
) -> Result<Option<Confirmed>, EngineError> {
    let found: Option<(i64, String)> = ctx
        .conn
        .prepare_cached("SELECT id, email FROM contacts WHERE uid = ?1")?
        .query_row(params![contact_uid], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((contact_id, address)) = found else {
        return Ok(None);
    };
    let request: Option<(i64, Option<i64>)> = ctx
        .conn
        .prepare_cached(
            "SELECT requested_at, confirmed_at FROM list_requests WHERE list_id = ?1 AND contact_id = ?2",
        )?
        .query_row(params![list, contact_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((stored_at, confirmed_at)) = request else {
        return Ok(None);
    };
    if confirmed_at.is_some() && stored_at == requested_at {
        return Ok(Some(Confirmed::Already {
            list: list.to_string(),
        }));
    }
    if stored_at != requested_at || ctx.now - requested_at > VALID_MS {
        return Ok(Some(Confirmed::Expired));
    }
    let now = ctx.now;
    ctx.conn
        .prepare_cached(
            "UPDATE list_requests SET confirmed_at = ?3 WHERE list_id = ?1 AND contact_id = ?2",
        )?
        .execute(params![list, contact_id, now])?;
    let joined = crate::crm::contact::add_to_list(ctx.conn, contact_id, list, now)?;
    // Confirming a subscription is an explicit opt-in: an earlier unsubscribe
    // no longer stands (a bounce, a complaint or an erasure still does).
    ctx.conn
        .prepare_cached(
            "UPDATE contacts SET status = 'active', updated_at = max(updated_at, ?2) \
             WHERE id = ?1 AND status = 'unsubscribed'",
        )?
        .execute(params![contact_id, now])?;
    let name = ctx
        .engine
        .lists
        .get(list)
        .map_or(list.to_string(), |l| l.name.clone());
    // The proof: which request, when it was emailed, and when its link was used.
    let proof = json!({
        "list": list,
        "requested_at": requested_at,
        "confirmed_at": now,
        "method": "double opt-in: the signed link emailed to this address",
    });
    crate::crm::privacy::record_consent(
        ctx.conn,
        &crate::crm::privacy::Consent {
            contact_id: Some(contact_id),
            email: &address,
            purpose: &format!("list:{list}"),
            granted: true,
            source: Some("double opt-in"),
            wording: Some(&format!("confirmed joining {name}: {proof}")),
        },
        now,
    )?;
    if joined {
        let (_, events) = crate::crm::contact::add_activity(
            ctx.conn,
            &crate::store::ops::NewActivity {
                contact_id,
                kind: "list_confirmed".into(),
                subject: Some(list.to_string()),
                data: proof,
                source: Some("email".into()),
                occurred_at: now,
            },
            &ctx.engine.scoring,
        )?;
        let joined = CrmEvent::ListJoined {
            contact_id,
            list: list.to_string(),
        };
        for e in events.iter().chain(std::iter::once(&joined)) {
            super::ingest::ingest(ctx, super::ingest::from_crm(e))?;
        }
    }
    Ok(Some(Confirmed::Joined {
        list: list.to_string(),
        address,
    }))
}
