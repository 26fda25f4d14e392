//! The backend's status over a window (the seed's 4-hourly block): workflow
//! executions and their success rate and time, API response time, the
//! store's job time, email delivery, and the product metrics (workflow
//! adoption, open and click rates, contact data quality, peak hourly
//! executions), each beside the seed's target.
//!
//! The figures come from the daemon's per-minute rollups: `metrics_minutes`
//! (requests and latency per route, and the store's jobs as route `store`)
//! and `gauges_minutes`, which [`record_minute`] fills with what finished in
//! each minute. A report reads a window's minutes, so its cost follows the
//! window, not the store's history; engagement reads the window's sends by
//! their sending time (an index), and data quality counts contacts by status.

use serde::Serialize;

use crate::store::db::{Db, params};
use crate::store::{StoreError, UnixMs};

const MINUTE: i64 = 60_000;

/// The gauges [`record_minute`] keeps for a minute.
const FINISHED: &[&str] = &[
    "finished_completed",
    "finished_failed",
    "execution_ms_sum",
    "emails_sent",
    "emails_bounced",
    "emails_failed",
];

/// What finished in the minute starting at `minute`: executions completed and
/// failed with their total duration, emails sent, bounced and given up, in the
/// order of `FINISHED`. Only reads: the daemon computes it on a read connection
/// and hands the figures to the writer ([`store_minute`]), which a post may be
/// waiting for.
pub fn minute_figures(db: Db<'_>, minute: UnixMs) -> Result<[i64; 6], StoreError> {
    let end = minute + MINUTE;
    let (completed, failed, ms): (i64, i64, i64) = db
        .prepare_cached(
            "SELECT coalesce(sum(CASE WHEN status = 'completed' THEN 1 ELSE 0 END), 0), \
             coalesce(sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0), \
             coalesce(sum(CASE WHEN status IN ('completed', 'failed') \
             THEN completed_at - started_at ELSE 0 END), 0) \
             FROM executions WHERE completed_at >= ?1 AND completed_at < ?2",
        )?
        .query_row(params![minute, end], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let count = |sql: &str| -> Result<i64, StoreError> {
        db.prepare_cached(sql)?
            .query_row(params![minute, end], |r| r.get(0))
    };
    let sent = count("SELECT count(*) FROM email_sends WHERE sent_at >= ?1 AND sent_at < ?2")?;
    let bounced =
        count("SELECT count(*) FROM email_sends WHERE bounced_at >= ?1 AND bounced_at < ?2")?;
    // A message given up is dated by its last planned retry.
    let failed_emails = count(
        "SELECT count(*) FROM outbox WHERE status = 'failed' \
         AND next_attempt_at >= ?1 AND next_attempt_at < ?2",
    )?;
    Ok([completed, failed, ms, sent, bounced, failed_emails])
}

/// Stores a minute's [`minute_figures`]; storing a minute again replaces them.
pub fn store_minute(db: Db<'_>, minute: UnixMs, figures: &[i64; 6]) -> Result<(), StoreError> {
    let mut put = db.prepare_cached(
        "INSERT INTO gauges_minutes (minute, gauge, value) VALUES (?1, ?2, ?3) \
         ON CONFLICT (minute, gauge) DO UPDATE SET value = excluded.value",
    )?;
    for (gauge, value) in FINISHED.iter().zip(figures) {
        put.execute(params![minute, *gauge, value])?;
    }
    Ok(())
}

/// Stores what finished in the minute starting at `minute` (both steps above,
/// on one connection).
pub fn record_minute(db: Db<'_>, minute: UnixMs) -> Result<(), StoreError> {
    let figures = minute_figures(db, minute)?;
    store_minute(db, minute, &figures)
}

/// A figure beside its target.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Measure {
    /// None when the window holds nothing to measure.
    pub value: Option<f64>,
    pub target: &'static str,
    /// Whether the value meets the target (None without a value).
    pub met: Option<bool>,
}

impl Measure {
    fn new(value: Option<f64>, target: &'static str, meets: impl Fn(f64) -> bool) -> Measure {
        Measure {
            value,
            target,
            met: value.map(meets),
        }
    }
}

/// The status of a window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    pub since: UnixMs,
    pub until: UnixMs,
    /// Minutes of the window the daemon's rollups cover.
    pub minutes_recorded: i64,
    pub executions: i64,
    pub executions_per_minute: f64,
    pub execution_success_rate: Measure,
    pub execution_seconds_avg: Measure,
    pub api_requests: i64,
    pub api_response_ms_avg: Measure,
    pub availability: Measure,
    pub store_jobs: i64,
    pub store_ms_avg: Measure,
    pub emails_sent: i64,
    pub email_delivery_rate: Measure,
    pub open_rate: Measure,
    pub click_rate: Measure,
    pub sites: usize,
    pub sites_with_workflows: usize,
    pub workflow_adoption: Measure,
    pub contacts: i64,
    pub contact_data_quality: Measure,
    pub peak_executions_per_hour: Measure,
}

/// The status of `[since, until)`. `adoption` is (sites with a workflow
/// started from one of their components, sites), from the workspace.
pub fn report(
    db: Db<'_>,
    since: UnixMs,
    until: UnixMs,
    adoption: (usize, usize),
) -> Result<Status, StoreError> {
    let from = since.div_euclid(MINUTE) * MINUTE;
    let mut sums = std::collections::HashMap::new();
    let mut per_hour: std::collections::BTreeMap<i64, i64> = Default::default();
    let mut minutes = std::collections::BTreeSet::new();
    {
        let mut stmt = db.prepare_cached(
            "SELECT minute, gauge, value FROM gauges_minutes \
             WHERE minute >= ?1 AND minute < ?2",
        )?;
        let rows = stmt.query_map(params![from, until], |r| {
            Ok((r.get::<i64>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?))
        })?;
        for row in rows {
            let (minute, gauge, value) = row?;
            if !FINISHED.contains(&gauge.as_str()) {
                continue;
            }
            minutes.insert(minute);
            if gauge.starts_with("finished_") {
                *per_hour.entry(minute.div_euclid(3_600_000)).or_default() += value;
            }
            *sums.entry(gauge).or_insert(0i64) += value;
        }
    }
    let g = |name: &str| sums.get(name).copied().unwrap_or(0);
    let (completed, failed) = (g("finished_completed"), g("finished_failed"));
    let executions = completed + failed;
    let window_minutes = ((until - from) as f64 / MINUTE as f64).max(1.0);
    let (api_requests, api_ms, all_requests, server_errors, store_jobs, store_ms) = db
        .prepare_cached(
            "SELECT coalesce(sum(CASE WHEN route = 'api' THEN requests ELSE 0 END), 0), \
             coalesce(sum(CASE WHEN route = 'api' THEN latency_ms_sum ELSE 0 END), 0), \
             coalesce(sum(CASE WHEN route <> 'store' THEN requests ELSE 0 END), 0), \
             coalesce(sum(CASE WHEN route <> 'store' THEN server_errors ELSE 0 END), 0), \
             coalesce(sum(CASE WHEN route = 'store' THEN requests ELSE 0 END), 0), \
             coalesce(sum(CASE WHEN route = 'store' THEN latency_ms_sum ELSE 0 END), 0) \
             FROM metrics_minutes WHERE minute >= ?1 AND minute < ?2",
        )?
        .query_row(params![from, until], |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<f64>(1)?,
                r.get::<i64>(2)?,
                r.get::<i64>(3)?,
                r.get::<i64>(4)?,
                r.get::<f64>(5)?,
            ))
        })?;
    let (sent, opened, clicked): (i64, i64, i64) = db
        .prepare_cached(
            "SELECT count(*), \
             coalesce(sum(CASE WHEN opened_at IS NOT NULL THEN 1 ELSE 0 END), 0), \
             coalesce(sum(CASE WHEN clicked_at IS NOT NULL THEN 1 ELSE 0 END), 0) \
             FROM email_sends WHERE sent_at >= ?1 AND sent_at < ?2",
        )?
        .query_row(params![since, until], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    // Valid contact information: reachable (never bounced or complained)
    // and named.
    let (contacts, valid): (i64, i64) = db
        .prepare_cached(
            "SELECT count(*), coalesce(sum(CASE WHEN status NOT IN ('bounced', 'complained') \
             AND name IS NOT NULL AND name <> '' THEN 1 ELSE 0 END), 0) \
             FROM contacts WHERE status <> 'erased'",
        )?
        .query_row(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let ratio = |num: i64, den: i64| (den > 0).then(|| num as f64 / den as f64);
    let rolled_sent = g("emails_sent");
    // Bounces in the window may be of sends before it: never below zero.
    let delivered = (rolled_sent - g("emails_bounced")).max(0);
    let quality = ratio(valid, contacts);
    Ok(Status {
        since,
        until,
        minutes_recorded: i64::try_from(minutes.len()).unwrap_or(i64::MAX),
        executions,
        executions_per_minute: executions as f64 / window_minutes,
        execution_success_rate: Measure::new(ratio(completed, executions), ">99%", |v| v > 0.99),
        execution_seconds_avg: Measure::new(
            ratio(g("execution_ms_sum"), executions).map(|ms| ms / 1000.0),
            "<2 s",
            |v| v < 2.0,
        ),
        api_requests,
        api_response_ms_avg: Measure::new(
            (api_requests > 0).then(|| api_ms / api_requests as f64),
            "<300 ms",
            |v| v < 300.0,
        ),
        availability: Measure::new(
            ratio(all_requests - server_errors, all_requests),
            ">99.9%",
            |v| v > 0.999,
        ),
        store_jobs,
        store_ms_avg: Measure::new(
            (store_jobs > 0).then(|| store_ms / store_jobs as f64),
            "<100 ms",
            |v| v < 100.0,
        ),
        emails_sent: rolled_sent,
        email_delivery_rate: Measure::new(
            ratio(delivered, rolled_sent + g("emails_failed")),
            ">99%",
            |v| v > 0.99,
        ),
        open_rate: Measure::new(ratio(opened, sent), ">25%", |v| v > 0.25),
        click_rate: Measure::new(ratio(clicked, sent), ">5%", |v| v > 0.05),
        sites: adoption.1,
        sites_with_workflows: adoption.0,
        workflow_adoption: Measure::new(
            ratio(
                i64::try_from(adoption.0).unwrap_or(0),
                i64::try_from(adoption.1).unwrap_or(0),
            ),
            ">80%",
            |v| v > 0.8,
        ),
        contacts,
        contact_data_quality: Measure::new(quality, ">95%", |v| v > 0.95),
        // The seed's capacity figure: what the window's busiest hour asked of
        // the backend, not a pass or fail (a quiet week is not a failure).
        peak_executions_per_hour: Measure {
            value: per_hour.values().max().map(|v| *v as f64),
            target: "capacity of 10,000+ per hour",
            met: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TestDb;

    const H: i64 = 3_600_000;

    /// A hand-computed window: 20 rows of rollups and raw data, each figure
    /// worked out by hand below.
    #[test]
    fn a_hand_computed_window() {
        let db = TestDb::open();
        let t0 = 1_000 * H; // an hour boundary
        db.transaction(|db| {
            let gauge = |m: i64, g: &str, v: i64| {
                db.execute(
                    "INSERT INTO gauges_minutes (minute, gauge, value) VALUES (?1, ?2, ?3)",
                    params![m, g, v],
                )
                .map(|_| ())
            };
            // Hour 0: 3 completed + 1 failed; hour 1: 5 completed. 9 in all.
            gauge(t0, "finished_completed", 3)?;
            gauge(t0, "finished_failed", 1)?;
            gauge(t0 + MINUTE, "execution_ms_sum", 4_000)?;
            gauge(t0 + H, "finished_completed", 5)?;
            gauge(t0 + H, "execution_ms_sum", 5_000)?;
            // Sent 10, bounced 1, failed 1: delivered 9 of 11.
            gauge(t0, "emails_sent", 10)?;
            gauge(t0 + H, "emails_bounced", 1)?;
            gauge(t0 + H, "emails_failed", 1)?;
            // Not a finished figure: ignored.
            gauge(t0, "timers_due", 99)?;
            // Outside the window: ignored.
            gauge(t0 + 3 * H, "finished_completed", 50)?;
            let route = |m: i64, r: &str, n: i64, errors: i64, ms: f64| {
                db.execute(
                    "INSERT INTO metrics_minutes (minute, route, requests, client_errors, \
                     server_errors, latency_ms_sum, latency_ms_max) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?5)",
                    params![m, r, n, errors, ms],
                )
                .map(|_| ())
            };
            // API: 4 requests, 200 ms in all → 50 ms; with the form's 6, 10
            // requests and 1 server error → 90% available.
            route(t0, "api", 4, 0, 200.0)?;
            route(t0, "form", 6, 1, 60.0)?;
            // Store: 8 jobs, 4 ms → 0.5 ms.
            route(t0, "store", 8, 0, 4.0)?;
            // Sends in the window: 4, of which 2 opened and 1 clicked.
            for (n, opened, clicked) in [(1, true, true), (2, true, false), (3, false, false), (4, false, false)] {
                db.execute(
                    "INSERT INTO email_sends (uid, template_id, status, sent_at, opened_at, clicked_at, created_at) \
                     VALUES (?1, 'welcome', 'sent', ?2, ?3, ?4, ?2)",
                    params![format!("s{n}"), t0 + n, opened.then_some(t0 + 10), clicked.then_some(t0 + 20)],
                )?;
            }
            // Contacts: 4 kept; 1 bounced, 1 unnamed → 2 of 4 valid; the
            // erased one is not counted.
            for (n, name, status) in [(1, Some("Ada"), "active"), (2, Some("Bo"), "bounced"), (3, None, "active"), (4, Some("Cy"), "unsubscribed"), (5, Some("Di"), "erased")] {
                db.execute(
                    "INSERT INTO contacts (uid, email, name, status, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, 0, 0)",
                    params![format!("c{n}"), format!("c{n}@example.org"), name, status],
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let s = report(db.db(), t0, t0 + 2 * H, (2, 3)).expect("report");
        assert_eq!(s.executions, 9);
        assert_eq!(s.minutes_recorded, 3);
        assert!((s.executions_per_minute - 9.0 / 120.0).abs() < 1e-9);
        assert_eq!(s.execution_success_rate.value, Some(8.0 / 9.0));
        assert_eq!(s.execution_success_rate.met, Some(false));
        assert_eq!(s.execution_seconds_avg.value, Some(1.0));
        assert_eq!(s.execution_seconds_avg.met, Some(true));
        assert_eq!(s.api_requests, 4);
        assert_eq!(s.api_response_ms_avg.value, Some(50.0));
        assert_eq!(s.availability.value, Some(0.9));
        assert_eq!(s.store_jobs, 8);
        assert_eq!(s.store_ms_avg.value, Some(0.5));
        assert_eq!(s.emails_sent, 10);
        assert_eq!(s.email_delivery_rate.value, Some(9.0 / 11.0));
        assert_eq!(s.open_rate.value, Some(0.5));
        assert_eq!(s.click_rate.value, Some(0.25));
        assert_eq!(s.workflow_adoption.value, Some(2.0 / 3.0));
        assert_eq!(s.contacts, 4);
        assert_eq!(s.contact_data_quality.value, Some(0.5));
        assert_eq!(s.peak_executions_per_hour.value, Some(5.0));
        assert_eq!(s.peak_executions_per_hour.met, None);
    }

    #[test]
    fn a_recorded_minute_counts_what_finished_in_it_and_replaces_itself() {
        let db = TestDb::open();
        let m = 500 * MINUTE;
        db.transaction(|db| {
            db.execute(
                "INSERT INTO workflow_versions (hash, workflow_id, definition, created_at) \
                 VALUES ('h', 'w', '{}', 0)",
                params![],
            )?;
            for (n, status, start, end) in [
                (1, "completed", m - 5_000, Some(m + 1_000)),
                (2, "failed", m, Some(m + 59_999)),
                (3, "completed", m, Some(m + MINUTE)),
                (4, "running", m, None),
                (5, "cancelled", m - 86_400_000, Some(m + 2_000)),
            ] {
                db.execute(
                    "INSERT INTO executions (uid, workflow_id, version_hash, status, started_at, updated_at, completed_at) \
                     VALUES (?1, 'w', 'h', ?2, ?3, ?3, ?4)",
                    params![format!("e{n}"), status, start, end],
                )?;
            }
            record_minute(db, m)?;
            record_minute(db, m)?;
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let value = |g: &str| -> i64 {
            db.db()
                .query_row(
                    "SELECT value FROM gauges_minutes WHERE minute = ?1 AND gauge = ?2",
                    params![m, g],
                    |r| r.get(0),
                )
                .expect(g)
        };
        assert_eq!(value("finished_completed"), 1);
        assert_eq!(value("finished_failed"), 1);
        assert_eq!(value("execution_ms_sum"), 6_000 + 59_999);
    }
}
