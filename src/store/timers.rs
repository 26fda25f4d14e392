//! Due work in the store: timers for delays, waits, retries and cron occurrences.
//!
//! A timer is scheduled once per `dedupe_key` (a second schedule with the same key
//! is a no-op, which is how each cron occurrence fires once however many workers
//! run). Workers claim due timers in batches with a lease: on SQLite the single
//! writer makes claims race-free; on PostgreSQL `FOR UPDATE SKIP LOCKED` lets many
//! workers claim side by side without waiting on each other. A claim whose lease
//! runs out (its worker died) becomes claimable again.

use serde_json::Value as Json;

use super::db::{Db, OptionalRow, params};
use super::ops::Store;
use super::{StoreError, UnixMs};

/// A timer to schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTimer {
    pub kind: String,
    pub execution_id: Option<i64>,
    pub due_at: UnixMs,
    pub payload: Json,
    /// At most one timer exists per key; `None` never deduplicates.
    pub dedupe_key: Option<String>,
}

/// A claimed timer.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedTimer {
    pub id: i64,
    pub kind: String,
    pub execution_id: Option<i64>,
    pub due_at: UnixMs,
    pub payload: Json,
    pub attempts: i64,
}

impl Store {
    /// Schedules a timer; returns its id, or `None` when one with the same
    /// `dedupe_key` already exists.
    pub async fn schedule_timer(&self, t: NewTimer) -> Result<Option<i64>, StoreError> {
        self.write(move |db| schedule_timer(db, &t)).await
    }

    /// Claims up to `limit` timers due at `now` for `worker`, leased until
    /// `lease_until`, earliest first.
    pub async fn claim_due_timers(
        &self,
        worker: &str,
        now: UnixMs,
        lease_until: UnixMs,
        limit: u32,
    ) -> Result<Vec<ClaimedTimer>, StoreError> {
        let worker = worker.to_string();
        self.write(move |db| claim_due_timers(db, &worker, now, lease_until, limit))
            .await
    }

    /// Removes a timer its worker has handled. Returns false when the claim was
    /// lost (the lease ran out and another worker took the timer).
    pub async fn finish_timer(&self, id: i64, worker: &str) -> Result<bool, StoreError> {
        let worker = worker.to_string();
        self.write(move |db| {
            let n = db
                .prepare_cached("DELETE FROM timers WHERE id = ?1 AND claimed_by = ?2")?
                .execute(params![id, worker])?;
            Ok(n == 1)
        })
        .await
    }
}

/// See [`Store::schedule_timer`].
pub fn schedule_timer(db: Db<'_>, t: &NewTimer) -> Result<Option<i64>, StoreError> {
    db.query_row(
        "INSERT INTO timers (kind, execution_id, due_at, payload, dedupe_key) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        params![t.kind, t.execution_id, t.due_at, t.payload, t.dedupe_key],
        |r| r.get(0),
    )
    .optional()
}

/// See [`Store::claim_due_timers`].
pub fn claim_due_timers(
    db: Db<'_>,
    worker: &str,
    now: UnixMs,
    lease_until: UnixMs,
    limit: u32,
) -> Result<Vec<ClaimedTimer>, StoreError> {
    let sql = db.pick(
        "UPDATE timers SET claimed_by = ?1, claimed_until = ?2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM timers WHERE due_at <= ?3 \
           AND (claimed_until IS NULL OR claimed_until < ?3) ORDER BY due_at LIMIT ?4) \
         RETURNING id, kind, execution_id, due_at, payload, attempts",
        "WITH due AS (SELECT id FROM timers WHERE due_at <= $3 \
           AND (claimed_until IS NULL OR claimed_until < $3) \
           ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
         UPDATE timers t SET claimed_by = $1, claimed_until = $2, attempts = t.attempts + 1 \
         FROM due WHERE t.id = due.id \
         RETURNING t.id, t.kind, t.execution_id, t.due_at, t.payload, t.attempts",
    );
    let mut stmt = db.prepare_cached(sql)?;
    let rows = stmt.query_map(params![worker, lease_until, now, limit], |r| {
        Ok(ClaimedTimer {
            id: r.get(0)?,
            kind: r.get(1)?,
            execution_id: r.get(2)?,
            due_at: r.get(3)?,
            payload: r.get(4)?,
            attempts: r.get(5)?,
        })
    })?;
    let mut out = rows.collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|t| (t.due_at, t.id));
    Ok(out)
}
