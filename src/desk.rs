//! The marketer's desk: everything the TUI reads and changes, as one trait. A
//! screen asks a [`Source`] and never a database, so the same screens run on
//! the workspace's own store ([`local::Local`]) or on a team's daemon through
//! its API ([`remote::Remote`]), where the daemon answers each request with a
//! [`local::Local`] of its own under the token's name. Every read is bounded
//! (a page, a window of time), so a screen costs the same on a store of a
//! hundred contacts as on one of a million.

pub mod local;
pub mod remote;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::crm::deal::DealRow;
use crate::crm::directory::{Cursor, Summary, TimelineEntry};
use crate::email::campaign::{Plan, VariantStats};
use crate::engine::manage::{ExecutionDetail, ExecutionRow};
use crate::model::contacts::Condition;
use crate::store::UnixMs;

/// A read or a change that failed, as the person at the keyboard should see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct SourceError {
    pub kind: ErrorKind,
    pub message: String,
}

/// What kind of failure, so the daemon answers each with its status and a
/// remote desk shows the daemon's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request names what does not fit (a list, a field, a state).
    Invalid,
    /// The contact, execution or campaign is not there (any more).
    NotFound,
    /// The person may not make this change (no name for the audit log, a
    /// role too small).
    Refused,
    /// The store or the remote failed; trying again may work.
    Unavailable,
}

impl SourceError {
    pub fn new(message: impl Into<String>) -> SourceError {
        SourceError::of(ErrorKind::Invalid, message)
    }

    pub fn of(kind: ErrorKind, message: impl Into<String>) -> SourceError {
        SourceError {
            kind,
            message: message.into(),
        }
    }
}

impl From<crate::store::StoreError> for SourceError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError as S;
        match e {
            S::NotFound(m) => SourceError::of(ErrorKind::NotFound, m),
            S::NoRows => SourceError::of(ErrorKind::NotFound, "it is not there (any more)"),
            S::Invalid(m) => SourceError::new(m),
            other => SourceError::of(ErrorKind::Unavailable, other.to_string()),
        }
    }
}

impl From<crate::crm::CrmError> for SourceError {
    fn from(e: crate::crm::CrmError) -> Self {
        use crate::crm::CrmError as C;
        match e {
            C::Store(s) => s.into(),
            C::NoContact(_) | C::NotFound(_) => SourceError::of(ErrorKind::NotFound, e.to_string()),
            other => SourceError::new(other.to_string()),
        }
    }
}

impl From<crate::engine::EngineError> for SourceError {
    fn from(e: crate::engine::EngineError) -> Self {
        use crate::engine::EngineError as E;
        match e {
            E::Store(s) => s.into(),
            E::UnknownExecution(_) | E::UnknownWorkflow(_) => {
                SourceError::of(ErrorKind::NotFound, e.to_string())
            }
            other => SourceError::new(other.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, SourceError>;

/// What does not change while the TUI runs (until the workspace is reloaded).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// Where the data comes from (`.funnel/funnel.db`, a remote's name).
    pub location: String,
    /// Who changes are recorded as; `None` refuses changes.
    pub actor: Option<String>,
    pub segments: Vec<String>,
    pub lists: Vec<String>,
    /// The custom fields of contacts/fields.yaml: the only ones a change sets.
    pub fields: Vec<String>,
    pub pipelines: Vec<Pipeline>,
    pub workflows: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub id: String,
    pub name: String,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub id: String,
    pub name: String,
    pub probability: f64,
}

/// Everything the detail pane shows of one contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactDetail {
    pub summary: Summary,
    /// The contact as templates see it (fields, tags, lists, score, …).
    pub view: Json,
    /// The score's parts (`funnel contacts score-explain`).
    pub score: Json,
    pub deals: Vec<DealRow>,
    pub consent: Vec<ConsentEntry>,
    pub timeline: Vec<TimelineEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEntry {
    pub purpose: String,
    pub granted: bool,
    pub source: Option<String>,
    pub recorded_at: UnixMs,
}

/// One campaign with its plan (before sending) or its numbers (after).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignRow {
    pub key: String,
    pub name: String,
    pub status: String,
    pub recipients: Option<i64>,
    pub winner: Option<String>,
    pub plan: Option<Plan>,
    pub stats: Vec<VariantStats>,
}

/// Two contacts that look like one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DuplicatePair {
    pub a: Summary,
    pub b: Summary,
    pub score: f64,
    pub reason: String,
}

/// One stage of a pipeline's board: every deal counted, the newest shown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DealColumn {
    pub stage: String,
    pub count: u64,
    pub total: f64,
    pub deals: Vec<DealRow>,
}

/// Executions of one workflow by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowCounts {
    pub workflow: String,
    pub running: u64,
    pub waiting: u64,
    pub failed: u64,
    pub completed: u64,
}

/// The dashboard's numbers: totals, and series oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub contacts: u64,
    /// New contacts per day, the last 14 days.
    pub new_contacts: Vec<u64>,
    /// Form posts per site and component, the last 30 days, most first.
    pub conversions: Vec<(String, u64)>,
    /// Executions started per hour, the last 24 hours.
    pub executions: Vec<u64>,
    /// Email opens and clicks per day, the last 14 days.
    pub opens: Vec<u64>,
    pub clicks: Vec<u64>,
}

/// A change made from the TUI; each is audited with the actor's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "change", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    AddTags {
        contact: i64,
        tags: Vec<String>,
    },
    RemoveTags {
        contact: i64,
        tags: Vec<String>,
    },
    AddToList {
        contact: i64,
        list: String,
    },
    RemoveFromList {
        contact: i64,
        list: String,
    },
    SetField {
        contact: i64,
        name: String,
        value: Json,
    },
    SetStage {
        contact: i64,
        stage: String,
    },
    MoveDeal {
        deal: i64,
        pipeline: String,
        stage: String,
    },
    /// One change (a tag, a list, a field) on the marked contacts.
    Bulk {
        contacts: Vec<i64>,
        action: crate::crm::bulk::Action,
    },
    /// One change on every contact a segment and a filter line (`crm::filter`)
    /// match, as `funnel contacts bulk` makes it.
    BulkFilter {
        segment: Option<String>,
        filter: String,
        action: crate::crm::bulk::Action,
    },
    /// `other` merged into `keep` (both histories kept; undone by `Unmerge`).
    Merge {
        keep: i64,
        other: i64,
    },
    Unmerge {
        keep: i64,
        other: i64,
    },
    /// `a` and `b` are two people: never offered as duplicates again.
    Dismiss {
        a: i64,
        b: i64,
    },
    Undismiss {
        a: i64,
        b: i64,
    },
    /// Erase the person everywhere and suppress the address.
    Forget {
        contact: i64,
    },
    CampaignSend {
        key: String,
    },
    CampaignPause {
        key: String,
    },
    CampaignResume {
        key: String,
    },
    RetryExecution {
        uid: String,
    },
    CancelExecution {
        uid: String,
    },
}

/// The TUI's data, wherever it lives.
pub trait Source: Send + Sync {
    fn info(&self) -> &Info;
    /// The time screens are drawn at (fixed in tests, so snapshots hold).
    fn now(&self) -> UnixMs;
    /// A page of contacts, newest first.
    fn contacts(
        &self,
        filter: Option<&Condition>,
        cursor: Cursor,
        limit: usize,
    ) -> Result<Vec<Summary>>;
    /// Contacts matching every word, best first.
    fn search(&self, query: &str, limit: usize) -> Result<Vec<Summary>>;
    /// How many contacts meet `filter` (all contacts when `None`).
    fn count(&self, filter: Option<&Condition>) -> Result<u64>;
    fn contact(&self, id: i64) -> Result<ContactDetail>;
    /// A pipeline's board: one column per stage, in the pipeline's order.
    fn board(&self, pipeline: &str) -> Result<Vec<DealColumn>>;
    fn campaigns(&self) -> Result<Vec<CampaignRow>>;
    fn workflow_counts(&self) -> Result<Vec<WorkflowCounts>>;
    fn executions(&self, workflow: Option<&str>, status: Option<&str>)
    -> Result<Vec<ExecutionRow>>;
    fn execution(&self, uid: &str) -> Result<ExecutionDetail>;
    fn dashboard(&self) -> Result<Dashboard>;
    /// Likely duplicate pairs, best first, at most `limit` (reads the whole
    /// store: call it off the drawing thread).
    fn duplicates(&self, limit: usize) -> Result<Vec<DuplicatePair>>;
    /// Everything held about a person (`funnel contacts export-data`).
    fn export_data(&self, contact: i64) -> Result<Json>;
    /// Makes a change as the actor; what to tell them it did.
    fn apply(&self, change: Change) -> Result<String>;
}
