//! Benchmark: `contacts import` on the shapes a marketer meets, not only the empty
//! store (release build). Each file has 1,000,000 rows with custom fields (plan,
//! company size, company) and tags; the demo workspace's workflows are active, so
//! the import queues the CRM events they listen to (`tag_added` for the welcome
//! drip) in its transaction.
//!
//! 1. 1,000,000 new rows into an empty store;
//! 2. 1,000,000 new rows into that store of 1,000,000;
//! 3. the first file again, unchanged (nothing may be written);
//! 4. half of the first file with a changed plan, half new rows.
//!
//! Each import runs as `contacts import` runs it, in a process of its own (its
//! own transaction through the store's writer, indexes deferred when the file is
//! large against the store); time is the import's, peak memory the process's. Then the events the first import
//! queued are worked off as the worker does, timed on their own.
//!
//! `cargo bench --bench import_shapes` (`-- --rows N --seed S --skip-run-off
//! --defer never|always --shapes N`, N to run only the first N shapes).
//! Figures are in docs/crm.md.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use funnel::crm::import;
use funnel::engine::worker::Worker;
use funnel::model::config::Synchronous;
use funnel::rng::Rng;
use funnel::store::SqliteStore;

fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

const PLANS: &[&str] = &["free", "starter", "pro", "enterprise"];

/// Writes rows `from..from + n`; `changed` rows get another plan than the base
/// file gave them.
fn write_csv(path: &Path, seed: u64, rows: impl Iterator<Item = (u64, bool)>) {
    let mut w = csv::Writer::from_path(path).expect("csv");
    w.write_record([
        "email",
        "first_name",
        "last_name",
        "company",
        "plan",
        "company_size",
        "tags",
    ])
    .expect("header");
    for (i, changed) in rows {
        // Each row's values come from its own number, so a row is the same in
        // every file it appears in unless it is marked changed.
        let mut rng = Rng::new(seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let plan = PLANS[(rng.below(4) as usize + usize::from(changed)) % 4];
        let size = 1 + rng.below(5000);
        let tags = if rng.unit() < 0.4 {
            "newsletter;beta"
        } else {
            "customer"
        };
        w.write_record([
            &format!("person{i}.{}@co{}.example", rng.below(1000), i % 50_000),
            &format!("First{}", rng.below(500)),
            &format!("Last{}", rng.below(800)),
            &format!("Company {}", i % 50_000),
            plan,
            &size.to_string(),
            tags,
        ])
        .expect("row");
    }
    w.flush().expect("flush");
}

/// The demo workspace's engine, custom fields and lists.
fn demo() -> (
    Arc<funnel::engine::Engine>,
    std::collections::BTreeMap<String, funnel::model::contacts::FieldDef>,
    std::collections::BTreeSet<String>,
) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ws = funnel::workspace::load(repo, repo).expect("demo workspace");
    let engine = Arc::new(funnel::engine::Engine::from_workspace(&ws).expect("engine"));
    let fields = ws
        .fields
        .as_ref()
        .map(|d| d.value.fields.clone())
        .unwrap_or_default();
    let lists = ws
        .lists
        .as_ref()
        .map(|d| d.value.lists.keys().cloned().collect())
        .unwrap_or_default();
    (engine, fields, lists)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench import_shapes` to measure");
        return;
    }
    if args.iter().any(|a| a == "--child") {
        one_shape(&args);
        return;
    }
    let n: u64 = flag(&args, "--rows").unwrap_or(1_000_000);
    let seed: u64 = flag(&args, "--seed").unwrap_or(42);
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    let c = dir.path().join("c.csv");
    let t = Instant::now();
    write_csv(&a, seed, (0..n).map(|i| (i, false)));
    write_csv(&b, seed, (n..2 * n).map(|i| (i, false)));
    write_csv(
        &c,
        seed,
        (0..n / 2)
            .map(|i| (i, true))
            .chain((2 * n..2 * n + n / 2).map(|i| (i, false))),
    );
    println!(
        "seed {seed}; {n} rows per file, written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let db = dir.path().join("import.db");
    let shapes = [
        ("1. new rows into an empty store", &a),
        ("2. new rows into a store of the same size", &b),
        ("3. the first file again, unchanged", &a),
        ("4. half changed, half new", &c),
    ];
    let only: usize = flag(&args, "--shapes").unwrap_or(shapes.len());
    let exe = std::env::current_exe().expect("own path");
    for (i, (label, file)) in shapes.iter().enumerate().take(only) {
        // Each import runs in a process of its own, as `contacts import` does,
        // so that its peak memory is its own.
        let mut child = std::process::Command::new(&exe);
        child
            .args(["--bench", "--child", "--label", label])
            .arg("--store")
            .arg(&db)
            .arg("--file")
            .arg(file);
        if let Some(d) = flag::<String>(&args, "--defer") {
            child.args(["--defer", &d]);
        }
        let status = child.status().expect("run a shape");
        assert!(status.success(), "{label} failed");
        let store = SqliteStore::open(&db, Synchronous::Full).expect("store");
        if i == 0 && !args.iter().any(|a| a == "--skip-run-off") {
            run_off(&store, &demo().0);
        } else {
            // Later shapes' events are counted, then dropped, so that each shape
            // starts from the same kind of store.
            store
                .write(|c| c.execute_batch("DELETE FROM crm_event_batches"))
                .wait()
                .expect("clear");
        }
    }
}

/// One import, in this process: the store at `--store`, the file at `--file`.
fn one_shape(args: &[String]) {
    let (engine, fields, lists) = demo();
    let label: String = flag(args, "--label").unwrap_or_default();
    let db: std::path::PathBuf = flag(args, "--store").expect("--store");
    let file: std::path::PathBuf = flag(args, "--file").expect("--file");
    let store = SqliteStore::open(&db, Synchronous::Full).expect("store");
    let contacts: i64 = store
        .read(|c| {
            c.query_row("SELECT count(*) FROM contacts", funnel::db_params![], |r| {
                r.get(0)
            })
        })
        .expect("count");
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let defer = match flag::<String>(args, "--defer").as_deref() {
        Some("never") => false,
        Some("always") => true,
        _ => import::worth_deferring(size, u64::try_from(contacts).unwrap_or(0)),
    };
    let opts = import::Options {
        defer_indexes: defer,
        bulk: import::worth_bulk(size),
        source: Some("import:bench.csv".into()),
        queue_events: engine.trigger_types(),
        ..import::Options::default()
    };
    let t = Instant::now();
    let report = store
        .write_alone(move |c| {
            let input = std::fs::File::open(&file).expect("open csv");
            import::import(
                c,
                input,
                &fields,
                &lists,
                &opts,
                1_767_225_600_000,
                &mut |_| {},
            )
            .map_err(|e| funnel::store::StoreError::Invalid(e.to_string()))
        })
        .wait()
        .expect("import");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{label}: {} rows into {contacts} contacts in {secs:.1} s (index rebuild allowed: {defer}) ({:.0} rows/s): {} created, {} updated, {} unchanged, {} rejected, {} events queued; peak resident memory of the process {} MiB",
        report.rows,
        report.rows as f64 / secs,
        report.created,
        report.updated,
        report.unchanged,
        report.rejects.len(),
        report.events_queued,
        peak_rss_mib()
    );
}

/// Works off the queued events as the worker does (a slice per transaction) and
/// reports the rate and the executions started.
fn run_off(store: &SqliteStore, engine: &Arc<funnel::engine::Engine>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let worker = Worker::new(store.clone().into(), engine.clone()).expect("worker");
    let t = Instant::now();
    let (events, started) = rt.block_on(async {
        worker.prepare(worker.now()).await.expect("prepare");
        let (mut events, mut started) = (0usize, 0usize);
        loop {
            let slice = worker
                .transact(worker.now(), funnel::engine::backlog::ingest_slice)
                .await
                .expect("slice");
            events += slice.events;
            started += slice.started.len();
            if !slice.more {
                break;
            }
        }
        worker.settle().await;
        (events, started)
    });
    let secs = t.elapsed().as_secs_f64();
    println!(
        "   queued events worked off: {events} events, {started} executions started, in {secs:.1} s ({:.0} events/s)",
        events as f64 / secs
    );
}
