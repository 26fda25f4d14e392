//! Typed variables: what a site template asks of a site and what a component's
//! config holds. One definition serves both, so a value is checked the same way
//! wherever it is given.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The declaration of one variable or config field.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VariableSpec {
    #[serde(rename = "type")]
    pub kind: ValueType,
    /// A label for editors and forms.
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Used when a site or instance gives no value. A variable without a default is
    /// required.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// For `select`: the allowed values.
    #[serde(default)]
    pub options: Vec<String>,
}

/// The type of a variable's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    /// One line of text.
    String,
    /// Several lines of text.
    Text,
    Number,
    Integer,
    Boolean,
    /// A CSS hex color.
    Color,
    Email,
    Url,
    /// A path to an image in the site or template assets, or an absolute URL.
    Image,
    /// A font stack, e.g. `Inter, system-ui, sans-serif`.
    Font,
    /// One of `options`.
    Select,
    /// A list of values or objects.
    List,
    /// A mapping.
    Object,
    /// A list of form fields (`name`, `label`, `type`, `required`); a form's fields
    /// become `trigger.fields.<name>` in workflows.
    FormFields,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Text => "text",
            ValueType::Number => "number",
            ValueType::Integer => "integer",
            ValueType::Boolean => "boolean",
            ValueType::Color => "color",
            ValueType::Email => "email",
            ValueType::Url => "url",
            ValueType::Image => "image",
            ValueType::Font => "font",
            ValueType::Select => "select",
            ValueType::List => "list",
            ValueType::Object => "object",
            ValueType::FormFields => "form_fields",
        }
    }
}

/// One field of a form component.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FormField {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    /// `text`, `email`, `tel`, `textarea`, `select`, `checkbox`, …
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub options: Vec<String>,
}
