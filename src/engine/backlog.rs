//! CRM events queued by a large change (a CSV import), ingested afterwards a
//! slice at a time. The import writes them durably in its own transaction, a
//! batch row per thousand events, so that a million-row import neither runs a
//! million workflow starts inside its transaction nor holds a million events in
//! memory; the worker (or the import command itself) works them off in short
//! write transactions, between timers.

use super::EngineError;
use super::ingest::{from_crm, ingest};
use super::run::Ctx;
use crate::crm::CrmEvent;
use crate::store::db::{Db, OptionalRow, params};

/// Events ingested per transaction.
pub const SLICE: usize = 200;

/// What one slice did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Slice {
    /// Events ingested.
    pub events: usize,
    /// Executions started.
    pub started: Vec<i64>,
    /// Whether queued events remain.
    pub more: bool,
}

/// Ingests up to [`SLICE`] events of the oldest queued batch.
pub fn ingest_slice(ctx: &mut Ctx<'_>) -> Result<Slice, EngineError> {
    let row: Option<(i64, String, i64)> = ctx
        .conn
        .prepare_cached("SELECT id, events, done FROM crm_event_batches ORDER BY id LIMIT 1")?
        .query_row(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((id, text, done)) = row else {
        return Ok(Slice::default());
    };
    let events: Vec<CrmEvent> = match serde_json::from_str(&text) {
        Ok(e) => e,
        Err(e) => {
            // Written by this program, so never expected: dropped, not retried forever.
            tracing::error!(batch = id, error = %e, "a queued event batch does not parse; dropped");
            Vec::new()
        }
    };
    let start = usize::try_from(done).unwrap_or(0).min(events.len());
    let end = (start + SLICE).min(events.len());
    let mut slice = Slice::default();
    for e in &events[start..end] {
        let got = ingest(ctx, from_crm(e))?;
        slice.started.extend(got.started);
        slice.events += 1;
    }
    if end >= events.len() {
        ctx.conn
            .prepare_cached("DELETE FROM crm_event_batches WHERE id = ?1")?
            .execute(params![id])?;
        slice.more = ctx
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM crm_event_batches)")?
            .query_row(params![], |r| r.get(0))?;
    } else {
        ctx.conn
            .prepare_cached("UPDATE crm_event_batches SET done = ?2 WHERE id = ?1")?
            .execute(params![id, i64::try_from(end).unwrap_or(i64::MAX)])?;
        slice.more = true;
    }
    Ok(slice)
}

/// How many events wait in the queue.
pub fn queued(conn: Db<'_>) -> Result<i64, EngineError> {
    Ok(conn
        .prepare_cached(
            "SELECT coalesce(sum(json_array_length(events) - done), 0) FROM crm_event_batches",
        )?
        .query_row(params![], |r| r.get(0))?)
}
