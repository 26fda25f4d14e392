//! `funnel report --html`: over generated traffic in the demo workspace's
//! store (benches/support/analytics_data.rs, 120 days), the report is one
//! file with a policy that forbids every request, no script, and user text
//! escaped (a page path and a clicked element carry markup). Then headless
//! Chromium opens it (tests/browser/report.mjs): nothing is requested, and a
//! screenshot of each chart shows its marks drawn in the chart colours.
//! Chromium is Debian's, driven by playwright-core from
//! `$FUNNEL_TEST_BROWSER_TOOLS` (`.ci/test` installs both); without them the
//! browser half skips with a message, except under CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{demo, run};

#[path = "../../benches/support/analytics_data.rs"]
mod analytics_data;

const HOSTILE_PAGE: &str = "/<script>alert(1)</script>";
const HOSTILE_ELEMENT: &str = "<img src=x onerror=alert(2)>";

fn browser_tools() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("FUNNEL_TEST_BROWSER_TOOLS")?);
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    (dir.join("node_modules/playwright-core").is_dir() && Path::new(&chromium).exists())
        .then_some(dir)
}

/// Fills the workspace's SQLite store with generated traffic and two events
/// whose text is markup.
fn fill(root: &Path) {
    let out = run(&["db", "migrate"], root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut conn = rusqlite::Connection::open(root.join(".funnel/funnel.db")).expect("store");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let made = analytics_data::generate(
        &mut conn,
        &analytics_data::Spec {
            events: 60_000,
            days: 120,
            now,
            seed: 11,
        },
    );
    assert!(made.won > 0 && made.contacts > 0, "{made:?}");
    let at = now - 3_600_000;
    conn.execute(
        "INSERT INTO analytics_events (site_id, page, component_id, type, visitor, data, occurred_at) \
         VALUES ('demo', ?1, NULL, 'view', 'hostile', '{}', ?2)",
        rusqlite::params![HOSTILE_PAGE, at],
    )
    .expect("hostile view");
    // Clicked often enough to be the home page hero's most clicked element,
    // which the report lists.
    let click =
        serde_json::json!({"x": 5, "y": 5, "w": 100, "element": HOSTILE_ELEMENT}).to_string();
    for n in 0..2000 {
        conn.execute(
            "INSERT INTO analytics_events (site_id, page, component_id, type, visitor, data, occurred_at) \
             VALUES ('demo', '/', 'hero', 'click', 'hostile', ?1, ?2)",
            rusqlite::params![click, at + n],
        )
        .expect("hostile click");
    }
    conn.execute(
        "UPDATE component_analytics SET interactions = interactions + 2000 \
         WHERE site_id = 'demo' AND component_id = 'hero' AND day = ?1",
        rusqlite::params![at / 86_400_000],
    )
    .expect("rollup");
}

#[test]
fn the_html_report_stands_alone_escapes_and_draws_its_charts() {
    if crate::backend::is_postgres() {
        // The figures are checked on PostgreSQL by the analytics modules'
        // unit tests; the generated store here is SQLite's file.
        eprintln!("skipped on PostgreSQL: runs in the SQLite pass");
        return;
    }
    let d = demo();
    fill(d.path());
    let html_path = d.path().join("out/report.html");
    std::fs::create_dir_all(d.path().join("out")).expect("out");
    let out = run(
        &["report", "--html", "out/report.html", "--since", "60d"],
        d.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&html_path).expect("report written");
    assert!(html.contains(
        r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">"#
    ));
    // Attributes that load something can only come from the template (the
    // engine escapes every quote of user text), and it writes none.
    for forbidden in [
        "<script", "src=\"", "href=\"", "src='", "href='", "url(", "@import", "<link", "<iframe",
        "<img", "<object",
    ] {
        assert!(
            !html.to_lowercase().contains(forbidden),
            "the report holds `{forbidden}`"
        );
    }
    assert!(
        html.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "the hostile element is listed, escaped"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            || html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
    );
    for section in [
        "id=\"site-demo\"",
        "id=\"funnels\"",
        "id=\"workflows\"",
        "id=\"roi\"",
        "id=\"forecast\"",
        "id=\"advice\"",
    ] {
        assert!(html.contains(section), "no {section}");
    }
    assert!(html.contains("december-dispatch"), "the campaign's ROI row");
    assert!(
        !html.contains("NaN") && !html.contains("inf<"),
        "no broken number"
    );
    // The same run again replaces the file whole.
    let again = run(
        &["report", "--html", "out/report.html", "--since", "60d"],
        d.path(),
    );
    assert!(again.status.success());
    let names: Vec<String> = std::fs::read_dir(d.path().join("out"))
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["report.html".to_string()],
        "no temporary file left"
    );

    let Some(tools) = browser_tools() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI needs Chromium and playwright-core (FUNNEL_TEST_BROWSER_TOOLS): .ci/test installs them"
        );
        eprintln!(
            "skipped the browser half: no Chromium or playwright-core (set FUNNEL_TEST_BROWSER_TOOLS)"
        );
        return;
    };
    let script = tools.join("report.mjs");
    std::fs::copy(
        crate::support::repo_root().join("tests/browser/report.mjs"),
        &script,
    )
    .expect("check script");
    let shots = d.path().join("shots");
    std::fs::create_dir_all(&shots).expect("shots");
    let out = Command::new("node")
        .arg(&script)
        .arg(&html_path)
        .arg(&shots)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the check's JSON");
    assert_eq!(
        seen["requests"],
        serde_json::json!([]),
        "the report requested: {}",
        seen["requests"]
    );
    assert_eq!(seen["console_errors"], serde_json::json!([]));
    let charts = seen["charts"].as_array().expect("charts");
    let kinds: std::collections::BTreeSet<&str> =
        charts.iter().filter_map(|c| c["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["bars", "heat", "hbars", "lines"].into_iter().collect(),
        "every kind of chart"
    );
    for c in charts {
        assert!(
            c["palette_pixels"].as_u64().unwrap_or(0) > 40,
            "chart {} ({}) drew no marks: {c}",
            c["index"],
            c["title"]
        );
    }
    assert!(charts.len() >= 8, "{} charts", charts.len());
    if std::env::var_os("FUNNEL_TEST_KEEP_REPORT").is_some() {
        let _ = std::fs::copy(&html_path, "/tmp/report-kept.html");
        let _ = std::fs::copy(shots.join("report.png"), "/tmp/report-kept.png");
        eprintln!("{seen}");
    }
}
