//! The email preference page's side of the engine: what a recipient (proved by
//! the signed token of an email sent to them) may see and change: marketing
//! email on or off, and the lists they are on or that are offered to all
//! (`public: true` in contacts/lists.yaml). Each change records its consent; an
//! address stopped for a bounce, a complaint or an erasure changes nothing here.
//! And the double opt-in link (`engine::doi`): a confirmation, checked on a
//! reader first so a forged link costs no write.

use serde_json::json;

use super::email::contact_email_event;
use super::{Worker, from_store};
use crate::crm::privacy::{Consent, record_consent};
use crate::email::compliance::{self, MARKETING_PURPOSE, SendRef};
use crate::engine::EngineError;
use crate::store::db::params;

/// One list as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListChoice {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub member: bool,
}

/// What the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    pub address: String,
    /// Marketing email is stopped by an unsubscribe.
    pub unsubscribed: bool,
    /// Why nothing can be changed here (`bounced`, `complained`, `forgotten`).
    pub blocked: Option<String>,
    pub lists: Vec<ListChoice>,
}

/// What a save changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    pub joined: Vec<String>,
    pub left: Vec<String>,
    pub unsubscribed: bool,
    pub resubscribed: bool,
    pub blocked: Option<String>,
}

fn crm_to_engine(e: crate::crm::CrmError) -> EngineError {
    match e {
        crate::crm::CrmError::Store(s) => from_store(s),
        other => EngineError::Invalid(other.to_string()),
    }
}

impl Worker {
    /// The lists offered to `send`'s recipient and those they are on.
    fn choices(
        &self,
        conn: crate::store::db::Db<'_>,
        send: &SendRef,
    ) -> Result<Vec<ListChoice>, crate::store::StoreError> {
        let mut member = std::collections::BTreeSet::new();
        if let Some(id) = send.contact_id {
            let mut stmt =
                conn.prepare_cached("SELECT list_id FROM list_members WHERE contact_id = ?1")?;
            for l in stmt.query_map(params![id], |r| r.get::<String>(0))? {
                member.insert(l?);
            }
        }
        Ok(self
            .engine()
            .lists
            .iter()
            .filter(|(id, l)| send.contact_id.is_some() && (l.public || member.contains(*id)))
            .map(|(id, l)| ListChoice {
                id: id.clone(),
                name: l.name.clone(),
                description: l.description.clone(),
                member: member.contains(id),
            })
            .collect())
    }

    /// The page for the email a link's token names; `None` for a forged token.
    pub async fn preferences(&self, token: String) -> Result<Option<Preferences>, EngineError> {
        let Some(send) = self
            .genuine_send(move |k| crate::email::links::verify(k, &token))
            .await?
        else {
            return Ok(None);
        };
        let worker = self.clone();
        self.inner
            .store
            .read_async(move |c| {
                let reason = compliance::suppression(c, &send.to)?;
                Ok(Some(Preferences {
                    address: send.to.clone(),
                    unsubscribed: reason.as_deref() == Some("unsubscribed"),
                    blocked: reason.filter(|r| r != "unsubscribed"),
                    lists: worker.choices(c, &send)?,
                }))
            })
            .await
            .map_err(from_store)
    }

    /// Saves the page: `marketing` on or off, and membership of the offered
    /// lists (`chosen` are those ticked). `None` for a forged token.
    pub async fn save_preferences(
        &self,
        token: String,
        marketing: bool,
        chosen: Vec<String>,
    ) -> Result<Option<Saved>, EngineError> {
        let Some(send) = self
            .genuine_send(move |k| crate::email::links::verify(k, &token))
            .await?
        else {
            return Ok(None);
        };
        let worker = self.clone();
        self.transact_retrying(self.now(), move |ctx| {
            let mut saved = Saved::default();
            let reason = compliance::suppression(ctx.conn, &send.to)?;
            if let Some(r) = reason.as_ref().filter(|r| *r != "unsubscribed") {
                saved.blocked = Some(r.clone());
                return Ok(Some(saved));
            }
            let consent = |ctx: &mut crate::engine::run::Ctx<'_>,
                           purpose: &str,
                           granted: bool,
                           wording: &str| {
                record_consent(
                    ctx.conn,
                    &Consent {
                        contact_id: send.contact_id,
                        email: &send.to,
                        purpose,
                        granted,
                        source: Some("preference page"),
                        wording: Some(wording),
                    },
                    ctx.now,
                )
                .map_err(crm_to_engine)
            };
            if !marketing {
                saved.unsubscribed =
                    compliance::unsubscribe(ctx.conn, &send, "preference page", ctx.now)?;
                if saved.unsubscribed {
                    contact_email_event(
                        ctx,
                        Some(&send),
                        send.contact_id,
                        "email_unsubscribed",
                        json!({"source": "preference page"}),
                    )?;
                }
                return Ok(Some(saved));
            }
            if reason.is_some() {
                // Their own click on their own email: consent again.
                consent(ctx, MARKETING_PURPOSE, true, "ticked marketing email on the preference page")?;
                if let Some(id) = send.contact_id {
                    ctx.conn
                        .prepare_cached(
                            "UPDATE contacts SET status = 'active', updated_at = max(updated_at, ?2) \
                             WHERE id = ?1 AND status = 'unsubscribed'",
                        )?
                        .execute(params![id, ctx.now])?;
                }
                saved.resubscribed = true;
            }
            let Some(contact_id) = send.contact_id else {
                return Ok(Some(saved));
            };
            for choice in worker.choices(ctx.conn, &send)? {
                let wanted = chosen.contains(&choice.id);
                let purpose = format!("list:{}", choice.id);
                if wanted && !choice.member {
                    crate::crm::contact::add_to_list(ctx.conn, contact_id, &choice.id, ctx.now)
                        .map_err(crm_to_engine)?;
                    consent(ctx, &purpose, true, &format!("joined {} on the preference page", choice.name))?;
                    // The emailed token proved the address: this is the join.
                    crate::engine::ingest::ingest(
                        ctx,
                        crate::engine::ingest::from_crm(&crate::crm::CrmEvent::ListJoined {
                            contact_id,
                            list: choice.id.clone(),
                        }),
                    )?;
                    saved.joined.push(choice.id);
                } else if !wanted && choice.member {
                    crate::crm::contact::remove_from_list(ctx.conn, contact_id, &choice.id)
                        .map_err(crm_to_engine)?;
                    consent(ctx, &purpose, false, &format!("left {} on the preference page", choice.name))?;
                    saved.left.push(choice.id);
                }
            }
            if saved.resubscribed || !saved.joined.is_empty() || !saved.left.is_empty() {
                contact_email_event(
                    ctx,
                    Some(&send),
                    Some(contact_id),
                    "email_preferences_updated",
                    json!({"joined": saved.joined, "left": saved.left, "resubscribed": saved.resubscribed}),
                )?;
            }
            Ok(Some(saved))
        })
        .await
    }

    /// Whether a confirmation token is genuine (a reader's look, for the page
    /// a `GET` shows): the list's name, or `None`.
    pub async fn confirmation_list(&self, token: String) -> Result<Option<String>, EngineError> {
        let engine = self.engine();
        self.inner
            .store
            .read_async(move |c| {
                let Some(key) = crate::analytics::token::stored_key(c)? else {
                    return Ok(None);
                };
                Ok(
                    crate::email::links::verify_confirm(&key, &token).map(|(_, list, _)| {
                        engine
                            .lists
                            .get(&list)
                            .map_or(list.clone(), |l| l.name.clone())
                    }),
                )
            })
            .await
            .map_err(from_store)
    }

    /// Confirms the double opt-in request a link's token names; `None` for a
    /// forged token or one that names no request.
    pub async fn confirm_list(
        &self,
        token: String,
    ) -> Result<Option<crate::engine::doi::Confirmed>, EngineError> {
        let t = token.clone();
        let named = self
            .inner
            .store
            .read_async(move |c| {
                Ok(crate::analytics::token::stored_key(c)?
                    .and_then(|key| crate::email::links::verify_confirm(&key, &t)))
            })
            .await
            .map_err(from_store)?;
        let Some((uid, list, requested_at)) = named else {
            return Ok(None);
        };
        self.transact_retrying(self.now(), move |ctx| {
            crate::engine::doi::confirm(ctx, &uid, &list, requested_at)
        })
        .await
    }
}
