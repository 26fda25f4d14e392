//! Workflow suggestions: for a component of a site, the recipes that fit its
//! type, its events and form fields, the site's industry and goals, and the
//! workspace, ranked by a documented confidence, each with the reasons for
//! its place; and a recipe written into the workspace as a workflow and its
//! test. Offline and explainable; a language model is optional and its answer
//! is validated like any other edit.
//!
//! - [`recipes`]: the recipe library (built in, overridable by the workspace's
//!   `recipes/`), and a recipe instantiated for one component instance.

pub mod recipes;

/// What can go wrong with recipes and suggestions.
#[derive(Debug, thiserror::Error)]
pub enum SuggestError {
    #[error("{file}: {message}")]
    Recipe { file: String, message: String },
    #[error("{0}")]
    Input(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}
