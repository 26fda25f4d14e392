//! Typed models of every file a workspace holds, and the list of those file kinds.
//!
//! The types are the single source of truth: JSON Schema (`schema`) is generated from
//! them, and the structural check of `validate` walks that schema, so the editor, the
//! validator and the loader can never disagree about a key.

pub mod campaign;
pub mod component;
pub mod config;
pub mod contacts;
pub mod email_layout;
pub mod email_template;
pub mod recipe;
pub mod scalar;
pub mod site;
pub mod site_template;
pub mod step;
pub mod variable;
pub mod workflow;
pub mod workflow_test;

/// The kinds of file in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    Config,
    Workflow,
    WorkflowTests,
    SiteTemplate,
    Component,
    EmailTemplate,
    EmailLayout,
    Site,
    Fields,
    Lists,
    Segments,
    Scoring,
    Pipelines,
    Campaign,
}

impl FileKind {
    pub const ALL: [FileKind; 14] = [
        FileKind::Config,
        FileKind::Workflow,
        FileKind::WorkflowTests,
        FileKind::SiteTemplate,
        FileKind::Component,
        FileKind::EmailTemplate,
        FileKind::EmailLayout,
        FileKind::Site,
        FileKind::Fields,
        FileKind::Lists,
        FileKind::Segments,
        FileKind::Scoring,
        FileKind::Pipelines,
        FileKind::Campaign,
    ];

    /// The name used on the command line and in schema file names.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Config => "funnel",
            FileKind::Workflow => "workflow",
            FileKind::WorkflowTests => "workflow-test",
            FileKind::SiteTemplate => "site-template",
            FileKind::Component => "component",
            FileKind::EmailTemplate => "email-template",
            FileKind::EmailLayout => "email-layout",
            FileKind::Site => "site",
            FileKind::Fields => "fields",
            FileKind::Lists => "lists",
            FileKind::Segments => "segments",
            FileKind::Scoring => "scoring",
            FileKind::Pipelines => "pipelines",
            FileKind::Campaign => "campaign",
        }
    }

    pub fn from_name(name: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The schema's file name under `schema/`.
    pub fn schema_file(self) -> String {
        format!("{}.schema.json", self.name())
    }

    /// What the kind is, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Config => "workspace settings (funnel.yaml)",
            FileKind::Workflow => "a workflow (workflows/*.yaml)",
            FileKind::WorkflowTests => "workflow test cases (workflows/tests/*.yaml)",
            FileKind::SiteTemplate => "a site template (templates/sites/<id>/template.yaml)",
            FileKind::Component => "a component (templates/components/<id>/component.yaml)",
            FileKind::EmailTemplate => "an email template (templates/emails/<id>.yaml)",
            FileKind::EmailLayout => "an email layout (templates/emails/layouts/<id>.yaml)",
            FileKind::Site => "a site (sites/<id>/site.yaml)",
            FileKind::Fields => "custom contact fields (contacts/fields.yaml)",
            FileKind::Lists => "static lists (contacts/lists.yaml)",
            FileKind::Segments => "segments (contacts/segments.yaml)",
            FileKind::Scoring => "lead scoring rules (contacts/scoring.yaml)",
            FileKind::Pipelines => "sales pipelines (contacts/pipelines.yaml)",
            FileKind::Campaign => "an email campaign (campaigns/<id>.yaml)",
        }
    }
}
