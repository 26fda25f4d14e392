//! Privacy: the consent ledger, suppression of forgotten people, everything held
//! about a person as JSON, and forgetting a person everywhere their data was
//! copied.

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use super::CrmError;
use crate::store::UnixMs;
use crate::store::ops::normalize_email;

/// The SHA-256 of a normalized email, hex: how suppressions and the consent
/// ledger name a person without keeping their address.
pub fn email_hash(email: &str) -> String {
    Sha256::digest(normalize_email(email).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether this address was forgotten (and may not be re-added without consent).
pub fn is_suppressed(conn: &Connection, email: &str) -> Result<bool, CrmError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM suppressions WHERE email_hash = ?1)")?
        .query_row([email_hash(email)], |r| r.get(0))?)
}

/// Consent given or withdrawn for a purpose, where, and with what text.
#[derive(Debug, Clone)]
pub struct Consent<'a> {
    pub contact_id: Option<i64>,
    pub email: &'a str,
    pub purpose: &'a str,
    pub granted: bool,
    pub source: Option<&'a str>,
    pub wording: Option<&'a str>,
}

/// Records consent in the ledger; giving consent again lifts a suppression.
pub fn record_consent(conn: &Connection, c: &Consent<'_>, at: UnixMs) -> Result<(), CrmError> {
    let hash = email_hash(c.email);
    conn.prepare_cached(
        "INSERT INTO consent_ledger (contact_id, email_hash, purpose, granted, source, wording, recorded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![c.contact_id, hash, c.purpose, c.granted, c.source, c.wording, at])?;
    if c.granted {
        conn.prepare_cached("DELETE FROM suppressions WHERE email_hash = ?1")?
            .execute([&hash])?;
    }
    Ok(())
}
