//! Located problems and how they are shown.
//!
//! Owns [`Diagnostic`] (severity, stable code, file, line, column, message, help) and
//! its three renderings: rustc-style text with the source snippet (through miette),
//! a stable JSON array for tools, and GitHub Actions annotations. It does not find
//! problems; `validate` and `workspace` do.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::yaml::Span;

/// How bad a problem is. Errors fail `funnel validate`; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($($variant:ident => $text:literal: $doc:literal,)*) => {
        /// Stable diagnostic codes. The text form is part of funnel's interface:
        /// never rename one, only add.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $(#[doc = $doc] $variant,)*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }

            /// One line on what the code means.
            pub fn explain(self) -> &'static str {
                match self {
                    $(Code::$variant => $doc,)*
                }
            }

            pub fn parse(text: &str) -> Option<Code> {
                match text {
                    $($text => Some(Code::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    Io => "io-error": "the file could not be read",
    InvalidUtf8 => "invalid-utf8": "the file is not UTF-8 text",
    FileTooLarge => "file-too-large": "the file is larger than a workspace file may be",
    EmptyFile => "empty-file": "the file holds no YAML document",
    YamlSyntax => "yaml-syntax": "the file is not well-formed YAML",
    DuplicateKey => "duplicate-key": "a mapping has the same key twice",
    NestingTooDeep => "nesting-too-deep": "the document nests deeper than allowed",
    AliasLimit => "alias-limit": "YAML aliases expand to too many nodes",
    ComplexKey => "complex-key": "a mapping key is a list or mapping",
    MultipleDocuments => "multiple-documents": "the file holds more than one YAML document",
    UnknownFile => "unknown-file": "a file in a workspace folder that funnel does not read",
    UnknownKey => "unknown-key": "a key the file kind does not have",
    MissingKey => "missing-key": "a required key is absent",
    WrongType => "wrong-type": "a value has the wrong type",
    InvalidValue => "invalid-value": "a value is not one of the allowed ones",
    UnknownTemplate => "unknown-template": "a site names a site template that does not exist",
    UnknownComponent => "unknown-component": "a page or trigger names a component that does not exist",
    UnknownEmailTemplate => "unknown-email-template": "a step names an email template that does not exist",
    UnknownList => "unknown-list": "a reference to a static list that contacts/lists.yaml lacks",
    UnknownSegment => "unknown-segment": "a reference to a segment that contacts/segments.yaml lacks",
    UnknownSite => "unknown-site": "a trigger names a site that does not exist",
    UnknownWorkflow => "unknown-workflow": "a reference to a workflow that does not exist",
    UnknownPipeline => "unknown-pipeline": "a reference to a pipeline that contacts/pipelines.yaml lacks",
    UnknownStage => "unknown-stage": "a reference to a pipeline stage that does not exist",
    UnknownField => "unknown-field": "a custom contact field that contacts/fields.yaml lacks",
    DuplicateStepId => "duplicate-step-id": "two steps of a workflow share an id",
    UnknownStep => "unknown-step": "a jump to a step id that the workflow lacks",
    UnreachableStep => "unreachable-step": "no path from the start of the workflow reaches the step",
    IllegalCycle => "illegal-cycle": "steps form a cycle that does not pass through a loop step",
    ExpressionSyntax => "expression-syntax": "an expression does not compile",
    TemplateSyntax => "template-syntax": "a template does not compile",
    UnknownName => "unknown-name": "an expression or template uses a name that does not exist in its scope",
    InvalidCron => "invalid-cron": "a cron expression does not parse",
    InvalidTimezone => "invalid-timezone": "not an IANA time zone name",
    InvalidDuration => "invalid-duration": "not a duration such as 15m, 2h or 3d",
    InvalidEmail => "invalid-email": "not an email address",
    InvalidUrl => "invalid-url": "not an absolute http(s) URL",
    InvalidColor => "invalid-color": "not a hex color such as #3b82f6",
    InvalidId => "invalid-id": "ids use lowercase letters, digits, - and _",
    MissingVariable => "missing-variable": "a site does not set a template variable that has no default",
    VariableType => "variable-type": "a site or component value has the wrong type for its variable",
    UnknownVariable => "unknown-variable": "a site sets a variable its template does not declare",
    DuplicateComponentId => "duplicate-component-id": "two component instances of a site share an id",
    DuplicatePage => "duplicate-page": "two pages of a template or site share a path",
    PlaintextSecret => "plaintext-secret": "a secret is written in the file instead of a ${ENV} reference",
    InvalidReference => "invalid-reference": "a reference that cannot be used where it stands",
    UnknownPage => "unknown-page": "a trigger names a page path that the site does not have",
    MissingFile => "missing-file": "a file that belongs with another is missing",
    UnsetSecret => "unset-secret": "a ${ENV} reference whose variable this environment does not set (validate --env)",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One problem, located in one file.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    /// The file, relative to the workspace root where possible.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Byte range in the file, for snippets.
    #[serde(skip)]
    pub offset: usize,
    #[serde(skip)]
    pub len: usize,
}

impl Diagnostic {
    pub fn error(code: Code, file: &Path, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            file: file.to_path_buf(),
            line: span.start.line.max(1),
            column: span.start.col.max(1),
            message: message.into(),
            help: None,
            offset: span.start.offset,
            len: span.len(),
        }
    }

    pub fn warning(code: Code, file: &Path, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, file, span, message)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

/// Sorts diagnostics by file, line, column and code, for stable output.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.code, &a.message)
            .cmp(&(&b.file, b.line, b.column, b.code, &b.message))
    });
}

/// Suggests the closest candidate to a misspelt word, if one is close enough.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(&word.to_lowercase(), &candidate.to_lowercase());
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

/// "did you mean" when a candidate is close, else the whole list after `intro`
/// (e.g. "its stages: lead, won, lost").
pub fn suggest(word: &str, candidates: &[&str], intro: &str) -> String {
    did_you_mean(word, candidates.iter().copied())
        .unwrap_or_else(|| format!("{intro}: {}", candidates.join(", ")))
}

/// The JSON rendering: a stable array of objects.
pub fn render_json(diags: &[Diagnostic]) -> String {
    serde_json::to_string_pretty(diags).unwrap_or_else(|_| "[]".into())
}

/// GitHub Actions workflow commands, one line a diagnostic.
pub fn render_github(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = format!("[{}] {}", d.code, d.message);
        if let Some(help) = &d.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        let _ = writeln!(
            out,
            "::{level} file={},line={},col={},title={}::{}",
            escape_property(&d.file.display().to_string()),
            d.line,
            d.column,
            escape_property(d.code.as_str()),
            escape_data(&message)
        );
    }
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One diagnostic as miette sees it, with the file's text for the snippet.
#[derive(Debug)]
struct Report<'a> {
    diag: &'a Diagnostic,
    source: miette::NamedSource<SharedText>,
}

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.diag.code, self.diag.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let len = self.diag.len.clamp(1, 200);
        Some(Box::new(std::iter::once(miette::LabeledSpan::new(
            Some("here".into()),
            self.diag.offset,
            len,
        ))))
    }
}

/// Rustc-style text with source snippets. `source_of` gives a file's text; files
/// whose text is not at hand (unreadable, binary) are shown without a snippet.
pub fn render_human<F>(diags: &[Diagnostic], color: bool, mut source_of: F) -> String
where
    F: FnMut(&Path) -> Option<String>,
{
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    let mut out = String::new();
    let mut cache: Option<(PathBuf, Option<SharedText>)> = None;
    for d in diags {
        if cache.as_ref().map(|(p, _)| p) != Some(&d.file) {
            let text = source_of(&d.file).map(|t| SharedText(Arc::from(t)));
            cache = Some((d.file.clone(), text));
        }
        match cache.as_ref().and_then(|(_, t)| t.clone()) {
            Some(text) => {
                let report = Report {
                    diag: d,
                    source: miette::NamedSource::new(d.file.display().to_string(), text),
                };
                let _ = handler.render_report(&mut out, &report);
            }
            None => {
                let level = match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                let _ = writeln!(
                    out,
                    "{level}[{}]: {}\n  --> {}:{}:{}",
                    d.code,
                    d.message,
                    d.file.display(),
                    d.line,
                    d.column
                );
                if let Some(help) = &d.help {
                    let _ = writeln!(out, "  help: {help}");
                }
            }
        }
        out.push('\n');
    }
    out
}

/// A file's text shared between the reports of its diagnostics.
#[derive(Debug, Clone)]
struct SharedText(Arc<str>);

impl miette::SourceCode for SharedText {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        self.0
            .as_ref()
            .read_span(span, context_lines_before, context_lines_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_text() {
        for code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(*code));
        }
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("templte", ["template", "to", "subject"]),
            Some("did you mean `template`?".into())
        );
        assert_eq!(did_you_mean("zzz", ["template", "to"]), None);
    }

    #[test]
    fn escapes_github_annotations() {
        let d = Diagnostic::error(
            Code::UnknownKey,
            Path::new("a,b.yaml"),
            Span::default(),
            "50% bad\nreally",
        );
        let out = render_github(&[d]);
        assert!(out.starts_with("::error file=a%2Cb.yaml,line=1,col=1,title=unknown-key::"));
        assert!(out.contains("50%25 bad%0Areally"));
    }
}
