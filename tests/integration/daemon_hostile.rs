//! Hostile input against a running daemon: more than 60 malformed requests across
//! the form endpoint, tracking beacons, webhooks, the API and the daemon's own
//! routes (wrong types and encodings, broken UTF-8 and JSON, oversized bodies,
//! injection strings, forged and replayed signatures, path and header tricks).
//! Each gets a 4xx with a JSON error (a browser's form post its 303 back to the
//! form), nothing is stored, and the daemon keeps answering.

use crate::daemon::up_with_env;
use crate::http_client::http;
use crate::support::{api_token, demo};

const SECRET: &str = "whsec_hostile";

struct Case {
    name: &'static str,
    /// Request line and headers before `Host` (e.g. `POST /f/demo/contact-form`).
    line: String,
    /// `site` for the demo site's host, `own` for the daemon's.
    host: &'static str,
    headers: String,
    body: Vec<u8>,
    /// The status expected; 0: any 4xx.
    want: u16,
}

fn case(
    name: &'static str,
    line: &str,
    host: &'static str,
    headers: &str,
    body: impl Into<Vec<u8>>,
    want: u16,
) -> Case {
    Case {
        name,
        line: line.to_string(),
        host,
        headers: headers.to_string(),
        body: body.into(),
        want,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn signed(t: i64, secret: &str, body: &str) -> String {
    let mac =
        funnel::analytics::token::hmac_sha256(secret.as_bytes(), format!("{t}.{body}").as_bytes());
    format!("Funnel-Signature: t={t},v1={}\r\n", hex::encode(mac))
}

#[test]
fn malformed_requests_get_json_errors_and_store_nothing() {
    let dir = demo();
    let d = dir.path();
    let token = api_token(d, "ed", "editor");
    let auth = format!("Authorization: Bearer {token}\r\n");
    // Every form case comes from one address: a rate that does not bite here
    // (daemon_forms tests the rate).
    let config = d.join("funnel.yaml");
    let text = std::fs::read_to_string(&config).expect("funnel.yaml");
    std::fs::write(
        &config,
        format!("{text}daemon:\n  form_rate_limit: 10000\n"),
    )
    .expect("write");
    let u = up_with_env(d, &[("STRIPE_RELAY_SECRET", SECRET)]);

    const FORM: &str = "POST /f/demo/contact-form";
    const FORM_TYPE: &str = "Content-Type: application/x-www-form-urlencoded\r\n";
    const JSON: &str = "Content-Type: application/json\r\n";
    const HOOK: &str = "POST /hooks/stripe/payment-succeeded";
    let good_form = "name=Ada&email=ada%40example.org&company=Acme&message=Hi";
    let big = "x".repeat(70 * 1024);
    let many_fields: String = (0..60)
        .map(|i| format!("f{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    let t = now();
    let hook_body = r#"{"email":"buyer@example.org","customer_id":"c","invoice_id":"i","plan":"p","amount":1,"currency":"eur","first_payment":true}"#;
    let replayed = signed(t, SECRET, hook_body);

    let cases = vec![
        // The form endpoint.
        case(
            "form as text/plain",
            FORM,
            "site",
            "Content-Type: text/plain\r\n",
            good_form,
            415,
        ),
        case(
            "form as multipart",
            FORM,
            "site",
            "Content-Type: multipart/form-data; boundary=--x\r\n",
            good_form,
            415,
        ),
        case("form without a type", FORM, "site", "", good_form, 415),
        case(
            "form as XML",
            FORM,
            "site",
            "Content-Type: application/xml\r\n",
            "<email>a@b.c</email>",
            415,
        ),
        case(
            "form gzip",
            FORM,
            "site",
            &format!("{FORM_TYPE}Content-Encoding: gzip\r\n"),
            good_form,
            415,
        ),
        case(
            "form deflate",
            FORM,
            "site",
            &format!("{FORM_TYPE}Content-Encoding: deflate\r\n"),
            good_form,
            415,
        ),
        case(
            "form br",
            FORM,
            "site",
            &format!("{FORM_TYPE}Content-Encoding: br\r\n"),
            good_form,
            415,
        ),
        case("form JSON array", FORM, "site", JSON, "[1,2]", 400),
        case(
            "form JSON nested",
            FORM,
            "site",
            JSON,
            r#"{"email":"a@example.org","name":{"x":1}}"#,
            400,
        ),
        case(
            "form broken JSON",
            FORM,
            "site",
            JSON,
            r#"{"email": "a@exa"#,
            400,
        ),
        case(
            "form JSON broken UTF-8",
            FORM,
            "site",
            JSON,
            b"{\"email\": \"a\xff\xfe@example.org\"}".to_vec(),
            400,
        ),
        case(
            "form broken percent-UTF-8 and no name",
            FORM,
            "site",
            FORM_TYPE,
            "email=%FF%FE%40example.org",
            422,
        ),
        case(
            "form oversized",
            FORM,
            "site",
            FORM_TYPE,
            format!("email=a%40example.org&message={big}"),
            413,
        ),
        case(
            "form too many fields",
            FORM,
            "site",
            FORM_TYPE,
            many_fields.clone(),
            413,
        ),
        case(
            "form without email",
            FORM,
            "site",
            FORM_TYPE,
            "name=Ada&company=A&message=Hi",
            422,
        ),
        case(
            "form with a bad email",
            FORM,
            "site",
            FORM_TYPE,
            "name=Ada&email=not-an-address&company=A&message=Hi",
            422,
        ),
        case(
            "form header injection in email",
            FORM,
            "site",
            FORM_TYPE,
            "name=Ada&email=a%40b.example%0d%0aBcc%3a+x%40y.example&company=A&message=Hi",
            422,
        ),
        case(
            "form SQL in email",
            FORM,
            "site",
            FORM_TYPE,
            "name=Ada&email=%27+OR+1%3D1+--&company=A&message=Hi",
            422,
        ),
        case(
            "form script and nothing required",
            FORM,
            "site",
            FORM_TYPE,
            "name=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            422,
        ),
        case(
            "form from another site",
            FORM,
            "site",
            &format!("{FORM_TYPE}Origin: https://evil.example\r\n"),
            good_form,
            403,
        ),
        case(
            "form from a null origin",
            FORM,
            "site",
            &format!("{FORM_TYPE}Origin: null\r\n"),
            good_form,
            403,
        ),
        case(
            "form with an evil referer",
            FORM,
            "site",
            &format!("{FORM_TYPE}Referer: https://evil.example/page\r\n"),
            good_form,
            403,
        ),
        case(
            "form with a look-alike origin",
            FORM,
            "site",
            &format!("{FORM_TYPE}Origin: http://demo.localhost.evil.example\r\n"),
            good_form,
            403,
        ),
        case(
            "form unknown",
            "POST /f/demo/no-such-form",
            "site",
            FORM_TYPE,
            good_form,
            404,
        ),
        case(
            "form of another site",
            "POST /f/other/contact-form",
            "site",
            FORM_TYPE,
            good_form,
            404,
        ),
        case(
            "form path traversal",
            "POST /f/demo/..%2F..%2Fetc%2Fpasswd",
            "site",
            FORM_TYPE,
            good_form,
            404,
        ),
        case(
            "form extra path",
            "POST /f/demo/contact-form/extra",
            "site",
            FORM_TYPE,
            good_form,
            0,
        ),
        case(
            "form on the daemon's host",
            FORM,
            "own",
            FORM_TYPE,
            good_form,
            404,
        ),
        case(
            "form PUT",
            "PUT /f/demo/contact-form",
            "site",
            FORM_TYPE,
            good_form,
            405,
        ),
        case(
            "browser post missing fields",
            FORM,
            "site",
            &format!("{FORM_TYPE}Accept: text/html\r\n"),
            "name=&email=",
            303,
        ),
        // Tracking beacons.
        case(
            "beacon empty",
            "POST /t",
            "site",
            "Content-Type: text/plain\r\n",
            "",
            400,
        ),
        case(
            "beacon not JSON",
            "POST /t",
            "site",
            "Content-Type: text/plain\r\n",
            "hello",
            400,
        ),
        case(
            "beacon array",
            "POST /t",
            "site",
            "Content-Type: text/plain\r\n",
            "[]",
            400,
        ),
        case(
            "beacon unknown event",
            "POST /t",
            "site",
            "Content-Type: text/plain\r\n",
            r#"{"site":"demo","event":"drop table"}"#,
            400,
        ),
        case(
            "beacon no site",
            "POST /t",
            "site",
            "Content-Type: text/plain\r\n",
            r#"{"event":"view"}"#,
            400,
        ),
        case(
            "beacon other site",
            "POST /t",
            "site",
            "Content-Type: text/plain\r\n",
            r#"{"site":"other","event":"view"}"#,
            404,
        ),
        case(
            "beacon broken UTF-8",
            "POST /t",
            "site",
            "Content-Type: text/plain\r\n",
            b"{\"site\":\"demo\xff\",\"event\":\"view\"}".to_vec(),
            400,
        ),
        case(
            "beacon oversized",
            "POST /t",
            "site",
            "Content-Type: text/plain\r\n",
            format!(r#"{{"site":"demo","event":"view","page":"{big}"}}"#),
            0,
        ),
        case(
            "beacon gzip",
            "POST /t",
            "site",
            "Content-Type: text/plain\r\nContent-Encoding: gzip\r\n",
            r#"{"site":"demo","event":"view"}"#,
            415,
        ),
        // Webhooks.
        case("hook unsigned", HOOK, "own", JSON, hook_body, 401),
        case(
            "hook forged",
            HOOK,
            "own",
            &format!("{JSON}{}", signed(t, "guess", hook_body)),
            hook_body,
            401,
        ),
        case(
            "hook stale",
            HOOK,
            "own",
            &format!("{JSON}{}", signed(t - 3600, SECRET, hook_body)),
            hook_body,
            401,
        ),
        case(
            "hook from the future",
            HOOK,
            "own",
            &format!("{JSON}{}", signed(t + 3600, SECRET, hook_body)),
            hook_body,
            401,
        ),
        case(
            "hook tampered",
            HOOK,
            "own",
            &format!("{JSON}{}", signed(t, SECRET, hook_body)),
            hook_body.replace("eur", "usd"),
            401,
        ),
        case(
            "hook garbage signature",
            HOOK,
            "own",
            &format!("{JSON}Funnel-Signature: t=now,v1=nothex\r\n"),
            hook_body,
            401,
        ),
        case(
            "hook as text",
            HOOK,
            "own",
            &format!(
                "Content-Type: text/plain\r\n{}",
                signed(t, SECRET, hook_body)
            ),
            hook_body,
            415,
        ),
        case(
            "hook gzip",
            HOOK,
            "own",
            &format!(
                "{JSON}Content-Encoding: gzip\r\n{}",
                signed(t, SECRET, hook_body)
            ),
            hook_body,
            415,
        ),
        case(
            "hook broken JSON",
            HOOK,
            "own",
            &format!("{JSON}{}", signed(t, SECRET, "{oops")),
            "{oops",
            400,
        ),
        case(
            "hook not an object",
            HOOK,
            "own",
            &format!("{JSON}{}", signed(t, SECRET, "\"str\"")),
            "\"str\"",
            400,
        ),
        case(
            "hook unknown path",
            "POST /hooks/nothing/here",
            "own",
            JSON,
            "{}",
            404,
        ),
        case(
            "hook traversal",
            "POST /hooks/..%2F..%2Fadmin",
            "own",
            JSON,
            "{}",
            404,
        ),
        case(
            "hook oversized",
            HOOK,
            "own",
            JSON,
            format!("{{\"a\":\"{big}\"}}"),
            413,
        ),
        case(
            "hook GET",
            "GET /hooks/stripe/payment-succeeded",
            "own",
            "",
            "",
            405,
        ),
        // The API.
        case(
            "api without a token",
            "GET /api/crm/contacts",
            "own",
            "",
            "",
            401,
        ),
        case(
            "api basic auth",
            "GET /api/crm/contacts",
            "own",
            "Authorization: Basic YWRtaW46YWRtaW4=\r\n",
            "",
            401,
        ),
        case(
            "api garbage token",
            "GET /api/crm/contacts",
            "own",
            "Authorization: Bearer ' OR 1=1 --\r\n",
            "",
            401,
        ),
        case(
            "api token of the wrong prefix",
            "GET /api/crm/contacts",
            "own",
            "Authorization: Bearer ghp_0000\r\n",
            "",
            401,
        ),
        case(
            "api contact as text",
            "POST /api/crm/contacts",
            "own",
            &format!("{auth}Content-Type: text/plain\r\n"),
            r#"{"email":"a@example.org"}"#,
            415,
        ),
        case(
            "api contact gzip",
            "POST /api/crm/contacts",
            "own",
            &format!("{auth}{JSON}Content-Encoding: gzip\r\n"),
            r#"{"email":"a@example.org"}"#,
            415,
        ),
        case(
            "api broken JSON",
            "POST /api/crm/contacts",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"email":"#,
            400,
        ),
        case(
            "api broken UTF-8",
            "POST /api/crm/contacts",
            "own",
            &format!("{auth}{JSON}"),
            b"{\"email\":\"\xc3\x28@example.org\"}".to_vec(),
            400,
        ),
        case(
            "api array body",
            "POST /api/crm/contacts",
            "own",
            &format!("{auth}{JSON}"),
            "[]",
            422,
        ),
        case(
            "api email as number",
            "POST /api/crm/contacts",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"email":5}"#,
            422,
        ),
        case(
            "api unknown field",
            "POST /api/crm/contacts",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"email":"a@example.org","admin":true}"#,
            422,
        ),
        case(
            "api email injection",
            "POST /api/crm/contacts",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"email":"a@example.org\r\nBcc: b@example.org"}"#,
            422,
        ),
        case(
            "api oversized",
            "POST /api/crm/contacts",
            "own",
            &format!("{auth}{JSON}"),
            format!("{{\"email\":\"a@example.org\",\"name\":\"{big}\"}}"),
            413,
        ),
        case(
            "api limit not a number",
            "GET /api/crm/contacts?limit=abc",
            "own",
            &auth,
            "",
            400,
        ),
        case(
            "api limit negative",
            "GET /api/crm/contacts?limit=-1",
            "own",
            &auth,
            "",
            400,
        ),
        case(
            "api limit huge",
            "GET /api/templates?limit=99999999999999999999999",
            "own",
            &auth,
            "",
            400,
        ),
        case(
            "api segment injection",
            "GET /api/crm/contacts?segment=%27%20OR%201%3D1%20--",
            "own",
            &auth,
            "",
            404,
        ),
        case(
            "api contact NUL",
            "GET /api/crm/contacts/%00",
            "own",
            &auth,
            "",
            404,
        ),
        case(
            "api contact traversal",
            "GET /api/crm/contacts/..%2F..%2Fetc%2Fpasswd",
            "own",
            &auth,
            "",
            404,
        ),
        case(
            "api activity script type",
            "POST /api/crm/contacts/ada@example.org/activities",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"type":"<script>","data":{}}"#,
            422,
        ),
        case(
            "api activity on nobody",
            "POST /api/crm/contacts/nobody@example.org/activities",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"type":"call","data":{}}"#,
            404,
        ),
        case(
            "api execute unknown workflow",
            "POST /api/workflows/nope/execute",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"trigger_data":{}}"#,
            404,
        ),
        case(
            "api execute array data",
            "POST /api/workflows/contact-form-follow-up/execute",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"trigger_data":[1]}"#,
            422,
        ),
        case(
            "api workflow analytics over 0 days",
            "GET /api/workflows/contact-form-follow-up/analytics?days=0",
            "own",
            &auth,
            "",
            422,
        ),
        case(
            "api workflow analytics with an unknown parameter",
            "GET /api/workflows/contact-form-follow-up/analytics?weeks=2",
            "own",
            &auth,
            "",
            400,
        ),
        case(
            "api retry unknown",
            "POST /api/automation/executions/nope/retry",
            "own",
            &auth,
            "",
            0,
        ),
        case(
            "unsubscribe forged",
            "POST /u/0190abc.00000000000000000000000000000000",
            "own",
            FORM_TYPE,
            "List-Unsubscribe=One-Click",
            404,
        ),
        case(
            "unsubscribe huge token",
            &format!("POST /u/{}", "a".repeat(3000)),
            "own",
            FORM_TYPE,
            "List-Unsubscribe=One-Click",
            404,
        ),
        case(
            "unsubscribe without the one-click body",
            "POST /u/0190abc.00",
            "own",
            JSON,
            "{\"List-Unsubscribe\":\"One-Click\"}",
            400,
        ),
        case(
            "click without a target",
            "GET /c/0190abc.00",
            "own",
            "",
            "",
            400,
        ),
        case(
            "click to a URL nobody was sent",
            "GET /c/0190abc.00?u=https%3A%2F%2Fevil.example%2F",
            "own",
            "",
            "",
            404,
        ),
        case(
            "click header injection",
            "GET /c/0190abc.00?u=https%3A%2F%2Fa.example%0D%0ASet-Cookie%3A%20x%3D1",
            "own",
            "",
            "",
            400,
        ),
        case("pixel forged", "GET /o/nothing.here", "own", "", "", 404),
        case(
            "view traversal",
            "GET /e/..%2F..%2Fetc%2Fpasswd",
            "own",
            "",
            "",
            404,
        ),
        case(
            "campaign of no type",
            "POST /api/crm/campaigns",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"name":"x","type":"spam"}"#,
            422,
        ),
        case(
            "campaign with an unknown key",
            "POST /api/crm/campaigns",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"name":"x","type":"broadcast","sql":"DROP TABLE contacts"}"#,
            0,
        ),
        case(
            "api PUT contacts",
            "PUT /api/crm/contacts",
            "own",
            &format!("{auth}{JSON}"),
            "{}",
            405,
        ),
        case(
            "api DELETE tokens",
            "DELETE /api/tokens",
            "own",
            &auth,
            "",
            405,
        ),
        case(
            "api editor lists tokens",
            "GET /api/tokens",
            "own",
            &auth,
            "",
            403,
        ),
        // A round of sync: refused whole, nothing of it stored.
        case(
            "sync of broken JSON",
            "POST /api/sync",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"node":"n","changes":[{"#,
            400,
        ),
        case(
            "sync as text",
            "POST /api/sync",
            "own",
            &format!("{auth}Content-Type: text/plain\r\n"),
            r#"{"node":"n"}"#,
            415,
        ),
        case(
            "sync gzip-encoded",
            "POST /api/sync",
            "own",
            &format!("{auth}{JSON}Content-Encoding: gzip\r\n"),
            r#"{"node":"n"}"#,
            415,
        ),
        case(
            "sync with an unknown key",
            "POST /api/sync",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"node":"n","sql":"DROP TABLE contacts"}"#,
            0,
        ),
        case(
            "sync of an injected address",
            "POST /api/sync",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"node":"n","changes":[{"email":"x' OR 1=1 --","item":"t:vip","wall":1,"node":"n","value":true}]}"#,
            422,
        ),
        case(
            "sync of an injected column",
            "POST /api/sync",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"node":"n","changes":[{"email":"sql@example.org","item":"f:name = 'x'; DROP TABLE contacts; --","wall":1,"node":"n","value":"x"}]}"#,
            422,
        ),
        case(
            "sync stamped a year ahead",
            "POST /api/sync",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"node":"n","changes":[{"email":"future@example.org","item":"t:vip","wall":99999999999999,"node":"n","value":true}]}"#,
            422,
        ),
        case(
            "sync from an injected cursor",
            "POST /api/sync",
            "own",
            &format!("{auth}{JSON}"),
            r#"{"node":"n","since":"1.2 OR 1=1"}"#,
            422,
        ),
        case("api unknown route", "GET /api/admin", "own", &auth, "", 404),
        // The daemon's own routes and host tricks.
        case("POST healthz", "POST /healthz", "own", "", "", 405),
        case("unknown host", "GET /pricing", "evil", "", "", 404),
        case(
            "encoded slash",
            "GET /%2e%2e/%2e%2e/etc/passwd",
            "own",
            "",
            "",
            404,
        ),
    ];
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let site_host = u
        .site
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    for c in &cases {
        let host = match c.host {
            "site" => site_host.as_str(),
            "own" => u.addr.as_str(),
            _ => "evil.example",
        };
        let request = format!(
            "{} HTTP/1.1\r\nHost: {host}\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n",
            c.line,
            c.headers,
            c.body.len()
        );
        let (status, h, body) = http(&u.addr, &request, &c.body);
        if c.want == 303 {
            assert_eq!(status, 303, "{}", c.name);
            continue;
        }
        if c.want == 0 {
            assert!((400..500).contains(&status), "{}: {status}", c.name);
        } else {
            assert_eq!(
                status,
                c.want,
                "{}: {}",
                c.name,
                String::from_utf8_lossy(&body)
            );
        }
        assert!(
            h.iter()
                .any(|(k, v)| k == "content-type" && v.starts_with("application/json")),
            "{}: not JSON: {h:?}",
            c.name
        );
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{}: {e}: {}", c.name, String::from_utf8_lossy(&body)));
        assert!(
            doc["error"]["code"].is_string() && doc["error"]["message"].is_string(),
            "{}: {doc}",
            c.name
        );
    }
    // The replay of a good hook is refused, after the original is taken.
    let ok = http(
        &u.addr,
        &format!(
            "POST /hooks/stripe/payment-succeeded HTTP/1.1\r\nHost: {}\r\n{JSON}{replayed}Content-Length: {}\r\nConnection: close\r\n\r\n",
            u.addr,
            hook_body.len()
        ),
        hook_body.as_bytes(),
    );
    assert_eq!(ok.0, 202);
    let again = http(
        &u.addr,
        &format!(
            "POST /hooks/stripe/payment-succeeded HTTP/1.1\r\nHost: {}\r\n{JSON}{replayed}Content-Length: {}\r\nConnection: close\r\n\r\n",
            u.addr,
            hook_body.len()
        ),
        hook_body.as_bytes(),
    );
    assert_eq!(again.0, 409);

    // Nothing but the one good hook was stored.
    let count = |sql: &str| -> i64 { crate::backend::scalar(d, sql, funnel::db_params![]) };
    assert_eq!(
        count("SELECT count(*) FROM executions WHERE workflow_id <> 'stripe-payment'"),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM executions WHERE workflow_id = 'stripe-payment'"),
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM contacts WHERE email <> 'buyer@example.org'"),
        0
    );
    assert_eq!(count("SELECT count(*) FROM analytics_events"), 0);
    // Still answering, and a good post still works.
    assert_eq!(u.own("/healthz").0, 200);
    assert_eq!(u.post_form("after@example.org"), 303);
}

/// Reads until the daemon closes the connection (or `limit` passes); how long
/// that took, and what it sent.
fn until_closed(
    stream: &mut std::net::TcpStream,
    limit: std::time::Duration,
) -> (std::time::Duration, Vec<u8>) {
    use std::io::Read;
    let started = std::time::Instant::now();
    stream
        .set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    (started.elapsed(), got)
}

#[test]
fn slow_and_silent_clients_are_cut_off_and_others_still_served() {
    use std::io::Write;
    use std::time::Duration;
    let dir = demo();
    let up = up_with_env(dir.path(), &[]);
    // A slowloris client: a request head trickled a header every second.
    let mut slow = std::net::TcpStream::connect(&up.addr).expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .expect("request line");
    let trickle = {
        let mut s = slow.try_clone().expect("clone");
        std::thread::spawn(move || {
            for i in 0..30 {
                std::thread::sleep(Duration::from_secs(1));
                if s.write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
                    .is_err()
                {
                    return i;
                }
            }
            30
        })
    };
    // A client that connects and never says anything.
    let mut silent = std::net::TcpStream::connect(&up.addr).expect("connect");
    // Meanwhile everyone else is answered at once.
    let (status, _, _) = up.own("/healthz");
    assert_eq!(
        status, 200,
        "a normal request is served beside the slow ones"
    );
    let (slow_took, slow_got) = until_closed(&mut slow, Duration::from_secs(25));
    let (silent_took, silent_got) = until_closed(&mut silent, Duration::from_secs(25));
    assert!(
        slow_took < Duration::from_secs(15),
        "a trickled request head is cut off after the header timeout, not after {slow_took:?}"
    );
    assert!(
        silent_took < Duration::from_secs(15),
        "a silent connection is closed after the header timeout, not after {silent_took:?}"
    );
    // Cut off, never answered as if the head were complete.
    for got in [&slow_got, &silent_got] {
        let text = String::from_utf8_lossy(got);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "nothing but a 408 is sent to a client that never finished its head: {text}"
        );
    }
    assert!(
        trickle.join().expect("trickle") < 30,
        "the trickle was refused before it finished"
    );
    let (status, _, _) = up.own("/healthz");
    assert_eq!(status, 200, "the daemon still answers");
}
