//! A workspace: finding its files, reading them safely, and loading them into typed
//! models with their source trees kept for locating later problems.
//!
//! Owns the layout (which path holds which [`FileKind`]), the merge of built-in
//! templates with the workspace's own, and the per-file pipeline: size and UTF-8
//! checks, YAML parsing ([`crate::yaml`]), the structural check against the schema
//! ([`crate::validate::structure`]) and typed deserialization. Semantic checks
//! across files live in `validate`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::model::FileKind;
use crate::model::component::Component;
use crate::model::config::WorkspaceConfig;
use crate::model::contacts::{FieldsFile, ListsFile, PipelinesFile, ScoringFile, SegmentsFile};
use crate::model::email_template::EmailTemplate;
use crate::model::site::Site;
use crate::model::site_template::SiteTemplate;
use crate::model::workflow::Workflow;
use crate::model::workflow_test::WorkflowTests;
use crate::validate::structure::Schemas;
use crate::yaml::{self, Node, Pos, ProblemKind, Span};

/// The largest workspace file read; larger ones are refused unread.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// The workspace settings file name, which also marks a workspace root.
pub const CONFIG_FILE: &str = "funnel.yaml";

/// Where a file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Workspace,
    Builtin,
}

/// One file of the workspace, with its text when it could be read.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path shown to users: the workspace path as given, joined with the file's
    /// path inside it; `builtin:templates/…` for built-in files.
    pub display: PathBuf,
    /// The path relative to the workspace root.
    pub rel: PathBuf,
    pub kind: FileKind,
    pub id: String,
    pub origin: Origin,
    pub text: Option<String>,
}

/// A loaded file: its id, typed value and source tree.
#[derive(Debug, Clone)]
pub struct Doc<T> {
    pub id: String,
    /// Index into [`Workspace::files`].
    pub file: usize,
    pub value: T,
    pub root: Node,
}

/// Everything a workspace holds, loaded.
#[derive(Debug, Default)]
pub struct Workspace {
    pub root: PathBuf,
    pub files: Vec<SourceFile>,
    pub config: Option<Doc<WorkspaceConfig>>,
    pub workflows: BTreeMap<String, Doc<Workflow>>,
    pub workflow_tests: Vec<Doc<WorkflowTests>>,
    /// Site templates loaded: the workspace's own, and the built-in ones its sites
    /// use. Ask [`Workspace::site_template`] for any template by id.
    pub site_templates: BTreeMap<String, Doc<SiteTemplate>>,
    /// Built-in site templates no site uses. They are listed and parsed when asked
    /// for, not kept: parsed, the 34 of them are most of an idle daemon's heap.
    pub unused_builtin_templates: BTreeSet<String>,
    pub components: BTreeMap<String, Doc<Component>>,
    /// Each component's `component.html`, by component id.
    pub component_markup: BTreeMap<String, (PathBuf, String)>,
    pub email_templates: BTreeMap<String, Doc<EmailTemplate>>,
    pub email_layouts: BTreeMap<String, Doc<crate::model::email_layout::EmailLayout>>,
    pub sites: BTreeMap<String, Doc<Site>>,
    pub fields: Option<Doc<FieldsFile>>,
    pub lists: Option<Doc<ListsFile>>,
    pub segments: Option<Doc<SegmentsFile>>,
    pub scoring: Option<Doc<ScoringFile>>,
    pub pipelines: Option<Doc<PipelinesFile>>,
    pub campaigns: BTreeMap<String, Doc<crate::model::campaign::Campaign>>,
    /// Ids of every file found, loaded or not, so that a broken file does not also
    /// make every reference to it an error.
    pub known: BTreeMap<FileKind, BTreeSet<String>>,
    /// Problems found while loading.
    pub diagnostics: Vec<Diagnostic>,
}

/// Why a workspace could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no funnel workspace at {0} (no funnel.yaml there or in a parent folder)")]
    NotFound(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Finds the workspace root at or above `start`: the nearest folder with funnel.yaml.
pub fn find_root(start: &Path) -> Result<PathBuf, LoadError> {
    let abs = std::path::absolute(start).map_err(|source| LoadError::Io {
        path: start.to_path_buf(),
        source,
    })?;
    let mut dir = if abs.is_file() {
        abs.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        abs.clone()
    };
    loop {
        if dir.join(CONFIG_FILE).is_file() {
            return Ok(dir);
        }
        if !dir.pop() {
            return Err(LoadError::NotFound(start.to_path_buf()));
        }
    }
}

/// Decides the kind and id of a workspace file from its path relative to the root.
pub fn classify(rel: &Path) -> Option<(FileKind, String)> {
    let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    let stem = |name: &str| name.strip_suffix(".yaml").map(str::to_string);
    match parts.as_slice() {
        [CONFIG_FILE] => Some((FileKind::Config, "funnel".into())),
        ["workflows", "tests", name] => Some((FileKind::WorkflowTests, stem(name)?)),
        ["workflows", name] => Some((FileKind::Workflow, stem(name)?)),
        ["templates", "sites", id, "template.yaml"] => {
            Some((FileKind::SiteTemplate, (*id).to_string()))
        }
        ["templates", "components", id, "component.yaml"] => {
            Some((FileKind::Component, (*id).to_string()))
        }
        ["templates", "emails", "layouts", name] => Some((FileKind::EmailLayout, stem(name)?)),
        ["templates", "emails", name] => Some((FileKind::EmailTemplate, stem(name)?)),
        ["sites", id, "site.yaml"] => Some((FileKind::Site, (*id).to_string())),
        ["contacts", "fields.yaml"] => Some((FileKind::Fields, "fields".into())),
        ["contacts", "lists.yaml"] => Some((FileKind::Lists, "lists".into())),
        ["contacts", "segments.yaml"] => Some((FileKind::Segments, "segments".into())),
        ["contacts", "scoring.yaml"] => Some((FileKind::Scoring, "scoring".into())),
        ["contacts", "pipelines.yaml"] => Some((FileKind::Pipelines, "pipelines".into())),
        ["campaigns", name] => Some((FileKind::Campaign, stem(name)?)),
        _ => None,
    }
}

/// The folders funnel reads, and how deep below each it looks.
const FOLDERS: &[(&str, usize)] = &[
    ("workflows", 2),
    ("templates", 3),
    ("sites", 2),
    ("contacts", 1),
    ("campaigns", 1),
];

/// Loads the workspace at `root`. `shown_root` prefixes paths in diagnostics.
pub fn load(root: &Path, shown_root: &Path) -> Result<Workspace, LoadError> {
    let mut ws = Workspace {
        root: root.to_path_buf(),
        ..Workspace::default()
    };
    let mut rels = vec![PathBuf::from(CONFIG_FILE)];
    for (folder, depth) in FOLDERS {
        walk(root, Path::new(folder), *depth, &mut rels)?;
    }
    rels.sort();

    let mut own_templates: BTreeSet<(FileKind, String)> = BTreeSet::new();
    let schemas = Schemas::default();
    for rel in rels {
        let display = shown(shown_root, &rel);
        if rel.extension().is_some_and(|e| e == "yml") {
            ws.diagnostics.push(
                Diagnostic::warning(
                    Code::UnknownFile,
                    &display,
                    Span::default(),
                    "funnel reads `.yaml` files only; this file is ignored",
                )
                .with_help("rename it to end in `.yaml`"),
            );
            continue;
        }
        let Some((kind, id)) = classify(&rel) else {
            if rel.extension().is_some_and(|e| e == "yaml") {
                ws.diagnostics.push(
                    Diagnostic::warning(
                        Code::UnknownFile,
                        &display,
                        Span::default(),
                        "funnel does not read a YAML file at this place; it is ignored",
                    )
                    .with_help("see docs/formats.md for where each kind of file lives"),
                );
            }
            continue;
        };
        if matches!(
            kind,
            FileKind::SiteTemplate | FileKind::Component | FileKind::EmailTemplate
        ) {
            own_templates.insert((kind, id.clone()));
        }
        let bytes = read_limited(&root.join(&rel), &display, &mut ws.diagnostics);
        ws.add_file(
            SourceFile {
                display,
                rel,
                kind,
                id,
                origin: Origin::Workspace,
                text: None,
            },
            bytes,
            &schemas,
        );
    }

    // Built-in templates the workspace does not override; of the site templates,
    // those its sites use (problems inside built-ins are the project's, so checking
    // the others would only cost time and memory).
    let used: BTreeSet<String> = ws
        .sites
        .values()
        .map(|d| d.value.template.to_string())
        .collect();
    for (path, bytes) in crate::builtin::FILES.iter() {
        let rel = Path::new("templates").join(path);
        let Some((kind, id)) = classify(&rel) else {
            continue;
        };
        if own_templates.contains(&(kind, id.clone())) {
            continue;
        }
        if kind == FileKind::SiteTemplate && !used.contains(&id) {
            ws.known.entry(kind).or_default().insert(id.clone());
            ws.unused_builtin_templates.insert(id);
            continue;
        }
        let display = PathBuf::from(format!("builtin:{}", rel.display()));
        let bytes = Some(bytes.to_vec());
        ws.add_file(
            SourceFile {
                display,
                rel,
                kind,
                id,
                origin: Origin::Builtin,
                text: None,
            },
            bytes,
            &schemas,
        );
    }

    ws.load_markup(root, shown_root);
    Ok(ws)
}

fn shown(shown_root: &Path, rel: &Path) -> PathBuf {
    if shown_root.as_os_str().is_empty() || shown_root == Path::new(".") {
        rel.to_path_buf()
    } else {
        shown_root.join(rel)
    }
}

fn walk(root: &Path, rel: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let dir = root.join(rel);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(LoadError::Io { path: dir, source }),
    };
    let mut names: Vec<_> = entries.flatten().collect();
    names.sort_by_key(|e| e.file_name());
    for entry in names {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let child = rel.join(&name);
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            if depth > 1 {
                walk(root, &child, depth - 1, out)?;
            }
        } else if child.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(child);
        }
    }
    Ok(())
}

/// Reads a file unless it is too large; problems become diagnostics.
fn read_limited(path: &Path, display: &Path, diags: &mut Vec<Diagnostic>) -> Option<Vec<u8>> {
    let io = |e: std::io::Error| {
        Diagnostic::error(
            Code::Io,
            display,
            Span::default(),
            format!("cannot read the file: {e}"),
        )
    };
    let len = std::fs::metadata(path).map_err(io).map(|m| m.len());
    let bytes = len.and_then(|len| {
        if len > MAX_FILE_BYTES {
            return Err(Diagnostic::error(
                Code::FileTooLarge,
                display,
                Span::default(),
                format!(
                    "the file is {len} bytes; workspace files may hold at most {MAX_FILE_BYTES} bytes"
                ),
            )
            .with_help("split it, or move data out of the workspace (contacts belong in the store)"));
        }
        std::fs::read(path).map_err(io)
    });
    bytes.map_err(|d| diags.push(d)).ok()
}

/// Turns bytes into text, or a diagnostic at the first byte that is not UTF-8.
pub fn decode(bytes: Vec<u8>, display: &Path) -> Result<String, Diagnostic> {
    match String::from_utf8(bytes) {
        Ok(mut text) => {
            if text.starts_with('\u{feff}') {
                text.replace_range(..3, "");
            }
            Ok(text)
        }
        Err(err) => {
            let bytes = err.as_bytes();
            let good = err.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&bytes[..good]);
            let line = prefix.matches('\n').count() + 1;
            let col = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let pos = Pos {
                line,
                col,
                offset: good,
            };
            Err(Diagnostic::error(
                Code::InvalidUtf8,
                display,
                Span {
                    start: pos,
                    end: pos,
                },
                format!(
                    "the file is not UTF-8 text (bad byte 0x{:02x})",
                    bytes[good]
                ),
            )
            .with_help("workspace files are UTF-8 YAML; is this a binary file?"))
        }
    }
}

/// Parses text into a tree, turning parser problems into diagnostics.
pub fn parse_text(text: &str, display: &Path, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    let parsed = yaml::parse(text);
    for p in &parsed.problems {
        let code = match p.kind {
            ProblemKind::Syntax => Code::YamlSyntax,
            ProblemKind::DuplicateKey => Code::DuplicateKey,
            ProblemKind::TooDeep => Code::NestingTooDeep,
            ProblemKind::AliasBudget => Code::AliasLimit,
            ProblemKind::ComplexKey => Code::ComplexKey,
            ProblemKind::MultipleDocuments => Code::MultipleDocuments,
        };
        let help = match p.kind {
            ProblemKind::DuplicateKey => Some("remove one of them; YAML keeps only one"),
            ProblemKind::Syntax => Some("check indentation, quotes and `:` after keys"),
            _ => None,
        };
        diags.push(
            Diagnostic::error(code, display, p.span, p.message.clone())
                .maybe_help(help.map(str::to_string)),
        );
    }
    let fatal = parsed
        .problems
        .iter()
        .any(|p| !matches!(p.kind, ProblemKind::DuplicateKey | ProblemKind::ComplexKey));
    if fatal {
        return None;
    }
    match parsed.root {
        Some(node) if node.value != yaml::Value::Null => Some(node),
        _ => {
            diags.push(
                Diagnostic::error(
                    Code::EmptyFile,
                    display,
                    Span::default(),
                    "the file is empty",
                )
                .with_help("delete it, or fill it in (see docs/formats.md)"),
            );
            None
        }
    }
}

impl Workspace {
    /// Adds `file` (its text still unread) with the `bytes` read for it.
    fn add_file(&mut self, file: SourceFile, bytes: Option<Vec<u8>>, schemas: &Schemas) {
        let SourceFile {
            display,
            rel,
            kind,
            id,
            origin,
            ..
        } = file;
        self.known.entry(kind).or_default().insert(id.clone());
        let mut diags = Vec::new();
        let named_by_path = !matches!(kind, FileKind::Config)
            && !matches!(
                kind,
                FileKind::Fields
                    | FileKind::Lists
                    | FileKind::Segments
                    | FileKind::Scoring
                    | FileKind::Pipelines
            );
        if origin == Origin::Workspace && named_by_path && !crate::validate::values::is_ident(&id) {
            diags.push(
                Diagnostic::error(
                    Code::InvalidId,
                    &display,
                    Span::default(),
                    format!("the path gives this file the id `{id}`, which is not a valid id"),
                )
                .with_help("rename it: ids use lowercase letters, digits, `-` and `_`"),
            );
        }
        let text = bytes.and_then(|b| decode(b, &display).map_err(|d| diags.push(d)).ok());
        let index = self.files.len();
        self.files.push(SourceFile {
            display: display.clone(),
            rel,
            kind,
            id: id.clone(),
            origin,
            text: None,
        });
        if let Some(text) = &text
            && let Some(root) = parse_text(text, &display, &mut diags)
        {
            let before = diags.len();
            let mut formats = Vec::new();
            crate::validate::structure::check(
                &root,
                kind,
                schemas,
                &display,
                &mut diags,
                &mut formats,
            );
            let clean = !diags[before..]
                .iter()
                .any(|d| d.severity == Severity::Error);
            diags.extend(formats);
            if clean {
                self.store(kind, id, index, root, &display, &mut diags);
            }
        }
        self.files[index].text = text;
        self.diagnostics.extend(diags);
    }

    fn store(
        &mut self,
        kind: FileKind,
        id: String,
        file: usize,
        root: Node,
        display: &Path,
        diags: &mut Vec<Diagnostic>,
    ) {
        fn typed<T: DeserializeOwned>(
            id: String,
            file: usize,
            root: Node,
            display: &Path,
            diags: &mut Vec<Diagnostic>,
        ) -> Option<Doc<T>> {
            match serde_json::from_value::<T>(root.to_json()) {
                Ok(value) => Some(Doc {
                    id,
                    file,
                    value,
                    root,
                }),
                Err(e) => {
                    // The structural check should have caught this; say so plainly.
                    diags.push(Diagnostic::error(
                        Code::WrongType,
                        display,
                        root.span,
                        format!("the file does not match its format: {e}"),
                    ));
                    None
                }
            }
        }
        macro_rules! put_map {
            ($field:ident) => {
                if let Some(doc) = typed(id.clone(), file, root, display, diags) {
                    self.$field.insert(id, doc);
                }
            };
        }
        match kind {
            FileKind::Config => self.config = typed(id, file, root, display, diags),
            FileKind::Workflow => put_map!(workflows),
            FileKind::WorkflowTests => {
                if let Some(doc) = typed(id, file, root, display, diags) {
                    self.workflow_tests.push(doc);
                }
            }
            FileKind::SiteTemplate => put_map!(site_templates),
            FileKind::Component => put_map!(components),
            FileKind::EmailTemplate => put_map!(email_templates),
            FileKind::Site => put_map!(sites),
            FileKind::Fields => self.fields = typed(id, file, root, display, diags),
            FileKind::Lists => self.lists = typed(id, file, root, display, diags),
            FileKind::Segments => self.segments = typed(id, file, root, display, diags),
            FileKind::Scoring => self.scoring = typed(id, file, root, display, diags),
            FileKind::Pipelines => self.pipelines = typed(id, file, root, display, diags),
            FileKind::Campaign => put_map!(campaigns),
            FileKind::EmailLayout => put_map!(email_layouts),
        }
    }

    /// Reads each component's `component.html` from the workspace or the built-ins.
    fn load_markup(&mut self, root: &Path, shown_root: &Path) {
        let ids: Vec<(String, Origin)> = self
            .files
            .iter()
            .filter(|f| f.kind == FileKind::Component)
            .map(|f| (f.id.clone(), f.origin))
            .collect();
        for (id, origin) in ids {
            let rel = format!("templates/components/{id}/component.html");
            let (display, text) = match origin {
                Origin::Workspace => {
                    let display = shown(shown_root, Path::new(&rel));
                    let text = std::fs::read(root.join(&rel))
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok());
                    (display, text)
                }
                Origin::Builtin => {
                    let path = format!("components/{id}/component.html");
                    let text = crate::builtin::file(&path)
                        .and_then(|b| String::from_utf8(b.to_vec()).ok());
                    (PathBuf::from(format!("builtin:{rel}")), text)
                }
            };
            match text {
                Some(text) => {
                    self.component_markup.insert(id, (display, text));
                }
                None => {
                    let yaml = display.with_file_name("component.yaml");
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::MissingFile,
                            &yaml,
                            Span::default(),
                            format!("component `{id}` has no readable component.html beside it"),
                        )
                        .with_help(
                            "the markup of a component is its component.html (UTF-8, minijinja)",
                        ),
                    );
                }
            }
        }
    }

    /// A file of `templates/` (e.g. `base.css`, `components/hero/component.css`):
    /// the workspace's own when `origin` is the workspace, else the built-in one.
    pub fn template_file(&self, origin: Origin, rel: &str) -> Option<Vec<u8>> {
        match origin {
            Origin::Workspace => std::fs::read(self.root.join("templates").join(rel)).ok(),
            Origin::Builtin => crate::builtin::file(rel).map(<[u8]>::to_vec),
        }
    }

    /// The files under a folder of `templates/` (`prefix` ends in `/`), as paths
    /// relative to that folder and their bytes, sorted by path.
    pub fn template_files_under(&self, origin: Origin, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        match origin {
            Origin::Builtin => {
                for (path, bytes) in crate::builtin::FILES.iter() {
                    if let Some(rest) = path.strip_prefix(prefix) {
                        out.push((rest.to_string(), bytes.to_vec()));
                    }
                }
            }
            Origin::Workspace => {
                let base = self.root.join("templates").join(prefix);
                files_under(&base, "", &mut out);
            }
        }
        out.sort();
        out
    }

    /// Site template `id` and where it came from: a loaded one, or a built-in one
    /// no site uses, parsed now.
    pub fn site_template(&self, id: &str) -> Option<(Cow<'_, SiteTemplate>, Origin)> {
        if let Some(doc) = self.site_templates.get(id) {
            return Some((Cow::Borrowed(&doc.value), self.file(doc.file).origin));
        }
        if !self.unused_builtin_templates.contains(id) {
            return None;
        }
        let bytes = crate::builtin::file(&format!("sites/{id}/template.yaml"))?;
        let text = std::str::from_utf8(bytes).ok()?;
        let root = yaml::parse(text).root?;
        let value = serde_json::from_value(root.to_json()).ok()?;
        Some((Cow::Owned(value), Origin::Builtin))
    }

    /// The ids of every site template, loaded or not, in order.
    pub fn site_template_ids(&self) -> impl Iterator<Item = &str> {
        self.ids(FileKind::SiteTemplate)
    }

    /// The file behind a loaded document.
    pub fn file(&self, index: usize) -> &SourceFile {
        &self.files[index]
    }

    /// Whether any file of `kind` has this id, loaded or not.
    pub fn knows(&self, kind: FileKind, id: &str) -> bool {
        self.known.get(&kind).is_some_and(|ids| ids.contains(id))
    }

    /// The ids of `kind`, for "did you mean" hints.
    pub fn ids(&self, kind: FileKind) -> impl Iterator<Item = &str> {
        self.known
            .get(&kind)
            .into_iter()
            .flat_map(|ids| ids.iter().map(String::as_str))
    }

    /// The text of a file by its display path, for snippets.
    pub fn text_of(&self, display: &Path) -> Option<String> {
        self.files
            .iter()
            .find(|f| f.display == display)
            .and_then(|f| f.text.clone())
            .or_else(|| {
                self.component_markup
                    .values()
                    .find(|(p, _)| p == display)
                    .map(|(_, t)| t.clone())
            })
    }
}

/// Every file below `dir`, with its path relative to the first call's folder.
pub fn files_under(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let sub = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, &sub, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((sub, bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    fn builtin_site_templates() -> usize {
        crate::builtin::FILES
            .iter()
            .filter(|(p, _)| p.starts_with("sites/") && p.ends_with("/template.yaml"))
            .count()
    }

    /// A workspace of funnel.yaml and `files`, loaded.
    fn loaded(files: &[(&str, &str)]) -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), CONFIG_FILE, "name: t\n");
        for (rel, text) in files {
            write(dir.path(), rel, text);
        }
        let ws = load(dir.path(), Path::new(".")).expect("load");
        (dir, ws)
    }

    #[test]
    fn only_the_built_in_site_templates_a_site_uses_are_loaded() {
        let (_dir, ws) = loaded(&[(
            "sites/shop/site.yaml",
            "name: Shop\ntemplate: local-bakery\n",
        )]);
        let loaded: Vec<&str> = ws.site_templates.keys().map(String::as_str).collect();
        assert_eq!(loaded, ["local-bakery"]);
        assert_eq!(ws.site_template_ids().count(), builtin_site_templates());
        assert!(ws.knows(FileKind::SiteTemplate, "saas-launch"));

        // One no site uses is parsed when asked for, the same as a loaded one would be.
        let (tpl, origin) = ws.site_template("saas-launch").expect("saas-launch");
        assert!(matches!(tpl, Cow::Owned(_)));
        assert_eq!(
            (tpl.name.as_str(), origin),
            ("SaaS launch", Origin::Builtin)
        );
        let (used, _) = ws.site_template("local-bakery").expect("local-bakery");
        assert!(matches!(used, Cow::Borrowed(_)));
        assert!(ws.site_template("no-such-template").is_none());
    }

    #[test]
    fn a_broken_override_of_a_built_in_template_is_not_replaced_by_the_built_in() {
        let (_dir, ws) = loaded(&[(
            "templates/sites/saas-launch/template.yaml",
            "name: [broken\n",
        )]);
        assert!(ws.knows(FileKind::SiteTemplate, "saas-launch"));
        assert!(ws.site_template("saas-launch").is_none());
        assert!(ws.site_template("local-bakery").is_some());
    }
}
