//! The signed links every email carries: unsubscribe (`/u/<token>`) and view in
//! browser (`/e/<token>`). A token is `<send uid>.<signature>`, the signature the
//! first 16 bytes of an HMAC-SHA256 of the send's uid under the store's key (with
//! a purpose prefix, so no other token of that key passes for one). Send uids are
//! random enough not to be guessed, and a token that is not signed opens nothing.
//! Unsubscribe links do not expire: a recipient may use one years later.

use crate::analytics::token::hmac_sha256;

const PURPOSE: &[u8] = b"email-link:";
const BOUNCE_PURPOSE: &[u8] = b"email-bounce:";
const MAILTO_PURPOSE: &[u8] = b"email-mailto-unsubscribe:";

/// The bytes of a return path's signature: 80 bits, so that the tagged local
/// part fits the 64 characters SMTP allows with a short base name.
const BOUNCE_SIG: usize = 10;

/// The longest token accepted (send uids are short; anything longer is noise).
const MAX_TOKEN: usize = 120;

fn signature(key: &[u8], send_uid: &str) -> [u8; 32] {
    signed(key, PURPOSE, send_uid)
}

fn signed(key: &[u8], purpose: &[u8], send_uid: &str) -> [u8; 32] {
    let mut message = Vec::with_capacity(purpose.len() + send_uid.len());
    message.extend_from_slice(purpose);
    message.extend_from_slice(send_uid.as_bytes());
    hmac_sha256(key, &message)
}

/// Compares in constant time, so an answer's timing says nothing.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The envelope sender of one send (VERP): `base`'s local part tagged with the
/// send's uid and a signature, `bounces+<uid hex><sig hex>@domain`. A bounce
/// comes back to that address, which names the send and cannot be forged for
/// another. `None` when the tagged local part would pass SMTP's 64 characters
/// (the message then goes from `base` itself).
pub fn return_path(key: &[u8], base: &str, send_uid: &str) -> Option<String> {
    let (local, domain) = base.rsplit_once('@')?;
    let compact: String = send_uid.chars().filter(|c| *c != '-').collect();
    if compact.len() != 32 || !compact.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let compact = compact.to_ascii_lowercase();
    let sig = hex::encode(&signed(key, BOUNCE_PURPOSE, &compact)[..BOUNCE_SIG]);
    let tagged = format!("{local}+{compact}{sig}");
    (tagged.len() <= 64).then(|| format!("{tagged}@{domain}"))
}

/// The `mailto:` unsubscribe address of one send (RFC 2369's second form of
/// `List-Unsubscribe`): `base`'s local part tagged `+u<uid hex><signature>`.
/// Mail to it, imported with `funnel bounces import`, unsubscribes the
/// recipient of that send. `None` when it would not fit 64 characters.
pub fn mailto_unsubscribe(key: &[u8], base: &str, send_uid: &str) -> Option<String> {
    let (local, domain) = base.rsplit_once('@')?;
    let compact: String = send_uid
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    if compact.len() != 32 || !compact.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let sig = hex::encode(&signed(key, MAILTO_PURPOSE, &compact)[..BOUNCE_SIG]);
    let tagged = format!("{local}+u{compact}{sig}");
    (tagged.len() <= 64).then(|| format!("{tagged}@{domain}"))
}

/// The send uid (compact, see [`uid_forms`]) a `mailto:` unsubscribe address
/// names, if its signature holds.
pub fn mailto_unsubscribe_send(key: &[u8], address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _) = address.rsplit_once('@')?;
    let (_, tag) = local.rsplit_once('+')?;
    let tag = tag.to_ascii_lowercase();
    let tag = tag.strip_prefix('u')?;
    if tag.len() != 32 + 2 * BOUNCE_SIG {
        return None;
    }
    let (uid, sig) = tag.split_at(32);
    let given = hex::decode(sig).ok()?;
    same(&given, &signed(key, MAILTO_PURPOSE, uid)[..BOUNCE_SIG]).then(|| uid.to_string())
}

/// The send uid a tagged return path (as [`return_path`] makes them) names, if
/// its signature holds, in its compact form (32 hex digits, no hyphens: look
/// the send up with [`uid_forms`]). Mail servers may change the case of a
/// local part.
pub fn return_path_send(key: &[u8], address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _) = address.rsplit_once('@')?;
    let (_, tag) = local.rsplit_once('+')?;
    let tag = tag.to_ascii_lowercase();
    if tag.len() != 32 + 2 * BOUNCE_SIG {
        return None;
    }
    let (uid, sig) = tag.split_at(32);
    let given = hex::decode(sig).ok()?;
    same(&given, &signed(key, BOUNCE_PURPOSE, uid)[..BOUNCE_SIG]).then(|| uid.to_string())
}

/// The spellings a send uid of 32 hex digits may be stored under: as it is
/// (a campaign's sends) and hyphenated like a UUID (a workflow's).
pub fn uid_forms(compact: &str) -> Vec<String> {
    let mut forms = vec![compact.to_string()];
    if compact.len() == 32 && compact.is_ascii() {
        forms.push(format!(
            "{}-{}-{}-{}-{}",
            &compact[..8],
            &compact[8..12],
            &compact[12..16],
            &compact[16..20],
            &compact[20..]
        ));
    }
    forms
}

/// The token for one send.
pub fn token(key: &[u8], send_uid: &str) -> String {
    format!(
        "{send_uid}.{}",
        hex::encode(&signature(key, send_uid)[..16])
    )
}

/// The send uid of a token with a valid signature.
pub fn verify(key: &[u8], token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let (uid, sig) = token.rsplit_once('.')?;
    let given = hex::decode(sig).ok().filter(|s| s.len() == 16)?;
    same(&given, &signature(key, uid)[..16]).then(|| uid.to_string())
}

const CONFIRM_PURPOSE: &[u8] = b"list-confirm:";

/// The token of a double opt-in link: `<contact uid>.<list>.<requested at>.<sig>`,
/// signed under the store's key, so it names one request and nothing else.
pub fn confirm_token(key: &[u8], contact_uid: &str, list: &str, requested_at: i64) -> String {
    let body = format!("{contact_uid}.{list}.{requested_at}");
    format!(
        "{body}.{}",
        hex::encode(&signed(key, CONFIRM_PURPOSE, &body)[..16])
    )
}

/// The contact uid, list and request time a confirmation token names, if its
/// signature holds.
pub fn verify_confirm(key: &[u8], token: &str) -> Option<(String, String, i64)> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let (body, sig) = token.rsplit_once('.')?;
    let given = hex::decode(sig).ok().filter(|s| s.len() == 16)?;
    if !same(&given, &signed(key, CONFIRM_PURPOSE, body)[..16]) {
        return None;
    }
    let mut parts = body.splitn(3, '.');
    let (uid, list, at) = (parts.next()?, parts.next()?, parts.next()?);
    Some((uid.to_string(), list.to_string(), at.parse().ok()?))
}

/// The links of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    pub unsubscribe: String,
    pub view_in_browser: String,
    pub preferences: String,
}

/// The links of the send `send_uid` under `public_url` (no trailing slash).
pub fn for_send(key: &[u8], public_url: &str, send_uid: &str) -> Links {
    let t = token(key, send_uid);
    Links {
        unsubscribe: format!("{public_url}/u/{t}"),
        view_in_browser: format!("{public_url}/e/{t}"),
        preferences: format!("{public_url}/p/{t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_under_its_key_only() {
        let t = token(b"key one", "0190abc");
        assert_eq!(verify(b"key one", &t).as_deref(), Some("0190abc"));
        assert_eq!(verify(b"key two", &t), None);
    }

    #[test]
    fn changed_or_malformed_tokens_are_refused() {
        let t = token(b"k", "0190abc");
        let other_uid = t.replacen("0190abc", "0190abd", 1);
        assert_eq!(verify(b"k", &other_uid), None);
        let mut flipped = t.clone();
        let last = flipped.pop().expect("a character");
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(verify(b"k", &flipped), None);
        for bad in [
            "",
            ".",
            "0190abc",
            "0190abc.zz",
            "0190abc.00",
            &"a".repeat(500),
        ] {
            assert_eq!(verify(b"k", bad), None, "{bad}");
        }
    }

    #[test]
    fn a_return_path_names_its_send_and_resists_forgery() {
        let uid = "01a24311-a637-7643-a08f-1c5d5585a818";
        let rp = return_path(b"k", "bounces@mail.acme.example", uid).expect("fits");
        assert!(
            rp.starts_with("bounces+01a24311a6377643a08f1c5d5585a818"),
            "{rp}"
        );
        assert!(rp.split('@').next().is_some_and(|l| l.len() <= 64), "{rp}");
        let compact = "01a24311a6377643a08f1c5d5585a818";
        assert_eq!(return_path_send(b"k", &rp).as_deref(), Some(compact));
        assert!(uid_forms(compact).contains(&uid.to_string()));
        assert_eq!(
            return_path_send(b"k", &format!("<{}>", rp.to_uppercase())).as_deref(),
            Some(compact),
            "a server that upper-cases the address"
        );
        // A campaign's uid is 32 hex digits already: the same address.
        assert_eq!(
            return_path(b"k", "bounces@mail.acme.example", compact),
            Some(rp.clone())
        );
        assert_eq!(return_path_send(b"other key", &rp), None);
        let other = rp.replacen("01a24311", "01a24312", 1);
        assert_eq!(return_path_send(b"k", &other), None);
        assert_eq!(return_path_send(b"k", "bounces@mail.acme.example"), None);
        assert_eq!(
            return_path(b"k", &format!("{}@x.example", "a".repeat(20)), uid),
            None,
            "too long for SMTP: sent from the base address"
        );
    }

    #[test]
    fn a_mailto_unsubscribe_names_its_send_and_is_no_return_path() {
        let uid = "01a24311-a637-7643-a08f-1c5d5585a818";
        let to = mailto_unsubscribe(b"k", "hello@acme.example", uid).expect("fits");
        assert!(to.starts_with("hello+u01a24311"), "{to}");
        assert_eq!(
            mailto_unsubscribe_send(b"k", &to).as_deref(),
            Some("01a24311a6377643a08f1c5d5585a818")
        );
        assert_eq!(mailto_unsubscribe_send(b"other", &to), None);
        assert_eq!(return_path_send(b"k", &to), None, "not a bounce address");
        let rp = return_path(b"k", "hello@acme.example", uid).expect("fits");
        assert_eq!(
            mailto_unsubscribe_send(b"k", &rp),
            None,
            "not an unsubscribe"
        );
    }

    #[test]
    fn a_confirmation_token_names_one_request() {
        let t = confirm_token(b"k", "0190-ab", "newsletter", 1_700_000_000_000);
        assert_eq!(
            verify_confirm(b"k", &t),
            Some(("0190-ab".into(), "newsletter".into(), 1_700_000_000_000))
        );
        assert_eq!(verify_confirm(b"other", &t), None);
        let other_list = t.replacen("newsletter", "customers", 1);
        assert_eq!(verify_confirm(b"k", &other_list), None);
        assert_eq!(verify_confirm(b"k", "x.y"), None);
    }

    #[test]
    fn links_live_under_the_public_url() {
        let l = for_send(b"k", "https://go.acme.example", "s1");
        assert!(l.unsubscribe.starts_with("https://go.acme.example/u/s1."));
        assert!(
            l.view_in_browser
                .starts_with("https://go.acme.example/e/s1.")
        );
    }
}
