//! The daemon's own routes: `/healthz` (the process answers), `/readyz` (the store
//! answers too), `/metrics` (Prometheus text format: requests and latencies by
//! route, executions waiting and running, timers due, emails waiting), and `/`, a
//! JSON list of the live sites.
//!
//! The gauges read from the store look only at unfinished work (through the
//! indexes on status and due time): their cost follows the backlog, never the
//! stored history.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Daemon;
use crate::store::db::params;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Debug, Default)]
struct Series {
    by_status: BTreeMap<u16, u64>,
    /// Counts per bucket (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request counts and latencies by route: since the start (for `/metrics`), and
/// per minute until [`super::rollup`] stores them.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<&'static str, Series>>,
    minutes: Mutex<BTreeMap<(i64, &'static str), Minute>>,
}

/// One route's requests in one minute.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Minute {
    pub requests: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub latency_ms_sum: f64,
    pub latency_ms_max: f64,
}

impl Metrics {
    pub fn observe(&self, route: &'static str, status: StatusCode, took: Duration) {
        let Ok(mut routes) = self.routes.lock() else {
            return;
        };
        let s = routes.entry(route).or_default();
        *s.by_status.entry(status.as_u16()).or_default() += 1;
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            s.buckets[i] += 1;
        }
        s.count += 1;
        s.sum += secs;
        drop(routes);
        let minute = crate::store::now_ms().div_euclid(60_000) * 60_000;
        if let Ok(mut minutes) = self.minutes.lock() {
            let m = minutes.entry((minute, route)).or_default();
            m.requests += 1;
            if status.is_client_error() {
                m.client_errors += 1;
            } else if status.is_server_error() {
                m.server_errors += 1;
            }
            let ms = secs * 1000.0;
            m.latency_ms_sum += ms;
            m.latency_ms_max = m.latency_ms_max.max(ms);
        }
    }

    /// Takes the per-minute counts of minutes before `before` (Unix ms), or all
    /// of them: what the next rollup stores.
    pub fn take_minutes(&self, before: Option<i64>) -> Vec<(i64, &'static str, Minute)> {
        let Ok(mut minutes) = self.minutes.lock() else {
            return Vec::new();
        };
        let keep = match before {
            Some(b) => minutes.split_off(&(b, "")),
            None => BTreeMap::new(),
        };
        let taken = std::mem::replace(&mut *minutes, keep);
        taken.into_iter().map(|((m, r), v)| (m, r, v)).collect()
    }

    fn render(&self, out: &mut String) {
        let Ok(routes) = self.routes.lock() else {
            return;
        };
        out.push_str(
            "# HELP funnel_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE funnel_http_requests_total counter\n");
        for (route, s) in routes.iter() {
            for (status, n) in &s.by_status {
                let _ = writeln!(
                    out,
                    "funnel_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP funnel_http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE funnel_http_request_duration_seconds histogram\n");
        for (route, s) in routes.iter() {
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "funnel_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "funnel_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 funnel_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 funnel_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                s.count, s.sum, s.count
            );
        }
    }
}

/// The metrics route a request to a site counts under.
pub fn site_route(path: &str) -> &'static str {
    if path.starts_with("/f/") {
        "form"
    } else if path == "/t" {
        "beacon"
    } else if path.starts_with("/u/") {
        "unsubscribe"
    } else if path.starts_with("/o/") || path.starts_with("/c/") || path.starts_with("/e/") {
        "email_link"
    } else {
        "page"
    }
}

/// The metrics route a request to the daemon's own host counts under.
pub fn own_route(path: &str) -> &'static str {
    match path {
        "/" => "index",
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        p if p.starts_with("/hooks/") => "hook",
        p if p.starts_with("/api/") => "api",
        p if p.starts_with("/u/") => "unsubscribe",
        p if p.starts_with("/o/") || p.starts_with("/c/") || p.starts_with("/e/") => "email_link",
        _ => "other",
    }
}

/// `/`: the live sites and where they are.
pub async fn index(State(d): State<Arc<Daemon>>) -> Response {
    let sites: Vec<_> = d
        .sites()
        .iter()
        .map(|s| json!({"name": s.name, "url": format!("{}/", s.url)}))
        .collect();
    axum::Json(json!({ "sites": sites })).into_response()
}

pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

pub async fn readyz(State(d): State<Arc<Daemon>>) -> Response {
    ready(&d).await
}

pub async fn metrics(State(d): State<Arc<Daemon>>) -> Response {
    render_metrics(&d).await
}

async fn ready(d: &Arc<Daemon>) -> Response {
    let store = d.worker().store().clone();
    match store
        .read_async(|db| db.query_row("SELECT 1", params![], |r| r.get::<i64>(0)))
        .await
    {
        Ok(_) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the store does not answer");
            crate::web::json_error(StatusCode::SERVICE_UNAVAILABLE, "the store does not answer")
        }
    }
}

/// The store's gauges: (executions by unfinished status, timers due, emails waiting).
pub type Gauges = (Vec<(String, i64)>, i64, i64);

/// The store's gauges at `now`.
/// Unfinished executions by status. The condition is the partial index's own,
/// so the count reads that index (the unfinished rows) and not every execution
/// ever run: with `status = ?` it scanned the table, 0.66 s a minute at 600,000.
const UNFINISHED_BY_STATUS: &str = "SELECT status, count(*) FROM executions \
     WHERE status IN ('running', 'waiting', 'queued') GROUP BY status";

pub fn gauges(db: crate::store::db::Db<'_>, now: i64) -> Result<Gauges, crate::store::StoreError> {
    let mut by_status: Vec<(String, i64)> = ["running", "waiting", "queued"]
        .into_iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    let mut counts = db.prepare_cached(UNFINISHED_BY_STATUS)?;
    let mut rows = counts.query(params![])?;
    while let Some(row) = rows.next()? {
        let (status, n): (String, i64) = (row.get(0)?, row.get(1)?);
        if let Some(slot) = by_status.iter_mut().find(|(s, _)| *s == status) {
            slot.1 = n;
        }
    }
    let timers: i64 = db
        .prepare_cached("SELECT count(*) FROM timers WHERE due_at <= ?1")?
        .query_row(params![now], |r| r.get(0))?;
    let emails: i64 = db
        .prepare_cached("SELECT count(*) FROM outbox WHERE status = 'pending'")?
        .query_row(params![], |r| r.get(0))?;
    Ok((by_status, timers, emails))
}

async fn render_metrics(d: &Arc<Daemon>) -> Response {
    let now = d.worker().now();
    let store = d.worker().store().clone();
    let gauges = store.read_async(move |db| gauges(db, now)).await;
    let mut out = String::with_capacity(4096);
    d.metrics.render(&mut out);
    match gauges {
        Ok((by_status, timers, emails)) => {
            out.push_str("# HELP funnel_executions Unfinished executions, by status.\n# TYPE funnel_executions gauge\n");
            for (status, n) in by_status {
                let _ = writeln!(out, "funnel_executions{{status=\"{status}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "# HELP funnel_timers_due Timers due and not yet taken.\n# TYPE funnel_timers_due gauge\nfunnel_timers_due {timers}\n\
                 # HELP funnel_emails_pending Emails waiting in the outbox.\n# TYPE funnel_emails_pending gauge\nfunnel_emails_pending {emails}"
            );
        }
        Err(e) => tracing::warn!(error = %e, "metrics: the store does not answer"),
    }
    let _ = writeln!(
        out,
        "# HELP funnel_uptime_seconds Time since the daemon started.\n# TYPE funnel_uptime_seconds gauge\nfunnel_uptime_seconds {}",
        d.started.elapsed().as_secs()
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    /// The gauges count unfinished executions from the partial index, whatever
    /// the history.
    #[test]
    fn unfinished_counts_read_the_partial_index() {
        let conn = crate::store::sqlite::in_memory().expect("store");
        let plan: Vec<String> = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                super::UNFINISHED_BY_STATUS
            ))
            .expect("plan")
            .query_map([], |r| r.get::<_, String>(3))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        let text = plan.join(" | ");
        let reads: Vec<&String> = plan.iter().filter(|l| l.contains("executions")).collect();
        assert!(!reads.is_empty(), "{text}");
        assert!(
            reads
                .iter()
                .all(|l| l.contains("INDEX executions_unfinished")),
            "{text}"
        );
    }
}
