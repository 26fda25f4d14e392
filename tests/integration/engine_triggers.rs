//! Every trigger kind, fed through the one ingestion function the way its producer
//! (forms, the tracking script, the CRM, email events, webhooks, the scheduler)
//! will send it, asserting which workflows started and which did not.

use serde_json::json;

use super::engine_support::{DAY, HOUR, T0, harness};

/// A workflow with `trigger` (YAML, indented by 2) and one log step.
fn on(name: &str, trigger: &str) -> String {
    format!(
        "name: {name}\ntrigger:\n{trigger}steps:\n  - id: seen\n    type: log\n    message: \"{{{{ trigger.type }}}}\"\n"
    )
}

#[test]
fn crm_email_custom_webhook_and_page_triggers_start_their_workflows() {
    let driver = r#"name: driver
trigger: {type: custom_event, event: go, payload: {email: email}}
steps:
  - id: who
    type: upsert_contact
    email: "{{ trigger.payload.email }}"
  - id: tag
    type: add_tag
    tags: [newsletter]
  - id: field
    type: update_contact
    fields: {plan: pro}
  - id: score
    type: adjust_score
    points: 50
  - id: stage
    type: set_stage
    stage: customer
  - id: deal
    type: move_deal
    pipeline: sales
    stage: won
"#;
    let files = [
        ("workflows/driver.yaml", driver.to_string()),
        (
            "workflows/created.yaml",
            on("created", "  type: contact_created\n"),
        ),
        (
            "workflows/tagged.yaml",
            on("tagged", "  type: tag_added\n  tag: newsletter\n"),
        ),
        (
            "workflows/other-tag.yaml",
            on("other tag", "  type: tag_added\n  tag: vip\n"),
        ),
        (
            "workflows/plan.yaml",
            on("plan", "  type: field_changed\n  field: plan\n  to: pro\n"),
        ),
        (
            "workflows/plan-free.yaml",
            on(
                "plan free",
                "  type: field_changed\n  field: plan\n  to: free\n",
            ),
        ),
        (
            "workflows/warm.yaml",
            on(
                "warm",
                "  type: score_crossed\n  threshold: 40\n  direction: up\n",
            ),
        ),
        (
            "workflows/cooled.yaml",
            on(
                "cooled",
                "  type: score_crossed\n  threshold: 40\n  direction: down\n",
            ),
        ),
        (
            "workflows/customer.yaml",
            on("customer", "  type: stage_changed\n  to: customer\n"),
        ),
        (
            "workflows/won.yaml",
            on(
                "won",
                "  type: deal_stage_changed\n  pipeline: sales\n  stage: won\n",
            ),
        ),
        (
            "workflows/opened.yaml",
            on("opened", "  type: email_opened\n  template: note\n"),
        ),
        (
            "workflows/clicked.yaml",
            on(
                "clicked",
                "  type: email_clicked\n  url: https://go.test.example/pricing\n",
            ),
        ),
        (
            "workflows/bounced.yaml",
            on("bounced", "  type: email_bounced\n"),
        ),
        (
            "workflows/unsub.yaml",
            on("unsub", "  type: email_unsubscribed\n"),
        ),
        (
            "workflows/hook.yaml",
            on("hook", "  type: webhook\n  path: billing/paid\n"),
        ),
        (
            "workflows/scrolled.yaml",
            on(
                "scrolled",
                "  type: page_event\n  page: /guide\n  event: scroll_depth\n  threshold: 75\n",
            ),
        ),
        (
            "workflows/revisit.yaml",
            on(
                "revisit",
                "  type: page_event\n  page: /pricing\n  event: view\n  threshold: 2\n  within: 7d\n",
            ),
        ),
    ];
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let h = harness(&refs);
    h.emit(
        "custom_event",
        json!({"event": "go", "payload": {"email": "ann@example.org"}}),
    );
    let email = "ann@example.org";
    h.emit("email_opened", json!({"template": "note", "email": email}));
    h.emit("email_opened", json!({"template": "other", "email": email}));
    h.emit(
        "email_clicked",
        json!({"url": "https://go.test.example/pricing?x=1", "email": email}),
    );
    h.emit(
        "email_clicked",
        json!({"url": "https://go.test.example/blog", "email": email}),
    );
    h.emit(
        "email_bounced",
        json!({"email": email, "reason": "mailbox full"}),
    );
    h.emit("email_unsubscribed", json!({"email": email}));
    h.emit(
        "webhook",
        json!({"path": "billing/paid", "payload": {"email": email}}),
    );
    h.emit("webhook", json!({"path": "billing/refunded"}));
    h.emit(
        "page_event",
        json!({"page": "/guide", "event": "scroll_depth", "value": 50, "email": email}),
    );
    h.emit(
        "page_event",
        json!({"page": "/guide", "event": "scroll_depth", "value": 80, "email": email}),
    );
    for day in 0..3 {
        h.emit_at(
            T0 + day * DAY,
            "page_event",
            json!({"page": "/pricing", "event": "view", "email": email}),
        );
    }
    let ran = |wf: &str| {
        h.count(&format!(
            "SELECT count(*) FROM executions WHERE workflow_id = '{wf}'"
        ))
    };
    for (wf, n) in [
        ("driver", 1),
        ("created", 1),
        ("tagged", 1),
        ("other-tag", 0),
        ("plan", 1),
        ("plan-free", 0),
        ("warm", 1),
        ("cooled", 0),
        ("customer", 1),
        ("won", 1),
        ("opened", 1),
        ("clicked", 1),
        ("bounced", 1),
        ("unsub", 1),
        ("hook", 1),
        ("scrolled", 1),
        ("revisit", 1),
    ] {
        assert_eq!(ran(wf), n, "executions of {wf}");
    }
    // Each execution is about the contact the event named or changed.
    assert_eq!(
        h.count(
            "SELECT count(*) FROM executions e JOIN contacts c ON c.id = e.contact_id \
             WHERE c.email = 'ann@example.org' AND e.workflow_id != 'driver'"
        ),
        h.count("SELECT count(*) FROM executions WHERE workflow_id != 'driver'"),
    );
    assert_eq!(h.output("revisit", "seen")["message"], "page_event");
    assert_eq!(
        h.one("SELECT json_extract(trigger_data, '$.previous_score') FROM executions WHERE workflow_id = 'warm'"),
        "0"
    );
}

#[test]
fn disabled_workflows_and_failing_conditions_do_not_start() {
    let guarded = "name: guarded\ntrigger:\n  type: custom_event\n  event: go\n  payload: {n: integer}\n  conditions:\n    - trigger.payload.n > 2\nsteps:\n  - id: seen\n    type: log\n    message: ok\n";
    let h = harness(&[("workflows/guarded.yaml", guarded)]);
    let low = h.emit("custom_event", json!({"event": "go", "payload": {"n": 1}}));
    assert!(low.started.is_empty());
    assert_eq!(low.filtered, ["guarded"]);
    let high = h.emit("custom_event", json!({"event": "go", "payload": {"n": 3}}));
    assert_eq!(high.started.len(), 1);
    h.store()
        .write(|c| {
            funnel::engine::Engine::set_override(c, "guarded", Some(false), T0)
                .map_err(|e| funnel::store::StoreError::Invalid(e.to_string()))
        })
        .wait()
        .expect("disable");
    let off = h.emit("custom_event", json!({"event": "go", "payload": {"n": 3}}));
    assert!(off.started.is_empty());
}

#[test]
fn schedules_fire_each_occurrence_once_and_catch_up_once() {
    let cron = "name: cron\ntrigger:\n  type: schedule\n  cron: \"0 * * * *\"\n  timezone: UTC\nsteps:\n  - id: seen\n    type: log\n    message: \"{{ trigger.scheduled_at }}\"\n";
    let h = harness(&[("workflows/cron.yaml", cron)]);
    // T0 is 09:00 exactly; the first occurrence after it is 10:00.
    h.tick(T0 + HOUR - 1);
    assert_eq!(h.count("SELECT count(*) FROM executions"), 0);
    h.tick(T0 + HOUR);
    h.tick(T0 + HOUR + 5);
    assert_eq!(h.count("SELECT count(*) FROM executions"), 1);
    // The worker was away for five hours: one catch-up run, for the latest missed hour.
    h.tick(T0 + 6 * HOUR + 30 * 60_000);
    let seen = h.column("SELECT json_extract(output, '$.message') FROM step_runs ORDER BY id");
    assert_eq!(seen, ["2026-01-05T10:00:00Z", "2026-01-05T15:00:00Z"]);
}

#[test]
fn score_crossings_fire_in_their_direction() {
    let driver = r#"name: driver
trigger: {type: custom_event, event: go, payload: {email: email}}
steps:
  - id: who
    type: upsert_contact
    email: "{{ trigger.payload.email }}"
  - id: up
    type: adjust_score
    points: 50
  - id: down
    type: adjust_score
    points: -30
"#;
    let h = harness(&[
        ("workflows/driver.yaml", driver),
        (
            "workflows/warm.yaml",
            &on(
                "warm",
                "  type: score_crossed\n  threshold: 40\n  direction: up\n",
            ),
        ),
        (
            "workflows/cooled.yaml",
            &on(
                "cooled",
                "  type: score_crossed\n  threshold: 40\n  direction: down\n",
            ),
        ),
    ]);
    h.emit(
        "custom_event",
        json!({"event": "go", "payload": {"email": "cy@example.org"}}),
    );
    assert_eq!(h.statuses("warm"), ["completed"]);
    assert_eq!(h.statuses("cooled"), ["completed"]);
    assert_eq!(
        h.one("SELECT json_extract(trigger_data, '$.score') FROM executions WHERE workflow_id = 'cooled'"),
        "20"
    );
}
