//! `templates/emails/layouts/<id>.yaml`: the frame around emails that name it
//! (a header, a footer, a stylesheet), so that templates hold only their message.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalar::TemplateText;

/// An email layout. Its id is the file name without `.yaml`; a template uses it
/// with `layout: <id>`. It sees what the template sees (`contact`, `data`,
/// `workspace`, `links`), and `content`: the template's rendered body.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailLayout {
    pub name: String,
    /// The HTML around the email; `{{ content }}` is where its HTML goes.
    pub html: TemplateText,
    /// The text part around the email's text; `{{ content }}` is where it goes.
    /// Without it, the text part is the email's own.
    #[serde(default)]
    pub text: Option<TemplateText>,
    /// CSS for the layout and its emails, written into each element's `style`
    /// attribute when a message is built (many mail clients drop `<style>`).
    /// `@media` rules stay in a `<style>` element.
    #[serde(default)]
    pub css: Option<String>,
}
