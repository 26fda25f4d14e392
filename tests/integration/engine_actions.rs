//! Every action kind, run for real on a SQLite store file, asserting its effect: the
//! rows written, the message in the outbox and its `.eml`, the requests the
//! loopback server received.

use serde_json::json;

use super::engine_support::{T0, harness, on_go};

const GO_WITH_PAYLOAD: &str = "name: t\ntrigger:\n  type: custom_event\n  event: go\n  payload:\n    email: email\n    name: string\nsteps:\n";

#[test]
fn crm_actions_write_the_contact_rows() {
    let steps = r#"
  - id: upsert
    type: upsert_contact
    email: "{{ trigger.payload.email }}"
    name: "{{ trigger.payload.name }}"
    fields: {company: Acme, size: 42}
    tags: [lead]
    lists: [prospects]
  - id: fields
    type: update_contact
    fields: {plan: pro}
  - id: tag
    type: add_tag
    tags: ["vip-{{ contact.fields.plan }}", extra]
  - id: untag
    type: remove_tag
    tags: [extra]
  - id: score
    type: adjust_score
    points: 25
    reason: test points
  - id: stage
    type: set_stage
    stage: marketing_qualified
  - id: activity
    type: add_activity
    activity: note
    data: {subject: "called {{ contact.first_name }}"}
  - id: list_add
    type: add_to_list
    list: vip
  - id: list_remove
    type: remove_from_list
    list: prospects
  - id: deal
    type: move_deal
    pipeline: sales
    stage: demo
    value: 1200
  - id: vars
    type: set_vars
    vars: {greeting: "hi {{ contact.first_name }}", total: "{{ steps.score.score }}"}
  - id: log
    type: log
    message: "{{ vars.greeting }} scored {{ vars.total }}"
"#;
    let wf = format!("{GO_WITH_PAYLOAD}{steps}");
    let h = harness(&[("workflows/crm.yaml", &wf)]);
    h.emit(
        "custom_event",
        json!({"event": "go", "payload": {"email": "Ada@Example.org", "name": "Ada Lovelace"}}),
    );
    assert_eq!(h.statuses("crm"), ["completed"]);
    assert_eq!(
        h.one("SELECT email || '|' || name FROM contacts"),
        "ada@example.org|Ada Lovelace"
    );
    assert_eq!(
        h.column("SELECT field || '=' || coalesce(value_text, CAST(CAST(value_num AS BIGINT) AS TEXT)) FROM contact_fields ORDER BY field"),
        ["company=Acme", "plan=pro", "size=42"]
    );
    assert_eq!(
        h.column("SELECT tag FROM contact_tags ORDER BY tag"),
        ["lead", "vip-pro"]
    );
    assert_eq!(h.column("SELECT list_id FROM list_members"), ["vip"]);
    assert_eq!(
        h.one("SELECT CAST(sum(points) AS BIGINT) || ' ' || reason FROM score_adjustments GROUP BY reason"),
        "25 test points"
    );
    assert_eq!(h.one("SELECT stage FROM contacts"), "marketing_qualified");
    assert_eq!(
        h.one("SELECT type || ':' || subject FROM activities"),
        "note:called Ada"
    );
    assert_eq!(
        h.one("SELECT pipeline || '/' || stage || '/' || CAST(value AS BIGINT) FROM deals"),
        "sales/demo/1200"
    );
    assert_eq!(
        h.one("SELECT coalesce(from_stage, '-') || '>' || to_stage FROM deal_stage_history"),
        "->demo"
    );
    assert_eq!(
        h.output("crm", "vars"),
        json!({"greeting": "hi Ada", "total": 25.0})
    );
    assert_eq!(h.output("crm", "log")["message"], "hi Ada scored 25.0");
}

#[test]
fn send_email_queues_one_message_per_key_and_writes_its_eml() {
    let steps = r#"
  - id: who
    type: upsert_contact
    email: "{{ trigger.payload.email }}"
    name: "{{ trigger.payload.name }}"
  - id: mail
    type: send_email
    template: note
    data: {n: 7}
"#;
    let wf = format!("{GO_WITH_PAYLOAD}{steps}");
    let h = harness(&[("workflows/mail.yaml", &wf)]);
    h.emit(
        "custom_event",
        json!({"event": "go", "payload": {"email": "eve@example.org", "name": "Eve <b>Hacker</b>"}}),
    );
    assert_eq!(h.statuses("mail"), ["completed"]);
    let key = h.one("SELECT idempotency_key FROM outbox");
    let uid = h.one("SELECT uid FROM executions");
    assert!(key.starts_with(&format!("{uid}:mail:")), "{key}");
    assert_eq!(h.one("SELECT subject FROM outbox"), "Hello Eve 7");
    assert_eq!(h.deliver_outbox(), 1);
    assert_eq!(
        h.deliver_outbox(),
        0,
        "a delivered message is not written again"
    );
    let dir = h.root().join(".funnel/outbox");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("outbox folder")
        .flatten()
        .collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(files[0].path()).expect("eml");
    assert!(eml.contains("Subject: Hello Eve 7"), "{eml}");
    assert!(eml.contains("To: eve@example.org"), "{eml}");
    // The name is user data: escaped in the HTML part (the text part shows it as
    // the plain characters it is).
    let html = eml
        .split("Content-Type: text/html")
        .nth(1)
        .expect("an HTML part");
    assert!(html.contains("Eve &lt;b&gt;Hacker&lt;"), "{html}");
    assert!(!html.contains("<b>Hacker"), "{html}");
    // A second message under the same key is refused.
    let again = h
        .store()
        .write(move |c| {
            let r = funnel::email::Rendered {
                template: "note".into(),
                from: "a@test.example".into(),
                reply_to: None,
                to: "eve@example.org".into(),
                subject: "dup".into(),
                preheader: None,
                html: String::new(),
                text: String::new(),
                marketing: false,
                unsubscribe: None,
                message_id: None,
                return_path: None,
                unsubscribe_mailto: None,
            };
            funnel::email::outbox::enqueue(c, &key, &funnel::uid::new(T0), &r, "x", None, None, T0)
        })
        .wait()
        .expect("enqueue");
    assert!(!again);
    assert_eq!(h.count("SELECT count(*) FROM outbox"), 1);
}

#[test]
fn http_requests_carry_keys_capture_responses_and_retry() {
    let steps = r#"
  - id: who
    type: upsert_contact
    email: "{{ trigger.payload.email }}"
  - id: call
    type: http
    method: POST
    url: $SERVER/ok
    headers: {X-Contact: "{{ contact.email }}"}
    body: {email: "{{ contact.email }}", n: 3}
  - id: use
    type: set_vars
    vars: {echoed: "{{ steps.call.body.echo.email }}", status: "{{ steps.call.status }}"}
  - id: flaky
    type: http
    url: $SERVER/flaky
    body: {x: 1}
    retry: {attempts: 3, backoff: 1m, jitter: 0}
  - id: broken
    type: http
    url: http://127.0.0.1:9/nothing
    timeout: 2s
    on_error: continue
  - id: after
    type: log
    message: "error was {{ error.message }}"
"#;
    let wf = format!("{GO_WITH_PAYLOAD}{steps}");
    let h = harness(&[("workflows/hooks.yaml", &wf)]);
    h.emit(
        "custom_event",
        json!({"event": "go", "payload": {"email": "bob@example.org", "name": "Bob"}}),
    );
    // The flaky call failed once and waits a minute for its second attempt.
    assert_eq!(h.statuses("hooks"), ["waiting"]);
    h.tick(T0 + 60_000);
    assert_eq!(h.statuses("hooks"), ["completed"]);
    let uid = h.one("SELECT uid FROM executions");
    let reqs = h.http.requests();
    let ok = reqs.iter().find(|r| r.path == "/ok").expect("the /ok call");
    assert_eq!(ok.method, "POST");
    assert_eq!(ok.headers["x-contact"], "bob@example.org");
    assert!(ok.headers["idempotency-key"].starts_with(&format!("{uid}:call:")));
    assert_eq!(ok.body, json!({"email": "bob@example.org", "n": 3}));
    let flaky: Vec<_> = reqs.iter().filter(|r| r.path == "/flaky").collect();
    assert_eq!(flaky.len(), 2);
    assert_eq!(
        flaky[0].headers["idempotency-key"], flaky[1].headers["idempotency-key"],
        "a retry is the same request under the same key"
    );
    assert_eq!(
        h.output("hooks", "use"),
        json!({"echoed": "bob@example.org", "status": 200})
    );
    assert_eq!(
        h.column(
            "SELECT r.attempt || ':' || r.status FROM step_runs r WHERE r.step_id = 'flaky' ORDER BY r.id"
        ),
        ["1:failed", "2:completed"]
    );
    let broken_error = h.one("SELECT error FROM step_runs WHERE step_id = 'broken'");
    assert!(broken_error.contains("cannot connect"), "{broken_error}");
    let message = h.output("hooks", "after")["message"].clone();
    assert!(
        message
            .as_str()
            .is_some_and(|m| m.contains("cannot connect")),
        "{message}"
    );
}

#[test]
fn slack_discord_and_social_posts_reach_their_endpoints() {
    let steps = r#"
  - id: slack
    type: slack
    webhook_url: ${HOOK_URL}
    text: "New {{ trigger.payload.name }}"
  - id: discord
    type: discord
    webhook_url: ${HOOK_URL}
    content: "Hello {{ trigger.payload.name }}"
  - id: toot
    type: social_post
    instance_url: $SERVER
    token: ${SOCIAL_TOKEN}
    status: "Welcome {{ trigger.payload.name }}"
    visibility: unlisted
"#;
    let wf = format!("{GO_WITH_PAYLOAD}{steps}");
    let h = harness(&[("workflows/notify.yaml", &wf)]);
    h.emit(
        "custom_event",
        json!({"event": "go", "payload": {"email": "x@example.org", "name": "Zoe"}}),
    );
    assert_eq!(h.statuses("notify"), ["completed"]);
    let reqs = h.http.requests();
    let bodies: Vec<_> = reqs
        .iter()
        .map(|r| (r.path.clone(), r.body.clone()))
        .collect();
    assert_eq!(
        bodies,
        [
            ("/ok".to_string(), json!({"text": "New Zoe"})),
            ("/ok".to_string(), json!({"content": "Hello Zoe"})),
            (
                "/api/v1/statuses".to_string(),
                json!({"status": "Welcome Zoe", "visibility": "unlisted"})
            ),
        ]
    );
    assert_eq!(reqs[2].headers["authorization"], "Bearer secret-token");
    // The stored step output names the request without the secret's value.
    assert_eq!(h.output("notify", "slack")["status"], 200);
    let waiting_output = h.one("SELECT output FROM step_runs WHERE step_id = 'toot'");
    assert!(!waiting_output.contains("secret-token"), "{waiting_output}");
}

#[test]
fn a_workflow_without_steps_of_its_own_kind_still_runs_on_go() {
    // The smallest workflow: one log step, started by a custom event.
    let h = harness(&[(
        "workflows/tiny.yaml",
        &on_go("  - id: only\n    type: log\n    message: hi\n"),
    )]);
    let out = h.emit("custom_event", json!({"event": "go"}));
    assert_eq!(out.started.len(), 1);
    assert_eq!(h.path("tiny"), ["only"]);
    let other = h.emit("custom_event", json!({"event": "other"}));
    assert!(other.started.is_empty());
}

#[test]
fn a_timed_out_call_runs_the_steps_error_workflow() {
    let steps = r#"
  - id: slow
    type: http
    url: $SERVER/slow
    timeout: 1s
    on_error: {workflow: record-failure}
  - id: never
    type: log
    message: not reached
"#;
    let handler = r#"name: record failure
trigger:
  type: custom_event
  event: workflow.failed
  payload: {workflow: string, execution_id: string, step: string, error: string}
steps:
  - id: note
    type: log
    message: "{{ trigger.payload.step }}: {{ trigger.payload.error }}"
"#;
    let wf = format!("{GO_WITH_PAYLOAD}{steps}");
    let h = harness(&[
        ("workflows/calls.yaml", &wf),
        ("workflows/record-failure.yaml", handler),
    ]);
    h.emit(
        "custom_event",
        json!({"event": "go", "payload": {"email": "t@example.org", "name": "T"}}),
    );
    assert_eq!(h.statuses("calls"), ["failed"]);
    assert_eq!(h.statuses("record-failure"), ["completed"]);
    let message = h.output("record-failure", "note")["message"].clone();
    assert!(
        message
            .as_str()
            .is_some_and(|m| m.starts_with("slow: ") && m.contains("no response within 1000 ms")),
        "{message}"
    );
    assert!(!h.path("calls").contains(&"never".to_string()));
}
