//! Email: rendering a template for one recipient into a MIME message, and the dev
//! outbox that holds every message as an `.eml` file.
//!
//! Rendering escapes every inserted value in the HTML body. The email issue adds
//! SMTP delivery, tracking and compliance headers on top of the same message.

pub mod abtest;
pub mod bounces;
pub mod campaign;
pub mod compliance;
pub mod css;
pub mod dkim;
pub mod links;
pub mod outbox;
pub mod providers;
pub mod relays;
pub mod reports;
pub mod smtp;
pub mod tracking;
pub mod view;

use std::time::{Duration, SystemTime};

use lettre::message::{Mailbox, MultiPart};
use minijinja::Value;

use crate::engine::expr::{Compiled, ExprError, render_html};
use crate::model::email_layout::EmailLayout;
use crate::model::email_template::{EmailKind, EmailTemplate};
use crate::store::UnixMs;

/// A rendered email.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub template: String,
    pub from: String,
    pub reply_to: Option<String>,
    pub to: String,
    pub subject: String,
    pub preheader: Option<String>,
    pub html: String,
    pub text: String,
    pub marketing: bool,
    /// The one-click unsubscribe URL a marketing email names in its
    /// `List-Unsubscribe` header (RFC 2369, RFC 8058).
    pub unsubscribe: Option<String>,
    /// The Message-ID (`<…>`); without one it derives from the idempotency key.
    pub message_id: Option<String>,
    /// The envelope sender bounces go back to (a tagged one per send).
    pub return_path: Option<String>,
    /// The `mailto:` form of the unsubscribe, beside the URL.
    pub unsubscribe_mailto: Option<String>,
}

/// Why a message could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// A part of a template failed to render: which template, which part, and
    /// the line and expression.
    #[error("email template `{template}`, {part}: {message}")]
    Template {
        template: String,
        part: &'static str,
        message: String,
    },
    #[error("`{0}` is not a valid mailbox")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// Renders `template` with `ctx` (`contact`, `data`, `workspace`, `links`),
/// inside `layout` when it has one, with their CSS inlined.
#[allow(clippy::too_many_arguments)]
pub fn render(
    id: &str,
    template: &EmailTemplate,
    layout: Option<&EmailLayout>,
    ctx: &Value,
    from: &str,
    reply_to: Option<&str>,
    to: &str,
    subject_override: Option<String>,
) -> Result<Rendered, EmailError> {
    let plain = Compiled::default();
    let part = |part: &'static str| {
        move |e: ExprError| EmailError::Template {
            template: id.to_string(),
            part,
            message: e.message,
        }
    };
    // An override was rendered by the caller already; rendering it again would
    // evaluate template syntax inside user data.
    let subject = match subject_override {
        Some(s) => s,
        None => plain
            .render(template.subject.as_str(), ctx)
            .map_err(part("subject"))?,
    };
    let preheader = template
        .preheader
        .as_ref()
        .map(|p| plain.render(p.as_str(), ctx).map_err(part("preheader")))
        .transpose()?;
    let mut html = render_html(template.html.as_str(), ctx).map_err(part("html"))?;
    let mut text = match &template.text {
        Some(t) => plain.render(t.as_str(), ctx).map_err(part("text"))?,
        None => html_to_text(&html),
    };
    let mut css = String::new();
    if let Some(layout) = layout {
        // The body goes in as rendered: escaped once already, not again.
        let with = |content: &str| {
            minijinja::context! { content => Value::from_safe_string(content.to_string()), ..ctx.clone() }
        };
        html =
            render_html(layout.html.as_str(), &with(&html)).map_err(part("its layout's html"))?;
        if let Some(t) = &layout.text {
            text = plain
                .render(t.as_str(), &with(&text))
                .map_err(part("its layout's text"))?;
        }
        css.push_str(layout.css.as_deref().unwrap_or_default());
        css.push('\n');
    }
    css.push_str(template.css.as_deref().unwrap_or_default());
    if !css.trim().is_empty() || html.contains("<style") {
        html = css::inline(&html, &css).map_err(|message| EmailError::Template {
            template: id.to_string(),
            part: "css",
            message,
        })?;
    }
    Ok(Rendered {
        template: id.to_string(),
        from: template
            .from
            .as_ref()
            .map_or(from.to_string(), |f| f.as_str().to_string()),
        reply_to: reply_to.map(String::from),
        to: to.to_string(),
        subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
        preheader,
        html,
        text,
        marketing: template.kind.unwrap_or(EmailKind::Marketing) == EmailKind::Marketing,
        unsubscribe: None,
        message_id: None,
        return_path: None,
        unsubscribe_mailto: None,
    })
}

/// Text escaped for HTML (`&`, `<`, `>`, `"`, `'`).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The message as RFC 5322 text, with a Message-ID derived from its idempotency key
/// (so a re-rendered message is byte-for-byte the same one).
/// Signed with `dkim` when given.
pub fn to_eml(
    r: &Rendered,
    key: &str,
    at: UnixMs,
    dkim: Option<&dkim::Signer>,
) -> Result<String, EmailError> {
    let mailbox = |s: &str| -> Result<Mailbox, EmailError> {
        s.parse::<Mailbox>()
            .map_err(|_| EmailError::Address(s.to_string()))
    };
    let date = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0));
    let mut builder = lettre::Message::builder()
        .from(mailbox(&r.from)?)
        .to(mailbox(&r.to)?)
        .subject(r.subject.clone())
        .date(date)
        .message_id(Some(
            r.message_id
                .clone()
                .unwrap_or_else(|| format!("<{}@funnel.local>", file_key(key))),
        ));
    if let Some(reply) = &r.reply_to {
        builder = builder.reply_to(mailbox(reply)?);
    }
    // Mail clients show their own unsubscribe button for these; the POST form
    // (RFC 8058) lets them unsubscribe without opening a page, and only that
    // form: a link scanner's GET never unsubscribes anyone.
    if r.marketing
        && let Some(url) = &r.unsubscribe
    {
        // The https form first (RFC 8058 needs it for the one-click POST),
        // then the mailto form for clients that only send mail.
        let list = match &r.unsubscribe_mailto {
            Some(to) => format!("<{url}>, <mailto:{to}?subject=unsubscribe>"),
            None => format!("<{url}>"),
        };
        builder = builder
            .raw_header(raw_header("List-Unsubscribe", list))
            .raw_header(raw_header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".to_string(),
            ));
    }
    let mut message = builder
        .multipart(MultiPart::alternative_plain_html(
            r.text.clone(),
            r.html.clone(),
        ))
        .map_err(|e| EmailError::Build(e.to_string()))?;
    if let Some(signer) = dkim {
        signer.sign(&mut message);
    }
    Ok(String::from_utf8_lossy(&message.formatted()).into_owned())
}

fn raw_header(name: &'static str, value: String) -> lettre::message::header::HeaderValue {
    lettre::message::header::HeaderValue::new(
        lettre::message::header::HeaderName::new_from_ascii_str(name),
        value,
    )
}

/// An idempotency key as a file-name-safe string.
pub fn file_key(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A plain-text version of an HTML body: tags dropped, links kept as `text (url)`,
/// blocks on their own lines, entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut href: Option<String> = None;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let tag = &rest[start + 1..start + end];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name == "a" && !tag.starts_with('/') {
            href = tag
                .split("href=\"")
                .nth(1)
                .and_then(|h| h.split('"').next())
                .map(String::from);
        } else if name == "a" {
            if let Some(h) = href.take() {
                out.push_str(&format!(" ({h})"));
            }
        } else if matches!(
            name.as_str(),
            "p" | "br" | "div" | "h1" | "h2" | "h3" | "li" | "tr" | "hr"
        ) {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    let mut lines: Vec<String> = Vec::new();
    for line in decoded.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() && lines.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    lines.join("\n").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_version_keeps_links_and_blocks() {
        let text = html_to_text(
            "<h1>Hi &amp; welcome</h1><p>Read <a href=\"https://x.example/a\">the guide</a>.</p>",
        );
        assert_eq!(
            text,
            "Hi & welcome\n\nRead the guide (https://x.example/a)."
        );
    }

    #[test]
    fn inserted_values_are_escaped_in_html_only() {
        let t: EmailTemplate = serde_json::from_value(serde_json::json!({
            "name": "t", "subject": "Hi {{ contact.name }}",
            "html": "<p>{{ contact.name }}</p>"
        }))
        .expect("template");
        let ctx =
            crate::engine::expr::context(&serde_json::json!({"contact": {"name": "<b>Eve</b>"}}));
        let r = render(
            "t",
            &t,
            None,
            &ctx,
            "a@x.example",
            None,
            "b@x.example",
            None,
        )
        .expect("renders");
        assert_eq!(r.html, "<p>&lt;b&gt;Eve&lt;/b&gt;</p>");
        assert_eq!(r.subject, "Hi <b>Eve</b>");
        let eml = to_eml(&r, "e1:s:1", 0, None).expect("eml");
        assert!(eml.contains("Message-ID: <e1_s_1@funnel.local>"), "{eml}");
    }

    #[test]
    fn a_layout_takes_the_body_as_rendered_escaped_once() {
        let t: EmailTemplate = serde_json::from_value(serde_json::json!({
            "name": "t", "subject": "Hi", "layout": "frame",
            "html": "<p class=\"x\">{{ contact.name }}</p>", "text": "Hello {{ contact.name }}"
        }))
        .expect("template");
        let layout: EmailLayout = serde_json::from_value(serde_json::json!({
            "name": "Frame",
            "html": "<div>{{ content }}<footer>{{ contact.name }}</footer></div>",
            "text": "{{ content }}\n--\nbye",
            "css": ".x { color: red }"
        }))
        .expect("layout");
        let ctx =
            crate::engine::expr::context(&serde_json::json!({"contact": {"name": "<b>Eve</b>"}}));
        let r = render(
            "t",
            &t,
            Some(&layout),
            &ctx,
            "a@x.example",
            None,
            "b@x.example",
            None,
        )
        .expect("renders");
        assert_eq!(
            r.html,
            "<div><p class=\"x\" style=\"color: red;\">&lt;b&gt;Eve&lt;/b&gt;</p><footer>&lt;b&gt;Eve&lt;/b&gt;</footer></div>"
        );
        assert_eq!(r.text, "Hello <b>Eve</b>\n--\nbye");
    }
}
