//! Double opt-in on a running daemon: a signup through the demo's newsletter
//! form (a list marked `double_opt_in`) does not join the list; it queues a
//! confirmation email with a signed link, and the welcome drip (which starts
//! on `list_joined`) waits. A `GET` of the link shows a button and changes
//! nothing; its `POST` joins the list, records the consent with its proof and
//! starts the drip (and lifts an earlier unsubscribe: confirming is an
//! opt-in); using it again records nothing twice; a forged link finds nothing.

use crate::daemon::up;
use crate::support::demo;

fn scalar(d: &std::path::Path, sql: &str) -> i64 {
    crate::backend::scalar(d, sql, funnel::db_params![])
}

/// The messages of the dev outbox, parsed by Python's MIME parser.
fn outbox(d: &std::path::Path) -> Vec<serde_json::Value> {
    let Some(python) = crate::smtp_sink::python() else {
        return Vec::new();
    };
    let out = std::process::Command::new(python)
        .arg(crate::support::repo_root().join("tests/email_check.py"))
        .arg(d.join(".funnel/outbox"))
        .output()
        .expect("email_check.py");
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

#[test]
fn a_signup_joins_a_double_opt_in_list_only_when_confirmed() {
    if crate::smtp_sink::python().is_none() {
        return;
    }
    let dir = demo();
    let d = dir.path();
    // Lea unsubscribed once; signing up and confirming is a new opt-in.
    for args in [
        &["contacts", "add", "lea@example.org", "--name", "Lea"][..],
        &[
            "contacts",
            "edit",
            "lea@example.org",
            "--status",
            "unsubscribed",
        ][..],
    ] {
        let out = crate::support::run(args, d);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lea_status = || -> String {
        crate::backend::scalar(
            d,
            "SELECT status FROM contacts WHERE email = 'lea@example.org'",
            funnel::db_params![],
        )
    };
    let u = up(d);
    let (status, _, body) = u.to_site(
        "POST",
        "/f/demo/newsletter",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "email=lea%40example.org&first_name=Lea&_hp=",
    );
    assert_eq!(status, 303, "{}", String::from_utf8_lossy(&body));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let confirmation = loop {
        let found = outbox(d).into_iter().find(|m| {
            m["headers"]["subject"][0]
                .as_str()
                .is_some_and(|s| s.starts_with("Please confirm"))
        });
        if let Some(m) = found {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no confirmation email in {:?}",
            outbox(d)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(confirmation["headers"]["to"][0], "lea@example.org");
    assert!(
        confirmation["headers"]["list-unsubscribe"].is_null(),
        "a confirmation is transactional: {confirmation:#}"
    );
    let text = confirmation["text"].as_str().unwrap_or_default();
    let url = text
        .split_whitespace()
        .find(|w| w.contains("/confirm/"))
        .unwrap_or_else(|| panic!("no link in {text}"));
    let path = url
        .strip_prefix("https://go.northwind.example")
        .unwrap_or_else(|| panic!("not under public_url: {url}"))
        .to_string();

    let members = "SELECT count(*) FROM list_members WHERE list_id = 'newsletter'";
    let drips = "SELECT count(*) FROM executions WHERE workflow_id = 'welcome-drip'";
    assert_eq!(scalar(d, members), 0, "not on the list before confirming");
    assert_eq!(
        scalar(
            d,
            "SELECT count(*) FROM list_requests WHERE confirmed_at IS NULL"
        ),
        1
    );
    assert_eq!(scalar(d, drips), 0, "the drip waits for the confirmation");

    let (status, _, body) = u.own(&path);
    let page = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Northwind Dispatch") && page.contains("<form method=\"post\""),
        "{page}"
    );
    assert_eq!(scalar(d, members), 0, "a GET (a link scanner) joins no one");
    assert_eq!(lea_status(), "unsubscribed");

    let post = |p: &str| {
        crate::http_client::http(
            &u.addr,
            &format!(
                "POST {p} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                u.addr
            ),
            b"",
        )
        .0
    };
    assert_eq!(post(&path), 200);
    assert_eq!(scalar(d, members), 1, "joined on confirmation");
    assert_eq!(lea_status(), "active", "the confirmation is an opt-in");
    let proof = "SELECT count(*) FROM consent_ledger WHERE purpose = 'list:newsletter' \
                 AND granted = 1 AND source = 'double opt-in' AND wording LIKE '%requested_at%'";
    assert_eq!(scalar(d, proof), 1, "the consent, with its proof");
    assert_eq!(
        scalar(
            d,
            "SELECT count(*) FROM activities WHERE type = 'list_confirmed'"
        ),
        1
    );
    assert_eq!(scalar(d, drips), 1, "list_joined started the drip");

    assert_eq!(post(&path), 200, "a second click is answered the same");
    assert_eq!(scalar(d, proof), 1, "and records nothing twice");
    assert_eq!(scalar(d, drips), 1);

    let forged = format!("{}0", path.trim_end_matches(char::is_alphanumeric));
    assert_eq!(post(&forged), 404, "{path} → {forged}");
    assert_eq!(u.own(&forged).0, 404);
}
