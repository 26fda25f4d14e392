//! People in one workspace: users with roles and their own tokens; the audit
//! log names the person for a change from the API, a remote TUI and the CLI;
//! each role's reach over the proposal and user routes; comments on proposals
//! through the API and the CLI, and only an owner's approval merges.

use serde_json::{Value as Json, json};

use super::backend;
use super::daemon::up;
use super::daemon_api::api;
use super::support::{demo, funnel_for, git_init, run};

fn add_user(d: &std::path::Path, email: &str, role: &str) -> String {
    let out = run(
        &["users", "add", email, "--name", "Someone", "--role", role],
        d,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn last_actor(d: &std::path::Path, action: &str) -> String {
    backend::scalar(
        d,
        &format!("SELECT actor FROM audit_log WHERE action = '{action}' ORDER BY id DESC LIMIT 1"),
        funnel::db_params![],
    )
}

#[test]
fn people_act_under_their_own_names_and_roles() {
    let dir = demo();
    let d = dir.path();
    git_init(d);
    let mira = add_user(d, "Mira@Northwind.example", "editor");
    let olaf = add_user(d, "olaf@northwind.example", "owner");
    let vic = add_user(d, "vic@northwind.example", "viewer");
    let listed: Json =
        serde_json::from_slice(&run(&["users", "list", "--format", "json"], d).stdout)
            .expect("json");
    assert_eq!(
        listed["users"].as_array().map(Vec::len),
        Some(3),
        "{listed}"
    );
    assert_eq!(listed["users"][0]["email"], "mira@northwind.example");
    let u = up(d);

    // The API: a contact made by Mira is hers in the audit log.
    let (status, _) = api(
        &u,
        "POST",
        "/api/crm/contacts",
        Some(&mira),
        Some(&json!({"email": "lead@example.org", "name": "Lead"})),
    );
    assert_eq!(status, 201);
    assert_eq!(last_actor(d, "create"), "mira@northwind.example");
    // A remote TUI with her token: her name again.
    let profile = funnel::remotes::Profile {
        url: format!("http://{}", u.addr),
        token: mira.clone(),
        actor: None,
        role: None,
    };
    let far = funnel::desk::remote::Remote::connect("team", &profile).expect("connect");
    use funnel::desk::Source as _;
    assert_eq!(far.info().actor.as_deref(), Some("mira@northwind.example"));
    let lead = far
        .search("lead example", 5)
        .expect("search")
        .first()
        .expect("found")
        .id;
    far.apply(funnel::desk::Change::AddTags {
        contact: lead,
        tags: vec!["met".into()],
    })
    .expect("tag");
    assert_eq!(last_actor(d, "tag"), "mira@northwind.example");
    // The CLI: whoever FUNNEL_ACTOR names.
    let out = funnel_for(d)
        .args(["contacts", "tag", "lead@example.org", "cli-tag"])
        .current_dir(d)
        .env("FUNNEL_ACTOR", "ana@northwind.example")
        .output()
        .expect("funnel");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(last_actor(d, "tag"), "ana@northwind.example");

    // A proposal by Mira, commented, approved only by an owner.
    let text = std::fs::read_to_string(d.join("workflows/welcome-drip.yaml")).expect("read");
    let (status, made) = api(
        &u,
        "POST",
        "/api/proposals",
        Some(&mira),
        Some(
            &json!({"title": "Reword", "files": {"workflows/welcome-drip.yaml": format!("{text}\n")}}),
        ),
    );
    assert_eq!(status, 201, "{made}");
    let id = made["proposal"]["id"].as_str().expect("id").to_string();
    assert_eq!(made["proposal"]["author"], "mira@northwind.example");
    let comment = |token: &str, body: &str| {
        api(
            &u,
            "POST",
            &format!("/api/proposals/{id}/comments"),
            Some(token),
            Some(&json!({ "body": body })),
        )
    };
    // Each role's reach.
    for (token, path, method, want) in [
        (&vic, "/api/proposals".to_string(), "GET", 200),
        (&vic, format!("/api/proposals/{id}"), "GET", 200),
        (&vic, format!("/api/proposals/{id}/approve"), "POST", 403),
        (&vic, "/api/users".to_string(), "GET", 403),
        (&mira, format!("/api/proposals/{id}/approve"), "POST", 403),
        (&mira, format!("/api/proposals/{id}/reject"), "POST", 403),
        (&mira, "/api/users".to_string(), "GET", 403),
        (
            &mira,
            "/api/users/vic@northwind.example".to_string(),
            "DELETE",
            403,
        ),
        (&olaf, "/api/users".to_string(), "GET", 200),
    ] {
        let (status, answer) = api(&u, method, &path, Some(token), None);
        assert_eq!(status, want, "{method} {path}: {answer}");
    }
    assert_eq!(comment(&vic, "nice").0, 403);
    assert_eq!(comment(&mira, "").0, 422);
    let (status, c) = comment(&mira, "Shorter subject lines, please review");
    assert_eq!(status, 201, "{c}");
    let out = funnel_for(d)
        .args(["proposals", "comment", &id, "Looks right to me"])
        .current_dir(d)
        .env("FUNNEL_ACTOR", "ana@northwind.example")
        .output()
        .expect("funnel");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, shown) = api(&u, "GET", &format!("/api/proposals/{id}"), Some(&vic), None);
    let authors: Vec<&str> = shown["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .filter_map(|c| c["author"].as_str())
        .collect();
    assert_eq!(
        authors,
        ["mira@northwind.example", "ana@northwind.example"],
        "{shown}"
    );
    let listed = run(&["proposals", "list"], d);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&id));
    let (status, approved) = api(
        &u,
        "POST",
        &format!("/api/proposals/{id}/approve"),
        Some(&olaf),
        None,
    );
    assert_eq!(status, 200, "{approved}");
    assert_eq!(last_actor(d, "approve"), "olaf@northwind.example");

    // Owners add and remove people over the API; a removed person's token
    // opens nothing.
    let (status, added) = api(
        &u,
        "POST",
        "/api/users",
        Some(&olaf),
        Some(&json!({"email": "new@northwind.example", "name": "New", "role": "viewer"})),
    );
    assert_eq!(status, 201, "{added}");
    let token = added["token"].as_str().expect("token").to_string();
    assert_eq!(api(&u, "GET", "/api/workflows", Some(&token), None).0, 200);
    for (body, want) in [
        (
            json!({"email": "new@northwind.example", "name": "New", "role": "viewer"}),
            409,
        ),
        (
            json!({"email": "not-an-email", "name": "X", "role": "viewer"}),
            422,
        ),
        (
            json!({"email": "x@northwind.example", "name": "X", "role": "admin"}),
            422,
        ),
    ] {
        let (status, answer) = api(&u, "POST", "/api/users", Some(&olaf), Some(&body));
        assert_eq!(status, want, "{body}: {answer}");
    }
    let (status, _) = api(
        &u,
        "DELETE",
        "/api/users/new@northwind.example",
        Some(&olaf),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(api(&u, "GET", "/api/workflows", Some(&token), None).0, 401);
    let out = run(&["users", "remove", "mira@northwind.example"], d);
    assert!(out.status.success());
    assert_eq!(api(&u, "GET", "/api/workflows", Some(&mira), None).0, 401);
}
