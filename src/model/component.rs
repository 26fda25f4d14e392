//! `templates/components/<id>/component.yaml`: a smart component's config schema and
//! the events it emits. Its markup is `component.html` beside it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::variable::VariableSpec;

/// A component. Its id is its folder name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Where the publisher places it: before `<main>` (`header`), inside it
    /// (`main`, the default) or after it (`footer`).
    #[serde(default)]
    pub slot: Slot,
    /// The component's config fields; those without a default are required.
    #[serde(default)]
    pub config: BTreeMap<String, VariableSpec>,
    /// The events it reports, which workflow triggers can name.
    #[serde(default)]
    pub events: Vec<ComponentEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentEvent {
    View,
    Click,
    Submit,
}

/// A component's place in the page's landmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    Header,
    #[default]
    Main,
    Footer,
}
