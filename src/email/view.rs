//! The HTML part of a stored message, for view in browser: funnel's own
//! messages, as lettre writes them (a `multipart/alternative` whose parts are
//! 7bit, quoted-printable or base64), read back without a general MIME parser.

use base64::Engine as _;

/// The decoded HTML part of `eml`, if it has one.
pub fn html_part(eml: &str) -> Option<String> {
    let (head, body) = split_head(eml)?;
    let boundary = header_param(head, "content-type", "boundary")?;
    let delimiter = format!("--{boundary}");
    for part in body.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.trim_start_matches(['\r', '\n']);
        let Some((part_head, content)) = split_head(part) else {
            continue;
        };
        let content_type = header(part_head, "content-type").unwrap_or_default();
        if !content_type.to_ascii_lowercase().starts_with("text/html") {
            continue;
        }
        let content = content.trim_end_matches(['\r', '\n']);
        let encoding = header(part_head, "content-transfer-encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let bytes = match encoding.trim() {
            "base64" => base64::engine::general_purpose::STANDARD
                .decode(content.split_whitespace().collect::<String>())
                .ok()?,
            "quoted-printable" => {
                quoted_printable::decode(content, quoted_printable::ParseMode::Robust).ok()?
            }
            _ => content.as_bytes().to_vec(),
        };
        return String::from_utf8(bytes).ok();
    }
    None
}

fn split_head(text: &str) -> Option<(&str, &str)> {
    text.split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
}

/// A header's value, its folded lines joined.
fn header(head: &str, name: &str) -> Option<String> {
    let mut value: Option<String> = None;
    for line in head.lines() {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}

fn header_param(head: &str, name: &str, param: &str) -> Option<String> {
    let value = header(head, name)?;
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(param)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::{Rendered, to_eml};

    fn message(html: &str) -> String {
        let r = Rendered {
            template: "t".into(),
            from: "Acme <hi@acme.example>".into(),
            reply_to: None,
            to: "jane@example.org".into(),
            subject: "Hello".into(),
            preheader: None,
            html: html.into(),
            text: "plain".into(),
            marketing: true,
            unsubscribe: Some("https://go.acme.example/u/x.y".into()),
            message_id: None,
            return_path: None,
            unsubscribe_mailto: None,
        };
        to_eml(&r, "k1", 0, None).expect("eml")
    }

    #[test]
    fn the_html_part_reads_back_whatever_its_encoding() {
        for html in [
            "<p>short ascii</p>".to_string(),
            format!("<p>{}</p>", "a long line without breaks ".repeat(40)),
            "<p>Grüße aus Berlin — «quotes» and ✓ marks</p>".to_string(),
            "<p>中文内容，全是非拉丁字符。</p>".repeat(20),
        ] {
            assert_eq!(html_part(&message(&html)).as_deref(), Some(html.as_str()));
        }
    }

    #[test]
    fn a_message_without_an_html_part_has_none() {
        assert_eq!(html_part("Subject: x\r\n\r\nbody"), None);
        assert_eq!(html_part(""), None);
    }
}
