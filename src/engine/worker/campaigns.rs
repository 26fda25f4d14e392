//! The worker's campaign sender. A campaign whose schedule has come is frozen
//! (its audience becomes one send row each); every sending campaign then has
//! its frozen sends rendered and queued in windows, so that memory stays flat
//! whatever the audience, a pause holds all but one window, and a crash resumes
//! from the frozen rows. An A/B test's variants go first; once they are all
//! delivered and the test's window has passed, the winner (or the first variant
//! when none is significant) goes to the rest. A campaign with nothing left to
//! send is marked sent.

use serde_json::{Value as Json, json};

use super::{Worker, from_store};
use crate::email::abtest::{self, Arm};
use crate::email::campaign::{self, State};
use crate::email::outbox;
use crate::engine::EngineError;
use crate::engine::mail::{Compose, compose};
use crate::engine::run::Ctx;
use crate::model::campaign::{AbMetric, Campaign};
use crate::store::db::params;

/// Most messages of one campaign queued and not yet delivered at once.
const WINDOW: i64 = 1_000;

/// Most sends rendered in one transaction.
const QUEUE_BATCH: i64 = 250;

/// What one pass over the campaigns did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CampaignTick {
    pub queued: usize,
    /// Campaigns still sending or testing.
    pub active: usize,
}

impl Worker {
    /// Freezes campaigns whose schedule has come and moves every sending one on.
    pub async fn campaigns_tick(&self) -> Result<CampaignTick, EngineError> {
        let now = self.now();
        let engine = self.engine();
        // Campaigns are few: their states are read whole, once per pass.
        let known: Vec<(Option<String>, i64, String)> = self
            .inner
            .store
            .read_async(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT campaign_key, id, status FROM email_campaigns ORDER BY id",
                )?;
                let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                rows.collect()
            })
            .await
            .map_err(from_store)?;
        let mut active: Vec<i64> = known
            .iter()
            .filter(|(_, _, s)| s == "sending" || s == "testing")
            .map(|(_, id, _)| *id)
            .collect();
        for (key, c) in &engine.campaigns {
            let due = c
                .schedule
                .as_deref()
                .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t.as_millisecond() <= now);
            if due
                && !known
                    .iter()
                    .any(|(k, _, _)| k.as_deref() == Some(key.as_str()))
            {
                let state = self.start_campaign(key).await?;
                tracing::info!(campaign = %key, recipients = state.recipients, "scheduled campaign started");
                active.push(state.id);
            }
        }
        let mut tick = CampaignTick::default();
        for id in active {
            // Looked at on a reader first: a campaign waiting for its window to
            // fill or its test to end would otherwise cost the writer an empty
            // transaction (a sync) at every pass.
            let now = self.now();
            let due = self
                .inner
                .store
                .read_async(move |c| has_work(c, id, now))
                .await
                .map_err(from_store)?;
            if !due {
                tick.active += 1;
                continue;
            }
            let queued = self
                .background_retrying(self.now(), move |ctx| advance(ctx, id))
                .await?;
            tick.queued += queued.0;
            if queued.1 {
                tick.active += 1;
            }
        }
        Ok(tick)
    }

    /// Freezes the audience of campaign `key` (once; later calls return its
    /// state as it is).
    pub async fn start_campaign(&self, key: &str) -> Result<State, EngineError> {
        let key = key.to_string();
        self.transact(self.now(), move |ctx| {
            let c = ctx
                .engine
                .campaigns
                .get(&key)
                .ok_or_else(|| EngineError::Invalid(format!("no campaign `{key}`")))?;
            Ok(campaign::freeze(
                ctx.conn,
                &key,
                c,
                &ctx.engine.scoring.segments,
                &ctx.engine.scoring,
                ctx.now,
            )?)
        })
        .await
    }
}

/// Whether [`advance`] would change anything for campaign `id` now: a window
/// with room and sends to fill it, a finished test to start or decide, or a
/// campaign with nothing left to mark sent.
fn has_work(
    conn: crate::store::db::Db<'_>,
    id: i64,
    now: crate::store::UnixMs,
) -> Result<bool, crate::store::StoreError> {
    let (status, ends): (String, Option<i64>) = conn
        .prepare_cached("SELECT status, test_ends_at FROM email_campaigns WHERE id = ?1")?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let count = |state: &str| -> Result<i64, crate::store::StoreError> {
        conn.prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM email_sends WHERE campaign_id = ?1 AND status = ?2 LIMIT ?3) AS s",
        )?
        .query_row(params![id, state, WINDOW], |r| r.get(0))
    };
    let queued = count("queued")?;
    if queued >= WINDOW {
        return Ok(false);
    }
    if count("planned")? > 0 {
        return Ok(true);
    }
    if queued > 0 {
        return Ok(false);
    }
    Ok(status != "testing" || ends.is_none_or(|e| now >= e))
}

/// One campaign's step: queue a window of its frozen sends, or end its test, or
/// mark it sent. Returns what it queued and whether it is still active.
fn advance(ctx: &mut Ctx<'_>, id: i64) -> Result<(usize, bool), EngineError> {
    let status: String = ctx
        .conn
        .prepare_cached("SELECT status FROM email_campaigns WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))?;
    if status != "sending" && status != "testing" {
        return Ok((0, false));
    }
    let Some(def) = campaign::definition(ctx.conn, id)? else {
        return Err(EngineError::Invalid(format!(
            "campaign {id} has no definition"
        )));
    };
    let in_flight: i64 = ctx
        .conn
        .prepare_cached(
            "SELECT count(*) FROM email_sends WHERE campaign_id = ?1 AND status = 'queued'",
        )?
        .query_row(params![id], |r| r.get(0))?;
    let room = (WINDOW - in_flight).min(QUEUE_BATCH);
    let planned: Vec<(i64, String, Option<i64>, Option<String>)> = if room > 0 {
        let mut stmt = ctx.conn.prepare_cached(
            "SELECT id, uid, contact_id, variant FROM email_sends \
             WHERE campaign_id = ?1 AND status = 'planned' ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![id, room], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    if !planned.is_empty() {
        let n = queue(ctx, id, &def, &planned)?;
        return Ok((n, true));
    }
    if in_flight > 0 || room <= 0 {
        return Ok((0, true));
    }
    if status == "testing" {
        return end_test(ctx, id, &def).map(|()| (0, true));
    }
    ctx.conn
        .prepare_cached("UPDATE email_campaigns SET status = 'sent', sent_at = ?2 WHERE id = ?1")?
        .execute(params![id, ctx.now])?;
    Ok((0, false))
}

/// Renders and queues frozen sends; a recipient no longer active (unsubscribed,
/// bounced, forgotten) since the freeze is suppressed instead.
fn queue(
    ctx: &mut Ctx<'_>,
    id: i64,
    def: &Campaign,
    planned: &[(i64, String, Option<i64>, Option<String>)],
) -> Result<usize, EngineError> {
    let settings = &ctx.engine.settings;
    let signing_key = crate::analytics::token::key(ctx.conn)?;
    let (opens, clicks) = def
        .tracking
        .as_ref()
        .map_or((settings.track_opens, settings.track_clicks), |t| {
            (t.opens, t.clicks)
        });
    let mut queued = 0;
    for (send_id, uid, contact_id, variant) in planned {
        let contact = match contact_id {
            Some(cid) => {
                crate::crm::contact::view(ctx.conn, *cid, &ctx.engine.scoring, ctx.now).ok()
            }
            None => None,
        };
        let active = contact
            .as_ref()
            .is_some_and(|c| c.get("status").and_then(Json::as_str) == Some("active"));
        let Some(contact) = contact.filter(|_| active) else {
            ctx.conn
                .prepare_cached("UPDATE email_sends SET status = 'suppressed' WHERE id = ?1")?
                .execute(params![send_id])?;
            continue;
        };
        let to = contact
            .get("email")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        let v = variant.as_deref().and_then(|v| {
            def.ab_test
                .as_ref()
                .and_then(|t| t.variants.iter().find(|x| x.id.as_str() == v))
        });
        let template_id = v
            .and_then(|v| v.template.as_ref())
            .unwrap_or(&def.template)
            .as_str();
        let Some(template) = ctx.engine.emails.get(template_id) else {
            return Err(EngineError::Invalid(format!(
                "campaign {id}: no email template `{template_id}`"
            )));
        };
        let subject = v
            .and_then(|v| v.subject.as_ref())
            .or(def.subject.as_ref())
            .map(|s| s.as_str());
        let key = format!("campaign:{id}:{uid}");
        let composed = compose(
            settings,
            &signing_key,
            &Compose {
                template_id,
                template,
                layout: ctx.engine.layout_for(template),
                contact: &contact,
                data: json!({}),
                extra: json!({"campaign": {"name": def.name, "variant": variant}}),
                subject: None,
                subject_template: subject,
                to: &to,
                send_uid: uid,
                key: &key,
                opens,
                clicks,
            },
            ctx.now,
        );
        match composed {
            Ok((rendered, eml)) => {
                outbox::enqueue_for_send(ctx.conn, &key, *send_id, &rendered, &eml, ctx.now)?;
                queued += 1;
            }
            Err(e) => {
                tracing::warn!(campaign = id, error = %e, "a campaign email could not be rendered");
                ctx.conn
                    .prepare_cached("UPDATE email_sends SET status = 'failed' WHERE id = ?1")?
                    .execute(params![send_id])?;
            }
        }
    }
    ctx.fx.emails += queued;
    Ok(queued)
}

/// After the test sends are delivered: start the window, or when it has passed,
/// pick the winner and release the held part of the audience to it.
fn end_test(ctx: &mut Ctx<'_>, id: i64, def: &Campaign) -> Result<(), EngineError> {
    let Some(test) = &def.ab_test else {
        return Ok(());
    };
    let ends: Option<i64> = ctx
        .conn
        .prepare_cached("SELECT test_ends_at FROM email_campaigns WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))?;
    let Some(ends) = ends else {
        let window = i64::try_from(test.window.millis().unwrap_or(0)).unwrap_or(i64::MAX);
        ctx.conn
            .prepare_cached("UPDATE email_campaigns SET test_ends_at = ?2 WHERE id = ?1")?
            .execute(params![id, ctx.now.saturating_add(window)])?;
        return Ok(());
    };
    if ctx.now < ends {
        return Ok(());
    }
    let clicks = test.metric.unwrap_or(AbMetric::Clicks) == AbMetric::Clicks;
    let arms: Vec<Arm> = campaign::stats(ctx.conn, id)?
        .into_iter()
        .filter(|s| !s.variant.is_empty())
        .map(|s| Arm {
            id: s.variant,
            sent: s.delivered,
            successes: if clicks {
                s.unique_clicks
            } else {
                s.unique_opens
            },
        })
        .collect();
    let min = u64::from(test.min_sample.unwrap_or(100));
    let decided = abtest::winner(&arms, min);
    let winner = decided
        .clone()
        .or_else(|| test.variants.first().map(|v| v.id.as_str().to_string()))
        .unwrap_or_default();
    tracing::info!(campaign = id, %winner, significant = decided.is_some(), "A/B test decided");
    ctx.conn
        .prepare_cached(
            "UPDATE email_sends SET status = 'planned', variant = ?2 WHERE campaign_id = ?1 AND status = 'held'",
        )?
        .execute(params![id, winner])?;
    ctx.conn
        .prepare_cached("UPDATE email_campaigns SET status = 'sending', winner = ?2 WHERE id = ?1")?
        .execute(params![id, winner])?;
    Ok(())
}
