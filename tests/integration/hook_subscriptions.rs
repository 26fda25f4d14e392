//! Outbound webhook subscriptions through the daemon's API: an event is
//! delivered signed to a real HTTP server, a failed delivery is retried with
//! the same delivery id, a 410 ends the subscription, `DELETE` stops
//! deliveries, private addresses and unknown events are refused.

use std::time::{Duration, Instant};

use serde_json::json;

use super::daemon::up;
use super::daemon_api::api;
use super::http_server::{Request, Server};
use super::support::{api_token, demo};

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Waits up to `secs` for `n` requests on `path`.
fn wait_for(server: &Server, path: &str, n: usize, secs: u64) -> Vec<Request> {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let got: Vec<Request> = server
            .requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect();
        if got.len() >= n || Instant::now() > until {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn events_are_delivered_signed_retried_and_stop_on_unsubscribe() {
    let dir = demo();
    let d = dir.path();
    let config = d.join("funnel.yaml");
    let text = std::fs::read_to_string(&config).expect("funnel.yaml");
    std::fs::write(&config, format!("{text}\nnetwork:\n  allow: [127.0.0.1]\n")).expect("write");
    let editor = api_token(d, "zap", "editor");
    let viewer = api_token(d, "vic", "viewer");
    let server = Server::start();
    let u = up(d);
    let subscribe = |event: &str, target: String, token: &str| {
        api(
            &u,
            "POST",
            "/api/hooks/subscriptions",
            Some(token),
            Some(&json!({"event": event, "target_url": target})),
        )
    };
    // Refused: a viewer, an unknown event, a private address the workspace
    // does not allow, something that is not a URL.
    assert_eq!(
        subscribe("contact_created", format!("{}/ok", server.url), &viewer).0,
        403
    );
    for (event, target, field) in [
        ("contact_exploded", format!("{}/ok", server.url), "event"),
        (
            "contact_created",
            "http://10.1.2.3/hook".to_string(),
            "target_url",
        ),
        (
            "contact_created",
            "http://169.254.169.254/latest".to_string(),
            "target_url",
        ),
        ("contact_created", "not a url".to_string(), "target_url"),
    ] {
        let (status, answer) = subscribe(event, target, &editor);
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    // A subscription on a target that fails the first time.
    let (status, made) = subscribe("contact_created", format!("{}/flaky", server.url), &editor);
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().expect("id").to_string();
    let secret = made["secret"].as_str().expect("secret").to_string();
    assert_eq!(u.post_form("first@example.org"), 303);
    let got = wait_for(&server, "/flaky", 2, 15);
    assert_eq!(got.len(), 2, "one failure, then the retry: {got:?}");
    let (a, b) = (&got[0], &got[1]);
    assert_eq!(
        header(a, "funnel-delivery"),
        header(b, "funnel-delivery"),
        "the same delivery"
    );
    assert_eq!(header(b, "funnel-event"), Some("contact_created"));
    assert_eq!(b.body["event"], "contact_created");
    assert!(b.body["contact_id"].is_i64(), "{}", b.body);
    // The signature checks out with the secret, over the body as sent.
    let signed = header(b, "funnel-signature").expect("signed");
    let t: i64 = signed
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .and_then(|t| t.parse().ok())
        .expect("t=");
    assert_eq!(
        funnel::subscriptions::signature(&secret, t, &b.body.to_string()),
        signed
    );
    assert_ne!(
        funnel::subscriptions::signature("whsec_other", t, &b.body.to_string()),
        signed
    );
    // Listed with nothing pending; no secret shown.
    let (_, listed) = api(&u, "GET", "/api/hooks/subscriptions", Some(&editor), None);
    let subs = listed["subscriptions"].as_array().expect("list");
    assert_eq!(subs.len(), 1, "{listed}");
    assert_eq!(subs[0]["pending"], 0, "{listed}");
    assert!(!listed.to_string().contains(&secret));
    // Unsubscribed: the next contact is not announced.
    let (status, gone) = api(
        &u,
        "DELETE",
        &format!("/api/hooks/subscriptions/{id}"),
        Some(&editor),
        None,
    );
    assert_eq!((status, gone["unsubscribed"].as_bool()), (200, Some(true)));
    assert_eq!(u.post_form("second@example.org"), 303);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        wait_for(&server, "/flaky", 3, 0).len(),
        2,
        "nothing after unsubscribing"
    );
    // A forgotten person's form is ignored, and so never announced.
    let (status, _) = subscribe("form_submission", format!("{}/ok", server.url), &editor);
    assert_eq!(status, 201);
    let out = super::support::run(&["contacts", "forget", "first@example.org"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(u.post_form("first@example.org"), 303);
    assert_eq!(u.post_form("fourth@example.org"), 303);
    wait_for(&server, "/ok", 1, 15);
    std::thread::sleep(Duration::from_secs(2));
    let posted: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/ok")
        .collect();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert!(posted[0].body.to_string().contains("fourth@example.org"));
    assert!(
        !posted
            .iter()
            .any(|r| r.body.to_string().contains("first@example.org"))
    );
    // A target that answers 410 Gone unsubscribes itself.
    let (status, _) = subscribe(
        "contact_created",
        format!("{}/status/410", server.url),
        &editor,
    );
    assert_eq!(status, 201);
    assert_eq!(u.post_form("third@example.org"), 303);
    assert_eq!(wait_for(&server, "/status/410", 1, 15).len(), 1);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, listed) = api(&u, "GET", "/api/hooks/subscriptions", Some(&editor), None);
        let left = listed["subscriptions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !left.iter().any(|s| {
            s["target_url"]
                .as_str()
                .is_some_and(|t| t.ends_with("/410"))
        }) {
            break;
        }
        assert!(Instant::now() < until, "still subscribed: {listed}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
