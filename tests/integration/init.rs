//! `funnel init` and `funnel validate` on the result, and on the demo workspace.

use crate::support::{repo_root, run};

#[test]
fn init_creates_a_workspace_that_validates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = dir.path().join("shop");
    let out = run(&["init", ws.to_str().expect("utf-8 path")], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [
        "funnel.yaml",
        ".gitignore",
        "sites/main/site.yaml",
        "schema/workflow.schema.json",
    ] {
        assert!(ws.join(file).is_file(), "{file} missing");
    }
    let gitignore = std::fs::read_to_string(ws.join(".gitignore")).expect("read .gitignore");
    assert!(gitignore.lines().any(|l| l == ".funnel/"));
    let out = run(&["validate"], &ws);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn init_refuses_to_overwrite_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("funnel.yaml"), "name: mine\n").expect("write");
    let out = run(&["init", "."], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to overwrite"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("funnel.yaml")).expect("read"),
        "name: mine\n"
    );
    assert!(
        !dir.path().join("sites").exists(),
        "a partial workspace was written"
    );
}

#[test]
fn the_demo_workspace_validates_clean() {
    let out = run(&["validate", "--format", "json"], &repo_root());
    let diags: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn validate_outside_a_workspace_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(&["validate"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no funnel workspace"));
}

#[test]
fn github_format_prints_annotations() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::support::copy_tree(&crate::support::fixtures().join("valid"), dir.path());
    std::fs::write(
        dir.path().join("workflows/typo.yaml"),
        "name: T\ntrigger: {type: tag_added, tag: x}\nsteps: []\nstesp: 1\n",
    )
    .expect("write");
    let out = run(&["validate", "--format", "github"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("::error file=workflows/typo.yaml,line=4,col=1,title=unknown-key::"),
        "{text}"
    );
}
