//! The worker's email side: delivery of the outbox (claimed under a lease, the
//! suppressed dropped at the moment of sending, the rest handed to the SMTP relay
//! or written to the dev outbox folder, each outcome recorded: sent, tried again
//! later with backoff, or bounced), and the recipients' own acts (an
//! unsubscribe), which land on the contact's timeline and start workflows.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use super::{BATCH, Worker, from_store};
use crate::email::compliance::{self, SendRef};
use crate::email::outbox;
use crate::email::relays::Relays;
use crate::email::smtp::Delivery;
use crate::engine::EngineError;
use crate::engine::ingest::{Event, from_crm, ingest};
use crate::engine::run::Ctx;
use crate::store::ops::NewActivity;

/// How long a worker holds the outbox messages it claimed: another worker sends
/// them after this if the first died before marking them sent.
const OUTBOX_LEASE_MS: i64 = 30_000;

/// Messages handed to the relay at once (its pool's connections).
const SMTP_CONCURRENCY: usize = 8;

/// Delivery attempts before a message that keeps failing transiently is given up.
const MAX_ATTEMPTS: i64 = 8;

/// The wait before attempt `n + 1` after `n` transient failures: one minute,
/// doubling, at most an hour.
fn backoff_ms(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 6)).unwrap_or(6);
    (60_000_i64 << doublings).min(3_600_000)
}

/// Where messages go.
enum Channel {
    Folder(std::path::PathBuf),
    Relay(Relays),
}

/// What an unsubscribe through a link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribed {
    pub address: String,
    /// False when the address was unsubscribed already.
    pub newly: bool,
}

impl Worker {
    fn channel(&self) -> Result<Channel, EngineError> {
        let engine = self.engine();
        let settings = &engine.settings;
        let Some(cfg) = &settings.smtp else {
            return Ok(Channel::Folder(settings.outbox_dir.clone()));
        };
        let key = format!("{cfg:?}|{:?}|{}", settings.smtp_fallbacks, settings.from);
        let mut cached = self
            .inner
            .relay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((k, relay)) = cached.as_ref()
            && *k == key
        {
            return Ok(Channel::Relay(relay.clone()));
        }
        let secrets = &self.inner.secrets;
        let relay = Relays::new(cfg, &settings.smtp_fallbacks, &settings.from, |name| {
            secrets.get(name)
        })
        .map_err(|e| EngineError::Invalid(format!("funnel.yaml email.smtp: {e}")))?;
        *cached = Some((key, relay.clone()));
        Ok(Channel::Relay(relay))
    }

    /// Waits for the next slot under `email.rate_limit` (per second).
    async fn pace(&self) {
        let Some(rate) = self.engine().settings.email_rate_limit.filter(|r| *r > 0) else {
            return;
        };
        let gap = Duration::from_secs(1) / rate;
        let at = {
            let mut next = self.inner.send_pace.lock().await;
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + gap;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// Delivers due outbox messages; returns how many were handed over.
    pub async fn deliver_outbox(&self) -> Result<usize, EngineError> {
        let channel = self.channel()?;
        let store = self.inner.store.clone();
        // A relay is fed a few chunks per claim, so that a sender that dies
        // leaves few messages waiting for its lease to run out.
        let claim = match channel {
            Channel::Folder(_) => BATCH,
            Channel::Relay(_) => SMTP_CONCURRENCY * 4,
        };
        let hourly = self.engine().settings.email_hourly_limit;
        let mut total = 0;
        loop {
            let now = self.now();
            let claimed = store
                .write_background(move |c| {
                    // The hour's quota bounds the claim: what is left of it
                    // now, counted in the store by every worker.
                    let claim = match hourly {
                        Some(limit) => {
                            let left = i64::from(limit) - outbox::sent_this_hour(c, now)?;
                            claim.min(usize::try_from(left.max(0)).unwrap_or(0))
                        }
                        None => claim,
                    };
                    if claim == 0 {
                        return Ok((0, Vec::new()));
                    }
                    let claimed = outbox::claim(c, now, now + OUTBOX_LEASE_MS, claim)?;
                    let refs: Vec<(i64, String, bool)> = claimed
                        .iter()
                        .map(|m| (m.id, m.to.clone(), m.marketing))
                        .collect();
                    let go = compliance::drop_suppressed(c, &refs)?;
                    let n = claimed.len();
                    Ok((
                        n,
                        claimed
                            .into_iter()
                            .filter(|m| go.contains(&m.id))
                            .collect::<Vec<_>>(),
                    ))
                })
                .await
                .map_err(from_store)?;
            let (n_claimed, messages) = claimed;
            if n_claimed == 0 {
                return Ok(total);
            }
            let held: Vec<(i64, i64)> = messages.iter().map(|m| (m.id, m.attempts)).collect();
            // Outcomes are stored a chunk at a time: a crash between a relay's
            // acceptance and its record sends again at most one chunk (the
            // messages in flight), never the whole claim.
            let chunk = match channel {
                Channel::Folder(_) => BATCH,
                Channel::Relay(_) => SMTP_CONCURRENCY,
            };
            let work = async {
                let mut sent = 0;
                for part in messages.chunks(chunk) {
                    let attempts: std::collections::HashMap<i64, i64> =
                        part.iter().map(|m| (m.id, m.attempts)).collect();
                    let outcomes = self.deliver(&channel, part.to_vec()).await;
                    sent += outcomes
                        .iter()
                        .filter(|(_, d)| *d == Delivery::Sent)
                        .count();
                    let bounced = self
                        .transact_background(self.now(), move |ctx| {
                            record_outcomes(ctx, &outcomes, &attempts)
                        })
                        .await?;
                    if bounced > 0 {
                        tracing::info!(
                            bounced,
                            "emails refused for good; their addresses are suppressed"
                        );
                    }
                }
                Ok::<usize, EngineError>(sent)
            };
            tokio::pin!(work);
            // The lease's heartbeat: a delivery slower than a third of the lease
            // renews it, so no other worker takes these messages while this one
            // still works on them.
            let period = Duration::from_millis(OUTBOX_LEASE_MS.unsigned_abs() / 3);
            let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            let sent = loop {
                tokio::select! {
                    done = &mut work => break done?,
                    _ = beat.tick() => {
                        let held = held.clone();
                        let until = self.now() + OUTBOX_LEASE_MS;
                        store
                            .write(move |c| outbox::renew_leases(c, &held, until))
                            .await
                            .map_err(from_store)?;
                    }
                }
            };
            total += sent;
            if n_claimed < claim {
                return Ok(total);
            }
        }
    }

    async fn deliver(
        &self,
        channel: &Channel,
        messages: Vec<outbox::ClaimedMessage>,
    ) -> Vec<(i64, Delivery)> {
        match channel {
            Channel::Folder(dir) => {
                let dir = dir.clone();
                let ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
                tokio::task::spawn_blocking(move || {
                    messages
                        .into_iter()
                        .map(|m| {
                            let d = match outbox::write_eml(&dir, &m.key, &m.message) {
                                Ok(_) => Delivery::Sent,
                                Err(e) => Delivery::Transient(format!(
                                    "cannot write to {}: {e}",
                                    dir.display()
                                )),
                            };
                            (m.id, d)
                        })
                        .collect()
                })
                .await
                .unwrap_or_else(|e| {
                    ids.into_iter()
                        .map(|id| (id, Delivery::Transient(e.to_string())))
                        .collect()
                })
            }
            Channel::Relay(relay) => {
                futures_util::stream::iter(messages)
                    .map(|m| async move {
                        self.pace().await;
                        (
                            m.id,
                            relay
                                .send(&m.to, m.return_path.as_deref(), m.message.as_bytes())
                                .await,
                        )
                    })
                    .buffer_unordered(SMTP_CONCURRENCY)
                    .collect()
                    .await
            }
        }
    }

    /// The send a signed link's token names, looked up on a reader: a forged
    /// token costs no write. `check` verifies the token under the store's key
    /// and gives the send's uid.
    pub(super) async fn genuine_send(
        &self,
        check: impl FnOnce(&[u8]) -> Option<String> + Send + 'static,
    ) -> Result<Option<SendRef>, EngineError> {
        self.inner
            .store
            .read_async(move |c| {
                let Some(key) = crate::analytics::token::stored_key(c)? else {
                    return Ok(None);
                };
                let Some(uid) = check(&key) else {
                    return Ok(None);
                };
                compliance::send_by_uid(c, &uid)
            })
            .await
            .map_err(from_store)
    }

    /// The recipient of the send a signed link (`/u/<token>`) names, if the
    /// token is genuine.
    pub async fn link_recipient(&self, token: String) -> Result<Option<String>, EngineError> {
        let send = self
            .genuine_send(move |k| crate::email::links::verify(k, &token))
            .await?;
        Ok(send.map(|s| s.to))
    }

    /// Records the first open of the send a pixel's token names (later opens
    /// change nothing); false for a token that is not genuine.
    pub async fn record_open(&self, token: String) -> Result<bool, EngineError> {
        let Some(send) = self
            .genuine_send(move |k| crate::email::links::verify(k, &token))
            .await?
        else {
            return Ok(false);
        };
        self.transact_retrying(self.now(), move |ctx| {
            if compliance::mark_opened(ctx.conn, send.send_id, ctx.now)? {
                email_event(ctx, &send, "email_opened", json!({}))?;
            }
            Ok(true)
        })
        .await
    }

    /// Records a click through the redirect of a send (its first click starts
    /// workflows and lands on the timeline; a click implies an open). Returns
    /// whether the token is genuine for `url`.
    pub async fn record_click(&self, token: String, url: String) -> Result<bool, EngineError> {
        let target = url.clone();
        let Some(send) = self
            .genuine_send(move |k| crate::email::tracking::verify_click(k, &token, &target))
            .await?
        else {
            return Ok(false);
        };
        self.transact_retrying(self.now(), move |ctx| {
            if compliance::mark_opened(ctx.conn, send.send_id, ctx.now)? {
                email_event(ctx, &send, "email_opened", json!({}))?;
            }
            if compliance::mark_clicked(ctx.conn, send.send_id, ctx.now)? {
                email_event(ctx, &send, "email_clicked", json!({"url": url}))?;
            }
            Ok(true)
        })
        .await
    }

    /// The HTML of the send a view-in-browser token names.
    pub async fn view_email(&self, token: String) -> Result<Option<String>, EngineError> {
        let Some(send) = self
            .genuine_send(move |k| crate::email::links::verify(k, &token))
            .await?
        else {
            return Ok(None);
        };
        self.inner
            .store
            .read_async(move |c| {
                Ok(compliance::message_of(c, send.send_id)?
                    .and_then(|m| crate::email::view::html_part(&m)))
            })
            .await
            .map_err(from_store)
    }

    /// Unsubscribes the recipient of the send a signed link names, at once;
    /// `None` when the token is not genuine or names no send.
    pub async fn unsubscribe(
        &self,
        token: String,
        source: &'static str,
    ) -> Result<Option<Unsubscribed>, EngineError> {
        let Some(send) = self
            .genuine_send(move |k| crate::email::links::verify(k, &token))
            .await?
        else {
            return Ok(None);
        };
        self.transact_retrying(self.now(), move |ctx| {
            let newly = compliance::unsubscribe(ctx.conn, &send, source, ctx.now)?;
            if newly {
                email_event(ctx, &send, "email_unsubscribed", json!({"source": source}))?;
            }
            Ok(Some(Unsubscribed {
                address: send.to.clone(),
                newly,
            }))
        })
        .await
    }
}

/// Stores what became of each message; returns how many bounced.
fn record_outcomes(
    ctx: &mut Ctx<'_>,
    outcomes: &[(i64, Delivery)],
    attempts: &std::collections::HashMap<i64, i64>,
) -> Result<usize, EngineError> {
    let sent: Vec<i64> = outcomes
        .iter()
        .filter(|(_, d)| *d == Delivery::Sent)
        .map(|(id, _)| *id)
        .collect();
    outbox::mark_sent(ctx.conn, &sent, ctx.now)?;
    if ctx.engine.settings.email_hourly_limit.is_some() {
        outbox::count_sent(ctx.conn, ctx.now, sent.len())?;
    }
    let mut bounced = 0;
    for (id, d) in outcomes {
        match d {
            Delivery::Sent => {}
            Delivery::Transient(e) => {
                let n = attempts.get(id).copied().unwrap_or(1);
                tracing::warn!(error = %e, attempt = n, "email delivery failed; trying again later");
                compliance::retry_later(ctx.conn, *id, e, ctx.now + backoff_ms(n), MAX_ATTEMPTS)?;
            }
            Delivery::Permanent(e) => {
                if let Some(send) = compliance::bounce(ctx.conn, *id, e, ctx.now)? {
                    bounced += 1;
                    email_event(ctx, &send, "email_bounced", json!({"error": e}))?;
                }
            }
        }
    }
    Ok(bounced)
}

/// An email event on the contact's timeline, fed to the workflows it triggers.
fn email_event(
    ctx: &mut Ctx<'_>,
    send: &SendRef,
    kind: &str,
    extra: serde_json::Value,
) -> Result<(), EngineError> {
    contact_email_event(ctx, Some(send), send.contact_id, kind, extra)
}

/// An email event for a contact, about a send when one is known (a report
/// may name only an address).
pub(super) fn contact_email_event(
    ctx: &mut Ctx<'_>,
    send: Option<&SendRef>,
    contact_id: Option<i64>,
    kind: &str,
    extra: serde_json::Value,
) -> Result<(), EngineError> {
    let Some(contact_id) = contact_id else {
        return Ok(());
    };
    let mut data = match send {
        Some(s) => json!({"send": s.uid, "template": s.template}),
        None => json!({}),
    };
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    let (_, events) = crate::crm::contact::add_activity(
        ctx.conn,
        &NewActivity {
            contact_id,
            kind: kind.to_string(),
            subject: send.map(|s| s.template.clone()),
            data: data.clone(),
            source: Some("email".into()),
            occurred_at: ctx.now,
        },
        &ctx.engine.scoring,
    )?;
    ingest(
        ctx,
        Event {
            kind: kind.to_string(),
            data,
            contact_id: Some(contact_id),
            ..Event::default()
        },
    )?;
    for e in &events {
        ingest(ctx, from_crm(e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn retries_back_off_from_a_minute_to_an_hour() {
        assert_eq!(backoff_ms(1), 60_000);
        assert_eq!(backoff_ms(2), 120_000);
        assert_eq!(backoff_ms(6), 1_920_000);
        assert_eq!(backoff_ms(7), 3_600_000);
        assert_eq!(backoff_ms(50), 3_600_000);
    }
}
