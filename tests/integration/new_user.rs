//! What a new user meets first on the demo: a contact from the form becomes a
//! lead, scores read as numbers, emails link and sign off properly, commands take
//! paths where they take ids, and a new site gets its own domain.

use serde_json::Value as Json;

use super::support::{demo, json_out, run};

/// Submits the demo's contact form as a new person, through the engine.
fn submit_form(d: &std::path::Path, email: &str) {
    std::fs::write(
        d.join("form.yaml"),
        format!(
            "site: demo\ncomponent: contact-form\npage: /\nfields:\n  email: {email}\n  name: Lin Chen\n  team_size: 51-200\n"
        ),
    )
    .expect("form");
    let out = run(&["emit", "form_submission", "--data", "form.yaml"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_new_contact_from_the_form_is_created_and_becomes_a_lead() {
    let dir = demo();
    let d = dir.path();
    submit_form(d, "lin@example.org");
    let shown = json_out(
        &["contacts", "show", "lin@example.org", "--format", "json"],
        d,
    );
    assert_eq!(shown["contact"]["stage"], "lead", "{shown}");
    let runs = json_out(&["executions", "list", "--format", "json"], d);
    let id = runs[0]["id"].as_str().expect("id").to_string();
    let ex = json_out(&["executions", "show", &id, "--format", "json"], d);
    let save = ex["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["step"] == "save_contact")
        .expect("save_contact ran");
    assert_eq!(save["output"]["created"], true, "{save}");
}

#[test]
fn scores_print_rounded_everywhere() {
    let dir = demo();
    let d = dir.path();
    submit_form(d, "lin@example.org");
    let shown = json_out(
        &["contacts", "show", "lin@example.org", "--format", "json"],
        d,
    );
    let score = shown["contact"]["score"].as_f64().expect("score");
    assert!(score > 0.0);
    assert_eq!(
        (score * 100.0).round() / 100.0,
        score,
        "two decimals at most: {score}"
    );
    let explained = json_out(
        &[
            "contacts",
            "score-explain",
            "lin@example.org",
            "--format",
            "json",
        ],
        d,
    );
    let explained = explained["score"].as_f64().expect("explained score");
    assert_eq!(
        (explained * 100.0).round() / 100.0,
        explained,
        "{explained}"
    );
    let table = String::from_utf8_lossy(&run(&["contacts", "show", "lin@example.org"], d).stdout)
        .to_string();
    assert!(!table.contains("99999"), "{table}");
}

#[test]
fn emails_link_plainly_and_carry_the_postal_address() {
    let dir = demo();
    let d = dir.path();
    submit_form(d, "lin@example.org");
    let eml = std::fs::read_dir(d.join(".funnel/outbox"))
        .expect("outbox")
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).expect("eml"))
        .collect::<Vec<_>>()
        .join("\n");
    // Quoted-printable soft line breaks joined, so the HTML reads as sent.
    let html = eml.replace("=\n", "").replace("=3D", "=");
    assert!(!html.contains("&#x2f;"), "links are written plainly");
    assert!(
        html.contains("href=\"https://go.northwind.example/u/"),
        "the unsubscribe link"
    );
    assert!(
        html.contains("10119 Berlin"),
        "funnel.yaml's postal_address is in the footer"
    );
}

#[test]
fn commands_that_take_a_workflow_id_take_its_path_too() {
    let dir = demo();
    let d = dir.path();
    let by_path = run(
        &["graph", "workflows/welcome-drip.yaml", "--format", "json"],
        d,
    );
    assert!(
        by_path.status.success(),
        "{}",
        String::from_utf8_lossy(&by_path.stderr)
    );
    let by_id = run(&["graph", "welcome-drip", "--format", "json"], d);
    assert_eq!(by_path.stdout, by_id.stdout);
    let graph: Json = serde_json::from_slice(&by_path.stdout).expect("json");
    assert!(graph["nodes"].as_array().is_some_and(|n| !n.is_empty()));
}

#[test]
fn a_new_site_takes_its_domain() {
    let dir = demo();
    let d = dir.path();
    let out = run(
        &[
            "new",
            "site",
            "launch",
            "--template",
            "saas-launch",
            "--domain",
            "www.launch.example",
            "--set",
            "company_name=Launch",
            "--set",
            "tagline=We launch things.",
            "--set",
            "contact_email=hi@launch.example",
            "--set",
            "signup_url=https://app.launch.example",
        ],
        d,
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let site = std::fs::read_to_string(d.join("sites/launch/site.yaml")).expect("site.yaml");
    assert!(
        site.lines()
            .any(|l| l.starts_with("domain:") && l.contains("www.launch.example")),
        "{site}"
    );
    let published = run(&["publish", "launch", "--out", "public"], d);
    assert!(published.status.success());
    let home = std::fs::read_to_string(d.join("public/launch/index.html")).expect("home");
    assert!(
        home.contains("rel=\"canonical\" href=\"https://www.launch.example/"),
        "the canonical URL is the site's own domain"
    );
}
