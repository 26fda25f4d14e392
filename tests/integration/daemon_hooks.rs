//! Inbound webhooks on the daemon: a signed post starts the workflow whose trigger
//! names the path (the demo's Stripe relay), once; forged, stale, replayed,
//! unsigned and malformed posts are refused with JSON errors and start nothing.

use crate::daemon::{Up, up_with_env};
use crate::http_client::http;
use crate::support::demo;

const SECRET: &str = "whsec_daemon_test";
const PATH: &str = "/hooks/stripe/payment-succeeded";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn signature(secret: &str, t: i64, body: &str) -> String {
    let mac =
        funnel::analytics::token::hmac_sha256(secret.as_bytes(), format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac))
}

fn payment(invoice: &str) -> String {
    serde_json::json!({
        "email": "buyer@example.org",
        "customer_id": "cus_1",
        "invoice_id": invoice,
        "plan": "team",
        "amount": 4900,
        "currency": "eur",
        "first_payment": true
    })
    .to_string()
}

fn hook(u: &Up, method: &str, path: &str, extra: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, _, raw) = http(
        &u.addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
            u.addr,
            body.len()
        ),
        body.as_bytes(),
    );
    let doc = serde_json::from_slice(&raw).unwrap_or_else(|e| {
        panic!(
            "{method} {path}: not JSON ({e}): {}",
            String::from_utf8_lossy(&raw)
        )
    });
    (status, doc)
}

fn runs(d: &std::path::Path) -> i64 {
    crate::backend::scalar(
        d,
        "SELECT count(*) FROM executions WHERE workflow_id = 'stripe-payment'",
        funnel::db_params![],
    )
}

#[test]
fn signed_webhooks_start_their_workflow_once() {
    let dir = demo();
    let d = dir.path();
    let u = up_with_env(d, &[("STRIPE_RELAY_SECRET", SECRET)]);
    let json = "Content-Type: application/json\r\n";

    let body = payment("in_1");
    let signed = format!(
        "{json}Funnel-Signature: {}\r\n",
        signature(SECRET, now(), &body)
    );
    let (status, doc) = hook(&u, "POST", PATH, &signed, &body);
    assert_eq!(status, 202, "{doc}");
    assert_eq!(doc["started"], 1);
    assert_eq!(runs(d), 1);
    // The same signed post again is a replay.
    let (status, doc) = hook(&u, "POST", PATH, &signed, &body);
    assert_eq!(
        (status, doc["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    // Stripe's header, the same scheme.
    let body2 = payment("in_2");
    let stripe = format!(
        "{json}Stripe-Signature: {}\r\n",
        signature(SECRET, now(), &body2)
    );
    assert_eq!(hook(&u, "POST", PATH, &stripe, &body2).0, 202);
    assert_eq!(runs(d), 2);

    // Refusals, each a JSON error, none starting anything.
    let t = now();
    let b = payment("in_x");
    let cases: Vec<(String, &str, String, u16)> = vec![
        (
            format!("{json}Funnel-Signature: {}\r\n", signature("forged", t, &b)),
            PATH,
            b.clone(),
            401,
        ),
        (
            format!(
                "{json}Funnel-Signature: {}\r\n",
                signature(SECRET, t - 600, &b)
            ),
            PATH,
            b.clone(),
            401,
        ),
        (
            format!(
                "{json}Funnel-Signature: {}\r\n",
                signature(SECRET, t + 600, &b)
            ),
            PATH,
            b.clone(),
            401,
        ),
        (json.to_string(), PATH, b.clone(), 401),
        (
            format!("{json}Funnel-Signature: t=abc,v1=zz\r\n"),
            PATH,
            b.clone(),
            401,
        ),
        (
            format!("{json}Funnel-Signature: {}\r\n", signature(SECRET, t, &b)),
            PATH,
            payment("in_tampered"),
            401,
        ),
        (
            format!(
                "Content-Type: text/plain\r\nFunnel-Signature: {}\r\n",
                signature(SECRET, t, &b)
            ),
            PATH,
            b.clone(),
            415,
        ),
        (
            format!(
                "{json}Content-Encoding: gzip\r\nFunnel-Signature: {}\r\n",
                signature(SECRET, t, &b)
            ),
            PATH,
            b.clone(),
            415,
        ),
        (
            format!(
                "{json}Funnel-Signature: {}\r\n",
                signature(SECRET, t, "{not json")
            ),
            PATH,
            "{not json".into(),
            400,
        ),
        (
            format!(
                "{json}Funnel-Signature: {}\r\n",
                signature(SECRET, t, "[1]")
            ),
            PATH,
            "[1]".into(),
            400,
        ),
        (json.to_string(), "/hooks/no/such/path", b.clone(), 404),
        (json.to_string(), "/hooks/../../etc/passwd", b.clone(), 404),
    ];
    for (extra, path, body, want) in &cases {
        let (status, doc) = hook(&u, "POST", path, extra, body);
        assert_eq!(status, *want, "{extra:?} {path} → {doc}");
        assert!(doc["error"]["message"].is_string(), "{doc}");
    }
    let (status, doc) = hook(&u, "GET", PATH, "", "");
    assert_eq!(
        (status, doc["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert_eq!(runs(d), 2, "no refusal started anything");
    assert_eq!(u.own("/healthz").0, 200);
}

#[test]
fn a_hook_whose_secret_is_unset_refuses_posts() {
    let dir = demo();
    let d = dir.path();
    let u = up_with_env(d, &[("STRIPE_RELAY_SECRET", "")]);
    let body = payment("in_1");
    let (status, doc) = hook(
        &u,
        "POST",
        PATH,
        &format!(
            "Content-Type: application/json\r\nFunnel-Signature: {}\r\n",
            signature("", now(), &body)
        ),
        &body,
    );
    assert_eq!(status, 503, "{doc}");
    assert_eq!(runs(d), 0);
}
