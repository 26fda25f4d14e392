//! The outbox: one stored row per idempotency key (a second is refused), and the dev
//! outbox folder that receives each message as `<key>.eml`, written to a temporary
//! file and renamed, so a reader never sees half a message and a re-delivery after a
//! crash rewrites the same file instead of adding one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::store::db::{Db, params};

use super::{Rendered, file_key};
use crate::store::{StoreError, UnixMs};

/// Queues a rendered message under `key`, with its send record. Returns false when
/// a message with this key is queued already (nothing is added then).
/// The send's `uid` is the one its links were signed with.
#[allow(clippy::too_many_arguments)]
pub fn enqueue(
    conn: Db<'_>,
    key: &str,
    send_uid: &str,
    r: &Rendered,
    eml: &str,
    contact_id: Option<i64>,
    execution_id: Option<i64>,
    at: UnixMs,
) -> Result<bool, StoreError> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM outbox WHERE idempotency_key = ?1)")?
        .query_row(params![key], |row| row.get(0))?;
    if exists {
        return Ok(false);
    }
    let send_id: i64 = conn
        .prepare_cached(
            "INSERT INTO email_sends (uid, contact_id, execution_id, template_id, status, created_at) \
             VALUES (?1, ?2, ?3, ?4, 'queued', ?5) RETURNING id",
        )?
        .query_row(
            params![send_uid, contact_id, execution_id, r.template, at],
            |row| row.get(0),
        )?;
    conn.prepare_cached(
        "INSERT INTO outbox (idempotency_key, send_id, to_address, subject, message, status, \
         next_attempt_at, created_at, marketing, return_path) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?7, ?8)",
    )?
    .execute(params![
        key,
        send_id,
        r.to,
        r.subject,
        eml,
        at,
        i64::from(r.marketing),
        r.return_path
    ])?;
    Ok(true)
}

/// Queues the message of a send frozen beforehand (a campaign's recipient) and
/// marks the send queued. Returns false when its key is queued already.
pub fn enqueue_for_send(
    conn: Db<'_>,
    key: &str,
    send_id: i64,
    r: &Rendered,
    eml: &str,
    at: UnixMs,
) -> Result<bool, StoreError> {
    let added =
        conn.prepare_cached(
            "INSERT INTO outbox (idempotency_key, send_id, to_address, subject, message, status, \
             next_attempt_at, created_at, marketing, return_path) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?7, ?8) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )?
        .execute(params![
            key,
            send_id,
            r.to,
            r.subject,
            eml,
            at,
            i64::from(r.marketing),
            r.return_path
        ])? > 0;
    conn.prepare_cached(
        "UPDATE email_sends SET status = 'queued', template_id = ?2 WHERE id = ?1 AND status = 'planned'",
    )?
    .execute(params![send_id, r.template])?;
    Ok(added)
}

pub use crate::store::claims::{
    ClaimedMessage, claim_outbox as claim, renew_outbox_leases as renew_leases,
};

/// Marks messages delivered, with their send records.
pub fn mark_sent(conn: Db<'_>, ids: &[i64], at: UnixMs) -> Result<(), StoreError> {
    let mut outbox =
        conn.prepare_cached("UPDATE outbox SET status = 'sent', sent_at = ?2 WHERE id = ?1")?;
    let mut sends = conn.prepare_cached(
        "UPDATE email_sends SET status = 'sent', sent_at = ?2 \
         WHERE id = (SELECT send_id FROM outbox WHERE id = ?1)",
    )?;
    for id in ids {
        outbox.execute(params![id, at])?;
        sends.execute(params![id, at])?;
    }
    Ok(())
}

const HOUR_MS: UnixMs = 3_600_000;

/// Emails handed over in the clock hour of `at` (for `email.hourly_limit`).
pub fn sent_this_hour(conn: Db<'_>, at: UnixMs) -> Result<i64, StoreError> {
    use crate::store::db::OptionalRow as _;
    Ok(conn
        .prepare_cached("SELECT sent FROM email_hourly WHERE hour = ?1")?
        .query_row(params![at / HOUR_MS], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Counts `n` emails handed over in the clock hour of `at`; hours older than
/// a day are dropped, so the table stays a day long.
pub fn count_sent(conn: Db<'_>, at: UnixMs, n: usize) -> Result<(), StoreError> {
    if n == 0 {
        return Ok(());
    }
    let hour = at / HOUR_MS;
    conn.prepare_cached(
        "INSERT INTO email_hourly (hour, sent) VALUES (?1, ?2) \
         ON CONFLICT (hour) DO UPDATE SET sent = email_hourly.sent + excluded.sent",
    )?
    .execute(params![hour, i64::try_from(n).unwrap_or(i64::MAX)])?;
    conn.prepare_cached("DELETE FROM email_hourly WHERE hour < ?1")?
        .execute(params![hour - 24])?;
    Ok(())
}

/// The file a message with this key is written to.
pub fn eml_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{}.eml", file_key(key)))
}

/// Writes a message into the dev outbox folder: temporary file, fsync, rename.
pub fn write_eml(dir: &Path, key: &str, message: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = eml_path(dir, key);
    let tmp = dir.join(format!(".{}.tmp", file_key(key)));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(message.as_bytes())?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}
