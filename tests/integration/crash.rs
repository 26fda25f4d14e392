//! The crash test: a child process writes in a loop through the store's writer and
//! is killed with SIGKILL at random moments. After each kill, every write the child
//! reported durable must be in the store, and the store must pass its integrity
//! check. The seed is printed; set `FUNNEL_CRASH_SEED` to replay a run.
//!
//! The child is this test binary itself, re-run on the test `crash_child_writer`
//! with `FUNNEL_CRASH_CHILD` naming the database; without that variable the child
//! test returns at once.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KILLS: usize = 12;

const WRITERS: i64 = 8;

/// The child: eight threads write numbered rows through the store's writer and
/// print `ack WRITER SEQ` after each durable write, until killed. Each writer goes on
/// from the highest number it finds, so the store holds 0..=n without gaps.
#[test]
#[allow(clippy::print_stdout)]
fn crash_child_writer() {
    use std::io::Write as _;
    let Some(path) = std::env::var_os("FUNNEL_CRASH_CHILD") else {
        return;
    };
    let store = funnel::store::SqliteStore::open(
        std::path::Path::new(&path),
        funnel::model::config::Synchronous::Full,
    )
    .expect("open store");
    store
        .write(|c| {
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS crash_probe (
                    id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, seq INTEGER NOT NULL,
                    payload TEXT NOT NULL, UNIQUE (writer, seq))",
            )?;
            Ok(())
        })
        .wait()
        .expect("create probe table");
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                let start: i64 = store
                    .read(|c| {
                        c.query_row(
                            "SELECT coalesce(max(seq) + 1, 0) FROM crash_probe WHERE writer = ?1",
                            funnel::db_params![w],
                            |r| r.get(0),
                        )
                    })
                    .expect("read start");
                for seq in start.. {
                    store
                        .write(move |c| {
                            c.prepare_cached(
                                "INSERT INTO crash_probe (writer, seq, payload) VALUES (?1, ?2, ?3)",
                            )?
                            .execute(funnel::db_params![w, seq, "x".repeat(200)])?;
                            Ok(())
                        })
                        .wait()
                        .expect("durable write");
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "ack {w} {seq}");
                    let _ = out.flush();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn every_acknowledged_write_survives_sigkill() {
    let bin: PathBuf = std::env::current_exe().expect("test binary path");
    let seed = super::support::crash_seed("crash test");
    let mut rng = funnel::rng::Rng::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("funnel.db");
    let acked: Arc<Mutex<BTreeMap<i64, i64>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let mut last_total = 0usize;

    for kill in 0..KILLS {
        let mut child = Command::new(&bin)
            .args([
                "--exact",
                "crash::crash_child_writer",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("FUNNEL_CRASH_CHILD", &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the writer");
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = acked.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let mut parts = line.split_whitespace().skip(1);
                if let (Some(w), Some(s)) = (parts.next(), parts.next())
                    && let (Ok(w), Ok(s)) = (w.parse::<i64>(), s.parse::<i64>())
                {
                    let mut map = sink.lock().expect("lock");
                    let e = map.entry(w).or_insert(s);
                    *e = (*e).max(s);
                }
            }
        });
        // Let it make progress, then kill it at a random moment.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let total: usize = acked
                .lock()
                .expect("lock")
                .values()
                .map(|s| *s as usize + 1)
                .sum();
            if total > last_total {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "kill {kill}: the writer made no progress"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(20 + rng.below(300)));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        reader.join().expect("reader");

        let acked_now = acked.lock().expect("lock").clone();
        let conn = rusqlite::Connection::open(&db).expect("reopen after kill");
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(ok, "ok", "kill {kill}: integrity check failed");
        for (w, max_acked) in &acked_now {
            let (count, max): (i64, i64) = conn
                .query_row(
                    "SELECT count(*), coalesce(max(seq), -1) FROM crash_probe WHERE writer = ?1",
                    [w],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .expect("probe");
            assert!(
                max >= *max_acked,
                "kill {kill}: writer {w} acknowledged {max_acked}, store has {max}"
            );
            assert_eq!(count, max + 1, "kill {kill}: writer {w} has gaps");
        }
        let total: usize = acked_now.values().map(|s| *s as usize + 1).sum();
        eprintln!("kill {kill}: {total} acknowledged writes, all present");
        last_total = total;
    }
}
