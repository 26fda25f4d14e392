//! `campaigns/<id>.yaml`: a broadcast, one email to a segment or list, sent
//! once (on command or at its `schedule`), optionally as an A/B test of
//! subjects or templates first.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalar::{DurationText, Ident, TemplateText};

/// A campaign. Its id is the file name without `.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Who receives it: a segment of contacts/segments.yaml, a list of
    /// contacts/lists.yaml, or both (their members in common). Only active
    /// contacts receive it; unsubscribed, bounced and complained ones are
    /// counted as suppressed.
    pub audience: Audience,
    /// The email template (templates/emails/<id>.yaml).
    pub template: Ident,
    /// Overrides the template's subject.
    #[serde(default)]
    pub subject: Option<TemplateText>,
    /// When `funnel campaigns send` or the daemon starts it: an RFC 3339 time.
    /// Without it, it waits for `funnel campaigns send`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Overrides funnel.yaml's `email.tracking` for this campaign.
    #[serde(default)]
    pub tracking: Option<super::config::TrackingSettings>,
    /// An A/B test: each variant goes to its share of the audience first; after
    /// the window, the rest gets the winner.
    #[serde(default)]
    pub ab_test: Option<AbTest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    #[serde(default)]
    pub segment: Option<Ident>,
    #[serde(default)]
    pub list: Option<Ident>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbTest {
    /// Two or more variants; the first is the default when no winner is clear.
    pub variants: Vec<Variant>,
    /// What decides: `clicks` (the default; machine opens inflate open rates) or `opens`.
    #[serde(default)]
    pub metric: Option<AbMetric>,
    /// How long after the test sends the winner is picked, e.g. `4h`.
    pub window: DurationText,
    /// Recipients each variant needs before a winner may be declared.
    #[serde(default)]
    pub min_sample: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub id: Ident,
    /// Percent of the audience that gets this variant in the test.
    pub split: u8,
    /// This variant's subject (else the campaign's or the template's).
    #[serde(default)]
    pub subject: Option<TemplateText>,
    /// This variant's template (else the campaign's).
    #[serde(default)]
    pub template: Option<Ident>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AbMetric {
    Clicks,
    Opens,
}
