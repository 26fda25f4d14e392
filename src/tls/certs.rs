//! A domain's certificate: the chain and key as PEM, read once for what the
//! renewal needs (serial, validity), kept in the store so that a restarted
//! daemon serves at once, and due for renewal at two thirds of its lifetime
//! (Let's Encrypt's 90 days: at 60; a test authority's 120 seconds: at 80).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_cert::der::Decode;

use super::TlsError;
use crate::store::db::{Db, OptionalRow, params};
use crate::store::{StoreError, UnixMs};

/// One domain's certificate chain (leaf first) and private key.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    pub domain: String,
    pub chain_pem: String,
    pub key_pem: String,
    /// The leaf's serial number, lowercase hex.
    pub serial: String,
    pub not_before: UnixMs,
    pub not_after: UnixMs,
    /// When this store received it.
    pub issued_at: UnixMs,
}

// The key never reaches a log line or a debug print.
impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("domain", &self.domain)
            .field("serial", &self.serial)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Reads the leaf of `chain_pem` and checks that `key_pem` is a key rustls
    /// can sign with; `issued_at` is when the store received it.
    pub fn from_pem(
        domain: &str,
        chain_pem: &str,
        key_pem: &str,
        issued_at: UnixMs,
    ) -> Result<Self, TlsError> {
        let bad = |why: String| TlsError::Certificate {
            domain: domain.to_string(),
            why,
        };
        let leaf = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .next()
            .ok_or_else(|| bad("the chain holds no certificate".into()))?
            .map_err(|e| bad(format!("the chain is not PEM: {e}")))?;
        let parsed = x509_cert::Certificate::from_der(leaf.as_ref())
            .map_err(|e| bad(format!("the leaf is not X.509: {e}")))?;
        let validity = &parsed.tbs_certificate.validity;
        let ms = |t: &x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_millis()).unwrap_or(i64::MAX)
        };
        let cert = Certificate {
            domain: domain.to_ascii_lowercase(),
            chain_pem: chain_pem.to_string(),
            key_pem: key_pem.to_string(),
            serial: hex::encode(parsed.tbs_certificate.serial_number.as_bytes()),
            not_before: ms(&validity.not_before),
            not_after: ms(&validity.not_after),
            issued_at,
        };
        cert.certified_key()?;
        Ok(cert)
    }

    /// When the renewal is due: two thirds into the certificate's lifetime,
    /// counted from when it arrived if the authority backdated `not_before`
    /// (a backdated start would otherwise make a new certificate due at once).
    pub fn renew_at(&self) -> UnixMs {
        let start = self.not_before.max(self.issued_at.min(self.not_after));
        let life = (self.not_after - start).max(0);
        start + life / 3 * 2
    }

    /// The chain and signing key as rustls serves them.
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let bad = |why: String| TlsError::Certificate {
            domain: self.domain.clone(),
            why,
        };
        let chain = CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("the chain is not PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| bad(format!("the key is not PEM: {e}")))?;
        let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
            .map_err(|e| bad(format!("the key cannot sign: {e}")))?;
        Ok(Arc::new(CertifiedKey::new(chain, signing)))
    }
}

/// Keeps `cert` as its domain's current certificate.
pub fn save(db: Db<'_>, cert: &Certificate) -> Result<(), StoreError> {
    db.prepare_cached(
        "INSERT INTO tls_certificates \
         (domain, chain_pem, key_pem, serial, not_before, not_after, issued_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (domain) DO UPDATE SET chain_pem = excluded.chain_pem, \
         key_pem = excluded.key_pem, serial = excluded.serial, \
         not_before = excluded.not_before, not_after = excluded.not_after, \
         issued_at = excluded.issued_at",
    )?
    .execute(params![
        cert.domain,
        cert.chain_pem,
        cert.key_pem,
        cert.serial,
        cert.not_before,
        cert.not_after,
        cert.issued_at
    ])?;
    Ok(())
}

/// Every kept certificate. A row that no longer parses (edited by hand) is
/// left out with a warning: it is ordered again as if missing.
pub fn all(db: Db<'_>) -> Result<Vec<Certificate>, StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT domain, chain_pem, key_pem, issued_at FROM tls_certificates ORDER BY domain",
    )?;
    let rows = stmt.query_map(params![], |r| {
        Ok((
            r.get::<String>(0)?,
            r.get::<String>(1)?,
            r.get::<String>(2)?,
            r.get::<i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (domain, chain, key, issued_at) = row?;
        match Certificate::from_pem(&domain, &chain, &key, issued_at) {
            Ok(c) => out.push(c),
            Err(e) => tracing::warn!(error = %e, "a stored certificate is unreadable"),
        }
    }
    Ok(out)
}

/// The ACME account kept for `directory` (instant-acme's credentials, JSON).
pub fn account(db: Db<'_>, directory: &str) -> Result<Option<String>, StoreError> {
    db.prepare_cached("SELECT credentials FROM acme_accounts WHERE directory = ?1")?
        .query_row(params![directory], |r| r.get(0))
        .optional()
}

/// Keeps the account made on `directory`.
pub fn save_account(
    db: Db<'_>,
    directory: &str,
    credentials: &str,
    now: UnixMs,
) -> Result<(), StoreError> {
    db.prepare_cached(
        "INSERT INTO acme_accounts (directory, credentials, created_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (directory) DO UPDATE SET credentials = excluded.credentials",
    )?
    .execute(params![directory, credentials, now])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(domain: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec![domain.to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn reads_serial_and_validity_and_renews_two_thirds_in() {
        let (chain, key) = self_signed("shop.example");
        let c = Certificate::from_pem("Shop.Example", &chain, &key, 0).expect("parse");
        assert_eq!(c.domain, "shop.example");
        assert!(!c.serial.is_empty());
        assert!(c.not_after > c.not_before);
        let third = (c.not_after - c.not_before) / 3;
        assert!(c.renew_at() > c.not_before + third);
        assert!(c.renew_at() < c.not_after - third + 1000);
        assert!(!format!("{c:?}").contains("PRIVATE KEY"));
        // A backdated start counts from arrival: not due the moment it lands.
        let landed = Certificate {
            issued_at: c.not_before + third,
            ..c.clone()
        };
        assert!(landed.renew_at() > landed.issued_at);
    }

    #[test]
    fn refuses_what_is_not_a_certificate_or_a_key() {
        let (chain, key) = self_signed("shop.example");
        let not_pem = Certificate::from_pem("shop.example", "hello", &key, 0).expect_err("chain");
        assert!(not_pem.to_string().contains("no certificate"), "{not_pem}");
        let no_key = Certificate::from_pem("shop.example", &chain, "nope", 0).expect_err("key");
        assert!(no_key.to_string().contains("key"), "{no_key}");
    }

    #[test]
    fn kept_in_the_store_and_replaced_on_renewal() {
        let db = crate::store::test_db::TestDb::open();
        let (chain, key) = self_signed("shop.example");
        let first = Certificate::from_pem("shop.example", &chain, &key, 1).expect("parse");
        save(db.db(), &first).expect("save");
        let (chain2, key2) = self_signed("shop.example");
        let second = Certificate::from_pem("shop.example", &chain2, &key2, 2).expect("parse");
        save(db.db(), &second).expect("save again");
        let kept = all(db.db()).expect("all");
        assert_eq!(kept, vec![second]);
        assert_eq!(account(db.db(), "https://ca/dir").expect("read"), None);
        save_account(db.db(), "https://ca/dir", "{}", 3).expect("account");
        assert_eq!(
            account(db.db(), "https://ca/dir").expect("read").as_deref(),
            Some("{}")
        );
    }
}
