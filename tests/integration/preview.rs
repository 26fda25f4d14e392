//! `funnel preview` for real: the binary serving the demo site on loopback, a
//! form post through to the contact, the workflow and the outbox, tracking
//! beacons tied to the contact by the redirect's token, bad requests answered
//! with JSON errors, and caching and compression headers.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use crate::http_client::{header, http};
use crate::support::{demo, funnel_for, json_out};

struct Preview {
    child: Child,
    addr: String,
    /// What the preview printed after its first line, as it comes.
    lines: std::sync::mpsc::Receiver<String>,
}

impl Preview {
    /// Lines printed so far, waiting up to `secs` for one containing `until`.
    fn printed_until(&self, until: &str, secs: u64) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        let mut out = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let done = l.contains(until);
                    out.push(l);
                    if done {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        out
    }
}

impl Drop for Preview {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path) -> Preview {
    start_with_env(dir, &[])
}

fn start_with_env(dir: &std::path::Path, env: &[(&str, &str)]) -> Preview {
    let mut child = funnel_for(dir)
        .args(["preview", "demo", "--port", "0", "--no-watch"])
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("preview starts");
    let mut line = String::new();
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    reader.read_line(&mut line).expect("first line");
    // Keep reading, so the preview never writes into a closed pipe.
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in reader.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Preview { child, addr, lines }
}

fn get(addr: &str, path: &str, extra: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"),
        b"",
    )
}

fn post(
    addr: &str,
    path: &str,
    kind: &str,
    body: &str,
    extra: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
            body.len()
        ),
        body.as_bytes(),
    )
}

#[test]
fn the_whole_loop_runs_on_one_machine() {
    let dir = demo();
    let d = dir.path();
    let p = start(d);
    let a = p.addr.as_str();

    // Pages as a host serves them: gzip on request, HTML revalidated, hashed
    // assets cached for a year, the site's own 404.
    let (status, h, body) = get(a, "/", "");
    assert_eq!(status, 200);
    assert_eq!(header(&h, "cache-control"), Some("no-cache"));
    let html = String::from_utf8_lossy(&body).to_string();
    assert!(
        html.contains(&format!("action=\"http://{a}/f/demo/contact-form\"")),
        "forms post here"
    );
    let css = html
        .split("href=\"/assets/site.")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("stylesheet link");
    let (status, h, _) = get(
        a,
        &format!("/assets/site.{css}"),
        "Accept-Encoding: gzip\r\n",
    );
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-encoding"), Some("gzip"));
    assert_eq!(
        header(&h, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let etag = get(a, "/pricing", "")
        .1
        .iter()
        .find(|(k, _)| k == "etag")
        .map(|(_, v)| v.clone())
        .expect("etag");
    assert_eq!(
        get(a, "/pricing", &format!("If-None-Match: {etag}\r\n")).0,
        304
    );
    let (status, _, body) = get(a, "/no-such-page", "");
    assert_eq!(status, 404);
    assert!(
        String::from_utf8_lossy(&body).contains("could not find"),
        "the site's 404 page"
    );

    // A form post: contact, workflow, email, and a token on the redirect.
    let form = "name=Ada+Lovelace&email=Ada%40Acme.test&company=Acme&message=Hi&_redirect=%2Fthank-you&_hp=";
    let (status, h, _) = post(
        a,
        "/f/demo/contact-form",
        "application/x-www-form-urlencoded",
        form,
        &format!("Referer: http://{a}/?utm_source=newsletter\r\n"),
    );
    assert_eq!(status, 303);
    let location = header(&h, "location").expect("redirect").to_string();
    assert!(location.starts_with("/thank-you?ft="), "{location}");
    let token = location.split("ft=").nth(1).expect("token").to_string();
    let shown = json_out(
        &["contacts", "show", "ada@acme.test", "--format", "json"],
        d,
    );
    assert_eq!(
        shown["first_touch"]["utm"]["source"], "newsletter",
        "{shown}"
    );
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
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    assert!(outbox_fills(d), "the welcome email is in the dev outbox");

    // The thank-you page's beacon carries the token: the visit joins the timeline.
    let beacon =
        format!(r#"{{"site":"demo","page":"/thank-you","event":"view","token":"{token}"}}"#);
    assert_eq!(post(a, "/t", "text/plain", &beacon, "").0, 204);
    // A later beacon of the same visitor (same address and browser) without the
    // token is still the contact's.
    let later = r#"{"site":"demo","page":"/pricing","event":"view"}"#;
    assert_eq!(post(a, "/t", "text/plain", later, "").0, 204);
    let shown = json_out(
        &["contacts", "show", "ada@acme.test", "--format", "json"],
        d,
    );
    let pages: Vec<&str> = shown["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|t| t["type"] == "page_view")
        .filter_map(|t| t["subject"].as_str())
        .collect();
    assert_eq!(pages, ["/pricing", "/thank-you"], "{shown}");

    // Bad requests: JSON errors with 4xx; a filled honeypot is dropped quietly.
    let (status, h, body) = post(
        a,
        "/t",
        "text/plain",
        r#"{"site":"demo","event":"drop"}"#,
        "",
    );
    assert_eq!(status, 400);
    assert!(header(&h, "content-type").is_some_and(|c| c.contains("json")));
    assert!(String::from_utf8_lossy(&body).contains("event"));
    assert_eq!(
        post(
            a,
            "/f/demo/nothing",
            "application/x-www-form-urlencoded",
            "email=a%40b.c",
            ""
        )
        .0,
        404
    );
    assert_eq!(
        post(
            a,
            "/f/demo/contact-form",
            "application/x-www-form-urlencoded",
            "email=not-an-address",
            ""
        )
        .0,
        422
    );
    let bot = "email=bot%40spam.test&_hp=http%3A%2F%2Fspam";
    assert_eq!(
        post(
            a,
            "/f/demo/contact-form",
            "application/x-www-form-urlencoded",
            bot,
            ""
        )
        .0,
        303
    );
    let bots = crate::support::run(&["contacts", "show", "bot@spam.test"], d);
    assert!(
        !bots.status.success(),
        "the honeypot's post made no contact"
    );
    let huge = "x".repeat(200_000);
    assert_eq!(
        post(
            a,
            "/f/demo/contact-form",
            "application/x-www-form-urlencoded",
            &huge,
            ""
        )
        .0,
        413
    );

    // The analytics report counts it all.
    let report = json_out(&["analytics", "site", "demo", "--format", "json"], d);
    assert_eq!(report["page_views"], 2, "{report}");
    assert_eq!(report["conversions"], 1, "{report}");

    // Forgetting the person erases what tracking and the form stored too: no byte
    // of the address or the name is left in the store, its WAL or the outbox.
    drop(p);
    let store = d.join(".funnel");
    assert!(
        !crate::crm_cli::found_in(&store, b"ada@acme.test").is_empty(),
        "stored before"
    );
    let out = crate::support::run(&["contacts", "forget", "ada@acme.test"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [&b"ada@acme.test"[..], b"Ada Lovelace", b"Lovelace"] {
        let hits = crate::crm_cli::found_in(&store, needle);
        assert!(
            hits.is_empty(),
            "{} still in {hits:?}",
            String::from_utf8_lossy(needle)
        );
    }
    let left: i64 = crate::backend::scalar(
        d,
        "SELECT (SELECT count(*) FROM visitor_contacts) + \
         (SELECT count(*) FROM analytics_events WHERE contact_id IS NOT NULL)",
        &[],
    );
    assert_eq!(
        left, 0,
        "no tie of a visitor to the forgotten contact is left"
    );
}

#[test]
fn a_slow_webhook_does_not_hold_up_the_form_and_the_preview_says_what_happened() {
    let hook = crate::http_server::Server::start();
    let dir = demo();
    let d = dir.path();
    let slow = format!("{}/sleep/10", hook.url);
    // The loopback test server is a private address: allowed here by name.
    let config = d.join("funnel.yaml");
    let text = std::fs::read_to_string(&config).expect("funnel.yaml");
    std::fs::write(&config, format!("{text}\nnetwork:\n  allow: [127.0.0.1]\n")).expect("write");
    let p = start_with_env(d, &[("SLACK_WEBHOOK_URL", slow.as_str())]);
    let a = p.addr.as_str();
    let form = "name=Grace+Hopper&email=grace%40navy.test&company=Navy&message=Hi&_redirect=%2Fthank-you&_hp=";
    let began = std::time::Instant::now();
    let (status, _, _) = post(
        a,
        "/f/demo/contact-form",
        "application/x-www-form-urlencoded",
        form,
        "",
    );
    let took = began.elapsed();
    assert_eq!(status, 303);
    // The workflow's Slack call sleeps 10 s; the visitor does not wait for it.
    assert!(
        took < std::time::Duration::from_secs(2),
        "the form answered after {took:?}"
    );
    // The preview says what arrived and what it started, one line each.
    let printed = p.printed_until("contact-form-follow-up", 10).join("\n");
    assert!(
        printed.contains("form contact-form") && printed.contains("grace@navy.test"),
        "{printed}"
    );
    assert!(printed.contains("contact-form-follow-up"), "{printed}");
    // The welcome email is written while the Slack call is still out.
    assert!(outbox_fills(d), "the welcome email is in the outbox");
}

/// Whether an email lands in the workspace's dev outbox within 5 s (the worker
/// delivers it after the form's answer).
fn outbox_fills(d: &std::path::Path) -> bool {
    (0..50).any(|_| {
        let n = std::fs::read_dir(d.join(".funnel/outbox"))
            .map(|r| r.flatten().count())
            .unwrap_or(0);
        if n == 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        n > 0
    })
}
