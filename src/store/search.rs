//! The SQLite contact search index, kept in batches: contacts changed since the last
//! run wait in `contacts_fts_queue` (filled by triggers), and [`reindex_contacts`]
//! moves them into the FTS5 table in one go. A search runs it first, so results
//! are never stale; the worker runs it in the background so the queue stays short.

use rusqlite::Connection;

use super::StoreError;
use super::db::Db;

/// Indexes up to `limit` queued contacts; returns how many it took. On PostgreSQL
/// the index is a generated `tsvector` column, always current: nothing to do.
pub fn reindex_contacts(db: Db<'_>, limit: usize) -> Result<usize, StoreError> {
    match db {
        Db::Sqlite(conn) => sqlite_reindex(conn, limit),
        Db::Postgres(_) => Ok(0),
    }
}

/// Whether contacts wait to be indexed.
pub fn reindex_pending(db: Db<'_>) -> Result<bool, StoreError> {
    match db {
        Db::Sqlite(conn) => sqlite_pending(conn),
        Db::Postgres(_) => Ok(false),
    }
}

/// A contact is indexed with its email, name, company domain and the text values
/// of its custom fields; one the index holds is first removed by rowid (the index
/// is contentless, with `contentless_delete`).
fn sqlite_reindex(conn: &Connection, limit: usize) -> Result<usize, StoreError> {
    let queued: Vec<(i64, bool)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT contact_id, indexed FROM contacts_fts_queue ORDER BY contact_id LIMIT ?1",
        )?;
        let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? != 0))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut remove = conn.prepare_cached("DELETE FROM contacts_fts WHERE rowid = ?1")?;
    let mut add = conn.prepare_cached(
        "INSERT INTO contacts_fts (rowid, email, name, company_domain, fields) \
         SELECT c.id, c.email, c.name, c.company_domain, \
           (SELECT group_concat(f.value_text, ' ') FROM contact_fields f \
            WHERE f.contact_id = c.id AND f.value_text IS NOT NULL) \
         FROM contacts c WHERE c.id = ?1",
    )?;
    let mut done = conn.prepare_cached("DELETE FROM contacts_fts_queue WHERE contact_id = ?1")?;
    for (id, indexed) in &queued {
        if *indexed {
            remove.execute([id])?;
        }
        add.execute([id])?;
        done.execute([id])?;
    }
    Ok(queued.len())
}

fn sqlite_pending(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM contacts_fts_queue)")?
        .query_row([], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(conn: &Connection, q: &str) -> Vec<String> {
        let mut stmt = conn
            .prepare(
                "SELECT c.email FROM contacts_fts f JOIN contacts c ON c.id = f.rowid \
                 WHERE contacts_fts MATCH ?1 ORDER BY c.email",
            )
            .expect("prepare");
        stmt.query_map([q], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[test]
    fn queued_changes_reach_the_index_in_a_batch() {
        let mut conn = Connection::open_in_memory().expect("open");
        crate::store::migrations::sqlite_migrate(&mut conn).expect("migrate");
        conn.execute_batch(
            "INSERT INTO contacts (uid, email, name, created_at, updated_at) VALUES
               ('a', 'ada@example.org', 'Ada Lovelace', 0, 0),
               ('b', 'bob@example.org', 'Bob Byron', 0, 0);",
        )
        .expect("insert");
        assert!(
            search(&conn, "lovelace").is_empty(),
            "not indexed before the batch"
        );
        assert_eq!(
            reindex_contacts(Db::Sqlite(&conn), 100).expect("reindex"),
            2
        );
        assert_eq!(search(&conn, "lovelace"), ["ada@example.org"]);
        // An upsert that changes an already queued contact keeps one queue entry
        // (and must not fail on it).
        conn.execute_batch(
            "UPDATE contacts SET name = 'Ada King' WHERE uid = 'a';
             INSERT INTO contacts (uid, email, name, created_at, updated_at)
               VALUES ('x', 'ada@example.org', 'Ada Q', 0, 0)
               ON CONFLICT (email) DO UPDATE SET name = excluded.name;
             UPDATE contacts SET name = 'Ada Kingdom' WHERE uid = 'a';
             DELETE FROM contacts WHERE uid = 'b';",
        )
        .expect("change");
        assert!(reindex_pending(Db::Sqlite(&conn)).expect("pending"));
        assert_eq!(
            reindex_contacts(Db::Sqlite(&conn), 100).expect("reindex"),
            2
        );
        assert!(search(&conn, "lovelace").is_empty());
        assert_eq!(search(&conn, "kingdom"), ["ada@example.org"]);
        assert!(search(&conn, "byron").is_empty());
        let integrity: String = conn
            .query_row(
                "INSERT INTO contacts_fts (contacts_fts) VALUES ('integrity-check') RETURNING 'ok'",
                [],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| e.to_string());
        assert_eq!(integrity, "ok");
        assert!(!reindex_pending(Db::Sqlite(&conn)).expect("pending"));
    }

    #[test]
    fn custom_text_fields_are_searchable_and_follow_their_changes() {
        let mut conn = Connection::open_in_memory().expect("open");
        crate::store::migrations::sqlite_migrate(&mut conn).expect("migrate");
        conn.execute_batch(
            "INSERT INTO contacts (id, uid, email, name, created_at, updated_at) VALUES
               (1, 'a', 'ada@example.org', 'Ada', 0, 0);
             INSERT INTO contact_fields (contact_id, field, value_text) VALUES
               (1, 'company', 'Analytical Engines Ltd');
             INSERT INTO contact_fields (contact_id, field, value_num) VALUES (1, 'seats', 42);",
        )
        .expect("insert");
        reindex_contacts(Db::Sqlite(&conn), 100).expect("reindex");
        assert_eq!(search(&conn, "analyt*"), ["ada@example.org"]);
        conn.execute_batch(
            "UPDATE contact_fields SET value_text = 'Difference Works' WHERE field = 'company'",
        )
        .expect("update");
        assert!(
            reindex_pending(Db::Sqlite(&conn)).expect("pending"),
            "a field change queues"
        );
        reindex_contacts(Db::Sqlite(&conn), 100).expect("reindex");
        assert!(search(&conn, "analytical").is_empty());
        assert_eq!(search(&conn, "difference"), ["ada@example.org"]);
        conn.execute_batch("DELETE FROM contact_fields WHERE field = 'company'")
            .expect("delete");
        reindex_contacts(Db::Sqlite(&conn), 100).expect("reindex");
        assert!(search(&conn, "difference").is_empty());
        assert_eq!(search(&conn, "ada"), ["ada@example.org"]);
    }
}
