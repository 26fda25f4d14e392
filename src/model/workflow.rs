//! `workflows/*.yaml`: a trigger, variables and a graph of steps.
//!
//! The steps of a list run in order unless a step says `next:`; branching steps
//! (`if`, `switch`, `wait_for_event`) jump to step ids; `parallel` and `for_each` hold
//! nested step lists. A cycle is legal only through a `loop` step, whose
//! `max_iterations` bounds it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalar::{CronExpr, Expr, Ident, Secret, TimeZoneName};
use super::step::Step;

/// One workflow. Its id is the file name without `.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// Display name.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Whether the workflow runs; `funnel workflows disable|enable` overrides it per store.
    #[serde(default = "default_true")]
    pub active: bool,
    /// What starts an execution.
    pub trigger: Trigger,
    /// Named values available to expressions as `vars.<name>`; steps may set more.
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
    /// The steps, run in order unless a step jumps.
    pub steps: Vec<Step>,
    /// A workflow to run with the failure's details when an execution fails.
    #[serde(default)]
    pub error_workflow: Option<Ident>,
    /// Most executions of this workflow running at once; further ones wait.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub concurrency: Option<u32>,
    /// Editor metadata (node positions) for visual tools; ignored by the engine.
    #[serde(default)]
    pub ui: Option<UiLayout>,
}

pub(crate) fn default_true() -> bool {
    true
}

/// Node positions for a visual editor, by step id.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UiLayout {
    #[serde(default)]
    pub positions: BTreeMap<String, UiPosition>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UiPosition {
    pub x: f64,
    pub y: f64,
}

/// What starts an execution, and the conditions that filter it before it starts.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Trigger {
    /// Bare expressions (over `trigger`, `contact`, `vars`, `workflow`, `now`); all
    /// must hold for an execution to start.
    #[serde(default)]
    pub conditions: Vec<Expr>,
    #[serde(flatten)]
    pub kind: TriggerKind,
}

/// The kinds of trigger.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TriggerKind {
    /// A visitor submits a form component of a site.
    FormSubmission {
        /// The site id (folder under `sites/`).
        site: Ident,
        /// The component instance id within the site.
        component: Ident,
    },
    /// A visitor's page event, reported by the tracking script.
    PageEvent {
        #[serde(default)]
        site: Option<Ident>,
        /// Page path, e.g. `/pricing`; omitted means any page.
        #[serde(default)]
        page: Option<String>,
        /// Component instance id, for component views and clicks.
        #[serde(default)]
        component: Option<Ident>,
        event: PageEventKind,
        /// For `scroll_depth` the percentage, for `time_on_page` seconds, for
        /// `view` the number of views within `within`.
        #[serde(default)]
        threshold: Option<f64>,
        /// Window for counted events, e.g. `7d`.
        #[serde(default)]
        within: Option<super::scalar::DurationText>,
    },
    /// A cron schedule; each occurrence fires once.
    Schedule {
        cron: CronExpr,
        /// IANA time zone; defaults to funnel.yaml's `timezone`, then UTC.
        #[serde(default)]
        timezone: Option<TimeZoneName>,
    },
    /// A named event from `funnel emit`, the API or another workflow.
    CustomEvent {
        event: String,
        /// The payload's fields and their types, checked at ingestion and used to
        /// check `trigger.payload.*` in expressions.
        #[serde(default)]
        payload: Option<BTreeMap<String, PayloadField>>,
    },
    /// An inbound HTTP POST to `/hooks/<path>` on the daemon.
    Webhook {
        path: String,
        /// A shared secret the sender signs with (HMAC-SHA256), as `${ENV}`.
        #[serde(default)]
        secret: Option<Secret>,
        #[serde(default)]
        payload: Option<BTreeMap<String, PayloadField>>,
    },
    /// A contact was created.
    ContactCreated {
        /// Only contacts from this source (site, component or import).
        #[serde(default)]
        source: Option<String>,
    },
    /// A tag was added to a contact.
    TagAdded { tag: String },
    /// A contact joined a static list: at once, or for a list with
    /// `double_opt_in`, when they confirmed through the emailed link.
    ListJoined { list: Ident },
    /// A contact field changed.
    FieldChanged {
        field: String,
        /// Only when the new value equals this.
        #[serde(default)]
        to: Option<serde_json::Value>,
    },
    /// A contact's lead score crossed a threshold.
    ScoreCrossed {
        threshold: f64,
        #[serde(default)]
        direction: Option<CrossDirection>,
    },
    /// A contact's lifecycle stage changed.
    StageChanged {
        #[serde(default)]
        from: Option<LifecycleStage>,
        #[serde(default)]
        to: Option<LifecycleStage>,
    },
    /// A deal moved to a stage of a pipeline.
    DealStageChanged {
        pipeline: Ident,
        #[serde(default)]
        stage: Option<Ident>,
    },
    /// A recipient opened an email.
    EmailOpened {
        #[serde(default)]
        template: Option<Ident>,
    },
    /// A recipient clicked a link in an email.
    EmailClicked {
        #[serde(default)]
        template: Option<Ident>,
        /// Only clicks on links to this URL prefix.
        #[serde(default)]
        url: Option<String>,
    },
    /// An email bounced.
    EmailBounced {
        #[serde(default)]
        template: Option<Ident>,
    },
    /// A recipient unsubscribed.
    EmailUnsubscribed {
        #[serde(default)]
        template: Option<Ident>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PageEventKind {
    View,
    Click,
    ScrollDepth,
    TimeOnPage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CrossDirection {
    Up,
    Down,
}

/// A contact's lifecycle stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStage {
    Subscriber,
    Lead,
    MarketingQualified,
    SalesQualified,
    Opportunity,
    Customer,
    Evangelist,
    Other,
}

/// The type of one payload field of a webhook or custom event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayloadField {
    String,
    Number,
    Integer,
    Boolean,
    Email,
    Url,
    Datetime,
    List,
    Object,
}
