//! Email through a real SMTP server: the daemon's worker hands every message to
//! aiosmtpd on loopback (funnel.yaml's `email.smtp`). Each parses as MIME with
//! text and HTML parts; a marketing one carries `List-Unsubscribe` and
//! `List-Unsubscribe-Post` (RFC 8058), an unsubscribe link and the postal
//! address; a transactional one none of the list headers. A `POST` to the
//! `List-Unsubscribe` URL unsubscribes at once (a `GET` changes nothing, a forged
//! token finds no one), and the next marketing email is not sent while the
//! transactional one still is. A 550 for a recipient bounces: the send, the
//! contact and the address are marked, and nothing is retried.

use crate::daemon::up;
use crate::http_client::http;
use crate::smtp_sink::SmtpSink;
use crate::support::demo;

const TIPS: &str = "# A marketing email after each contact-form post.
name: Tips after contact
trigger:
  type: form_submission
  site: demo
  component: contact-form
steps:
  - id: who
    type: upsert_contact
    email: \"{{ trigger.fields.email }}\"
  - id: tips
    type: send_email
    template: onboarding-tips
";

fn header<'a>(m: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    m["headers"][name]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default()
}

fn to_of(m: &serde_json::Value) -> &str {
    header(m, "to").first().copied().unwrap_or("")
}

fn scalar_text(d: &std::path::Path, sql: &str, email: &str) -> String {
    crate::backend::scalar(d, sql, funnel::db_params![email])
}

fn count(d: &std::path::Path, sql: &str) -> i64 {
    crate::backend::scalar(d, sql, funnel::db_params![])
}

/// The path (and query) of a `{public_url}…` URL in an email's HTML, unescaped.
fn public_path(url: &str) -> String {
    url.replace("&amp;", "&")
        .strip_prefix("https://go.northwind.example")
        .unwrap_or_else(|| panic!("not under public_url: {url}"))
        .to_string()
}

/// Opens, clicks and view in browser through the links of the marketing email
/// `html`: each recorded once on the send and the contact's timeline, forged
/// ones refused.
fn tracking_is_recorded(u: &crate::daemon::Up, d: &std::path::Path, html: &str) {
    let pixel = html
        .split("src=\"")
        .filter_map(|s| s.split('"').next())
        .find(|s| s.contains("/o/"))
        .unwrap_or_else(|| panic!("no open pixel in {html}"));
    let click = html
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|s| s.contains("/c/"))
        .unwrap_or_else(|| panic!("no tracked link in {html}"));
    let timeline = |kind: &str| {
        count(
            d,
            &format!("SELECT count(*) FROM activities WHERE type = '{kind}'"),
        )
    };
    assert_eq!(timeline("email_opened"), 0);
    let (status, headers, body) = u.own(&public_path(pixel));
    assert_eq!(status, 200);
    assert_eq!(
        crate::http_client::header(&headers, "content-type"),
        Some("image/gif")
    );
    assert!(body.starts_with(b"GIF89a"));
    u.own(&public_path(pixel));
    assert_eq!(timeline("email_opened"), 1, "an open is recorded once");
    assert_eq!(
        count(
            d,
            "SELECT count(*) FROM email_sends WHERE opened_at IS NOT NULL"
        ),
        1
    );

    let path = public_path(click);
    let (status, headers, _) = u.own(&path);
    assert_eq!(status, 302);
    let target = crate::http_client::header(&headers, "location")
        .unwrap_or_default()
        .to_string();
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let expected: String = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "u")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    assert_eq!(target, expected);
    assert!(target.starts_with("https://"), "{target}");
    assert_eq!(timeline("email_clicked"), 1);
    assert_eq!(
        count(
            d,
            "SELECT count(*) FROM email_sends WHERE clicked_at IS NOT NULL"
        ),
        1
    );
    // The same token with another target is not a link anyone was sent.
    let token_path = path.split('?').next().unwrap_or_default();
    let (status, _, _) = u.own(&format!("{token_path}?u=https%3A%2F%2Fevil.example%2F"));
    assert_eq!(status, 404);
    let (status, _, _) = u.own(token_path);
    assert_eq!(status, 400);
    assert_eq!(timeline("email_clicked"), 1);

    // View in browser: the HTML as sent, under a policy that runs no script.
    let view = pixel.replace("/o/", "/e/");
    let (status, headers, body) = u.own(&public_path(&view));
    assert_eq!(status, 200);
    assert!(
        crate::http_client::header(&headers, "content-security-policy")
            .is_some_and(|c| c.contains("default-src 'none'"))
    );
    let shown = String::from_utf8_lossy(&body);
    assert!(shown.contains("Torstraße 140"), "{shown}");
    let (status, _, _) = u.own(&public_path(&format!(
        "{}0",
        view.trim_end_matches(char::is_alphanumeric)
    )));
    assert_eq!(status, 404);
}

/// Points the demo's funnel.yaml at the sink (with `extra` lines under `email:`)
/// and adds the workflow that sends a marketing email after each contact form.
fn relay_to(d: &std::path::Path, sink: &SmtpSink, extra: &str) {
    let config = std::fs::read_to_string(d.join("funnel.yaml")).expect("funnel.yaml");
    let config = config.replace(
        "  outbox: .funnel/outbox\n",
        &format!(
            "  outbox: .funnel/outbox\n  smtp:\n    host: 127.0.0.1\n    port: {}\n    tls: none\n{extra}",
            sink.port
        ),
    );
    assert!(config.contains("tls: none"), "funnel.yaml changed shape");
    std::fs::write(d.join("funnel.yaml"), config).expect("write funnel.yaml");
    std::fs::write(d.join("workflows/tips-after-contact.yaml"), TIPS).expect("workflow");
}

#[test]
fn mail_reaches_a_real_smtp_server_and_one_click_unsubscribe_stops_marketing_at_once() {
    let dir = demo();
    let d = dir.path();
    let Some(sink) = SmtpSink::start(&d.join("received")) else {
        return;
    };
    relay_to(d, &sink, "");
    let u = up(d);

    assert_eq!(u.post_form("jane@example.org"), 303);
    let got = sink.wait_for(2, 30);
    assert_eq!(got.len(), 2, "welcome and tips: {got:#?}");
    for m in &got {
        assert_eq!(m["defects"], serde_json::json!([]), "{m:#}");
        assert_eq!(m["content_type"], "multipart/alternative", "{m:#}");
        assert!(m["text"].as_str().is_some_and(|t| !t.is_empty()), "{m:#}");
        assert!(m["html"].as_str().is_some_and(|t| t.contains("<")), "{m:#}");
        assert_eq!(to_of(m), "jane@example.org");
        assert_eq!(header(m, "message-id").len(), 1, "{m:#}");
    }
    let envelope: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sink.folder.join("000001.json")).expect("envelope"),
    )
    .expect("JSON");
    // The envelope sender is the send's own return path (VERP).
    let mail_from = envelope["mail_from"].as_str().unwrap_or_default();
    assert!(
        mail_from.starts_with("hello+") && mail_from.ends_with("@northwind.example"),
        "{mail_from}"
    );
    assert_eq!(
        envelope["rcpt_tos"],
        serde_json::json!(["jane@example.org"])
    );

    let (welcome, tips): (Vec<_>, Vec<_>) = got
        .iter()
        .partition(|m| header(m, "subject").iter().any(|s| s.contains("Welcome")));
    let (welcome, tips) = (welcome[0], tips[0]);
    assert!(
        header(welcome, "list-unsubscribe").is_empty(),
        "transactional mail has no list headers: {welcome:#}"
    );
    assert_eq!(
        header(tips, "list-unsubscribe-post"),
        ["List-Unsubscribe=One-Click"]
    );
    let list = header(tips, "list-unsubscribe");
    assert_eq!(list.len(), 1, "{tips:#}");
    // Both forms of RFC 2369: the https URL (RFC 8058's one-click POST goes
    // there) and a signed mailto address.
    let forms: Vec<&str> = list[0]
        .split(", ")
        .map(|f| f.trim_matches(['<', '>']))
        .collect();
    assert_eq!(forms.len(), 2, "{list:?}");
    assert!(
        forms[1].starts_with("mailto:hello+u")
            && forms[1].ends_with("@northwind.example?subject=unsubscribe"),
        "{list:?}"
    );
    let url = forms[0].to_string();
    let path = url
        .strip_prefix("https://go.northwind.example")
        .unwrap_or_else(|| panic!("unsubscribe under public_url: {url}"));
    assert!(path.starts_with("/u/"), "{url}");
    let text = tips["text"].as_str().unwrap_or_default();
    let html = tips["html"].as_str().unwrap_or_default();
    assert!(text.contains("Torstraße 140, 10119 Berlin"), "{text}");
    assert!(
        html.contains(&url) && text.contains(&url),
        "the footer links {url}"
    );
    assert_eq!(
        count(d, "SELECT count(*) FROM outbox WHERE status = 'sent'"),
        2
    );

    tracking_is_recorded(&u, d, html);

    let status_sql = "SELECT status FROM contacts WHERE email = ?1";
    // A GET (a link scanner, a preview) shows the page and changes nothing.
    let (status, _, body) = u.own(path);
    let page = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("j***@example.org") && page.contains("<form method=\"post\""),
        "{page}"
    );
    assert!(
        !page.contains("jane@example.org"),
        "the page masks the address"
    );
    assert_eq!(scalar_text(d, status_sql, "jane@example.org"), "active");

    let post = |p: &str, body: &str| {
        http(
            &u.addr,
            &format!(
                "POST {p} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                u.addr,
                body.len()
            ),
            body.as_bytes(),
        )
    };
    // A forged signature and a body that is not the one-click form change nothing.
    let (uid, sig) = path
        .trim_start_matches("/u/")
        .rsplit_once('.')
        .expect("token");
    let forged = format!("/u/{uid}.{}", "0".repeat(sig.len()));
    let (status, _, body) = post(&forged, "List-Unsubscribe=One-Click");
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = post(path, "unsubscribe=yes");
    assert_eq!(status, 400);
    assert_eq!(scalar_text(d, status_sql, "jane@example.org"), "active");

    // The one-click POST a mail client sends: effective at once.
    let (status, _, body) = post(path, "List-Unsubscribe=One-Click");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        scalar_text(d, status_sql, "jane@example.org"),
        "unsubscribed"
    );
    assert_eq!(
        count(
            d,
            "SELECT count(*) FROM suppressions WHERE reason = 'unsubscribed'"
        ),
        1
    );
    assert_eq!(
        count(
            d,
            "SELECT count(*) FROM consent_ledger WHERE purpose = 'email_marketing' AND granted = 0"
        ),
        1
    );
    assert_eq!(
        count(
            d,
            "SELECT count(*) FROM activities WHERE type = 'email_unsubscribed'"
        ),
        1
    );
    // Again: answered the same, recorded once.
    let (status, _, _) = post(path, "List-Unsubscribe=One-Click");
    assert_eq!(status, 200);
    assert_eq!(
        count(
            d,
            "SELECT count(*) FROM activities WHERE type = 'email_unsubscribed'"
        ),
        1
    );

    // The next form post: the receipt still goes, the marketing email does not.
    assert_eq!(u.post_form("jane@example.org"), 303);
    let got = sink.wait_for(3, 30);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let got_later = sink.messages();
    assert_eq!(got.len(), 3, "{got_later:#?}");
    assert_eq!(
        got_later.len(),
        3,
        "no marketing after the unsubscribe: {got_later:#?}"
    );
    assert!(
        header(&got_later[2], "subject")
            .iter()
            .any(|s| s.contains("Welcome"))
    );

    // A recipient the server refuses for good: bounced once, never retried.
    assert_eq!(u.post_form("bounce-me@example.org"), 303);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count(d, "SELECT count(*) FROM outbox WHERE status = 'bounced'") < 2
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(
        count(d, "SELECT count(*) FROM outbox WHERE status = 'bounced'"),
        2
    );
    assert_eq!(
        scalar_text(d, status_sql, "bounce-me@example.org"),
        "bounced"
    );
    assert_eq!(
        count(
            d,
            "SELECT count(*) FROM suppressions WHERE reason = 'bounced'"
        ),
        1
    );
    assert!(
        count(
            d,
            "SELECT count(*) FROM activities WHERE type = 'email_bounced'"
        ) >= 1
    );
    assert_eq!(
        count(
            d,
            "SELECT count(*) FROM email_sends WHERE status = 'bounced'"
        ),
        2
    );
    assert_eq!(
        sink.messages().len(),
        3,
        "nothing reached the refused mailbox"
    );
}

/// Every message is DKIM-signed with the key funnel.yaml names, Ed25519 from the
/// environment or RSA-2048 from a file, and dkimpy verifies each signature with
/// the public key; the signature covers the identifying and unsubscribe headers.
#[test]
fn dkim_signatures_verify_with_an_independent_verifier() {
    for algorithm in ["ed25519", "rsa"] {
        let dir = demo();
        let d = dir.path();
        let Some(sink) = SmtpSink::start(&d.join("received")) else {
            return;
        };
        let keys = d.join("keys");
        sink.dkim_check(&["keys".as_ref(), keys.as_os_str()]);
        let (key_line, env): (&str, Vec<(&str, String)>) = if algorithm == "ed25519" {
            let seed = std::fs::read_to_string(keys.join("ed25519.key")).expect("seed");
            ("    private_key: ${DKIM_KEY}\n", vec![("DKIM_KEY", seed)])
        } else {
            ("    private_key_file: keys/rsa.pem\n", Vec::new())
        };
        relay_to(
            d,
            &sink,
            &format!(
                "  dkim:\n    domain: northwind.example\n    selector: funnel\n    algorithm: {algorithm}\n{key_line}"
            ),
        );
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let u = crate::daemon::up_with_env(d, &env);
        assert_eq!(u.post_form("jane@example.org"), 303);
        assert_eq!(sink.wait_for(2, 30).len(), 2, "{algorithm}");
        let public = keys.join(format!("{algorithm}.pub"));
        let verdicts = sink.dkim_check(&[
            "verify".as_ref(),
            sink.folder.as_os_str(),
            "funnel".as_ref(),
            "northwind.example".as_ref(),
            algorithm.as_ref(),
            public.as_os_str(),
        ]);
        let verdicts = verdicts.as_array().expect("a list");
        assert_eq!(verdicts.len(), 2);
        for v in verdicts {
            assert_eq!(v["verified"], true, "{algorithm}: {v:#}");
            let expected_a = if algorithm == "rsa" {
                "rsa-sha256"
            } else {
                "ed25519-sha256"
            };
            assert_eq!(v["tags"]["a"], expected_a, "{v:#}");
            assert_eq!(v["tags"]["d"], "northwind.example");
            let h = v["tags"]["h"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            for name in funnel::email::dkim::SIGNED_HEADERS {
                assert!(
                    h.split(':').any(|x| x == name.to_ascii_lowercase()),
                    "{name} in h={h}"
                );
            }
        }
        // A changed key no longer verifies: the check can fail.
        let other = d.join("other");
        sink.dkim_check(&["keys".as_ref(), other.as_os_str()]);
        let verdicts = sink.dkim_check(&[
            "verify".as_ref(),
            sink.folder.as_os_str(),
            "funnel".as_ref(),
            "northwind.example".as_ref(),
            algorithm.as_ref(),
            other.join(format!("{algorithm}.pub")).as_os_str(),
        ]);
        assert!(
            verdicts
                .as_array()
                .is_some_and(|a| a.iter().all(|v| v["verified"] == false)),
            "{verdicts:#}"
        );
        drop(u);
    }
}

/// `funnel emails preview` renders as the sender would, for a sample contact;
/// `send-test` hands one copy marked `[Test]` to the relay, and stores nothing.
#[test]
fn a_template_is_previewed_and_a_test_copy_sent_without_storing_anything() {
    let dir = demo();
    let d = dir.path();
    let Some(sink) = SmtpSink::start(&d.join("received")) else {
        return;
    };
    relay_to(d, &sink, "");
    let out = crate::support::run(&["emails", "preview", "case-study", "--part", "eml"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eml = String::from_utf8_lossy(&out.stdout);
    assert!(
        eml.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{eml}"
    );
    assert!(eml.contains("To: ada@example.org"), "{eml}");
    let out = crate::support::run(
        &["emails", "send-test", "welcome", "--to", "qa@example.org"],
        d,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = sink.wait_for(1, 10);
    assert_eq!(got.len(), 1);
    assert_eq!(to_of(&got[0]), "qa@example.org");
    assert!(
        header(&got[0], "subject")
            .iter()
            .any(|s| s.starts_with("[Test] Welcome")),
        "{:#}",
        got[0]
    );
    assert_eq!(
        count(d, "SELECT count(*) FROM outbox"),
        0,
        "a test copy is not queued"
    );
    let out = crate::support::run(&["emails", "preview", "nope"], d);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the templates are"));
}
