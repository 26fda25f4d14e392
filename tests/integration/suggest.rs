//! `funnel suggest` on the real binary: the ranker against the judged cases
//! (tests/fixtures/suggest/judged.yaml, committed before the ranker), every
//! shipped recipe validating and passing its test in the demo workspace and in
//! a fresh `funnel init` workspace, a site analysed and its suggestions
//! written, and a recipe that does not validate never written.

use std::path::Path;

use serde_json::Value as Json;

use crate::support::{demo, fixtures, funnel, json_out, repo_root, run};

fn judged() -> Vec<Json> {
    let text = std::fs::read_to_string(fixtures().join("suggest/judged.yaml")).expect("judged");
    let parsed = funnel::yaml::parse(&text);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    let root = parsed.root.expect("root").to_json();
    root["cases"].as_array().expect("cases").clone()
}

#[test]
fn the_ranker_agrees_with_the_judged_cases() {
    let cases = judged();
    assert!(cases.len() >= 30, "{} judged cases", cases.len());
    let dir = tempfile::tempdir().expect("dir");
    let mut first = 0;
    let mut misses = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let mut args: Vec<String> = vec![
            "suggest".into(),
            "--component".into(),
            case["component"].as_str().expect("component").into(),
            "--industry".into(),
            case["industry"].as_str().expect("industry").into(),
            "--format".into(),
            "json".into(),
            "--workspace".into(),
            repo_root().display().to_string(),
        ];
        for g in case["goals"].as_array().expect("goals") {
            args.push("--goal".into());
            args.push(g.as_str().expect("goal").into());
        }
        if let Some(config) = case.get("config") {
            let file = dir.path().join(format!("config-{n}.json"));
            std::fs::write(&file, config.to_string()).expect("write config");
            args.push("--config".into());
            args.push(file.display().to_string());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = json_out(&refs, dir.path());
        let got: Vec<&str> = out["components"][0]["suggestions"]
            .as_array()
            .expect("suggestions")
            .iter()
            .filter_map(|s| s["recipe"].as_str())
            .collect();
        let expected = case["expected"][0].as_str().expect("expected");
        assert!(
            got.iter().take(3).any(|r| *r == expected),
            "{}: `{expected}` is not in the top 3: {got:?}",
            case["name"]
        );
        if got.first() == Some(&expected) {
            first += 1;
        } else {
            misses.push(format!("{}: {got:?}", case["name"]));
        }
    }
    let share = first as f64 / cases.len() as f64;
    eprintln!(
        "top 1 matches {first} of {} judged cases; misses: {misses:#?}",
        cases.len()
    );
    assert!(
        share >= 0.8,
        "top 1 matches only {first} of {}",
        cases.len()
    );
}

/// A site with one instance `c-<type>` of every component type, so every
/// recipe has a component to start from.
fn add_check_site(root: &Path) {
    let mut site = String::from(
        "name: Recipe check\ntemplate: saas-launch\ncustomizations:\n  company_name: Check\n  tagline: Checking recipes.\n  contact_email: hello@example.com\n  signup_url: /signup\npages:\n  - path: /recipes-check\n    title: Recipe check\n    components:\n",
    );
    let mut types: Vec<String> = std::fs::read_dir(repo_root().join("templates/components"))
        .expect("components")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    types.sort();
    for t in types {
        site.push_str(&format!("      - id: c-{t}\n        component: {t}\n"));
        match t.as_str() {
            "cta" => site.push_str(
                "        config: {heading: Ready?, button_label: Go, button_href: /go}\n",
            ),
            "hero" => site.push_str("        config: {headline: Hello}\n"),
            _ => {}
        }
    }
    std::fs::create_dir_all(root.join("sites/rcheck")).expect("site dir");
    std::fs::write(root.join("sites/rcheck/site.yaml"), site).expect("site");
}

fn every_recipe_validates_and_passes_in(root: &Path) {
    add_check_site(root);
    let library = funnel::suggest::recipes::builtin().expect("library");
    assert!(library.len() >= 40, "{} recipes", library.len());
    std::fs::create_dir_all(root.join("workflows/tests")).expect("tests dir");
    for r in library.values() {
        let id = format!("r-{}", r.id);
        let filled = r.instantiate("rcheck", &format!("c-{}", r.meta.component), &id);
        std::fs::write(root.join(format!("workflows/{id}.yaml")), &filled.workflow)
            .expect("workflow");
        std::fs::write(
            root.join(format!("workflows/tests/{id}.yaml")),
            &filled.test,
        )
        .expect("test");
    }
    let out = run(&["validate", "--format", "json"], root);
    let diags: Vec<Json> = serde_json::from_slice(&out.stdout).expect("json");
    let ours: Vec<&Json> = diags
        .iter()
        .filter(|d| d["file"].as_str().is_some_and(|f| f.contains("/r-")))
        .collect();
    assert!(ours.is_empty(), "recipes with problems: {ours:#?}");
    assert!(out.status.success(), "{diags:#?}");
    let out = run(&["test"], root);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for r in library.values() {
        assert!(
            text.contains(&format!("r-{} ›", r.id)),
            "no test of {} ran:\n{text}",
            r.id
        );
    }
}

#[test]
fn every_shipped_recipe_validates_and_passes_its_test_in_the_demo() {
    let dir = demo();
    every_recipe_validates_and_passes_in(dir.path());
}

#[test]
fn every_shipped_recipe_validates_and_passes_its_test_in_a_new_workspace() {
    let dir = tempfile::tempdir().expect("dir");
    let out = funnel()
        .arg("init")
        .current_dir(dir.path())
        .output()
        .expect("init");
    assert!(out.status.success());
    every_recipe_validates_and_passes_in(dir.path());
}

#[test]
fn a_sites_components_without_workflows_get_suggestions_written() {
    let dir = demo();
    let d = dir.path();
    let out = json_out(&["suggest", "--site", "demo", "--format", "json"], d);
    let components = out["components"].as_array().expect("components");
    // The demo's contact form already starts a workflow: not proposed again.
    assert!(
        !components.iter().any(|c| c["instance"] == "contact-form"),
        "{components:#?}"
    );
    let pricing = components
        .iter()
        .find(|c| c["instance"] == "pricing-table")
        .expect("the pricing table gets suggestions");
    // Industry from the site's template (saas-launch).
    assert_eq!(pricing["industry"], "saas");
    let best = pricing["suggestions"][0]["recipe"]
        .as_str()
        .expect("a suggestion")
        .to_string();
    let out = json_out(
        &[
            "suggest",
            "--site",
            "demo",
            "--instance",
            "pricing-table",
            "--write",
            "--format",
            "json",
        ],
        d,
    );
    assert_eq!(out["written"][0]["workflow"], best.as_str());
    assert!(d.join(format!("workflows/{best}.yaml")).is_file());
    assert!(d.join(format!("workflows/tests/{best}.yaml")).is_file());
    let check = run(&["validate"], d);
    assert!(check.status.success());
    let tests = run(&["test", &best], d);
    assert!(
        tests.status.success(),
        "{}",
        String::from_utf8_lossy(&tests.stdout)
    );
    // Now a workflow starts from it: the site analysis leaves it out.
    let again = json_out(&["suggest", "--site", "demo", "--format", "json"], d);
    assert!(
        !again["components"]
            .as_array()
            .expect("components")
            .iter()
            .any(|c| c["instance"] == "pricing-table")
    );
}

#[test]
fn a_workspace_recipe_that_does_not_validate_is_never_written() {
    let dir = demo();
    let d = dir.path();
    // The workspace's own version of a shipped recipe, with a step type that
    // does not exist: it replaces the built-in one, and fails validation.
    let own = d.join("recipes/pricing-table-customer-upsell-signal");
    std::fs::create_dir_all(&own).expect("dir");
    let shipped = repo_root().join("recipes/pricing-table-customer-upsell-signal");
    for f in ["recipe.yaml", "test.yaml"] {
        std::fs::copy(shipped.join(f), own.join(f)).expect("copy");
    }
    std::fs::write(
        own.join("workflow.yaml"),
        "name: Broken\ntrigger:\n  type: page_event\n  site: __site__\n  component: __component__\n  event: view\nsteps:\n  - id: oops\n    type: teleport\n",
    )
    .expect("write");
    let before = std::fs::read_dir(d.join("workflows")).expect("dir").count();
    let out = run(
        &[
            "suggest",
            "--site",
            "demo",
            "--instance",
            "pricing-table",
            "--industry",
            "saas",
            "--goal",
            "retention",
            "--write",
        ],
        d,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing was written"), "{err}");
    let after = std::fs::read_dir(d.join("workflows")).expect("dir").count();
    assert_eq!(before, after, "a file was left behind");
    assert!(run(&["validate"], d).status.success());
}

#[test]
fn bad_arguments_say_what_is_allowed() {
    let dir = demo();
    let out = run(
        &[
            "suggest",
            "--component",
            "contact-form",
            "--industry",
            "mining",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("professional_services"));
    let out = run(&["suggest", "--component", "carousel"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no component `carousel`"));
}
