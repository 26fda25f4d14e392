//! The signed links every email carries: unsubscribe (`/u/<token>`) and view in
//! browser (`/e/<token>`). A token is `<send uid>.<signature>`, the signature the
//! first 16 bytes of an HMAC-SHA256 of the send's uid under the store's key (with
//! a purpose prefix, so no other token of that key passes for one). Send uids are
//! random enough not to be guessed, and a token that is not signed opens nothing.
//! Unsubscribe links do not expire: a recipient may use one years later.

use crate::analytics::token::hmac_sha256;

const PURPOSE: &[u8] = b"email-link:";

/// The longest token accepted (send uids are short; anything longer is noise).
const MAX_TOKEN: usize = 120;

fn signature(key: &[u8], send_uid: &str) -> [u8; 32] {
    let mut message = Vec::with_capacity(PURPOSE.len() + send_uid.len());
    message.extend_from_slice(PURPOSE);
    message.extend_from_slice(send_uid.as_bytes());
    hmac_sha256(key, &message)
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
    let expected = signature(key, uid);
    // Compared in constant time, so the answer's timing says nothing.
    let same = given
        .iter()
        .zip(&expected[..16])
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0;
    same.then(|| uid.to_string())
}

/// The links of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    pub unsubscribe: String,
    pub view_in_browser: String,
}

/// The links of the send `send_uid` under `public_url` (no trailing slash).
pub fn for_send(key: &[u8], public_url: &str, send_uid: &str) -> Links {
    let t = token(key, send_uid);
    Links {
        unsubscribe: format!("{public_url}/u/{t}"),
        view_in_browser: format!("{public_url}/e/{t}"),
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
    fn links_live_under_the_public_url() {
        let l = for_send(b"k", "https://go.acme.example", "s1");
        assert!(l.unsubscribe.starts_with("https://go.acme.example/u/s1."));
        assert!(
            l.view_in_browser
                .starts_with("https://go.acme.example/e/s1.")
        );
    }
}
