//! Workflow analytics per day: the runs that finished on each UTC day, how
//! many completed and failed, the success rate, the exact median and 95th
//! percentile of their durations (nearest rank), and the failed step attempts
//! per step.
//!
//! A day is rolled up once it is over (ten minutes after midnight, so runs
//! committing late are in) into `workflow_days`, from the day's finished
//! executions read through the `completed_at` index: the work is the day's
//! runs, done once. A report reads the stored days and computes the days not
//! rolled up yet (today, and any the daemon has not reached) the same way, so
//! its figures are the same whether or not a day is stored.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::db::{Db, OptionalRow, params};
use crate::store::{StoreError, UnixMs};

pub const DAY_MS: i64 = 86_400_000;
/// How long after midnight a day is closed.
pub(crate) const CLOSE_AFTER: i64 = 10 * 60_000;
const MARK: &str = "workflow_days";

/// One workflow's finished runs on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    pub workflow: String,
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    pub date: String,
    pub runs: i64,
    pub completed: i64,
    pub failed: i64,
    pub success_rate: f64,
    pub avg_ms: f64,
    pub duration_ms_sum: i64,
    pub p50_ms: i64,
    pub p95_ms: i64,
    /// Failed attempts per step.
    pub step_failures: BTreeMap<String, i64>,
}

fn date_of(day: i64) -> String {
    jiff::Timestamp::from_millisecond(day * DAY_MS)
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The value at nearest rank `p` (0 < p ≤ 1) of ascending `sorted`.
pub fn nearest_rank(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Every workflow's row for `day`, from the raw executions and step runs.
pub fn compute_day(db: Db<'_>, day: i64) -> Result<Vec<Day>, StoreError> {
    let (from, to) = (day * DAY_MS, (day + 1) * DAY_MS);
    let mut by_workflow: BTreeMap<String, (i64, i64, Vec<i64>)> = BTreeMap::new();
    {
        let mut stmt = db.prepare_cached(
            "SELECT workflow_id, status, completed_at - started_at FROM executions \
             WHERE completed_at >= ?1 AND completed_at < ?2 \
             AND status IN ('completed', 'failed', 'cancelled')",
        )?;
        let rows = stmt.query_map(params![from, to], |r| {
            Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?))
        })?;
        for row in rows {
            let (workflow, status, ms) = row?;
            let e = by_workflow.entry(workflow).or_default();
            match status.as_str() {
                "completed" => e.0 += 1,
                "failed" => e.1 += 1,
                _ => {}
            }
            e.2.push(ms.max(0));
        }
    }
    let mut failures: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    {
        let mut stmt = db.prepare_cached(
            "SELECT e.workflow_id, s.step_id, count(*) FROM executions e \
             JOIN step_runs s ON s.execution_id = e.id \
             WHERE e.completed_at >= ?1 AND e.completed_at < ?2 \
             AND e.status IN ('completed', 'failed', 'cancelled') AND s.status = 'failed' \
             GROUP BY e.workflow_id, s.step_id",
        )?;
        let rows = stmt.query_map(params![from, to], |r| {
            Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?))
        })?;
        for row in rows {
            let (workflow, step, n) = row?;
            failures.entry(workflow).or_default().insert(step, n);
        }
    }
    Ok(by_workflow
        .into_iter()
        .map(|(workflow, (completed, failed, mut durations))| {
            durations.sort_unstable();
            let runs = i64::try_from(durations.len()).unwrap_or(i64::MAX);
            let sum: i64 = durations.iter().sum();
            Day {
                step_failures: failures.remove(&workflow).unwrap_or_default(),
                workflow,
                day,
                date: date_of(day),
                runs,
                completed,
                failed,
                success_rate: completed as f64 / runs.max(1) as f64,
                avg_ms: sum as f64 / runs.max(1) as f64,
                duration_ms_sum: sum,
                p50_ms: nearest_rank(&durations, 0.50),
                p95_ms: nearest_rank(&durations, 0.95),
            }
        })
        .collect())
}

/// The last day rolled up, if any.
fn mark(db: Db<'_>) -> Result<Option<i64>, StoreError> {
    mark_of(db, MARK)
}

/// The last day the roll-up `name` stored (`rollup_marks`).
pub(crate) fn mark_of(db: Db<'_>, name: &str) -> Result<Option<i64>, StoreError> {
    db.prepare_cached("SELECT done_until FROM rollup_marks WHERE name = ?1")?
        .query_row(params![name], |r| r.get(0))
        .optional()
}

/// Moves the mark of roll-up `name` to `until`, never back: two processes
/// rolling up the same day write the same rows.
pub(crate) fn advance_mark(db: Db<'_>, name: &str, until: i64) -> Result<(), StoreError> {
    db.prepare_cached(
        "INSERT INTO rollup_marks (name, done_until) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET done_until = CASE \
         WHEN excluded.done_until > rollup_marks.done_until THEN excluded.done_until \
         ELSE rollup_marks.done_until END",
    )?
    .execute(params![name, until])?;
    Ok(())
}

/// The last closed day at `now`.
pub(crate) fn last_closed(now: UnixMs) -> i64 {
    (now - CLOSE_AFTER).div_euclid(DAY_MS) - 1
}

/// The closed days not rolled up yet (at most `max_days`, oldest first),
/// computed on a read connection so the writer is never held by it: their
/// rows, and the first and last day they cover (an empty range when nothing
/// ever finished: the mark then starts at the last closed day). None when no
/// day waits.
pub fn pending(
    db: Db<'_>,
    now: UnixMs,
    max_days: i64,
) -> Result<Option<(Vec<Day>, i64, i64)>, StoreError> {
    let closed = last_closed(now);
    let start = match mark(db)? {
        Some(done) => done + 1,
        None => {
            let first: Option<i64> = db
                .prepare_cached("SELECT min(completed_at) FROM executions")?
                .query_row(params![], |r| r.get(0))?;
            match first {
                Some(ms) => ms.div_euclid(DAY_MS).min(closed + 1),
                // Nothing ever finished: the mark starts at the last closed day.
                None => return Ok(Some((Vec::new(), closed + 1, closed))),
            }
        }
    };
    let end = closed.min(start + max_days.max(1) - 1);
    if end < start {
        return Ok(None);
    }
    let mut rows = Vec::new();
    for day in start..=end {
        rows.extend(compute_day(db, day)?);
    }
    Ok(Some((rows, start, end)))
}

/// Stores rolled-up `rows` and moves the mark to `until` (never back: two
/// processes rolling up the same day write the same rows).
pub fn store_days(db: Db<'_>, rows: &[Day], until: i64) -> Result<(), StoreError> {
    let mut put = db.prepare_cached(
        "INSERT INTO workflow_days (workflow_id, day, runs, completed, failed, duration_ms_sum, \
         p50_ms, p95_ms, step_failures) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (workflow_id, day) DO UPDATE SET runs = excluded.runs, \
         completed = excluded.completed, failed = excluded.failed, \
         duration_ms_sum = excluded.duration_ms_sum, p50_ms = excluded.p50_ms, \
         p95_ms = excluded.p95_ms, step_failures = excluded.step_failures",
    )?;
    for d in rows {
        put.execute(params![
            d.workflow,
            d.day,
            d.runs,
            d.completed,
            d.failed,
            d.duration_ms_sum,
            d.p50_ms,
            d.p95_ms,
            serde_json::to_string(&d.step_failures).unwrap_or_else(|_| "{}".into())
        ])?;
    }
    advance_mark(db, MARK, until)
}

/// [`pending`] then [`store_days`] on one connection. Returns the days rolled up.
pub fn catch_up(db: Db<'_>, now: UnixMs, max_days: i64) -> Result<i64, StoreError> {
    match pending(db, now, max_days)? {
        Some((rows, start, end)) => {
            store_days(db, &rows, end)?;
            Ok(end - start + 1)
        }
        None => Ok(0),
    }
}

/// The days from `since` to `now`, oldest first, one row per workflow and
/// day (only `workflow`'s when given): stored days read, the rest computed.
pub fn report(
    db: Db<'_>,
    workflow: Option<&str>,
    since: UnixMs,
    now: UnixMs,
) -> Result<Vec<Day>, StoreError> {
    let first = since.div_euclid(DAY_MS);
    let today = now.div_euclid(DAY_MS);
    let done = mark(db)?.unwrap_or(first - 1);
    let mut out = Vec::new();
    {
        const COLUMNS: &str = "SELECT workflow_id, day, runs, completed, failed, duration_ms_sum, \
             p50_ms, p95_ms, step_failures FROM workflow_days WHERE day >= ?1 AND day <= ?2";
        // No workflow named: every one (`<> ''`: no workflow id is empty).
        let (sql, one) = match workflow {
            Some(w) => (
                format!("{COLUMNS} AND workflow_id = ?3 ORDER BY day, workflow_id"),
                w,
            ),
            None => (
                format!("{COLUMNS} AND workflow_id <> ?3 ORDER BY day, workflow_id"),
                "",
            ),
        };
        let mut stmt = db.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![first, done, one], |r| {
            let runs: i64 = r.get(2)?;
            let completed: i64 = r.get(3)?;
            let sum: i64 = r.get(5)?;
            let failures: String = r.get(8)?;
            let day: i64 = r.get(1)?;
            Ok(Day {
                workflow: r.get(0)?,
                day,
                date: date_of(day),
                runs,
                completed,
                failed: r.get(4)?,
                success_rate: completed as f64 / runs.max(1) as f64,
                avg_ms: sum as f64 / runs.max(1) as f64,
                duration_ms_sum: sum,
                p50_ms: r.get(6)?,
                p95_ms: r.get(7)?,
                step_failures: serde_json::from_str(&failures).unwrap_or_default(),
            })
        })?;
        for row in rows {
            out.push(row?);
        }
    }
    for day in (done + 1).max(first)..=today {
        out.extend(
            compute_day(db, day)?
                .into_iter()
                .filter(|d| workflow.is_none_or(|w| d.workflow == w)),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TestDb;

    const STATUSES: [&str; 5] = ["completed", "completed", "failed", "cancelled", "waiting"];

    /// Random executions over `days` days from day 20,000, with failed and
    /// succeeded step attempts.
    fn generated(db: &TestDb, seed: u64, n: usize) {
        let mut rng = crate::rng::Rng::new(seed);
        db.transaction(|db| {
            db.execute(
                "INSERT INTO workflow_versions (hash, workflow_id, definition, created_at) \
                 VALUES ('h', 'w', '{}', 0)",
                params![],
            )?;
            for i in 0..n {
                let workflow = ["welcome", "follow-up", "digest"][rng.below(3) as usize];
                let status = STATUSES[rng.below(5) as usize];
                let start = 20_000 * DAY_MS + i64::try_from(rng.below(5 * DAY_MS as u64)).unwrap_or(0);
                let ms = i64::try_from(rng.below(90_000)).unwrap_or(0);
                let end = (status != "waiting").then_some(start + ms);
                let id: i64 = db.query_row(
                    "INSERT INTO executions (uid, workflow_id, version_hash, status, started_at, \
                     updated_at, completed_at) VALUES (?1, ?2, 'h', ?3, ?4, ?4, ?5) RETURNING id",
                    params![format!("e{i}"), workflow, status, start, end],
                    |r| r.get(0),
                )?;
                for step in ["save", "mail", "notify"] {
                    let failed = rng.below(4) == 0;
                    db.execute(
                        "INSERT INTO step_runs (execution_id, step_id, attempt, status, started_at) \
                         VALUES (?1, ?2, 1, ?3, ?4)",
                        params![id, step, if failed { "failed" } else { "completed" }, start],
                    )?;
                }
            }
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
    }

    /// The same figures by plain SQL, one query per figure.
    fn naive(
        db: Db<'_>,
        workflow: &str,
        day: i64,
    ) -> (i64, i64, i64, i64, i64, i64, BTreeMap<String, i64>) {
        let (from, to) = (day * DAY_MS, (day + 1) * DAY_MS);
        let one = |sql: &str| -> i64 {
            db.query_row(sql, params![workflow, from, to], |r| r.get(0))
                .expect(sql)
        };
        let finished = "workflow_id = ?1 AND completed_at >= ?2 AND completed_at < ?3 \
                        AND status IN ('completed', 'failed', 'cancelled')";
        let runs = one(&format!("SELECT count(*) FROM executions WHERE {finished}"));
        let completed = one(&format!(
            "SELECT count(*) FROM executions WHERE {finished} AND status = 'completed'"
        ));
        let failed = one(&format!(
            "SELECT count(*) FROM executions WHERE {finished} AND status = 'failed'"
        ));
        let sum = one(&format!(
            "SELECT coalesce(sum(completed_at - started_at), 0) FROM executions WHERE {finished}"
        ));
        let rank = |p: f64| -> i64 {
            let k = ((p * runs as f64).ceil() as i64).max(1) - 1;
            db.query_row(
                &format!(
                    "SELECT completed_at - started_at FROM executions WHERE {finished} \
                     ORDER BY 1 LIMIT 1 OFFSET ?4"
                ),
                params![workflow, from, to, k],
                |r| r.get(0),
            )
            .expect("rank")
        };
        let mut failures = BTreeMap::new();
        let mut stmt = db
            .prepare(&format!(
                "SELECT s.step_id, count(*) FROM step_runs s JOIN executions e ON e.id = s.execution_id \
                 WHERE e.{} AND s.status = 'failed' GROUP BY s.step_id",
                finished.replace("AND ", "AND e.")
            ))
            .expect("prepare");
        for row in stmt
            .query_map(params![workflow, from, to], |r| {
                Ok((r.get::<String>(0)?, r.get::<i64>(1)?))
            })
            .expect("query")
        {
            let (step, n) = row.expect("row");
            failures.insert(step, n);
        }
        (
            runs,
            completed,
            failed,
            sum,
            rank(0.5),
            rank(0.95),
            failures,
        )
    }

    fn check_against_naive(db: Db<'_>, rows: &[Day]) {
        assert!(!rows.is_empty());
        for d in rows {
            let (runs, completed, failed, sum, p50, p95, failures) = naive(db, &d.workflow, d.day);
            assert_eq!(
                (
                    d.runs,
                    d.completed,
                    d.failed,
                    d.duration_ms_sum,
                    d.p50_ms,
                    d.p95_ms
                ),
                (runs, completed, failed, sum, p50, p95),
                "{} on {}",
                d.workflow,
                d.date
            );
            assert_eq!(d.step_failures, failures, "{} on {}", d.workflow, d.date);
        }
        // Every (workflow, day) with finished runs has its row.
        let total: i64 = rows.iter().map(|d| d.runs).sum();
        let all: i64 = db
            .query_row(
                "SELECT count(*) FROM executions WHERE completed_at >= ?1 AND completed_at < ?2 \
                 AND status IN ('completed', 'failed', 'cancelled')",
                params![20_000 * DAY_MS, 20_010 * DAY_MS],
                |r| r.get(0),
            )
            .expect("all");
        assert_eq!(total, all);
    }

    #[test]
    fn daily_figures_equal_plain_sql_computed_or_rolled_up() {
        let db = TestDb::open();
        generated(&db, 7, 600);
        let since = 20_000 * DAY_MS;
        // Before any roll-up: every day computed.
        let now = 20_003 * DAY_MS + 3_600_000;
        let live = report(db.db(), None, since, now + 7 * DAY_MS).expect("report");
        check_against_naive(db.db(), &live);
        // Three days rolled up, the rest computed: the same figures.
        let rolled = db
            .transaction(|db| catch_up(db, now, 400))
            .expect("catch up");
        assert_eq!(rolled, 3);
        let mixed = report(db.db(), None, since, now + 7 * DAY_MS).expect("report");
        assert_eq!(live, mixed);
        // Rolling up again changes nothing; one workflow's rows alone.
        assert_eq!(
            db.transaction(|db| catch_up(db, now, 400)).expect("again"),
            0
        );
        let one = report(db.db(), Some("digest"), since, now + 7 * DAY_MS).expect("report");
        assert!(one.iter().all(|d| d.workflow == "digest"));
        assert_eq!(
            one,
            mixed
                .iter()
                .filter(|d| d.workflow == "digest")
                .cloned()
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_hand_computed_day() {
        let db = TestDb::open();
        let day = 20_100;
        let t = day * DAY_MS;
        db.transaction(|db| {
            db.execute(
                "INSERT INTO workflow_versions (hash, workflow_id, definition, created_at) \
                 VALUES ('h', 'w', '{}', 0)",
                params![],
            )?;
            // Durations 1, 2, 3, 4 and 10 s: p50 3 s, p95 10 s; 3 completed,
            // 1 failed, 1 cancelled; one run still waiting; one finished the
            // day after.
            for (n, status, secs, end_day) in [
                (1, "completed", 1, day),
                (2, "completed", 2, day),
                (3, "failed", 3, day),
                (4, "cancelled", 4, day),
                (5, "completed", 10, day),
                (6, "waiting", 0, day),
                (7, "completed", 5, day + 1),
            ] {
                let start = end_day * DAY_MS + 3_600_000;
                let end = (status != "waiting").then_some(start + secs * 1000);
                db.execute(
                    "INSERT INTO executions (uid, workflow_id, version_hash, status, started_at, \
                     updated_at, completed_at) VALUES (?1, 'w', 'h', ?2, ?3, ?3, ?4)",
                    params![format!("x{n}"), status, start, end],
                )?;
            }
            db.execute(
                "INSERT INTO step_runs (execution_id, step_id, attempt, status, started_at) \
                 SELECT id, 'charge', 1, 'failed', 0 FROM executions WHERE uid IN ('x3', 'x5')",
                params![],
            )?;
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let rows = report(db.db(), Some("w"), t, t + 3_600_000).expect("report");
        assert_eq!(rows.len(), 1);
        let d = &rows[0];
        assert_eq!((d.runs, d.completed, d.failed), (5, 3, 1));
        assert_eq!((d.p50_ms, d.p95_ms), (3_000, 10_000));
        assert_eq!(d.duration_ms_sum, 20_000);
        assert!((d.success_rate - 0.6).abs() < 1e-12);
        assert_eq!(d.step_failures.get("charge"), Some(&2));
        assert_eq!(d.date, "2025-01-12");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let d = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
        assert_eq!(nearest_rank(&d, 0.5), 50);
        assert_eq!(nearest_rank(&d, 0.95), 100);
        assert_eq!(nearest_rank(&[7], 0.95), 7);
        assert_eq!(nearest_rank(&[], 0.5), 0);
        assert_eq!(nearest_rank(&[1, 2, 3], 0.5), 2);
    }
}
