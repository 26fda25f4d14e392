//! Proposals through the API on a real daemon and a real git repository: an
//! editor's workflow change becomes a commit on `funnel/proposals/<id>` while the
//! working tree stays as it was, a change that does not validate is refused with
//! its diagnostics, and the change goes live only once an owner approves it.

use serde_json::{Value as Json, json};

use crate::daemon::{Up, up};
use crate::http_client::http;
use crate::support::{api_token, demo, git_init};

fn api(u: &Up, method: &str, path: &str, token: &str, body: Option<&Json>) -> (u16, Json) {
    let text = body.map(Json::to_string).unwrap_or_default();
    let (status, _, raw) = http(
        &u.addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            u.addr,
            text.len()
        ),
        text.as_bytes(),
    );
    (status, serde_json::from_slice(&raw).unwrap_or(Json::Null))
}

fn git(d: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(d)
        .output()
        .expect("git");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn tags(d: &std::path::Path, email: &str) -> Vec<String> {
    crate::backend::column(
        d,
        &format!(
            "SELECT t.tag FROM contact_tags t JOIN contacts c ON c.id = t.contact_id WHERE c.email = '{email}' ORDER BY 1"
        ),
    )
}

fn eventually(mut f: impl FnMut() -> bool) -> bool {
    (0..100).any(|_| {
        let ok = f();
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        ok
    })
}

#[test]
fn an_editor_proposes_and_only_an_owner_s_approval_makes_it_live() {
    let dir = demo();
    let d = dir.path();
    git_init(d);
    let editor = api_token(d, "ed", "editor");
    let owner = api_token(d, "olga", "owner");
    let u = up(d);
    let path = "workflows/contact-form-follow-up.yaml";
    let original = std::fs::read_to_string(d.join(path)).expect("read");
    let changed = original.replace(
        "tags: [contact-form, inbound]",
        "tags: [contact-form, inbound, proposed]",
    );
    assert_ne!(changed, original);

    // A change that does not validate: 422 with diagnostics, nothing committed.
    let broken = changed.replace("type: upsert_contact", "type: upsert_contacts");
    let (status, answer) = api(
        &u,
        "PUT",
        "/api/workflows/contact-form-follow-up",
        &editor,
        Some(&json!({"yaml": broken})),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_workspace");
    let first = &answer["diagnostics"][0];
    assert_eq!(first["file"], path, "{answer}");
    assert!(first["line"].as_u64().is_some_and(|l| l > 1), "{answer}");
    assert_eq!(
        git(d, &["branch", "--list", "funnel/*"]),
        "",
        "no branch made"
    );

    // A valid change: a commit on its branch; the working tree is untouched.
    let (status, answer) = api(
        &u,
        "PUT",
        "/api/workflows/contact-form-follow-up",
        &editor,
        Some(&json!({"yaml": changed, "title": "Tag contact form leads as proposed"})),
    );
    assert_eq!(status, 201, "{answer}");
    let id = answer["proposal"]["id"].as_str().expect("id").to_string();
    let branch = format!("funnel/proposals/{id}");
    assert_eq!(answer["proposal"]["branch"], branch.as_str());
    assert_eq!(
        git(d, &["show", &format!("{branch}:{path}")]).trim(),
        changed.trim()
    );
    assert_eq!(
        git(d, &["log", "-1", "--format=%an %s", &branch]),
        "token:ed Tag contact form leads as proposed"
    );
    assert_eq!(
        std::fs::read_to_string(d.join(path)).expect("read"),
        original
    );
    assert_eq!(
        git(d, &["status", "--porcelain"]),
        "",
        "the working tree is clean"
    );

    // Not live before approval.
    assert_eq!(u.post_form("before@example.org"), 303);
    assert!(eventually(
        || tags(d, "before@example.org").contains(&"inbound".to_string())
    ));
    assert!(!tags(d, "before@example.org").contains(&"proposed".to_string()));

    // An editor cannot approve; an owner can, once.
    let (status, _) = api(
        &u,
        "POST",
        &format!("/api/proposals/{id}/approve"),
        &editor,
        None,
    );
    assert_eq!(status, 403);
    let (status, answer) = api(
        &u,
        "POST",
        &format!("/api/proposals/{id}/approve"),
        &owner,
        None,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["merged"].as_bool(), answer["live"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        std::fs::read_to_string(d.join(path)).expect("read"),
        changed
    );
    let (status, _) = api(
        &u,
        "POST",
        &format!("/api/proposals/{id}/approve"),
        &owner,
        None,
    );
    assert_eq!(status, 409, "decided already");

    // Live now.
    assert_eq!(u.post_form("after@example.org"), 303);
    assert!(eventually(
        || tags(d, "after@example.org").contains(&"proposed".to_string())
    ));

    // The audit log names who proposed and who approved.
    let audit: Vec<String> = crate::backend::column(
        d,
        "SELECT actor || ' ' || action FROM audit_log WHERE entity = 'proposal' ORDER BY id",
    );
    assert_eq!(audit, ["token:ed propose", "token:olga approve"]);
    let (status, listed) = api(&u, "GET", "/api/proposals?all=true", &editor, None);
    assert_eq!(status, 200);
    assert_eq!(listed["proposals"][0]["status"], "merged");

    // A new site from a template is a proposal too, live once approved.
    let (status, answer) = api(
        &u,
        "POST",
        "/api/templates/saas-launch/instantiate",
        &editor,
        Some(&json!({
            "site_id": "launch",
            "customizations": {
                "company_name": "Acme Corp",
                "tagline": "Widgets for everyone.",
                "primary_color": "#3B82F6",
                "contact_email": "hello@acme.example",
                "signup_url": "https://app.acme.example/signup",
                "demo_url": "https://cal.acme.example/demo"
            }
        })),
    );
    assert_eq!(status, 201, "{answer}");
    let site_proposal = answer["proposal"]["id"].as_str().expect("id").to_string();
    assert!(!d.join("sites/launch").exists(), "not before approval");
    let (status, answer) = api(
        &u,
        "POST",
        &format!("/api/proposals/{site_proposal}/approve"),
        &owner,
        None,
    );
    assert_eq!(status, 200, "{answer}");
    assert!(d.join("sites/launch/site.yaml").is_file());
    let (_, _, index) = http(
        &u.addr,
        &format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            u.addr
        ),
        b"",
    );
    assert!(
        String::from_utf8_lossy(&index).contains("\"launch\""),
        "the new site is served"
    );
    let (status, answer) = api(
        &u,
        "POST",
        "/api/templates/saas-launch/instantiate",
        &editor,
        Some(&json!({"site_id": "Bad Name", "customizations": {}})),
    );
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (422, Some("site_id")),
        "{answer}"
    );

    // Paths outside the workspace's files are refused.
    let (status, answer) = api(
        &u,
        "POST",
        "/api/proposals",
        &editor,
        Some(&json!({"title": "sneaky", "files": {"../outside.yaml": "x: 1"}})),
    );
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (422, Some("files"))
    );
    let (status, _) = api(
        &u,
        "POST",
        "/api/proposals",
        &editor,
        Some(&json!({"title": "hooks", "files": {".git/hooks/post-merge": "#!/bin/sh"}})),
    );
    assert_eq!(status, 422);
}

#[test]
fn a_site_s_component_instances_are_listed_and_changed_by_proposal() {
    let dir = demo();
    let d = dir.path();
    git_init(d);
    let viewer = api_token(d, "vera", "viewer");
    let editor = api_token(d, "ed", "editor");
    let owner = api_token(d, "olga", "owner");
    let u = up(d);
    let site_file = "sites/demo/site.yaml";
    let before = std::fs::read_to_string(d.join(site_file)).expect("read");

    // Listed with their pages and the workflows wired to them.
    let (status, list) = api(&u, "GET", "/api/sites/demo/components", &viewer, None);
    assert_eq!(status, 200, "{list}");
    let all = list["components"].as_array().expect("components");
    let form = all
        .iter()
        .find(|c| c["id"] == "contact-form")
        .expect("the contact form is listed");
    assert_eq!(form["inherited"], true);
    assert!(
        form["workflows"]
            .as_array()
            .expect("workflows")
            .iter()
            .any(|w| w["workflow"] == "contact-form-follow-up"),
        "{form}"
    );
    let hero = all
        .iter()
        .find(|c| c["id"] == "about-hero")
        .expect("about-hero");
    assert_eq!(
        (hero["page"].as_str(), hero["inherited"].as_bool()),
        (Some("/about"), Some(false))
    );

    // A viewer cannot propose; an editor's config change is a branch commit
    // that touches only that instance's lines.
    let change =
        json!({"config": {"eyebrow": "About", "headline": "Numbers start conversations."}});
    let (status, _) = api(
        &u,
        "PUT",
        "/api/sites/demo/components/about-hero",
        &viewer,
        Some(&change),
    );
    assert_eq!(status, 403);
    let (status, answer) = api(
        &u,
        "PUT",
        "/api/sites/demo/components/about-hero",
        &editor,
        Some(&change),
    );
    assert_eq!(status, 201, "{answer}");
    let id = answer["proposal"]["id"].as_str().expect("id").to_string();
    let proposed = git(d, &["show", &format!("funnel/proposals/{id}:{site_file}")]);
    assert!(proposed.contains("Numbers start conversations."));
    let gone: Vec<&str> = before
        .lines()
        .filter(|l| !proposed.lines().any(|p| p == *l))
        .collect();
    assert!(
        gone.iter().all(|l| l.contains("headline")
            || l.contains("subheadline")
            || l.contains("eyebrow")
            || l.starts_with("            ")),
        "only the instance's lines change: {gone:?}"
    );
    assert!(
        proposed.contains("# The one navigation of the site"),
        "comments stay"
    );
    assert_eq!(
        std::fs::read_to_string(d.join(site_file)).expect("read"),
        before,
        "working tree untouched"
    );
    let (_, _, page) = u.to_site("GET", "/about", "", "");
    assert!(!String::from_utf8_lossy(&page).contains("Numbers start conversations."));

    // An owner's approval makes it live.
    let (status, answer) = api(
        &u,
        "POST",
        &format!("/api/proposals/{id}/approve"),
        &owner,
        None,
    );
    assert_eq!(status, 200, "{answer}");
    assert!(eventually(|| {
        let (_, _, page) = u.to_site("GET", "/about", "", "");
        String::from_utf8_lossy(&page).contains("Numbers start conversations.")
    }));

    // A template's instance gets an override; it cannot be removed.
    let (status, answer) = api(
        &u,
        "PUT",
        "/api/sites/demo/components/contact-form",
        &editor,
        Some(&json!({"config": {"heading": "Talk to sales", "submit_label": "Send"}})),
    );
    assert_eq!(status, 201, "{answer}");
    let override_id = answer["proposal"]["id"].as_str().expect("id").to_string();
    let proposed = git(
        d,
        &[
            "show",
            &format!("funnel/proposals/{override_id}:{site_file}"),
        ],
    );
    let at = proposed.find("\ncomponents:").expect("the overrides");
    let tail = &proposed[at..];
    assert!(
        tail.contains("  contact-form:\n    config:\n") && tail.contains("Talk to sales"),
        "an override of the template's instance: {tail}"
    );
    let (status, answer) = api(
        &u,
        "DELETE",
        "/api/sites/demo/components/contact-form",
        &editor,
        None,
    );
    assert_eq!(status, 409, "{answer}");

    // A new instance of an unknown component does not validate: 422 with the
    // diagnostics, and no branch.
    let branches = git(d, &["branch", "--list", "funnel/*"]);
    let (status, answer) = api(
        &u,
        "POST",
        "/api/sites/demo/components",
        &editor,
        Some(&json!({"page": "/about", "id": "about-x", "component": "no-such-component"})),
    );
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["diagnostics"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "{answer}"
    );
    assert_eq!(git(d, &["branch", "--list", "funnel/*"]), branches);
    // A known one on a page the site does not own is refused by name.
    let (status, answer) = api(
        &u,
        "POST",
        "/api/sites/demo/components",
        &editor,
        Some(&json!({"page": "/nowhere", "id": "x", "component": "cta"})),
    );
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (422, Some("page")),
        "{answer}"
    );
    // An instance added and removed, each a valid proposal.
    let (status, answer) = api(
        &u,
        "POST",
        "/api/sites/demo/components",
        &editor,
        Some(
            &json!({"page": "/about", "id": "about-cta-2", "component": "cta", "config": {"heading": "Join us", "button_label": "Apply", "button_href": "https://jobs.example"}}),
        ),
    );
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = api(
        &u,
        "DELETE",
        "/api/sites/demo/components/about-cta",
        &editor,
        None,
    );
    assert_eq!(status, 201, "{answer}");
    let (status, _) = api(
        &u,
        "DELETE",
        "/api/sites/demo/components/ghost",
        &editor,
        None,
    );
    assert_eq!(status, 404);
}
