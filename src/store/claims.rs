//! Work claimed under a lease, for work done outside the store's transactions:
//! the outbox's messages, which a worker sends after claiming them.
//!
//! A claim moves the message's `next_attempt_at` to the end of the lease: no
//! other worker takes it before then. Sent, it is marked so; if its worker dies
//! first, the lease runs out and another worker claims it again (an `attempts`
//! count says how often). On PostgreSQL the claim skips rows a concurrent claim
//! holds (`FOR UPDATE SKIP LOCKED`) instead of waiting for them.

use super::db::{Db, params};
use super::{StoreError, UnixMs};

/// A message claimed for sending.
#[derive(Debug, Clone)]
pub struct ClaimedMessage {
    pub id: i64,
    pub key: String,
    pub message: String,
    /// How many times it has been claimed, this claim included.
    pub attempts: i64,
}

/// Claims up to `limit` pending messages due at `now`, oldest first, until
/// `lease_until`.
pub fn claim_outbox(
    db: Db<'_>,
    now: UnixMs,
    lease_until: UnixMs,
    limit: usize,
) -> Result<Vec<ClaimedMessage>, StoreError> {
    let sql = db.pick(
        "UPDATE outbox SET next_attempt_at = ?2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1 \
           ORDER BY id LIMIT ?3) \
         RETURNING id, idempotency_key, message, attempts",
        "UPDATE outbox SET next_attempt_at = $2, attempts = outbox.attempts + 1 \
         WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING id, idempotency_key, message, attempts",
    );
    let mut stmt = db.prepare_cached(sql)?;
    let rows = stmt.query_map(
        params![now, lease_until, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            Ok(ClaimedMessage {
                id: r.get(0)?,
                key: r.get(1)?,
                message: r.get(2)?,
                attempts: r.get(3)?,
            })
        },
    )?;
    let mut out = rows.collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|m| m.id);
    Ok(out)
}
