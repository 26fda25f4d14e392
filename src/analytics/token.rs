//! Signed contact tokens: `<contact uid>.<expiry, unix seconds>.<signature>`, the
//! signature an HMAC-SHA256 of the rest under a key kept in the store (made on
//! first use). A token in a tracked email link, or handed to the thank-you page
//! after a form submission, lets the tracking script tie a visitor to a contact
//! without cookies; a forged or expired token ties nothing.

use crate::store::db::{Db, OptionalRow, params};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::AnalyticsError;
use crate::store::UnixMs;

/// How long a token ties visits to its contact.
pub const LIFETIME_MS: i64 = 30 * 24 * 3_600_000;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = mac(key);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (longer ones are hashed first).
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// 32 random bytes from the operating system's random source (getrandom(2)).
pub fn random_key() -> Result<[u8; 32], AnalyticsError> {
    let mut out = [0u8; 32];
    getrandom::fill(&mut out)
        .map_err(|e| AnalyticsError::Bad(format!("no random bytes from the system: {e}")))?;
    Ok(out)
}

/// The store's signing key, if one was made (a reader's view: nothing signed yet
/// means no token can be genuine).
pub fn stored_key(conn: Db<'_>) -> Result<Option<Vec<u8>>, crate::store::StoreError> {
    Ok(conn
        .query_row(
            "SELECT value FROM crm_state WHERE key = 'contact_token_key'",
            params![],
            |r| r.get::<String>(0),
        )
        .optional()?
        .map(String::into_bytes))
}

/// The store's signing key, made on first use (inside the caller's write).
pub fn key(conn: Db<'_>) -> Result<Vec<u8>, AnalyticsError> {
    let found: Option<String> = conn
        .query_row(
            "SELECT value FROM crm_state WHERE key = 'contact_token_key'",
            params![],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(k) = found {
        return Ok(k.into_bytes());
    }
    let k = hex::encode(random_key()?);
    conn.execute(
        "INSERT INTO crm_state (key, value) VALUES ('contact_token_key', ?1) \
         ON CONFLICT (key) DO NOTHING",
        params![&k],
    )?;
    let stored: String = conn.query_row(
        "SELECT value FROM crm_state WHERE key = 'contact_token_key'",
        params![],
        |r| r.get(0),
    )?;
    Ok(stored.into_bytes())
}

/// A token for the contact with public id `uid`, valid until `now + LIFETIME_MS`.
pub fn issue(key: &[u8], uid: &str, now: UnixMs) -> String {
    let body = format!("{uid}.{}", (now + LIFETIME_MS) / 1000);
    let sig = hmac_sha256(key, body.as_bytes());
    format!("{body}.{}", hex::encode(&sig[..16]))
}

/// The contact uid of a valid, unexpired token.
pub fn verify(key: &[u8], token: &str, now: UnixMs) -> Option<String> {
    if token.len() > 200 {
        return None;
    }
    let (body, sig) = token.rsplit_once('.')?;
    let (uid, expiry) = body.rsplit_once('.')?;
    let expiry: i64 = expiry.parse().ok()?;
    let sig = hex::decode(sig).ok().filter(|s| s.len() == 16)?;
    let mut mac = mac(key);
    mac.update(body.as_bytes());
    // A constant-time comparison of the first 16 bytes, so timing says nothing.
    let same = mac.verify_truncated_left(&sig).is_ok();
    (same && expiry * 1000 >= now).then(|| uid.to_string())
}

/// Appends `ft=<token>` to every link into the workspace's sites (`origins`, such
/// as `https://www.acme.example`) in an email's HTML or text, so that a click
/// arrives as the contact. funnel's own email links (unsubscribe, view in
/// browser, preferences, confirmation, tracking: [`EMAIL_LINK_PATHS`]) are left
/// alone, as are hosts that merely start like an origin.
/// Paths of the links funnel puts in emails itself (signed already).
pub const EMAIL_LINK_PATHS: &[&str] = &["/u/", "/e/", "/p/", "/o/", "/c/", "/confirm/"];

pub fn tag_links(text: &str, origins: &[String], token: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    'scan: while !rest.is_empty() {
        let next = origins
            .iter()
            .filter(|o| !o.is_empty())
            .filter_map(|o| rest.find(o.as_str()).map(|i| (i, o.len())))
            .min();
        let Some((at, len)) = next else {
            out.push_str(rest);
            break;
        };
        let end_of_url = rest[at..]
            .find(|c: char| c.is_whitespace() || "\"'<>)".contains(c))
            .map_or(rest.len(), |e| at + e);
        // A sentence's full stop after a URL in plain text is not part of it.
        let end_of_url = at
            + rest[at..end_of_url]
                .trim_end_matches(['.', ',', ';', ':', '!', '?'])
                .len();
        let url = &rest[at..end_of_url];
        let after_origin = &url[len..];
        let is_link = after_origin.is_empty() || after_origin.starts_with(['/', '?', '#']);
        out.push_str(&rest[..at]);
        if !is_link
            || EMAIL_LINK_PATHS.iter().any(|p| after_origin.starts_with(p))
            || url.contains("ft=")
        {
            out.push_str(url);
            rest = &rest[end_of_url..];
            continue 'scan;
        }
        let (base, fragment) = url
            .split_once('#')
            .map_or((url, None), |(b, f)| (b, Some(f)));
        out.push_str(base);
        out.push(if base.contains('?') { '&' } else { '?' });
        out.push_str("ft=");
        out.push_str(token);
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
        rest = &rest[end_of_url..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn links_into_the_sites_carry_the_token() {
        let origins = vec![
            "https://www.acme.example".to_string(),
            "https://go.acme.example".to_string(),
        ];
        let html = r#"<a href="https://www.acme.example/demo?utm_source=x&amp;b=1#top">Demo</a> <a href="https://www.acme.example.evil/x">no</a> <a href="https://go.acme.example/u/abc">unsubscribe</a> https://www.acme.example/pricing. https://other.example/a"#;
        let tagged = tag_links(html, &origins, "T");
        assert_eq!(
            tagged,
            r#"<a href="https://www.acme.example/demo?utm_source=x&amp;b=1&ft=T#top">Demo</a> <a href="https://www.acme.example.evil/x">no</a> <a href="https://go.acme.example/u/abc">unsubscribe</a> https://www.acme.example/pricing?ft=T. https://other.example/a"#
        );
        assert_eq!(
            tag_links("https://www.acme.example", &origins, "T"),
            "https://www.acme.example?ft=T"
        );
    }

    #[test]
    fn tokens_verify_until_they_expire_and_not_when_altered() {
        let key = b"k3y";
        let t = issue(key, "0190-abc", 1_000_000);
        assert_eq!(verify(key, &t, 1_000_000).as_deref(), Some("0190-abc"));
        assert_eq!(
            verify(key, &t, 1_000_000 + LIFETIME_MS + 1000),
            None,
            "expired"
        );
        assert_eq!(verify(b"other", &t, 1_000_000), None, "another key");
        let forged = t.replacen("0190-abc", "0190-abd", 1);
        assert_eq!(verify(key, &forged, 1_000_000), None, "another contact");
        assert_eq!(verify(key, "junk", 0), None);
        let (a, b) = (random_key().expect("key"), random_key().expect("key"));
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
