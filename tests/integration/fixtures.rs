//! Broken workspaces under `tests/fixtures/broken/<case>/` are overlays on
//! `tests/fixtures/valid/`. Each overlay file marks the diagnostics it must produce
//! with `# expect: CODE@COLUMN` comments on the offending line (several separated by
//! commas), or `# expect-at: LINE:COLUMN CODE` anywhere for lines that cannot carry a
//! comment. The test fails on any missing or extra diagnostic.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::{copy_tree, files_below, fixtures, validate_json};

type Expected = BTreeSet<(String, usize, usize, String)>;

fn expectations(case: &Path) -> Expected {
    let mut out = Expected::new();
    for rel in files_below(case) {
        let Ok(text) = std::fs::read_to_string(case.join(&rel)) else {
            continue;
        };
        let file = rel.to_string_lossy().replace('\\', "/");
        for (i, line) in text.lines().enumerate() {
            if let Some(rest) = line.split("# expect-at:").nth(1) {
                for item in rest.split(',') {
                    let mut parts = item.split_whitespace();
                    let (Some(pos), Some(code)) = (parts.next(), parts.next()) else {
                        panic!("{file}:{}: bad expect-at marker", i + 1);
                    };
                    let (l, c) = pos.split_once(':').expect("LINE:COLUMN");
                    out.insert((
                        file.clone(),
                        l.parse().expect("line"),
                        c.parse().expect("column"),
                        code.into(),
                    ));
                }
            } else if let Some(rest) = line.split("# expect:").nth(1) {
                for item in rest.split(',') {
                    let (code, col) = item.trim().split_once('@').unwrap_or_else(|| {
                        panic!("{file}:{}: marker `{item}` needs CODE@COLUMN", i + 1)
                    });
                    out.insert((
                        file.clone(),
                        i + 1,
                        col.parse().expect("column"),
                        code.into(),
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn the_valid_fixture_workspace_has_no_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixtures().join("valid"), dir.path());
    let (code, diags) = validate_json(dir.path());
    assert!(diags.is_empty(), "unexpected diagnostics: {diags:#?}");
    assert_eq!(code, 0);
}

#[test]
fn every_broken_fixture_reports_exactly_its_marked_diagnostics() {
    let broken = fixtures().join("broken");
    let mut cases: Vec<_> = std::fs::read_dir(&broken)
        .expect("broken fixtures")
        .flatten()
        .map(|e| e.path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "only {} broken fixtures", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let expected = expectations(case);
        if expected.is_empty() {
            failures.push(format!("{name}: marks no expected diagnostic"));
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        copy_tree(&fixtures().join("valid"), dir.path());
        copy_tree(case, dir.path());
        let (code, diags) = validate_json(dir.path());
        let found: Expected = diags
            .iter()
            .map(|d| {
                (
                    d["file"].as_str().unwrap_or_default().replace('\\', "/"),
                    d["line"].as_u64().unwrap_or(0) as usize,
                    d["column"].as_u64().unwrap_or(0) as usize,
                    d["code"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        for missing in expected.difference(&found) {
            failures.push(format!("{name}: missing {missing:?}"));
        }
        for extra in found.difference(&expected) {
            failures.push(format!("{name}: unexpected {extra:?}"));
        }
        let has_error = diags.iter().any(|d| d["severity"] == "error");
        if has_error && code != 1 {
            failures.push(format!("{name}: exit code {code}, expected 1"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
