//! The files `funnel init` writes: a valid starter workspace with a site, a workflow
//! and its test, the JSON Schemas its YAML headers point at, and a .gitignore.
//!
//! Nothing is overwritten: every target is checked first, and if any exists nothing
//! is written at all.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::model::FileKind;

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("refusing to overwrite existing files: {}", .0.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Exists(Vec<PathBuf>),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

const FUNNEL_YAML: &str = r#"# yaml-language-server: $schema=schema/funnel.schema.json
name: {name}
# Where the daemon is reachable: forms post and tracking reports go here.
public_url: http://127.0.0.1:8080
timezone: UTC
store:
  backend: sqlite
  path: .funnel/funnel.db
email:
  from: "{mailbox_name} <hello@example.com>"
  postal_address: "Your company, street, city, country"
  # Without smtp, mail goes to the dev outbox as .eml files.
  outbox: .funnel/outbox
"#;

const SITE_YAML: &str = r##"# yaml-language-server: $schema=../../schema/site.schema.json
name: {name}
template: saas-launch
customizations:
  company_name: {name}
  tagline: Say what you do for whom, in a few words.
  primary_color: "#2563eb"
  contact_email: hello@example.com
  signup_url: /#contact
seo:
  description: "{name_inner}: what we do, in one sentence."
"##;

const WORKFLOW_YAML: &str = r#"# yaml-language-server: $schema=../schema/workflow.schema.json
name: Contact form follow-up
description: Save everyone who writes in, and answer them at once.
trigger:
  type: form_submission
  site: main
  component: contact-form
  conditions:
    - trigger.fields.email is defined
steps:
  - id: save_contact
    type: upsert_contact
    email: "{{ trigger.fields.email }}"
    name: "{{ trigger.fields.name }}"
    tags: [lead]
  - id: welcome
    type: send_email
    template: welcome
"#;

const WORKFLOW_TEST_YAML: &str = r#"# yaml-language-server: $schema=../../schema/workflow-test.schema.json
workflow: contact-form-follow-up
cases:
  - name: a new lead is saved and welcomed
    trigger:
      fields:
        email: ada@example.com
        name: Ada Lovelace
    expect:
      status: completed
      path: [save_contact, welcome]
      emails:
        - template: welcome
          to: ada@example.com
      contact:
        tags: [lead]
"#;

const FIELDS_YAML: &str = r#"# yaml-language-server: $schema=../schema/fields.schema.json
fields:
  company:
    type: string
    label: Company
"#;

const LISTS_YAML: &str = r#"# yaml-language-server: $schema=../schema/lists.schema.json
lists:
  newsletter:
    name: Newsletter
    double_opt_in: true
"#;

const GITIGNORE: &str = "# funnel's run-time state: the store and the dev outbox\n.funnel/\n";

/// The files of a new workspace, relative to its folder.
pub fn starter_files(name: &str) -> Vec<(PathBuf, String)> {
    let quoted = yaml_scalar(name);
    // Inside a double-quoted scalar: the name escaped, without quotes of its own.
    let escaped = serde_json::to_string(name).unwrap_or_default();
    let inner = escaped
        .strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or("workspace");
    // A display name with RFC 5322's specials (`acme.io`) is a quoted string.
    let specials = |c: char| "()<>[]:;@\\,.\"".contains(c);
    let display = if name.contains(specials) {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        name.to_string()
    };
    let display = serde_json::to_string(&display).unwrap_or_default();
    let mailbox = display
        .strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or("workspace");
    let fill = |t: &str| {
        t.replace("{name_inner}", inner)
            .replace("{mailbox_name}", mailbox)
            .replace("{name}", &quoted)
    };
    let mut files = vec![
        (PathBuf::from("funnel.yaml"), fill(FUNNEL_YAML)),
        (PathBuf::from(".gitignore"), GITIGNORE.to_string()),
        (PathBuf::from("sites/main/site.yaml"), fill(SITE_YAML)),
        (
            PathBuf::from("workflows/contact-form-follow-up.yaml"),
            WORKFLOW_YAML.to_string(),
        ),
        (
            PathBuf::from("workflows/tests/contact-form-follow-up.yaml"),
            WORKFLOW_TEST_YAML.to_string(),
        ),
        (
            PathBuf::from("contacts/fields.yaml"),
            FIELDS_YAML.to_string(),
        ),
        (PathBuf::from("contacts/lists.yaml"), LISTS_YAML.to_string()),
    ];
    for kind in FileKind::ALL {
        files.push((
            Path::new("schema").join(kind.schema_file()),
            crate::schema::schema_text(kind),
        ));
    }
    files
}

/// A name as a YAML scalar: quoted when plain style would change its meaning.
fn yaml_scalar(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
        && !name.starts_with([' ', '-', '.'])
        && !matches!(
            name.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
        && name.parse::<f64>().is_err();
    if plain {
        name.to_string()
    } else {
        serde_json::to_string(name).unwrap_or_else(|_| "\"workspace\"".into())
    }
}

/// Creates a workspace in `dir`, which may exist but must not hold any of the files.
pub fn init(dir: &Path, name: &str) -> Result<Vec<PathBuf>, ScaffoldError> {
    let files = starter_files(name);
    let existing: Vec<PathBuf> = files
        .iter()
        .map(|(rel, _)| dir.join(rel))
        .filter(|p| p.exists())
        .collect();
    if !existing.is_empty() {
        return Err(ScaffoldError::Exists(existing));
    }
    write_new(dir, &files)
}

/// Writes schema files for `kinds` into `dir`, replacing older ones.
pub fn write_schemas(dir: &Path, kinds: &[FileKind]) -> Result<Vec<PathBuf>, ScaffoldError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for kind in kinds {
        let path = dir.join(kind.schema_file());
        std::fs::write(&path, crate::schema::schema_text(*kind)).map_err(io(&path))?;
        written.push(path);
    }
    if kinds.len() == FileKind::ALL.len() {
        let path = dir.join("recipe.schema.json");
        std::fs::write(&path, crate::schema::recipe_schema_text()).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

fn write_new(dir: &Path, files: &[(PathBuf, String)]) -> Result<Vec<PathBuf>, ScaffoldError> {
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        let io = |source| ScaffoldError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // create_new: a file that appeared since the check is still not overwritten.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::yaml_scalar;

    #[test]
    fn quotes_names_that_yaml_would_misread() {
        assert_eq!(yaml_scalar("Acme Marketing"), "Acme Marketing");
        assert_eq!(yaml_scalar("yes"), "\"yes\"");
        assert_eq!(yaml_scalar("1.5"), "\"1.5\"");
        assert_eq!(yaml_scalar("a: b"), "\"a: b\"");
    }

    #[test]
    fn a_name_that_needs_quotes_stays_one_scalar_inside_quoted_text() {
        for name in [".tmpQx9", "Ann \"Ace\" Co", "yes"] {
            for (path, text) in super::starter_files(name) {
                if path.extension().is_some_and(|e| e == "yaml") {
                    let parsed = crate::yaml::parse(&text);
                    assert!(
                        parsed.problems.is_empty(),
                        "{name}: {path:?}: {:?}",
                        parsed.problems
                    );
                }
            }
        }
    }
}
