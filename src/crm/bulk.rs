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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
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
            apply_one(conn, scoring, id, action, now)?;
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

/// The action on the contacts with these ids (a marked selection), in the
/// caller's transaction. Returns how many there were.
pub fn apply_ids(
    conn: Db<'_>,
    scoring: &Scoring,
    ids: &[i64],
    action: &Action,
    now: UnixMs,
) -> Result<u64, CrmError> {
    for &id in ids {
        apply_one(conn, scoring, id, action, now)?;
    }
    Ok(ids.len() as u64)
}

fn apply_one(
    conn: Db<'_>,
    scoring: &Scoring,
    id: i64,
    action: &Action,
    now: UnixMs,
) -> Result<(), CrmError> {
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
    Ok(())
}

impl Action {
    /// A change typed on one line, as the TUI's bulk prompt takes it:
    /// `tag vip`, `untag vip`, `list newsletter`, `unlist newsletter`,
    /// `field plan=pro`. Deleting is not offered on one line.
    pub fn parse(line: &str) -> Result<Action, String> {
        const HINT: &str =
            "write `tag NAME`, `untag NAME`, `list ID`, `unlist ID` or `field NAME=VALUE`";
        let line = line.trim();
        let (verb, rest) = line.split_once(' ').ok_or_else(|| HINT.to_string())?;
        let rest = rest.trim();
        if rest.is_empty() {
            return Err(HINT.into());
        }
        let words = || {
            rest.split([',', ' '])
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect()
        };
        match verb {
            "tag" => Ok(Action::Tag(words())),
            "untag" => Ok(Action::Untag(words())),
            "list" => Ok(Action::AddToList(rest.to_string())),
            "unlist" => Ok(Action::RemoveFromList(rest.to_string())),
            "field" => {
                let (name, value) = rest.split_once('=').ok_or_else(|| HINT.to_string())?;
                let value = value.trim();
                let value = serde_json::from_str::<Json>(value)
                    .ok()
                    .filter(|v| !v.is_object() && !v.is_array())
                    .unwrap_or_else(|| Json::String(value.to_string()));
                Ok(Action::SetField(name.trim().to_string(), value))
            }
            _ => Err(format!("`{verb}` is not a change; {HINT}")),
        }
    }

    /// The change in words, for a confirmation.
    pub fn describe(&self) -> String {
        match self {
            Action::Tag(t) => format!("add tag {}", t.join(", ")),
            Action::Untag(t) => format!("remove tag {}", t.join(", ")),
            Action::AddToList(l) => format!("add to list {l}"),
            Action::RemoveFromList(l) => format!("remove from list {l}"),
            Action::SetField(f, v) => format!("set {f} = {v}"),
            Action::Delete => "delete".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_changes_read_as_actions() {
        assert_eq!(
            Action::parse("tag vip, q4"),
            Ok(Action::Tag(vec!["vip".into(), "q4".into()]))
        );
        assert_eq!(
            Action::parse("field seats=12"),
            Ok(Action::SetField("seats".into(), serde_json::json!(12)))
        );
        assert_eq!(
            Action::parse("field plan=pro"),
            Ok(Action::SetField("plan".into(), serde_json::json!("pro")))
        );
        assert_eq!(
            Action::parse("unlist newsletter"),
            Ok(Action::RemoveFromList("newsletter".into()))
        );
        assert!(Action::parse("delete all").is_err());
        assert!(Action::parse("tag").is_err());
        assert!(Action::parse("field nope").is_err());
    }
}
