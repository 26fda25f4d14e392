//! `funnel publish`, `templates`, `components` and `new site` through the binary:
//! the static output, rewrites of changed files only, link checks, every built-in
//! template instantiated and published, and snapshots of rendered pages.

use std::path::Path;

use serde_json::Value;

use crate::support::{demo, json_out, run};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(
                    p.strip_prefix(dir)
                        .expect("under")
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    out.sort();
    out
}

/// Content hashes in file names replaced, so snapshots do not change with every
/// stylesheet edit: `site.0123456789.css` → `site.HASH.css`.
fn without_hashes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            .count();
        if bytes[i] == b'.' && run == 10 && bytes.get(i + 11) == Some(&b'.') {
            out.push_str(".HASH");
            i += 11;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    out
}

#[test]
fn publish_writes_a_static_site_and_rewrites_only_what_changed() {
    let dir = demo();
    let d = dir.path();
    let report = json_out(&["publish", "demo", "--out", "out", "--json"], d);
    assert_eq!(report["pages"], 5, "{report}");
    let site = d.join("out/demo");
    let all = files(&site);
    for f in [
        "index.html",
        "pricing/index.html",
        "about/index.html",
        "thank-you/index.html",
        "404.html",
        "sitemap.xml",
        "robots.txt",
        "CNAME",
        "favicon.svg",
    ] {
        assert!(all.contains(&f.to_string()), "{f} in {all:?}");
    }
    let css: Vec<&String> = all
        .iter()
        .filter(|f| f.starts_with("assets/site.") && f.ends_with(".css"))
        .collect();
    assert_eq!(css.len(), 1, "one fingerprinted stylesheet: {all:?}");
    assert!(read(&site.join("CNAME")).contains("www.northwind.example"));
    let home = read(&site.join("index.html"));
    for needle in [
        "<link rel=\"canonical\" href=\"https://www.northwind.example/\">",
        "<meta property=\"og:title\"",
        "<meta name=\"twitter:card\" content=\"summary_large_image\">",
        "<script type=\"application/ld+json\">",
        "action=\"https://go.northwind.example/f/demo/contact-form\"",
        "name=\"_hp\"",
        "data-fc=\"contact-form\"",
        "<main id=\"main\">",
    ] {
        assert!(home.contains(needle), "home page lacks {needle}");
    }
    assert_eq!(home.matches("<h1").count(), 1, "one h1");
    let sitemap = read(&site.join("sitemap.xml"));
    assert!(sitemap.contains("<loc>https://www.northwind.example/pricing</loc>"));
    assert!(!sitemap.contains("thank-you"), "noindex pages stay out");
    let css_text = read(&site.join(css[0]));
    assert!(css_text.starts_with(":root{"), "tokens first");
    assert!(css_text.contains("--primary-color:#0f4c81;--on-primary-color:#fff"));
    assert!(!css_text.contains("/*"), "minified");

    // Nothing changed: nothing is rewritten.
    let again = json_out(&["publish", "demo", "--out", "out", "--json"], d);
    assert_eq!(again["sites"][0]["written"], 0, "{again}");
    // A colour change rewrites the stylesheet (a new name) and the pages naming it,
    // and removes the old stylesheet.
    let yaml = d.join("sites/demo/site.yaml");
    std::fs::write(
        &yaml,
        read(&yaml).replace("primary_color: \"#0f4c81\"", "primary_color: \"#7c2d12\""),
    )
    .expect("edit");
    let changed = json_out(&["publish", "demo", "--out", "out", "--json"], d);
    let s = &changed["sites"][0];
    assert_eq!(s["removed"], 1, "{changed}");
    assert!(s["written"].as_u64().expect("n") >= 6, "{changed}");
    assert!(
        s["unchanged"].as_u64().expect("n") >= 3,
        "assets stay: {changed}"
    );
    assert!(!site.join(css[0]).exists());
}

#[test]
fn a_broken_internal_link_fails_the_publish_and_names_it() {
    let dir = demo();
    let d = dir.path();
    let yaml = d.join("sites/demo/site.yaml");
    std::fs::write(
        &yaml,
        read(&yaml).replace(
            "button_href: https://jobs.northwind.example",
            "button_href: /careers#open-roles",
        ),
    )
    .expect("edit");
    let out = run(&["publish", "demo", "--out", "out"], d);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/about: /careers#open-roles (no such page or file)"),
        "{err}"
    );
    assert!(!d.join("out/demo/index.html").exists(), "nothing written");
}

#[test]
fn templates_and_components_are_listed_filtered_and_shown() {
    let dir = demo();
    let d = dir.path();
    let restaurants = json_out(
        &[
            "templates",
            "list",
            "--category",
            "restaurant",
            "--format",
            "json",
        ],
        d,
    );
    let ids: Vec<&str> = restaurants
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert!(ids.contains(&"local-bakery"), "{ids:?}");
    assert!(
        restaurants
            .as_array()
            .expect("list")
            .iter()
            .all(|t| t["category"] == "restaurant")
    );
    let found = json_out(
        &[
            "templates",
            "list",
            "--search",
            "B2B pricing",
            "--format",
            "json",
        ],
        d,
    );
    assert!(
        found
            .as_array()
            .expect("list")
            .iter()
            .any(|t| t["id"] == "saas-launch")
    );
    let shown = json_out(&["templates", "show", "saas-launch", "--format", "json"], d);
    assert!(shown["variables"]["company_name"].is_object());
    assert!(shown["pages"].as_array().expect("pages").len() >= 3);
    let form = json_out(
        &["components", "show", "contact-form", "--format", "json"],
        d,
    );
    let wired: Vec<&str> = form["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .filter_map(|w| w["workflow"].as_str())
        .collect();
    assert_eq!(wired, ["contact-form-follow-up"]);
    let bad = run(&["templates", "show", "saas-lanch"], d);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("saas-launch"));
}

/// A value of the variable's type, for required variables.
fn sample(kind: &str) -> &'static str {
    match kind {
        "email" => "hello@example.org",
        "url" => "https://example.org/start",
        "color" => "#1f2937",
        "integer" | "number" => "3",
        "boolean" => "true",
        _ => "Example Company",
    }
}

#[test]
fn every_template_instantiates_with_its_defaults_validates_and_publishes() {
    let dir = demo();
    let d = dir.path();
    let list = json_out(&["templates", "list", "--format", "json"], d);
    let ids: Vec<String> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["id"].as_str().map(String::from))
        .collect();
    assert!(ids.len() >= 2);
    for id in &ids {
        let t = json_out(&["templates", "show", id, "--format", "json"], d);
        let mut args: Vec<String> = vec![
            "new".into(),
            "site".into(),
            format!("t-{id}"),
            "--template".into(),
            id.clone(),
        ];
        for (name, spec) in t["variables"].as_object().expect("variables") {
            if spec.get("default").is_none_or(Value::is_null) {
                let kind = spec["type"].as_str().unwrap_or("string");
                args.push("--set".into());
                args.push(format!("{name}={}", sample(kind)));
            }
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let made = run(&refs, d);
        assert!(
            made.status.success(),
            "new site from {id}: {}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    let report = json_out(&["publish", "--all", "--out", "out", "--json"], d);
    assert_eq!(
        report["sites"].as_array().map(Vec::len),
        Some(ids.len() + 1),
        "{report}"
    );
    for id in &ids {
        let home = read(&d.join(format!("out/t-{id}/index.html")));
        assert_eq!(home.matches("<h1").count(), 1, "{id}: one h1");
        assert!(d.join(format!("out/t-{id}/404.html")).exists(), "{id}: 404");
        assert!(
            d.join(format!("out/t-{id}/thank-you/index.html")).exists(),
            "{id}: thank-you page"
        );
    }
    // A name that is not a folder name, and a missing required variable, are
    // refused without writing anything.
    let bad = run(&["new", "site", "Bad Name", "--template", "saas-launch"], d);
    assert!(!bad.status.success());
    let missing = run(&["new", "site", "nope", "--template", "saas-launch"], d);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("company_name"));
    assert!(!d.join("sites/nope").exists());
}

#[test]
fn rendered_pages_of_the_built_in_templates() {
    let dir = demo();
    let d = dir.path();
    for (id, sets) in [
        (
            "saas-launch",
            &[
                "company_name=Acme Cloud",
                "tagline=Dashboards for teams",
                "contact_email=hello@acme.example",
                "signup_url=https://app.acme.example/signup",
            ][..],
        ),
        (
            "restaurant-bistro",
            &[
                "company_name=Chez Margaux",
                "contact_email=table@margaux.example",
            ][..],
        ),
        (
            "local-bakery",
            &[
                "company_name=Crumb & Co",
                "contact_email=hello@crumb.example",
                "address=1 Mill Lane",
                "phone=+44 20 7946 0000",
            ][..],
        ),
    ] {
        let mut args = vec!["new", "site", id, "--template", id];
        for s in sets {
            args.push("--set");
            args.push(s);
        }
        let made = run(&args, d);
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let out = run(
            &[
                "publish",
                id,
                "--out",
                "snap",
                "--public-url",
                "https://go.example.org",
            ],
            d,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let html = read(&d.join(format!("snap/{id}/index.html")));
        insta::assert_snapshot!(format!("publish_{id}_home"), without_hashes(&html));
    }
}

#[test]
fn thirty_templates_in_twelve_categories_each_with_a_home_page_of_its_own() {
    let dir = demo();
    let d = dir.path();
    let list = json_out(&["templates", "list", "--format", "json"], d);
    let list = list.as_array().expect("list");
    assert!(list.len() >= 30, "{} templates", list.len());
    let categories: std::collections::BTreeSet<&str> =
        list.iter().filter_map(|t| t["category"].as_str()).collect();
    assert!(categories.len() >= 12, "{categories:?}");
    let mut homes: std::collections::BTreeMap<Vec<String>, String> = Default::default();
    for t in list {
        let id = t["id"].as_str().expect("id");
        let shown = json_out(&["templates", "show", id, "--format", "json"], d);
        let pages = shown["pages"].as_array().expect("pages");
        let paths: Vec<&str> = pages.iter().filter_map(|p| p["path"].as_str()).collect();
        for needed in ["/", "/thank-you", "/404"] {
            assert!(paths.contains(&needed), "{id} has no {needed} page");
        }
        let home: Vec<String> = pages
            .iter()
            .find(|p| p["path"] == "/")
            .and_then(|p| p["components"].as_array())
            .expect("home components")
            .iter()
            .filter_map(|c| c[1].as_str().map(String::from))
            .collect();
        if let Some(other) = homes.insert(home.clone(), id.to_string()) {
            panic!("{id} and {other} have the same home page sequence: {home:?}");
        }
        assert!(
            d.join(format!("templates/sites/{id}/preview.svg")).exists()
                || crate::support::repo_root()
                    .join(format!("templates/sites/{id}/preview.svg"))
                    .exists(),
            "{id} has a preview image"
        );
    }
}
