//! Bounce and complaint webhooks of email providers, each checked the way its
//! provider signs it before anything is believed: Amazon SES through SNS (an
//! RSA signature, version 2 / SHA-256, under the certificate funnel.yaml names,
//! and only from the configured topic), SendGrid (ECDSA P-256 over timestamp
//! and body), Mailgun (HMAC-SHA256 of timestamp and token) and Postmark (basic
//! auth, all it offers). Each payload becomes [`Report`]s; deliveries, opens,
//! delays and soft bounces are counted and otherwise ignored.

use std::path::Path;

use base64::Engine as _;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

use super::reports::{Report, ReportKind};
use crate::model::config::EmailEventSources;
use crate::model::scalar::Secret;

/// Why a webhook was refused; each maps to an HTTP status.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    #[error("no `email.events.{0}` in funnel.yaml: reports from it are not accepted")]
    NotConfigured(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Malformed(String),
    #[error("funnel.yaml email.events: {0}")]
    Config(String),
}

/// What one webhook call carried.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub reports: Vec<Report>,
    /// Events that change nothing here (deliveries, delays, soft bounces).
    pub ignored: usize,
    /// An SNS subscription to confirm by visiting this URL.
    pub confirm: Option<String>,
}

/// The names of the providers, as in the webhook's path.
pub const PROVIDERS: &[&str] = &["ses", "sendgrid", "mailgun", "postmark"];

/// Reads and verifies one webhook call for `provider`. `header` gives a request
/// header by name; `secret` resolves `${NAME}` references; `root` is the
/// workspace root (for the SES certificate file).
pub fn read(
    provider: &str,
    sources: Option<&EmailEventSources>,
    root: &Path,
    secret: &dyn Fn(&str) -> Option<String>,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
) -> Result<Inbound, ProviderError> {
    let not_configured = || ProviderError::NotConfigured(provider.to_string());
    let sources = sources.ok_or_else(not_configured)?;
    let resolve = |s: &Secret| -> Result<String, ProviderError> {
        let name = s.as_str().trim_start_matches("${").trim_end_matches('}');
        secret(name)
            .ok_or_else(|| ProviderError::Config(format!("environment variable {name} is not set")))
    };
    match provider {
        "ses" => {
            let c = sources.ses.as_ref().ok_or_else(not_configured)?;
            let pem = std::fs::read(root.join(&c.certificate_file)).map_err(|e| {
                ProviderError::Config(format!("cannot read {}: {e}", c.certificate_file))
            })?;
            ses(&pem, &c.topic_arn, body)
        }
        "sendgrid" => {
            let c = sources.sendgrid.as_ref().ok_or_else(not_configured)?;
            sendgrid(&resolve(&c.public_key)?, header, body)
        }
        "mailgun" => {
            let c = sources.mailgun.as_ref().ok_or_else(not_configured)?;
            mailgun(&resolve(&c.signing_key)?, body)
        }
        "postmark" => {
            let c = sources.postmark.as_ref().ok_or_else(not_configured)?;
            postmark(&c.username, &resolve(&c.password)?, header, body)
        }
        _ => Err(not_configured()),
    }
}

fn json(body: &[u8]) -> Result<Value, ProviderError> {
    serde_json::from_slice(body)
        .map_err(|e| ProviderError::Malformed(format!("the body is not JSON: {e}")))
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Compares in constant time.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn report(
    kind: ReportKind,
    recipient: Option<&str>,
    return_path: Option<&str>,
    message_id: Option<&str>,
    detail: String,
    source: &'static str,
) -> Report {
    Report {
        kind,
        recipient: recipient.map(str::to_string),
        return_paths: return_path.map(str::to_string).into_iter().collect(),
        message_id: message_id.map(|m| {
            if m.starts_with('<') {
                m.to_string()
            } else {
                format!("<{m}>")
            }
        }),
        detail,
        source,
    }
}

/// SNS: the fields of the message in the order AWS signs them.
fn sns_string_to_sign(msg: &Value) -> Result<String, ProviderError> {
    let kind = text(msg, "Type").unwrap_or_default();
    let keys: &[&str] = match kind {
        "Notification" => &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ],
        other => {
            return Err(ProviderError::Malformed(format!(
                "an SNS message of type `{other}`"
            )));
        }
    };
    let mut out = String::new();
    for k in keys {
        match text(msg, k) {
            Some(v) => {
                out.push_str(k);
                out.push('\n');
                out.push_str(v);
                out.push('\n');
            }
            None if *k == "Subject" => {}
            None => {
                return Err(ProviderError::Malformed(format!(
                    "the SNS message lacks {k}"
                )));
            }
        }
    }
    Ok(out)
}

fn ses(pem: &[u8], topic: &str, body: &[u8]) -> Result<Inbound, ProviderError> {
    let msg = json(body)?;
    if text(&msg, "SignatureVersion") != Some("2") {
        return Err(ProviderError::Unauthorized(
            "only SNS signature version 2 (SHA-256) is accepted: set the topic's SignatureVersion to 2"
                .into(),
        ));
    }
    let signature = text(&msg, "Signature")
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .ok_or_else(|| {
            ProviderError::Unauthorized("the SNS message has no valid Signature".into())
        })?;
    let cert = CertificateDer::from_pem_slice(pem).map_err(|e| {
        ProviderError::Config(format!("the SES certificate is not a PEM certificate: {e}"))
    })?;
    let cert = webpki::EndEntityCert::try_from(&cert)
        .map_err(|e| ProviderError::Config(format!("the SES certificate cannot be read: {e}")))?;
    let signed = sns_string_to_sign(&msg)?;
    cert.verify_signature(
        webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
        signed.as_bytes(),
        &signature,
    )
    .map_err(|_| {
        ProviderError::Unauthorized(
            "the SNS signature does not verify under the configured certificate".into(),
        )
    })?;
    // AWS signs every topic's messages with one certificate: the topic is what
    // makes a message this workspace's.
    if text(&msg, "TopicArn") != Some(topic) {
        return Err(ProviderError::Unauthorized(format!(
            "SNS topic `{}` is not email.events.ses.topic_arn",
            text(&msg, "TopicArn").unwrap_or_default()
        )));
    }
    match text(&msg, "Type") {
        Some("SubscriptionConfirmation") => {
            return Ok(Inbound {
                confirm: text(&msg, "SubscribeURL").map(str::to_string),
                ..Inbound::default()
            });
        }
        Some("UnsubscribeConfirmation") => return Ok(Inbound::default()),
        _ => {}
    }
    let inner: Value = text(&msg, "Message")
        .and_then(|m| serde_json::from_str(m).ok())
        .ok_or_else(|| {
            ProviderError::Malformed("the SNS Message is not an SES notification".into())
        })?;
    let kind = text(&inner, "notificationType")
        .or_else(|| text(&inner, "eventType"))
        .unwrap_or_default();
    let mail = &inner["mail"];
    let source = text(mail, "source");
    let message_id = text(&mail["commonHeaders"], "messageId");
    let mut out = Inbound::default();
    match kind {
        "Bounce" => {
            let b = &inner["bounce"];
            if text(b, "bounceType") != Some("Permanent") {
                out.ignored += 1;
                return Ok(out);
            }
            for r in b["bouncedRecipients"].as_array().into_iter().flatten() {
                let detail = format!(
                    "{} {}",
                    text(r, "status").unwrap_or_default(),
                    text(r, "diagnosticCode").unwrap_or_default()
                );
                out.reports.push(report(
                    ReportKind::Bounce,
                    text(r, "emailAddress"),
                    source,
                    message_id,
                    detail.trim().to_string(),
                    "ses",
                ));
            }
        }
        "Complaint" => {
            let c = &inner["complaint"];
            if text(c, "complaintFeedbackType") == Some("not-spam") {
                out.ignored += 1;
                return Ok(out);
            }
            for r in c["complainedRecipients"].as_array().into_iter().flatten() {
                out.reports.push(report(
                    ReportKind::Complaint,
                    text(r, "emailAddress"),
                    source,
                    message_id,
                    text(c, "complaintFeedbackType")
                        .unwrap_or("abuse")
                        .to_string(),
                    "ses",
                ));
            }
        }
        _ => out.ignored += 1,
    }
    Ok(out)
}

/// The P-256 SubjectPublicKeyInfo header: what precedes the 65-byte point in
/// the DER key SendGrid shows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn sendgrid(
    key_b64: &str,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
) -> Result<Inbound, ProviderError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let spki = b64
        .decode(key_b64.trim())
        .map_err(|_| ProviderError::Config("sendgrid.public_key is not base64".into()))?;
    let point = spki
        .strip_prefix(&P256_SPKI_PREFIX[..])
        .filter(|p| p.len() == 65)
        .ok_or_else(|| {
            ProviderError::Config("sendgrid.public_key is not a P-256 public key".into())
        })?;
    let signature = header("x-twilio-email-event-webhook-signature")
        .and_then(|s| b64.decode(s.trim()).ok())
        .ok_or_else(|| {
            ProviderError::Unauthorized("no valid X-Twilio-Email-Event-Webhook-Signature".into())
        })?;
    let timestamp = header("x-twilio-email-event-webhook-timestamp").ok_or_else(|| {
        ProviderError::Unauthorized("no X-Twilio-Email-Event-Webhook-Timestamp".into())
    })?;
    let mut signed = timestamp.into_bytes();
    signed.extend_from_slice(body);
    webpki::aws_lc_rs::ECDSA_P256_SHA256
        .verify_signature(point, &signed, &signature)
        .map_err(|_| {
            ProviderError::Unauthorized("the SendGrid signature does not verify".into())
        })?;
    let events = json(body)?;
    let events = events
        .as_array()
        .ok_or_else(|| ProviderError::Malformed("SendGrid events come as a JSON array".into()))?;
    let mut out = Inbound::default();
    for e in events {
        let kind = match (text(e, "event"), text(e, "type")) {
            (Some("bounce"), Some("blocked")) => None,
            (Some("bounce"), _) => Some(ReportKind::Bounce),
            (Some("spamreport"), _) => Some(ReportKind::Complaint),
            _ => None,
        };
        let Some(kind) = kind else {
            out.ignored += 1;
            continue;
        };
        let detail = match kind {
            ReportKind::Bounce => format!(
                "{} {}",
                text(e, "status").unwrap_or_default(),
                text(e, "reason").unwrap_or_default()
            )
            .trim()
            .to_string(),
            ReportKind::Complaint | ReportKind::Unsubscribe => "abuse".to_string(),
        };
        out.reports.push(report(
            kind,
            text(e, "email"),
            None,
            text(e, "smtp-id"),
            detail,
            "sendgrid",
        ));
    }
    Ok(out)
}

fn mailgun(key: &str, body: &[u8]) -> Result<Inbound, ProviderError> {
    let v = json(body)?;
    let sig = &v["signature"];
    let (Some(timestamp), Some(token), Some(given)) = (
        text(sig, "timestamp"),
        text(sig, "token"),
        text(sig, "signature").and_then(|s| hex::decode(s).ok()),
    ) else {
        return Err(ProviderError::Unauthorized(
            "no Mailgun signature (timestamp, token, signature)".into(),
        ));
    };
    let expected = crate::analytics::token::hmac_sha256(
        key.as_bytes(),
        format!("{timestamp}{token}").as_bytes(),
    );
    if !same(&given, &expected) {
        return Err(ProviderError::Unauthorized(
            "the Mailgun signature does not verify".into(),
        ));
    }
    let e = &v["event-data"];
    let kind = match (text(e, "event"), text(e, "severity")) {
        (Some("failed"), Some("permanent")) => Some(ReportKind::Bounce),
        (Some("complained"), _) => Some(ReportKind::Complaint),
        _ => None,
    };
    let mut out = Inbound::default();
    let Some(kind) = kind else {
        out.ignored += 1;
        return Ok(out);
    };
    let status = &e["delivery-status"];
    let detail = match kind {
        ReportKind::Bounce => format!(
            "{} {}",
            status.get("code").map(Value::to_string).unwrap_or_default(),
            text(status, "message")
                .or_else(|| text(status, "description"))
                .unwrap_or_default()
        )
        .trim()
        .to_string(),
        ReportKind::Complaint | ReportKind::Unsubscribe => "abuse".to_string(),
    };
    out.reports.push(report(
        kind,
        text(e, "recipient"),
        text(&e["envelope"], "sender"),
        text(&e["message"]["headers"], "message-id"),
        detail,
        "mailgun",
    ));
    Ok(out)
}

fn postmark(
    user: &str,
    password: &str,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
) -> Result<Inbound, ProviderError> {
    let given = header("authorization")
        .and_then(|h| h.strip_prefix("Basic ").map(|b| b.trim().to_string()))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    if !same(&given, format!("{user}:{password}").as_bytes()) {
        return Err(ProviderError::Unauthorized(
            "the Postmark webhook's basic auth does not match email.events.postmark".into(),
        ));
    }
    let v = json(body)?;
    let kind = match text(&v, "RecordType") {
        Some("Bounce")
            if matches!(text(&v, "Type"), Some("HardBounce" | "BadEmailAddress"))
                || v.get("Inactive").and_then(Value::as_bool) == Some(true) =>
        {
            Some(ReportKind::Bounce)
        }
        Some("SpamComplaint") => Some(ReportKind::Complaint),
        _ => None,
    };
    let mut out = Inbound::default();
    let Some(kind) = kind else {
        out.ignored += 1;
        return Ok(out);
    };
    let detail = match kind {
        ReportKind::Bounce => format!(
            "{} {}",
            text(&v, "Type").unwrap_or_default(),
            text(&v, "Description").unwrap_or_default()
        )
        .trim()
        .to_string(),
        ReportKind::Complaint | ReportKind::Unsubscribe => "abuse".to_string(),
    };
    out.reports.push(report(
        kind,
        text(&v, "Email"),
        None,
        None,
        detail,
        "postmark",
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailgun_event_needs_its_hmac() {
        let key = "mg-key";
        let sig = hex::encode(crate::analytics::token::hmac_sha256(
            key.as_bytes(),
            b"1700000000tok",
        ));
        let body = serde_json::json!({
            "signature": {"timestamp": "1700000000", "token": "tok", "signature": sig},
            "event-data": {"event": "failed", "severity": "permanent", "recipient": "gone@example.org",
                "delivery-status": {"code": 550, "message": "no such user"},
                "message": {"headers": {"message-id": "01a24311-a637-7643-a08f-1c5d5585a818@x.example"}}}
        })
        .to_string();
        let got = mailgun(key, body.as_bytes()).expect("verified");
        assert_eq!(got.reports.len(), 1);
        assert_eq!(
            got.reports[0].recipient.as_deref(),
            Some("gone@example.org")
        );
        assert_eq!(got.reports[0].detail, "550 no such user");
        assert_eq!(
            got.reports[0].message_id.as_deref(),
            Some("<01a24311-a637-7643-a08f-1c5d5585a818@x.example>")
        );
        assert!(matches!(
            mailgun("other", body.as_bytes()),
            Err(ProviderError::Unauthorized(_))
        ));
        let temporary = body.replace("permanent", "temporary");
        let sig_ok = mailgun(key, temporary.as_bytes()).expect("verified");
        assert_eq!((sig_ok.reports.len(), sig_ok.ignored), (0, 1));
    }

    #[test]
    fn postmark_needs_its_basic_auth() {
        let body = br#"{"RecordType":"SpamComplaint","Email":"angry@example.org"}"#;
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("funnel:pw")
        );
        let good = |h: &str| (h == "authorization").then(|| auth.clone());
        let got = postmark("funnel", "pw", &good, body).expect("accepted");
        assert_eq!(got.reports[0].kind, ReportKind::Complaint);
        let none = |_: &str| None;
        assert!(postmark("funnel", "pw", &none, body).is_err());
        assert!(postmark("funnel", "other", &good, body).is_err());
    }

    #[test]
    fn sns_signs_its_fields_in_order_and_skips_a_missing_subject() {
        let msg = serde_json::json!({"Type": "Notification", "MessageId": "m", "TopicArn": "t",
            "Message": "x", "Timestamp": "2026-12-04T00:00:00Z"});
        assert_eq!(
            sns_string_to_sign(&msg).expect("fields"),
            "Message\nx\nMessageId\nm\nTimestamp\n2026-12-04T00:00:00Z\nTopicArn\nt\nType\nNotification\n"
        );
    }
}
