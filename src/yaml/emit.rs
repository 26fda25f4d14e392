//! JSON written as block-style YAML: what the CLI and the API write into
//! workspace files (imported workflows, site edits).

use serde_json::{Value as Json, json};

/// JSON as block-style YAML, each line indented by `indent` spaces. Strings are always double-quoted (JSON's escapes are
/// YAML's), so no value can be misread as another type.
pub fn emit(v: &Json, indent: usize) -> String {
    let mut out = String::new();
    write(v, indent, &mut out);
    out
}

fn scalar(v: &Json) -> String {
    match v {
        Json::String(s) => serde_json::to_string(s).unwrap_or_default(),
        other => other.to_string(),
    }
}

fn write(v: &Json, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Json::Object(map) => {
            for (k, val) in map {
                let key = if k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    k.clone()
                } else {
                    scalar(&json!(k))
                };
                match val {
                    Json::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        write(val, indent + 2, out);
                    }
                    Json::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        write(val, indent + 2, out);
                    }
                    Json::Object(_) => out.push_str(&format!("{pad}{key}: {{}}\n")),
                    Json::Array(_) => out.push_str(&format!("{pad}{key}: []\n")),
                    other => out.push_str(&format!("{pad}{key}: {}\n", scalar(other))),
                }
            }
        }
        Json::Array(items) => {
            for item in items {
                match item {
                    Json::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        write(item, indent + 2, &mut inner);
                        // The first line of the mapping goes after the dash.
                        let first = inner.trim_start_matches(' ');
                        out.push_str(&format!("{pad}- {first}"));
                    }
                    other => {
                        let mut inner = String::new();
                        write(other, indent + 2, &mut inner);
                        out.push_str(&format!("{pad}- {}", inner.trim_start()));
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}
