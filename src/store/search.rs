//! Contact search, on both backends, with one contract: every word of the query
//! must match the start of a word of the contact's email, name, company domain or
//! a text field; best matches first; ranking looks at the first `window` matches
//! only, so a short prefix on a large store answers at once.
//!
//! SQLite: an FTS5 index kept in batches. Contacts changed since the last run wait
//! in `contacts_fts_queue` (filled by triggers), and [`reindex_contacts`] moves
//! them into the FTS5 table in one go. A search runs it first, so results are
//! never stale; the worker runs it in the background so the queue stays short.
//! PostgreSQL: the generated `tsvector` column `contacts.search` and a GIN index
//! over the text fields, always current.

use rusqlite::Connection;

use super::StoreError;
use super::db::{Db, Row, params};

/// The words a search looks for: split at anything not a letter or a digit,
/// lowercased, at most eight. No input is query syntax on either backend (quotes,
/// `NEAR`, `*`, `&`, column filters).
pub fn query_words(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(str::to_lowercase)
        .collect()
}

/// FTS5's form of the words: each a quoted prefix term.
pub fn fts5_query(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("\"{w}\"*"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The contacts matching every word, best first, at most `limit`: `columns` of
/// `contacts c`, each row through `f`.
pub fn search_contacts<T>(
    db: Db<'_>,
    columns: &str,
    words: &[String],
    window: usize,
    limit: usize,
    mut f: impl FnMut(Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    if let [word] = words
        && let Some((lower, upper)) = one_letter(word)
    {
        return first_letter(db, columns, lower, upper, limit, f);
    }
    let (sql, all, any) = match db {
        Db::Sqlite(_) => (
            format!(
                "SELECT {columns} FROM (SELECT rowid, rank FROM contacts_fts \
                 WHERE contacts_fts MATCH ?1 LIMIT {window}) f JOIN contacts c ON c.id = f.rowid \
                 ORDER BY f.rank LIMIT ?2"
            ),
            fts5_query(words),
            String::new(),
        ),
        // Candidates: contacts whose own vector has every word, and contacts with
        // a field that has any (a word may be in a field, the others in the
        // name); then every word checked against both together. Taking any word
        // from the contact's vector too would fill the window with everyone
        // whose address ends in `.com` for a query with `com` in it.
        Db::Postgres(_) => (
            format!(
                "SELECT {columns} FROM (SELECT id FROM contacts WHERE search @@ to_tsquery('simple', ?1) \
                   UNION SELECT contact_id FROM contact_fields WHERE value_text IS NOT NULL \
                   AND to_tsvector('simple', regexp_replace(value_text, '[^[:alnum:]]+', ' ', 'g')) \
                   @@ to_tsquery('simple', ?3) LIMIT {window}) m \
                 JOIN contacts c ON c.id = m.id \
                 WHERE (c.search || to_tsvector('simple', regexp_replace(coalesce((SELECT string_agg(f.value_text, ' ') \
                   FROM contact_fields f WHERE f.contact_id = c.id), ''), '[^[:alnum:]]+', ' ', 'g'))) \
                   @@ to_tsquery('simple', ?1) \
                 ORDER BY ts_rank(c.search, to_tsquery('simple', ?1)) DESC, c.id LIMIT ?2"
            ),
            words
                .iter()
                .map(|w| format!("{w}:*"))
                .collect::<Vec<_>>()
                .join(" & "),
            words
                .iter()
                .map(|w| format!("{w}:*"))
                .collect::<Vec<_>>()
                .join(" | "),
        ),
    };
    let mut stmt = db.prepare_cached(&sql)?;
    let values: [&dyn super::db::ToValue; 3] = [&all, &limit, &any];
    let n = stmt.parameter_count();
    let rows = stmt.query_map(&values[..n], &mut f)?;
    rows.collect()
}

/// A one-letter query's letter, lower and upper case.
fn one_letter(word: &str) -> Option<(char, char)> {
    let mut chars = word.chars();
    let c = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    Some((c, c.to_uppercase().next().unwrap_or(c)))
}

/// A one-letter query: the contacts whose address or name starts with the
/// letter, by the email and name indexes, in address order. Both full-text
/// indexes keep prefixes of two letters and more only (one letter would make a
/// posting list of a good part of the store), so a first keystroke reads at
/// most three short index ranges instead of every word starting with it.
fn first_letter<T>(
    db: Db<'_>,
    columns: &str,
    lower: char,
    upper: char,
    limit: i64,
    mut f: impl FnMut(Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let next = |c: char| char::from_u32(u32::from(c) + 1).unwrap_or(c).to_string();
    let sql = format!(
        "SELECT {columns} FROM contacts c WHERE c.id IN ( \
           SELECT id FROM (SELECT id FROM contacts WHERE email >= ?1 AND email < ?2 ORDER BY email LIMIT ?5) e \
           UNION SELECT id FROM (SELECT id FROM contacts WHERE name >= ?1 AND name < ?2 ORDER BY name LIMIT ?5) l \
           UNION SELECT id FROM (SELECT id FROM contacts WHERE name >= ?3 AND name < ?4 ORDER BY name LIMIT ?5) u) \
         ORDER BY c.email LIMIT ?5"
    );
    let mut stmt = db.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            lower.to_string(),
            next(lower),
            upper.to_string(),
            next(upper),
            limit
        ],
        &mut f,
    )?;
    rows.collect()
}

/// Queues a contact whose searchable values changed outside the triggers (an
/// import that turned them off).
pub fn queue_contact(db: Db<'_>, id: i64) -> Result<(), StoreError> {
    if let Db::Sqlite(_) = db {
        db.prepare_cached(
            "INSERT INTO contacts_fts_queue (contact_id, indexed) VALUES (?1, 1) \
             ON CONFLICT (contact_id) DO NOTHING",
        )?
        .execute(params![id])?;
    }
    Ok(())
}

/// Queues every contact with an id above `id` (new in an import), in one go.
pub fn queue_contacts_above(db: Db<'_>, id: i64) -> Result<(), StoreError> {
    if let Db::Sqlite(_) = db {
        db.execute(
            "INSERT INTO contacts_fts_queue (contact_id, indexed) \
             SELECT id, 0 FROM contacts WHERE id > ?1 ON CONFLICT (contact_id) DO NOTHING",
            params![id],
        )?;
    }
    Ok(())
}

/// After an erasure: indexes the deletions out and merges the index, so that no
/// old segment keeps the terms.
pub fn purge_erased(db: Db<'_>) -> Result<(), StoreError> {
    reindex_contacts(db, usize::MAX)?;
    if let Db::Sqlite(_) = db {
        db.execute_batch("INSERT INTO contacts_fts (contacts_fts) VALUES ('optimize')")?;
    }
    Ok(())
}

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
    if !queued.is_empty() {
        merge_step(conn, queued.len().clamp(MERGE_PAGES_MIN, MERGE_PAGES_MAX))?;
    }
    Ok(queued.len())
}

/// Leaf pages of merge work per indexing batch, at least and at most. A
/// contact's terms take a fraction of a page, so a batch's budget is several
/// times the segment it adds: merges keep up, and a batch's cost stays bounded
/// (automatic merges are off, V29).
const MERGE_PAGES_MIN: usize = 32;
const MERGE_PAGES_MAX: usize = 400;

/// Merges index segments for at most `pages` leaf pages written; whether it
/// found work (FTS5 reports that as two or more changes).
fn merge_step(conn: &Connection, pages: usize) -> Result<bool, StoreError> {
    let before = conn.total_changes();
    conn.prepare_cached("INSERT INTO contacts_fts (contacts_fts, rank) VALUES ('merge', ?1)")?
        .execute([i64::try_from(pages).unwrap_or(i64::MAX)])?;
    Ok(conn.total_changes() - before >= 2)
}

fn sqlite_pending(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM contacts_fts_queue)")?
        .query_row([], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_become_quoted_prefix_terms() {
        let fts = |q: &str| fts5_query(&query_words(q));
        assert_eq!(fts("Ada Lo"), "\"ada\"* \"lo\"*");
        assert_eq!(fts("a\" OR NEAR(x*"), "\"a\"* \"or\"* \"near\"* \"x\"*");
        assert!(query_words("  -- ").is_empty());
    }

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

    fn segments(conn: &Connection) -> i64 {
        conn.query_row(
            "SELECT count(DISTINCT segid) FROM contacts_fts_idx",
            [],
            |r| r.get(0),
        )
        .expect("segments")
    }

    #[test]
    fn many_small_batches_keep_few_segments_and_every_contact_found() {
        let mut conn = Connection::open_in_memory().expect("open");
        crate::store::migrations::sqlite_migrate(&mut conn).expect("migrate");
        for i in 0..600 {
            conn.execute(
                "INSERT INTO contacts (uid, email, name, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 0, 0)",
                rusqlite::params![
                    format!("u{i}"),
                    format!("p{i}@example.org"),
                    format!("Person{i} Q")
                ],
            )
            .expect("insert");
            // One contact per batch, the worst case: a segment each.
            assert_eq!(
                reindex_contacts(Db::Sqlite(&conn), 200).expect("reindex"),
                1
            );
        }
        // The merge steps keep each level short (6 segments here); FTS5's own
        // crisis merges alone, which merge a level whole inside a write, would
        // leave about 15.
        let n = segments(&conn);
        assert!(n <= 8, "{n} segments");
        for i in [0, 299, 599] {
            assert_eq!(
                search(&conn, &format!("person{i}")),
                [format!("p{i}@example.org")]
            );
        }
        assert_eq!(search(&conn, "q").len(), 600);
        // Automatic merging is off: a batch's cost is bounded by its own budget.
        let automerge: i64 = conn
            .query_row(
                "SELECT v FROM contacts_fts_config WHERE k = 'automerge'",
                [],
                |r| r.get(0),
            )
            .expect("config");
        assert_eq!(automerge, 0);
    }

    /// Through the public search, after the batch the worker would run: the same
    /// on both backends.
    fn found(db: Db<'_>, q: &str) -> Vec<String> {
        reindex_contacts(db, 100).expect("reindex");
        let mut out = search_contacts(db, "c.email", &query_words(q), 1000, 50, |r| r.get(0))
            .expect("search");
        out.sort();
        out
    }

    #[test]
    fn every_word_must_match_the_start_of_a_word() {
        let store = crate::store::test_db::TestDb::open();
        let db = store.db();
        db.execute_batch(
            "INSERT INTO contacts (id, uid, email, name, company_domain, created_at, updated_at) VALUES
               (1, 'a', 'ada@example.org', 'Ada Lovelace', 'engines.test', 0, 0),
               (2, 'b', 'bob@example.org', 'Bob Lovelace', NULL, 0, 0),
               (3, 'c', 'carla@other.test', 'Carla Ada', NULL, 0, 0);",
        )
        .expect("insert");
        assert_eq!(
            found(db, "lovelace"),
            ["ada@example.org", "bob@example.org"]
        );
        assert_eq!(
            found(db, "Ada LOVE"),
            ["ada@example.org"],
            "all words, prefixes"
        );
        assert_eq!(found(db, "ada"), ["ada@example.org", "carla@other.test"]);
        // One letter: addresses and names that start with it.
        assert_eq!(found(db, "b"), ["bob@example.org"]);
        assert_eq!(found(db, "C"), ["carla@other.test"]);
        assert!(found(db, "z").is_empty());
        assert_eq!(found(db, "engines"), ["ada@example.org"], "company domain");
        assert!(found(db, "ovelace").is_empty(), "the start of a word only");
        assert!(found(db, "lovelace zed").is_empty());
        // Query syntax of either backend is just words.
        assert_eq!(
            found(db, "\"ada\" & !lovelace | (x"),
            Vec::<String>::new(),
            "x matches no word"
        );
        assert_eq!(found(db, "ada & !lovelace"), ["ada@example.org"]);
        assert!(found(db, " -- ").is_empty());
        // An address's parts are words on both backends (PostgreSQL's parser
        // would keep `ada@example.org` as one token).
        assert_eq!(found(db, "ada example org"), ["ada@example.org"]);
        assert_eq!(found(db, "carla@other.test"), ["carla@other.test"]);
        assert_eq!(found(db, "engines test"), ["ada@example.org"]);
    }

    #[test]
    fn custom_text_fields_are_searchable_and_follow_their_changes() {
        let store = crate::store::test_db::TestDb::open();
        let db = store.db();
        db.execute_batch(
            "INSERT INTO contacts (id, uid, email, name, created_at, updated_at) VALUES
               (1, 'a', 'ada@example.org', 'Ada', 0, 0);
             INSERT INTO contact_fields (contact_id, field, value_text) VALUES
               (1, 'company', 'Analytical Engines Ltd');
             INSERT INTO contact_fields (contact_id, field, value_num) VALUES (1, 'seats', 42);",
        )
        .expect("insert");
        assert_eq!(found(db, "analyt"), ["ada@example.org"]);
        db.execute_batch(
            "UPDATE contact_fields SET value_text = 'Difference Works' WHERE field = 'company'",
        )
        .expect("update");
        if let Db::Sqlite(_) = db {
            assert!(
                reindex_pending(db).expect("pending"),
                "a field change queues"
            );
        }
        assert!(found(db, "analytical").is_empty());
        assert_eq!(found(db, "difference"), ["ada@example.org"]);
        db.execute_batch("DELETE FROM contact_fields WHERE field = 'company'")
            .expect("delete");
        assert!(found(db, "difference").is_empty());
        assert_eq!(found(db, "ada"), ["ada@example.org"]);
    }
}
