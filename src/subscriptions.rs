//! Outbound webhook subscriptions, the REST hooks pattern Zapier-style tools
//! use: a subscriber names an event (a trigger type: `contact_created`,
//! `form_submission`, `deal_stage_changed`, …) and a target URL; each event of
//! that kind is queued for it in the same transaction that ingests the event
//! (so nothing acknowledged is lost and nothing is sent for a change that
//! rolled back), then delivered by the worker, signed, retried with backoff.
//! A target that answers 410 Gone unsubscribes itself.
//!
//! Delivery: `POST` with the JSON payload, `Funnel-Event`, `Funnel-Delivery`
//! (the same on every attempt, as is `Idempotency-Key`) and `Funnel-Signature:
//! t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the
//! subscription's secret: the scheme funnel's own inbound hooks check.

use serde::Serialize;
use serde_json::json;

use crate::engine::ingest::Event;
use crate::store::db::{Db, OptionalRow, params};
use crate::store::{StoreError, UnixMs};

/// Attempts before a delivery that keeps failing is given up.
pub const MAX_ATTEMPTS: i64 = 10;
/// How long a worker holds the deliveries it claimed.
pub const LEASE_MS: i64 = 60_000;
/// Subscriptions a workspace holds at most (each event reads them all).
pub const MAX_SUBSCRIPTIONS: i64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error(
        "`{0}` is not an event; subscribe to a trigger type (contact_created, tag_added, form_submission, deal_stage_changed, email_opened, …)"
    )]
    UnknownEvent(String),
    #[error("`{url}` cannot receive deliveries: {why}")]
    BadTarget { url: String, why: String },
    #[error("this workspace has {MAX_SUBSCRIPTIONS} subscriptions already; remove one first")]
    TooMany,
    #[error("no random bytes from the system: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A subscription as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    pub id: String,
    pub event: String,
    pub target_url: String,
    pub created_by: String,
    pub created_at: UnixMs,
    /// Deliveries waiting or being retried.
    pub pending: i64,
    /// Deliveries given up after every attempt failed.
    pub failed: i64,
}

/// Stores a subscription; returns its id and the secret deliveries are signed
/// with (shown once: the caller hands it to the subscriber).
pub fn subscribe(
    db: Db<'_>,
    event: &str,
    target_url: &str,
    created_by: &str,
    now: UnixMs,
) -> Result<(String, String), SubscriptionError> {
    if !crate::engine::ingest::is_known_kind(event) {
        return Err(SubscriptionError::UnknownEvent(
            event.chars().take(100).collect(),
        ));
    }
    let n: i64 = db.query_row("SELECT count(*) FROM hook_subscriptions", params![], |r| {
        r.get(0)
    })?;
    if n >= MAX_SUBSCRIPTIONS {
        return Err(SubscriptionError::TooMany);
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| SubscriptionError::Random(e.to_string()))?;
    let secret = format!("whsec_{}", hex::encode(raw));
    let id = crate::uid::new(now);
    db.prepare_cached(
        "INSERT INTO hook_subscriptions (uid, event, target_url, secret, created_by, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![id, event, target_url, secret, created_by, now])?;
    // Ingestion reads who subscribes only when the revision moves.
    crate::engine::Engine::move_revision(db, now)?;
    Ok((id, secret))
}

/// Removes a subscription and every delivery still waiting for it; whether
/// there was one.
pub fn unsubscribe(db: Db<'_>, id: &str, now: UnixMs) -> Result<bool, StoreError> {
    let sub: Option<i64> = db
        .prepare_cached("SELECT id FROM hook_subscriptions WHERE uid = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()?;
    let Some(sub) = sub else {
        return Ok(false);
    };
    db.prepare_cached("DELETE FROM hook_deliveries WHERE subscription_id = ?1")?
        .execute(params![sub])?;
    db.prepare_cached("DELETE FROM hook_subscriptions WHERE id = ?1")?
        .execute(params![sub])?;
    crate::engine::Engine::move_revision(db, now)?;
    Ok(true)
}

/// Every subscription, oldest first, with its deliveries' state.
pub fn list(db: Db<'_>) -> Result<Vec<Subscription>, StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT s.uid, s.event, s.target_url, s.created_by, s.created_at, \
         (SELECT count(*) FROM hook_deliveries d WHERE d.subscription_id = s.id AND d.status = 'pending'), \
         (SELECT count(*) FROM hook_deliveries d WHERE d.subscription_id = s.id AND d.status = 'failed') \
         FROM hook_subscriptions s ORDER BY s.id",
    )?;
    let rows = stmt.query_map(params![], |r| {
        Ok(Subscription {
            id: r.get(0)?,
            event: r.get(1)?,
            target_url: r.get(2)?,
            created_by: r.get(3)?,
            created_at: r.get(4)?,
            pending: r.get(5)?,
            failed: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// The event kinds somebody subscribes to (what [`enqueue`] is told, cached
/// by the engine under the store's revision).
pub fn kinds(db: Db<'_>) -> Result<std::collections::HashSet<String>, StoreError> {
    db.prepare_cached("SELECT DISTINCT event FROM hook_subscriptions")?
        .query_map(params![], |r| r.get(0))?
        .collect()
}

/// Queues `event` for every subscription to its kind: called by the engine's
/// ingestion, inside its transaction, with the kinds subscribed to as of its
/// revision. Nothing is read for an event of a kind nobody subscribes to.
pub fn enqueue(
    db: Db<'_>,
    event: &Event,
    subscribed: &std::collections::HashSet<String>,
    now: UnixMs,
) -> Result<usize, StoreError> {
    // A run of one named workflow (a schedule's occurrence, a manual start)
    // is not an event the outside world asked for.
    if event.workflow.is_some() || !subscribed.contains(&event.kind) {
        return Ok(0);
    }
    let subs: Vec<i64> = db
        .prepare_cached("SELECT id FROM hook_subscriptions WHERE event = ?1")?
        .query_map(params![event.kind], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if subs.is_empty() {
        return Ok(0);
    }
    let mut insert = db.prepare_cached(
        "INSERT INTO hook_deliveries (uid, subscription_id, event, contact_id, payload, attempts, \
         next_at, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, 'pending', ?6)",
    )?;
    for sub in &subs {
        let uid = crate::uid::new(now);
        let payload = json!({
            "id": uid,
            "event": event.kind,
            "occurred_at": now,
            "contact_id": event.contact_id,
            "email": event.email,
            "data": event.data,
        });
        insert.execute(params![
            uid,
            sub,
            event.kind,
            event.contact_id,
            payload.to_string(),
            now
        ])?;
    }
    Ok(subs.len())
}

/// How long delivered and given-up deliveries are kept (for the listing's
/// counts and for looking into a failure).
pub const KEEP_FINISHED_MS: i64 = 7 * 24 * 3_600_000;

/// Deletes delivered and given-up deliveries last tried before `before`: their
/// payloads hold people's data, kept only as long as they are useful.
pub fn prune(db: Db<'_>, before: UnixMs) -> Result<usize, StoreError> {
    db.prepare_cached(
        "DELETE FROM hook_deliveries WHERE status IN ('delivered', 'failed') AND next_at < ?1",
    )?
    .execute(params![before])
}

/// Whether any delivery is due at `now` (a read, so an idle worker writes
/// nothing).
pub fn any_due(db: Db<'_>, now: UnixMs) -> Result<bool, StoreError> {
    Ok(db
        .prepare_cached(
            "SELECT 1 FROM hook_deliveries WHERE status = 'pending' AND next_at <= ?1 LIMIT 1",
        )?
        .query_row(params![now], |r| r.get::<i64>(0))
        .optional()?
        .is_some())
}

/// A delivery claimed for sending.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: i64,
    pub uid: String,
    pub event: String,
    pub payload: String,
    /// Attempts so far, this one counted.
    pub attempts: i64,
    pub target_url: String,
    pub secret: String,
}

/// Claims up to `limit` deliveries due at `now` under a lease, counting the
/// attempt as it claims: two workers never hold the same delivery (PostgreSQL
/// skips rows another transaction holds; SQLite has one writer), and a dead
/// worker's deliveries are sent again after the lease.
pub fn claim(db: Db<'_>, now: UnixMs, limit: usize) -> Result<Vec<Due>, StoreError> {
    let sql = db.pick(
        "UPDATE hook_deliveries SET next_at = ?2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM hook_deliveries WHERE status = 'pending' AND next_at <= ?1 \
           ORDER BY next_at, id LIMIT ?3) \
         RETURNING id, uid, event, payload, attempts, subscription_id",
        "UPDATE hook_deliveries SET next_at = $2, attempts = hook_deliveries.attempts + 1 \
         WHERE id IN (SELECT id FROM hook_deliveries WHERE status = 'pending' AND next_at <= $1 \
           ORDER BY next_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING id, uid, event, payload, attempts, subscription_id",
    );
    let claimed: Vec<(i64, String, String, String, i64, i64)> = db
        .prepare_cached(sql)?
        .query_map(
            params![
                now,
                now + LEASE_MS,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )?
        .collect::<Result<_, _>>()?;
    let mut target =
        db.prepare_cached("SELECT target_url, secret FROM hook_subscriptions WHERE id = ?1")?;
    let mut out = Vec::with_capacity(claimed.len());
    for (id, uid, event, payload, attempts, sub) in claimed {
        let (target_url, secret): (String, String) =
            target.query_row(params![sub], |r| Ok((r.get(0)?, r.get(1)?)))?;
        out.push(Due {
            id,
            uid,
            event,
            payload,
            attempts,
            target_url,
            secret,
        });
    }
    out.sort_by_key(|d| d.id);
    Ok(out)
}

/// How a delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Tried again later (or given up after [`MAX_ATTEMPTS`]).
    Failed(String),
    /// Never deliverable (a refused address): given up now.
    Refused(String),
    /// The target answered 410 Gone: the subscription ends.
    Gone,
}

/// The wait before attempt `n + 1` after `n` failures: 2 s, doubling, at most
/// an hour.
pub fn backoff_ms(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 11)).unwrap_or(11);
    (2_000_i64 << doublings).min(3_600_000)
}

/// Records what became of a claimed delivery, unless another worker claimed
/// it again meanwhile (its attempt count moved on): a late answer never
/// overwrites a newer one.
pub fn finish(db: Db<'_>, due: &Due, outcome: &Outcome, now: UnixMs) -> Result<(), StoreError> {
    match outcome {
        Outcome::Delivered => {
            db.prepare_cached(
                "UPDATE hook_deliveries SET status = 'delivered', delivered_at = ?2, \
                 last_error = NULL WHERE id = ?1 AND attempts = ?3",
            )?
            .execute(params![due.id, now, due.attempts])?;
        }
        Outcome::Failed(why) | Outcome::Refused(why) => {
            let give_up = matches!(outcome, Outcome::Refused(_)) || due.attempts >= MAX_ATTEMPTS;
            db.prepare_cached(
                "UPDATE hook_deliveries SET last_error = ?2, next_at = ?3, status = ?4 \
                 WHERE id = ?1 AND attempts = ?5 AND status = 'pending'",
            )?
            .execute(params![
                due.id,
                why.chars().take(500).collect::<String>(),
                now + backoff_ms(due.attempts),
                if give_up { "failed" } else { "pending" },
                due.attempts
            ])?;
        }
        Outcome::Gone => {
            let sub: Option<String> = db
                .prepare_cached(
                    "SELECT s.uid FROM hook_subscriptions s JOIN hook_deliveries d \
                     ON d.subscription_id = s.id WHERE d.id = ?1",
                )?
                .query_row(params![due.id], |r| r.get(0))
                .optional()?;
            if let Some(uid) = sub {
                unsubscribe(db, &uid, now)?;
                crate::audit::record(
                    db,
                    "funnel",
                    "unsubscribe_hook",
                    "hook_subscription",
                    Some(&uid),
                    &json!({"reason": "the target answered 410 Gone"}),
                    now,
                )?;
            }
        }
    }
    Ok(())
}

/// The `Funnel-Signature` header for `body` at `t` (Unix seconds).
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mac =
        crate::analytics::token::hmac_sha256(secret.as_bytes(), format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_two_seconds_to_an_hour() {
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(2), 4_000);
        assert_eq!(backoff_ms(5), 32_000);
        assert_eq!(backoff_ms(30), 3_600_000);
    }

    #[test]
    fn a_signature_covers_the_time_and_the_body() {
        let a = signature("whsec_x", 1_700_000_000, "{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_ne!(a, signature("whsec_x", 1_700_000_001, "{}"));
        assert_ne!(a, signature("whsec_x", 1_700_000_000, "{ }"));
        assert_ne!(a, signature("whsec_y", 1_700_000_000, "{}"));
    }
}
