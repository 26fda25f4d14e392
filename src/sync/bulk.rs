//! Applying a page's contact items in a few set-based statements instead of
//! four per change: the page travels into the store as one JSON parameter
//! (`json_each` on SQLite, `jsonb_array_elements` on PostgreSQL), so a page of
//! 2,000 changes costs a dozen round trips on PostgreSQL, not 8,000. The
//! decisions (which stamp is later) are made here in Rust, by the same rules
//! as [`super::store::apply`]'s single-row path, which still takes the rare
//! cases: equal stamps (the value's text decides) and union items (each needs
//! its new row's id).

use std::collections::{HashMap, HashSet};

use serde_json::{Value as Json, json};

use super::store::{COLUMNS, Change, SyncError, item, ord_sql};
use crate::crm::contact::to_columns;
use crate::crm::privacy::email_hash;
use crate::crm::scoring::Scoring;
use crate::store::UnixMs;
use crate::store::db::{Db, params};
use crate::store::ops::normalize_email;

/// The rows of the JSON array in parameter 1, each as `value`.
fn rows(db: Db<'_>) -> &'static str {
    if db.backend_name() == "sqlite" {
        "json_each(?1)"
    } else {
        "jsonb_array_elements(CAST(?1 AS jsonb)) AS j(value)"
    }
}

/// Applies `items` (changes of contacts, suppressions already applied);
/// returns how many changed this store.
pub(super) fn apply_items(
    db: Db<'_>,
    peer: &str,
    items: &[&Change],
    now: UnixMs,
    scoring: Option<&Scoring>,
) -> Result<usize, SyncError> {
    if items.is_empty() {
        return Ok(0);
    }
    let ids = contacts(db, items, now)?;
    // The latest change of each item in the page (a page may hold an item twice).
    let mut latest: HashMap<(i64, &str), &Change> = HashMap::new();
    for c in items {
        let email = normalize_email(c.email.as_deref().unwrap_or_default());
        let Some(&id) = ids.get(&email) else {
            continue; // erased here
        };
        let key = (id, c.item.as_str());
        let later = latest.get(&key).is_none_or(|seen| {
            (c.wall, c.node.as_str(), c.value.to_string())
                > (seen.wall, seen.node.as_str(), seen.value.to_string())
        });
        if later {
            latest.insert(key, c);
        }
    }
    let local = stamps(db, latest.keys().copied())?;
    let mut applied = 0;
    let mut winners: Vec<(i64, &Change)> = Vec::new();
    for (&(id, name), &c) in &latest {
        let union = matches!(&name[..2], "a:" | "p:" | "k:");
        match local.get(&(id, name.to_string())) {
            Some(_) if union => {}
            Some((wall, node)) if (c.wall, c.node.as_str()) < (*wall, node.as_str()) => {}
            Some((wall, node)) if (c.wall, c.node.as_str()) == (*wall, node.as_str()) => {
                applied += usize::from(item(db, peer, id, c, now, scoring)?);
            }
            _ if union => {
                applied += usize::from(item(db, peer, id, c, now, scoring)?);
            }
            _ => winners.push((id, c)),
        }
    }
    write(db, &winners, now)?;
    stamp_all(db, peer, &winners)?;
    Ok(applied + winners.len())
}

/// The local id of every address in `items`, contacts made bare where
/// missing; an erased address has none.
fn contacts(db: Db<'_>, items: &[&Change], now: UnixMs) -> Result<HashMap<String, i64>, SyncError> {
    let emails: HashSet<String> = items
        .iter()
        .map(|c| normalize_email(c.email.as_deref().unwrap_or_default()))
        .collect();
    let page = Json::from(emails.iter().map(|e| json!({"e": e})).collect::<Vec<_>>()).to_string();
    let src = rows(db);
    let mut ids = HashMap::with_capacity(emails.len());
    collect_ids(
        db,
        &format!("SELECT id, email FROM contacts WHERE email IN (SELECT value ->> 'e' FROM {src})"),
        &page,
        None,
        &mut ids,
    )?;
    let missing: Vec<(&String, String)> = emails
        .iter()
        .filter(|e| !ids.contains_key(*e))
        .map(|e| (e, email_hash(e)))
        .collect();
    if missing.is_empty() {
        return Ok(ids);
    }
    let hashes = Json::from(
        missing
            .iter()
            .map(|(_, h)| json!({"h": h}))
            .collect::<Vec<_>>(),
    )
    .to_string();
    let forgotten: HashSet<String> = {
        let sql = format!(
            "SELECT email_hash FROM suppressions WHERE reason = 'forgotten' \
             AND email_hash IN (SELECT value ->> 'h' FROM {src})"
        );
        let mut stmt = db.prepare_cached(&sql)?;
        stmt.query_map(params![hashes], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    let new: Vec<Json> = missing
        .iter()
        .filter(|(_, h)| !forgotten.contains(h))
        .map(|(e, _)| json!({"e": e, "u": crate::uid::new(now)}))
        .collect();
    if new.is_empty() {
        return Ok(ids);
    }
    collect_ids(
        db,
        &format!(
            "INSERT INTO contacts (uid, email, status, created_at, updated_at) \
             SELECT value ->> 'u', value ->> 'e', 'active', ?2, ?2 FROM {src} WHERE true \
             ON CONFLICT (email) DO NOTHING RETURNING id, email"
        ),
        &Json::from(new).to_string(),
        Some(now),
        &mut ids,
    )?;
    // Made meanwhile by another writer (PostgreSQL): read, not skipped.
    let raced: Vec<Json> = emails
        .iter()
        .filter(|e| !ids.contains_key(*e))
        .map(|e| json!({"e": e}))
        .collect();
    if !raced.is_empty() {
        collect_ids(
            db,
            &format!(
                "SELECT id, email FROM contacts WHERE email IN (SELECT value ->> 'e' FROM {src})"
            ),
            &Json::from(raced).to_string(),
            None,
            &mut ids,
        )?;
    }
    Ok(ids)
}

/// Adds the (id, email) rows `sql` answers to `ids`.
fn collect_ids(
    db: Db<'_>,
    sql: &str,
    page: &str,
    at: Option<i64>,
    ids: &mut HashMap<String, i64>,
) -> Result<(), SyncError> {
    let mut stmt = db.prepare_cached(sql)?;
    let mut found = match at {
        Some(at) => stmt.query(params![page, at])?,
        None => stmt.query(params![page])?,
    };
    while let Some(row) = found.next()? {
        ids.insert(row.get::<String>(1)?, row.get::<i64>(0)?);
    }
    Ok(())
}

/// A stamp held here: (wall, node).
type LocalStamp = (i64, String);

/// The local stamps of `keys`.
fn stamps<'k>(
    db: Db<'_>,
    keys: impl Iterator<Item = (i64, &'k str)>,
) -> Result<HashMap<(i64, String), LocalStamp>, SyncError> {
    let page = Json::from(
        keys.map(|(c, i)| json!({"c": c, "i": i}))
            .collect::<Vec<_>>(),
    )
    .to_string();
    let sql = format!(
        "SELECT s.contact_id, s.item, s.wall, s.node FROM sync_stamps s JOIN \
         (SELECT CAST(value ->> 'c' AS BIGINT) AS c, value ->> 'i' AS i FROM {}) k \
         ON s.contact_id = k.c AND s.item = k.i",
        rows(db)
    );
    let mut stmt = db.prepare_cached(&sql)?;
    let found = stmt.query_map(params![page], |r| {
        Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?)))
    })?;
    Ok(found.collect::<Result<_, _>>()?)
}

/// Writes the winning registers, a few statements per kind.
fn write(db: Db<'_>, winners: &[(i64, &Change)], now: UnixMs) -> Result<(), SyncError> {
    let src = rows(db);
    let of = |prefix: &'static str| {
        winners
            .iter()
            .filter(move |(_, c)| c.item.starts_with(prefix))
    };
    let run = |sql: String, page: Vec<Json>, second: Option<i64>| -> Result<(), SyncError> {
        if page.is_empty() {
            return Ok(());
        }
        let text = Json::from(page).to_string();
        let mut stmt = db.prepare_cached(&sql)?;
        match second {
            Some(v) => stmt.execute(params![text, v])?,
            None => stmt.execute(params![text])?,
        };
        Ok(())
    };
    for column in COLUMNS {
        let item = format!("f:{column}");
        let page: Vec<Json> = winners
            .iter()
            .filter(|(_, c)| c.item == item)
            .map(|(id, c)| {
                // status is never null: a cleared status is the default.
                let v = match (&c.value, column) {
                    (Json::Null, "status") => json!("active"),
                    (v, _) => v.clone(),
                };
                json!({"c": id, "v": v})
            })
            .collect();
        // The column is one of COLUMNS, so naming it is safe.
        run(
            format!(
                "UPDATE contacts SET {column} = x.v, updated_at = ?2 FROM \
                 (SELECT CAST(value ->> 'c' AS BIGINT) AS c, value ->> 'v' AS v FROM {src}) x \
                 WHERE contacts.id = x.c"
            ),
            page,
            Some(now),
        )?;
    }
    let (mut set, mut unset) = (Vec::new(), Vec::new());
    for (id, c) in of("c:") {
        let field = &c.item[2..];
        if c.value.is_null() {
            unset.push(json!({"c": id, "k": field}));
        } else {
            let (text, num) = to_columns(&c.value);
            set.push(json!({"c": id, "k": field, "t": text, "n": num}));
        }
    }
    run(
        format!(
            "INSERT INTO contact_fields (contact_id, field, value_text, value_num) \
             SELECT CAST(value ->> 'c' AS BIGINT), value ->> 'k', value ->> 't', \
             CAST(value ->> 'n' AS DOUBLE PRECISION) FROM {src} WHERE true \
             ON CONFLICT (contact_id, field) DO UPDATE SET value_text = excluded.value_text, \
             value_num = excluded.value_num"
        ),
        set,
        None,
    )?;
    run(
        format!(
            "DELETE FROM contact_fields WHERE (contact_id, field) IN \
             (SELECT CAST(value ->> 'c' AS BIGINT), value ->> 'k' FROM {src})"
        ),
        unset,
        None,
    )?;
    for (prefix, table, key, insert) in [
        (
            "t:",
            "contact_tags",
            "(contact_id, tag)",
            "INSERT INTO contact_tags (contact_id, tag, added_at) \
             SELECT CAST(value ->> 'c' AS BIGINT), value ->> 'k', CAST(value ->> 'w' AS BIGINT)",
        ),
        (
            "l:",
            "list_members",
            "(contact_id, list_id)",
            "INSERT INTO list_members (contact_id, list_id, added_at) \
             SELECT CAST(value ->> 'c' AS BIGINT), value ->> 'k', CAST(value ->> 'w' AS BIGINT)",
        ),
    ] {
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for (id, c) in of(prefix) {
            let row = json!({"c": id, "k": &c.item[2..], "w": c.wall});
            if c.value == Json::Bool(true) {
                on.push(row);
            } else {
                off.push(row);
            }
        }
        let conflict = if table == "contact_tags" {
            "(contact_id, tag)"
        } else {
            "(list_id, contact_id)"
        };
        run(
            format!("{insert} FROM {src} WHERE true ON CONFLICT {conflict} DO NOTHING"),
            on,
            None,
        )?;
        run(
            format!(
                "DELETE FROM {table} WHERE {key} IN \
                 (SELECT CAST(value ->> 'c' AS BIGINT), value ->> 'k' FROM {src})"
            ),
            off,
            None,
        )?;
    }
    Ok(())
}

/// Writes the winners' stamps as received, from `peer`.
fn stamp_all(db: Db<'_>, peer: &str, winners: &[(i64, &Change)]) -> Result<(), SyncError> {
    if winners.is_empty() {
        return Ok(());
    }
    let page = Json::from(
        winners
            .iter()
            .map(|(id, c)| json!({"c": id, "i": c.item, "w": c.wall, "n": c.node}))
            .collect::<Vec<_>>(),
    )
    .to_string();
    let sql = format!(
        "INSERT INTO sync_stamps (contact_id, item, ref, wall, node, ord, peer) \
         SELECT CAST(value ->> 'c' AS BIGINT), value ->> 'i', NULL, CAST(value ->> 'w' AS BIGINT), \
         value ->> 'n', {}, ?2 FROM {} WHERE true \
         ON CONFLICT (contact_id, item) DO UPDATE SET ref = excluded.ref, wall = excluded.wall, \
         node = excluded.node, ord = excluded.ord, peer = excluded.peer",
        ord_sql(db),
        rows(db)
    );
    db.prepare_cached(&sql)?.execute(params![page, peer])?;
    Ok(())
}
