//! The engine's commands through the real binary on a copy of the demo workspace:
//! test, simulate, emit, executions, workflows, graph and import.

use serde_json::Value as Json;

use super::support::{demo, json_out, repo_root, run};

#[test]
fn every_demo_workflow_test_passes() {
    let out = run(&["test"], &repo_root());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    // Every demo workflow has tests.
    let tested: std::collections::BTreeSet<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test ")?.split(" › ").next())
        .collect();
    let workflows: std::collections::BTreeSet<String> =
        std::fs::read_dir(repo_root().join("workflows"))
            .expect("workflows")
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".yaml")
                    .map(String::from)
            })
            .collect();
    for wf in &workflows {
        assert!(tested.contains(wf.as_str()), "{wf} has no test cases");
    }
}

#[test]
fn a_failing_expectation_fails_the_run() {
    let dir = demo();
    let tests = dir.path().join("workflows/tests/welcome-drip.yaml");
    let text = std::fs::read_to_string(&tests).expect("tests");
    std::fs::write(&tests, text.replacen("after: 2d }", "after: 3d }", 1)).expect("edit");
    let out = run(&["test", "welcome-drip"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("expected after 3d, sent after 2d"),
        "{stdout}"
    );
}

#[test]
fn simulate_prints_the_path_emails_and_crm_changes() {
    let dir = demo();
    std::fs::write(dir.path().join("trigger.yaml"), "tag: newsletter\n").expect("trigger");
    std::fs::write(
        dir.path().join("contact.yaml"),
        "email: mia@example.org\nname: Mia Wong\ntags: [newsletter]\n",
    )
    .expect("contact");
    let trace = json_out(
        &[
            "simulate",
            "welcome-drip",
            "--trigger",
            "trigger.yaml",
            "--contact",
            "contact.yaml",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(trace["status"], "completed");
    assert_eq!(trace["emails"].as_array().map(Vec::len), Some(5));
    assert_eq!(trace["emails"][0]["subject"], "Welcome to Northwind, Mia");
    assert_eq!(trace["elapsed"], 14 * 86_400_000);
    assert!(
        trace["crm"]
            .as_array()
            .expect("crm")
            .iter()
            .any(|c| c["tag"] == "drip-completed"),
        "{}",
        trace["crm"]
    );
    // A broken trigger file is reported with its position.
    std::fs::write(dir.path().join("bad.yaml"), "tag: [newsletter\n").expect("bad");
    let out = run(
        &["simulate", "welcome-drip", "--trigger", "bad.yaml"],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("bad.yaml:"), "{stderr}");
}

#[test]
fn emit_runs_workflows_that_the_operator_can_list_and_disable() {
    let dir = demo();
    crate::support::drip_on_tag(dir.path());
    std::fs::write(
        dir.path().join("form.yaml"),
        "site: demo\ncomponent: newsletter\nfields:\n  email: Lea@Example.org\n  name: Lea Roy\n",
    )
    .expect("form");
    let first = json_out(
        &["emit", "form_submission", "--data", "form.yaml", "--json"],
        dir.path(),
    );
    let started: Vec<(String, String)> = first["started"]
        .as_array()
        .expect("started")
        .iter()
        .map(|s| {
            (
                s["workflow"].as_str().unwrap_or_default().to_string(),
                s["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        started,
        [
            ("newsletter-signup".to_string(), "completed".to_string()),
            ("welcome-drip".to_string(), "waiting".to_string())
        ]
    );
    let emls = std::fs::read_dir(dir.path().join(".funnel/outbox"))
        .expect("outbox")
        .count();
    assert_eq!(
        emls, 2,
        "the welcome email and the newsletter's double opt-in confirmation are in the dev outbox"
    );
    let list = json_out(&["executions", "list", "--format", "json"], dir.path());
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let id = list[0]["id"].as_str().expect("id").to_string();
    let shown = json_out(&["executions", "show", &id, "--format", "json"], dir.path());
    assert_eq!(shown["workflow"], "welcome-drip");
    assert_eq!(shown["steps"][0]["step"], "day0_welcome");
    let out = run(&["executions", "cancel", &id], dir.path());
    assert!(out.status.success());
    assert_eq!(
        json_out(&["executions", "show", &id, "--format", "json"], dir.path())["status"],
        "cancelled"
    );

    assert!(
        run(&["workflows", "disable", "welcome-drip"], dir.path())
            .status
            .success()
    );
    let workflows = json_out(&["workflows", "list", "--format", "json"], dir.path());
    let drip = workflows
        .as_array()
        .expect("list")
        .iter()
        .find(|w| w["id"] == "welcome-drip")
        .expect("welcome-drip listed");
    assert_eq!(drip["active"], false);
    assert_eq!(drip["override"], false);
    std::fs::write(
        dir.path().join("form2.yaml"),
        "site: demo\ncomponent: newsletter\nfields:\n  email: max@example.org\n",
    )
    .expect("form");
    let second = json_out(
        &["emit", "form_submission", "--data", "form2.yaml", "--json"],
        dir.path(),
    );
    assert_eq!(
        second["started"].as_array().map(Vec::len),
        Some(1),
        "{second}"
    );
    let stats = json_out(
        &[
            "workflows",
            "stats",
            "newsletter-signup",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(stats[0]["completed"], 2);
    assert_eq!(stats[0]["success_rate"], 1.0);
}

#[test]
fn graph_and_import() {
    let dir = demo();
    let g = json_out(&["graph", "welcome-drip", "--format", "json"], dir.path());
    let nodes = g["nodes"].as_array().expect("nodes");
    assert_eq!(nodes[0]["id"], "trigger");
    assert!(
        nodes
            .iter()
            .any(|n| n["id"] == "customer_by_day5" && n["type"] == "if")
    );
    assert!(
        g["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .any(|c| c["from"] == "customer_by_day5"
                && c["to"] == "already_customer"
                && c["label"] == "then")
    );
    let mermaid = run(&["graph", "welcome-drip"], dir.path());
    assert!(String::from_utf8_lossy(&mermaid.stdout).starts_with("flowchart TD\n"));

    std::fs::write(
        dir.path().join("seed.json"),
        r#"{"site_id": "demo", "name": "Seed Follow-up",
            "trigger": {"type": "form_submission", "component_id": "contact-form", "conditions": []},
            "actions": [{"type": "send_email", "template_id": "welcome", "delay": 0},
                        {"type": "add_to_crm", "list_id": "prospects", "delay": 60}]}"#,
    )
    .expect("seed");
    let out = run(&["import", "seed.json"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("workflows/seed-follow-up.yaml").exists());
    assert!(run(&["validate"], dir.path()).status.success());
    let again = run(&["import", "seed.json"], dir.path());
    assert_eq!(again.status.code(), Some(2), "no silent overwrite");
}

#[test]
fn run_executes_one_workflow_for_real_and_prints_its_trace() {
    let dir = demo();
    crate::support::drip_on_tag(dir.path());
    std::fs::write(
        dir.path().join("form.yaml"),
        "site: demo\ncomponent: newsletter\nfields:\n  email: kai@example.org\n  name: Kai Berg\n",
    )
    .expect("form");
    let out = run(
        &["run", "newsletter-signup", "--trigger", "form.yaml"],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("of newsletter-signup: completed"),
        "{stdout}"
    );
    assert!(stdout.contains("subscribe"), "{stdout}");
    // The tag it added started the welcome drip, which sent its first email.
    let list = json_out(
        &[
            "executions",
            "list",
            "--workflow",
            "welcome-drip",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(list[0]["status"], "waiting");
    assert_eq!(
        std::fs::read_dir(dir.path().join(".funnel/outbox"))
            .expect("outbox")
            .count(),
        2,
        "the welcome email and the double opt-in confirmation"
    );
    // Trigger data from standard input, as JSON.
    let mut child = super::support::funnel_for(dir.path())
        .args(["run", "newsletter-signup", "--trigger", "-", "--json"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(br#"{"site": "demo", "component": "newsletter", "fields": {"email": "ivy@example.org"}}"#)
            .expect("write");
    }
    let out = child.wait_with_output().expect("run");
    let trace: Json = serde_json::from_slice(&out.stdout).expect("json trace");
    assert_eq!(trace["status"], "completed");
    assert_eq!(trace["contact"], "ivy@example.org");
}

#[test]
fn a_missing_secret_fails_at_once_and_every_command_says_so() {
    let dir = demo();
    let d = dir.path();
    let without_secrets = |args: &[&str]| {
        super::support::funnel_for(d)
            .args(args)
            .current_dir(d)
            .env_remove("SLACK_WEBHOOK_URL")
            .env_remove("ONCALL_API_TOKEN")
            .env_remove("PROJECTS_API_TOKEN")
            .output()
            .expect("the funnel binary runs")
    };
    // Plain validate stays clean: CI has no production secrets, by design.
    assert!(without_secrets(&["validate"]).status.success());
    // `validate --env` names each unset variable where a file refers to it.
    let out = without_secrets(&["validate", "--env"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("[unset-secret]"), "{text}");
    assert!(
        text.contains("`SLACK_WEBHOOK_URL` is not set")
            && text.contains("workflows/contact-form-follow-up.yaml:"),
        "{text}"
    );
    // simulate says the call would need a secret that is not set here.
    std::fs::write(
        d.join("form.yaml"),
        "site: demo\ncomponent: contact-form\npage: /\nfields:\n  email: lin@example.org\n  name: Lin Chen\n",
    )
    .expect("form");
    let out = without_secrets(&[
        "simulate",
        "contact-form-follow-up",
        "--trigger",
        "form.yaml",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("SLACK_WEBHOOK_URL is not set"),
        "simulate: {text}"
    );
    // A real run: the Slack step fails at once (no retries for 2.5 minutes), the
    // execution completes, and the failure shows in the list and the stats.
    let out = without_secrets(&["emit", "form_submission", "--data", "form.yaml"]);
    assert!(out.status.success());
    let runs = json_out(
        &[
            "executions",
            "list",
            "--workflow",
            "contact-form-follow-up",
            "--format",
            "json",
        ],
        d,
    );
    let run0 = &runs[0];
    assert_eq!(run0["status"], "completed", "{runs}");
    assert!(
        run0["error"]
            .as_str()
            .is_some_and(|e| e.contains("notify_sales") && e.contains("SLACK_WEBHOOK_URL")),
        "{runs}"
    );
    let id = run0["id"].as_str().expect("id").to_string();
    let shown = json_out(&["executions", "show", &id, "--format", "json"], d);
    let attempts: Vec<&Json> = shown["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["step"] == "notify_sales")
        .collect();
    assert_eq!(attempts.len(), 1, "one attempt, not five: {shown}");
    let stats = json_out(&["workflows", "stats", "--format", "json"], d);
    let follow_up = stats
        .as_array()
        .and_then(|a| a.iter().find(|s| s["workflow"] == "contact-form-follow-up"))
        .expect("stats of the workflow");
    assert_eq!(follow_up["completed_with_errors"], 1, "{follow_up}");
    assert_eq!(follow_up["success_rate"], 0.0, "{follow_up}");
}
