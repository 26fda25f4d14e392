//! Workflow steps: actions, logic, and what every step may say about retries,
//! timeouts and errors.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalar::{DurationText, Expr, Ident, Secret, TemplateText, Url};
use super::workflow::LifecycleStage;

/// One step. `id` is unique within the workflow (nested steps included).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    /// Unique within the workflow; later steps read this step's output as `steps.<id>`.
    pub id: Ident,
    /// A short human description, shown in traces and graphs.
    #[serde(default)]
    pub title: Option<String>,
    /// The step to go to after this one; `end` finishes the branch. Defaults to the
    /// next step in the list.
    #[serde(default)]
    pub next: Option<Ident>,
    /// Run the step only when this holds; otherwise it is skipped.
    #[serde(default)]
    pub when: Option<Expr>,
    /// How often and how patiently to retry a failing attempt.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    /// The longest one attempt may take.
    #[serde(default)]
    pub timeout: Option<DurationText>,
    /// What happens when the step fails after its retries.
    #[serde(default)]
    pub on_error: Option<OnError>,
    #[serde(flatten)]
    pub kind: StepKind,
}

/// Retries of a failing step: exponential backoff with jitter, capped.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    #[schemars(range(min = 1))]
    pub attempts: u32,
    /// Wait before the second attempt; doubles after each further failure.
    #[serde(default)]
    pub backoff: Option<DurationText>,
    /// The longest wait between attempts.
    #[serde(default)]
    pub max_delay: Option<DurationText>,
    /// Randomize each wait by up to ±this fraction (0 to 1). Default 0.2.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1))]
    pub jitter: Option<f64>,
}

/// What a failure after all retries does.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OnError {
    /// `fail` (the default) ends the execution as failed; `continue` records the
    /// error and goes on with the next step.
    Simple(OnErrorSimple),
    /// Jump to a step, or run an error workflow with the failure's details.
    Handler(OnErrorHandler),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnErrorSimple {
    Fail,
    Continue,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OnErrorHandler {
    /// Go on at this step; `error` holds the failure's details there.
    Goto(Ident),
    /// Run this workflow with the failure as its trigger, then fail.
    Workflow(Ident),
}

/// HTTP methods for requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// One case of a `switch`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchCase {
    /// A bare expression; the first case that holds is taken.
    pub when: Expr,
    /// The step to go to.
    pub next: Ident,
}

/// A list of steps, run as one branch.
pub type Steps = Vec<Step>;

/// What a step does.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepKind {
    /// Render an email template and send it (or write it to the dev outbox).
    SendEmail {
        /// Email template id (`templates/emails/<id>.yaml`).
        template: Ident,
        /// Recipient; defaults to the execution's contact.
        #[serde(default)]
        to: Option<TemplateText>,
        /// Overrides the template's subject.
        #[serde(default)]
        subject: Option<TemplateText>,
        /// Extra values for the template, as `data.<name>`.
        #[serde(default)]
        data: BTreeMap<String, serde_json::Value>,
    },
    /// Create or update a contact by email; it becomes the execution's contact.
    UpsertContact {
        email: TemplateText,
        #[serde(default)]
        name: Option<TemplateText>,
        #[serde(default)]
        phone: Option<TemplateText>,
        /// Custom fields (`contacts/fields.yaml`).
        #[serde(default)]
        fields: BTreeMap<String, serde_json::Value>,
        #[serde(default)]
        tags: Vec<String>,
        /// Static lists to add the contact to.
        #[serde(default)]
        lists: Vec<Ident>,
    },
    /// Set custom fields of the execution's contact.
    UpdateContact {
        fields: BTreeMap<String, serde_json::Value>,
    },
    /// Add tags to the execution's contact.
    AddTag { tags: Vec<TemplateText> },
    /// Remove tags from the execution's contact.
    RemoveTag { tags: Vec<TemplateText> },
    /// Record a score adjustment (positive or negative points).
    AdjustScore {
        points: f64,
        #[serde(default)]
        reason: Option<String>,
    },
    /// Set the contact's lifecycle stage.
    SetStage { stage: LifecycleStage },
    /// Add an activity to the contact's timeline.
    AddActivity {
        activity: String,
        #[serde(default)]
        data: BTreeMap<String, serde_json::Value>,
    },
    /// Add the contact to a static list (`contacts/lists.yaml`).
    AddToList { list: Ident },
    /// Remove the contact from a static list.
    RemoveFromList { list: Ident },
    /// Move the contact's open deal in a pipeline to a stage (creating the deal if
    /// there is none).
    MoveDeal {
        pipeline: Ident,
        stage: Ident,
        #[serde(default)]
        value: Option<f64>,
    },
    /// An HTTP request (outgoing webhook); the response is the step's output.
    Http {
        #[serde(default)]
        method: Option<HttpMethod>,
        url: TemplateText,
        #[serde(default)]
        headers: BTreeMap<String, TemplateText>,
        /// A JSON body; strings in it are templates.
        #[serde(default)]
        body: Option<serde_json::Value>,
        /// Treat these status codes as success besides 2xx.
        #[serde(default)]
        accept_status: Vec<u16>,
    },
    /// Post to a Slack incoming webhook.
    Slack {
        webhook_url: Secret,
        text: TemplateText,
    },
    /// Post to a Discord webhook.
    Discord {
        webhook_url: Secret,
        content: TemplateText,
    },
    /// Publish a status on a Mastodon-compatible server.
    SocialPost {
        instance_url: Url,
        token: Secret,
        status: TemplateText,
        #[serde(default)]
        visibility: Option<Visibility>,
    },
    /// Set workflow variables, available as `vars.<name>` to later steps.
    SetVars {
        vars: BTreeMap<String, serde_json::Value>,
    },
    /// Write a message to the execution's log.
    Log {
        message: TemplateText,
        #[serde(default)]
        level: Option<LogLevel>,
    },
    /// Go to `then` when the condition holds, else to `else` (default: the next step).
    If {
        condition: Expr,
        then: Ident,
        #[serde(default, rename = "else")]
        otherwise: Option<Ident>,
    },
    /// Go to the first case whose condition holds, else to `default`.
    Switch {
        cases: Vec<SwitchCase>,
        #[serde(default)]
        default: Option<Ident>,
    },
    /// Run branches at the same time; the step completes when all have ended.
    Parallel { branches: BTreeMap<String, Steps> },
    /// Run `steps` once per item of a list, `item` and `index` naming the current one.
    ForEach {
        /// An expression that yields a list.
        items: Expr,
        /// Most items in flight at once. Default 1.
        #[serde(default)]
        #[schemars(range(min = 1))]
        concurrency: Option<u32>,
        steps: Steps,
    },
    /// Jump back to `to` while `while` holds, at most `max_iterations` times.
    Loop {
        /// An earlier step of the same list.
        to: Ident,
        #[schemars(range(min = 1))]
        max_iterations: u32,
        #[serde(default, rename = "while")]
        condition: Option<Expr>,
    },
    /// Wait for a duration (a durable timer).
    Delay { duration: DurationText },
    /// Wait until a time, given as a template that renders an RFC 3339 time, e.g.
    /// `{{ contact.fields.trial_ends }}T09:00:00Z`.
    WaitUntil { time: TemplateText },
    /// Wait for a named event about the contact; go to `on_timeout` if none comes.
    WaitForEvent {
        event: String,
        /// A bare expression over `event` that the event must satisfy.
        #[serde(default, rename = "match")]
        matches: Option<Expr>,
        /// How long to wait for it.
        within: DurationText,
        /// Where to go when the timeout passes first. Default: the next step.
        #[serde(default)]
        on_timeout: Option<Ident>,
    },
    /// Run another workflow with this execution's contact.
    SubWorkflow {
        workflow: Ident,
        #[serde(default)]
        input: BTreeMap<String, serde_json::Value>,
        /// Wait for it to finish and take its variables as output. Default true.
        #[serde(default)]
        wait: Option<bool>,
    },
    /// End the execution successfully here.
    Stop {},
    /// End the execution as failed, with a message.
    Fail { message: TemplateText },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    Unlisted,
    Private,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl StepKind {
    /// The `type:` name of this step, as written in YAML.
    pub fn type_name(&self) -> &'static str {
        match self {
            StepKind::SendEmail { .. } => "send_email",
            StepKind::UpsertContact { .. } => "upsert_contact",
            StepKind::UpdateContact { .. } => "update_contact",
            StepKind::AddTag { .. } => "add_tag",
            StepKind::RemoveTag { .. } => "remove_tag",
            StepKind::AdjustScore { .. } => "adjust_score",
            StepKind::SetStage { .. } => "set_stage",
            StepKind::AddActivity { .. } => "add_activity",
            StepKind::AddToList { .. } => "add_to_list",
            StepKind::RemoveFromList { .. } => "remove_from_list",
            StepKind::MoveDeal { .. } => "move_deal",
            StepKind::Http { .. } => "http",
            StepKind::Slack { .. } => "slack",
            StepKind::Discord { .. } => "discord",
            StepKind::SocialPost { .. } => "social_post",
            StepKind::SetVars { .. } => "set_vars",
            StepKind::Log { .. } => "log",
            StepKind::If { .. } => "if",
            StepKind::Switch { .. } => "switch",
            StepKind::Parallel { .. } => "parallel",
            StepKind::ForEach { .. } => "for_each",
            StepKind::Loop { .. } => "loop",
            StepKind::Delay { .. } => "delay",
            StepKind::WaitUntil { .. } => "wait_until",
            StepKind::WaitForEvent { .. } => "wait_for_event",
            StepKind::SubWorkflow { .. } => "sub_workflow",
            StepKind::Stop {} => "stop",
            StepKind::Fail { .. } => "fail",
        }
    }
}
