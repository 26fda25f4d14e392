//! Merging two contacts into one, and undoing it. The merge moves the other
//! contact's history (activities, deals, score adjustments, executions, sends,
//! analytics) to the kept one, adds its tags, lists and the fields the kept one
//! lacks, and deletes it; the merge log keeps a snapshot of exactly what moved, so
//! `unmerge` restores both contacts as they were.

use crate::store::db::{Db, OptionalRow, params};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::CrmError;
use crate::store::UnixMs;

/// Tables whose rows move with their `contact_id`.
const MOVED: &[&str] = &[
    "activities",
    "deals",
    "score_adjustments",
    "executions",
    "email_sends",
    "analytics_events",
];

/// What a merge changed, kept in `contact_merges.snapshot`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// The merged contact's row, column by column.
    pub contact: serde_json::Map<String, Json>,
    /// Ids moved, per table.
    pub moved: Vec<(String, Vec<i64>)>,
    /// The merged contact's tags, lists and fields.
    pub tags: Vec<(String, i64)>,
    pub lists: Vec<(String, i64)>,
    pub fields: Vec<(String, Option<String>, Option<f64>)>,
    /// What the kept contact gained (and loses again on unmerge).
    pub added_tags: Vec<String>,
    pub added_lists: Vec<String>,
    pub added_fields: Vec<String>,
}

/// Merges `other` into `keep`; returns the merge log's id.
pub fn merge(conn: Db<'_>, keep: i64, other: i64, at: UnixMs) -> Result<i64, CrmError> {
    if keep == other {
        return Err(CrmError::Invalid(
            "a contact cannot be merged into itself".into(),
        ));
    }
    let mut snap = Snapshot {
        contact: row_of(conn, other)?,
        ..Snapshot::default()
    };
    exists(conn, keep)?;
    for table in MOVED {
        let ids = ids(
            conn,
            &format!("SELECT id FROM {table} WHERE contact_id = ?1"),
            other,
        )?;
        conn.execute(
            &format!("UPDATE {table} SET contact_id = ?1 WHERE contact_id = ?2"),
            params![keep, other],
        )?;
        snap.moved.push(((*table).to_string(), ids));
    }
    let mut stmt = conn.prepare("SELECT tag, added_at FROM contact_tags WHERE contact_id = ?1")?;
    snap.tags = stmt
        .query_map(params![other], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (tag, added) in &snap.tags {
        if conn.execute(
            "INSERT INTO contact_tags (contact_id, tag, added_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![keep, tag, added],
        )? > 0
        {
            snap.added_tags.push(tag.clone());
        }
    }
    let mut stmt =
        conn.prepare("SELECT list_id, added_at FROM list_members WHERE contact_id = ?1")?;
    snap.lists = stmt
        .query_map(params![other], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (list, added) in &snap.lists {
        if conn.execute(
            "INSERT INTO list_members (list_id, contact_id, added_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![list, keep, added],
        )? > 0
        {
            snap.added_lists.push(list.clone());
        }
    }
    let mut stmt = conn
        .prepare("SELECT field, value_text, value_num FROM contact_fields WHERE contact_id = ?1")?;
    snap.fields = stmt
        .query_map(params![other], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (field, text, num) in &snap.fields {
        if conn.execute(
            "INSERT INTO contact_fields (contact_id, field, value_text, value_num) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT DO NOTHING",
            params![keep, field, text, num],
        )? > 0
        {
            snap.added_fields.push(field.clone());
        }
    }
    // The kept contact fills in what it lacks; scores add up (engagement is
    // relative to one epoch for all contacts, so the sum is exact).
    conn.execute(
        "UPDATE contacts SET \
           name = coalesce(name, (SELECT name FROM contacts WHERE id = ?2)), \
           phone = coalesce(phone, (SELECT phone FROM contacts WHERE id = ?2)), \
           engagement = engagement + (SELECT engagement FROM contacts WHERE id = ?2), \
           adjustments = adjustments + (SELECT adjustments FROM contacts WHERE id = ?2), \
           last_activity = max(coalesce(last_activity, 0), coalesce((SELECT last_activity FROM contacts WHERE id = ?2), 0)), \
           updated_at = ?3 \
         WHERE id = ?1",
        params![keep, other, at],
    )?;
    conn.execute("DELETE FROM contacts WHERE id = ?1", params![other])?;
    let snapshot = serde_json::to_string(&snap).map_err(|e| CrmError::Invalid(e.to_string()))?;
    Ok(conn
        .prepare_cached(
            "INSERT INTO contact_merges (kept_id, merged_id, snapshot, merged_at) \
             VALUES (?1, ?2, ?3, ?4) RETURNING id",
        )?
        .query_row(params![keep, other, snapshot, at], |r| r.get(0))?)
}

/// Undoes the latest merge into `keep` of the contact with id `merged` (or the
/// latest merge into `keep` when `merged` is `None`); returns the restored id.
pub fn unmerge(conn: Db<'_>, keep: i64, merged: Option<i64>, at: UnixMs) -> Result<i64, CrmError> {
    let (log, other, text): (i64, i64, String) = conn
        .prepare(
            "SELECT id, merged_id, snapshot FROM contact_merges WHERE kept_id = ?1 \
             AND undone_at IS NULL AND (CAST(?2 AS BIGINT) IS NULL OR merged_id = ?2) ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![keep, merged], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?
        .ok_or_else(|| CrmError::Invalid("no merge into this contact to undo".into()))?;
    let snap: Snapshot =
        serde_json::from_str(&text).map_err(|e| CrmError::Invalid(e.to_string()))?;
    // The contact row comes back with its id and uid, so everything pointing to
    // it points again.
    let cols: Vec<&String> = snap.contact.keys().collect();
    let sql = format!(
        "INSERT INTO contacts ({}) VALUES ({})",
        cols.iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        (1..=cols.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let values: Vec<crate::store::db::Value<'static>> = snap.contact.values().map(to_sql).collect();
    conn.execute(&sql, &crate::store::db::refs(&values))?;
    for (table, ids) in &snap.moved {
        if !MOVED.contains(&table.as_str()) {
            continue;
        }
        let mut stmt = conn.prepare(&format!(
            "UPDATE {table} SET contact_id = ?1 WHERE id = ?2 AND contact_id = ?3"
        ))?;
        for id in ids {
            stmt.execute(params![other, id, keep])?;
        }
    }
    for (tag, added) in &snap.tags {
        conn.execute(
            "INSERT INTO contact_tags (contact_id, tag, added_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![other, tag, added],
        )?;
    }
    for tag in &snap.added_tags {
        conn.execute(
            "DELETE FROM contact_tags WHERE contact_id = ?1 AND tag = ?2",
            params![keep, tag],
        )?;
    }
    for (list, added) in &snap.lists {
        conn.execute(
            "INSERT INTO list_members (list_id, contact_id, added_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![list, other, added],
        )?;
    }
    for list in &snap.added_lists {
        conn.execute(
            "DELETE FROM list_members WHERE contact_id = ?1 AND list_id = ?2",
            params![keep, list],
        )?;
    }
    for (field, text, num) in &snap.fields {
        conn.execute(
            "INSERT INTO contact_fields (contact_id, field, value_text, value_num) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT DO NOTHING",
            params![other, field, text, num],
        )?;
    }
    for field in &snap.added_fields {
        conn.execute(
            "DELETE FROM contact_fields WHERE contact_id = ?1 AND field = ?2",
            params![keep, field],
        )?;
    }
    conn.execute(
        "UPDATE contacts SET engagement = engagement - (SELECT engagement FROM contacts WHERE id = ?2), \
           adjustments = adjustments - (SELECT adjustments FROM contacts WHERE id = ?2), updated_at = ?3 \
         WHERE id = ?1",
        params![keep, other, at],
    )?;
    conn.execute(
        "UPDATE contact_merges SET undone_at = ?2 WHERE id = ?1",
        params![log, at],
    )?;
    Ok(other)
}

fn exists(conn: Db<'_>, id: i64) -> Result<(), CrmError> {
    conn.prepare_cached("SELECT 1 FROM contacts WHERE id = ?1")?
        .query_row(params![id], |_| Ok(()))
        .optional()?
        .ok_or(CrmError::NoContact(id))
}

fn ids(conn: Db<'_>, sql: &str, id: i64) -> Result<Vec<i64>, CrmError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params![id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every column of a contact row, as JSON.
fn row_of(conn: Db<'_>, id: i64) -> Result<serde_json::Map<String, Json>, CrmError> {
    let mut stmt = conn.prepare("SELECT * FROM contacts WHERE id = ?1")?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    stmt.query_row(params![id], |r| {
        let mut m = serde_json::Map::new();
        for (i, n) in names.iter().enumerate() {
            // PostgreSQL's search vector is generated from the other columns.
            if n == "search" {
                continue;
            }
            let v: crate::store::db::Value<'static> = r.get(i)?;
            m.insert(n.clone(), super::sql_json(v));
        }
        Ok(m)
    })
    .optional()?
    .ok_or(CrmError::NoContact(id))
}

fn to_sql(v: &Json) -> crate::store::db::Value<'static> {
    type Sql = crate::store::db::Value<'static>;
    match v {
        Json::Null => Sql::Null,
        Json::Number(n) => n
            .as_i64()
            .map(Sql::Int)
            .unwrap_or_else(|| Sql::Real(n.as_f64().unwrap_or(0.0))),
        Json::String(s) => Sql::Text(s.clone().into()),
        other => Sql::Text(other.to_string().into()),
    }
}
