//! Every logic kind through real executions: the branch taken, the join, the
//! concurrency cap, the loop bound, timers, awaited events, sub-workflows, stop,
//! fail and error handling.

use serde_json::json;

use super::engine_support::{DAY, HOUR, T0, harness};

/// A workflow started by the custom event `go` with an optional payload.
fn go(name: &str, steps: &str) -> String {
    format!(
        "name: {name}\ntrigger:\n  type: custom_event\n  event: go\n  payload:\n    n: integer\n    email: email\nsteps:\n{steps}"
    )
}

fn payload(n: i64, email: &str) -> serde_json::Value {
    json!({"event": "go", "payload": {"n": n, "email": email}})
}

#[test]
fn if_and_switch_take_their_branches() {
    let wf = go(
        "branches",
        r#"
  - id: check
    type: if
    condition: trigger.payload.n > 5
    then: big
    else: small
  - id: big
    type: set_vars
    vars: {size: big}
    next: pick
  - id: small
    type: set_vars
    vars: {size: small}
  - id: pick
    type: switch
    cases:
      - when: vars.size == "big"
        next: case_big
    default: case_default
  - id: case_big
    type: log
    message: big
    next: end
  - id: case_default
    type: log
    message: default
"#,
    );
    let h = harness(&[("workflows/branches.yaml", &wf)]);
    h.emit("custom_event", payload(9, "a@example.org"));
    assert_eq!(h.path("branches"), ["check", "big", "pick", "case_big"]);
    let h = harness(&[("workflows/branches.yaml", &wf)]);
    h.emit("custom_event", payload(1, "a@example.org"));
    assert_eq!(
        h.path("branches"),
        ["check", "small", "pick", "case_default"]
    );
    assert_eq!(h.output("branches", "check"), json!({"result": false}));
}

#[test]
fn parallel_branches_join_before_the_next_step() {
    let wf = go(
        "fan",
        r#"
  - id: fan
    type: parallel
    branches:
      a:
        - id: a1
          type: set_vars
          vars: {a: 1}
      b:
        - id: b_wait
          type: delay
          duration: 1h
        - id: b1
          type: set_vars
          vars: {b: 2}
  - id: joined
    type: log
    message: "{{ vars.a }} {{ vars.b }}"
"#,
    );
    let h = harness(&[("workflows/fan.yaml", &wf)]);
    h.emit("custom_event", payload(1, "a@example.org"));
    assert_eq!(h.statuses("fan"), ["waiting"]);
    assert!(!h.path("fan").contains(&"joined".to_string()));
    h.tick(T0 + HOUR);
    assert_eq!(h.statuses("fan"), ["completed"]);
    assert_eq!(h.path("fan"), ["fan", "a1", "b_wait", "b1", "joined"]);
    assert_eq!(h.output("fan", "joined")["message"], "1 2");
}

#[test]
fn for_each_keeps_to_its_concurrency_cap() {
    let wf = go(
        "each",
        r#"
  - id: each
    type: for_each
    items: "[10, 20, 30, 40, 50]"
    concurrency: 2
    steps:
      - id: pause
        type: delay
        duration: 1h
      - id: note
        type: log
        message: "item {{ item }} at {{ index }}"
  - id: done
    type: log
    message: done
"#,
    );
    let h = harness(&[("workflows/each.yaml", &wf)]);
    h.emit("custom_event", payload(1, "a@example.org"));
    let runs = |step: &str| {
        h.count(&format!(
            "SELECT count(*) FROM step_runs WHERE step_id = '{step}'"
        ))
    };
    assert_eq!(runs("pause"), 2, "only two items in flight");
    h.tick(T0 + HOUR);
    assert_eq!((runs("note"), runs("pause")), (2, 4));
    h.tick(T0 + 2 * HOUR);
    assert_eq!((runs("note"), runs("pause")), (4, 5));
    h.tick(T0 + 3 * HOUR);
    assert_eq!(h.statuses("each"), ["completed"]);
    let mut notes = h.column(
        "SELECT json_extract(output, '$.message') FROM step_runs WHERE step_id = 'note' ORDER BY 1",
    );
    notes.sort();
    assert_eq!(
        notes,
        [
            "item 10 at 0",
            "item 20 at 1",
            "item 30 at 2",
            "item 40 at 3",
            "item 50 at 4"
        ]
    );
    assert_eq!(h.output("each", "each"), json!({"count": 5}));
}

#[test]
fn loops_stop_at_max_iterations() {
    let wf = go(
        "counter",
        r#"
  - id: init
    type: set_vars
    vars: {i: 0}
  - id: bump
    type: set_vars
    vars: {i: "{{ vars.i + 1 }}"}
  - id: again
    type: loop
    to: bump
    max_iterations: 3
    while: vars.i < 10
  - id: report
    type: log
    message: "i={{ vars.i }}"
"#,
    );
    let h = harness(&[("workflows/counter.yaml", &wf)]);
    h.emit("custom_event", payload(1, "a@example.org"));
    assert_eq!(h.statuses("counter"), ["completed"]);
    assert_eq!(
        h.count("SELECT count(*) FROM step_runs WHERE step_id = 'bump'"),
        4
    );
    assert_eq!(h.output("counter", "report")["message"], "i=4");
}

#[test]
fn delays_and_wait_until_are_stored_timers() {
    let wf = go(
        "timers",
        r#"
  - id: pause
    type: delay
    duration: 2d
  - id: until
    type: wait_until
    time: "2026-01-08T12:00:00Z"
  - id: fin
    type: log
    message: ok
"#,
    );
    let h = harness(&[("workflows/timers.yaml", &wf)]);
    h.emit("custom_event", payload(1, "a@example.org"));
    assert_eq!(
        h.count("SELECT count(*) FROM timers WHERE kind = 'wake'"),
        1
    );
    h.tick(T0 + 2 * DAY - 1);
    assert_eq!(h.path("timers"), ["pause"]);
    h.tick(T0 + 2 * DAY);
    assert_eq!(h.path("timers"), ["pause", "until"]);
    let jan8_noon = T0 + 3 * DAY + 3 * HOUR;
    h.tick(jan8_noon - 1);
    assert_eq!(h.statuses("timers"), ["waiting"]);
    h.tick(jan8_noon);
    assert_eq!(h.statuses("timers"), ["completed"]);
    assert_eq!(h.count("SELECT count(*) FROM timers"), 0);
}

#[test]
fn wait_for_event_resumes_on_a_match_or_times_out() {
    let wf = go(
        "demo",
        r#"
  - id: who
    type: upsert_contact
    email: "{{ trigger.payload.email }}"
  - id: wait
    type: wait_for_event
    event: demo_booked
    match: event.data.kind == "demo"
    within: 2d
    on_timeout: nudge
  - id: booked
    type: add_tag
    tags: [booked]
    next: end
  - id: nudge
    type: add_tag
    tags: [nudged]
"#,
    );
    let h = harness(&[("workflows/demo.yaml", &wf)]);
    h.emit("custom_event", payload(1, "a@example.org"));
    h.emit("custom_event", payload(1, "b@example.org"));
    assert_eq!(h.statuses("demo"), ["waiting", "waiting"]);
    // An event that does not match leaves the wait alone.
    let miss = h.emit_at(
        T0 + HOUR,
        "custom_event",
        json!({"event": "demo_booked", "email": "a@example.org", "kind": "call"}),
    );
    assert!(miss.resumed.is_empty());
    let hit = h.emit_at(
        T0 + 2 * HOUR,
        "custom_event",
        json!({"event": "demo_booked", "email": "a@example.org", "kind": "demo"}),
    );
    assert_eq!(hit.resumed.len(), 1);
    assert_eq!(h.statuses("demo"), ["completed", "waiting"]);
    h.tick(T0 + 2 * DAY);
    assert_eq!(h.statuses("demo"), ["completed", "completed"]);
    let tags = h.column(
        "SELECT c.email || ':' || t.tag FROM contact_tags t JOIN contacts c ON c.id = t.contact_id ORDER BY 1",
    );
    assert_eq!(tags, ["a@example.org:booked", "b@example.org:nudged"]);
    assert_eq!(h.count("SELECT count(*) FROM event_waits"), 0);
}

#[test]
fn sub_workflows_run_and_hand_back_their_variables() {
    let parent = go(
        "parent",
        r#"
  - id: child
    type: sub_workflow
    workflow: child
    input: {x: "{{ trigger.payload.n }}"}
  - id: after
    type: log
    message: "child said {{ steps.child.vars.answer }}"
"#,
    );
    let child = r#"name: child
trigger: {type: custom_event, event: never}
steps:
  - id: pause
    type: delay
    duration: 1h
  - id: compute
    type: set_vars
    vars: {answer: "{{ trigger.input.x * 2 }}"}
"#;
    let h = harness(&[
        ("workflows/parent.yaml", &parent),
        ("workflows/child.yaml", child),
    ]);
    h.emit("custom_event", payload(5, "a@example.org"));
    assert_eq!(h.statuses("parent"), ["waiting"]);
    assert_eq!(h.statuses("child"), ["waiting"]);
    h.tick(T0 + HOUR);
    assert_eq!(h.statuses("child"), ["completed"]);
    assert_eq!(h.statuses("parent"), ["completed"]);
    assert_eq!(h.output("parent", "after")["message"], "child said 10");
}

#[test]
fn stop_ends_and_fail_fails_into_the_error_workflow() {
    let stopper = go("stopper", "  - id: s\n    type: stop\n");
    let failer = format!(
        "{}error_workflow: on-fail\n",
        go(
            "failer",
            "  - id: f\n    type: fail\n    message: \"bad {{ trigger.payload.n }}\"\n",
        )
    );
    let on_fail = r#"name: on fail
trigger:
  type: custom_event
  event: workflow.failed
  payload: {workflow: string, execution_id: string, step: string, error: string}
steps:
  - id: record
    type: log
    message: "{{ trigger.payload.workflow }} failed at {{ trigger.payload.step }}: {{ trigger.payload.error }}"
"#;
    let h = harness(&[
        ("workflows/stopper.yaml", &stopper),
        ("workflows/failer.yaml", &failer),
        ("workflows/on-fail.yaml", on_fail),
    ]);
    h.emit("custom_event", payload(3, "a@example.org"));
    assert_eq!(h.statuses("stopper"), ["completed"]);
    assert_eq!(h.path("stopper"), ["s"]);
    assert_eq!(h.statuses("failer"), ["failed"]);
    assert_eq!(
        h.one("SELECT error FROM executions WHERE workflow_id = 'failer'"),
        "step `f`: bad 3"
    );
    assert_eq!(h.statuses("on-fail"), ["completed"]);
    assert_eq!(
        h.output("on-fail", "record")["message"],
        "failer failed at f: step `f`: bad 3"
    );
}

#[test]
fn run_time_errors_are_recorded_and_handled_by_on_error() {
    let wf = go(
        "oops",
        r#"
  - id: divide
    type: set_vars
    vars: {x: "{{ trigger.payload.n // 0 }}"}
    on_error: {goto: handler}
  - id: skipped
    type: log
    message: never
  - id: handler
    type: log
    message: "handled: {{ error.step }}"
"#,
    );
    let h = harness(&[("workflows/oops.yaml", &wf)]);
    h.emit("custom_event", payload(3, "a@example.org"));
    assert_eq!(h.statuses("oops"), ["completed"]);
    assert_eq!(h.path("oops"), ["divide", "handler"]);
    let error = h.one("SELECT error FROM step_runs WHERE step_id = 'divide'");
    assert!(error.contains("trigger.payload.n // 0"), "{error}");
    assert_eq!(h.output("oops", "handler")["message"], "handled: divide");
    // Bad trigger data fails the execution before its first step, with the reason.
    h.emit(
        "custom_event",
        json!({"event": "go", "payload": {"n": "three", "email": "a@example.org"}}),
    );
    let statuses = h.statuses("oops");
    assert_eq!(statuses, ["completed", "failed"]);
    let why = h.one("SELECT error FROM executions WHERE status = 'failed'");
    assert!(
        why.contains("payload.n") && why.contains("integer"),
        "{why}"
    );
}

#[test]
fn a_workflow_concurrency_limit_queues_the_rest() {
    let wf = format!(
        "{}concurrency: 1\n",
        go(
            "one-at-a-time",
            "  - id: pause\n    type: delay\n    duration: 1h\n  - id: fin\n    type: log\n    message: \"{{ trigger.payload.n }}\"\n",
        )
    );
    let h = harness(&[("workflows/one-at-a-time.yaml", &wf)]);
    for n in 1..=3 {
        h.emit("custom_event", payload(n, "a@example.org"));
    }
    assert_eq!(h.statuses("one-at-a-time"), ["waiting", "queued", "queued"]);
    h.tick(T0 + HOUR);
    assert_eq!(
        h.statuses("one-at-a-time"),
        ["completed", "waiting", "queued"]
    );
    // Cancelling the running one lets the next start at once.
    let second = h.one("SELECT uid FROM executions ORDER BY id LIMIT 1 OFFSET 1");
    let cancelled =
        h.rt.block_on(h.worker.transact(T0 + HOUR, move |ctx| {
            funnel::engine::manage::cancel(ctx, &second, "test")
        }))
        .expect("cancel");
    assert!(cancelled);
    assert_eq!(
        h.statuses("one-at-a-time"),
        ["completed", "cancelled", "waiting"]
    );
    h.tick(T0 + 2 * HOUR);
    assert_eq!(
        h.statuses("one-at-a-time"),
        ["completed", "cancelled", "completed"]
    );
    assert_eq!(
        h.column("SELECT json_extract(output, '$.message') FROM step_runs WHERE step_id = 'fin' ORDER BY id"),
        ["1", "3"]
    );
}

#[test]
fn a_failed_execution_is_retried_from_the_step_that_failed() {
    let wf = go(
        "fragile",
        r#"
  - id: who
    type: upsert_contact
    email: "{{ trigger.payload.email }}"
  - id: gate
    type: fail
    when: '"fixed" not in contact.tags'
    message: not yet
  - id: after
    type: add_tag
    tags: [done]
"#,
    );
    let h = harness(&[("workflows/fragile.yaml", &wf)]);
    h.emit("custom_event", payload(1, "r@example.org"));
    assert_eq!(h.statuses("fragile"), ["failed"]);
    let uid = h.one("SELECT uid FROM executions");
    // The operator fixes the cause, then retries.
    h.store()
        .write(|c| {
            c.execute(
                "INSERT INTO contact_tags (contact_id, tag, added_at) SELECT id, 'fixed', 0 FROM contacts",
                funnel::db_params![],
            )
        })
        .wait()
        .expect("fix");
    let status =
        h.rt.block_on(h.worker.transact(T0 + HOUR, move |ctx| {
            funnel::engine::manage::retry(ctx, &uid, "test")
        }))
        .expect("retry");
    assert_eq!(status, "completed");
    assert_eq!(h.path("fragile"), ["who", "gate", "after"]);
    assert_eq!(
        h.count("SELECT count(*) FROM step_runs WHERE step_id = 'who'"),
        1,
        "not re-run"
    );
    assert_eq!(
        h.count("SELECT count(*) FROM audit_log WHERE action = 'retry'"),
        1
    );
    // Retrying a completed execution is refused with a reason.
    let uid = h.one("SELECT uid FROM executions");
    let again = h.rt.block_on(h.worker.transact(T0 + HOUR, move |ctx| {
        funnel::engine::manage::retry(ctx, &uid, "test")
    }));
    assert!(again.is_err_and(|e| e.to_string().contains("only failed executions")));
}
