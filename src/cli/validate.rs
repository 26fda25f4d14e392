//! `funnel validate [PATH…] [--format human|json|github]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::ValueEnum;

use super::ColorChoice;
use crate::diagnostic::{self, Diagnostic, Severity};
use crate::validate::validate_workspace;
use crate::workspace::find_root;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workspace folders, or files and folders inside one; only their problems are
    /// shown, but the whole workspace is loaded to check references. Default: `.`.
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Treat warnings as errors.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Also check that every `${NAME}` the workspace's files refer to is set in
    /// this environment (before starting a worker or the daemon; CI runs without).
    #[arg(long)]
    pub env: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Rustc-style text with source snippets.
    Human,
    /// A stable JSON array of diagnostics.
    Json,
    /// GitHub Actions annotations.
    Github,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths
    };
    // Group the paths by workspace root, so each workspace loads once.
    let mut groups: Vec<(PathBuf, PathBuf, Vec<PathBuf>)> = Vec::new();
    for path in &paths {
        if !path.exists() {
            anyhow::bail!("{}: no such file or folder", path.display());
        }
        let root = find_root(path)?;
        let shown = shown_root(path, &root);
        match groups.iter_mut().find(|(r, _, _)| *r == root) {
            Some((_, _, filters)) => filters.push(path.clone()),
            None => groups.push((root, shown, vec![path.clone()])),
        }
    }

    let mut all: Vec<Diagnostic> = Vec::new();
    let mut texts: Vec<(PathBuf, Option<String>)> = Vec::new();
    let mut files = 0usize;
    for (root, shown, filters) in &groups {
        let report = validate_workspace(root, shown)
            .with_context(|| format!("cannot validate {}", root.display()))?;
        files += report
            .workspace
            .files
            .iter()
            .filter(|f| f.origin == crate::workspace::Origin::Workspace)
            .count();
        let abs_filters: Vec<PathBuf> = filters
            .iter()
            .map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone()))
            .collect();
        let keep = |d: &Diagnostic| {
            let rel = d.file.strip_prefix(shown).unwrap_or(&d.file);
            let abs_file = root.join(rel);
            abs_filters
                .iter()
                .any(|f| abs_file.starts_with(f) || f == root)
        };
        let mut found = report.diagnostics.clone();
        if args.env {
            found.extend(crate::validate::env::unset_secrets(
                &report.workspace,
                |n| std::env::var_os(n).is_some(),
            ));
        }
        for d in found.iter().filter(|d| keep(d)) {
            if !texts.iter().any(|(p, _)| p == &d.file) {
                texts.push((d.file.clone(), report.workspace.text_of(&d.file)));
            }
            all.push(d.clone());
        }
    }
    if args.deny_warnings {
        for d in &mut all {
            d.severity = Severity::Error;
        }
    }
    let errors = all.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = all.len() - errors;

    match args.format {
        Format::Json => println!("{}", diagnostic::render_json(&all)),
        Format::Github => print!("{}", diagnostic::render_github(&all)),
        Format::Human => {
            let color = color.enabled(&std::io::stderr());
            let text = diagnostic::render_human(&all, color, |p| {
                texts
                    .iter()
                    .find(|(f, _)| f == p)
                    .and_then(|(_, t)| t.clone())
            });
            eprint!("{text}");
            eprintln!("{}", summary(files, errors, warnings));
        }
    }
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn summary(files: usize, errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if errors == 0 && warnings == 0 {
        format!("ok: {} checked, no problems", plural(files, "file"))
    } else {
        format!(
            "{}, {} in {} checked",
            plural(errors, "error"),
            plural(warnings, "warning"),
            plural(files, "file")
        )
    }
}

/// The workspace root as the user would write it, relative to where they stand.
fn shown_root(path: &Path, root: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    match root.strip_prefix(&cwd) {
        Ok(rel) if rel.as_os_str().is_empty() => PathBuf::new(),
        Ok(rel) => rel.to_path_buf(),
        Err(_) if path.is_absolute() => root.to_path_buf(),
        Err(_) => root.to_path_buf(),
    }
}
