//! Several `funnel worker` processes on one store. Three workers (the real binary)
//! run 20,000 executions on PostgreSQL (2,000 on SQLite, where the processes take
//! turns at the one writer) of a workflow with a timer, an email to the outbox and
//! an HTTP call to a loopback server, while a cron workflow fires every two
//! seconds. One worker is killed with SIGKILL part-way. In the end every execution
//! completed once, every email was queued and delivered once, the server
//! processed each call's key once, no cron occurrence fired twice, and the work
//! the killed worker held was finished by the others.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::engine_support::harness;

const CRON: &str = "name: tick\ntrigger:\n  type: schedule\n  cron: \"*/2 * * * * *\"\nsteps:\n  - id: seen\n    type: log\n    message: \"{{ trigger.scheduled_at }}\"\n";

fn count(root: &Path, sql: &str) -> i64 {
    crate::backend::scalar(root, sql, &[])
}

fn spawn_worker(root: &Path, n: usize) -> Child {
    super::support::funnel_for(root)
        .args(["worker"])
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(root.join(format!("worker-{n}.log")))
                .map_or(Stdio::null(), Stdio::from),
        )
        .spawn()
        .expect("start funnel worker")
}

/// Whether each surviving worker still runs, and the end of its log: what a
/// stalled run needs to be understood.
fn survivors(root: &Path, workers: &mut [Child]) -> String {
    let mut out = String::new();
    for (i, w) in workers.iter_mut().enumerate() {
        let n = i + 1;
        let state = match w.try_wait() {
            Ok(Some(status)) => format!("exited ({status})"),
            Ok(None) => "running".to_string(),
            Err(e) => format!("unknown ({e})"),
        };
        let log = std::fs::read_to_string(root.join(format!("worker-{n}.log"))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        out.push_str(&format!("worker {n}: {state}\n"));
        for line in tail.into_iter().rev() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

#[test]
fn three_workers_share_the_work_exactly_once_through_a_sigkill() {
    let executions: usize = if crate::backend::is_postgres() {
        20_000
    } else {
        2_000
    };
    let h = harness(&[
        ("workflows/crash.yaml", super::engine_crash::WORKFLOW),
        ("workflows/tick.yaml", CRON),
    ]);
    let root = h.root();
    // Every execution parks until its own moment, spread over the next seconds, so
    // the workers share the timers and the kill lands while work goes on.
    let base = funnel::store::now_ms() + 3_000;
    super::engine_crash::start_parked(&h, executions, base, 1);
    let started = Instant::now();
    let mut workers: Vec<Child> = (0..3).map(|n| spawn_worker(&root, n)).collect();

    let completed =
        "SELECT count(*) FROM executions WHERE workflow_id = 'crash' AND status = 'completed'";
    let outbox_sent = "SELECT count(*) FROM outbox WHERE status = 'sent'";
    // Kill one once a quarter is done: it holds claimed timers, outbox leases and
    // calls in flight.
    let deadline = Instant::now() + Duration::from_secs(300);
    while count(&root, completed) < executions as i64 / 4 {
        assert!(Instant::now() < deadline, "no progress before the kill");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut victim = workers.remove(0);
    victim.kill().expect("SIGKILL");
    let _ = victim.wait();
    let at_kill = count(&root, completed);
    eprintln!("killed a worker with {at_kill} of {executions} completed");

    while count(&root, completed) < executions as i64
        || count(&root, outbox_sent) < executions as i64
    {
        let exited = workers
            .iter_mut()
            .all(|w| matches!(w.try_wait(), Ok(Some(_))));
        if exited || Instant::now() >= deadline {
            panic!(
                "not finished: {} completed, {} emails delivered, {} timers\n{}",
                count(&root, completed),
                count(&root, outbox_sent),
                count(&root, "SELECT count(*) FROM timers"),
                survivors(&root, &mut workers),
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let took = started.elapsed();
    // Let the cron run on a little while both survivors are idle.
    std::thread::sleep(Duration::from_secs(3));
    for mut w in workers {
        w.kill().expect("stop a worker");
        let _ = w.wait();
    }
    eprintln!("{executions} executions on 3 workers (one killed) in {took:?}");

    for n in 0..3 {
        let log = std::fs::read_to_string(root.join(format!("worker-{n}.log"))).unwrap_or_default();
        assert!(!log.contains("panicked"), "worker {n} panicked:\n{log}");
    }
    assert_eq!(
        count(
            &root,
            "SELECT count(*) FROM executions WHERE workflow_id = 'crash'"
        ),
        executions as i64,
        "no execution started twice"
    );
    assert_eq!(
        count(
            &root,
            "SELECT count(*) FROM step_runs WHERE step_id = 'done' AND status = 'completed'"
        ),
        executions as i64,
        "every execution ran its last step once"
    );
    super::engine_crash::assert_each_once(&h, executions);
    assert_eq!(
        count(
            &root,
            "SELECT count(*) FROM contact_tags WHERE tag = 'done'"
        ),
        executions as i64
    );
    // The cron fired, and each occurrence once, across the three workers.
    let fired = count(
        &root,
        "SELECT count(*) FROM executions WHERE workflow_id = 'tick'",
    );
    let occurrences = count(
        &root,
        "SELECT count(DISTINCT json_extract(trigger_data, '$.scheduled_at')) FROM executions \
         WHERE workflow_id = 'tick'",
    );
    assert!(fired >= 3, "the cron fired {fired} times");
    assert_eq!(fired, occurrences, "a cron occurrence fired twice");
}
