//! Attribution and companies through the binary: touches recorded from form
//! submissions and page views, channel reports, conversions by component, and
//! contacts grouped by company domain.

use serde_json::Value;

use crate::support::{demo, json_out};

fn emit(dir: &std::path::Path, kind: &str, name: &str, data: &str) -> Value {
    std::fs::write(dir.join(name), data).expect("event file");
    json_out(&["emit", kind, "--data", name, "--json"], dir)
}

#[test]
fn touches_channels_conversions_and_companies_follow_the_events() {
    let dir = demo();
    let d = dir.path();
    emit(
        d,
        "form_submission",
        "ada.yaml",
        "site: demo\ncomponent: contact-form\npage: /\nutm:\n  source: Newsletter\n  campaign: spring\n\
         fields:\n  email: ada@acme.test\n  name: Ada Lovelace\n",
    );
    emit(
        d,
        "page_event",
        "view.yaml",
        "site: demo\npage: /pricing\nevent: view\nemail: ada@acme.test\n\
         referrer: https://news.ycombinator.com/item?id=1\n",
    );
    // A later view between the site's own pages names no source.
    emit(
        d,
        "page_event",
        "inner.yaml",
        "site: demo\npage: /about\nevent: view\nemail: ada@acme.test\n",
    );
    emit(
        d,
        "form_submission",
        "bob.yaml",
        "site: demo\ncomponent: newsletter\npage: /\nfields:\n  email: bob@acme.test\n",
    );
    emit(
        d,
        "form_submission",
        "bob2.yaml",
        "site: demo\ncomponent: newsletter\npage: /pricing\nfields:\n  email: bob@acme.test\n",
    );
    emit(
        d,
        "form_submission",
        "cy.yaml",
        "site: demo\ncomponent: newsletter\nfields:\n  email: cy@gmail.com\n",
    );

    let ada = json_out(
        &["contacts", "show", "ada@acme.test", "--format", "json"],
        d,
    );
    assert_eq!(ada["first_touch"]["utm"]["source"], "Newsletter", "{ada}");
    assert_eq!(ada["first_touch"]["component"], "contact-form");
    assert_eq!(ada["last_touch"]["page"], "/pricing", "{ada}");

    let first = json_out(&["analytics", "attribution", "--format", "json"], d);
    let pairs = |v: &Value| -> Vec<(String, u64)> {
        v.as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r["channel"].as_str().expect("channel").to_string(),
                    r["contacts"].as_u64().expect("contacts"),
                )
            })
            .collect()
    };
    assert_eq!(
        pairs(&first),
        [("direct".to_string(), 2), ("newsletter".to_string(), 1)]
    );
    let last = json_out(
        &[
            "analytics",
            "attribution",
            "--model",
            "last",
            "--format",
            "json",
        ],
        d,
    );
    assert_eq!(
        pairs(&last),
        [
            ("direct".to_string(), 2),
            ("news.ycombinator.com".to_string(), 1)
        ]
    );

    let conv = json_out(&["analytics", "conversions", "--format", "json"], d);
    let rows: Vec<(String, u64, u64, u64)> = conv
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["component"].as_str().expect("component").to_string(),
                r["submissions"].as_u64().expect("n"),
                r["contacts"].as_u64().expect("n"),
                r["new_contacts"].as_u64().expect("n"),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("newsletter".to_string(), 3, 2, 2),
            ("contact-form".to_string(), 1, 1, 1)
        ]
    );
    let future = json_out(
        &[
            "analytics",
            "conversions",
            "--since",
            "2999-01-01",
            "--format",
            "json",
        ],
        d,
    );
    assert_eq!(future, serde_json::json!([]));

    let companies = json_out(&["companies", "list", "--format", "json"], d);
    assert_eq!(companies.as_array().map(Vec::len), Some(1), "{companies}");
    assert_eq!(companies[0]["domain"], "acme.test");
    assert_eq!(companies[0]["contacts"], 2);
    let acme = json_out(&["companies", "show", "acme.test", "--format", "json"], d);
    let emails: Vec<&str> = acme["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter_map(|c| c["email"].as_str())
        .collect();
    assert_eq!(emails, ["ada@acme.test", "bob@acme.test"]);
    let free = crate::support::run(&["companies", "show", "gmail.com"], d);
    assert!(!free.status.success());
    assert!(String::from_utf8_lossy(&free.stderr).contains("free-mail"));
}
