//! What a bounce or complaint report changes in the store: the send it names
//! (found by its signed return path, or by the quoted Message-ID when that
//! send went to the reported address), the address's suppression, the
//! contact's status and, for a complaint, the withdrawn marketing consent.
//! Applying the same report twice changes nothing the second time.

use super::compliance::{MARKETING_PURPOSE, SendRef, send_by_uid};
use super::links::{mailto_unsubscribe_send, return_path_send, uid_forms};
use super::reports::{Report, ReportKind, send_uid_of_message_id};
use crate::crm::privacy::{Consent, email_hash, record_consent};
use crate::store::db::{Db, OptionalRow, params};
use crate::store::ops::normalize_email;
use crate::store::{StoreError, UnixMs};

/// What applying one report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Recorded: the send it names (if found) and the contact (if any).
    Recorded {
        send: Option<SendRef>,
        contact_id: Option<i64>,
        address: String,
    },
    /// Known already: nothing changed.
    Known,
    /// Names no address funnel could act on.
    Unmatched,
}

/// The send a report names: its tagged return path first (signed, so it
/// cannot name another's send), else a quoted Message-ID of funnel's whose
/// send went to the reported recipient.
pub fn send_of(conn: Db<'_>, key: &[u8], report: &Report) -> Result<Option<SendRef>, StoreError> {
    if let Some(uid) = report
        .return_paths
        .iter()
        .find_map(|rp| return_path_send(key, rp))
    {
        for form in uid_forms(&uid) {
            if let Some(send) = send_by_uid(conn, &form)? {
                return Ok(Some(send));
            }
        }
    }
    let Some(uid) = report
        .message_id
        .as_deref()
        .and_then(send_uid_of_message_id)
    else {
        return Ok(None);
    };
    let send = send_by_uid(conn, uid)?;
    Ok(send.filter(|s| {
        report
            .recipient
            .as_deref()
            .is_some_and(|r| normalize_email(r) == normalize_email(&s.to))
    }))
}

/// Applies one report: the send, the suppression, the contact, the consent.
pub fn apply(conn: Db<'_>, key: &[u8], report: &Report, at: UnixMs) -> Result<Applied, StoreError> {
    let (reason, column, status_from) = match report.kind {
        ReportKind::Unsubscribe => return unsubscribe(conn, key, report, at),
        ReportKind::Bounce => ("bounced", "bounced_at", "('active', 'unsubscribed')"),
        ReportKind::Complaint => (
            "complained",
            "complained_at",
            "('active', 'unsubscribed', 'bounced')",
        ),
    };
    let send = send_of(conn, key, report)?;
    let Some(address) = report
        .recipient
        .clone()
        .or_else(|| send.as_ref().map(|s| s.to.clone()))
        .filter(|a| a.contains('@'))
    else {
        return Ok(Applied::Unmatched);
    };
    let hash = email_hash(&address);
    // A complaint outranks a bounce and an unsubscribe; an erasure outranks all.
    let prior: Option<String> = conn
        .prepare_cached("SELECT reason FROM suppressions WHERE email_hash = ?1")?
        .query_row(params![hash], |r| r.get(0))
        .optional()?;
    let rank = |r: &str| match r {
        "unsubscribed" => 1,
        "bounced" => 2,
        "complained" => 3,
        "forgotten" => 4,
        _ => 0,
    };
    let mut changed = false;
    if prior.as_deref().is_none_or(|p| rank(p) < rank(reason)) {
        conn.prepare_cached(
            "INSERT INTO suppressions (email_hash, reason, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (email_hash) DO UPDATE SET reason = excluded.reason",
        )?
        .execute(params![hash, reason, at])?;
        changed = true;
    }
    if let Some(s) = &send {
        let sql = format!(
            "UPDATE email_sends SET {column} = ?2{} WHERE id = ?1 AND {column} IS NULL",
            if report.kind == ReportKind::Bounce {
                ", status = 'bounced'"
            } else {
                ""
            }
        );
        changed |= conn.prepare_cached(&sql)?.execute(params![s.send_id, at])? > 0;
        if report.kind == ReportKind::Bounce {
            conn.prepare_cached(
                "UPDATE outbox SET status = 'bounced', last_error = ?2 \
                 WHERE send_id = ?1 AND status IN ('pending', 'sent')",
            )?
            .execute(params![s.send_id, report.detail])?;
        }
    }
    let contact_id = match send.as_ref().and_then(|s| s.contact_id) {
        Some(id) => Some(id),
        None => conn
            .prepare_cached("SELECT id FROM contacts WHERE email = ?1")?
            .query_row(params![normalize_email(&address)], |r| r.get(0))
            .optional()?,
    };
    if let Some(id) = contact_id {
        conn.prepare_cached(&format!(
            "UPDATE contacts SET status = ?2, updated_at = max(updated_at, ?3) \
             WHERE id = ?1 AND status IN {status_from}"
        ))?
        .execute(params![id, reason, at])?;
    }
    if !changed {
        return Ok(Applied::Known);
    }
    if report.kind == ReportKind::Complaint {
        record_consent(
            conn,
            &Consent {
                contact_id,
                email: &address,
                purpose: MARKETING_PURPOSE,
                granted: false,
                source: Some(report.source),
                wording: Some("marked the email as spam"),
            },
            at,
        )
        .map_err(|e| match e {
            crate::crm::CrmError::Store(s) => s,
            other => StoreError::Invalid(other.to_string()),
        })?;
    }
    Ok(Applied::Recorded {
        send,
        contact_id,
        address,
    })
}

/// Mail to a send's `mailto:` unsubscribe address: only its signed tag names
/// whom to unsubscribe (anyone can write a From line).
fn unsubscribe(
    conn: Db<'_>,
    key: &[u8],
    report: &Report,
    at: UnixMs,
) -> Result<Applied, StoreError> {
    for address in &report.return_paths {
        let Some(uid) = mailto_unsubscribe_send(key, address) else {
            continue;
        };
        for form in uid_forms(&uid) {
            if let Some(send) = send_by_uid(conn, &form)? {
                let newly = super::compliance::unsubscribe(conn, &send, "mailto", at)?;
                return Ok(if newly {
                    Applied::Recorded {
                        contact_id: send.contact_id,
                        address: send.to.clone(),
                        send: Some(send),
                    }
                } else {
                    Applied::Known
                });
            }
        }
    }
    Ok(Applied::Unmatched)
}
