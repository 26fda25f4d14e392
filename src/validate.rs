//! Every check `funnel validate` runs.
//!
//! Loading (`workspace`) already reports unreadable files, YAML problems and
//! structural errors ([`structure`]). This module adds the checks across and within
//! typed files: references ([`references`]), workflow graphs ([`graph`]),
//! expressions and templates ([`expressions`]), value formats and secrets
//! ([`values`]) and sites against their templates ([`sites`]).

pub mod email;
pub mod env;
pub mod expressions;
pub mod graph;
pub mod references;
pub mod sites;
pub mod structure;
pub mod values;

use std::path::{Path, PathBuf};

use crate::diagnostic::{self, Code, Diagnostic, Severity};
use crate::workspace::{self, Doc, LoadError, Origin, Workspace};
use crate::yaml::{Node, Seg, Span};

/// What a validation run found.
#[derive(Debug)]
pub struct Report {
    pub workspace: Workspace,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
}

/// Loads and checks the workspace at `root`, showing paths under `shown_root`.
pub fn validate_workspace(root: &Path, shown_root: &Path) -> Result<Report, LoadError> {
    let ws = workspace::load(root, shown_root)?;
    let mut diagnostics = ws.diagnostics.clone();
    diagnostics.extend(check(&ws));
    diagnostic::sort(&mut diagnostics);
    diagnostics.dedup_by(|a, b| {
        a.file == b.file
            && a.line == b.line
            && a.column == b.column
            && a.code == b.code
            && a.message == b.message
    });
    Ok(Report {
        workspace: ws,
        diagnostics,
    })
}

/// The semantic checks over a loaded workspace.
pub fn check(ws: &Workspace) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    values::check(ws, &mut out);
    references::check(ws, &mut out);
    graph::check(ws, &mut out);
    expressions::check(ws, &mut out);
    sites::check(ws, &mut out);
    email::check(ws, &mut out);
    if ws.config.is_none() && !ws.knows(crate::model::FileKind::Config, "funnel") {
        out.push(Diagnostic::error(
            Code::MissingKey,
            Path::new(workspace::CONFIG_FILE),
            Span::default(),
            "the workspace has no funnel.yaml",
        ));
    }
    // Problems inside built-in templates are the project's, not the user's: they are
    // caught by the repository's own validation, and would only be noise here.
    let builtin: Vec<PathBuf> = ws
        .files
        .iter()
        .filter(|f| f.origin == Origin::Builtin)
        .map(|f| f.display.clone())
        .collect();
    out.retain(|d| !builtin.contains(&d.file));
    out
}

/// A loaded document seen as a place to report problems.
#[derive(Debug, Clone, Copy)]
pub struct Located<'a> {
    pub file: &'a Path,
    pub root: &'a Node,
    pub text: &'a str,
}

impl<'a> Located<'a> {
    pub fn of<T>(ws: &'a Workspace, doc: &'a Doc<T>) -> Self {
        let f = ws.file(doc.file);
        Located {
            file: &f.display,
            root: &doc.root,
            text: f.text.as_deref().unwrap_or(""),
        }
    }

    /// The value at `path` (or its nearest existing ancestor).
    pub fn span(&self, path: &[Seg]) -> Span {
        self.root.span_at(path, false)
    }

    /// The key at `path`, for problems with the key itself.
    pub fn key_span(&self, path: &[Seg]) -> Span {
        self.root.span_at(path, true)
    }

    pub fn node(&self, path: &[Seg]) -> Option<&'a Node> {
        self.root.at(path)
    }

    pub fn error(&self, code: Code, path: &[Seg], message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(code, self.file, self.span(path), message)
    }
}

/// Builds a path from keys and indexes: `path!["steps", 3, "template"]`.
#[macro_export]
macro_rules! path {
    ($($seg:expr),* $(,)?) => {
        <[$crate::yaml::Seg]>::into_vec(Box::new([$($crate::yaml::Seg::from($seg)),*]))
    };
}

impl From<&str> for Seg {
    fn from(s: &str) -> Self {
        Seg::Key(s.to_string())
    }
}

impl From<String> for Seg {
    fn from(s: String) -> Self {
        Seg::Key(s)
    }
}

impl From<&String> for Seg {
    fn from(s: &String) -> Self {
        Seg::Key(s.clone())
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// `base` extended by more segments.
pub fn join(base: &[Seg], more: impl IntoIterator<Item = Seg>) -> Vec<Seg> {
    let mut p = base.to_vec();
    p.extend(more);
    p
}
