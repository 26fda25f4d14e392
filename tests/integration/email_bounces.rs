//! Bounces and complaints coming back. Every message leaves from its own
//! signed return path (VERP), seen by a real SMTP server; a mailbox of a
//! delivery status notification sent back to one of them, an ARF complaint
//! quoting another message and an auto-reply, imported with `funnel bounces
//! import`, bounces the one, marks the other complained and skips the third;
//! mail to a message's signed `mailto:` unsubscribe address unsubscribes its
//! recipient (a forged one no one); a second import changes nothing. Provider webhooks on a running daemon
//! (SES through SNS, SendGrid, Mailgun, Postmark), signed with keys made by
//! `openssl`, count only when their signature holds.

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::daemon::up_with_env;
use crate::http_client::http;
use crate::smtp_sink::SmtpSink;
use crate::support::{demo, json_out, run};

fn scalar_i64(d: &std::path::Path, sql: &str) -> i64 {
    crate::backend::scalar(d, sql, funnel::db_params![])
}

fn status_of(d: &std::path::Path, email: &str) -> String {
    crate::backend::scalar(
        d,
        "SELECT status FROM contacts WHERE email = ?1",
        funnel::db_params![email],
    )
}

fn import_readers(d: &std::path::Path, n: usize) {
    let mut csv = String::from("email,name,lists\n");
    for i in 1..=n {
        csv.push_str(&format!("reader{i}@example.org,Reader {i},newsletter\n"));
    }
    std::fs::write(d.join("readers.csv"), csv).expect("csv");
    let out = run(&["contacts", "import", "readers.csv"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bounce_notices_and_complaints_from_a_mailbox_mark_their_sends_once() {
    let dir = demo();
    let d = dir.path();
    let Some(sink) = SmtpSink::start(&d.join("received")) else {
        return;
    };
    crate::smtp_sink::relay_to_sink(d, &sink, "");
    std::fs::write(
        d.join("campaigns/launch.yaml"),
        "name: Launch\naudience:\n  list: newsletter\ntemplate: onboarding-tips\n",
    )
    .expect("campaign");
    import_readers(d, 4);
    let out = run(&["campaigns", "send", "launch"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sink.wait_for(4, 30).len(), 4);

    // Each message left from its own return path on the sender's domain.
    let mut envelopes = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&sink.folder).expect("received") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "json") {
            let e: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
            let to = e["rcpt_tos"][0].as_str().unwrap_or_default().to_string();
            let from = e["mail_from"].as_str().unwrap_or_default().to_string();
            assert!(
                from.starts_with("hello+") && from.ends_with("@northwind.example"),
                "{from}"
            );
            envelopes.insert(to, (from, path.with_extension("eml")));
        }
    }
    assert_eq!(envelopes.len(), 4);
    let unique: std::collections::BTreeSet<&String> = envelopes.values().map(|(f, _)| f).collect();
    assert_eq!(unique.len(), 4, "one return path per message");

    let (verp1, _) = &envelopes["reader1@example.org"];
    let (_, eml2) = &envelopes["reader2@example.org"];
    let original2 = std::fs::read_to_string(eml2).expect("eml");
    let dsn = format!(
        "From: MAILER-DAEMON@mx.example.org\r\nTo: {verp1}\r\nSubject: Undelivered Mail\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThe mailbox does not exist.\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n\
         Final-Recipient: rfc822; reader1@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n--b--\r\n"
    );
    // A complaint feed redacts the recipient; the quoted message names the send.
    let arf = format!(
        "From: fbl@isp.example\r\nTo: abuse@northwind.example\r\nSubject: complaint\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"f\"\r\n\r\n\
         --f\r\nContent-Type: text/plain\r\n\r\nA user marked this as spam.\r\n\
         --f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: fbl/1\r\nVersion: 1\r\n\r\n\
         --f\r\nContent-Type: message/rfc822\r\n\r\n{}\r\n--f--\r\n",
        original2.replace("\r\n", "\n").replace('\n', "\r\n")
    );
    let reply = "From: reader3@example.org\r\nTo: hello@northwind.example\r\nSubject: Out of office\r\n\r\nBack on Monday.\r\n";
    // The mailto form of reader4's List-Unsubscribe, used by their mail client;
    // and the same address with its signature changed, which names no one.
    let (_, eml4) = &envelopes["reader4@example.org"];
    let eml4 = std::fs::read_to_string(eml4).expect("eml");
    let mailto = eml4
        .split("mailto:")
        .nth(1)
        .and_then(|s| s.split('?').next())
        .unwrap_or_else(|| panic!("no mailto unsubscribe in {eml4}"))
        .to_string();
    assert!(mailto.starts_with("hello+u"), "{mailto}");
    let unsubscribe =
        format!("From: reader4@example.org\r\nTo: {mailto}\r\nSubject: unsubscribe\r\n\r\n\r\n");
    let (local, domain) = mailto.split_once('@').expect("address");
    let last = if local.ends_with('0') { '1' } else { '0' };
    let forged = format!(
        "From: someone@example.org\r\nTo: {}{last}@{domain}\r\nSubject: unsubscribe\r\n\r\n\r\n",
        &local[..local.len() - 1]
    );
    let mut mbox = String::new();
    for m in [&dsn, &arf, &reply.to_string(), &unsubscribe, &forged] {
        mbox.push_str("From MAILER-DAEMON Fri Dec  4 10:00:00 2026\n");
        mbox.push_str(&m.replace("\r\n", "\n"));
        mbox.push('\n');
    }
    std::fs::write(d.join("bounces.mbox"), &mbox).expect("mbox");

    // A path that cannot be read stops the import before anything is recorded.
    let out = run(&["bounces", "import", "bounces.mbox", "missing.eml"], d);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing.eml"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status_of(d, "reader1@example.org"), "active");

    let got = json_out(
        &["bounces", "import", "bounces.mbox", "--format", "json"],
        d,
    );
    assert_eq!(got["messages"], 5, "{got:#}");
    assert_eq!(got["bounces"], 1, "{got:#}");
    assert_eq!(got["complaints"], 1, "{got:#}");
    assert_eq!(got["unsubscribes"], 1, "{got:#}");
    assert_eq!(got["unmatched"], 1, "the forged address: {got:#}");
    assert_eq!(got["skipped"], 1, "{got:#}");
    assert_eq!(status_of(d, "reader4@example.org"), "unsubscribed");
    assert_eq!(status_of(d, "reader1@example.org"), "bounced");
    assert_eq!(status_of(d, "reader2@example.org"), "complained");
    assert_eq!(status_of(d, "reader3@example.org"), "active");
    assert_eq!(
        scalar_i64(
            d,
            "SELECT count(*) FROM suppressions WHERE reason IN ('bounced', 'complained')"
        ),
        2
    );
    let stats = json_out(&["campaigns", "stats", "launch", "--format", "json"], d);
    assert_eq!(stats["variants"][0]["bounced"], 1, "{stats:#}");
    assert_eq!(stats["variants"][0]["complaints"], 1, "{stats:#}");
    assert_eq!(stats["variants"][0]["delivered"], 3, "{stats:#}");
    let events =
        "SELECT count(*) FROM activities WHERE type IN ('email_bounced', 'email_complained')";
    assert_eq!(scalar_i64(d, events), 2);

    // The same mailbox again: known, nothing recorded twice.
    let again = json_out(
        &["bounces", "import", "bounces.mbox", "--format", "json"],
        d,
    );
    assert_eq!(again["bounces"], 0, "{again:#}");
    assert_eq!(again["complaints"], 0, "{again:#}");
    assert_eq!(again["unsubscribes"], 0, "{again:#}");
    assert_eq!(again["known"], 3, "{again:#}");
    assert_eq!(scalar_i64(d, events), 2);
}

/// Runs openssl with `args`, feeding `input`; its output.
fn openssl(args: &[&str], input: &[u8], cwd: &std::path::Path) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("input");
    let out = child.wait_with_output().expect("openssl output");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An SNS notification for `topic` carrying `message`, signed (version 2) with
/// the key in `sns.key`.
fn sns(d: &std::path::Path, kind: &str, topic: &str, message: &str, version: &str) -> String {
    let mut fields = vec![
        ("Message", message.to_string()),
        (
            "MessageId",
            "5f6e1c1e-0000-4000-8000-000000000001".to_string(),
        ),
    ];
    if kind == "SubscriptionConfirmation" {
        fields.push((
            "SubscribeURL",
            "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t".into(),
        ));
    }
    fields.push(("Timestamp", "2026-12-04T10:00:00.000Z".into()));
    if kind == "SubscriptionConfirmation" {
        fields.push(("Token", "t".into()));
    }
    fields.push(("TopicArn", topic.into()));
    fields.push(("Type", kind.into()));
    let signed: String = fields.iter().map(|(k, v)| format!("{k}\n{v}\n")).collect();
    let signature = openssl(
        &["dgst", "-sha256", "-sign", "sns.key"],
        signed.as_bytes(),
        d,
    );
    let mut body = serde_json::Map::new();
    for (k, v) in fields {
        body.insert(k.into(), v.into());
    }
    body.insert("SignatureVersion".into(), version.into());
    body.insert("Signature".into(), b64(&signature).into());
    body.insert(
        "SigningCertURL".into(),
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService.pem".into(),
    );
    serde_json::Value::Object(body).to_string()
}

#[test]
fn provider_webhooks_count_only_when_their_signature_holds() {
    let dir = demo();
    let d = dir.path();
    import_readers(d, 6);
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "sns.key",
            "-out",
            "sns.pem",
            "-subj",
            "/CN=sns.amazonaws.com",
            "-days",
            "2",
        ],
        b"",
        d,
    );
    openssl(
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "sg.key",
        ],
        b"",
        d,
    );
    let sg_public = b64(&openssl(
        &["ec", "-in", "sg.key", "-pubout", "-outform", "DER"],
        b"",
        d,
    ));
    let topic = "arn:aws:sns:eu-west-1:123456789012:funnel-bounces";
    let config = std::fs::read_to_string(d.join("funnel.yaml")).expect("funnel.yaml");
    let config = config.replace(
        "  outbox: .funnel/outbox\n",
        &format!(
            "  outbox: .funnel/outbox\n  events:\n    ses:\n      certificate_file: sns.pem\n      topic_arn: {topic}\n\
             \x20   sendgrid:\n      public_key: ${{SENDGRID_KEY}}\n    mailgun:\n      signing_key: ${{MAILGUN_KEY}}\n\
             \x20   postmark:\n      username: funnel\n      password: ${{POSTMARK_PASSWORD}}\n"
        ),
    );
    std::fs::write(d.join("funnel.yaml"), config).expect("write");
    let u = up_with_env(
        d,
        &[
            ("SENDGRID_KEY", sg_public.as_str()),
            ("MAILGUN_KEY", "mailgun-signing-key"),
            ("POSTMARK_PASSWORD", "pm-secret"),
        ],
    );
    let post = |provider: &str, headers: &str, body: &str| {
        let (status, _, reply) = http(
            &u.addr,
            &format!(
                "POST /email/events/{provider} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                u.addr,
                body.len()
            ),
            body.as_bytes(),
        );
        let json: serde_json::Value = serde_json::from_slice(&reply)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&reply)));
        (status, json)
    };
    let suppressed = || scalar_i64(d, "SELECT count(*) FROM suppressions");

    // SES through SNS.
    let bounce = serde_json::json!({
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [
            {"emailAddress": "reader1@example.org", "status": "5.1.1", "diagnosticCode": "smtp; 550 unknown"}]},
        "mail": {"source": "hello@northwind.example", "commonHeaders": {"messageId": "<x@y>"}}
    })
    .to_string();
    let signed = sns(d, "Notification", topic, &bounce, "2");
    let tampered = signed.replace("reader1@example.org", "reader5@example.org");
    let (status, body) = post("ses", "", &tampered);
    assert_eq!(status, 401, "{body}");
    let (status, body) = post(
        "ses",
        "",
        &sns(
            d,
            "Notification",
            "arn:aws:sns:eu-west-1:999:other",
            &bounce,
            "2",
        ),
    );
    assert_eq!(status, 401, "another topic: {body}");
    let (status, body) = post("ses", "", &sns(d, "Notification", topic, &bounce, "1"));
    assert_eq!(status, 401, "signature version 1: {body}");
    assert_eq!(suppressed(), 0, "nothing refused was recorded");
    let (status, body) = post("ses", "", &signed);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["bounces"], 1, "{body}");
    assert_eq!(status_of(d, "reader1@example.org"), "bounced");
    let (status, body) = post("ses", "", &signed);
    assert_eq!(
        (status, &body["known"]),
        (200, &serde_json::json!(1)),
        "{body}"
    );
    let (status, body) = post(
        "ses",
        "",
        &sns(d, "SubscriptionConfirmation", topic, "confirm", "2"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body["confirm_subscription"]
            .as_str()
            .is_some_and(|u| u.contains("ConfirmSubscription")),
        "{body}"
    );

    // SendGrid: ECDSA over timestamp and body.
    let events = serde_json::json!([
        {"email": "reader2@example.org", "event": "bounce", "type": "bounce", "status": "5.0.0", "reason": "550 gone"},
        {"email": "reader3@example.org", "event": "spamreport"},
        {"email": "reader4@example.org", "event": "delivered"}
    ])
    .to_string();
    let timestamp = "1764842400";
    let sig = b64(&openssl(
        &["dgst", "-sha256", "-sign", "sg.key"],
        format!("{timestamp}{events}").as_bytes(),
        d,
    ));
    let headers = |sig: &str| {
        format!(
            "X-Twilio-Email-Event-Webhook-Signature: {sig}\r\nX-Twilio-Email-Event-Webhook-Timestamp: {timestamp}\r\n"
        )
    };
    let (status, body) = post(
        "sendgrid",
        &headers(&sig),
        &events.replace("reader4", "reader6"),
    );
    assert_eq!(status, 401, "a changed body: {body}");
    let (status, body) = post("sendgrid", "", &events);
    assert_eq!(status, 401, "unsigned: {body}");
    let (status, body) = post("sendgrid", &headers(&sig), &events);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["bounces"], &body["complaints"], &body["ignored"]),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(1)
        ),
        "{body}"
    );
    assert_eq!(status_of(d, "reader2@example.org"), "bounced");
    assert_eq!(status_of(d, "reader3@example.org"), "complained");
    assert_eq!(status_of(d, "reader4@example.org"), "active");

    // Mailgun: HMAC of timestamp and token.
    let mailgun = |key: &str| {
        let sig = hex::encode(funnel::analytics::token::hmac_sha256(
            key.as_bytes(),
            b"1764842400a1b2c3",
        ));
        serde_json::json!({
            "signature": {"timestamp": "1764842400", "token": "a1b2c3", "signature": sig},
            "event-data": {"event": "complained", "recipient": "reader5@example.org"}
        })
        .to_string()
    };
    let (status, body) = post("mailgun", "", &mailgun("a guess"));
    assert_eq!(status, 401, "{body}");
    let (status, body) = post("mailgun", "", &mailgun("mailgun-signing-key"));
    assert_eq!(
        (status, &body["complaints"]),
        (200, &serde_json::json!(1)),
        "{body}"
    );
    assert_eq!(status_of(d, "reader5@example.org"), "complained");

    // Postmark: basic auth.
    let hard = r#"{"RecordType":"Bounce","Type":"HardBounce","Email":"reader6@example.org","Description":"gone"}"#;
    let auth = |pw: &str| {
        format!(
            "Authorization: Basic {}\r\n",
            b64(format!("funnel:{pw}").as_bytes())
        )
    };
    let (status, body) = post("postmark", &auth("wrong"), hard);
    assert_eq!(status, 401, "{body}");
    let (status, body) = post("postmark", &auth("pm-secret"), "{not json");
    assert_eq!(status, 400, "{body}");
    let (status, body) = post("postmark", &auth("pm-secret"), hard);
    assert_eq!(
        (status, &body["bounces"]),
        (200, &serde_json::json!(1)),
        "{body}"
    );
    assert_eq!(status_of(d, "reader6@example.org"), "bounced");

    let (status, body) = post("nope", "", "{}");
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("ses")),
        "{body}"
    );
    assert_eq!(suppressed(), 5, "all but the delivered reader4");
    assert_eq!(
        scalar_i64(
            d,
            "SELECT count(*) FROM consent_ledger WHERE granted = 0 AND purpose = 'email_marketing'"
        ),
        2,
        "each complaint withdraws consent"
    );
}
