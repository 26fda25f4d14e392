//! Benchmark: executions per second that N workers sharing one store run, on
//! PostgreSQL with 1, 2 and 3 workers and on SQLite with one.
//!
//! Each run parks `--executions` executions (default 30,000) of a 3-step workflow
//! (a timer, a contact upsert, a tag) on their timers, then starts the workers,
//! each with a store handle of its own (its own writer connection and group
//! commit, as a separate process has), and times them from the start until every
//! timer is taken and every execution completed. Each worker's share is printed:
//! a starved worker would show. The workers are threads of this process, so they
//! share its two cores with PostgreSQL itself, as worker processes on one machine
//! would.
//!
//! `cargo bench --bench worker_scaling` (release). `-- --executions N`,
//! `--workers 1,2,3`, `--skip-sqlite`. PostgreSQL is `FUNNEL_BENCH_PG` (default
//! `postgres://root@127.0.0.1:5432/test?sslmode=disable`: loopback, no TLS), at
//! its own `synchronous_commit` (on, unless the server says otherwise); each run
//! works in a fresh schema. Figures are in docs/store.md.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::sync::Arc;
use std::time::Instant;

use funnel::engine::Engine;
use funnel::engine::ingest::Event;
use funnel::engine::worker::Worker;
use funnel::model::config::Synchronous;
use funnel::store::{Store, StoreLocation};
use serde_json::json;

const WORKFLOW: &str = r#"name: parked
trigger: {type: custom_event, event: go}
steps:
  - id: pause
    type: wait_until
    time: "{{ trigger.payload.at }}"
  - id: upsert
    type: upsert_contact
    email: "{{ trigger.payload.email }}"
  - id: tag
    type: add_tag
    tags: [done]
"#;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn count(store: &Store, sql: &str) -> i64 {
    store
        .read(|c| c.query_row(sql, funnel::db_params![], |r| r.get(0)))
        .expect("count")
}

/// Parks `n` executions on timers due at `due`.
fn park(store: &Store, engine: &Arc<Engine>, n: usize, due: i64) {
    let rt = runtime();
    let loader = Worker::new(store.clone(), engine.clone()).expect("worker");
    let at = jiff::Timestamp::from_millisecond(due)
        .expect("time")
        .to_string();
    rt.block_on(async {
        loader.prepare(funnel::store::now_ms()).await.expect("prepare");
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (w, next, at) = (loader.clone(), next.clone(), at.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        w.ingest(Event {
                            kind: "custom_event".into(),
                            data: json!({"event": "go", "payload": {"email": format!("p{i}@example.org"), "at": at}}),
                            ..Event::default()
                        })
                        .await
                        .expect("ingest");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("loader");
        }
    });
}

/// Runs `workers` workers until no timer is left; returns the seconds taken and
/// the executions each worker's ticks fired.
fn run_workers(
    location: &StoreLocation,
    engine: &Arc<Engine>,
    workers: usize,
    at: i64,
) -> (f64, Vec<usize>) {
    let stores: Vec<Store> = (0..workers)
        .map(|_| Store::open_blocking(location).expect("store"))
        .collect();
    let barrier = Arc::new(std::sync::Barrier::new(workers + 1));
    let handles: Vec<_> = stores
        .into_iter()
        .map(|store| {
            let (engine, barrier) = (engine.clone(), barrier.clone());
            std::thread::spawn(move || {
                let rt = runtime();
                let worker = Worker::new(store, engine).expect("worker");
                worker.set_time(at);
                barrier.wait();
                rt.block_on(async {
                    let mut fired = 0;
                    loop {
                        let tick = worker.tick_at(at).await.expect("tick");
                        fired += tick.fired;
                        if tick.fired == 0 {
                            worker.settle().await;
                            if tick.next_due.is_none_or(|d| d > at) {
                                return fired;
                            }
                        }
                    }
                })
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let fired: Vec<usize> = handles
        .into_iter()
        .map(|h| h.join().expect("worker thread"))
        .collect();
    (start.elapsed().as_secs_f64(), fired)
}

fn workspace(root: &std::path::Path) -> Arc<Engine> {
    std::fs::create_dir_all(root.join("workflows")).expect("mkdir");
    std::fs::write(
        root.join("funnel.yaml"),
        "name: Bench\npublic_url: https://bench.example\nemail:\n  from: Bench <hi@bench.example>\n  outbox: .funnel/outbox\n",
    )
    .expect("config");
    std::fs::write(root.join("workflows/parked.yaml"), WORKFLOW).expect("workflow");
    let ws = funnel::workspace::load(root, root).expect("workspace");
    Arc::new(Engine::from_workspace(&ws).expect("engine"))
}

fn measure(label: &str, location: &StoreLocation, engine: &Arc<Engine>, n: usize, workers: usize) {
    let store = Store::open_blocking(location).expect("store");
    let due = funnel::store::now_ms() + 3_600_000;
    park(&store, engine, n, due);
    let parked = count(&store, "SELECT count(*) FROM timers WHERE kind = 'wake'");
    let (secs, fired) = run_workers(location, engine, workers, due + 1);
    let done = count(
        &store,
        "SELECT count(*) FROM executions WHERE status = 'completed'",
    );
    assert_eq!(done as usize, n, "every execution completed");
    let total: usize = fired.iter().sum();
    let shares: Vec<String> = fired
        .iter()
        .map(|f| format!("{:.0}%", 100.0 * *f as f64 / total.max(1) as f64))
        .collect();
    println!(
        "{label:<34} {workers} worker(s): {n} executions ({parked} parked) in {secs:.2} s = {:>7.0} executions/s; shares {}",
        n as f64 / secs,
        shares.join(" / ")
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench worker_scaling` to measure");
        return;
    }
    let n: usize = flag(&args, "--executions")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let counts: Vec<usize> = flag(&args, "--workers")
        .unwrap_or_else(|| "1,2,3".into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    let base = std::env::var("FUNNEL_BENCH_PG")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test?sslmode=disable".into());
    let sync = {
        let probe = Store::open_blocking(&StoreLocation::Postgres { url: base.clone() })
            .expect("PostgreSQL for the benchmark");
        probe
            .read(|c| {
                c.query_row("SHOW synchronous_commit", funnel::db_params![], |r| {
                    r.get::<String>(0)
                })
            })
            .expect("synchronous_commit")
    };
    for &workers in &counts {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = workspace(dir.path());
        let schema = format!("bench_workers_{}_{workers}", std::process::id());
        let sep = if base.contains('?') { '&' } else { '?' };
        let location = StoreLocation::Postgres {
            url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        };
        measure(
            &format!("PostgreSQL (synchronous_commit={sync})"),
            &location,
            &engine,
            n,
            workers,
        );
        let store = Store::open_blocking(&location).expect("store");
        store
            .write(move |c| c.execute_batch(&format!("DROP SCHEMA {schema} CASCADE")))
            .wait()
            .expect("drop schema");
    }
    if !args.iter().any(|a| a == "--skip-sqlite") {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = workspace(dir.path());
        let location = StoreLocation::Sqlite {
            path: dir.path().join(".funnel/funnel.db"),
            synchronous: Synchronous::Full,
        };
        measure("SQLite (synchronous=full)", &location, &engine, n, 1);
    }
}
