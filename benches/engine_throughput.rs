//! Benchmark: durable executions per second of a 4-step workflow (trigger, CRM
//! upsert, condition, tag update), measured from the ingestion function to
//! `completed`, on the SQLite store at the default synchronous level (FULL), with
//! every step run recorded. Also the latency of each ingestion (p50, p99) and the
//! process's resident memory after 100,000 and 1,000,000 executions.
//!
//! `cargo bench --bench engine_throughput` (release). `-- --executions N` changes the
//! total (default 1,000,000), `--callers N` the concurrent callers (default 64).
//! `--form` runs the realistic path instead: a `form_submission` workflow that saves
//! the contact, tags it, queues a welcome email (delivered to the dev outbox as
//! `.eml` files alongside) and posts to a webhook on a loopback HTTP server, then
//! tags again once the call answered; throughput counts executions completed,
//! after their HTTP call. Figures are in docs/engine.md.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout
#![allow(unsafe_code)] // a counting allocator, see rss_split

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use funnel::engine::Engine;
use funnel::engine::ingest::Event;
use funnel::engine::worker::Worker;
use funnel::model::config::Synchronous;
use funnel::store::SqliteStore;
use serde_json::json;

const WORKFLOW: &str = r#"name: bench
trigger: {type: custom_event, event: signup}
steps:
  - id: upsert
    type: upsert_contact
    email: "{{ trigger.payload.email }}"
    name: "{{ trigger.payload.name }}"
  - id: check
    type: if
    condition: trigger.payload.plan == "pro"
    then: tag_pro
  - id: tag_free
    type: add_tag
    tags: [free]
    next: end
  - id: tag_pro
    type: add_tag
    tags: [pro]
"#;

const FORM_WORKFLOW: &str = r#"name: form
trigger: {type: form_submission, site: main, component: contact-form}
steps:
  - id: save
    type: upsert_contact
    email: "{{ trigger.fields.email }}"
    name: "{{ trigger.fields.name }}"
    tags: [lead]
  - id: welcome
    type: send_email
    template: welcome
  - id: notify
    type: http
    url: "$SERVER/hook"
    body: {email: "{{ contact.email }}", company: "{{ trigger.fields.company }}"}
  - id: done
    type: add_tag
    tags: [notified]
"#;

const WELCOME: &str = "name: Welcome\nkind: transactional\nsubject: 'Welcome, {{ contact.first_name | default(\"there\") }}'\nhtml: '<p>Hi {{ contact.name }}, thanks for writing to us.</p><p><a href=\"https://bench.example/start\">Start here</a></p>'\n";

/// A loopback HTTP/1.1 server that answers every request 200 at once (keep-alive).
async fn webhook_server() -> String {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    let mut first = true;
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" && !first {
                            break;
                        }
                        first = false;
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// Counts the bytes the Rust side holds, to tell live allocations (a leak) from
/// allocator fragmentation when resident memory grows.
struct Counting;
static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
// SAFETY: delegates every call to the system allocator unchanged; only counts.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size() as u64, Ordering::Relaxed) + l.size() as u64;
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE.fetch_sub(l.size() as u64, Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        let now = LIVE.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        PEAK.fetch_max(now, Ordering::Relaxed);
        LIVE.fetch_sub(l.size() as u64, Ordering::Relaxed);
        unsafe { std::alloc::System.realloc(p, l, n) }
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

/// Resident memory split into anonymous memory and mapped files (KiB), to tell heap
/// growth from mapped store files.
fn rss_split() -> String {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SQLite's own counters are off (SQLITE_DEFAULT_MEMSTATUS=0 in
    // .cargo/config.toml: counting takes a global mutex at every allocation),
    // so its share is what the Rust allocator's counters do not explain.
    format!(
        "anonymous {} MiB (Rust {} MiB, peak {}; the rest SQLite's caches and the allocator), files {} MiB",
        field("Anonymous:") / 1024,
        LIVE.load(Ordering::Relaxed) / (1024 * 1024),
        PEAK.load(Ordering::Relaxed) / (1024 * 1024),
        (field("Rss:").saturating_sub(field("Anonymous:"))) / 1024
    )
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn flag(args: &[String], name: &str) -> Option<usize> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench engine_throughput` to measure");
        return;
    }
    let total = flag(&args, "--executions").unwrap_or(1_000_000);
    let callers = flag(&args, "--callers").unwrap_or(64);
    let form = args.iter().any(|a| a == "--form");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("workflows")).expect("mkdir");
    std::fs::create_dir_all(root.join("templates/emails")).expect("mkdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    std::fs::write(
        root.join("funnel.yaml"),
        "name: Bench\npublic_url: https://bench.example\nemail:\n  from: Bench <hi@bench.example>\n  outbox: .funnel/outbox\nnetwork:\n  allow: [127.0.0.1]\n",
    )
    .expect("config");
    if form {
        let server = rt.block_on(webhook_server());
        std::fs::write(
            root.join("workflows/form.yaml"),
            FORM_WORKFLOW.replace("$SERVER", &server),
        )
        .expect("workflow");
        std::fs::write(root.join("templates/emails/welcome.yaml"), WELCOME).expect("email");
    } else {
        std::fs::write(root.join("workflows/bench.yaml"), WORKFLOW).expect("workflow");
    }
    let ws = funnel::workspace::load(root, root).expect("workspace");
    let engine = Arc::new(Engine::from_workspace(&ws).expect("engine"));
    let store =
        SqliteStore::open(&root.join(".funnel/funnel.db"), Synchronous::Full).expect("store");
    let worker = Worker::new(store.clone().into(), engine).expect("worker");
    rt.block_on(worker.prepare(funnel::store::now_ms()))
        .expect("prepare");

    // The search indexer runs beside the callers, as in the worker's loop.
    let indexer = {
        let w = worker.clone();
        rt.spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                let _ = w.reindex().await;
            }
        })
    };
    let next = Arc::new(AtomicU64::new(0));
    let mut marks: Vec<(u64, f64, u64, String)> = Vec::new();
    let start = Instant::now();
    // A fixed histogram (10 µs buckets up to 1 s) keeps memory flat however many
    // executions run, so the resident-memory figures measure the engine alone.
    // One histogram shared by all callers, allocated once: per-caller histograms
    // allocated at every checkpoint (64 × 800 KB) were what made resident memory
    // jump in earlier versions of this benchmark, not the engine.
    let histogram: Arc<Vec<AtomicU64>> =
        Arc::new((0..100_001).map(|_| AtomicU64::new(0)).collect());
    // Every 100,000 executions, to see whether memory levels off or keeps growing.
    let checkpoints: Vec<u64> = (1..)
        .map(|k| k * 100_000u64)
        .take_while(|&m| m < total as u64)
        .chain([total as u64])
        .collect();
    let mut done_so_far = 0u64;
    for &mark in &checkpoints {
        if mark <= done_so_far || mark > total as u64 {
            continue;
        }
        rt.block_on(async {
            let tasks: Vec<_> = (0..callers)
                .map(|_| {
                    let (w, next, lat) = (worker.clone(), next.clone(), histogram.clone());
                    tokio::spawn(async move {
                        loop {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            if n >= mark {
                                next.fetch_sub(1, Ordering::Relaxed);
                                break;
                            }
                            let plan = if n % 2 == 0 { "pro" } else { "free" };
                            let t = Instant::now();
                            let event = if form {
                                Event {
                                    kind: "form_submission".into(),
                                    data: json!({
                                        "site": "main", "component": "contact-form", "page": "/",
                                        "fields": {"email": format!("lead{n}@example.org"), "name": format!("Lead {n}"), "company": "Acme"}
                                    }),
                                    ..Event::default()
                                }
                            } else {
                                Event {
                                    kind: "custom_event".into(),
                                    data: json!({
                                        "event": "signup",
                                        "payload": {"email": format!("lead{n}@example.org"), "name": format!("Lead {n}"), "plan": plan}
                                    }),
                                    ..Event::default()
                                }
                            };
                            let out = w.ingest(event).await.expect("ingest");
                            assert_eq!(out.started.len(), 1);
                            let bucket = (t.elapsed().as_micros() / 10).min(100_000) as usize;
                            lat[bucket].fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("caller");
            }
        });
        done_so_far = mark;
        let secs = start.elapsed().as_secs_f64();
        marks.push((mark, done_so_far as f64 / secs, rss_kib(), rss_split()));
    }
    let ingested = start.elapsed().as_secs_f64();
    // The form workflow completes after its HTTP call: wait for the last ones.
    rt.block_on(worker.settle());
    let elapsed = start.elapsed().as_secs_f64();
    rt.block_on(async {
        let _ = worker.deliver_outbox().await;
    });
    indexer.abort();
    let completed: i64 = store
        .read(|c| {
            c.query_row(
                "SELECT count(*) FROM executions WHERE status = 'completed'",
                funnel::db_params![],
                |r| r.get(0),
            )
        })
        .expect("count");
    let step_runs: i64 = store
        .read(|c| {
            c.query_row(
                "SELECT count(*) FROM step_runs",
                funnel::db_params![],
                |r| r.get(0),
            )
        })
        .expect("count");
    let histogram: Vec<u64> = histogram
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .collect();
    let count: u64 = histogram.iter().sum();
    let pct = |p: f64| {
        let want = (p * count as f64).ceil() as u64;
        let mut seen = 0;
        for (i, n) in histogram.iter().enumerate() {
            seen += n;
            if seen >= want {
                return i as f64 * 10.0;
            }
        }
        f64::NAN
    };
    println!(
        "{total} executions, {callers} callers: {:.0} executions/s; latency p50 {:.2} ms, p99 {:.2} ms",
        total as f64 / elapsed,
        pct(0.50) / 1000.0,
        pct(0.99) / 1000.0
    );
    println!(
        "{}: ingested in {ingested:.1} s, all completed in {elapsed:.1} s; completed in the store: {completed}; step runs recorded: {step_runs}",
        if form {
            "form_submission with upsert, email and HTTP"
        } else {
            "custom event, CRM steps only"
        }
    );
    if form {
        let emails = std::fs::read_dir(root.join(".funnel/outbox"))
            .map(|r| r.count())
            .unwrap_or(0);
        println!("emails written to the dev outbox: {emails}");
    }
    for (mark, rate, rss, split) in marks {
        println!(
            "after {mark:>9} executions: {rate:>8.0}/s so far, resident memory {} MiB ({split})",
            rss / 1024
        );
    }
}
