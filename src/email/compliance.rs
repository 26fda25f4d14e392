//! What the law and the mailbox providers ask of a sender, at the moment of
//! sending and after: suppressed addresses get no mail (no marketing after an
//! unsubscribe; nothing at all after a hard bounce, a complaint or an erasure),
//! an unsubscribe is effective at once (contact status, suppression and the
//! withdrawn consent in one transaction), and a bounce marks its send, its
//! contact and its address.

use crate::crm::privacy::{Consent, email_hash, record_consent};
use crate::store::db::{Db, OptionalRow, params};
use crate::store::{StoreError, UnixMs};

/// The consent purpose an unsubscribe withdraws.
pub const MARKETING_PURPOSE: &str = "email_marketing";

/// Why an address gets no mail, if it gets none: the suppression's reason.
pub fn suppression(conn: Db<'_>, address: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT reason FROM suppressions WHERE email_hash = ?1")?
        .query_row(params![email_hash(address)], |r| r.get(0))
        .optional()
}

/// Whether a suppression for `reason` stops this message: an unsubscribe stops
/// marketing only (a receipt or a password reset still goes); the rest stop all.
pub fn blocks(reason: &str, marketing: bool) -> bool {
    marketing || reason != "unsubscribed"
}

/// One queued or sent message, as its links and reports name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRef {
    pub send_id: i64,
    pub uid: String,
    pub contact_id: Option<i64>,
    pub template: String,
    pub to: String,
    pub status: String,
}

/// The send with public id `uid` (from a signed link).
pub fn send_by_uid(conn: Db<'_>, uid: &str) -> Result<Option<SendRef>, StoreError> {
    conn.prepare_cached(
        "SELECT s.id, s.uid, s.contact_id, s.template_id, o.to_address, s.status \
         FROM email_sends s JOIN outbox o ON o.send_id = s.id WHERE s.uid = ?1",
    )?
    .query_row(params![uid], send_ref)
    .optional()
}

/// A [`SendRef`] from a row of `s.id, s.uid, s.contact_id, s.template_id,
/// o.to_address, s.status`.
fn send_ref(r: crate::store::db::Row<'_>) -> Result<SendRef, StoreError> {
    Ok(SendRef {
        send_id: r.get(0)?,
        uid: r.get(1)?,
        contact_id: r.get(2)?,
        template: r.get(3)?,
        to: r.get(4)?,
        status: r.get(5)?,
    })
}

/// The queued message of a send, as stored (for view in browser).
pub fn message_of(conn: Db<'_>, send_id: i64) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT message FROM outbox WHERE send_id = ?1")?
        .query_row(params![send_id], |r| r.get(0))
        .optional()
}

/// Marks a send opened; true the first time.
pub fn mark_opened(conn: Db<'_>, send_id: i64, at: UnixMs) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE email_sends SET opened_at = ?2 WHERE id = ?1 AND opened_at IS NULL",
        )?
        .execute(params![send_id, at])?
        > 0)
}

/// Marks a send clicked; true the first time.
pub fn mark_clicked(conn: Db<'_>, send_id: i64, at: UnixMs) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE email_sends SET clicked_at = ?2 WHERE id = ?1 AND clicked_at IS NULL",
        )?
        .execute(params![send_id, at])?
        > 0)
}

/// Unsubscribes the recipient of `send` from marketing email: their contact's
/// status, a suppression of their address and the withdrawn consent, with
/// `source` saying how (`one-click`, `unsubscribe page`). Returns false when they
/// were unsubscribed already (nothing is recorded twice).
pub fn unsubscribe(
    conn: Db<'_>,
    send: &SendRef,
    source: &str,
    at: UnixMs,
) -> Result<bool, StoreError> {
    let added = conn
        .prepare_cached(
            "INSERT INTO suppressions (email_hash, reason, created_at) VALUES (?1, 'unsubscribed', ?2) \
             ON CONFLICT (email_hash) DO NOTHING",
        )?
        .execute(params![email_hash(&send.to), at])?
        > 0;
    conn.prepare_cached(
        "UPDATE email_sends SET unsubscribed_at = ?2 WHERE id = ?1 AND unsubscribed_at IS NULL",
    )?
    .execute(params![send.send_id, at])?;
    if let Some(id) = send.contact_id {
        conn.prepare_cached(
            "UPDATE contacts SET status = 'unsubscribed', updated_at = max(updated_at, ?2) \
             WHERE id = ?1 AND status = 'active'",
        )?
        .execute(params![id, at])?;
    }
    if added {
        record_consent(
            conn,
            &Consent {
                contact_id: send.contact_id,
                email: &send.to,
                purpose: MARKETING_PURPOSE,
                granted: false,
                source: Some(source),
                wording: Some(&format!("unsubscribe link of email {}", send.uid)),
            },
            at,
        )
        .map_err(|e| match e {
            crate::crm::CrmError::Store(s) => s,
            other => StoreError::Invalid(other.to_string()),
        })?;
    }
    Ok(added)
}

/// Marks the send of outbox message `outbox_id` bounced (a permanent refusal),
/// its contact bounced and its address suppressed. Returns the send.
pub fn bounce(
    conn: Db<'_>,
    outbox_id: i64,
    error: &str,
    at: UnixMs,
) -> Result<Option<SendRef>, StoreError> {
    conn.prepare_cached("UPDATE outbox SET status = 'bounced', last_error = ?2 WHERE id = ?1")?
        .execute(params![outbox_id, error])?;
    let send: Option<SendRef> = conn
        .prepare_cached(
            "SELECT s.id, s.uid, s.contact_id, s.template_id, o.to_address, s.status \
             FROM outbox o JOIN email_sends s ON s.id = o.send_id WHERE o.id = ?1",
        )?
        .query_row(params![outbox_id], send_ref)
        .optional()?;
    let Some(send) = send else {
        return Ok(None);
    };
    conn.prepare_cached(
        "UPDATE email_sends SET status = 'bounced', bounced_at = ?2 WHERE id = ?1",
    )?
    .execute(params![send.send_id, at])?;
    conn.prepare_cached(
        "INSERT INTO suppressions (email_hash, reason, created_at) VALUES (?1, 'bounced', ?2) \
         ON CONFLICT (email_hash) DO UPDATE SET reason = CASE WHEN suppressions.reason = 'forgotten' \
         THEN 'forgotten' ELSE 'bounced' END",
    )?
    .execute(params![email_hash(&send.to), at])?;
    if let Some(id) = send.contact_id {
        conn.prepare_cached(
            "UPDATE contacts SET status = 'bounced', updated_at = max(updated_at, ?2) \
             WHERE id = ?1 AND status IN ('active', 'unsubscribed')",
        )?
        .execute(params![id, at])?;
    }
    Ok(Some(send))
}

/// Marks claimed messages whose address is suppressed as such, with their
/// sends; returns the ids of those that may go.
pub fn drop_suppressed(
    conn: Db<'_>,
    claimed: &[(i64, String, bool)],
) -> Result<Vec<i64>, StoreError> {
    let mut go = Vec::with_capacity(claimed.len());
    for (id, to, marketing) in claimed {
        match suppression(conn, to)? {
            Some(reason) if blocks(&reason, *marketing) => {
                conn.prepare_cached(
                    "UPDATE outbox SET status = 'suppressed', last_error = ?2 WHERE id = ?1",
                )?
                .execute(params![id, format!("the address is suppressed ({reason})")])?;
                conn.prepare_cached(
                    "UPDATE email_sends SET status = 'suppressed' \
                     WHERE id = (SELECT send_id FROM outbox WHERE id = ?1)",
                )?
                .execute(params![id])?;
            }
            _ => go.push(*id),
        }
    }
    Ok(go)
}

/// Puts a message back for another try at `next_at` after a transient failure,
/// or gives it up (`failed`) after `max_attempts`.
pub fn retry_later(
    conn: Db<'_>,
    outbox_id: i64,
    error: &str,
    next_at: UnixMs,
    max_attempts: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE outbox SET last_error = ?2, next_attempt_at = ?3, \
         status = CASE WHEN attempts >= ?4 THEN 'failed' ELSE status END WHERE id = ?1",
    )?
    .execute(params![outbox_id, error, next_at, max_attempts])?;
    conn.prepare_cached(
        "UPDATE email_sends SET status = 'failed' WHERE id = (SELECT send_id FROM outbox WHERE id = ?1) \
         AND EXISTS (SELECT 1 FROM outbox WHERE id = ?1 AND status = 'failed')",
    )?
    .execute(params![outbox_id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::blocks;

    #[test]
    fn an_unsubscribe_stops_marketing_only_the_rest_stop_everything() {
        assert!(blocks("unsubscribed", true));
        assert!(!blocks("unsubscribed", false));
        for reason in ["bounced", "complained", "forgotten"] {
            assert!(blocks(reason, true) && blocks(reason, false), "{reason}");
        }
    }
}
