//! Secrets and outgoing calls: a `${NAME}` value reaches only the request its
//! workflow file wrote it into (never stored or printed text, never through trigger
//! data), and calls to private addresses are refused unless funnel.yaml allows them.

use std::path::Path;

use serde_json::json;

use super::engine_support::{CONFIG, CONTACT_FILES, STRICT_CONFIG, harness};

/// A workflow on the custom event `go`, whose payload has `v`, `url` and `bounce`.
fn on_go(steps: &str) -> String {
    format!(
        "name: t\ntrigger:\n  type: custom_event\n  event: go\n  payload:\n    v: string\n    url: string\n    bounce: string\nsteps:\n{steps}"
    )
}
use super::support::funnel_for;

/// Every file below `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    super::crm_cli::found_in(dir, needle.as_bytes())
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

const LEAKY: &str = r#"name: Leaky
trigger: {type: custom_event, event: go}
error_workflow: on-failure
steps:
  - id: hook
    type: slack
    webhook_url: ${LEAK_HOOK}
    text: hello
    retry: {attempts: 1}
    on_error: continue
  - id: call
    type: http
    method: POST
    url: ${LEAK_URL}
    headers:
      Authorization: Bearer ${LEAK_TOKEN}
    body:
      key: ${LEAK_BODY}
    retry: {attempts: 1}
"#;

const ON_FAILURE: &str = r#"name: On failure
trigger:
  type: custom_event
  event: workflow.failed
steps:
  - id: tell
    type: send_email
    template: alert
    to: ops@test.example
    data:
      error: "{{ trigger.payload.error }}"
  - id: record
    type: log
    level: error
    message: "failed: {{ trigger.payload.error }}"
"#;

const ALERT: &str = "name: Alert\nkind: transactional\nsubject: 'A workflow failed'\nhtml: '<p>{{ data.error }}</p>'\n";

#[test]
fn a_failed_call_leaves_no_secret_in_the_store_the_logs_or_the_outbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let mut files: Vec<(&str, &str)> = vec![
        ("funnel.yaml", CONFIG),
        ("workflows/leaky.yaml", LEAKY),
        ("workflows/on-failure.yaml", ON_FAILURE),
        ("templates/emails/alert.yaml", ALERT),
    ];
    files.extend_from_slice(CONTACT_FILES);
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    let port = closed_port();
    let env = [
        (
            "LEAK_URL",
            format!("http://127.0.0.1:{port}/hook/S3cr3tPath?key=S3cr3tQuery"),
        ),
        (
            "LEAK_HOOK",
            format!("http://127.0.0.1:{port}/services/S3cr3tSlack"),
        ),
        ("LEAK_TOKEN", "S3cr3tHeader".to_string()),
        ("LEAK_BODY", "S3cr3tBody".to_string()),
    ];
    let run = |args: &[&str]| {
        let out = funnel_for(root)
            .args(args)
            .current_dir(root)
            .env("FUNNEL_LOG", "debug")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("the funnel binary runs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let mut printed = run(&["emit", "go"]);
    printed += &run(&["executions", "list"]);
    printed += &run(&["executions", "list", "--format", "json"]);
    let ids: Vec<String> = crate::backend::column(root, "SELECT uid FROM executions");
    assert_eq!(ids.len(), 2, "the failed execution and its error workflow");
    for id in &ids {
        printed += &run(&["executions", "show", id]);
        printed += &run(&["executions", "show", id, "--format", "json"]);
    }
    // The failure is reported (the error workflow ran, with the error in its email)...
    let outbox = files_containing(&root.join(".funnel/outbox"), "cannot connect");
    assert!(!outbox.is_empty(), "the error email names the failed call");
    // ...but no secret value is anywhere.
    for secret in [
        "S3cr3tPath",
        "S3cr3tQuery",
        "S3cr3tSlack",
        "S3cr3tHeader",
        "S3cr3tBody",
    ] {
        assert!(
            !printed.contains(secret),
            "`{secret}` was printed:\n{printed}"
        );
        assert_eq!(
            files_containing(root, secret),
            Vec::<String>::new(),
            "`{secret}` is stored"
        );
    }
}

#[test]
fn trigger_data_cannot_pull_in_a_secret() {
    let steps = r#"
  - id: call
    type: http
    method: POST
    url: "$SERVER/ok?q={{ trigger.payload.v }}"
    headers:
      X-Data: "{{ trigger.payload.v }}"
      X-Token: "Bearer ${SOCIAL_TOKEN}"
    body:
      data: "{{ trigger.payload.v }}"
      data_in_text: "value {{ trigger.payload.v }}"
      token: ${SOCIAL_TOKEN}
"#;
    let h = harness(&[("workflows/hooks.yaml", &on_go(steps))]);
    h.emit(
        "custom_event",
        json!({"event": "go", "payload": {"v": "${SOCIAL_TOKEN}", "url": "", "bounce": ""}}),
    );
    let reqs = h.http.requests();
    let call = reqs
        .iter()
        .find(|r| r.path.starts_with("/ok"))
        .expect("the call");
    // What the file wrote is expanded...
    assert_eq!(call.headers["x-token"], "Bearer secret-token");
    assert_eq!(call.body["token"], "secret-token");
    // ...what the data carried is sent as it was.
    assert_eq!(call.headers["x-data"], "${SOCIAL_TOKEN}");
    assert_eq!(call.body["data"], "${SOCIAL_TOKEN}");
    assert_eq!(call.body["data_in_text"], "value ${SOCIAL_TOKEN}");
    assert!(!call.path.contains("secret-token"), "{}", call.path);
    // The stored response (the server echoes the body) keeps no secret either.
    let stored = h.one("SELECT output FROM step_runs WHERE step_id = 'call'");
    assert!(!stored.contains("secret-token"), "{stored}");
}

/// Spellings of loopback and "this host" that a naive check misses.
fn loopback_spellings(port: u16) -> Vec<String> {
    [
        "127.0.0.1",
        "localhost",
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "017700000001",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::1]",
        "0.0.0.0",
        "0",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/ok"))
    .collect()
}

#[test]
fn calls_to_private_addresses_are_refused_in_every_spelling() {
    let steps = r#"
  - id: call
    type: http
    url: "{{ trigger.payload.url }}"
    retry: {attempts: 1}
    on_error: continue
"#;
    // The harness's own server records every request that gets through.
    let h = harness(&[
        ("funnel.yaml", STRICT_CONFIG),
        ("workflows/hooks.yaml", &on_go(steps)),
    ]);
    let port: u16 = h
        .http
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    for url in loopback_spellings(port) {
        h.emit(
            "custom_event",
            json!({"event": "go", "payload": {"v": "", "url": url, "bounce": ""}}),
        );
    }
    assert_eq!(
        h.http.requests().len(),
        0,
        "no request may reach a loopback server that funnel.yaml does not allow"
    );
    let errors = h.column("SELECT error FROM step_runs WHERE step_id = 'call' ORDER BY id");
    assert_eq!(errors.len(), loopback_spellings(port).len());
    for e in &errors {
        assert!(e.contains("not allowed"), "{e}");
    }
}

#[test]
fn allowed_hosts_are_reached_and_redirects_are_checked_at_every_hop() {
    let steps = r#"
  - id: direct
    type: http
    url: "$SERVER/ok?n={{ 1 | urlencode }}"
  - id: bounced
    type: http
    url: "{{ trigger.payload.bounce }}"
    retry: {attempts: 1}
    on_error: continue
"#;
    let h = harness(&[("workflows/hooks.yaml", &on_go(steps))]);
    let port = h.http.url.rsplit(':').next().unwrap_or("0").to_string();
    let bounce = format!("{}/redirect?to=http://127.0.0.2:{port}/ok", h.http.url);
    h.emit(
        "custom_event",
        json!({"event": "go", "payload": {"v": "", "url": "", "bounce": bounce}}),
    );
    assert_eq!(
        h.output("hooks", "direct")["status"],
        200,
        "{:?}",
        h.column("SELECT step_id || ': ' || coalesce(error, output) FROM step_runs")
    );
    let paths: Vec<String> = h.http.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    let error = h.one("SELECT error FROM step_runs WHERE step_id = 'bounced'");
    assert!(
        error.contains("127.0.0.2") && error.contains("not allowed"),
        "{error}"
    );
}
