//! The committed `schema/` matches what the types generate, and every YAML file of
//! the demo workspace points at its schema.

use crate::support::{repo_root, run};

#[test]
fn committed_schemas_match_the_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(
        &["schema", "--out", dir.path().to_str().expect("utf-8")],
        dir.path(),
    );
    assert!(out.status.success());
    for entry in std::fs::read_dir(dir.path()).expect("read").flatten() {
        let name = entry.file_name();
        let generated = std::fs::read_to_string(entry.path()).expect("read generated");
        let committed =
            std::fs::read_to_string(repo_root().join("schema").join(&name)).unwrap_or_default();
        assert!(
            generated == committed,
            "schema/{} is out of date: run `cargo run -- schema --out schema`",
            name.to_string_lossy()
        );
    }
}

#[test]
fn every_demo_yaml_file_names_its_schema() {
    let root = repo_root();
    let mut missing = Vec::new();
    for folder in ["workflows", "templates", "sites", "contacts"] {
        for rel in crate::support::files_below(&root.join(folder)) {
            if rel.extension().is_some_and(|e| e == "yaml") {
                let path = root.join(folder).join(&rel);
                let text = std::fs::read_to_string(&path).expect("read");
                if !text.starts_with("# yaml-language-server: $schema=") {
                    missing.push(path.display().to_string());
                }
            }
        }
    }
    let config = std::fs::read_to_string(root.join("funnel.yaml")).expect("read funnel.yaml");
    if !config.starts_with("# yaml-language-server: $schema=schema/funnel.schema.json") {
        missing.push("funnel.yaml".into());
    }
    assert!(
        missing.is_empty(),
        "files without a schema header: {missing:#?}"
    );
}

#[test]
fn schema_of_one_kind_prints_json() {
    let out = run(&["schema", "workflow"], &repo_root());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let out = run(&["schema", "nonsense"], &repo_root());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_diagnostic_code_is_documented() {
    let doc =
        std::fs::read_to_string(repo_root().join("docs/formats.md")).expect("docs/formats.md");
    let missing: Vec<&str> = funnel::diagnostic::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !doc.contains(&format!("`{c}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "codes missing from docs/formats.md: {missing:?}"
    );
}
