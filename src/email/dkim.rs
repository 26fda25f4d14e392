//! DKIM signing (RFC 6376, Ed25519 keys per RFC 8463) of every message as it is
//! queued: the signature covers the headers that say who sent what to whom and
//! the unsubscribe offer, so a relay cannot change them unnoticed. A listed
//! header the message lacks (a receipt has no `List-Unsubscribe`) is signed as
//! absent, so none can be added later either.

use std::path::Path;
use std::sync::Arc;

use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;

use super::EmailError;
use crate::model::config::{DkimAlgorithm, DkimSettings};

/// The headers every signature covers.
pub const SIGNED_HEADERS: [&str; 7] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// A loaded signing key; its `Debug` names the domain and selector only.
#[derive(Clone)]
pub struct Signer {
    config: Arc<DkimConfig>,
    label: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.label)
    }
}

impl Signer {
    /// Loads the key `cfg` names: from the environment (`secret` resolves its
    /// `${NAME}`) or from a file under `root`.
    pub fn load(
        cfg: &DkimSettings,
        root: &Path,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Result<Signer, EmailError> {
        let bad = |m: String| EmailError::Build(format!("email.dkim: {m}"));
        let pem = match (&cfg.private_key, &cfg.private_key_file) {
            (Some(s), None) => {
                let name = s.as_str().trim_start_matches("${").trim_end_matches('}');
                secret(name)
                    .ok_or_else(|| bad(format!("environment variable {name} is not set")))?
            }
            (None, Some(file)) => std::fs::read_to_string(root.join(file))
                .map_err(|e| bad(format!("cannot read the key file {file}: {e}")))?,
            _ => {
                return Err(bad(
                    "name the key with exactly one of `private_key` and `private_key_file`".into(),
                ));
            }
        };
        let algorithm = match cfg.algorithm {
            DkimAlgorithm::Ed25519 => DkimSigningAlgorithm::Ed25519,
            DkimAlgorithm::Rsa => DkimSigningAlgorithm::Rsa,
        };
        let key = DkimSigningKey::new(pem.trim(), algorithm).map_err(|_| {
            bad(match cfg.algorithm {
                DkimAlgorithm::Rsa => "the key is not an RSA private key in PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`; `openssl genrsa -traditional 2048` writes one)".into(),
                DkimAlgorithm::Ed25519 => "the key is not a base64 Ed25519 seed of 32 bytes".into(),
            })
        })?;
        let config = DkimConfig::new(
            cfg.selector.clone(),
            cfg.domain.clone(),
            key,
            SIGNED_HEADERS
                .iter()
                .map(|h| HeaderName::new_from_ascii_str(h))
                .collect(),
            // Relaxed both ways: relays that refold headers or trim line ends do
            // not break the signature.
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        );
        Ok(Signer {
            config: Arc::new(config),
            label: format!("{}._domainkey.{}", cfg.selector, cfg.domain),
        })
    }

    /// Adds the `DKIM-Signature` header to `message`.
    pub fn sign(&self, message: &mut lettre::Message) {
        message.sign(&self.config);
    }
}
