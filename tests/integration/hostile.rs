//! Hostile files: each gives a diagnostic naming the file, quickly and within
//! bounded memory, never a panic or a hang. Time and memory are bounded by the
//! loader's limits (file size, nesting depth, alias expansion), which these
//! tests reach; `benches/` and docs/validate.md hold the measured figures.

use std::path::Path;

use crate::support::{copy_tree, fixtures, validate_json};

/// Writes `bytes` as a workflow into a copy of the valid workspace and validates.
fn validate_with(name: &str, bytes: &[u8]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixtures().join("valid"), dir.path());
    let rel = format!("workflows/{name}.yaml");
    std::fs::write(dir.path().join(&rel), bytes).expect("write hostile file");
    let (code, diags) = validate_json(dir.path());
    assert_eq!(code, 1, "{name}: exit code");
    assert!(
        diags.iter().all(|d| d["file"] == rel.as_str()),
        "{name}: diagnostics outside the file: {diags:#?}"
    );
    assert!(!diags.is_empty(), "{name}: no diagnostic");
    diags
}

fn codes(diags: &[serde_json::Value]) -> Vec<&str> {
    diags.iter().filter_map(|d| d["code"].as_str()).collect()
}

#[test]
fn invalid_utf8_is_reported_at_the_bad_byte() {
    let diags = validate_with("latin1", b"name: Caf\xe9\nsteps: []\n");
    assert_eq!(codes(&diags), ["invalid-utf8"]);
    assert_eq!(
        (diags[0]["line"].as_u64(), diags[0]["column"].as_u64()),
        (Some(1), Some(10))
    );
}

#[test]
fn a_fifty_megabyte_file_is_refused_unread() {
    let big = vec![b'#'; 50 * 1024 * 1024];
    let diags = validate_with("huge", &big);
    assert_eq!(codes(&diags), ["file-too-large"]);
}

#[test]
fn an_alias_bomb_is_stopped() {
    let mut src = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = format!("*a{}", i - 1);
        src.push_str(&format!("a{i}: &a{i} [{}]\n", [p.as_str(); 9].join(", ")));
    }
    let diags = validate_with("bomb", src.as_bytes());
    assert_eq!(codes(&diags), ["alias-limit"]);
}

#[test]
fn ten_thousand_levels_of_nesting_are_refused() {
    // Block style, linear in size: `- - - … x` nests a list per dash.
    let block = format!("a:\n  {}x\n", "- ".repeat(10_000));
    let diags = validate_with("deep-block", block.as_bytes());
    assert_eq!(codes(&diags), ["nesting-too-deep"]);
    let flow = format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let diags = validate_with("deep-flow", flow.as_bytes());
    assert_eq!(codes(&diags), ["nesting-too-deep"]);
}

#[test]
fn binary_garbage_is_reported_not_parsed() {
    // A deterministic byte soup, like a misplaced image.
    let mut rng = funnel::rng::Rng::new(42);
    let bytes: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
    let diags = validate_with("garbage", &bytes);
    assert_eq!(diags.len(), 1, "{diags:?}");
    let also_text = validate_with("nul", b"name: a\0b\n");
    assert!(
        codes(&also_text).iter().all(|c| *c == "yaml-syntax"),
        "{also_text:?}"
    );
}

#[test]
fn an_empty_file_is_reported() {
    assert_eq!(codes(&validate_with("empty", b"")), ["empty-file"]);
    assert_eq!(
        codes(&validate_with("comments-only", b"# nothing here\n")),
        ["empty-file"]
    );
}

#[test]
fn duplicate_keys_are_reported_where_the_second_stands() {
    let diags = validate_with("dup", b"name: A\nname: B\n");
    let dup: Vec<_> = diags
        .iter()
        .filter(|d| d["code"] == "duplicate-key")
        .collect();
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0]["line"], 2);
    assert_eq!(dup[0]["column"], 1);
}

#[test]
fn the_valid_fixture_exists() {
    assert!(Path::new(&fixtures().join("valid/funnel.yaml")).is_file());
}
