//! `funnel status` after a real daemon took form posts and API requests and
//! stopped: its figures equal plain SQL over the raw rows (executions, emails)
//! and the requests made, from the rollups the daemon stored.

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::daemon::up;
use crate::daemon_api::api;
use crate::support::{api_token, demo, json_out, run};

fn scalar(d: &std::path::Path, sql: &str) -> i64 {
    crate::backend::scalar(d, sql, funnel::db_params![])
}

#[test]
fn the_status_block_matches_the_raw_rows() {
    let dir = demo();
    let d = dir.path();
    let token = api_token(d, "st", "viewer");
    let mut u = up(d);
    for n in 0..4 {
        assert_eq!(u.post_form(&format!("status{n}@example.org")), 303);
    }
    for _ in 0..5 {
        let (status, _) = api(&u, "GET", "/api/workflows", Some(&token), None);
        assert_eq!(status, 200);
    }
    // The posts' executions run until their first wait; give them time.
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(
        d,
        "SELECT count(*) FROM executions WHERE status = 'running'",
    ) > 0
    {
        assert!(Instant::now() < deadline, "executions still running");
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = u.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while u.child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let s: Json = json_out(&["status", "--since", "1h", "--format", "json"], d);
    let finished = scalar(
        d,
        "SELECT count(*) FROM executions WHERE status IN ('completed', 'failed') AND completed_at IS NOT NULL",
    );
    let completed = scalar(
        d,
        "SELECT count(*) FROM executions WHERE status = 'completed'",
    );
    assert_eq!(s["executions"], finished, "{s:#}");
    if finished > 0 {
        let rate = s["execution_success_rate"]["value"].as_f64().expect("rate");
        assert!((rate - completed as f64 / finished as f64).abs() < 1e-9);
    }
    assert_eq!(s["api_requests"], 5, "{s:#}");
    assert!(s["api_response_ms_avg"]["value"].as_f64().is_some());
    assert!(s["store_jobs"].as_i64().is_some_and(|n| n > 0), "{s:#}");
    let sent = scalar(
        d,
        "SELECT count(*) FROM email_sends WHERE sent_at IS NOT NULL",
    );
    assert_eq!(s["emails_sent"], sent);
    let contacts = scalar(d, "SELECT count(*) FROM contacts WHERE status <> 'erased'");
    assert_eq!(s["contacts"], contacts);
    // The demo's one site has workflows started from its components.
    assert_eq!(s["sites"], 1);
    assert_eq!(s["sites_with_workflows"], 1);
    // The same runs, per workflow and day.
    let days: Json = json_out(&["analytics", "workflows", "--format", "json"], d);
    let runs: i64 = days
        .as_array()
        .expect("days")
        .iter()
        .filter_map(|d| d["runs"].as_i64())
        .sum();
    let all_finished = scalar(
        d,
        "SELECT count(*) FROM executions WHERE status IN ('completed', 'failed', 'cancelled')",
    );
    assert_eq!(runs, all_finished, "{days:#}");
    let table = String::from_utf8_lossy(&run(&["analytics", "workflows"], d).stdout).to_string();
    assert!(
        all_finished == 0 || table.contains("runs per day"),
        "{table}"
    );
    let text = String::from_utf8_lossy(&run(&["status"], d).stdout).to_string();
    assert!(text.starts_with("BACKEND STATUS ["), "{text}");
    for label in [
        "Workflow Executions:",
        "API Response Time:",
        "Database Performance:",
        "Email Delivery Rate:",
        "Workflow Adoption: 1 of 1 sites",
        "CRM Data Quality:",
    ] {
        assert!(text.contains(label), "no `{label}` in:\n{text}");
    }
}

#[test]
fn a_bad_window_is_refused_with_the_forms_it_takes() {
    let dir = demo();
    let out = run(&["status", "--since", "yesterdayish"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("24h"));
}
