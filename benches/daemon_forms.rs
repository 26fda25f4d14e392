//! Benchmark: form posts per second through the real daemon (`funnel up`, the
//! release binary) on loopback, each from a distinct visitor: a distinct
//! `X-Forwarded-For` address (the daemon trusts 127.0.0.1 as its proxy, so the
//! per-address rate limiter is on and counts each visitor) and a distinct email,
//! with the demo workspace's workflows active (the contact form starts its
//! follow-up: upsert, list, stage, activity, switch, email, Slack, log).
//!
//! Three measurements, each against a fresh workspace and store:
//! - closed loop: `--connections` keep-alive connections (default 64) posting as
//!   fast as answers come for `--seconds` (default 20): posts per second and
//!   latency percentiles;
//! - open loop: a fixed `--rate` (default 2,000/s) for `--seconds`, each post's
//!   latency measured from the moment it was due (so a stall counts for every
//!   post it delayed, as `oha --latency-correction` does);
//! - memory: the daemon's resident set idle after start, and its peak during
//!   each run (from /proc).
//!
//! Every acknowledged post (the 303 to the thank-you page) is counted in the store
//! afterwards: a post answered but not stored fails the run. After the load the
//! daemon keeps running until every post's follow-up execution has finished (at
//! most `--drain-seconds`, default 120): how many finished during the load and
//! how long the rest took.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it, on a debug build) it
//! is a 2-second smoke run of each loop at 8 connections and 100 posts/s.
//!
//! `cargo bench --bench daemon_forms` (release). `-- --connections N --seconds S
//! --rate R --only closed|open`. `--postgres` runs on PostgreSQL
//! (`FUNNEL_BENCH_PG`, default `postgres://root@127.0.0.1:5432/test?sslmode=disable`)
//! in a fresh schema. Figures are in docs/daemon.md.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark reports

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = entry.path();
        let target = to.join(entry.file_name());
        if p.is_dir() {
            copy_tree(&p, &target);
        } else {
            std::fs::copy(&p, &target).expect("copy");
        }
    }
}

/// A copy of the repository's demo workspace behind a proxy on loopback.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for part in ["workflows", "contacts", "sites"] {
        copy_tree(&repo.join(part), &dir.path().join(part));
    }
    std::fs::create_dir_all(dir.path().join("templates")).expect("templates");
    let config = std::fs::read_to_string(repo.join("funnel.yaml")).expect("funnel.yaml");
    std::fs::write(
        dir.path().join("funnel.yaml"),
        format!("{config}\ndaemon:\n  trusted_proxies: [127.0.0.1]\n"),
    )
    .expect("write");
    dir
}

struct Daemon {
    child: Child,
    addr: String,
    host: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(root: &Path, store_url: Option<&str>) -> Daemon {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_funnel"));
    // FUNNEL_BENCH_LOG=FILE keeps the daemon's warnings and errors there.
    let log = std::env::var("FUNNEL_BENCH_LOG").ok();
    cmd.args(["up", "--port", "0", "--no-watch"])
        .current_dir(root)
        .env(
            "FUNNEL_LOG",
            std::env::var("FUNNEL_BENCH_LOG_LEVEL").unwrap_or_else(|_| {
                if log.is_some() {
                    "warn".into()
                } else {
                    "error".into()
                }
            }),
        )
        .stdout(Stdio::piped())
        .stderr(match log.as_deref().map(std::fs::File::create) {
            Some(Ok(f)) => Stdio::from(f),
            _ => Stdio::null(),
        });
    if let Some(url) = store_url {
        cmd.env("FUNNEL_STORE_URL", url);
    }
    let mut child = cmd.spawn().expect("funnel up");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = out.lines();
    let (mut addr, mut host) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.expect("line");
        let url = line.split_whitespace().last().unwrap_or("").to_string();
        if line.trim_start().starts_with("site demo") {
            host = url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .into();
        } else if line.trim_start().starts_with("daemon") {
            addr = url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .into();
        }
        if line.contains("Ctrl-C stops") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    assert!(!addr.is_empty() && !host.is_empty(), "no address printed");
    Daemon { child, addr, host }
}

/// The resident set of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Samples the daemon's resident set every 100 ms until dropped; keeps the peak,
/// and the peak of each minute (whether it stays flat over a long run).
struct RssWatch {
    peak: Arc<AtomicU64>,
    minutes: Arc<std::sync::Mutex<Vec<u64>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let peak = Arc::new(AtomicU64::new(0));
        let minutes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, m, s) = (peak.clone(), minutes.clone(), stop.clone());
        let began = Instant::now();
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let kib = (rss_mib(pid) * 1024.0) as u64;
                p.fetch_max(kib, Ordering::Relaxed);
                let minute = (began.elapsed().as_secs() / 60) as usize;
                if let Ok(mut m) = m.lock() {
                    if m.len() <= minute {
                        m.resize(minute + 1, 0);
                    }
                    m[minute] = m[minute].max(kib);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        RssWatch {
            peak,
            minutes,
            stop,
        }
    }

    fn peak_mib(&self) -> f64 {
        self.peak.load(Ordering::Relaxed) as f64 / 1024.0
    }

    /// Each whole minute's peak, in MiB.
    fn minutes_mib(&self) -> Vec<f64> {
        self.minutes
            .lock()
            .map(|m| m.iter().map(|k| *k as f64 / 1024.0).collect())
            .unwrap_or_default()
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Post number `n`: a distinct visitor address and email.
fn request(host: &str, n: u64) -> Vec<u8> {
    let body = format!(
        "name=Visitor+{n}&email=v{n}%40bench.example&company=Acme&message=Hello&team_size=11-50"
    );
    let ip = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
    format!(
        "POST /f/demo/contact-form HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {ip}\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept: text/html\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends one request on a keep-alive connection and reads the answer's status.
async fn exchange(conn: &mut TcpStream, req: &[u8], buf: &mut Vec<u8>) -> std::io::Result<u16> {
    conn.write_all(req).await?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = conn.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            return Ok(status);
        }
    }
}

#[derive(Default)]
struct Outcome {
    acked: u64,
    other: u64,
    latencies_us: Vec<u64>,
    elapsed: Duration,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn report(label: &str, o: &mut Outcome) {
    o.latencies_us.sort_unstable();
    let l = &o.latencies_us;
    println!(
        "{label}: {} acknowledged, {} other answers in {:.1} s = {:.0} posts/s; latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}",
        o.acked,
        o.other,
        o.elapsed.as_secs_f64(),
        o.acked as f64 / o.elapsed.as_secs_f64(),
        percentile(l, 0.50),
        percentile(l, 0.90),
        percentile(l, 0.99),
        percentile(l, 1.0),
    );
}

/// `connections` connections posting back to back for `seconds`.
async fn closed_loop(addr: &str, host: &str, connections: usize, seconds: u64) -> Outcome {
    let next = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (addr, host, next) = (addr.to_string(), host.to_string(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut o = Outcome::default();
            let mut conn = TcpStream::connect(&addr).await.expect("connect");
            conn.set_nodelay(true).ok();
            let mut buf = Vec::with_capacity(4096);
            while Instant::now() < until {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let req = request(&host, n);
                let sent = Instant::now();
                match exchange(&mut conn, &req, &mut buf).await {
                    Ok(303) => o.acked += 1,
                    Ok(_) => o.other += 1,
                    Err(_) => {
                        o.other += 1;
                        conn = TcpStream::connect(&addr).await.expect("reconnect");
                        continue;
                    }
                }
                o.latencies_us.push(sent.elapsed().as_micros() as u64);
            }
            o
        }));
    }
    let mut total = Outcome::default();
    for t in tasks {
        let o = t.await.expect("task");
        total.acked += o.acked;
        total.other += o.other;
        total.latencies_us.extend(o.latencies_us);
    }
    total.elapsed = started.elapsed();
    total
}

/// Posts due at a fixed `rate` for `seconds`, sent on a pool of connections; each
/// latency counts from when the post was due.
async fn open_loop(addr: &str, host: &str, rate: u64, seconds: u64) -> Outcome {
    let total_posts = rate * seconds;
    let (tx, rx) = async_channel(8192);
    let started = Instant::now();
    let pool = 256;
    let mut tasks = Vec::new();
    for _ in 0..pool {
        let (addr, host, rx) = (addr.to_string(), host.to_string(), rx.clone());
        tasks.push(tokio::spawn(async move {
            let mut o = Outcome::default();
            let mut conn: Option<TcpStream> = None;
            let mut buf = Vec::with_capacity(4096);
            while let Ok((n, due)) = rx.recv().await {
                if conn.is_none() {
                    let c = TcpStream::connect(&addr).await.expect("connect");
                    c.set_nodelay(true).ok();
                    conn = Some(c);
                }
                let Some(c) = conn.as_mut() else { continue };
                let req = request(&host, n);
                match exchange(c, &req, &mut buf).await {
                    Ok(303) => o.acked += 1,
                    Ok(_) => o.other += 1,
                    Err(_) => {
                        o.other += 1;
                        conn = None;
                        continue;
                    }
                }
                let due: Instant = due;
                o.latencies_us.push(due.elapsed().as_micros() as u64);
            }
            o
        }));
    }
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    for n in 0..total_posts {
        let due = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        if tx.send((n, due)).await.is_err() {
            break;
        }
    }
    drop(tx);
    let mut total = Outcome::default();
    for t in tasks {
        let o = t.await.expect("task");
        total.acked += o.acked;
        total.other += o.other;
        total.latencies_us.extend(o.latencies_us);
    }
    total.elapsed = started.elapsed();
    total
}

/// A multi-consumer queue: tokio's mpsc behind a mutex, enough for a load
/// generator.
fn async_channel<T: Send + 'static>(
    cap: usize,
) -> (tokio::sync::mpsc::Sender<T>, SharedReceiver<T>) {
    let (tx, rx) = tokio::sync::mpsc::channel(cap);
    (tx, SharedReceiver(Arc::new(tokio::sync::Mutex::new(rx))))
}

struct SharedReceiver<T>(Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<T>>>);

impl<T> Clone for SharedReceiver<T> {
    fn clone(&self) -> Self {
        SharedReceiver(self.0.clone())
    }
}

impl<T> SharedReceiver<T> {
    async fn recv(&self) -> Result<T, ()> {
        self.0.lock().await.recv().await.ok_or(())
    }
}

fn open_store(root: &Path, store_url: Option<&str>) -> funnel::store::Store {
    let location = match store_url {
        Some(url) => funnel::store::StoreLocation::Postgres { url: url.into() },
        None => funnel::store::StoreLocation::Sqlite {
            path: root.join(".funnel/funnel.db"),
            synchronous: funnel::model::config::Synchronous::Full,
        },
    };
    funnel::store::Store::open_blocking(&location).expect("store")
}

fn stored_contacts(store: &funnel::store::Store) -> i64 {
    store
        .read(|db| {
            db.query_row("SELECT count(*) FROM contacts", funnel::db_params![], |r| {
                r.get(0)
            })
        })
        .expect("count")
}

/// The contact form's follow-up executions: (finished, not finished yet).
fn follow_ups(store: &funnel::store::Store) -> (i64, i64) {
    store
        .read(|db| {
            db.query_row(
                "SELECT count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')), \
                 count(*) FILTER (WHERE status IN ('running', 'waiting', 'queued')) \
                 FROM executions WHERE workflow_id = 'contact-form-follow-up'",
                funnel::db_params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .expect("executions")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs this too (without `--bench`, on a debug
    // build): then a short smoke run that keeps the harness working.
    let smoke = !args.iter().any(|a| a == "--bench");
    let connections: usize = flag(&args, "--connections")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 8 } else { 64 });
    let seconds: u64 = flag(&args, "--seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 2 } else { 20 });
    let rate: u64 = flag(&args, "--rate")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 100 } else { 2_000 });
    let only = flag(&args, "--only");
    let postgres = args.iter().any(|a| a == "--postgres");
    let drain: u64 = flag(&args, "--drain-seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 30 } else { 120 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let backend = if postgres { "PostgreSQL" } else { "SQLite" };
    let run = |label: &str, open: bool| {
        let ws = workspace();
        let schema = format!("bench_daemon_{}_{}", std::process::id(), u8::from(open));
        let url = postgres.then(|| {
            let base = std::env::var("FUNNEL_BENCH_PG")
                .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test?sslmode=disable".into());
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}options=-c%20search_path%3D{schema}")
        });
        let d = start(ws.path(), url.as_deref());
        std::thread::sleep(Duration::from_secs(2));
        let idle = rss_mib(d.child.id());
        let watch = RssWatch::start(d.child.id());
        let mut o = rt.block_on(async {
            if open {
                open_loop(&d.addr, &d.host, rate, seconds).await
            } else {
                closed_loop(&d.addr, &d.host, connections, seconds).await
            }
        });
        let peak = watch.peak_mib();
        let minutes = watch.minutes_mib();
        drop(watch);
        report(&format!("{backend}, {label}"), &mut o);
        println!("  resident: {idle:.1} MiB idle after start, {peak:.1} MiB peak during the run");
        if seconds >= 120 {
            let shown: Vec<String> = minutes.iter().map(|m| format!("{m:.1}")).collect();
            println!("  resident, each minute's peak (MiB): {}", shown.join(", "));
        }
        // The posts' workflows: how many had finished when the load stopped, and
        // how long the daemon took to finish the rest (its `concurrency: 20`
        // queues them; each waits for its Slack call).
        let store = open_store(ws.path(), url.as_deref());
        let (done, left) = follow_ups(&store);
        let drain_started = Instant::now();
        let mut last = (done, left);
        while last.1 > 0 && drain_started.elapsed() < Duration::from_secs(drain) {
            std::thread::sleep(Duration::from_millis(500));
            last = follow_ups(&store);
        }
        let took = drain_started.elapsed().as_secs_f64();
        println!(
            "  workflows: {done} finished during the load, {left} after it; {} finished {:.1} s later{}",
            last.0,
            took,
            if last.1 > 0 {
                format!(" ({} still unfinished at the limit)", last.1)
            } else {
                format!(
                    " ({:.0} executions/s overall)",
                    last.0 as f64 / (o.elapsed.as_secs_f64() + took)
                )
            }
        );
        drop(d);
        let stored = stored_contacts(&store);
        assert!(
            stored >= o.acked as i64,
            "{} posts acknowledged but {stored} contacts stored",
            o.acked
        );
        println!(
            "  stored: {stored} contacts for {} acknowledged posts",
            o.acked
        );
        if postgres {
            let drop = format!("DROP SCHEMA {schema} CASCADE");
            store
                .write_alone(move |db| db.execute_batch(&drop))
                .wait()
                .expect("drop the benchmark's schema");
        }
        let _: PathBuf = ws.path().to_path_buf();
    };
    if only.as_deref() != Some("open") {
        run(
            &format!("closed loop, {connections} connections, {seconds} s"),
            false,
        );
    }
    if only.as_deref() != Some("closed") {
        run(&format!("open loop at {rate}/s, {seconds} s"), true);
    }
}
