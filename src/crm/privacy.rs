//! Privacy: the consent ledger, suppression of forgotten people, everything held
//! about a person as JSON, and forgetting a person everywhere their data was
//! copied.

use crate::store::db::{Db, OptionalRow, params};
use sha2::{Digest, Sha256};

use super::CrmError;
use crate::store::UnixMs;
use crate::store::ops::normalize_email;

/// The SHA-256 of a normalized email, hex: how suppressions and the consent
/// ledger name a person without keeping their address.
pub fn email_hash(email: &str) -> String {
    hex::encode(Sha256::digest(normalize_email(email).as_bytes()))
}

/// Whether this address was forgotten (and may not be re-added without consent).
/// Other suppressions (an unsubscribe, a bounce) stop email, not the person.
pub fn is_forgotten(conn: Db<'_>, email: &str) -> Result<bool, CrmError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM suppressions WHERE email_hash = ?1 AND reason = 'forgotten')",
        )?
        .query_row(params![email_hash(email)], |r| r.get(0))?)
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

/// Every forgotten address hash (for checking many addresses at once).
pub fn forgotten_hashes(conn: Db<'_>) -> Result<std::collections::HashSet<String>, CrmError> {
    let mut stmt =
        conn.prepare("SELECT email_hash FROM suppressions WHERE reason = 'forgotten'")?;
    let rows = stmt.query_map(params![], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records consent in the ledger; giving consent again lifts a suppression.
pub fn record_consent(conn: Db<'_>, c: &Consent<'_>, at: UnixMs) -> Result<(), CrmError> {
    let hash = email_hash(c.email);
    conn.prepare_cached(
        "INSERT INTO consent_ledger (contact_id, email_hash, purpose, granted, source, wording, recorded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![c.contact_id, hash, c.purpose, c.granted, c.source, c.wording, at])?;
    if c.granted {
        conn.prepare_cached("DELETE FROM suppressions WHERE email_hash = ?1")?
            .execute(params![&hash])?;
    }
    Ok(())
}

/// What forgetting a person removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Forgotten {
    pub email: String,
    pub activities: usize,
    pub executions: usize,
    pub outbox: usize,
    pub other_rows: usize,
}

/// Erases a person everywhere the store copied them: the contact row and what
/// cascades from it (fields, tags, lists, activities, deals, scores), executions
/// about them or mentioning their address (with step outputs and timers), outbox
/// rows, analytics, audit entries, merge logs and the search index, with SQLite's
/// secure delete on so that freed content is zeroed. Leaves a hashed suppression so
/// that no import or form re-adds them without new consent. The `.eml` files of the
/// dev outbox are files: [`scrub_outbox_dir`] removes them after the commit.
pub fn forget(conn: Db<'_>, id: i64, at: UnixMs) -> Result<Forgotten, CrmError> {
    let (email, uid): (String, String) = conn
        .prepare_cached("SELECT email, uid FROM contacts WHERE id = ?1")?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(CrmError::NoContact(id))?;
    crate::store::tuning::with_secure_delete(conn, || erase(conn, id, &email, &uid, at))
}

/// A field's value is in one of two columns (text or number): the export shows the
/// one that is set as `value`.
fn one_value(rows: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    rows.into_iter()
        .map(|mut row| {
            if let Some(obj) = row.as_object_mut() {
                let num = obj.remove("value_num").unwrap_or_default();
                if obj.get("value").is_none_or(serde_json::Value::is_null) {
                    obj.insert("value".into(), num);
                }
            }
            row
        })
        .collect()
}

fn erase(conn: Db<'_>, id: i64, email: &str, uid: &str, at: UnixMs) -> Result<Forgotten, CrmError> {
    let needle = email.to_lowercase();
    let mut out = Forgotten {
        email: email.to_string(),
        ..Forgotten::default()
    };
    out.activities = conn.execute("DELETE FROM activities WHERE contact_id = ?1", params![id])?;
    out.executions = conn.execute(
        "DELETE FROM executions WHERE contact_id = ?1 \
           OR instr(lower(trigger_data), ?2) > 0 OR instr(lower(state), ?2) > 0 \
           OR instr(lower(error), ?2) > 0 \
           OR id IN (SELECT execution_id FROM step_runs \
                     WHERE instr(lower(output), ?2) > 0 \
                        OR instr(lower(error), ?2) > 0)",
        params![id, needle],
    )?;
    out.outbox = conn.execute(
        "DELETE FROM outbox WHERE lower(to_address) = ?1 OR instr(lower(message), ?1) > 0",
        params![&needle],
    )?;
    let id_and_needle = params![id, needle];
    for (sql, values) in [
        (
            "DELETE FROM timers WHERE instr(lower(payload), ?1) > 0",
            params![needle],
        ),
        (
            "DELETE FROM analytics_events WHERE contact_id = ?1 OR instr(lower(data), ?2) > 0",
            id_and_needle,
        ),
        ("DELETE FROM email_sends WHERE contact_id = ?1", params![id]),
        (
            "DELETE FROM hook_deliveries WHERE contact_id = ?1 OR instr(lower(payload), ?2) > 0",
            id_and_needle,
        ),
        (
            "DELETE FROM contact_merges WHERE kept_id = ?1 OR merged_id = ?1 \
             OR instr(lower(snapshot), ?2) > 0",
            id_and_needle,
        ),
        (
            "DELETE FROM audit_log WHERE entity_id = ?1 OR instr(lower(details), ?2) > 0",
            params![uid, needle],
        ),
    ] {
        out.other_rows += conn.prepare(sql)?.execute(values)?;
    }
    conn.execute("DELETE FROM contacts WHERE id = ?1", params![id])?;
    // The search index: the delete queued the old values; index them out, then
    // merge the index so that no old segment keeps the terms.
    crate::store::search::purge_erased(conn)?;
    conn.prepare_cached(
        "INSERT INTO suppressions (email_hash, reason, created_at) VALUES (?1, 'forgotten', ?2) \
         ON CONFLICT (email_hash) DO UPDATE SET reason = 'forgotten'",
    )?
    .execute(params![email_hash(email), at])?;
    Ok(out)
}

/// Deletes the dev outbox's `.eml` files that mention the address (any case).
/// Returns how many it deleted.
pub fn scrub_outbox_dir(dir: &std::path::Path, email: &str) -> std::io::Result<usize> {
    let needle = email.to_lowercase();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        if !path.is_file() {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&path)?).to_lowercase();
        if text.contains(&needle) {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Everything held about a person, as JSON: the contact, its timeline, deals,
/// consent records, executions about them and the emails sent to them.
pub fn export_data(conn: Db<'_>, id: i64) -> Result<serde_json::Value, CrmError> {
    use serde_json::json;
    let email: String = conn
        .prepare_cached("SELECT email FROM contacts WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()?
        .ok_or(CrmError::NoContact(id))?;
    let rows = |sql: &str,
                p: &[&dyn crate::store::db::ToValue]|
     -> Result<Vec<serde_json::Value>, CrmError> {
        let mut stmt = conn.prepare(sql)?;
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        let mut q = stmt.query(p)?;
        while let Some(r) = q.next()? {
            let mut obj = serde_json::Map::new();
            for (i, n) in names.iter().enumerate() {
                let v: crate::store::db::Value<'static> = r.get(i)?;
                // Stored JSON (activity data, trigger data) shows as JSON.
                let v = match super::sql_json(v) {
                    serde_json::Value::String(t) => serde_json::from_str(&t)
                        .ok()
                        .filter(|v: &serde_json::Value| v.is_object() || v.is_array())
                        .unwrap_or(serde_json::Value::String(t)),
                    other => other,
                };
                obj.insert(n.clone(), v);
            }
            out.push(serde_json::Value::Object(obj));
        }
        Ok(out)
    };
    Ok(json!({
        "contact": rows("SELECT uid, email, name, phone, company_domain, source_site, source_component, \
                         source_workflow, first_touch, last_touch, status, stage, created_at, updated_at, \
                         last_activity FROM contacts WHERE id = ?1", &[&id])?,
        "fields": one_value(rows("SELECT field, value_text AS value, value_num FROM contact_fields WHERE contact_id = ?1", &[&id])?),
        "tags": rows("SELECT tag, added_at FROM contact_tags WHERE contact_id = ?1", &[&id])?,
        "lists": rows("SELECT list_id, added_at FROM list_members WHERE contact_id = ?1", &[&id])?,
        "activities": rows("SELECT type, subject, data, source, occurred_at FROM activities WHERE contact_id = ?1 ORDER BY occurred_at", &[&id])?,
        "score_adjustments": rows("SELECT points, reason, created_at FROM score_adjustments WHERE contact_id = ?1", &[&id])?,
        "deals": rows("SELECT uid, pipeline, stage, value, status, created_at FROM deals WHERE contact_id = ?1", &[&id])?,
        "consent": rows("SELECT purpose, granted, source, wording, recorded_at FROM consent_ledger WHERE email_hash = ?1 ORDER BY recorded_at", &[&email_hash(&email)])?,
        "executions": rows("SELECT uid, workflow_id, status, trigger_data, started_at, completed_at FROM executions WHERE contact_id = ?1 ORDER BY id", &[&id])?,
        "emails": rows("SELECT subject, status, created_at, sent_at FROM outbox WHERE lower(to_address) = lower(?1) ORDER BY id", &[&email])?,
    }))
}
