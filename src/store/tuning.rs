//! Connection settings a job changes for its own length and gives back after: the
//! SQLite pragmas that make an erasure zero freed bytes and a bulk import sort in
//! files with a larger cache. PostgreSQL manages its memory and its freed space
//! itself (a privacy erasure vacuums afterwards: `Store::scrub_old_versions`), so
//! there they change nothing.

use super::StoreError;
use super::db::{Db, params};

/// Runs `f` with SQLite's `secure_delete` on, so that the rows it deletes leave no
/// bytes behind in free pages.
pub fn with_secure_delete<T, E: From<StoreError>>(
    db: Db<'_>,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let Db::Sqlite(_) = db else {
        return f();
    };
    let before: i64 = db.query_row("PRAGMA secure_delete", params![], |r| r.get(0))?;
    db.execute_batch("PRAGMA secure_delete = ON")?;
    let result = f();
    let restore = match before {
        0 => "OFF",
        2 => "FAST",
        _ => "ON",
    };
    db.execute_batch(&format!("PRAGMA secure_delete = {restore}"))?;
    result
}

/// Runs `f` with a page cache of `cache_kib` KiB and temporary sorts in files
/// (index rebuilds of millions of entries), then restores the connection's own.
pub fn with_bulk_cache<T, E: From<StoreError>>(
    db: Db<'_>,
    cache_kib: i64,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let Db::Sqlite(_) = db else {
        return f();
    };
    let cache: i64 = db.query_row("PRAGMA cache_size", params![], |r| r.get(0))?;
    let temp: i64 = db.query_row("PRAGMA temp_store", params![], |r| r.get(0))?;
    db.execute_batch(&format!(
        "PRAGMA cache_size = -{cache_kib}; PRAGMA temp_store = FILE"
    ))?;
    let result = f();
    db.execute_batch(&format!(
        "PRAGMA cache_size = {cache}; PRAGMA temp_store = {temp}"
    ))?;
    result
}

/// Schema objects a bulk import drops and recreates at its end, when that costs
/// less than keeping them current row by row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deferred {
    /// The triggers that queue a contact for the search index when it is created
    /// or renamed or its fields change: the import queues the new contacts in one
    /// statement at its end and the changed ones as it goes.
    SearchTriggers,
    /// The secondary indexes of the contact tables that new contacts enter at
    /// random places (names, domains, field values). Not the ones behind UNIQUE
    /// constraints, which the lookups need, and not those a new contact enters at
    /// the end of (created now, with an id above every other; a score of 0 is
    /// outside the scored index; a tag's or a list's members by ascending id):
    /// SQLite appends to those for less than a rebuild's pass over the store.
    ContactIndexes,
}

/// Drops the objects of `what`; returns the statements that recreate them. On
/// PostgreSQL nothing is dropped: its search needs no queue, and its index builds
/// would hold locks other workers wait on.
pub fn defer(db: Db<'_>, what: Deferred) -> Result<Vec<String>, StoreError> {
    let Db::Sqlite(_) = db else {
        return Ok(Vec::new());
    };
    let filter = match what {
        Deferred::SearchTriggers => {
            "type = 'trigger' AND name LIKE 'contacts_fts_queue_%' \
             AND name <> 'contacts_fts_queue_delete'"
        }
        Deferred::ContactIndexes => {
            "type = 'index' \
             AND tbl_name IN ('contacts', 'contact_fields', 'contact_tags', 'list_members') \
             AND name NOT IN ('contacts_by_created', 'contacts_by_status', 'contacts_scored', \
                 'contact_tags_by_tag', 'list_members_by_contact')"
        }
    };
    let found: Vec<(String, String, String)> = {
        let mut stmt = db.prepare(&format!(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND {filter}"
        ))?;
        let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (kind, name, _) in &found {
        let kind = if kind == "trigger" {
            "TRIGGER"
        } else {
            "INDEX"
        };
        db.execute_batch(&format!("DROP {kind} \"{}\"", name.replace('"', "")))?;
    }
    Ok(found.into_iter().map(|(_, _, sql)| sql).collect())
}
