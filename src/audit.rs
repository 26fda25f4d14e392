//! The audit log: who changed what, when, through which door (the command line,
//! the API, an approval), with what it was before and after where that applies.
//! Rows are written inside the transaction that makes the change, so a change
//! and its record commit together.

use serde::Serialize;
use serde_json::Value as Json;

use crate::store::db::{Db, params};
use crate::store::{StoreError, UnixMs};

/// One recorded change.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<String>,
    pub details: Json,
    pub recorded_at: UnixMs,
}

/// Records a change.
pub fn record(
    db: Db<'_>,
    actor: &str,
    action: &str,
    entity: &str,
    entity_id: Option<&str>,
    details: &Json,
    at: UnixMs,
) -> Result<(), StoreError> {
    db.prepare_cached(
        "INSERT INTO audit_log (actor, action, entity, entity_id, details, recorded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![actor, action, entity, entity_id, details, at])?;
    Ok(())
}

/// The newest entries at or after `since`, of one actor if given, at most
/// `limit`, newest first (through the index on time).
pub fn list(
    db: Db<'_>,
    since: UnixMs,
    actor: Option<&str>,
    limit: usize,
) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT id, actor, action, entity, entity_id, details, recorded_at FROM audit_log \
         WHERE recorded_at >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR actor = ?2) \
         ORDER BY recorded_at DESC, id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![since, actor, i64::try_from(limit).unwrap_or(i64::MAX)],
        entry,
    )?;
    rows.collect()
}

fn entry(r: crate::store::db::Row<'_>) -> Result<Entry, StoreError> {
    Ok(Entry {
        id: r.get(0)?,
        actor: r.get(1)?,
        action: r.get(2)?,
        entity: r.get(3)?,
        entity_id: r.get(4)?,
        details: r.get(5)?,
        recorded_at: r.get(6)?,
    })
}

/// The newest entries about one entity (a contact's uid, a campaign's key),
/// at most `limit`, newest first (through the index on entity).
pub fn for_entity(
    db: Db<'_>,
    entity: &str,
    entity_id: &str,
    limit: usize,
) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT id, actor, action, entity, entity_id, details, recorded_at FROM audit_log \
         WHERE entity = ?1 AND entity_id = ?2 ORDER BY recorded_at DESC, id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![entity, entity_id, i64::try_from(limit).unwrap_or(i64::MAX)],
        entry,
    )?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TestDb;
    use serde_json::json;

    #[test]
    fn entries_come_back_newest_first_by_time_and_actor() {
        let store = TestDb::open();
        let db = store.db();
        record(
            db,
            "ada",
            "create",
            "token",
            Some("ci"),
            &json!({"role": "editor"}),
            10,
        )
        .expect("r");
        record(
            db,
            "bob",
            "edit",
            "contact",
            Some("c1"),
            &json!({"before": {"name": "A"}, "after": {"name": "B"}}),
            20,
        )
        .expect("r");
        record(db, "ada", "revoke", "token", Some("ci"), &json!({}), 30).expect("r");
        let all = list(db, 0, None, 10).expect("list");
        assert_eq!(
            all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["revoke", "edit", "create"]
        );
        assert_eq!(all[1].details["after"]["name"], "B");
        let ada = list(db, 15, Some("ada"), 10).expect("list");
        assert_eq!(ada.len(), 1);
        assert_eq!(ada[0].action, "revoke");
        let token = for_entity(db, "token", "ci", 10).expect("entity");
        assert_eq!(
            token.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["revoke", "create"]
        );
        assert!(
            for_entity(db, "contact", "ci", 10)
                .expect("entity")
                .is_empty()
        );
    }
}
