//! Work claimed under a lease, for work done outside the store's transactions:
//! the outbox's messages, which a worker sends after claiming them.
//!
//! A claim moves the message's `next_attempt_at` to the end of the lease: no
//! other worker takes it before then. Sent, it is marked so; if its worker dies
//! first, the lease runs out and another worker claims it again (an `attempts`
//! count says how often). A worker still busy with its claim renews the lease
//! ([`renew_outbox_leases`], its heartbeat), so a slow delivery is not mistaken
//! for a dead worker; `attempts` doubles as the claim's fencing token, so a
//! worker whose lease ran out and was claimed again cannot renew the new owner's.
//! On PostgreSQL the claim skips rows a concurrent claim holds (`FOR UPDATE SKIP
//! LOCKED`) instead of waiting for them.

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
    pub to: String,
    /// Marketing (stopped by an unsubscribe) rather than transactional.
    pub marketing: bool,
    /// The envelope sender (the send's tagged return path), if it has one.
    pub return_path: Option<String>,
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
         RETURNING id, idempotency_key, message, attempts, to_address, marketing, return_path",
        "UPDATE outbox SET next_attempt_at = $2, attempts = outbox.attempts + 1 \
         WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING id, idempotency_key, message, attempts, to_address, marketing, return_path",
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
                to: r.get(4)?,
                marketing: r.get::<i64>(5)? != 0,
                return_path: r.get(6)?,
            })
        },
    )?;
    let mut out = rows.collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|m| m.id);
    Ok(out)
}

/// The IN list repeats the partial index's own condition: SQLite uses a partial
/// index only for a query that states it.
pub(crate) const NEXT_QUEUED_SQLITE: &str = "SELECT id FROM executions INDEXED BY executions_unfinished \
     WHERE workflow_id = ?1 AND status = 'queued' \
     AND status IN ('running', 'waiting', 'queued') ORDER BY id LIMIT 1";

/// The oldest queued execution of `workflow`, for the one transaction that will
/// start it. On SQLite its single writer makes that so; on PostgreSQL the row is
/// locked (`FOR UPDATE SKIP LOCKED`), so two writers releasing queued executions
/// at once take different ones instead of waiting on each other (and deadlocking
/// on whatever else each holds).
pub fn next_queued(db: Db<'_>, workflow: &str) -> Result<Option<i64>, StoreError> {
    let sql = db.pick(
        NEXT_QUEUED_SQLITE,
        "SELECT id FROM executions WHERE workflow_id = $1 AND status = 'queued' \
         AND status IN ('running', 'waiting', 'queued') ORDER BY id LIMIT 1 \
         FOR UPDATE SKIP LOCKED",
    );
    use super::db::OptionalRow as _;
    db.prepare_cached(sql)?
        .query_row(params![workflow], |r| r.get(0))
        .optional()
}

/// Renews the lease of claimed messages still pending and still held by this
/// claim (the `attempts` it was claimed with) until `lease_until`. Returns how
/// many it renewed: fewer means some were sent, or lost to a later claim.
pub fn renew_outbox_leases(
    db: Db<'_>,
    held: &[(i64, i64)],
    lease_until: UnixMs,
) -> Result<usize, StoreError> {
    let mut stmt = db.prepare_cached(
        "UPDATE outbox SET next_attempt_at = ?3 \
         WHERE id = ?1 AND attempts = ?2 AND status = 'pending'",
    )?;
    let mut renewed = 0;
    for (id, attempts) in held {
        renewed += stmt.execute(params![id, attempts, lease_until])?;
    }
    Ok(renewed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TestDb;

    fn due(db: Db<'_>, at: UnixMs) -> Vec<i64> {
        claim_outbox(db, at, at + 60, 10)
            .expect("claim")
            .iter()
            .map(|m| m.id)
            .collect()
    }

    #[test]
    fn a_renewed_lease_keeps_a_message_and_a_lapsed_one_is_fenced() {
        let store = TestDb::open();
        let db = store.db();
        db.execute_batch(
            "INSERT INTO outbox (id, idempotency_key, to_address, subject, message, next_attempt_at, created_at) VALUES
               (1, 'k1', 'a@example.org', 's', 'm', 0, 0),
               (2, 'k2', 'b@example.org', 's', 'm', 0, 0);",
        )
        .expect("insert");
        let first = claim_outbox(db, 0, 100, 10).expect("claim");
        assert_eq!(first.iter().map(|m| m.attempts).collect::<Vec<_>>(), [1, 1]);
        assert!(due(db, 50).is_empty(), "leased");
        // The heartbeat at 90 holds both until 190.
        let held: Vec<(i64, i64)> = first.iter().map(|m| (m.id, m.attempts)).collect();
        assert_eq!(renew_outbox_leases(db, &held, 190).expect("renew"), 2);
        assert!(due(db, 150).is_empty(), "renewed past the first lease");
        // Message 1 is sent; message 2's worker stalls past its lease and another
        // worker claims it (attempts 2).
        db.execute_batch("UPDATE outbox SET status = 'sent' WHERE id = 1")
            .expect("sent");
        assert_eq!(due(db, 200), [2]);
        // The stalled worker's late heartbeat renews nothing.
        assert_eq!(renew_outbox_leases(db, &held, 400).expect("renew"), 0);
        let lease: i64 = db
            .query_row(
                "SELECT next_attempt_at FROM outbox WHERE id = 2",
                params![],
                |r| r.get(0),
            )
            .expect("lease");
        assert_eq!(lease, 260, "the new owner's lease stands");
    }
}
