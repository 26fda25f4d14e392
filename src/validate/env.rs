//! `funnel validate --env`, and the start of `worker` and `preview`: the `${NAME}`
//! references written in the workspace's own files whose variable this
//! environment does not set. Plain `validate` leaves them alone: CI validates
//! without production secrets by design.

use crate::diagnostic::{Code, Diagnostic};
use crate::workspace::{Origin, Workspace};
use crate::yaml::{Pos, Span};

/// One `${NAME}` reference in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub name: String,
    pub line: usize,
    pub column: usize,
}

/// The `${NAME}` references in YAML text, outside comment lines; `$${` is an
/// escaped `${`, not a reference.
pub fn references(text: &str) -> Vec<SecretRef> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let bytes = line.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] == b'$' && bytes.get(at + 1) == Some(&b'$') {
                at += 2;
                continue;
            }
            if bytes[at] == b'$'
                && bytes.get(at + 1) == Some(&b'{')
                && let Some(end) = line[at + 2..].find('}')
            {
                let name = &line[at + 2..at + 2 + end];
                if crate::validate::values::is_env_reference(&format!("${{{name}}}")) {
                    out.push(SecretRef {
                        name: name.to_string(),
                        line: i + 1,
                        column: line[..at].chars().count() + 1,
                    });
                }
                at += 3 + end;
                continue;
            }
            at += 1;
        }
    }
    out
}

/// An error for every reference whose variable `is_set` says is not set.
pub fn unset_secrets(ws: &Workspace, is_set: impl Fn(&str) -> bool) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for file in ws.files.iter().filter(|f| f.origin == Origin::Workspace) {
        let Some(text) = &file.text else { continue };
        for r in references(text) {
            if is_set(&r.name) {
                continue;
            }
            let start = Pos {
                line: r.line,
                col: r.column,
                offset: 0,
            };
            let end = Pos {
                col: r.column + r.name.chars().count() + 3,
                ..start
            };
            out.push(
                Diagnostic::error(
                    Code::UnsetSecret,
                    &file.display,
                    Span { start, end },
                    format!("`{}` is not set in this environment", r.name),
                )
                .with_help(format!(
                    "export {}=… before starting funnel; a step that needs it fails at once",
                    r.name
                )),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_skip_comments_and_escapes() {
        let text = "a: ${ONE}\n# b: ${COMMENTED}\nc: \"x $${NOT} ${TWO} y\"\nd: ${bad-name}\n";
        let found: Vec<(String, usize, usize)> = references(text)
            .into_iter()
            .map(|r| (r.name, r.line, r.column))
            .collect();
        assert_eq!(
            found,
            [("ONE".to_string(), 1, 4), ("TWO".to_string(), 3, 15)]
        );
    }
}
