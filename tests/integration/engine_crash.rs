//! The engine's crash test: a worker process runs 2,000 executions of a workflow
//! with a timer, an email and an HTTP call, and is killed with SIGKILL at random
//! moments (at least 10 times, seed printed, progress checked after each kill),
//! then restarted. In the end every execution completed exactly once, the outbox
//! holds one message per execution (and the dev outbox one `.eml`), and the HTTP
//! server processed each idempotency key once. `FUNNEL_CRASH_SEED` replays a run.
//!
//! The worker is this test binary, re-run on `engine_crash_child_worker` with
//! `FUNNEL_ENGINE_CRASH_CHILD` naming the workspace.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use funnel::engine::ingest::Event;
use funnel::engine::worker::Worker;
use serde_json::json;

use super::engine_support::{Harness, engine_of, harness};

const EXECUTIONS: usize = 2_000;
const KILLS: usize = 12;

pub const WORKFLOW: &str = r#"name: crash
trigger: {type: custom_event, event: go, payload: {email: email, n: integer, at: datetime}}
steps:
  - id: who
    type: upsert_contact
    email: "{{ trigger.payload.email }}"
  - id: pause
    type: wait_until
    time: "{{ trigger.payload.at }}"
  - id: mail
    type: send_email
    template: note
    data: {n: "{{ trigger.payload.n }}"}
  - id: call
    type: http
    url: $SERVER/ok
    body: {n: "{{ trigger.payload.n }}"}
    timeout: 1s
    retry: {attempts: 20, backoff: 200ms, max_delay: 1s}
  - id: done
    type: add_tag
    tags: [done]
"#;

/// The child: a worker on the workspace, until killed.
#[test]
fn engine_crash_child_worker() {
    let Some(dir) = std::env::var_os("FUNNEL_ENGINE_CRASH_CHILD") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let engine = Arc::new(engine_of(&dir));
    let store = crate::backend::open(&dir);
    let worker = Worker::new(store, engine).expect("worker");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(worker.run(std::future::pending()))
        .expect("worker runs");
}

fn count(root: &Path, sql: &str) -> i64 {
    crate::backend::scalar(root, sql, &[])
}

fn spawn_worker(bin: &Path, dir: &Path) -> std::process::Child {
    Command::new(bin)
        .args([
            "--exact",
            "engine_crash::engine_crash_child_worker",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("FUNNEL_ENGINE_CRASH_CHILD", dir)
        .env("FUNNEL_TEST_RUN", crate::backend::run_id())
        .env_remove("FUNNEL_LOG")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("worker.log"))
                .map_or(Stdio::null(), Stdio::from),
        )
        .spawn()
        .expect("start the worker")
}

#[test]
fn executions_complete_exactly_once_through_sigkills() {
    let bin: PathBuf = std::env::current_exe().expect("test binary");
    let seed = super::support::crash_seed("engine crash test");
    let mut rng = funnel::rng::Rng::new(seed);
    let h = harness(&[("workflows/crash.yaml", WORKFLOW)]);
    let dir = h.root();
    let db = dir.clone();
    // Start every execution; each parks until its own moment, spread over the
    // next dozen seconds so the kills land while work is going on.
    start_parked(&h, EXECUTIONS, funnel::store::now_ms() + 1_000, 8);
    assert_eq!(
        count(&db, "SELECT count(*) FROM executions"),
        EXECUTIONS as i64
    );

    let completed = "SELECT count(*) FROM executions WHERE status = 'completed'";
    let mut last = 0;
    for kill in 0..KILLS {
        let mut child = spawn_worker(&bin, &dir);
        std::thread::sleep(Duration::from_millis(300 + rng.below(1700)));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let problems = crate::backend::open(&db).check().expect("check");
        assert!(
            problems.is_empty(),
            "kill {kill}: integrity check failed: {problems:?}"
        );
        let done = count(&db, completed);
        assert!(
            done >= last,
            "kill {kill}: completed went from {last} to {done}"
        );
        let failed = count(
            &db,
            "SELECT count(*) FROM executions WHERE status = 'failed'",
        );
        assert_eq!(failed, 0, "kill {kill}: executions failed");
        eprintln!("kill {kill}: {done} of {EXECUTIONS} completed");
        last = done;
    }
    // The last worker runs to the end.
    let mut child = spawn_worker(&bin, &dir);
    let deadline = Instant::now() + Duration::from_secs(180);
    let outbox_sent = "SELECT count(*) FROM outbox WHERE status = 'sent'";
    while count(&db, completed) < EXECUTIONS as i64 || count(&db, outbox_sent) < EXECUTIONS as i64 {
        if Instant::now() >= deadline {
            let stuck: Vec<String> = crate::backend::column(
                &db,
                "SELECT e.status || ' | ' || e.state || ' | ' || coalesce((SELECT min(kind || '@' || due_at) \
                 FROM timers t WHERE t.execution_id = e.id), '') FROM executions e \
                 WHERE status != 'completed' LIMIT 3",
            );
            panic!(
                "not finished: {} completed, {} emails delivered, {} timers (now {}); stuck:\n{}",
                count(&db, completed),
                count(&db, outbox_sent),
                count(&db, "SELECT count(*) FROM timers"),
                funnel::store::now_ms(),
                stuck.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().expect("stop the worker");
    let _ = child.wait();

    let log = std::fs::read_to_string(dir.join("worker.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "a worker panicked:\n{log}");
    assert_eq!(count(&db, completed), EXECUTIONS as i64);
    assert_each_once(&h, EXECUTIONS);
}

/// Starts `n` executions of [`WORKFLOW`], each parked until its own moment:
/// `base`, then one every `step_ms`.
pub fn start_parked(h: &Harness, n: usize, base: i64, step_ms: i64) {
    h.rt.block_on(async {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let w: Worker = h.worker.clone();
                let at = jiff::Timestamp::from_millisecond(base + step_ms * i as i64)
                    .expect("time")
                    .to_string();
                tokio::spawn(async move {
                    w.ingest(Event {
                        kind: "custom_event".into(),
                        data: json!({"event": "go", "payload": {"email": format!("p{i}@example.org"), "n": i, "at": at}}),
                        ..Event::default()
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect("ingest");
        }
    });
}

/// Every one of `n` executions of [`WORKFLOW`] ran its last step once, queued and
/// delivered one message, and had its call processed under one key.
pub fn assert_each_once(h: &Harness, n: usize) {
    let dir = h.root();
    let db = dir.clone();
    assert_eq!(
        count(&db, "SELECT count(*) FROM step_runs WHERE step_id = 'done'"),
        n as i64
    );
    assert_eq!(count(&db, "SELECT count(*) FROM outbox"), n as i64);
    assert_eq!(
        count(&db, "SELECT count(DISTINCT execution_id) FROM email_sends"),
        n as i64,
        "one message per execution"
    );
    let emls = std::fs::read_dir(dir.join(".funnel/outbox"))
        .expect("outbox folder")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .count();
    assert_eq!(emls, n, "one .eml per message");
    // Each execution's call was processed under one key, and no call under two.
    let processed = h.http.processed_keys();
    assert_eq!(processed.len(), n, "keys processed by the server");
    let mut keys_by_n: std::collections::BTreeMap<i64, std::collections::BTreeSet<String>> =
        std::collections::BTreeMap::new();
    for r in h.http.requests() {
        let n = r.body["n"].as_i64().expect("body.n");
        keys_by_n.entry(n).or_default().insert(
            r.headers
                .get("idempotency-key")
                .cloned()
                .unwrap_or_default(),
        );
    }
    assert_eq!(keys_by_n.len(), n, "every execution called");
    for (n, keys) in &keys_by_n {
        assert_eq!(
            keys.len(),
            1,
            "execution {n} called under several keys: {keys:?}"
        );
        let key = keys.iter().next().expect("one key");
        assert!(processed.contains_key(key), "key {key} never processed");
    }
}
