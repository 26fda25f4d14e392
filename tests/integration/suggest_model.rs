//! `funnel suggest --model` against a local HTTP server that speaks the
//! OpenAI chat completions API and answers from a script: a valid draft is
//! written; a draft that does not validate goes back once with the
//! diagnostics; a second failure is rejected and nothing is written; the key
//! comes from the environment; a private endpoint needs `network.allow`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};

use crate::support::{demo, funnel_for};

/// A fake model: each POST gets the next scripted content.
struct FakeModel {
    url: String,
    requests: Arc<Mutex<Vec<(String, Json)>>>,
}

impl FakeModel {
    fn start(answers: Vec<String>) -> FakeModel {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(answers)));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                let (mut len, mut auth) = (0usize, String::new());
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        match k.trim().to_ascii_lowercase().as_str() {
                            "content-length" => len = v.trim().parse().unwrap_or(0),
                            "authorization" => auth = v.trim().to_string(),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let body: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
                seen.lock().expect("lock").push((auth, body));
                let content = script.lock().expect("lock").pop_front().unwrap_or_default();
                let reply = json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "model": "test-model",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}]
                })
                .to_string();
                let _ = writer.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                        reply.len()
                    )
                    .as_bytes(),
                );
            }
        });
        FakeModel { url, requests }
    }

    fn requests(&self) -> Vec<(String, Json)> {
        self.requests.lock().expect("lock").clone()
    }
}

fn with_model(d: &Path, url: &str, allow: bool) {
    let yaml = std::fs::read_to_string(d.join("funnel.yaml")).expect("read");
    let mut extra = format!(
        "\nai:\n  endpoint: {url}\n  model: test-model\n  api_key: ${{FUNNEL_TEST_AI_KEY}}\n"
    );
    if allow {
        extra.push_str("network:\n  allow: [127.0.0.1]\n");
    }
    std::fs::write(d.join("funnel.yaml"), format!("{yaml}{extra}")).expect("write");
}

fn suggest_model(d: &Path, write: bool) -> std::process::Output {
    let mut args = vec![
        "suggest",
        "--site",
        "demo",
        "--instance",
        "pricing-table",
        "--model",
        "--format",
        "json",
    ];
    if write {
        args.push("--write");
    }
    funnel_for(d)
        .args(&args)
        .current_dir(d)
        .env("FUNNEL_TEST_AI_KEY", "sk-test-123")
        .output()
        .expect("funnel suggest")
}

fn draft(name: &str, step_type: &str) -> String {
    format!(
        "Here is a workflow:\n```yaml\nname: {name}\ntrigger:\n  type: page_event\n  site: demo\n  component: pricing-table\n  event: view\n  conditions:\n    - contact.email is defined\nsteps:\n  - id: mark\n    type: {step_type}\n    tags: [pricing-viewer]\n```\n"
    )
}

fn workflows(d: &Path) -> usize {
    std::fs::read_dir(d.join("workflows"))
        .expect("dir")
        .flatten()
        .count()
}

#[test]
fn a_valid_draft_is_written_with_the_key_from_the_environment() {
    let dir = demo();
    let d = dir.path();
    let model = FakeModel::start(vec![draft("Pricing viewers", "add_tag")]);
    with_model(d, &model.url, true);
    let out = suggest_model(d, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Json = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(answer["draft"]["repaired"], false);
    let id = answer["draft"]["workflow_id"].as_str().expect("id");
    let written = std::fs::read_to_string(d.join(format!("workflows/{id}.yaml"))).expect("file");
    assert!(written.contains("type: add_tag"));
    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    let (auth, body) = &requests[0];
    assert_eq!(auth, "Bearer sk-test-123");
    assert_eq!(body["model"], "test-model");
    let asked = body["messages"][1]["content"].as_str().expect("prompt");
    assert!(
        asked.contains("pricing-table") && asked.contains("saas"),
        "{asked}"
    );
    // The key never reaches what funnel prints.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sk-test-123"));
}

#[test]
fn a_draft_that_does_not_validate_is_repaired_once_with_the_diagnostics() {
    let dir = demo();
    let d = dir.path();
    let model = FakeModel::start(vec![
        draft("Pricing viewers", "teleport"),
        draft("Pricing viewers", "add_tag"),
    ]);
    with_model(d, &model.url, true);
    let out = suggest_model(d, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Json = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(answer["draft"]["repaired"], true);
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let repair = requests[1].1["messages"]
        .as_array()
        .expect("messages")
        .last()
        .and_then(|m| m["content"].as_str())
        .expect("repair prompt")
        .to_string();
    assert!(
        repair.contains("teleport") && repair.contains("workflows/"),
        "{repair}"
    );
}

#[test]
fn a_draft_broken_twice_is_rejected_and_nothing_is_written() {
    let dir = demo();
    let d = dir.path();
    let model = FakeModel::start(vec![
        "```yaml\nname: [unclosed\n```".to_string(),
        "steps:\n  - id: x\n    type: add_tag\n   tags: broken indentation".to_string(),
    ]);
    with_model(d, &model.url, true);
    let before = workflows(d);
    let out = suggest_model(d, true);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("still does not validate"), "{err}");
    assert_eq!(model.requests().len(), 2);
    assert_eq!(workflows(d), before, "a file was written");
}

#[test]
fn a_private_endpoint_needs_the_network_allow_list() {
    let dir = demo();
    let d = dir.path();
    let model = FakeModel::start(vec![draft("Pricing viewers", "add_tag")]);
    with_model(d, &model.url, false);
    let out = suggest_model(d, false);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("network.allow"), "{err}");
    assert!(model.requests().is_empty());
}
