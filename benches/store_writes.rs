//! Benchmark: single-row durable writes per second through the SQLite writer (group
//! commit) with 1, 8 and 64 concurrent callers, at the default synchronous level
//! (FULL). Each caller inserts one activity row and waits until it is durable before
//! sending the next, as a form post or a step would.
//!
//! `cargo bench --bench store_writes` (release). Figures are in docs/store.md.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use funnel::model::config::Synchronous;
use funnel::store::SqliteStore;

const RUN: Duration = Duration::from_secs(4);

/// A contact and an execution for the rows to belong to.
const SEED: &str = "INSERT INTO contacts (uid, email, status, created_at, updated_at) \
    VALUES ('bench', 'bench@example.com', 'active', 0, 0);
    INSERT INTO workflow_versions VALUES ('h', 'w', '{}', 0);
    INSERT INTO executions (uid, workflow_id, version_hash, status, started_at, updated_at) \
    VALUES ('e', 'w', 'h', 'running', 0, 0);";

/// What each write inserts.
#[derive(Debug, Clone, Copy)]
enum Workload {
    /// A step record of one execution: the engine's journal, appended in order.
    Journal,
    /// A page view on a contact's timeline, over 64 pages: every index insert lands
    /// on another page, so each commit writes many pages.
    Timeline,
}

/// Callers are async tasks on a 2-thread tokio runtime, as the engine and the
/// daemon call the store.
fn measure(callers: usize, sync: Synchronous, workload: Workload) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("bench.db"), sync).expect("open");
    store
        .write(|c| {
            c.execute_batch(SEED)?;
            Ok(())
        })
        .wait()
        .expect("seed");
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..callers)
            .map(|i| {
                let (store, stop, done) = (store.clone(), stop.clone(), done.clone());
                tokio::spawn(async move {
                    let mut n: i64 = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let at = n;
                        store
                            .write(move |c| {
                                match workload {
                                    Workload::Journal => c
                                        .prepare_cached(
                                            "INSERT INTO step_runs (execution_id, step_id, attempt, status, started_at) \
                                             VALUES (1, ?1, 1, 'completed', ?2)",
                                        )?
                                        .execute(funnel::db_params![format!("step-{i}"), at])?,
                                    Workload::Timeline => c
                                        .prepare_cached(
                                            "INSERT INTO activities (contact_id, type, subject, data, occurred_at) \
                                             VALUES (1, 'page_view', ?1, '{}', ?2)",
                                        )?
                                        .execute(funnel::db_params![format!("/page/{i}"), at])?,
                                };
                                Ok(())
                            })
                            .await
                            .expect("durable write");
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        tokio::time::sleep(RUN).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.expect("caller");
        }
    });
    let n = done.load(Ordering::Relaxed);
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench store_writes` to measure");
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let only_default = args.iter().any(|a| a == "--default-only");
    // `--callers N` measures only that many callers; `--repeat N` runs each case N times.
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let callers_set: Vec<usize> = flag("--callers").map_or(vec![1, 8, 64, 256], |n| vec![n]);
    let repeat = flag("--repeat").unwrap_or(1);
    for sync in [Synchronous::Full, Synchronous::Normal] {
        for workload in [Workload::Journal, Workload::Timeline] {
            for &callers in &callers_set {
                for _ in 0..repeat {
                    let rate = measure(callers, sync, workload);
                    println!(
                        "synchronous={sync:?} workload={workload:?} callers={callers:>2}: {rate:>9.0} durable writes/s"
                    );
                }
            }
        }
        if only_default {
            break;
        }
    }
}
