//! Operating on stored executions: listing, showing, retrying, cancelling, and the
//! per-workflow statistics `funnel workflows stats` shows.

use crate::store::UnixMs;
use crate::store::db::{Db, OptionalRow, params};
use serde::Serialize;
use serde_json::Value as Json;

use super::EngineError;
use super::run::{Ctx, Wake, advance, is_final};
use super::state::ExecState;

/// One execution, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ExecutionRow {
    pub id: String,
    pub workflow: String,
    pub version: String,
    pub status: String,
    pub contact: Option<String>,
    pub started_at: i64,
    pub completed_at: Option<i64>,
    pub error: Option<String>,
}

/// Filters for listing.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub workflow: Option<String>,
    pub status: Option<String>,
    pub limit: usize,
}

const COLUMNS: &str = "e.uid, e.workflow_id, e.version_hash, e.status, c.email, e.started_at, \
     e.completed_at, e.error";

fn row(r: crate::store::db::Row<'_>) -> Result<ExecutionRow, crate::store::StoreError> {
    Ok(ExecutionRow {
        id: r.get(0)?,
        workflow: r.get(1)?,
        version: r.get(2)?,
        status: r.get(3)?,
        contact: r.get(4)?,
        started_at: r.get(5)?,
        completed_at: r.get(6)?,
        error: r.get(7)?,
    })
}

/// The newest executions matching `f`. Each shape of filter reads its own
/// index from the newest end, so a page costs the page, not the history: a
/// workflow's by its (workflow, start) index, unless a status that few
/// executions have (running, waiting, failed) narrows more; a status alone by
/// the (status, last change) index.
pub fn list(conn: Db<'_>, f: &Filter) -> Result<Vec<ExecutionRow>, EngineError> {
    use crate::store::db::Value;
    let text = |s: &String| Value::Text(s.clone().into());
    let limit = Value::Int(i64::try_from(f.limit).unwrap_or(i64::MAX));
    let (filter, order, params) = match (&f.workflow, &f.status) {
        (None, None) => ("1 = 1", "e.id DESC", vec![limit]),
        (Some(w), None) => (
            "e.workflow_id = ?1",
            "e.started_at DESC, e.id DESC",
            vec![text(w), limit],
        ),
        (Some(w), Some(s)) if s == "completed" => (
            "e.workflow_id = ?1 AND e.status = ?2",
            "e.started_at DESC, e.id DESC",
            vec![text(w), text(s), limit],
        ),
        (Some(w), Some(s)) => (
            "e.status = ?1 AND e.workflow_id = ?2",
            "e.updated_at DESC, e.id DESC",
            vec![text(s), text(w), limit],
        ),
        (None, Some(s)) => (
            "e.status = ?1",
            "e.updated_at DESC, e.id DESC",
            vec![text(s), limit],
        ),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM executions e LEFT JOIN contacts c ON c.id = e.contact_id \
         WHERE {filter} ORDER BY {order} LIMIT ?{}",
        params.len()
    ))?;
    let rows = stmt.query_map(&crate::store::db::refs(&params), row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One step record.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct StepRow {
    pub step: String,
    pub attempt: u32,
    pub status: String,
    /// Absent when the step stored none; a stored JSON `null` stays `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub output: Option<Json>,
    pub error: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

/// A field that is there, `null` included (serde reads `null` as `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    <Json as serde::Deserialize>::deserialize(d).map(Some)
}

/// An execution with its steps and state.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ExecutionDetail {
    #[serde(flatten)]
    pub execution: ExecutionRow,
    pub trigger: Json,
    pub vars: Json,
    pub steps: Vec<StepRow>,
}

fn internal_id(conn: Db<'_>, uid: &str) -> Result<i64, EngineError> {
    conn.prepare_cached("SELECT id FROM executions WHERE uid = ?1")?
        .query_row(params![uid], |r| r.get(0))
        .optional()?
        .ok_or_else(|| EngineError::UnknownExecution(uid.to_string()))
}

/// The execution with this id (its uid).
pub fn show(conn: Db<'_>, uid: &str) -> Result<ExecutionDetail, EngineError> {
    let id = internal_id(conn, uid)?;
    let (execution, trigger, state): (ExecutionRow, String, String) = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, e.trigger_data, e.state FROM executions e \
             LEFT JOIN contacts c ON c.id = e.contact_id WHERE e.id = ?1"
        ))?
        .query_row(params![id], |r| Ok((row(r)?, r.get(8)?, r.get(9)?)))?;
    let mut stmt = conn.prepare_cached(
        "SELECT step_id, attempt, status, output, error, started_at, finished_at FROM step_runs \
         WHERE execution_id = ?1 ORDER BY id",
    )?;
    let steps = stmt
        .query_map(params![id], |r| {
            Ok(StepRow {
                step: r.get(0)?,
                attempt: r.get(1)?,
                status: r.get(2)?,
                output: r
                    .get::<Option<String>>(3)?
                    .and_then(|o| serde_json::from_str(&o).ok()),
                error: r.get(4)?,
                started_at: r.get(5)?,
                finished_at: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let vars = serde_json::from_str::<ExecState>(&state)
        .map(|s| Json::Object(s.vars))
        .unwrap_or(Json::Null);
    Ok(ExecutionDetail {
        execution,
        trigger: serde_json::from_str(&trigger).unwrap_or(Json::Null),
        vars,
        steps,
    })
}

/// Cancels a running or waiting execution: its timers and waits go, its status
/// becomes `cancelled`. Returns false if it had finished already.
pub fn cancel(ctx: &mut Ctx<'_>, uid: &str, actor: &str) -> Result<bool, EngineError> {
    let id = internal_id(ctx.conn, uid)?;
    let status: String = ctx
        .conn
        .prepare_cached("SELECT status FROM executions WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))?;
    if is_final(&status) {
        return Ok(false);
    }
    ctx.conn
        .prepare_cached(
            "UPDATE executions SET status = 'cancelled', updated_at = ?2, completed_at = ?2 WHERE id = ?1",
        )?
        .execute(params![id, ctx.now])?;
    ctx.conn
        .prepare_cached("DELETE FROM timers WHERE execution_id = ?1")?
        .execute(params![id])?;
    ctx.conn
        .prepare_cached("DELETE FROM event_waits WHERE execution_id = ?1")?
        .execute(params![id])?;
    audit(ctx, actor, "cancel", uid)?;
    let workflow: String = ctx
        .conn
        .prepare_cached("SELECT workflow_id FROM executions WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))?;
    super::run::release_queued(ctx, &workflow)?;
    Ok(true)
}

/// Runs a failed execution again from the step that failed, on the version it
/// started with. Returns its status afterwards.
pub fn retry(ctx: &mut Ctx<'_>, uid: &str, actor: &str) -> Result<&'static str, EngineError> {
    let id = internal_id(ctx.conn, uid)?;
    let (status, state): (String, String) = ctx
        .conn
        .prepare_cached("SELECT status, state FROM executions WHERE id = ?1")?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if status != "failed" {
        return Err(EngineError::Invalid(format!(
            "execution {uid} is {status}; only failed executions can be retried"
        )));
    }
    let mut state: ExecState =
        serde_json::from_str(&state).map_err(|e| EngineError::BadState(e.to_string()))?;
    let Some(step) = state
        .error
        .as_ref()
        .and_then(|e| e.get("step"))
        .and_then(Json::as_str)
        .map(String::from)
    else {
        return Err(EngineError::Invalid(format!(
            "execution {uid} failed before its first step (its trigger); start a new one instead"
        )));
    };
    state.error = None;
    state.fibers.clear();
    state.spawn(Some(step), None, None);
    let text = serde_json::to_string(&state).map_err(|e| EngineError::BadState(e.to_string()))?;
    ctx.conn
        .prepare_cached(
            "UPDATE executions SET status = 'running', state = ?2, error = NULL, completed_at = NULL, \
             updated_at = ?3 WHERE id = ?1",
        )?
        .execute(params![id, text, ctx.now])?;
    audit(ctx, actor, "retry", uid)?;
    advance(ctx, id, &Wake::Run)
}

fn audit(ctx: &Ctx<'_>, actor: &str, action: &str, uid: &str) -> Result<(), EngineError> {
    crate::audit::record(
        ctx.conn,
        actor,
        action,
        "execution",
        Some(uid),
        &serde_json::json!({}),
        ctx.now,
    )?;
    Ok(())
}

/// Statistics of one workflow's executions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub workflow: String,
    /// The runs counted started in `[since, until)` (Unix ms).
    pub since: UnixMs,
    pub until: UnixMs,
    pub executions: i64,
    /// Completed with every step succeeding.
    pub completed: i64,
    /// Completed, but a step failed and `on_error: continue` passed over it.
    pub completed_with_errors: i64,
    pub failed: i64,
    pub running: i64,
    /// Clean completions over finished executions (completed, with errors or
    /// not, and failed), 0 to 1.
    pub success_rate: Option<f64>,
    pub avg_ms: Option<f64>,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    /// Failed step records per step id.
    pub failures_by_step: Vec<(String, i64)>,
}

/// Counts, success rate, durations (of completed executions) and failures per
/// step, of the runs that started in `[since, until)`: a range of the index of
/// the workflow's runs by start, so the cost follows the window asked for, not
/// the workflow's whole history.
pub fn stats(
    conn: Db<'_>,
    workflow: &str,
    since: UnixMs,
    until: UnixMs,
) -> Result<Stats, EngineError> {
    let mut s = Stats {
        workflow: workflow.to_string(),
        since,
        until,
        ..Stats::default()
    };
    let mut counts = conn.prepare_cached(
        "SELECT status, error IS NOT NULL, count(*) FROM executions WHERE workflow_id = ?1 \
         AND started_at >= ?2 AND started_at < ?3 GROUP BY 1, 2",
    )?;
    for row in counts.query_map(params![workflow, since, until], |r| {
        Ok((r.get::<String>(0)?, r.get::<bool>(1)?, r.get::<i64>(2)?))
    })? {
        let (status, with_error, n) = row?;
        s.executions += n;
        match status.as_str() {
            "completed" if with_error => s.completed_with_errors += n,
            "completed" => s.completed += n,
            "failed" => s.failed += n,
            "running" | "waiting" | "queued" => s.running += n,
            _ => {}
        }
    }
    let finished = s.completed + s.completed_with_errors + s.failed;
    if finished > 0 {
        s.success_rate = Some(s.completed as f64 / finished as f64);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT completed_at - started_at FROM executions WHERE workflow_id = ?1 \
         AND started_at >= ?2 AND started_at < ?3 AND status = 'completed' \
         AND completed_at IS NOT NULL",
    )?;
    let mut durations: Vec<i64> = stmt
        .query_map(params![workflow, since, until], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    durations.sort_unstable();
    if !durations.is_empty() {
        let n = durations.len();
        s.avg_ms = Some(durations.iter().sum::<i64>() as f64 / n as f64);
        s.p50_ms = Some(crate::analytics::workflows::nearest_rank(&durations, 0.50));
        s.p95_ms = Some(crate::analytics::workflows::nearest_rank(&durations, 0.95));
    }
    let mut fails = conn.prepare_cached(
        "SELECT r.step_id, count(*) FROM step_runs r JOIN executions e ON e.id = r.execution_id \
         WHERE e.workflow_id = ?1 AND e.started_at >= ?2 AND e.started_at < ?3 \
         AND r.status = 'failed' GROUP BY r.step_id ORDER BY 2 DESC, 1",
    )?;
    s.failures_by_step = fails
        .query_map(params![workflow, since, until], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::fixture::{self, DAY};
    use crate::store::StoreError;
    use crate::store::test_db::TestDb;

    /// Only the runs started in the window count: three old runs, a failed
    /// one among them, are left out; two of the recent ones completed (in 1 s
    /// and 5 s), one failed at its `send` step.
    #[test]
    fn stats_count_the_window_only() {
        let db = TestDb::open();
        let now = 500 * DAY;
        db.transaction(|db| {
            for n in 0..3 {
                let old = fixture::run(db, "w", None, now - 40 * DAY + n, "failed")?;
                db.execute(
                    "INSERT INTO step_runs (execution_id, step_id, attempt, status, started_at) \
                     VALUES (?1, 'old_step', 1, 'failed', ?2)",
                    params![old, now - 40 * DAY],
                )?;
            }
            fixture::run(db, "w", None, now - DAY, "completed")?;
            let slow = fixture::run(db, "w", None, now - DAY + 1, "completed")?;
            db.execute(
                "UPDATE executions SET completed_at = started_at + 5000 WHERE id = ?1",
                params![slow],
            )?;
            let failed = fixture::run(db, "w", None, now - DAY + 2, "failed")?;
            db.execute(
                "INSERT INTO step_runs (execution_id, step_id, attempt, status, started_at) \
                 VALUES (?1, 'send', 1, 'failed', ?2)",
                params![failed, now - DAY],
            )?;
            fixture::run(db, "other", None, now - DAY, "completed")?;
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let s = stats(db.db(), "w", now - 30 * DAY, now).expect("stats");
        assert_eq!((s.executions, s.completed, s.failed), (3, 2, 1));
        assert_eq!((s.p50_ms, s.p95_ms), (Some(1000), Some(5000)));
        assert_eq!(s.failures_by_step, vec![("send".to_string(), 1)]);
        let all = stats(db.db(), "w", 0, now).expect("stats");
        assert_eq!(all.executions, 6);
    }
}
