//! Benchmark: a broadcast from freeze to the last message accepted by an SMTP
//! sink. Each message is rendered from a real template for its contact (footer,
//! list headers, tracked links and the open pixel), DKIM-signed (Ed25519 by
//! default), queued in the outbox, claimed and handed over SMTP to a sink in this
//! process (a minimal SMTP server on loopback that accepts everything), then
//! marked sent: everything a real send does but the network.
//!
//! `cargo bench --bench email_send` (release, SQLite). `-- --recipients N`
//! (default 20,000), `--dkim ed25519|rsa|none`, `--postgres` for the machine's PostgreSQL (`FUNNEL_BENCH_PG`, default
//! `postgres://root@127.0.0.1:5432/test`) instead of SQLite, `--smtp-port P` to send to a
//! server already listening on 127.0.0.1:P (aiosmtpd:
//! `python -m aiosmtpd -n -l 127.0.0.1:P -c aiosmtpd.handlers.Sink`). Prints emails per second and the
//! process's resident memory at the start, its peak and at the end. Figures are in
//! docs/email.md.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use funnel::engine::Engine;
use funnel::engine::worker::Worker;
use funnel::store::{Store, StoreLocation};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
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

/// A minimal SMTP server: accepts every message, counts them.
async fn sink(listener: tokio::net::TcpListener, received: Arc<AtomicU64>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let received = received.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut r = BufReader::new(r);
            if w.write_all(b"220 sink ESMTP\r\n").await.is_err() {
                return;
            }
            let mut line = String::new();
            let mut in_data = false;
            loop {
                line.clear();
                match r.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        received.fetch_add(1, Ordering::Relaxed);
                        if w.write_all(b"250 2.0.0 accepted\r\n").await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                let answer: &[u8] = match verb.as_str() {
                    "EHLO" => b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
                    "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 ok\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go on\r\n"
                    }
                    "QUIT" => {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    }
                    _ => b"502 not here\r\n",
                };
                if w.write_all(answer).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// An RSA-2048 key in PKCS#1 PEM, from openssl.
fn rsa_key() -> String {
    let out = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .output()
        .expect("openssl genrsa");
    String::from_utf8(out.stdout).expect("PEM")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench email_send` to measure");
        return;
    }
    let n: usize = flag(&args, "--recipients")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dkim = flag(&args, "--dkim").unwrap_or_else(|| "ed25519".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let received = Arc::new(AtomicU64::new(0));
    // `--smtp-port P`: an SMTP server already listening on 127.0.0.1:P (such
    // as aiosmtpd's Sink handler) instead of the one in this process.
    let external: Option<u16> = flag(&args, "--smtp-port").and_then(|p| p.parse().ok());
    let port = match external {
        Some(p) => p,
        None => {
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .expect("bind");
            let port = listener.local_addr().expect("addr").port();
            rt.spawn(sink(listener, received.clone()));
            port
        }
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["templates/emails", "contacts", "campaigns"] {
        std::fs::create_dir_all(root.join(sub)).expect("mkdir");
    }
    std::fs::copy(
        repo.join("templates/emails/onboarding-tips.yaml"),
        root.join("templates/emails/onboarding-tips.yaml"),
    )
    .expect("template");
    let dkim_yaml = match dkim.as_str() {
        "ed25519" => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).expect("random");
            let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, seed);
            std::fs::write(root.join("dkim.key"), b64).expect("key");
            "  dkim:\n    domain: bench.example\n    selector: s1\n    algorithm: ed25519\n    private_key_file: dkim.key\n"
        }
        "rsa" => {
            std::fs::write(root.join("dkim.pem"), rsa_key()).expect("key");
            "  dkim:\n    domain: bench.example\n    selector: s1\n    algorithm: rsa\n    private_key_file: dkim.pem\n"
        }
        _ => "",
    };
    std::fs::write(
        root.join("funnel.yaml"),
        format!(
            "name: Bench\npublic_url: https://go.bench.example\nemail:\n  from: Bench <hi@bench.example>\n  postal_address: Bench Ltd, 1 Main St, Springfield\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n{dkim_yaml}"
        ),
    )
    .expect("config");
    std::fs::write(
        root.join("contacts/lists.yaml"),
        "lists:\n  newsletter:\n    name: Newsletter\n",
    )
    .expect("lists");
    std::fs::write(
        root.join("campaigns/bench.yaml"),
        "name: Bench\naudience:\n  list: newsletter\ntemplate: onboarding-tips\n",
    )
    .expect("campaign");
    let ws = funnel::workspace::load(root, root).expect("workspace");
    let report = funnel::validate::check(&ws);
    assert!(
        report
            .iter()
            .all(|d| d.severity != funnel::diagnostic::Severity::Error),
        "{report:?}"
    );
    let engine = Arc::new(Engine::from_workspace(&ws).expect("engine"));
    // `--postgres`: the machine's PostgreSQL (FUNNEL_BENCH_PG), in a schema of
    // its own, dropped at the end.
    let pg_schema = format!("bench_email_{}", std::process::id());
    let postgres = args.iter().any(|a| a == "--postgres");
    let location = if postgres {
        let base = std::env::var("FUNNEL_BENCH_PG")
            .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test?sslmode=disable".into());
        let sep = if base.contains('?') { '&' } else { '?' };
        StoreLocation::Postgres {
            url: format!("{base}{sep}options=-c%20search_path%3D{pg_schema}"),
        }
    } else {
        StoreLocation::Sqlite {
            path: root.join(".funnel/funnel.db"),
            synchronous: funnel::model::config::Synchronous::Full,
        }
    };
    let store = Store::open_blocking(&location).expect("store");
    let now = funnel::store::now_ms();
    store
        .write(move |db| {
            let mut contact = db.prepare_cached(
                "INSERT INTO contacts (uid, email, name, status, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 'active', ?4, ?4) RETURNING id",
            )?;
            let mut member = db.prepare_cached(
                "INSERT INTO list_members (list_id, contact_id, added_at) VALUES ('newsletter', ?1, ?2)",
            )?;
            for i in 0..n {
                let id: i64 = contact.query_row(
                    funnel::db_params![
                        funnel::uid::new(now),
                        format!("reader{i}@example.org"),
                        format!("Reader {i}"),
                        now
                    ],
                    |r| r.get(0),
                )?;
                member.execute(funnel::db_params![id, now])?;
            }
            Ok(())
        })
        .wait()
        .expect("contacts");
    let start_rss = rss_kib();
    let worker = Worker::new(store.clone(), engine).expect("worker");
    let started = Instant::now();
    let peak = Arc::new(AtomicU64::new(start_rss));
    let sampler = {
        let (peak, received) = (peak.clone(), received.clone());
        let n = n as u64;
        std::thread::spawn(move || {
            let mut last = Instant::now();
            while received.load(Ordering::Relaxed) < n {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                if last.elapsed().as_secs() >= 10 {
                    last = Instant::now();
                    println!(
                        "  {} sent, {} MiB resident",
                        received.load(Ordering::Relaxed),
                        rss_kib() / 1024
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    rt.block_on(async {
        let state = worker.start_campaign("bench").await.expect("freeze");
        assert_eq!(state.recipients as usize, n);
        let frozen = started.elapsed();
        println!("froze {n} recipients in {:.2} s", frozen.as_secs_f64());
        while received.load(Ordering::Relaxed) < n as u64 {
            worker.campaigns_tick().await.expect("tick");
            let sent = worker.deliver_outbox().await.expect("deliver");
            if external.is_some() {
                received.fetch_add(sent as u64, Ordering::Relaxed);
            }
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let _ = sampler.join();
    println!(
        "{n} emails (DKIM {dkim}) rendered, signed and sent in {secs:.2} s = {:.0} emails/s; resident {} MiB at start, {} MiB peak, {} MiB at end",
        n as f64 / secs,
        start_rss / 1024,
        peak.load(Ordering::Relaxed) / 1024,
        rss_kib() / 1024
    );
    if postgres {
        store
            .write(move |c| c.execute_batch(&format!("DROP SCHEMA {pg_schema} CASCADE")))
            .wait()
            .expect("drop schema");
    }
}
