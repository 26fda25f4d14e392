//! The CRM core: contacts, tags, typed custom fields, score adjustments, lifecycle
//! stage, static lists, activities and deals, as operations inside a store write
//! transaction (SQLite's writer connection).
//!
//! Every change returns the [`CrmEvent`]s it caused, so that the engine can start the
//! workflows they trigger in the same transaction. The lead score is the sum of its
//! adjustments here; the CRM issue adds fit and engagement rules to the same
//! [`contact::score`] function.

pub mod attribution;
pub mod bulk;
pub mod company;
pub mod contact;
pub mod deal;
pub mod dedupe;
pub mod directory;
pub mod export;
pub mod filter;
pub mod import;
pub mod merge;
pub mod privacy;
pub mod scoring;
pub mod segment;

use serde_json::Value as Json;

use crate::store::StoreError;

/// A change to a contact that triggers may react to. Serialized when an import
/// queues the events it causes (see [`import`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CrmEvent {
    ContactCreated {
        contact_id: i64,
        source: Option<String>,
    },
    TagAdded {
        contact_id: i64,
        tag: String,
    },
    ListJoined {
        contact_id: i64,
        list: String,
    },
    FieldChanged {
        contact_id: i64,
        field: String,
        from: Json,
        to: Json,
    },
    ScoreCrossed {
        contact_id: i64,
        threshold: f64,
        score: f64,
        previous_score: f64,
        up: bool,
    },
    StageChanged {
        contact_id: i64,
        from: Option<String>,
        to: String,
    },
    DealStageChanged {
        contact_id: i64,
        deal_id: i64,
        pipeline: String,
        stage: String,
        from_stage: Option<String>,
        value: Option<f64>,
    },
}

impl CrmEvent {
    /// What a trigger must listen to for this event to matter: its trigger type,
    /// with the tag or field for `tag_added` and `field_changed`.
    pub fn queue_key(&self) -> String {
        match self {
            CrmEvent::TagAdded { tag, .. } => format!("tag_added:{tag}"),
            CrmEvent::ListJoined { list, .. } => format!("list_joined:{list}"),
            CrmEvent::FieldChanged { field, .. } => format!("field_changed:{field}"),
            other => other.trigger_type().to_string(),
        }
    }

    /// The trigger type that reacts to this event (`tag_added`, …).
    pub fn trigger_type(&self) -> &'static str {
        match self {
            CrmEvent::ContactCreated { .. } => "contact_created",
            CrmEvent::TagAdded { .. } => "tag_added",
            CrmEvent::ListJoined { .. } => "list_joined",
            CrmEvent::FieldChanged { .. } => "field_changed",
            CrmEvent::ScoreCrossed { .. } => "score_crossed",
            CrmEvent::StageChanged { .. } => "stage_changed",
            CrmEvent::DealStageChanged { .. } => "deal_stage_changed",
        }
    }
}

/// Why a CRM change was refused.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    #[error("`{0}` is not an email address")]
    BadEmail(String),
    #[error("no contact with id {0}")]
    NoContact(i64),
    #[error("no contact `{0}` (give an email address or a contact id)")]
    NotFound(String),
    #[error(
        "this step needs a contact, and the execution has none (add an upsert_contact step first)"
    )]
    NeedsContact,
    #[error(transparent)]
    Segment(#[from] segment::SegmentError),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for CrmError {
    fn from(e: rusqlite::Error) -> Self {
        CrmError::Store(StoreError::from(e))
    }
}

/// A stored value as JSON, column by column (blobs, which the CRM does not store,
/// as null). Shared by merge snapshots and data exports.
pub(crate) fn sql_json(v: crate::store::db::Value<'static>) -> Json {
    type Sql = crate::store::db::Value<'static>;
    match v {
        Sql::Null | Sql::Blob(_) => Json::Null,
        Sql::Int(i) => Json::from(i),
        Sql::Real(f) => Json::from(f),
        Sql::Text(t) => Json::String(t.into_owned()),
    }
}

/// The thresholds `score` crossed when moving from `previous`, each with its
/// direction. One function for both the engine's adjustments and the CRM's sweep.
pub fn crossings(previous: f64, score: f64, thresholds: &[f64]) -> Vec<(f64, bool)> {
    thresholds
        .iter()
        .filter_map(|&t| {
            if previous < t && score >= t {
                Some((t, true))
            } else if previous >= t && score < t {
                Some((t, false))
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::crossings;

    #[test]
    fn crossings_in_both_directions() {
        assert_eq!(crossings(40.0, 55.0, &[50.0, 80.0]), vec![(50.0, true)]);
        assert_eq!(
            crossings(85.0, 45.0, &[50.0, 80.0]),
            vec![(50.0, false), (80.0, false)]
        );
        assert!(crossings(50.0, 60.0, &[50.0]).is_empty());
    }
}
