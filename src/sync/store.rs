//! The stores' side of sync: each store's change feed and applying another
//! store's changes to it, on both backends.
//!
//! Triggers (migration V22) stamp every synced item in the transaction that
//! changes it, so no write path can forget to: `sync_stamps` holds one row per
//! item of a contact with its stamp (wall, node) and its place in the feed.
//! [`feed`] pages through the items changed after a cursor and reads their
//! current values; [`apply`] joins a page of another store's changes into this
//! one by the rules of [`super::merge`]: registers by latest stamp (equal
//! stamps by the value's text), unions once by their origin's key, an erasure
//! absorbing the person. Applied changes keep their stamps, write no audit or
//! activity of their own, raise no CRM events (so they start no workflow) and
//! are remembered as coming from their peer, so they are never sent back.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::hlc::MAX_DRIFT_MS;
use crate::crm::CrmError;
use crate::crm::contact::{from_columns, to_columns};
use crate::crm::privacy::email_hash;
use crate::crm::scoring::Scoring;
use crate::store::db::{Db, OptionalRow, params};
use crate::store::ops::normalize_email;
use crate::store::{StoreError, UnixMs};

/// Changes a page holds at most.
pub const MAX_PAGE: usize = 5_000;
/// The contact columns sync carries, as `f:<column>` items.
pub(super) const COLUMNS: [&str; 5] = ["name", "phone", "company_domain", "status", "stage"];

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("`{0}` is not a sync cursor (expected empty or two numbers: ord.id)")]
    BadCursor(String),
    #[error("change {index}: {why}")]
    BadChange { index: usize, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crm(#[from] CrmError),
    /// Writers kept the feed's lock for seconds (a long import): try again.
    #[error("the store is busy with a long write; try again in a moment")]
    Busy,
    /// The hub refused a round or could not be reached.
    #[error("{0}")]
    Hub(String),
}

/// One changed item of a contact, as it travels between stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// The contact's normalized email; none for a suppression (named by the
    /// address's hash in `item`, so an erased address never travels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `f:<column>`, `c:<field>`, `t:<tag>`, `l:<list>`, `a:`/`p:`/`k:<node>:<id>`
    /// (an activity, a score adjustment, a consent record) or `s:<hash>`.
    pub item: String,
    pub wall: i64,
    pub node: String,
    pub value: Json,
}

/// A place in a store's feed: after the row (ord, id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    ord: i64,
    id: i64,
}

impl Cursor {
    /// The empty text is the feed's start.
    pub fn parse(text: &str) -> Result<Cursor, SyncError> {
        if text.is_empty() {
            return Ok(Cursor::default());
        }
        let bad = || SyncError::BadCursor(text.chars().take(60).collect());
        let (ord, id) = text.split_once('.').ok_or_else(bad)?;
        Ok(Cursor {
            ord: ord.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }

    pub fn shown(&self) -> String {
        if *self == Cursor::default() {
            return String::new();
        }
        format!("{}.{}", self.ord, self.id)
    }
}

/// A page of a feed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub changes: Vec<Change>,
    /// Where the next page starts.
    pub cursor: String,
    /// Whether more may follow.
    pub more: bool,
}

/// This store's node id.
pub fn node(db: Db<'_>) -> Result<String, StoreError> {
    db.prepare_cached("SELECT node FROM sync_clock")?
        .query_row(params![], |r| r.get(0))
}

/// Turns sync on for this store, once: stamps everything it holds (each with
/// its row's own time), after which the triggers stamp every change. Until
/// then a store that never syncs pays nothing but a read of `sync_clock` per
/// change. Whether this call did it. Call in a write transaction.
pub fn enable(db: Db<'_>) -> Result<bool, StoreError> {
    let postgres = db.backend_name() != "sqlite";
    let enabled = |sql: &str| -> Result<bool, StoreError> {
        Ok(db
            .prepare_cached(sql)?
            .query_row(params![], |r| r.get::<i64>(0))?
            == 1)
    };
    // Every round asks, so the common answer takes no lock: rounds on the
    // hub's several writers must not queue behind the clock row.
    if enabled("SELECT enabled FROM sync_clock")? {
        return Ok(false);
    }
    // The row lock makes a second enabler wait, then see it done.
    if postgres && enabled("SELECT enabled FROM sync_clock FOR UPDATE")? {
        return Ok(false);
    }
    if postgres {
        // Writers still running saw sync off and stamped nothing: wait for
        // them to commit so the rows below include their changes, and hold
        // new ones until sync is on.
        db.execute_batch(
            "LOCK TABLE contacts, contact_fields, contact_tags, list_members, activities, \
             score_adjustments, consent_ledger, suppressions IN SHARE MODE",
        )?;
    }
    db.execute(
        "INSERT INTO sync_stamps (contact_id, item, wall, node, ord) \
         SELECT x.id, x.item, x.wall, (SELECT node FROM sync_clock), 1 FROM ( \
         SELECT id, 'f:name' AS item, updated_at AS wall FROM contacts WHERE name IS NOT NULL \
         UNION ALL SELECT id, 'f:phone', updated_at FROM contacts WHERE phone IS NOT NULL \
         UNION ALL SELECT id, 'f:company_domain', updated_at FROM contacts WHERE company_domain IS NOT NULL \
         UNION ALL SELECT id, 'f:status', updated_at FROM contacts WHERE status IS NOT NULL \
         UNION ALL SELECT id, 'f:stage', updated_at FROM contacts WHERE stage IS NOT NULL \
         UNION ALL SELECT f.contact_id, 'c:' || f.field, c.updated_at FROM contact_fields f \
           JOIN contacts c ON c.id = f.contact_id \
         UNION ALL SELECT contact_id, 't:' || tag, added_at FROM contact_tags \
         UNION ALL SELECT contact_id, 'l:' || list_id, added_at FROM list_members \
         UNION ALL SELECT 0, 's:' || email_hash, created_at FROM suppressions) x",
        params![],
    )?;
    db.execute(
        "INSERT INTO sync_stamps (contact_id, item, ref, wall, node, ord) \
         SELECT x.contact_id, x.prefix || (SELECT node FROM sync_clock) || ':' || x.id, x.id, x.wall, \
         (SELECT node FROM sync_clock), 1 FROM ( \
         SELECT contact_id, 'a:' AS prefix, id, occurred_at AS wall FROM activities \
         UNION ALL SELECT contact_id, 'p:', id, created_at FROM score_adjustments \
         UNION ALL SELECT contact_id, 'k:', id, recorded_at FROM consent_ledger \
           WHERE contact_id IS NOT NULL) x",
        params![],
    )?;
    db.execute("UPDATE sync_clock SET enabled = 1", params![])?;
    Ok(true)
}

/// Up to which `ord` the feed's rows are final. SQLite has one writer: all
/// of them. On PostgreSQL a stamp's `ord` may commit after a larger one; the
/// sequence's value is read while holding the feed's advisory lock alone
/// (every stamping transaction holds it shared), so no smaller `ord` is still
/// in flight. The lock is only tried, never waited on, so a long transaction
/// elsewhere delays the feed, not the writers.
fn horizon(db: Db<'_>) -> Result<i64, SyncError> {
    if db.backend_name() == "sqlite" {
        return Ok(i64::MAX);
    }
    for attempt in 0..400 {
        let last: Option<i64> = db
            .prepare_cached("SELECT sync_horizon()")?
            .query_row(params![], |r| r.get(0))?;
        if let Some(last) = last {
            return Ok(last);
        }
        if attempt % 20 == 19 {
            tracing::debug!(attempt, "the sync feed waits for stamping transactions");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Err(SyncError::Busy)
}

/// The items changed after `after`, at most `limit` rows scanned, with their
/// values now; those that came from `except` (the asking store) are skipped.
pub fn feed(
    db: Db<'_>,
    after: Cursor,
    except: Option<&str>,
    limit: usize,
) -> Result<Page, SyncError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let horizon = horizon(db)?;
    // The page of stamps first, then their contacts. The limit is written
    // into the text: PostgreSQL's generic plan for a `LIMIT $4` assumes a
    // tenth of the table and joined every stamp with its contact in a
    // parallel hash join, a cost that grew with the store (at 1,000,000
    // contacts, a third of a sync round).
    let mut stmt = db.prepare_cached(&format!(
        "WITH page AS MATERIALIZED (SELECT id, ord, contact_id, item, ref, wall, node, peer \
         FROM sync_stamps WHERE (ord, id) > (?1, ?2) AND ord <= ?3 ORDER BY ord, id LIMIT {limit}) \
         SELECT s.id, s.ord, s.contact_id, s.item, s.ref, s.wall, s.node, s.peer, \
         c.email, c.name, c.phone, c.company_domain, c.status, c.stage \
         FROM page s LEFT JOIN contacts c ON c.id = s.contact_id ORDER BY s.ord, s.id"
    ))?;
    let mut rows = stmt.query(params![after.ord, after.id, horizon])?;
    let mut scanned = Vec::new();
    while let Some(r) = rows.next()? {
        scanned.push(Scanned {
            at: Cursor {
                id: r.get(0)?,
                ord: r.get(1)?,
            },
            contact_id: r.get(2)?,
            item: r.get(3)?,
            reference: r.get(4)?,
            wall: r.get(5)?,
            node: r.get(6)?,
            peer: r.get(7)?,
            email: r.get(8)?,
            columns: [r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?, r.get(13)?],
        });
    }
    drop(rows);
    drop(stmt);
    let more = scanned.len() == limit;
    let mut cursor = after;
    let mut changes = Vec::with_capacity(scanned.len());
    for s in scanned {
        cursor = s.at;
        if except.is_some() && s.peer.as_deref() == except {
            continue;
        }
        if let Some(change) = current(db, s)? {
            // A stored row no store would accept (a tag longer than any
            // sync item) is left out rather than blocking every later page.
            if let Err(e) = check(std::slice::from_ref(&change)) {
                tracing::warn!(item = %change.item, error = %e, "not synced");
                continue;
            }
            changes.push(change);
        }
    }
    Ok(Page {
        changes,
        cursor: cursor.shown(),
        more,
    })
}

/// Rows of the feed not yet sent to `except` after `after` (for `sync status`).
pub fn pending(db: Db<'_>, after: Cursor, except: Option<&str>) -> Result<i64, SyncError> {
    let horizon = horizon(db)?;
    Ok(db
        .prepare_cached(
            "SELECT count(*) FROM sync_stamps WHERE (ord, id) > (?1, ?2) AND ord <= ?3 \
             AND (peer IS NULL OR peer <> ?4)",
        )?
        .query_row(
            params![after.ord, after.id, horizon, except.unwrap_or("")],
            |r| r.get(0),
        )?)
}

struct Scanned {
    at: Cursor,
    contact_id: i64,
    item: String,
    reference: Option<i64>,
    wall: i64,
    node: String,
    peer: Option<String>,
    email: Option<String>,
    columns: [Option<String>; 5],
}

/// The item's value now; none when it is gone (a union row deleted since).
fn current(db: Db<'_>, s: Scanned) -> Result<Option<Change>, SyncError> {
    let (kind, key) = s.item.split_at(2);
    let value = match kind {
        "s:" => {
            let row: Option<(String, i64)> = db
                .prepare_cached("SELECT reason, created_at FROM suppressions WHERE email_hash = ?1")?
                .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((reason, at)) = row else {
                return Ok(None);
            };
            json!({"reason": reason, "created_at": at})
        }
        _ if s.email.is_none() => return Ok(None),
        "f:" => match COLUMNS.iter().position(|c| *c == key) {
            Some(i) => s.columns[i].clone().map_or(Json::Null, Json::String),
            None => return Ok(None),
        },
        "c:" => db
            .prepare_cached(
                "SELECT value_text, value_num FROM contact_fields WHERE contact_id = ?1 AND field = ?2",
            )?
            .query_row(params![s.contact_id, key], |r| {
                Ok(from_columns(r.get(0)?, r.get(1)?))
            })
            .optional()?
            .unwrap_or(Json::Null),
        "t:" => Json::Bool(
            db.prepare_cached("SELECT 1 FROM contact_tags WHERE contact_id = ?1 AND tag = ?2")?
                .exists(params![s.contact_id, key])?,
        ),
        "l:" => Json::Bool(
            db.prepare_cached(
                "SELECT 1 FROM list_members WHERE contact_id = ?1 AND list_id = ?2",
            )?
            .exists(params![s.contact_id, key])?,
        ),
        "a:" => {
            let row = db
                .prepare_cached(
                    "SELECT type, subject, data, source, occurred_at FROM activities WHERE id = ?1",
                )?
                .query_row(params![s.reference], |r| {
                    let data: String = r.get(2)?;
                    Ok(json!({
                        "type": r.get::<String>(0)?,
                        "subject": r.get::<Option<String>>(1)?,
                        "data": serde_json::from_str::<Json>(&data).unwrap_or(Json::Null),
                        "source": r.get::<Option<String>>(3)?,
                        "occurred_at": r.get::<i64>(4)?,
                    }))
                })
                .optional()?;
            match row {
                Some(v) => v,
                None => return Ok(None),
            }
        }
        "p:" => {
            let row = db
                .prepare_cached(
                    "SELECT points, reason, created_at FROM score_adjustments WHERE id = ?1",
                )?
                .query_row(params![s.reference], |r| {
                    Ok(json!({
                        "points": r.get::<f64>(0)?,
                        "reason": r.get::<Option<String>>(1)?,
                        "created_at": r.get::<i64>(2)?,
                    }))
                })
                .optional()?;
            match row {
                Some(v) => v,
                None => return Ok(None),
            }
        }
        "k:" => {
            let row = db
                .prepare_cached(
                    "SELECT purpose, granted, source, wording, recorded_at FROM consent_ledger WHERE id = ?1",
                )?
                .query_row(params![s.reference], |r| {
                    Ok(json!({
                        "purpose": r.get::<String>(0)?,
                        "granted": r.get::<bool>(1)?,
                        "source": r.get::<Option<String>>(2)?,
                        "wording": r.get::<Option<String>>(3)?,
                        "recorded_at": r.get::<i64>(4)?,
                    }))
                })
                .optional()?;
            match row {
                Some(v) => v,
                None => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(Change {
        email: if kind == "s:" { None } else { s.email },
        item: s.item,
        wall: s.wall,
        node: s.node,
        value,
    }))
}

/// What applying a page did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Changes that changed this store.
    pub applied: usize,
    /// Changes this store had already, or had newer, or that an erasure absorbs.
    pub skipped: usize,
}

/// Checks a page before anything is written: a bad change refuses the page.
pub fn check(changes: &[Change]) -> Result<(), SyncError> {
    if changes.len() > MAX_PAGE {
        return Err(SyncError::BadChange {
            index: MAX_PAGE,
            why: format!("a page holds at most {MAX_PAGE} changes"),
        });
    }
    for (index, c) in changes.iter().enumerate() {
        let bad = |why: &str| SyncError::BadChange {
            index,
            why: why.to_string(),
        };
        if c.item.len() < 3 || !c.item.is_char_boundary(2) || c.item.len() > 300 {
            return Err(bad("`item` is not a sync item"));
        }
        if c.node.is_empty() || c.node.len() > 64 {
            return Err(bad("`node` must be 1 to 64 characters"));
        }
        let (kind, key) = c.item.split_at(2);
        match kind {
            "s:" => {
                if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("a suppression is named by a SHA-256 hash"));
                }
                if c.value.get("reason").and_then(Json::as_str).is_none() {
                    return Err(bad("a suppression needs a `reason`"));
                }
                continue;
            }
            "f:" if !COLUMNS.contains(&key) => return Err(bad("not a synced contact column")),
            "f:" if !(c.value.is_string() || c.value.is_null()) => {
                return Err(bad("a contact column is text or null"));
            }
            "f:" if key == "status"
                && !c.value.as_str().is_none_or(|v| {
                    ["active", "unsubscribed", "bounced", "complained"].contains(&v)
                }) =>
            {
                return Err(bad(
                    "a status is active, unsubscribed, bounced or complained",
                ));
            }
            "t:" | "l:" if !c.value.is_boolean() => {
                return Err(bad("a tag or list membership is true or false"));
            }
            "a:" if c.value.get("type").and_then(Json::as_str).is_none() => {
                return Err(bad("an activity needs a `type`"));
            }
            "p:" if !c
                .value
                .get("points")
                .and_then(Json::as_f64)
                .is_some_and(|p| p.abs() <= 1e9) =>
            {
                return Err(bad(
                    "a score adjustment needs `points` (at most 1e9 either way)",
                ));
            }
            "k:" if c.value.get("purpose").and_then(Json::as_str).is_none() => {
                return Err(bad("a consent record needs a `purpose`"));
            }
            "f:" | "c:" | "t:" | "l:" | "a:" | "p:" | "k:" => {}
            _ => return Err(bad("unknown item kind")),
        }
        let email = c.email.as_deref().unwrap_or_default();
        if !crate::validate::values::is_email(&normalize_email(email)) {
            return Err(bad("`email` is not an email address"));
        }
    }
    Ok(())
}

/// Joins `changes` from `peer` into this store. Call inside a write
/// transaction: a failure leaves nothing of the page. A received activity
/// counts toward the contact's engagement by this store's `scoring` rules
/// (none: left for the next recomputation).
pub fn apply(
    db: Db<'_>,
    peer: &str,
    changes: &[Change],
    now: UnixMs,
    scoring: Option<&Scoring>,
) -> Result<Applied, SyncError> {
    check(changes)?;
    if let Some(index) = changes.iter().position(|c| c.wall > now + MAX_DRIFT_MS) {
        // Such a stamp would win over every edit for a day or more.
        return Err(SyncError::BadChange {
            index,
            why: "stamped more than a day ahead of this store's clock; check the sending machine's clock".into(),
        });
    }
    let postgres = db.backend_name() != "sqlite";
    if postgres {
        // The triggers stamp nothing while this transaction applies (a setting
        // only it sees, so other rounds apply beside it: V30). As the triggers
        // do, received stamps hold the feed's lock: they take `ord`s too.
        db.execute_batch(
            "SELECT set_config('funnel.sync_applying', '1', true), \
             pg_advisory_xact_lock_shared(sync_lock_key())",
        )?;
    } else {
        db.prepare_cached("UPDATE sync_clock SET applying = 1")?
            .execute(params![])?;
    }
    let mut out = Applied::default();
    let seen_wall = changes
        .iter()
        .map(|c| c.wall)
        .filter(|w| *w <= now + MAX_DRIFT_MS)
        .max()
        .unwrap_or(0);
    // Erasures first: a page that erases a person and carries their older
    // edits must not re-create them.
    let erased: HashSet<&str> = changes
        .iter()
        .filter(|c| c.item.starts_with("s:") && reason(c) == Some("forgotten"))
        .map(|c| &c.item[2..])
        .collect();
    // Which of them are news here: those are passed on to other stores
    // even when this store had an older suppression of the address.
    let mut news = HashSet::new();
    for hash in &erased {
        let reason: Option<String> = db
            .prepare_cached("SELECT reason FROM suppressions WHERE email_hash = ?1")?
            .query_row(params![hash], |r| r.get(0))
            .optional()?;
        if reason.as_deref() != Some("forgotten") {
            news.insert(*hash);
        }
    }
    if !erased.is_empty() {
        erase_matching(db, &erased, now)?;
    }
    // Suppressions first too, for the same reason; then the contacts' items
    // in bulk.
    let (first, rest): (Vec<&Change>, Vec<&Change>) =
        changes.iter().partition(|c| c.item.starts_with("s:"));
    for c in first {
        out.applied += usize::from(suppress(db, peer, c, news.contains(&c.item[2..]))?);
    }
    out.applied += super::bulk::apply_items(db, peer, &rest, now, scoring)?;
    out.skipped = changes.len() - out.applied;
    if postgres {
        db.execute_batch("SELECT set_config('funnel.sync_applying', '0', true)")?;
        // Locks the clock row only when the wall moves, and only from here
        // to the commit.
        db.prepare_cached("UPDATE sync_clock SET wall = ?1 WHERE wall < ?1")?
            .execute(params![seen_wall])?;
    } else {
        db.prepare_cached(
            "UPDATE sync_clock SET applying = 0, wall = CASE WHEN wall < ?1 THEN ?1 ELSE wall END",
        )?
        .execute(params![seen_wall])?;
    }
    Ok(out)
}

fn reason(c: &Change) -> Option<&str> {
    c.value.get("reason").and_then(Json::as_str)
}

/// The order of a stamp written now.
pub(super) fn ord_sql(db: Db<'_>) -> &'static str {
    if db.backend_name() == "sqlite" {
        "(max((SELECT ord_floor FROM sync_clock), (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1)"
    } else {
        "nextval('sync_ord')"
    }
}

/// Writes a received stamp for an item (it moves the item forward in this
/// store's feed, for the stores this one passes it on to).
fn stamp(
    db: Db<'_>,
    peer: &str,
    contact_id: i64,
    c: &Change,
    reference: Option<i64>,
) -> Result<(), StoreError> {
    let ord = ord_sql(db);
    let sql = format!(
        "INSERT INTO sync_stamps (contact_id, item, ref, wall, node, ord, peer) \
         VALUES (?1, ?2, ?3, ?4, ?5, {ord}, ?6) \
         ON CONFLICT (contact_id, item) DO UPDATE SET ref = excluded.ref, wall = excluded.wall, \
         node = excluded.node, ord = excluded.ord, peer = excluded.peer"
    );
    db.prepare_cached(&sql)?
        .execute(params![contact_id, c.item, reference, c.wall, c.node, peer])?;
    Ok(())
}

/// Erases the local contacts whose address hashes are in `hashes`.
fn erase_matching(db: Db<'_>, hashes: &HashSet<&str>, now: UnixMs) -> Result<(), SyncError> {
    // Addresses are kept in clear and suppressions by hash only: finding the
    // person means hashing every address (an erasure is rare; a page of them
    // costs one scan).
    let ids: Vec<i64> = {
        let mut stmt = db.prepare_cached("SELECT id, email FROM contacts")?;
        let mut rows = stmt.query(params![])?;
        let mut ids = Vec::new();
        while let Some(r) = rows.next()? {
            let email: String = r.get(1)?;
            if hashes.contains(email_hash(&email).as_str()) {
                ids.push(r.get(0)?);
            }
        }
        ids
    };
    for id in ids {
        crate::crm::privacy::forget(db, id, now)?;
    }
    Ok(())
}

/// A suppression: added where missing; an erasure replaces a lesser reason.
/// Its stamp keeps the later of the two; it is written again (a new place in
/// this store's feed) whenever the suppression changed here, so an erasure
/// reaches the stores this one passes changes on to. `news`: the page erased
/// a person this store had not (already applied by `erase_matching`).
fn suppress(db: Db<'_>, peer: &str, c: &Change, news: bool) -> Result<bool, SyncError> {
    let hash = &c.item[2..];
    let incoming = reason(c).unwrap_or("suppressed");
    let local: Option<String> = db
        .prepare_cached("SELECT reason FROM suppressions WHERE email_hash = ?1")?
        .query_row(params![hash], |r| r.get(0))
        .optional()?;
    let stamped: Option<(i64, String)> = db
        .prepare_cached("SELECT wall, node FROM sync_stamps WHERE contact_id = 0 AND item = ?1")?
        .query_row(params![c.item], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let write = match local.as_deref() {
        None => stamped.is_none(),
        Some("forgotten") => false,
        Some(_) => incoming == "forgotten",
    };
    if write {
        let at = c
            .value
            .get("created_at")
            .and_then(Json::as_i64)
            .unwrap_or(c.wall);
        db.prepare_cached(
            "INSERT INTO suppressions (email_hash, reason, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (email_hash) DO UPDATE SET reason = excluded.reason",
        )?
        .execute(params![hash, incoming, at])?;
    }
    let later = stamped
        .as_ref()
        .is_none_or(|(wall, node)| (c.wall, c.node.as_str()) > (*wall, node.as_str()));
    let changed = write || news;
    if later {
        stamp(db, peer, 0, c, None)?;
    } else if changed && let Some((wall, node)) = stamped {
        let kept = Change {
            wall,
            node,
            ..c.clone()
        };
        stamp(db, peer, 0, &kept, None)?;
    }
    Ok(changed)
}

/// One item of a contact.
pub(super) fn item(
    db: Db<'_>,
    peer: &str,
    id: i64,
    c: &Change,
    now: UnixMs,
    scoring: Option<&Scoring>,
) -> Result<bool, SyncError> {
    let (kind, key) = c.item.split_at(2);
    let local: Option<(i64, String)> = db
        .prepare_cached("SELECT wall, node FROM sync_stamps WHERE contact_id = ?1 AND item = ?2")?
        .query_row(params![id, c.item], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if matches!(kind, "a:" | "p:" | "k:") {
        if local.is_some() {
            return Ok(false);
        }
        let reference = union_row(db, id, kind, &c.value, scoring)?;
        stamp(db, peer, id, c, Some(reference))?;
        return Ok(true);
    }
    if let Some((wall, node)) = &local {
        let ours = (*wall, node.as_str());
        let theirs = (c.wall, c.node.as_str());
        if theirs < ours {
            return Ok(false);
        }
        // Equal stamps: the value's text decides, as in `merge::Register`.
        if theirs == ours
            && c.value.to_string().cmp(&current_text(db, id, kind, key)?)
                != std::cmp::Ordering::Greater
        {
            return Ok(false);
        }
    }
    match kind {
        "f:" => {
            // The column is one of COLUMNS (checked), so naming it is safe.
            let sql = format!("UPDATE contacts SET {key} = ?1, updated_at = ?2 WHERE id = ?3");
            let value = c.value.as_str();
            if key == "status" && value.is_none() {
                // status is never null: a cleared status is the default.
                db.prepare(&sql)?.execute(params!["active", now, id])?;
            } else {
                db.prepare(&sql)?.execute(params![value, now, id])?;
            }
        }
        "c:" => {
            if c.value.is_null() {
                db.prepare_cached(
                    "DELETE FROM contact_fields WHERE contact_id = ?1 AND field = ?2",
                )?
                .execute(params![id, key])?;
            } else {
                let (text, num) = to_columns(&c.value);
                db.prepare_cached(
                    "INSERT INTO contact_fields (contact_id, field, value_text, value_num) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (contact_id, field) DO UPDATE SET \
                     value_text = excluded.value_text, value_num = excluded.value_num",
                )?
                .execute(params![id, key, text, num])?;
            }
        }
        "t:" => {
            if c.value == Json::Bool(true) {
                db.prepare_cached(
                    "INSERT INTO contact_tags (contact_id, tag, added_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (contact_id, tag) DO NOTHING",
                )?
                .execute(params![id, key, c.wall])?;
            } else {
                db.prepare_cached("DELETE FROM contact_tags WHERE contact_id = ?1 AND tag = ?2")?
                    .execute(params![id, key])?;
            }
        }
        _ => {
            if c.value == Json::Bool(true) {
                db.prepare_cached(
                    "INSERT INTO list_members (list_id, contact_id, added_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (list_id, contact_id) DO NOTHING",
                )?
                .execute(params![key, id, c.wall])?;
            } else {
                db.prepare_cached(
                    "DELETE FROM list_members WHERE contact_id = ?1 AND list_id = ?2",
                )?
                .execute(params![id, key])?;
            }
        }
    }
    stamp(db, peer, id, c, None)?;
    Ok(true)
}

/// A register's value here, as JSON text (for breaking a tie of stamps).
fn current_text(db: Db<'_>, id: i64, kind: &str, key: &str) -> Result<String, SyncError> {
    let value = match kind {
        "f:" => {
            let sql = format!("SELECT {key} FROM contacts WHERE id = ?1");
            db.prepare(&sql)?
                .query_row(params![id], |r| r.get::<Option<String>>(0))?
                .map_or(Json::Null, Json::String)
        }
        "c:" => db
            .prepare_cached(
                "SELECT value_text, value_num FROM contact_fields WHERE contact_id = ?1 AND field = ?2",
            )?
            .query_row(params![id, key], |r| Ok(from_columns(r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or(Json::Null),
        "t:" => Json::Bool(
            db.prepare_cached("SELECT 1 FROM contact_tags WHERE contact_id = ?1 AND tag = ?2")?
                .exists(params![id, key])?,
        ),
        _ => Json::Bool(
            db.prepare_cached(
                "SELECT 1 FROM list_members WHERE contact_id = ?1 AND list_id = ?2",
            )?
            .exists(params![id, key])?,
        ),
    };
    Ok(value.to_string())
}

/// Inserts a received activity, score adjustment or consent record; its id.
fn union_row(
    db: Db<'_>,
    id: i64,
    kind: &str,
    v: &Json,
    scoring: Option<&Scoring>,
) -> Result<i64, SyncError> {
    let text = |k: &str| v.get(k).and_then(Json::as_str).map(str::to_string);
    let int = |k: &str| v.get(k).and_then(Json::as_i64).unwrap_or_default();
    let row = match kind {
        "a:" => db
            .prepare_cached(
                "INSERT INTO activities (contact_id, type, subject, data, source, occurred_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            )?
            .query_row(
                params![
                    id,
                    text("type"),
                    text("subject"),
                    v.get("data").cloned().unwrap_or(json!({})).to_string(),
                    text("source"),
                    int("occurred_at")
                ],
                |r| r.get(0),
            )
            .and_then(|row: i64| {
                db.prepare_cached(
                    "UPDATE contacts SET last_activity = max(coalesce(last_activity, ?2), ?2) WHERE id = ?1",
                )?
                .execute(params![id, int("occurred_at")])?;
                Ok(row)
            })?,
        "p:" => db
            .prepare_cached(
                "INSERT INTO score_adjustments (contact_id, points, reason, created_at) \
                 VALUES (?1, ?2, ?3, ?4) RETURNING id",
            )?
            .query_row(
                params![
                    id,
                    v.get("points").and_then(Json::as_f64).unwrap_or_default(),
                    text("reason"),
                    int("created_at")
                ],
                |r| r.get(0),
            )
            .and_then(|row: i64| {
                // The score's stored sum of adjustments, as `adjust_score` keeps it.
                db.prepare_cached("UPDATE contacts SET adjustments = adjustments + ?2 WHERE id = ?1")?
                    .execute(params![id, v.get("points").and_then(Json::as_f64).unwrap_or_default()])?;
                Ok(row)
            })?,
        _ => {
            let email: String = db
                .prepare_cached("SELECT email FROM contacts WHERE id = ?1")?
                .query_row(params![id], |r| r.get(0))?;
            db.prepare_cached(
                "INSERT INTO consent_ledger (contact_id, email_hash, purpose, granted, source, wording, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            )?
            .query_row(
                params![
                    id,
                    email_hash(&email),
                    text("purpose"),
                    v.get("granted").and_then(Json::as_bool).unwrap_or(false),
                    text("source"),
                    text("wording"),
                    int("recorded_at")
                ],
                |r| r.get(0),
            )?
        }
    };
    if let (Some(scoring), "a:") = (scoring, kind) {
        scoring.accrue(
            db,
            id,
            text("type").as_deref().unwrap_or_default(),
            text("subject").as_deref(),
            v.get("data").unwrap_or(&Json::Null),
            int("occurred_at"),
        )?;
    }
    Ok(row)
}

/// Where this store stands with a peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerState {
    pub peer: String,
    pub name: Option<String>,
    /// The end of this store's feed the peer acknowledged.
    pub pushed: String,
    /// The end of the peer's feed applied here.
    pub pulled: String,
    pub synced_at: Option<UnixMs>,
}

/// The state kept for `name` (a remote's name), if it synced before.
pub fn peer_by_name(db: Db<'_>, name: &str) -> Result<Option<PeerState>, StoreError> {
    db.prepare_cached(
        "SELECT peer, name, pushed, pulled, synced_at FROM sync_peers WHERE name = ?1",
    )?
    .query_row(params![name], |r| {
        Ok(PeerState {
            peer: r.get(0)?,
            name: r.get(1)?,
            pushed: r.get(2)?,
            pulled: r.get(3)?,
            synced_at: r.get(4)?,
        })
    })
    .optional()
}

/// Records where this store stands with a peer.
pub fn save_peer(db: Db<'_>, p: &PeerState) -> Result<(), StoreError> {
    db.prepare_cached(
        "INSERT INTO sync_peers (peer, name, pushed, pulled, synced_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (peer) DO UPDATE SET name = excluded.name, pushed = excluded.pushed, \
         pulled = excluded.pulled, synced_at = excluded.synced_at",
    )?
    .execute(params![p.peer, p.name, p.pushed, p.pulled, p.synced_at])?;
    Ok(())
}
