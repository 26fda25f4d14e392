//! Built-in templates, and a workspace's own templates overriding them by id.

use crate::support::{copy_tree, fixtures, validate_json};

#[test]
fn a_workspace_template_overrides_the_builtin_one_with_the_same_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixtures().join("valid"), dir.path());
    let tpl = dir.path().join("templates/sites/saas-launch");
    std::fs::create_dir_all(&tpl).expect("mkdir");
    std::fs::write(
        tpl.join("template.yaml"),
        "name: My SaaS\ncategory: saas\ndescription: Our own variant.\nvariables:\n  motto: {type: string}\npages:\n  - path: /\n    title: \"{{ site.motto }}\"\n    components:\n      - id: contact-form\n        component: contact-form\n",
    )
    .expect("write");
    let (code, diags) = validate_json(dir.path());
    assert_eq!(code, 1);
    let codes: Vec<(&str, &str)> = diags
        .iter()
        .map(|d| {
            (
                d["file"].as_str().unwrap_or(""),
                d["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    // The site now answers to the workspace's template: `motto` is required, and the
    // built-in's variables are unknown to it.
    assert!(
        codes.contains(&("sites/main/site.yaml", "missing-variable")),
        "{diags:#?}"
    );
    assert!(
        codes.contains(&("sites/main/site.yaml", "unknown-variable")),
        "{diags:#?}"
    );
}

#[test]
fn builtin_templates_are_usable_without_copying_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixtures().join("valid"), dir.path());
    assert!(!dir.path().join("templates").exists());
    std::fs::create_dir_all(dir.path().join("sites/bakery")).expect("mkdir");
    std::fs::write(
        dir.path().join("sites/bakery/site.yaml"),
        "name: Crumb\ntemplate: local-bakery\ncustomizations: {}\n",
    )
    .expect("write");
    let (_, diags) = validate_json(dir.path());
    // The built-in template was found and read: its required variables are asked
    // for by name, and nothing else is wrong.
    let missing: Vec<&str> = diags
        .iter()
        .filter(|d| d["code"] == "missing-variable")
        .filter_map(|d| d["message"].as_str())
        .collect();
    assert!(
        missing.iter().any(|m| m.contains("`company_name`")),
        "{diags:#?}"
    );
    assert_eq!(missing.len(), diags.len(), "{diags:#?}");
}
