//! The human rendering, rustc-style with source snippets, as a snapshot.

use crate::support::{copy_tree, fixtures, run};

#[test]
fn human_output_shows_each_problem_with_its_snippet_and_help() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixtures().join("valid"), dir.path());
    std::fs::write(
        dir.path().join("workflows/typos.yaml"),
        "name: Typos\ntrigger:\n  type: tag_added\n  tag: vip\nsteps:\n  - id: hello\n    type: send_emial\n    template: welcome\n  - id: wait\n    type: delay\n    duration: 3 days\n    retyr: {attempts: 2}\n",
    )
    .expect("write");
    let out = run(&["validate", "--color", "never"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stderr));
}
