//! Bounce and complaint reports as mail servers send them: delivery status
//! notifications (RFC 3464, `multipart/report; report-type=delivery-status`)
//! and abuse feedback (ARF, RFC 5965, `report-type=feedback-report`). Each
//! becomes a [`Report`]: what happened, to which address, and the clues that
//! name the send (the tagged return path it came back to, the Message-ID it
//! quotes). Matching those clues to a send is the store's business
//! (`compliance::apply_report`); providers' webhooks make the same reports
//! (`email::providers`).

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// A permanent failure, a complaint, or mail to a send's `mailto:`
/// unsubscribe address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Bounce,
    Complaint,
    Unsubscribe,
}

impl ReportKind {
    /// The timeline event and trigger it becomes.
    pub fn event(self) -> &'static str {
        match self {
            ReportKind::Bounce => "email_bounced",
            ReportKind::Complaint => "email_complained",
            ReportKind::Unsubscribe => "email_unsubscribed",
        }
    }
}

/// One address's bounce or complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: ReportKind,
    /// The address that bounced or complained, when the report says.
    pub recipient: Option<String>,
    /// Addresses the report came back to or names as the original envelope
    /// sender: one of them is the send's tagged return path.
    pub return_paths: Vec<String>,
    /// The original message's Message-ID, when the report quotes it.
    pub message_id: Option<String>,
    /// What the reporter said (`5.1.1 smtp; 550 no such user`, `abuse`).
    pub detail: String,
    /// Who reported: `dsn`, `arf`, `mailto`, `ses`, `sendgrid`, `mailgun`,
    /// `postmark`.
    pub source: &'static str,
}

/// What one message turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Reports(Vec<Report>),
    /// Not a report that changes anything, and why (an auto-reply, a delay).
    Ignored(String),
}

/// The reports in one raw message (RFC 5322).
pub fn parse_message(raw: &[u8]) -> Parsed {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Parsed::Ignored("not an email message".into());
    };
    // Mail to a send's `mailto:` unsubscribe address (`local+u<tag>@…`): its
    // signature is checked where it is applied.
    let to_unsubscribe: Vec<String> = ["to", "delivered-to", "x-original-to", "envelope-to"]
        .iter()
        .filter_map(|h| message.header_raw(*h))
        .flat_map(|v| v.split(','))
        .map(|v| angle_free(v).to_string())
        .filter(|v| {
            v.rsplit_once('@')
                .and_then(|(local, _)| local.rsplit_once('+'))
                .is_some_and(|(_, tag)| tag.len() == 53 && tag.starts_with(['u', 'U']))
        })
        .collect();
    if !to_unsubscribe.is_empty() {
        return Parsed::Reports(vec![Report {
            kind: ReportKind::Unsubscribe,
            recipient: None,
            return_paths: to_unsubscribe,
            message_id: None,
            detail: "mail to the unsubscribe address".into(),
            source: "mailto",
        }]);
    }
    let report_type = message
        .content_type()
        .filter(|c| {
            c.ctype().eq_ignore_ascii_case("multipart")
                && c.subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
        .and_then(|c| c.attribute("report-type"))
        .map(str::to_ascii_lowercase);
    let Some(report_type) = report_type else {
        return Parsed::Ignored("not a delivery status or feedback report".into());
    };
    let mut status_part = None;
    let mut original_headers: Option<String> = None;
    for part in message.parts.iter().skip(1) {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let kind = format!(
            "{}/{}",
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or_default().to_ascii_lowercase()
        );
        match kind.as_str() {
            "message/delivery-status"
            | "message/global-delivery-status"
            | "message/feedback-report" => {
                status_part = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            "message/rfc822" | "message/global" | "text/rfc822-headers" => {
                let text = match &part.body {
                    PartType::Message(m) => String::from_utf8_lossy(m.raw_message()).into_owned(),
                    _ => String::from_utf8_lossy(part.contents()).into_owned(),
                };
                original_headers = Some(head_of(&text).to_string());
            }
            _ => {}
        }
    }
    let Some(status) = status_part else {
        return Parsed::Ignored(format!(
            "a {report_type} report without its machine-readable part"
        ));
    };
    let original = original_headers.as_deref().map(fields).unwrap_or_default();
    let message_id = field(&original, "message-id").map(|m| m.trim().to_string());
    // The report comes back to the envelope sender the message went from.
    let mut return_paths: Vec<String> = ["to", "delivered-to", "x-original-to", "envelope-to"]
        .iter()
        .filter_map(|h| message.header_raw(*h))
        .flat_map(|v| v.split(','))
        .map(|v| angle_free(v).to_string())
        .filter(|v| v.contains('@'))
        .collect();
    if let Some(rp) = field(&original, "return-path") {
        return_paths.push(angle_free(&rp).to_string());
    }
    match report_type.as_str() {
        "delivery-status" => delivery_status(&status, return_paths, message_id),
        "feedback-report" => feedback(&status, &original, return_paths, message_id),
        other => Parsed::Ignored(format!("a report of type `{other}`")),
    }
}

/// RFC 3464: a block of per-message fields, then one block per recipient.
fn delivery_status(status: &str, return_paths: Vec<String>, message_id: Option<String>) -> Parsed {
    let blocks = blocks(status);
    let mut reports = Vec::new();
    let mut delayed = 0;
    for block in blocks.iter().skip(1) {
        let action = field(block, "action")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let code = field(block, "status").unwrap_or_default();
        let recipient = field(block, "final-recipient")
            .or_else(|| field(block, "original-recipient"))
            .map(|r| typed_address(&r));
        // `failed` is final whatever the status class says; a 5.x.x with
        // another action (a relay's guess) is not trusted to be.
        if action.trim() != "failed" {
            delayed += 1;
            continue;
        }
        let diagnostic = field(block, "diagnostic-code").unwrap_or_default();
        reports.push(Report {
            kind: ReportKind::Bounce,
            recipient,
            return_paths: return_paths.clone(),
            message_id: message_id.clone(),
            detail: format!("{} {}", code.trim(), diagnostic.trim())
                .trim()
                .to_string(),
            source: "dsn",
        });
    }
    if reports.is_empty() {
        return Parsed::Ignored(if delayed > 0 {
            "a delay or success notice, not a failure".into()
        } else {
            "a delivery status report naming no recipient".into()
        });
    }
    Parsed::Reports(reports)
}

/// RFC 5965: one feedback block; the recipient is in `Original-Rcpt-To` or
/// the quoted message's `To`.
fn feedback(
    status: &str,
    original: &[(String, String)],
    mut return_paths: Vec<String>,
    message_id: Option<String>,
) -> Parsed {
    let block = blocks(status).into_iter().next().unwrap_or_default();
    let kind = field(&block, "feedback-type")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if kind == "not-spam" {
        return Parsed::Ignored("feedback that the message is not spam".into());
    }
    if let Some(from) = field(&block, "original-mail-from") {
        return_paths.insert(0, angle_free(&from).to_string());
    }
    let recipient = field(&block, "original-rcpt-to")
        .or_else(|| field(original, "to"))
        .map(|r| angle_free(&r).to_string())
        .filter(|r| r.contains('@'));
    Parsed::Reports(vec![Report {
        kind: ReportKind::Complaint,
        recipient,
        return_paths,
        message_id,
        detail: if kind.is_empty() {
            "abuse".into()
        } else {
            kind
        },
        source: "arf",
    }])
}

/// The header section of a message's text.
fn head_of(text: &str) -> &str {
    let end = text
        .find("\r\n\r\n")
        .or_else(|| text.find("\n\n"))
        .unwrap_or(text.len());
    &text[..end]
}

/// Header-style blocks separated by blank lines.
fn blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let text = text.replace("\r\n", "\n");
    text.split("\n\n")
        .map(fields)
        .filter(|b| !b.is_empty())
        .collect()
}

/// `Name: value` fields, folded lines joined, names lower-cased.
fn fields(block: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    out
}

fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// `rfc822; someone@example.org` → `someone@example.org`.
fn typed_address(value: &str) -> String {
    let address = value.split_once(';').map_or(value, |(_, a)| a);
    angle_free(address).to_string()
}

fn angle_free(value: &str) -> &str {
    let v = value.trim();
    match (v.rfind('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].trim(),
        _ => v,
    }
}

/// The send uid of a Message-ID funnel made (`<uid@domain>`).
pub fn send_uid_of_message_id(message_id: &str) -> Option<&str> {
    let id = angle_free(message_id);
    let (local, _) = id.split_once('@')?;
    (matches!(local.len(), 32 | 36) && local.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .then_some(local)
}

/// Splits an mbox file into its messages (`From ` lines start each one).
pub fn split_mbox(text: &[u8]) -> Vec<&[u8]> {
    if !text.starts_with(b"From ") {
        return vec![text];
    }
    let mut starts = vec![0];
    let mut i = 0;
    while let Some(p) = text[i..].windows(6).position(|w| w == b"\nFrom ") {
        starts.push(i + p + 1);
        i += p + 1;
    }
    starts.push(text.len());
    starts
        .windows(2)
        .map(|w| {
            let m = &text[w[0]..w[1]];
            // Drop the `From ` separator line itself.
            m.iter()
                .position(|b| *b == b'\n')
                .map_or(&m[m.len()..], |n| &m[n + 1..])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@mx.example.net\r
To: bounces+01a24311a6377643a08f1c5d5585a818aabbccddeeff00112233@northwind.example\r
Subject: Undelivered Mail Returned to Sender\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r
\r
--b1\r
Content-Type: text/plain\r
\r
Your message could not be delivered.\r
--b1\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.net\r
\r
Final-Recipient: rfc822; gone@example.org\r
Action: failed\r
Status: 5.1.1\r
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>:\r
 Recipient address rejected\r
\r
Final-Recipient: rfc822; slow@example.org\r
Action: delayed\r
Status: 4.4.1\r
--b1\r
Content-Type: text/rfc822-headers\r
\r
From: hello@northwind.example\r
To: gone@example.org\r
Message-ID: <01a24311-a637-7643-a08f-1c5d5585a818@northwind.example>\r
--b1--\r
";

    #[test]
    fn a_dsn_reports_its_failed_recipients_and_skips_delays() {
        let Parsed::Reports(r) = parse_message(DSN.as_bytes()) else {
            panic!("not read as a report");
        };
        assert_eq!(r.len(), 1, "{r:#?}");
        assert_eq!(r[0].kind, ReportKind::Bounce);
        assert_eq!(r[0].recipient.as_deref(), Some("gone@example.org"));
        assert!(
            r[0].detail.starts_with("5.1.1 smtp; 550"),
            "{}",
            r[0].detail
        );
        assert!(r[0].detail.contains("Recipient address rejected"));
        assert!(r[0].return_paths[0].starts_with("bounces+01a24311"));
        assert_eq!(
            r[0].message_id.as_deref().and_then(send_uid_of_message_id),
            Some("01a24311-a637-7643-a08f-1c5d5585a818")
        );
    }

    #[test]
    fn an_arf_report_is_a_complaint_unless_it_says_not_spam() {
        let arf = "From: fbl@isp.example\r
To: fbl@northwind.example\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=feedback-report; boundary=\"p\"\r
\r
--p\r
Content-Type: text/plain\r
\r
This is an abuse report.\r
--p\r
Content-Type: message/feedback-report\r
\r
Feedback-Type: abuse\r
User-Agent: isp-fbl/1.0\r
Version: 1\r
Original-Mail-From: <bounces+ab@northwind.example>\r
Original-Rcpt-To: <angry@example.org>\r
--p\r
Content-Type: message/rfc822\r
\r
From: hello@northwind.example\r
To: angry@example.org\r
Message-ID: <01a24311-a637-7643-a08f-1c5d5585a818@northwind.example>\r
Subject: News\r
\r
Body\r
--p--\r
";
        let Parsed::Reports(r) = parse_message(arf.as_bytes()) else {
            panic!("not read as a report");
        };
        assert_eq!(r[0].kind, ReportKind::Complaint);
        assert_eq!(r[0].recipient.as_deref(), Some("angry@example.org"));
        assert_eq!(r[0].return_paths[0], "bounces+ab@northwind.example");
        assert_eq!(r[0].detail, "abuse");
        assert!(r[0].message_id.is_some());
        let not_spam = arf.replace("Feedback-Type: abuse", "Feedback-Type: not-spam");
        assert!(matches!(
            parse_message(not_spam.as_bytes()),
            Parsed::Ignored(_)
        ));
    }

    #[test]
    fn other_mail_is_ignored_with_a_reason() {
        let reply = "From: a@example.org\r\nTo: bounces@northwind.example\r\nSubject: Out of office\r\n\r\nBack Monday.\r\n";
        assert!(matches!(
            parse_message(reply.as_bytes()),
            Parsed::Ignored(_)
        ));
        assert!(matches!(parse_message(b""), Parsed::Ignored(_)));
        let delays_only = DSN.replace("Action: failed", "Action: delayed");
        assert_eq!(
            parse_message(delays_only.as_bytes()),
            Parsed::Ignored("a delay or success notice, not a failure".into())
        );
    }

    #[test]
    fn an_mbox_splits_into_its_messages() {
        let mbox = b"From a@b Mon Jan 1 00:00:00 2026\nSubject: one\n\nx\n\nFrom c@d Mon Jan 1 00:00:01 2026\nSubject: two\n\ny\n";
        let parts = split_mbox(mbox);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with(b"Subject: one"));
        assert!(parts[1].starts_with(b"Subject: two"));
        assert_eq!(split_mbox(b"Subject: x\n\ny").len(), 1);
    }

    #[test]
    fn only_funnels_message_ids_name_a_send() {
        assert_eq!(
            send_uid_of_message_id("<01a24311-a637-7643-a08f-1c5d5585a818@x.example>"),
            Some("01a24311-a637-7643-a08f-1c5d5585a818")
        );
        assert_eq!(
            send_uid_of_message_id("<ea68af220b6051ca1698d038d107755e@x.example>"),
            Some("ea68af220b6051ca1698d038d107755e"),
            "a campaign's send"
        );
        assert_eq!(send_uid_of_message_id("<CAF1234@mail.gmail.com>"), None);
        assert_eq!(send_uid_of_message_id("nonsense"), None);
    }
}
