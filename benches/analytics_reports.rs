//! Benchmark: every analytics report over a store of 10,000,000 site events
//! (release build, SQLite), with the contacts, runs, emails and deals that
//! traffic brings (benches/support/analytics_data.rs): 180 days of growing
//! traffic to the demo site. Each report is asked for the last 30 days (the
//! forecast for its 12 weeks), three times; the table gives the median and
//! the slowest. The target is under 1 s each.
//!
//! `cargo bench --bench analytics_reports` (`-- --events N --days D --seed S
//! --keep FILE`: with `--keep`, an existing file is reused rather than
//! generated again). Figures are in docs/analytics.md.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::path::{Path, PathBuf};
use std::time::Instant;

use funnel::store::db::Db;

#[path = "support/analytics_data.rs"]
mod analytics_data;
use analytics_data::{DAY, Spec, generate};

fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, f64, T) {
    let mut ms = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f());
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let out = last.expect("at least one run");
    (ms[ms.len() / 2], ms[ms.len() - 1], out)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench analytics_reports` to measure");
        return;
    }
    let events: u64 = flag(&args, "--events").unwrap_or(10_000_000);
    let days: i64 = flag(&args, "--days").unwrap_or(180);
    let seed: u64 = flag(&args, "--seed").unwrap_or(42);
    let keep: Option<PathBuf> = flag::<String>(&args, "--keep").map(PathBuf::from);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ws = funnel::workspace::load(repo, repo).expect("demo workspace");
    // A fixed "now" keeps a kept store's reports comparable between runs.
    let now = 20_790 * DAY + 12 * 3_600_000;
    let scratch = tempfile::tempdir().expect("temp dir");
    let path = keep.unwrap_or_else(|| scratch.path().join("analytics.db"));
    if !path.exists() {
        let mut conn = rusqlite::Connection::open(&path).expect("open");
        funnel::store::migrations::sqlite_migrate(&mut conn).expect("migrate");
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
            .expect("pragmas");
        let t = Instant::now();
        let made = generate(
            &mut conn,
            &Spec {
                events,
                days,
                now,
                seed,
            },
        );
        println!(
            "generated in {:.0} s (seed {seed}): {} events in {} visits, {} contacts, {} runs, {} emails, {} deals won",
            t.elapsed().as_secs_f64(),
            made.events,
            made.visits,
            made.contacts,
            made.runs,
            made.sends,
            made.won
        );
        conn.execute_batch("ANALYZE").expect("analyze");
    }
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA cache_size = -200000;")
        .expect("pragmas");
    let db = Db::Sqlite(&conn);
    let count: i64 = conn
        .query_row("SELECT count(*) FROM analytics_events", [], |r| r.get(0))
        .expect("count");
    println!("store: {count} site events, {}", path.display());
    let t = Instant::now();
    let days_rolled = funnel::analytics::workflows::catch_up(db, now, 400).expect("roll-up");
    println!(
        "first roll-up of workflow days: {days_rolled} days in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let days_rolled = funnel::analytics::site_days::catch_up(db, now, 400).expect("roll-up");
    println!(
        "first roll-up of site days: {days_rolled} days in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );

    let since = now - 30 * DAY;
    let (window, cost) = (30 * DAY, 0.002);
    let funnel_def = ws
        .config
        .as_ref()
        .and_then(|c| c.value.analytics.as_ref())
        .and_then(|a| a.funnels.get("pricing-to-sales"))
        .cloned()
        .expect("the demo funnel");
    let runs = 3;
    let mut rows: Vec<(String, f64, f64, String)> = Vec::new();
    let mut row = |name: &str, (median, max, what): (f64, f64, String)| {
        rows.push((name.to_string(), median, max, what));
    };
    row(
        "analytics site",
        time(runs, || {
            let r = funnel::analytics::site_report(db, "demo", since, now).expect("site");
            format!("{} visitors, {} views", r.visitors, r.page_views)
        }),
    );
    row(
        "analytics funnel",
        time(runs, || {
            let r =
                funnel::analytics::funnels::report(db, "pricing-to-sales", &funnel_def, since, now)
                    .expect("funnel");
            format!(
                "{} at the first step",
                r.steps.first().map_or(0, |s| s.contacts)
            )
        }),
    );
    row(
        "analytics workflows",
        time(runs, || {
            let r = funnel::analytics::workflows::report(db, None, since, now).expect("workflows");
            format!("{} workflow days", r.len())
        }),
    );
    row(
        "analytics roi",
        time(runs, || {
            let r = funnel::analytics::roi::report(db, since, now, window, cost).expect("roi");
            format!("{} deals won, {} rows", r.won_deals, r.rows.len())
        }),
    );
    row(
        "analytics heatmap",
        time(runs, || {
            let r = funnel::analytics::heatmap::report(db, "demo", since, now).expect("heat");
            format!("{} clicks", r.iter().map(|p| p.clicks).sum::<u64>())
        }),
    );
    row(
        "analytics paths",
        time(runs, || {
            let r = funnel::analytics::paths::report(db, "demo", since, now).expect("paths");
            format!("{} conversions", r.conversions)
        }),
    );
    row(
        "analytics paths (exits)",
        time(runs, || {
            let r = funnel::analytics::paths::exits(db, "demo", since, now).expect("exits");
            format!("{} exits", r.iter().map(|e| e.exits).sum::<u64>())
        }),
    );
    row(
        "analytics forecast",
        time(runs, || {
            let r = funnel::analytics::forecast::report(db, None, now, window).expect("forecast");
            format!("{} workflows", r.workflows.len())
        }),
    );
    row(
        "optimize",
        time(runs, || {
            let scope = funnel::optimize::Scope::default();
            let r = funnel::optimize::advise(db, &ws, &scope, since, now).expect("optimize");
            format!("{} pieces of advice", r.len())
        }),
    );
    row(
        "report --html (all of it)",
        time(runs, || {
            let g = funnel::report::gather(db, &ws, since, now).expect("gather");
            let html = funnel::report::render(&g).expect("render");
            format!("{} KiB", html.len() / 1024)
        }),
    );
    println!();
    println!(
        "{:<26} {:>10} {:>10}  result",
        "report (last 30 days)", "median ms", "max ms"
    );
    for (name, median, max, what) in rows {
        println!("{name:<26} {median:>10.1} {max:>10.1}  {what}");
    }
}
