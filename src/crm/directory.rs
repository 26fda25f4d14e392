//! Browsing the CRM: contact summaries, filtered listings walked in pages (keyset,
//! never OFFSET), search as you type, and a contact's timeline. What the CLI, the
//! TUI and the daemon's API show.

type Sql = crate::store::db::Value<'static>;
use crate::store::db::{Db, OptionalRow, params};
use serde::Serialize;
use serde_json::Value as Json;

use super::CrmError;
use super::scoring::Scoring;
use super::segment::{self, Mode, Scope};
use crate::model::contacts::Condition;
use crate::store::UnixMs;

/// Matches ranked by relevance at most, per search.
const RANK_WINDOW: usize = 2_000;

/// One line of a contact listing.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    pub id: i64,
    pub uid: String,
    pub email: String,
    pub name: Option<String>,
    pub status: String,
    pub stage: Option<String>,
    pub source: Option<String>,
    pub created_at: UnixMs,
    pub last_activity: Option<UnixMs>,
}

const SUMMARY_COLUMNS: &str = "c.id, c.uid, c.email, c.name, c.status, c.stage, \
     coalesce(c.source_component, c.source_site, c.source_workflow, c.source_import), c.created_at, c.last_activity";

fn summary_row(r: crate::store::db::Row<'_>) -> Result<Summary, crate::store::StoreError> {
    Ok(Summary {
        id: r.get(0)?,
        uid: r.get(1)?,
        email: r.get(2)?,
        name: r.get(3)?,
        status: r.get(4)?,
        stage: r.get(5)?,
        source: r.get(6)?,
        created_at: r.get(7)?,
        last_activity: r.get(8)?,
    })
}

/// One contact's summary.
pub fn summary(conn: Db<'_>, id: i64) -> Result<Summary, CrmError> {
    let sql = format!("SELECT {SUMMARY_COLUMNS} FROM contacts c WHERE c.id = ?1");
    conn.prepare_cached(&sql)?
        .query_row(params![id], summary_row)
        .optional()?
        .ok_or(CrmError::NoContact(id))
}

/// Contacts meeting `filter` (all contacts when `None`), ids above `after`,
/// ascending, at most `limit`: the next page starts after the last id returned.
pub fn list(
    conn: Db<'_>,
    scoring: &Scoring,
    filter: Option<&Condition>,
    now: UnixMs,
    after: i64,
    limit: usize,
) -> Result<Vec<Summary>, CrmError> {
    let pred = predicate(conn, scoring, filter, now, Mode::Set)?;
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM contacts c WHERE c.id > ? AND ({}) ORDER BY c.id LIMIT ?",
        pred.sql
    );
    let mut params = vec![Sql::Int(after)];
    params.extend(pred.params);
    params.push(Sql::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(&crate::store::db::refs(&params), summary_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Where a page of a listing starts, newest first (highest id first). Every form
/// is one keyset query on the primary key: jumping to the end of a long listing
/// reads one page backwards, never the rows before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Cursor {
    /// The newest contacts.
    First,
    /// The contacts just older than this id.
    Below(i64),
    /// This id and the contacts just older (a page re-read in place).
    AtOrBelow(i64),
    /// The contacts just newer than this id (a page up).
    Above(i64),
    /// The oldest contacts.
    Last,
}

/// Contacts a filtered page looks at one by one before it falls back to
/// matching the whole filter as a set.
const PROBE_WINDOW: usize = 4_000;

/// A page of contacts meeting `filter` (all contacts when `None`), newest first,
/// at most `limit`, starting where `cursor` says.
///
/// A filtered page first probes the next [`PROBE_WINDOW`] contacts in key order,
/// each condition checked by index for each contact: for a filter that holds
/// for more than a few percent of contacts that fills the page after a few
/// hundred rows, whatever the store's size. When the window holds less than a
/// page (a sparse filter), the filter's sets are built once and joined, which
/// costs the size of those sets instead.
pub fn page(
    conn: Db<'_>,
    scoring: &Scoring,
    filter: Option<&Condition>,
    now: UnixMs,
    cursor: Cursor,
    limit: usize,
) -> Result<Vec<Summary>, CrmError> {
    let (bound, order, key) = match cursor {
        Cursor::First => ("1 = 1", "DESC", None),
        Cursor::Below(id) => ("c.id < ?", "DESC", Some(id)),
        Cursor::AtOrBelow(id) => ("c.id <= ?", "DESC", Some(id)),
        Cursor::Above(id) => ("c.id > ?", "ASC", Some(id)),
        Cursor::Last => ("1 = 1", "ASC", None),
    };
    let limit_param = Sql::Int(i64::try_from(limit).unwrap_or(i64::MAX));
    let run = |sql: &str, params: Vec<Sql>| -> Result<Vec<Summary>, CrmError> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(&crate::store::db::refs(&params), summary_row)?;
        let mut rows: Vec<Summary> = rows.collect::<Result<_, _>>()?;
        if order == "ASC" {
            rows.reverse();
        }
        Ok(rows)
    };
    let mut params: Vec<Sql> = key.map(Sql::Int).into_iter().collect();
    if let Some(cond) = filter {
        // The window's far end: the PROBE_WINDOW-th contact from the cursor.
        let edge: Option<i64> = conn
            .prepare_cached(&format!(
                "SELECT c.id FROM contacts c WHERE {bound} ORDER BY c.id {order} LIMIT 1 OFFSET ?"
            ))?
            .query_row(
                &crate::store::db::refs(
                    &params
                        .iter()
                        .cloned()
                        .chain([Sql::Int(PROBE_WINDOW as i64 - 1)])
                        .collect::<Vec<_>>(),
                ),
                |r| r.get(0),
            )
            .optional()?;
        let one = predicate(conn, scoring, Some(cond), now, Mode::One)?;
        let within = match (edge, order) {
            (Some(_), "DESC") => "c.id >= ?",
            (Some(_), _) => "c.id <= ?",
            (None, _) => "1 = 1",
        };
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM contacts c WHERE {bound} AND {within} AND ({}) \
             ORDER BY c.id {order} LIMIT ?",
            one.sql
        );
        let mut probe = params.clone();
        probe.extend(edge.map(Sql::Int));
        probe.extend(one.params);
        probe.push(limit_param.clone());
        let rows = run(&sql, probe)?;
        // A full page, or a window that reached the end of the contacts: done.
        if rows.len() >= limit || edge.is_none() {
            return Ok(rows);
        }
    }
    let pred = predicate(conn, scoring, filter, now, Mode::Set)?;
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM contacts c WHERE {bound} AND ({}) ORDER BY c.id {order} LIMIT ?",
        pred.sql
    );
    params.extend(pred.params);
    params.push(limit_param);
    run(&sql, params)
}

/// How many contacts meet `filter` (all contacts when `None`).
pub fn count(
    conn: Db<'_>,
    scoring: &Scoring,
    filter: Option<&Condition>,
    now: UnixMs,
) -> Result<u64, CrmError> {
    let pred = predicate(conn, scoring, filter, now, Mode::Set)?;
    let sql = format!("SELECT count(*) FROM contacts c WHERE {}", pred.sql);
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(&crate::store::db::refs(&pred.params), |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn predicate(
    conn: Db<'_>,
    scoring: &Scoring,
    filter: Option<&Condition>,
    now: UnixMs,
    mode: Mode,
) -> Result<segment::Predicate, CrmError> {
    let Some(cond) = filter else {
        return Ok(segment::Predicate {
            sql: "1 = 1".into(),
            params: Vec::new(),
        });
    };
    let score = scoring.score_sql(conn, now, mode)?;
    Ok(segment::compile(
        cond,
        &Scope {
            segments: &scoring.segments,
            score: Some(&score),
            now,
            mode,
        },
    )?)
}

/// Search as you type over emails, names and company domains: every word of the
/// query must match the start of a word (prefix search on FTS5's prefix index),
/// best matches first. The caller runs the batched indexer first (a write).
///
/// One-letter words are not looked up in the full-text index (it keeps prefixes
/// of two letters and more; one letter is a posting list of a good part of the
/// store): the longer words find the candidates, and a one-letter word must
/// start a word of the address (its domain included) or the name. A query of
/// one-letter words only starts from the contacts whose address or name starts
/// with the first.
pub fn search(conn: Db<'_>, query: &str, limit: usize) -> Result<Vec<Summary>, CrmError> {
    // Ranking reads every match, and a prefix of a few letters matches a good
    // part of a large store: relevance is computed over the first
    // RANK_WINDOW matches in index order (all of them, for any query specific
    // enough to be worth ranking), so that every keystroke answers at once.
    let words = crate::store::search::query_words(query);
    let (letters, long): (Vec<String>, Vec<String>) =
        words.into_iter().partition(|w| w.chars().count() == 1);
    if letters.is_empty() || (long.is_empty() && letters.len() == 1) {
        let words = if long.is_empty() { letters } else { long };
        return Ok(crate::store::search::search_contacts(
            conn,
            SUMMARY_COLUMNS,
            &words,
            RANK_WINDOW,
            limit,
            summary_row,
        )?);
    }
    let lead = if long.is_empty() {
        vec![letters[0].clone()]
    } else {
        long
    };
    let candidates = crate::store::search::search_contacts(
        conn,
        SUMMARY_COLUMNS,
        &lead,
        RANK_WINDOW,
        RANK_WINDOW,
        summary_row,
    )?;
    Ok(candidates
        .into_iter()
        .filter(|s| letters.iter().all(|l| starts_a_word(s, l)))
        .take(limit)
        .collect())
}

/// Whether a word of the contact's address or name starts with `prefix`
/// (words split as the search index splits them).
fn starts_a_word(s: &Summary, prefix: &str) -> bool {
    [Some(s.email.as_str()), s.name.as_deref()]
        .into_iter()
        .flatten()
        .flat_map(|t| t.split(|c: char| !c.is_alphanumeric()))
        .any(|w| w.to_lowercase().starts_with(prefix))
}

/// One entry of a contact's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TimelineEntry {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject: Option<String>,
    pub data: Json,
    pub source: Option<String>,
    pub occurred_at: UnixMs,
}

/// A page of a contact's timeline, newest first; `before` is the (time, id) of the
/// last entry of the previous page.
pub fn timeline(
    conn: Db<'_>,
    contact_id: i64,
    before: Option<(UnixMs, i64)>,
    limit: usize,
) -> Result<Vec<TimelineEntry>, CrmError> {
    let (at, id) = before.unwrap_or((i64::MAX, i64::MAX));
    let mut stmt = conn.prepare_cached(
        "SELECT id, type, subject, data, source, occurred_at FROM activities \
         WHERE contact_id = ?1 AND (occurred_at, id) < (?2, ?3) \
         ORDER BY occurred_at DESC, id DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        params![contact_id, at, id, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            let data: String = r.get(3)?;
            Ok(TimelineEntry {
                id: r.get(0)?,
                kind: r.get(1)?,
                subject: r.get(2)?,
                data: serde_json::from_str(&data).unwrap_or(Json::Null),
                source: r.get(4)?,
                occurred_at: r.get(5)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes a contact and everything that cascades from it (tags, fields, lists,
/// activities, deals). Returns whether it existed.
pub fn remove(conn: Db<'_>, id: i64) -> Result<bool, CrmError> {
    Ok(conn
        .prepare_cached("DELETE FROM contacts WHERE id = ?1")?
        .execute(params![id])?
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TestDb;

    fn ids(db: Db<'_>, filter: Option<&Condition>, cursor: Cursor, limit: usize) -> Vec<i64> {
        let scoring = Scoring::new(None, Default::default());
        page(db, &scoring, filter, 0, cursor, limit)
            .expect("page")
            .iter()
            .map(|s| s.id)
            .collect()
    }

    /// `n` contacts, ids 1 to n; the ones `tagged` says get the tag `t`.
    fn contacts(db: Db<'_>, n: i64, tagged: &str) {
        db.execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
             INSERT INTO contacts (id, uid, email, created_at, updated_at) \
             SELECT i, 'u' || i, 'c' || i || '@x.test', 0, 0 FROM n; \
             INSERT INTO contact_tags (contact_id, tag, added_at) \
             SELECT id, 't', 0 FROM contacts WHERE {tagged};"
        ))
        .expect("contacts");
    }

    #[test]
    fn pages_walk_a_filter_both_ways_newest_first() {
        let store = TestDb::open();
        let db = store.db();
        contacts(db, 50, "id % 2 = 0");
        let even = Condition::Tag("t".into());
        let f = Some(&even);
        assert_eq!(ids(db, f, Cursor::First, 5), [50, 48, 46, 44, 42]);
        assert_eq!(ids(db, f, Cursor::Below(42), 3), [40, 38, 36]);
        assert_eq!(ids(db, f, Cursor::AtOrBelow(40), 2), [40, 38]);
        assert_eq!(ids(db, f, Cursor::Last, 5), [10, 8, 6, 4, 2]);
        assert_eq!(ids(db, f, Cursor::Above(2), 3), [8, 6, 4]);
        assert_eq!(ids(db, f, Cursor::Above(48), 3), [50]);
        assert_eq!(ids(db, None, Cursor::Below(3), 5), [2, 1]);
    }

    #[test]
    fn one_letter_words_narrow_what_the_longer_words_found() {
        let store = TestDb::open();
        let db = store.db();
        db.execute_batch(
            "INSERT INTO contacts (id, uid, email, name, created_at, updated_at) VALUES
               (1, 'a', 'lena.fischer@north.test', 'Lena Fischer', 0, 0),
               (2, 'b', 'lena@otto.test', 'Lena Otto', 0, 0),
               (3, 'c', 'finn@otto.test', 'Finn Otto', 0, 0);",
        )
        .expect("insert");
        crate::store::search::reindex_contacts(db, 100).expect("index");
        let found = |q: &str| -> Vec<i64> {
            let mut ids: Vec<i64> = search(db, q, 10)
                .expect("search")
                .iter()
                .map(|s| s.id)
                .collect();
            ids.sort_unstable();
            ids
        };
        assert_eq!(found("lena"), [1, 2]);
        assert_eq!(found("lena f"), [1]);
        assert_eq!(found("lena o"), [2], "the address's domain counts");
        assert_eq!(found("otto f"), [3]);
        assert_eq!(found("f o"), [3], "letters only: the first leads");
        assert_eq!(found("l f"), [1]);
        assert!(found("lena z").is_empty());
    }

    #[test]
    fn a_sparse_filter_beyond_the_probe_window_is_found_as_a_set() {
        let store = TestDb::open();
        let db = store.db();
        contacts(
            db,
            i64::try_from(PROBE_WINDOW).expect("fits") + 100,
            "id IN (1, 2, 4050)",
        );
        let tagged = Condition::Tag("t".into());
        let f = Some(&tagged);
        // The newest tagged contact is in the first window, the others far below it.
        assert_eq!(ids(db, f, Cursor::First, 5), [4050, 2, 1]);
        assert_eq!(ids(db, f, Cursor::Below(4050), 5), [2, 1]);
        assert_eq!(ids(db, f, Cursor::Last, 2), [2, 1]);
        assert_eq!(ids(db, f, Cursor::Above(2), 5), [4050]);
    }
}
