//! Bulk operations over a segment or a filter: tag, untag, add to or remove from a
//! list, set a field, delete. One transaction (the caller's): all contacts change
//! or none. The matching contacts are walked in pages of ids, never held at once.

use std::collections::BTreeMap;

use crate::store::db::Db;
use serde_json::Value as Json;

use super::scoring::Scoring;
use super::segment::{self, Mode, Scope};
use super::{CrmError, contact, directory};
use crate::model::contacts::Condition;
use crate::store::UnixMs;

/// What to do to every matching contact.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Tag(Vec<String>),
    Untag(Vec<String>),
    AddToList(String),
    RemoveFromList(String),
    SetField(String, Json),
    Delete,
}

const PAGE: usize = 1_000;

/// Applies `action` to every contact meeting `filter`; returns how many contacts
/// matched. `progress` hears the count so far after each page.
pub fn apply(
    conn: Db<'_>,
    scoring: &Scoring,
    filter: &Condition,
    action: &Action,
    now: UnixMs,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, CrmError> {
    let score = scoring.score_sql(conn, now, Mode::Set)?;
    let scope = Scope {
        segments: &scoring.segments,
        score: Some(&score),
        now,
        mode: Mode::Set,
    };
    let mut after = 0;
    let mut done = 0u64;
    loop {
        // Ids are taken page by page from the live predicate; a deletion removes
        // the page it read, so `after` still moves forward.
        let ids = segment::member_ids(conn, filter, &scope, after, PAGE)?;
        let Some(&last) = ids.last() else { break };
        for &id in &ids {
            match action {
                Action::Tag(tags) => {
                    contact::add_tags(conn, id, tags, now)?;
                }
                Action::Untag(tags) => {
                    contact::remove_tags(conn, id, tags)?;
                }
                Action::AddToList(list) => {
                    contact::add_to_list(conn, id, list, now)?;
                }
                Action::RemoveFromList(list) => {
                    contact::remove_from_list(conn, id, list)?;
                }
                Action::SetField(field, value) => {
                    let mut one = BTreeMap::new();
                    one.insert(field.clone(), value.clone());
                    contact::set_fields(conn, id, &one, now)?;
                }
                Action::Delete => {
                    directory::remove(conn, id)?;
                }
            }
            if !matches!(action, Action::Delete) && !scoring.fit.is_empty() {
                scoring.observe(conn, id, now)?;
            }
        }
        done += ids.len() as u64;
        progress(done);
        after = last;
        if ids.len() < PAGE {
            break;
        }
    }
    Ok(done)
}
