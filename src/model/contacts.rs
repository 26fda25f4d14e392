//! `contacts/*.yaml`: custom fields, static lists, segments, scoring rules and
//! pipelines: the CRM's design, kept as code.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalar::{DurationText, Ident};
use super::workflow::LifecycleStage;

/// `contacts/fields.yaml`: custom contact fields, by name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldsFile {
    pub fields: BTreeMap<String, FieldDef>,
}

/// One custom field.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// For `select` and `multi_select`: the allowed values.
    #[serde(default)]
    pub options: Vec<String>,
    /// Personal data, erased by `contacts forget` (default true).
    #[serde(default)]
    pub personal: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Number,
    Integer,
    Boolean,
    Date,
    Datetime,
    Select,
    MultiSelect,
    Email,
    Url,
    Phone,
}

/// `contacts/lists.yaml`: static lists, by id.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListsFile {
    pub lists: BTreeMap<String, ListDef>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Joining needs confirmed consent (double opt-in).
    #[serde(default)]
    pub double_opt_in: bool,
    /// The email that asks to confirm a join (default: the built-in
    /// `confirm-subscription`); it sees `data.list`, `data.list_name` and
    /// `data.confirm_url`.
    #[serde(default)]
    pub confirmation_template: Option<super::scalar::Ident>,
    /// Offered on the email preference page: anyone can join it there, not
    /// only leave it.
    #[serde(default)]
    pub public: bool,
}

/// `contacts/segments.yaml`: segments, by id; membership is computed when asked.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentsFile {
    pub segments: BTreeMap<String, SegmentDef>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The condition a contact must meet.
    #[serde(rename = "match")]
    pub matches: Condition,
}

/// A condition over a contact. Exactly one key.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Every condition holds.
    All(Vec<Condition>),
    /// At least one condition holds.
    Any(Vec<Condition>),
    /// The condition does not hold.
    Not(Box<Condition>),
    /// A built-in or custom field compares to a value.
    Field(FieldCondition),
    /// The contact has this tag.
    Tag(String),
    /// The contact is a member of this static list.
    List(Ident),
    /// The contact is in another segment.
    Segment(Ident),
    /// The lead score is within a range.
    Score(Range),
    /// The contact's status.
    Status(ContactStatus),
    /// The contact's lifecycle stage.
    Stage(LifecycleStage),
    /// The contact did something (page view, form submit, …) at least / at most so
    /// many times within a window.
    Activity(ActivityCondition),
    /// Email engagement: opened or clicked within a window.
    Email(EmailCondition),
}

/// Compares a field: `name` and exactly one operator (several conditions on one
/// field go under `all:`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    /// A built-in field (`email`, `name`, `source`, …) or a custom field.
    pub name: String,
    #[serde(default)]
    pub eq: Option<serde_json::Value>,
    #[serde(default)]
    pub ne: Option<serde_json::Value>,
    #[serde(default)]
    pub gt: Option<f64>,
    #[serde(default)]
    pub gte: Option<f64>,
    #[serde(default)]
    pub lt: Option<f64>,
    #[serde(default)]
    pub lte: Option<f64>,
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub exists: Option<bool>,
}

/// A numeric range; either bound may be left out.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Range {
    #[serde(default)]
    pub gte: Option<f64>,
    #[serde(default)]
    pub lte: Option<f64>,
    #[serde(default)]
    pub gt: Option<f64>,
    #[serde(default)]
    pub lt: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactStatus {
    Active,
    Unsubscribed,
    Bounced,
    Complained,
    Erased,
}

/// Activities of one type, filtered by their data, counted in a window.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityCondition {
    /// `page_view`, `form_submit`, `email_opened`, `email_clicked`, … or a custom type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Equality filters on the activity's data, e.g. `page: /pricing`.
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub at_least: Option<u32>,
    #[serde(default)]
    pub at_most: Option<u32>,
    /// The window, counted back from now, e.g. `7d`.
    #[serde(default)]
    pub within: Option<DurationText>,
}

/// Email engagement.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailCondition {
    pub event: EmailEvent,
    /// Only emails from this template.
    #[serde(default)]
    pub template: Option<Ident>,
    #[serde(default)]
    pub at_least: Option<u32>,
    #[serde(default)]
    pub at_most: Option<u32>,
    #[serde(default)]
    pub within: Option<DurationText>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailEvent {
    Sent,
    Opened,
    Clicked,
    Bounced,
    Unsubscribed,
}

/// `contacts/scoring.yaml`: lead scoring rules.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoringFile {
    /// Engagement points halve after this long, e.g. `14d`.
    pub half_life: DurationText,
    /// Named score thresholds; crossing one fires `score_crossed`.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f64>,
    /// Points for who the contact is, from its fields.
    #[serde(default)]
    pub fit: Vec<FitRule>,
    /// Points for what the contact does; they decay with `half_life`.
    #[serde(default)]
    pub engagement: Vec<EngagementRule>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FitRule {
    pub name: String,
    /// The condition the contact must meet.
    pub when: Condition,
    pub points: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EngagementRule {
    pub name: String,
    /// The activity type that earns the points.
    pub activity: String,
    /// Equality filters on the activity's data.
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, serde_json::Value>,
    pub points: f64,
    /// Most points this rule gives per day.
    #[serde(default)]
    pub max_per_day: Option<f64>,
}

/// `contacts/pipelines.yaml`: sales pipelines, by id.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelinesFile {
    pub pipelines: BTreeMap<String, PipelineDef>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineDef {
    pub name: String,
    /// The stages in order.
    pub stages: Vec<StageDef>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageDef {
    pub id: Ident,
    pub name: String,
    /// Chance of winning a deal at this stage, 0 to 1.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1))]
    pub probability: Option<f64>,
    /// The deal is closed (won or lost) at this stage.
    #[serde(default)]
    pub closed: Option<DealOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DealOutcome {
    Won,
    Lost,
}
