//! Durability across changes: an execution finishes on the version it started
//! with after its file changed, and cron occurrences fire once each across
//! daylight-saving changes with two workers sharing one store.

use std::sync::Arc;

use funnel::engine::worker::Worker;
use serde_json::json;

use super::engine_support::{DAY, HOUR, T0, engine_of, harness};

fn drip(tag: &str) -> String {
    format!(
        r#"name: drip
trigger: {{type: custom_event, event: go, payload: {{email: email}}}}
steps:
  - id: who
    type: upsert_contact
    email: "{{{{ trigger.payload.email }}}}"
  - id: wait_a_day
    type: delay
    duration: 1d
  - id: mark_{tag}
    type: add_tag
    tags: [{tag}]
"#
    )
}

#[test]
fn a_parked_execution_finishes_on_its_own_version() {
    let h = harness(&[("workflows/drip.yaml", &drip("v1"))]);
    h.emit(
        "custom_event",
        json!({"event": "go", "payload": {"email": "old@example.org"}}),
    );
    assert_eq!(h.statuses("drip"), ["waiting"]);
    // Edit the workflow; a new worker (as after a deploy) loads the new version.
    std::fs::write(h.root().join("workflows/drip.yaml"), drip("v2")).expect("edit");
    let engine = Arc::new(engine_of(&h.root()));
    let store = crate::backend::open(&h.root());
    let worker = Worker::new(store, engine).expect("worker");
    worker.set_time(T0 + HOUR);
    h.rt.block_on(async {
        worker.prepare(T0 + HOUR).await.expect("prepare");
        worker
            .ingest_at(
                funnel::engine::ingest::Event {
                    kind: "custom_event".into(),
                    data: json!({"event": "go", "payload": {"email": "new@example.org"}}),
                    ..Default::default()
                },
                T0 + HOUR,
            )
            .await
            .expect("ingest");
        worker.set_time(T0 + 2 * DAY);
        worker.tick_at(T0 + 2 * DAY).await.expect("tick");
    });
    assert_eq!(h.statuses("drip"), ["completed", "completed"]);
    assert_eq!(
        h.column(
            "SELECT c.email || ':' || t.tag FROM contact_tags t JOIN contacts c ON c.id = t.contact_id ORDER BY 1"
        ),
        ["new@example.org:v2", "old@example.org:v1"]
    );
    assert_eq!(
        h.count("SELECT count(DISTINCT version_hash) FROM executions"),
        2
    );
    assert_eq!(
        h.count("SELECT count(*) FROM workflow_versions WHERE workflow_id = 'drip'"),
        2
    );
}

#[test]
fn every_worker_starts_new_executions_on_the_store_s_active_version() {
    let gone = "name: gone\ntrigger: {type: custom_event, event: go}\nsteps:\n  - {id: mark, type: log, message: gone}\n";
    let h = harness(&[
        ("workflows/drip.yaml", &drip("v1")),
        ("workflows/gone.yaml", gone),
    ]);
    // A second worker started from a newer checkout deploys v2 to the store, with
    // a workflow the first checkout lacks and without one it has.
    let newer = tempfile::tempdir().expect("tempdir");
    super::support::copy_tree(&h.root(), newer.path());
    std::fs::write(newer.path().join("workflows/drip.yaml"), drip("v2")).expect("edit");
    std::fs::remove_file(newer.path().join("workflows/gone.yaml")).expect("remove");
    std::fs::write(
        newer.path().join("workflows/added.yaml"),
        "name: added\ntrigger: {type: custom_event, event: go}\nsteps:\n  - {id: mark, type: log, message: added}\n",
    )
    .expect("add");
    let second = Worker::new(
        crate::backend::open(&h.root()),
        Arc::new(engine_of(newer.path())),
    )
    .expect("worker");
    h.rt.block_on(second.prepare(T0)).expect("prepare");
    // The first worker, still on its v1 checkout, starts the next executions: on
    // v2, and of the newer checkout's workflows.
    h.emit(
        "custom_event",
        json!({"event": "go", "payload": {"email": "late@example.org"}}),
    );
    h.tick(T0 + 2 * DAY);
    assert_eq!(
        h.column(
            "SELECT c.email || ':' || t.tag FROM contact_tags t JOIN contacts c ON c.id = t.contact_id ORDER BY 1"
        ),
        ["late@example.org:v2"]
    );
    assert_eq!(
        h.column("SELECT workflow_id FROM executions ORDER BY workflow_id"),
        ["added", "drip"]
    );
    assert_eq!(
        h.count("SELECT count(DISTINCT version_hash) FROM executions"),
        2
    );
}

/// Two workers on one store tick in turn every 15 minutes from `from` to `to`.
fn two_workers_over(
    cron: &str,
    from: i64,
    to: i64,
) -> (super::engine_support::Harness, Vec<String>) {
    let wf = format!(
        "name: cron\ntrigger:\n  type: schedule\n  cron: \"{cron}\"\n  timezone: Europe/Berlin\nsteps:\n  - id: seen\n    type: log\n    message: \"{{{{ trigger.scheduled_at }}}}\"\n"
    );
    let h = harness(&[("workflows/cron.yaml", &wf)]);
    let second = Worker::new(
        crate::backend::open(&h.root()),
        Arc::new(engine_of(&h.root())),
    )
    .expect("worker");
    // Forget the harness's plan (made at T0): both workers start at `from`.
    h.store()
        .write(|c| c.execute("DELETE FROM timers", funnel::db_params![]))
        .wait()
        .expect("reset");
    h.worker.set_time(from);
    second.set_time(from);
    h.rt.block_on(async {
        h.worker.prepare(from).await.expect("prepare");
        second.prepare(from).await.expect("prepare");
    });
    let mut t = from;
    let mut turn = 0;
    while t <= to {
        let w = if turn % 2 == 0 { &h.worker } else { &second };
        w.set_time(t);
        h.rt.block_on(w.tick_at(t)).expect("tick");
        turn += 1;
        t += 15 * 60_000;
    }
    let fired = h.column("SELECT json_extract(output, '$.message') FROM step_runs ORDER BY id");
    (h, fired)
}

fn utc(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>()
        .expect("time")
        .as_millisecond()
}

#[test]
fn hourly_cron_fires_once_per_hour_through_the_autumn_change() {
    // Berlin leaves summer time on 2026-10-25 at 03:00 CEST (01:00 UTC): the local
    // hour 02:00 happens twice, and each of the two is its own UTC hour.
    let (_h, fired) = two_workers_over(
        "0 * * * *",
        utc("2026-10-24T21:50:00Z"),
        utc("2026-10-25T04:10:00Z"),
    );
    assert_eq!(
        fired,
        [
            "2026-10-24T22:00:00Z",
            "2026-10-24T23:00:00Z",
            "2026-10-25T00:00:00Z",
            "2026-10-25T01:00:00Z",
            "2026-10-25T02:00:00Z",
            "2026-10-25T03:00:00Z",
            "2026-10-25T04:00:00Z",
        ]
    );
}

#[test]
fn daily_cron_fires_once_a_day_through_the_spring_change() {
    // 02:30 does not exist in Berlin on 2026-03-29 (clocks jump from 02:00 to
    // 03:00); the day still gets exactly one run, and the days around it theirs.
    let (_h, fired) = two_workers_over(
        "30 2 * * *",
        utc("2026-03-27T12:00:00Z"),
        utc("2026-03-30T12:00:00Z"),
    );
    assert_eq!(fired.len(), 3, "{fired:?}");
    assert_eq!(fired[0], "2026-03-28T01:30:00Z");
    assert!(fired[1].starts_with("2026-03-29T"), "{fired:?}");
    assert_eq!(fired[2], "2026-03-30T00:30:00Z");
    let mut unique = fired.clone();
    unique.dedup();
    assert_eq!(unique, fired, "no occurrence twice");
}
