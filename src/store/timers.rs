//! Due work in the store: timers for delays, waits, retries and cron occurrences.
//!
//! A timer is scheduled once per `dedupe_key` (a second schedule with the same key
//! is a no-op, which is how each cron occurrence fires once however many workers
//! run). This is the one place timers are claimed: [`take_due`] deletes a batch of
//! due timers inside the transaction that also commits what handling them
//! changed, so a timer is consumed exactly when its effects are. On SQLite the
//! single writer makes that race-free; on PostgreSQL `FOR UPDATE SKIP LOCKED`
//! lets many workers take batches side by side, none waiting on another's. The
//! claim is the transaction itself: a worker that dies mid-batch (its connection
//! gone, its transaction rolled back) leaves its timers to the others at once,
//! with no lease to run out. Work that outlives a transaction (a remote call in
//! flight) is held by a timer of its own (the call's timeout), which another
//! worker takes if the first never reports back.

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

/// A timer taken because it came due.
#[derive(Debug, Clone, PartialEq)]
pub struct DueTimer {
    pub id: i64,
    /// `wake` (an execution's), `cron`, …
    pub kind: String,
    pub execution: Option<i64>,
    pub payload: String,
}

impl Store {
    /// Schedules a timer; returns its id, or `None` when one with the same
    /// `dedupe_key` already exists.
    pub async fn schedule_timer(&self, t: NewTimer) -> Result<Option<i64>, StoreError> {
        self.write(move |db| schedule_timer(db, &t)).await
    }

    /// Takes up to `limit` timers due at `now` in a transaction of their own, for
    /// callers that handle them outside the engine.
    pub async fn take_due_timers(
        &self,
        now: UnixMs,
        limit: usize,
    ) -> Result<Vec<DueTimer>, StoreError> {
        self.write(move |db| take_due(db, now, limit)).await
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

/// Takes the timers due at `now` that no other worker holds, oldest first, at
/// most `limit`: each is deleted here, inside the caller's transaction. Timers a
/// concurrent transaction has taken are skipped, not waited for.
pub fn take_due(db: Db<'_>, now: UnixMs, limit: usize) -> Result<Vec<DueTimer>, StoreError> {
    let sql = db.pick(
        "DELETE FROM timers WHERE id IN (SELECT id FROM timers WHERE due_at <= ?1 \
           AND (claimed_until IS NULL OR claimed_until < ?1) ORDER BY due_at, id LIMIT ?2) \
         RETURNING id, kind, execution_id, payload, due_at",
        "DELETE FROM timers WHERE id IN (SELECT id FROM timers WHERE due_at <= $1 \
           AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY due_at, id LIMIT $2 \
           FOR UPDATE SKIP LOCKED) \
         RETURNING id, kind, execution_id, payload::text, due_at",
    );
    let mut stmt = db.prepare_cached(sql)?;
    let rows = stmt.query_map(
        params![now, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            Ok((
                r.get::<i64>(4)?,
                DueTimer {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    execution: r.get(2)?,
                    payload: r.get(3)?,
                },
            ))
        },
    )?;
    let mut due = rows.collect::<Result<Vec<_>, _>>()?;
    // RETURNING gives no order: handle the earliest first.
    due.sort_by_key(|(at, t)| (*at, t.id));
    Ok(due.into_iter().map(|(_, t)| t).collect())
}
