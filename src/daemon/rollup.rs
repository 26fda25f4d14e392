//! Per-minute rollups of the daemon's metrics, kept in the store for reports:
//! each route's requests, errors and latency per minute (`metrics_minutes`, the
//! store's jobs as route `store`), the store's gauges sampled at each minute's
//! end and what finished in each minute (`gauges_minutes`, see `status`). Written
//! once a minute in one transaction, and at shutdown, never per request; a
//! minute written twice (a restart within it) adds up.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::Daemon;
use crate::store::StoreError;
use crate::store::db::params;

/// Stores the finished minutes' counts (all of them when `all`) and the gauges.
pub async fn flush(d: &Daemon, all: bool) -> Result<usize, StoreError> {
    let now = d.worker().now();
    let minute = crate::store::now_ms().div_euclid(60_000) * 60_000;
    let rows = d.metrics.take_minutes((!all).then_some(minute));
    let n = rows.len();
    // The store's jobs since the last flush, counted in the minute just
    // ended (at shutdown: the minute running).
    let days = d
        .worker()
        .store()
        .read_async(move |db| crate::analytics::workflows::pending(db, now, 1))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "workflow days not rolled up");
            None
        });
    let site_days = d
        .worker()
        .store()
        .read_async(move |db| crate::analytics::site_days::pending(db, now, 1))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "site days not rolled up");
            None
        });
    // What finished in the last two minutes (the one before covers a flush that
    // came late; recording a minute again replaces it), and the gauges: read on a
    // read connection, so the writer, which posts wait for, only stores them.
    let finished = if all {
        [minute - 60_000, minute]
    } else {
        [minute - 120_000, minute - 60_000]
    };
    let figures = d
        .worker()
        .store()
        .read_async(move |db| {
            let mut minutes = Vec::with_capacity(finished.len());
            for m in finished {
                minutes.push((m, crate::status::minute_figures(db, m)?));
            }
            Ok((minutes, super::health::gauges(db, now)?))
        })
        .await?;
    let (jobs, micros, max_micros) = crate::store::timing::take();
    let store_minute = if all { minute } else { minute - 60_000 };
    d.worker()
        .store()
        .write_background(move |db| {
            let mut put = db.prepare_cached(
                "INSERT INTO metrics_minutes (minute, route, requests, client_errors, server_errors, \
                 latency_ms_sum, latency_ms_max) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (minute, route) DO UPDATE SET \
                 requests = metrics_minutes.requests + excluded.requests, \
                 client_errors = metrics_minutes.client_errors + excluded.client_errors, \
                 server_errors = metrics_minutes.server_errors + excluded.server_errors, \
                 latency_ms_sum = metrics_minutes.latency_ms_sum + excluded.latency_ms_sum, \
                 latency_ms_max = CASE WHEN excluded.latency_ms_max > metrics_minutes.latency_ms_max \
                 THEN excluded.latency_ms_max ELSE metrics_minutes.latency_ms_max END",
            )?;
            for (m, route, v) in &rows {
                put.execute(params![
                    m,
                    *route,
                    i64::try_from(v.requests).unwrap_or(i64::MAX),
                    i64::try_from(v.client_errors).unwrap_or(i64::MAX),
                    i64::try_from(v.server_errors).unwrap_or(i64::MAX),
                    v.latency_ms_sum,
                    v.latency_ms_max
                ])?;
            }
            if jobs > 0 {
                put.execute(params![
                    store_minute,
                    "store",
                    i64::try_from(jobs).unwrap_or(i64::MAX),
                    0i64,
                    0i64,
                    micros as f64 / 1000.0,
                    max_micros as f64 / 1000.0
                ])?;
            }
            let (minutes, (by_status, timers, emails)) = &figures;
            for (m, values) in minutes {
                crate::status::store_minute(db, *m, values)?;
            }
            let mut gauge = db.prepare_cached(
                "INSERT INTO gauges_minutes (minute, gauge, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (minute, gauge) DO UPDATE SET value = excluded.value",
            )?;
            for (status, v) in by_status {
                gauge.execute(params![minute, format!("executions_{status}"), *v])?;
            }
            gauge.execute(params![minute, "timers_due", timers])?;
            gauge.execute(params![minute, "emails_pending", emails])?;
            Ok(())
        })
        .await?;
    // A day that closed is rolled up once: computed on a read connection
    // above, only its rows written here, apart from the minute's figures so
    // a failure here loses none of them (the next minute tries again).
    if days.is_some() || site_days.is_some() {
        let stored = d
            .worker()
            .store()
            .write_background(move |db| {
                if let Some((rows, _, until)) = &days {
                    crate::analytics::workflows::store_days(db, rows, *until)?;
                }
                if let Some((rows, _, until)) = &site_days {
                    crate::analytics::site_days::store_days(db, rows, *until)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = stored {
            tracing::warn!(error = %e, "daily rollups not stored; the next minute tries again");
        }
    }
    Ok(n)
}

/// Flushes at every minute's turn until the daemon's handle is dropped.
pub fn spawn(d: &Arc<Daemon>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(d);
    tokio::spawn(async move {
        loop {
            let into = crate::store::now_ms().rem_euclid(60_000);
            let wait = u64::try_from(60_000 - into).unwrap_or(60_000) + 50;
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let Some(d) = weak.upgrade() else { return };
            if let Err(e) = flush(&d, false).await {
                tracing::warn!(error = %e, "metrics rollup not stored");
            }
        }
    })
}

/// One stored minute of one route.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub minute: i64,
    pub route: String,
    pub requests: i64,
    pub client_errors: i64,
    pub server_errors: i64,
    pub latency_ms_avg: f64,
    pub latency_ms_max: f64,
}

/// The stored minutes at or after `since`, oldest first, at most `limit`.
pub fn read(
    db: crate::store::db::Db<'_>,
    since: i64,
    limit: usize,
) -> Result<Vec<Row>, StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT minute, route, requests, client_errors, server_errors, latency_ms_sum, latency_ms_max \
         FROM metrics_minutes WHERE minute >= ?1 ORDER BY minute, route LIMIT ?2",
    )?;
    let rows = stmt.query_map(
        params![since, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            let requests: i64 = r.get(2)?;
            let sum: f64 = r.get(5)?;
            Ok(Row {
                minute: r.get(0)?,
                route: r.get(1)?,
                requests,
                client_errors: r.get(3)?,
                server_errors: r.get(4)?,
                latency_ms_avg: if requests > 0 {
                    sum / requests as f64
                } else {
                    0.0
                },
                latency_ms_max: r.get(6)?,
            })
        },
    )?;
    rows.collect()
}
