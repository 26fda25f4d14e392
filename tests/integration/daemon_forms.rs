//! The daemon's form endpoint against what a hostile or careless client sends:
//! only urlencoded or JSON bodies without Content-Encoding, the form's required
//! fields, posts from the site itself, a rate per client address (behind a
//! trusted proxy, the forwarded one), and a browser sent back to its form. Each
//! refusal stores nothing.

use crate::daemon::{Up, up};
use crate::http_client::header;
use crate::support::demo;

const FORM: &str = "/f/demo/contact-form";
const URLENCODED: &str = "Content-Type: application/x-www-form-urlencoded\r\n";

fn full(email: &str) -> String {
    format!(
        "name=Ada&email={}&company=Acme&message=Hi",
        email.replace('@', "%40")
    )
}

fn contacts(d: &std::path::Path) -> i64 {
    crate::backend::scalar(d, "SELECT count(*) FROM contacts", funnel::db_params![])
}

fn error_of(body: &[u8]) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    doc["error"].clone()
}

fn with_daemon_settings(d: &std::path::Path, settings: &str) {
    let path = d.join("funnel.yaml");
    let mut text = std::fs::read_to_string(&path).expect("funnel.yaml");
    text.push_str(settings);
    std::fs::write(&path, text).expect("write funnel.yaml");
}

#[test]
fn form_posts_are_checked_before_anything_is_stored() {
    let dir = demo();
    let d = dir.path();
    // Behind a proxy on loopback; a low rate to see it bite.
    with_daemon_settings(
        d,
        "daemon:\n  trusted_proxies: [127.0.0.1]\n  form_rate_limit: 4\n",
    );
    let u: Up = up(d);
    let xff = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
    let post = |extra: &str, body: &str| u.to_site("POST", FORM, extra, body);

    // Wrong body types and encodings: 415 with a JSON error.
    let refusals = [
        ("Content-Type: text/plain\r\n".to_string(), 415),
        (
            "Content-Type: multipart/form-data; boundary=x\r\n".to_string(),
            415,
        ),
        (format!("{URLENCODED}Content-Encoding: gzip\r\n"), 415),
        (String::new(), 415),
    ];
    for (i, (extra, status)) in refusals.iter().enumerate() {
        let (got, h, body) = post(
            &format!("{extra}{}", xff(&format!("198.51.100.{i}"))),
            &full("a@example.org"),
        );
        assert_eq!(got, *status, "{extra:?}");
        assert!(header(&h, "content-type").is_some_and(|c| c.contains("json")));
        assert_eq!(error_of(&body)["code"], "unsupported_media_type");
    }
    // Missing required fields: 422 naming them, or for a browser a 303 back to
    // the form naming them.
    let (status, _, body) = post(
        &format!("{URLENCODED}{}", xff("198.51.100.10")),
        "email=a%40example.org&name=Ada",
    );
    assert_eq!(status, 422);
    assert_eq!(error_of(&body)["field"], "company,message");
    let (status, h, _) = post(
        &format!(
            "{URLENCODED}Accept: text/html,application/xhtml+xml\r\n{}",
            xff("198.51.100.11")
        ),
        "name=Ada&email=nope&company=&message=Hi",
    );
    assert_eq!(status, 303);
    assert_eq!(
        header(&h, "location"),
        Some("/?fix=company,email#contact-form")
    );
    // From another site: 403.
    let (status, _, body) = post(
        &format!(
            "{URLENCODED}Origin: https://evil.example\r\n{}",
            xff("198.51.100.12")
        ),
        &full("b@example.org"),
    );
    assert_eq!(status, 403);
    assert_eq!(error_of(&body)["code"], "forbidden");
    // A JSON body nesting objects: 400 naming the field.
    let (status, _, body) = post(
        &format!("Content-Type: application/json\r\n{}", xff("198.51.100.13")),
        r#"{"email": "c@example.org", "name": {"first": "Ada"}}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(error_of(&body)["field"], "name");
    assert_eq!(contacts(d), 0, "no refusal stored anything");

    // A good JSON post from a client that wants JSON.
    let (status, _, body) = post(
        &format!(
            "Content-Type: application/json\r\nAccept: application/json\r\n{}",
            xff("198.51.100.14")
        ),
        r#"{"email": "json@example.org", "name": "Ada", "company": "Acme", "message": "Hi\u0000there", "seats": 5}"#,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let ok: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(ok["ok"], true);
    assert!(
        ok["redirect"]
            .as_str()
            .is_some_and(|r| r.starts_with("/thank-you"))
    );
    assert_eq!(contacts(d), 1);

    // The rate: 4 posts a minute per client address, each forwarded address its own.
    let same = xff("203.0.113.7");
    for i in 0..4 {
        let (status, _, _) = post(
            &format!("{URLENCODED}{same}"),
            &full(&format!("r{i}@example.org")),
        );
        assert_eq!(status, 303, "post {i}");
    }
    let (status, h, body) = post(&format!("{URLENCODED}{same}"), &full("r4@example.org"));
    assert_eq!(status, 429);
    assert!(header(&h, "retry-after").is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)));
    assert_eq!(error_of(&body)["code"], "too_many_requests");
    // A client cannot pick its address past the proxy: the proxy appends the real
    // one, and that one counts.
    let (status, _, _) = post(
        &format!("{URLENCODED}X-Forwarded-For: 1.2.3.4, 203.0.113.7\r\n"),
        &full("r5@example.org"),
    );
    assert_eq!(status, 429);
    let (status, _, _) = post(
        &format!("{URLENCODED}{}", xff("203.0.113.8")),
        &full("r6@example.org"),
    );
    assert_eq!(status, 303, "another address has its own rate");
    assert_eq!(contacts(d), 6);
    // Still answering.
    assert_eq!(u.own("/healthz").0, 200);
}
