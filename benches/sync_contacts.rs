//! Benchmark: `funnel sync` of many changed contacts between a laptop's
//! SQLite store and a hub store (release build). Generates N contacts on the
//! laptop (the triggers stamp them), syncs them to the hub (all new there),
//! then changes every contact's name on the laptop and syncs again: the
//! second sync is "N changed contacts". Rounds go through the same code as
//! `funnel sync` and `POST /api/sync` (`sync::session::run` and `serve`), with
//! the hub in this process, so the figures are the stores' work without HTTP.
//!
//! `cargo bench --bench sync_contacts` (`-- --contacts N --page P --postgres --keep`);
//! with `--postgres` the hub is the real PostgreSQL (`FUNNEL_TEST_PG`, default
//! `postgres://root@127.0.0.1:5432/test`) in a schema of its own, dropped at the end unless `--keep`. Figures are
//! in docs/sync.md.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::time::Instant;

use funnel::model::config::Synchronous;
use funnel::store::db::params;
use funnel::store::{SqliteStore, Store, StoreLocation};
use funnel::sync::session::{self, LocalHub};

fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench sync_contacts` to measure");
        return;
    }
    let n: i64 = flag(&args, "--contacts").unwrap_or(1_000_000);
    let page: usize = flag(&args, "--page").unwrap_or(session::DEFAULT_PAGE);
    let dir = tempfile::tempdir().expect("tempdir");
    let laptop: Store = SqliteStore::open(&dir.path().join("laptop.db"), Synchronous::Normal)
        .expect("laptop store")
        .into();
    let postgres = args.iter().any(|a| a == "--postgres");
    let schema = format!("bench_sync_{}", std::process::id());
    let hub = if postgres {
        let url = std::env::var("FUNNEL_TEST_PG")
            .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into());
        let sep = if url.contains('?') { '&' } else { '?' };
        Store::open_blocking(&StoreLocation::Postgres {
            url: format!("{url}{sep}options=-c%20search_path%3D{schema}"),
        })
        .expect("hub on PostgreSQL")
    } else {
        SqliteStore::open(&dir.path().join("hub.db"), Synchronous::Normal)
            .expect("hub store")
            .into()
    };
    println!(
        "{n} contacts, rounds of {page} changes each way, hub: {}",
        hub.describe()
    );

    // Sync on from the start, so the triggers stamp the contacts as they are
    // made (a store turns it on at its first sync otherwise).
    laptop
        .write_alone(funnel::sync::store::enable)
        .wait()
        .expect("sync on");
    let t = Instant::now();
    let chunk = 50_000;
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        laptop
            .write_alone(move |db| {
                db.execute(
                    "WITH RECURSIVE seq(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?2) \
                     INSERT INTO contacts (uid, email, name, status, created_at, updated_at) \
                     SELECT 'c' || i, 'p' || i || '@example.org', 'Person ' || i, 'active', 1, 1 FROM seq",
                    params![start, end],
                )?;
                Ok(())
            })
            .wait()
            .expect("contacts");
        start = end;
    }
    let stamps: i64 = laptop
        .read(|db| db.query_row("SELECT count(*) FROM sync_stamps", params![], |r| r.get(0)))
        .expect("count");
    let made = t.elapsed();
    println!(
        "made {n} contacts on the laptop ({stamps} stamps) in {:.1} s",
        made.as_secs_f64()
    );

    let sync = |what: &str| {
        let t = Instant::now();
        let to = LocalHub {
            store: &hub,
            scoring: None,
        };
        let report =
            session::run(&laptop, "hub", &to, page, None, funnel::store::now_ms).expect("sync");
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{what}: {} changes sent ({} applied) in {} rounds, {secs:.1} s = {:.0} changes/s, {:.0} contacts/s",
            report.sent,
            report.sent_applied,
            report.rounds,
            report.sent as f64 / secs,
            n as f64 / secs
        );
    };
    sync("first sync, every contact new on the hub");

    let t = Instant::now();
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        laptop
            .write_alone(move |db| {
                db.execute(
                    "UPDATE contacts SET name = name || ' (changed)' WHERE id > ?1 AND id <= ?2",
                    params![start, end],
                )?;
                Ok(())
            })
            .wait()
            .expect("change");
        start = end;
    }
    println!(
        "changed every contact's name on the laptop in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    sync("second sync, every contact changed");
    let there: i64 = hub
        .read(|db| {
            db.query_row(
                "SELECT count(*) FROM contacts WHERE name LIKE '%(changed)'",
                params![],
                |r| r.get(0),
            )
        })
        .expect("count");
    assert_eq!(there, n, "every change arrived");
    println!("the hub holds all {there} changed contacts");
    if postgres && args.iter().any(|a| a == "--keep") {
        println!("kept the hub's schema {schema} (drop it with DROP SCHEMA {schema} CASCADE)");
    } else if postgres {
        let drop = format!("DROP SCHEMA {schema} CASCADE");
        hub.write_alone(move |db| db.execute_batch(&drop))
            .wait()
            .expect("drop the benchmark's schema");
    }
}
