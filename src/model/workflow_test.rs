//! `workflows/tests/*.yaml`: test cases for one workflow. A trigger, initial contacts,
//! mocked HTTP responses and a clock go in; the expected path, emails, HTTP calls and
//! CRM state come out.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalar::{DurationText, Ident};
use super::step::HttpMethod;

/// The test cases of one workflow.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowTests {
    /// The workflow under test (file name under `workflows/` without `.yaml`).
    pub workflow: Ident,
    pub cases: Vec<TestCase>,
}

/// One scenario.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    /// The trigger event's data, as the workflow sees it under `trigger`.
    #[serde(default)]
    pub trigger: serde_json::Value,
    /// The virtual clock's start (RFC 3339). Default: 2026-01-05T09:00:00Z.
    #[serde(default)]
    pub at: Option<String>,
    /// How far the virtual clock may run past delays and waits. Default: 90d.
    #[serde(default)]
    pub until: Option<DurationText>,
    /// Contacts in the store before the trigger.
    #[serde(default)]
    pub contacts: Vec<TestContact>,
    /// Responses the mocked HTTP server gives, matched in order.
    #[serde(default)]
    pub http: Vec<MockResponse>,
    /// Events delivered while the execution waits, at offsets from `at`.
    #[serde(default)]
    pub events: Vec<TestEvent>,
    pub expect: Expectation,
}

/// A contact as it stands before the test.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestContact {
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub score: Option<f64>,
}

/// A canned HTTP response.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MockResponse {
    #[serde(default)]
    pub method: Option<HttpMethod>,
    /// The URL, or a prefix of it ending in `*`.
    pub url: String,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

/// An event that arrives during the test.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEvent {
    /// When, counted from the start of the test.
    pub after: DurationText,
    pub event: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// What must hold when the execution has finished or the clock ran out.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// `completed`, `failed`, `waiting` or `skipped` (conditions did not hold).
    #[serde(default)]
    pub status: Option<ExpectedStatus>,
    /// The step ids in the order they ran.
    #[serde(default)]
    pub path: Option<Vec<Ident>>,
    /// Emails sent, in order.
    #[serde(default)]
    pub emails: Option<Vec<ExpectedEmail>>,
    /// Requests sent by `http` steps, in order (Slack, Discord and social posts are
    /// shown by `funnel simulate` but not listed here).
    #[serde(default)]
    pub http: Option<Vec<ExpectedRequest>>,
    /// The contact at the end.
    #[serde(default)]
    pub contact: Option<ExpectedContact>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedStatus {
    Completed,
    Failed,
    Waiting,
    Skipped,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedEmail {
    pub template: Ident,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub subject_contains: Option<String>,
    /// When it is sent, counted from the start of the test.
    #[serde(default)]
    pub after: Option<DurationText>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedRequest {
    #[serde(default)]
    pub method: Option<HttpMethod>,
    pub url: String,
    /// Keys the JSON body must hold with these values.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedContact {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub fields: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub lists: Option<Vec<Ident>>,
    /// The lifecycle stage (`lead`, `customer`, …).
    #[serde(default)]
    pub stage: Option<String>,
}
