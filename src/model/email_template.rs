//! `templates/emails/<id>.yaml`: an email's subject, preheader and bodies.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalar::{EmailAddress, TemplateText};

/// An email template. Its id is the file name without `.yaml`. Bodies see `contact`,
/// `data` (values from the sending step), `workspace` and `links` (unsubscribe and
/// view-in-browser URLs).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailTemplate {
    pub name: String,
    /// `marketing` (the default: needs consent, carries an unsubscribe link) or
    /// `transactional`.
    #[serde(default)]
    pub kind: Option<EmailKind>,
    pub subject: TemplateText,
    /// The preview line mail clients show after the subject.
    #[serde(default)]
    pub preheader: Option<TemplateText>,
    /// Overrides funnel.yaml's `email.from`.
    #[serde(default)]
    pub from: Option<EmailAddress>,
    /// The HTML body.
    pub html: TemplateText,
    /// The plain-text body; derived from the HTML when omitted.
    #[serde(default)]
    pub text: Option<TemplateText>,
    /// The layout around the bodies (`templates/emails/layouts/<id>.yaml`).
    #[serde(default)]
    pub layout: Option<String>,
    /// CSS for this email, written into each element's `style` attribute when
    /// the message is built (after the layout's own CSS, so it wins).
    #[serde(default)]
    pub css: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    Marketing,
    Transactional,
}
