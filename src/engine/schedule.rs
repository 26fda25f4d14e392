//! Schedule triggers: each cron occurrence becomes a stored timer keyed by
//! (workflow, occurrence), so it fires once however many workers share the store.
//!
//! Catch-up after downtime: when a worker finds occurrences that passed while no
//! worker ran, it fires the latest one once, right away, and skips the earlier ones
//! (a weekly digest sent three times after a long weekend helps no one). A workflow
//! seen for the first time starts with its next occurrence.

use crate::store::db::{OptionalRow, params};
use serde_json::json;

use super::EngineError;
use super::ingest::{Event, ingest};
use super::run::Ctx;
use crate::model::workflow::TriggerKind;
use crate::store::UnixMs;

/// Most occurrences walked to find the latest missed one.
const MAX_WALK: usize = 100_000;

/// How far back the latest missed occurrence is looked for first.
const LOOK_BACK_MS: i64 = 24 * 60 * 60 * 1000;

/// The schedule of a workflow: cron and time zone name.
fn schedule_of(ctx: &Ctx<'_>, workflow: &str) -> Result<Option<(String, String)>, EngineError> {
    let Some(p) = ctx.engine.active_program(ctx.conn, workflow)? else {
        return Ok(None);
    };
    Ok(match &p.workflow.trigger.kind {
        TriggerKind::Schedule { cron, timezone } => {
            let tz = timezone
                .as_ref()
                .map(|t| t.as_str().to_string())
                .or_else(|| ctx.engine.settings.timezone.clone())
                .unwrap_or_else(|| "UTC".to_string());
            Some((cron.as_str().to_string(), tz))
        }
        _ => None,
    })
}

/// The first occurrence strictly after `after` (Unix ms), in time zone `tz`.
pub fn next_after(cron: &str, tz: &str, after: UnixMs) -> Result<Option<UnixMs>, String> {
    let cron = crate::validate::values::check_cron(cron)?;
    let zone = jiff::tz::TimeZone::get(tz).map_err(|e| format!("time zone `{tz}`: {e}"))?;
    let start = jiff::Timestamp::from_millisecond(after)
        .map_err(|e| e.to_string())?
        .to_zoned(zone);
    match cron.find_next_occurrence(&start, false) {
        Ok(z) => Ok(Some(z.timestamp().as_millisecond())),
        Err(_) => Ok(None),
    }
}

/// Makes sure every active schedule-triggered workflow has its next occurrence
/// stored (idempotent; run at worker start and after changes).
pub fn ensure(ctx: &mut Ctx<'_>) -> Result<usize, EngineError> {
    let overrides = super::Engine::overrides(ctx.conn)?;
    let ids: Vec<String> = ctx
        .engine
        .active_set(ctx.conn)?
        .iter()
        .filter(|p| matches!(p.workflow.trigger.kind, TriggerKind::Schedule { .. }))
        .filter(|p| super::Engine::runs(p, &overrides))
        .map(|p| p.id.clone())
        .collect();
    let mut scheduled = 0;
    for id in ids {
        let pending: bool = ctx
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM timers WHERE kind = 'cron' AND dedupe_key LIKE ?1)",
            )?
            .query_row(params![format!("cron:{id}:%")], |r| r.get(0))?;
        if pending {
            continue;
        }
        let last: Option<i64> = ctx
            .conn
            .prepare_cached("SELECT last_occurrence FROM schedule_state WHERE workflow_id = ?1")?
            .query_row(params![&id], |r| r.get(0))
            .optional()?;
        if plan_next(ctx, &id, last.unwrap_or(ctx.now))? {
            scheduled += 1;
        }
    }
    Ok(scheduled)
}

/// Stores the next occurrence after `after`; past ones collapse to the latest
/// missed occurrence, due now.
fn plan_next(ctx: &mut Ctx<'_>, workflow: &str, after: UnixMs) -> Result<bool, EngineError> {
    let Some((cron, tz)) = schedule_of(ctx, workflow)? else {
        return Ok(false);
    };
    let next = |t| next_after(&cron, &tz, t).map_err(EngineError::Invalid);
    // Only the latest missed occurrence matters. After a long stop it is looked
    // for in the last day first, so that a schedule of every few seconds does not
    // walk through every occurrence since (a weekly one finds none there and
    // walks its few from `after`).
    let horizon = ctx.now - LOOK_BACK_MS;
    let start = match next(horizon)? {
        Some(o) if after < horizon && o <= ctx.now => horizon,
        _ => after,
    };
    let Some(mut occurrence) = next(start)? else {
        return Ok(false);
    };
    let mut walked = 0;
    while occurrence <= ctx.now && walked < MAX_WALK {
        match next(occurrence)? {
            Some(n) if n <= ctx.now => occurrence = n,
            _ => break,
        }
        walked += 1;
    }
    if walked > 0 || start > after {
        tracing::info!(
            workflow,
            latest = occurrence,
            "missed schedule occurrences skipped; the latest runs now"
        );
    }
    let inserted = ctx
        .conn
        .prepare_cached(
            "INSERT INTO timers (kind, due_at, payload, dedupe_key) VALUES ('cron', ?1, ?2, ?3) \
             ON CONFLICT (dedupe_key) DO NOTHING",
        )?
        .execute(params![
            occurrence,
            json!({"workflow": workflow, "occurrence": occurrence}).to_string(),
            format!("cron:{workflow}:{occurrence}")
        ])?;
    ctx.fx.next_due = Some(ctx.fx.next_due.map_or(occurrence, |d| d.min(occurrence)));
    Ok(inserted > 0)
}

/// Fires one occurrence (its timer already taken): records it, starts the
/// workflow, and stores the next occurrence.
pub fn fire(ctx: &mut Ctx<'_>, workflow: &str, occurrence: UnixMs) -> Result<(), EngineError> {
    let Some((cron, tz)) = schedule_of(ctx, workflow)? else {
        return Ok(());
    };
    let newer = ctx
        .conn
        .prepare_cached(
            "INSERT INTO schedule_state (workflow_id, last_occurrence) VALUES (?1, ?2) \
             ON CONFLICT (workflow_id) DO UPDATE SET last_occurrence = excluded.last_occurrence \
             WHERE excluded.last_occurrence > schedule_state.last_occurrence",
        )?
        .execute(params![workflow, occurrence])?;
    if newer == 0 {
        // Fired already (by another worker): never twice.
        return Ok(());
    }
    // A later occurrence has passed too: this one was missed, and only the latest
    // missed one runs.
    let superseded = next_after(&cron, &tz, occurrence)
        .map_err(EngineError::Invalid)?
        .is_some_and(|n| n <= ctx.now);
    if superseded {
        tracing::info!(
            workflow,
            skipped = occurrence,
            "missed schedule occurrence skipped"
        );
    } else {
        // The ingest starts it only if it runs (not disabled by an override).
        let at = jiff::Timestamp::from_millisecond(occurrence)
            .map(|t| t.to_string())
            .unwrap_or_default();
        ingest(
            ctx,
            Event {
                kind: "schedule".into(),
                data: json!({"scheduled_at": at, "cron": cron, "timezone": tz}),
                workflow: Some(workflow.to_string()),
                ..Event::default()
            },
        )?;
    }
    plan_next(ctx, workflow, occurrence)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::next_after;

    fn ms(t: &str) -> i64 {
        t.parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .unwrap_or(0)
    }

    #[test]
    fn occurrences_follow_the_wall_clock_across_dst() {
        // 08:00 Berlin on Monday 2026-03-23 (CET, UTC+1) and Monday 2026-03-30
        // (CEST, UTC+2): a week apart on the wall clock, 167 hours apart in UTC.
        let first = next_after("0 8 * * 1", "Europe/Berlin", ms("2026-03-22T00:00:00Z"))
            .expect("cron")
            .expect("next");
        assert_eq!(first, ms("2026-03-23T07:00:00Z"));
        let second = next_after("0 8 * * 1", "Europe/Berlin", first)
            .expect("cron")
            .expect("next");
        assert_eq!(second, ms("2026-03-30T06:00:00Z"));
    }
}
