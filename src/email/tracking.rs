//! Open and click tracking: an invisible image (`/o/<token>`) at the end of the
//! HTML part, and every web link of the HTML part sent through a redirect
//! (`/c/<token>?u=<url>`). The redirect's signature covers the send and the URL,
//! so it leads only where the email led (never an open redirect) and a changed
//! URL or send finds nothing. The text part keeps its links as written.
//! funnel.yaml's `email.tracking` switches either off.

use crate::analytics::token::hmac_sha256;

const PURPOSE: &[u8] = b"email-click:";

/// The longest URL a redirect carries.
pub const MAX_URL: usize = 2_000;

fn signature(key: &[u8], send_uid: &str, url: &str) -> String {
    let mut message = Vec::with_capacity(PURPOSE.len() + send_uid.len() + url.len() + 1);
    message.extend_from_slice(PURPOSE);
    message.extend_from_slice(send_uid.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(url.as_bytes());
    hex::encode(&hmac_sha256(key, &message)[..16])
}

/// The redirect path (with its query) for `url` in send `send_uid`.
pub fn click_path(key: &[u8], send_uid: &str, url: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("u", url)
        .finish();
    format!("/c/{send_uid}.{}?{query}", signature(key, send_uid, url))
}

/// The send uid of a genuine click token for `url`.
pub fn verify_click(key: &[u8], token: &str, url: &str) -> Option<String> {
    if token.len() > 120 || url.len() > MAX_URL {
        return None;
    }
    let (uid, sig) = token.rsplit_once('.')?;
    let expected = signature(key, uid, url);
    let same = sig.len() == expected.len()
        && sig
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    same.then(|| uid.to_string())
}

/// Whether a link is one to track: a web address, not the email's own
/// unsubscribe or view link (those must work as they are, and are not clicks).
fn trackable(url: &str, public_url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && url.len() <= MAX_URL
        && !url.starts_with(&format!("{public_url}/u/"))
        && !url.starts_with(&format!("{public_url}/e/"))
}

/// The HTML with each trackable `href="…"` sent through the redirect. Hrefs in
/// rendered templates are HTML-escaped, so `&amp;` is turned back into `&`
/// before signing and the redirect's own `&` escaped again.
pub fn wrap_links(html: &str, public_url: &str, key: &[u8], send_uid: &str) -> String {
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html;
    while let Some(at) = rest.find("href=\"") {
        let start = at + "href=\"".len();
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let Some(end) = rest.find('"') else {
            break;
        };
        let raw = &rest[..end];
        let url = raw.replace("&amp;", "&");
        if trackable(&url, public_url) {
            let path = click_path(key, send_uid, &url);
            out.push_str(&crate::email::escape_html(&format!("{public_url}{path}")));
        } else {
            out.push_str(raw);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The HTML with the open pixel for `token` (the send's link token) at its end.
pub fn add_pixel(html: &str, public_url: &str, token: &str) -> String {
    let img = format!(
        "<img src=\"{public_url}/o/{token}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\">"
    );
    match html.rfind("</body>") {
        Some(i) => format!("{}{img}{}", &html[..i], &html[i..]),
        None => format!("{html}\n{img}\n"),
    }
}

/// A transparent 1×1 GIF.
pub const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = "https://go.acme.example";

    #[test]
    fn web_links_go_through_a_signed_redirect_and_the_rest_stay() {
        let html = "<a href=\"https://acme.example/p?a=1&amp;b=2\">x</a> \
                    <a href=\"mailto:hi@acme.example\">m</a> \
                    <a href=\"https://go.acme.example/u/s1.abc\">u</a>";
        let out = wrap_links(html, PUBLIC, b"k", "s1");
        assert!(
            out.contains("href=\"https://go.acme.example/c/s1."),
            "{out}"
        );
        assert!(out.contains("href=\"mailto:hi@acme.example\""), "{out}");
        assert!(
            out.contains("href=\"https://go.acme.example/u/s1.abc\""),
            "{out}"
        );
        // The redirect's token verifies for the original URL, `&amp;` undone.
        let href = out
            .split("href=\"")
            .nth(1)
            .and_then(|h| h.split('"').next())
            .unwrap_or("");
        let href = href.replace("&amp;", "&");
        let (path, query) = href.split_once('?').expect("query");
        let token = path.rsplit('/').next().expect("token");
        let url: String = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "u")
            .map(|(_, v)| v.into_owned())
            .expect("u");
        assert_eq!(url, "https://acme.example/p?a=1&b=2");
        assert_eq!(verify_click(b"k", token, &url).as_deref(), Some("s1"));
    }

    #[test]
    fn a_redirect_to_another_url_or_under_another_key_is_refused() {
        let path = click_path(b"k", "s1", "https://acme.example/");
        let token = path
            .trim_start_matches("/c/")
            .split('?')
            .next()
            .expect("token");
        assert_eq!(verify_click(b"k", token, "https://evil.example/"), None);
        assert_eq!(verify_click(b"other", token, "https://acme.example/"), None);
        assert_eq!(verify_click(b"k", "s1.", "https://acme.example/"), None);
    }

    #[test]
    fn the_pixel_goes_before_the_end_of_the_body() {
        let html = add_pixel("<html><body><p>x</p></body></html>", PUBLIC, "t1");
        assert!(
            html.ends_with(
                "alt=\"\" style=\"display:block;border:0;width:1px;height:1px\"></body></html>"
            ),
            "{html}"
        );
        assert!(html.contains("src=\"https://go.acme.example/o/t1\""));
    }
}
