//! The daemon's `/api`: every route of its OpenAPI document walked with no token
//! and with a viewer's, an editor's and an owner's, each answer checked against
//! the role the route needs; then the seed's shapes on a few routes.

use serde_json::{Value as Json, json};

use crate::daemon::{Up, up};
use crate::http_client::{http, http_stream};
use crate::support::{api_token, demo, git_init, run};

pub(super) fn api(
    u: &Up,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Json>,
) -> (u16, Json) {
    if path.ends_with("/stream") {
        // Server-sent events do not end: the status is the answer here.
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let (status, text) = http_stream(
            &u.addr,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Connection: close\r\n\r\n",
                u.addr
            ),
            "\r\n\r\n",
            5,
        );
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        let doc = if body.trim_start().starts_with('{') {
            serde_json::from_str(body.trim()).unwrap_or(Json::Null)
        } else {
            json!({"stream": true})
        };
        return (status, doc);
    }
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let text = body.map(Json::to_string).unwrap_or_default();
    let kind = if body.is_some() {
        "Content-Type: application/json\r\n"
    } else {
        ""
    };
    let (status, _, raw) = http(
        &u.addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}{kind}Content-Length: {}\r\nConnection: close\r\n\r\n",
            u.addr,
            text.len()
        ),
        text.as_bytes(),
    );
    let doc = serde_json::from_slice(&raw).unwrap_or_else(|e| {
        panic!(
            "{method} {path}: not JSON ({e}): {}",
            String::from_utf8_lossy(&raw)
        )
    });
    (status, doc)
}

const RANK: [&str; 3] = ["viewer", "editor", "owner"];

#[test]
fn every_api_route_answers_by_role() {
    let dir = demo();
    let d = dir.path();
    git_init(d);
    let viewer = api_token(d, "vera", "viewer");
    let editor = api_token(d, "ed", "editor");
    let owner = api_token(d, "olga", "owner");
    // A person for the owner's DELETE /api/users/{email} to remove.
    let out = run(
        &[
            "users",
            "add",
            "walker@example.org",
            "--name",
            "Walker",
            "--role",
            "viewer",
        ],
        d,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let u = up(d);
    // Something to point at: a contact (through a form) and its execution.
    assert_eq!(u.post_form("seed@example.org"), 303);
    let (_, list) = api(&u, "GET", "/api/automation/executions", Some(&viewer), None);
    let execution = list["executions"][0]["id"]
        .as_str()
        .expect("an execution")
        .to_string();

    // And a proposal (a no-op change of a workflow's file).
    let text = std::fs::read_to_string(d.join("workflows/welcome-drip.yaml")).expect("read");
    let (status, made) = api(
        &u,
        "POST",
        "/api/proposals",
        Some(&editor),
        Some(
            &json!({"title": "Reword", "files": {"workflows/welcome-drip.yaml": format!("{text}\n")}}),
        ),
    );
    assert_eq!(status, 201, "{made}");
    let proposal = made["proposal"]["id"].as_str().expect("id").to_string();

    let (status, doc) = api(&u, "GET", "/api/openapi.json", None, None);
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    // Kept for the independent OpenAPI checker that `.ci/test` runs afterwards.
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi.json"),
        doc.to_string(),
    )
    .expect("write openapi.json");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 15, "{}", paths.len());
    let fill = |path: &str| {
        path.replace("{id}/components", "saas-launch/components")
            .replace("/api/templates/{id}", "/api/templates/saas-launch")
            .replace("/api/components/{id}", "/api/components/contact-form")
            .replace(
                "/api/workflows/{id}",
                "/api/workflows/contact-form-follow-up",
            )
            .replace(
                "/api/automation/executions/{id}",
                &format!("/api/automation/executions/{execution}"),
            )
            .replace(
                "/api/crm/contacts/{id}",
                "/api/crm/contacts/seed@example.org",
            )
            .replace("/api/proposals/{id}", &format!("/api/proposals/{proposal}"))
            .replace(
                "/api/sites/{site}/components/{id}",
                "/api/sites/demo/components/about-hero",
            )
            .replace(
                "/api/crm/campaigns/{id}",
                "/api/crm/campaigns/december-dispatch",
            )
            .replace("/api/crm/pipelines/{id}", "/api/crm/pipelines/sales")
            .replace(
                "/api/hooks/subscriptions/{id}",
                "/api/hooks/subscriptions/none",
            )
            .replace("/api/users/{email}", "/api/users/walker@example.org")
            .replace("{site}", "demo")
    };
    let body_for = |path: &str| -> Json {
        if path.ends_with("/execute") {
            json!({"trigger_data": {"site": "demo", "component": "contact-form", "fields": {"email": "run@example.org", "name": "Run", "company": "Acme", "message": "Hi"}}})
        } else if path.ends_with("/activities") {
            json!({"type": "call", "data": {"subject": "Intro call"}})
        } else if path == "/api/crm/contacts" {
            json!({"email": "api@example.org", "name": "Api", "custom_fields": {"company": "Acme"}})
        } else if path == "/api/crm/campaigns" {
            json!({"name": "Welcome Sequence", "type": "drip", "trigger_workflow_id": "contact-form-follow-up",
                   "emails": [{"subject": "Welcome!", "template_id": "welcome", "delay_hours": 0},
                              {"subject": "Getting started", "template_id": "onboarding-tips", "delay_hours": 24}]})
        } else if path.contains("suggest") {
            json!({"component_type": "contact_form"})
        } else {
            json!({})
        }
    };
    let mut walked = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().expect("operations") {
            let method = method.to_ascii_uppercase();
            let url = fill(path);
            assert!(!url.contains('{'), "no value for a parameter of {path}");
            let body = (method == "POST").then(|| body_for(path));
            let needed = op["x-funnel-role"].as_str();
            // No token.
            let (status, answer) = api(&u, &method, &url, None, body.as_ref());
            match needed {
                Some(_) => {
                    assert_eq!(status, 401, "{method} {url} without a token: {answer}");
                    assert_eq!(answer["error"]["code"], "unauthorized");
                }
                None => assert!(status < 400, "{method} {url} is public: {status} {answer}"),
            }
            // Each role.
            for (rank, secret) in [&viewer, &editor, &owner].into_iter().enumerate() {
                let (status, answer) = api(&u, &method, &url, Some(secret), body.as_ref());
                let allowed = needed
                    .is_none_or(|n| RANK.iter().position(|r| *r == n).is_some_and(|p| rank >= p));
                if allowed {
                    assert!(
                        status != 401 && status != 403 && status != 404 && status < 500,
                        "{method} {url} as {}: {status} {answer}",
                        RANK[rank]
                    );
                } else {
                    assert_eq!(status, 403, "{method} {url} as {}: {answer}", RANK[rank]);
                    assert!(
                        answer["error"]["message"]
                            .as_str()
                            .is_some_and(|m| m.contains(needed.unwrap_or("")))
                    );
                }
            }
            walked += 1;
        }
    }
    assert!(walked >= 20, "{walked} operations walked");
    // A revoked token opens nothing; an unknown route is a JSON 404.
    let out = run(&["tokens", "revoke", "vera"], d);
    assert!(out.status.success());
    assert_eq!(api(&u, "GET", "/api/workflows", Some(&viewer), None).0, 401);
    let (status, answer) = api(&u, "GET", "/api/undocumented", Some(&owner), None);
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[test]
fn the_seed_s_contact_routes_keep_their_shapes() {
    let dir = demo();
    let d = dir.path();
    let editor = api_token(d, "ed", "editor");
    let u = up(d);
    let (status, created) = api(
        &u,
        "POST",
        "/api/crm/contacts",
        Some(&editor),
        Some(&json!({
            "email": "User@Example.com",
            "name": "John Doe",
            "source_component": "contact-form-1",
            "custom_fields": {"company": "Acme Corp", "phone": "+1234567890"}
        })),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["contact"]["email"], "user@example.com");
    let uid = created["contact"]["uid"].as_str().expect("uid").to_string();
    // The same email again updates the one contact.
    let (status, again) = api(
        &u,
        "POST",
        "/api/crm/contacts",
        Some(&editor),
        Some(&json!({"email": "user@example.com", "name": "John D."})),
    );
    assert_eq!((status, again["created"].as_bool()), (200, Some(false)));
    let (status, _) = api(
        &u,
        "POST",
        &format!("/api/crm/contacts/{uid}/activities"),
        Some(&editor),
        Some(
            &json!({"type": "page_view", "data": {"page": "/pricing", "duration": 45, "timestamp": "2024-01-01T10:30:00Z"}}),
        ),
    );
    assert_eq!(status, 201);
    let (status, shown) = api(
        &u,
        "GET",
        &format!("/api/crm/contacts/{uid}"),
        Some(&editor),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(shown["contact"]["name"], "John D.");
    assert!(
        shown["timeline"]
            .as_array()
            .is_some_and(|t| t.iter().any(|a| a["type"] == "page_view")),
        "{shown}"
    );
    let (status, page) = api(&u, "GET", "/api/crm/contacts?limit=1", Some(&editor), None);
    assert_eq!(status, 200);
    assert_eq!(page["contacts"].as_array().map(Vec::len), Some(1));
    // Bad input: each a JSON 4xx naming the field.
    let bad = [
        (json!({"name": "no email"}), 422, "email"),
        (json!({"email": "not-an-address"}), 422, "email"),
        (json!({"email": "a@example.org", "unknown": 1}), 422, ""),
        (json!({"email": 5}), 422, "email"),
    ];
    for (body, want, field) in bad {
        let (status, answer) = api(&u, "POST", "/api/crm/contacts", Some(&editor), Some(&body));
        assert_eq!(status, want, "{body} → {answer}");
        if !field.is_empty() {
            assert_eq!(answer["error"]["field"], field, "{answer}");
        }
    }
    let (status, answer) = api(
        &u,
        "GET",
        "/api/crm/contacts?segment=nope",
        Some(&editor),
        None,
    );
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (404, Some("segment"))
    );
    let (status, _) = api(&u, "GET", "/api/crm/contacts?limit=-1", Some(&editor), None);
    assert_eq!(status, 400);

    // Publishing a site writes its files; its status names who published it.
    let (status, report) = api(
        &u,
        "POST",
        "/api/publishing/sites/demo/publish",
        Some(&editor),
        None,
    );
    assert_eq!(status, 200, "{report}");
    assert!(report["pages"].as_u64().is_some_and(|p| p > 1), "{report}");
    assert!(d.join("public/demo/index.html").is_file());
    let (status, shown) = api(&u, "GET", "/api/publishing/sites/demo", Some(&editor), None);
    assert_eq!(status, 200);
    assert_eq!(shown["last_publish"]["by"], "token:ed");
    assert_eq!(shown["last_publish"]["report"]["pages"], report["pages"]);
    assert_eq!(
        api(
            &u,
            "POST",
            "/api/publishing/sites/nope/publish",
            Some(&editor),
            None
        )
        .0,
        404
    );

    // The execution stream: a form post's execution is announced once it ends.
    let (host, ed) = (u.addr.clone(), editor.clone());
    let reader = std::thread::spawn(move || {
        http_stream(
            &host,
            &format!(
                "GET /api/automation/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ed}\r\nConnection: close\r\n\r\n"
            ),
            "event: finished",
            20,
        )
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(u.post_form("streamed@example.org"), 303);
    let (status, text) = reader.join().expect("reader");
    assert_eq!(status, 200);
    assert!(text.contains("text/event-stream"), "{text}");
    assert!(
        text.contains("event: finished")
            && text.contains("\"workflow\":\"contact-form-follow-up\""),
        "{text}"
    );

    // Every change is in the audit log with who made it, before and after.
    let out = run(&["audit", "--actor", "token:ed", "--format", "json"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Json = serde_json::from_slice(&out.stdout).expect("json");
    let actions: Vec<&str> = entries
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        ["publish", "add_activity", "update", "create"],
        "{entries}"
    );
    let update = &entries[2];
    assert_eq!(update["details"]["before"]["name"], "John Doe");
    assert_eq!(update["details"]["after"]["name"], "John D.");
    assert_eq!(update["entity_id"], uid.as_str());
    let owner = api_token(d, "olga", "owner");
    let (status, listed) = api(
        &u,
        "GET",
        "/api/audit?actor=token:ed&limit=1",
        Some(&owner),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(listed["entries"][0]["action"], "publish");
    assert_eq!(api(&u, "GET", "/api/audit", Some(&editor), None).0, 403);
}

#[test]
fn the_seed_s_campaign_routes_propose_files_and_report_analytics() {
    let dir = demo();
    let d = dir.path();
    git_init(d);
    let editor = api_token(d, "ed", "editor");
    let u = up(d);
    // The seed's drip, as a workflow proposal: waits between the emails.
    let (status, made) = api(
        &u,
        "POST",
        "/api/crm/campaigns",
        Some(&editor),
        Some(&json!({
            "name": "Welcome Sequence",
            "type": "drip",
            "emails": [
                {"subject": "Welcome to our platform!", "template_id": "welcome", "delay_hours": 0},
                {"subject": "Getting started guide", "template_id": "onboarding-tips", "delay_hours": 24}
            ],
            "trigger_workflow_id": "contact-form-follow-up"
        })),
    );
    assert_eq!(status, 201, "{made}");
    let branch = made["proposal"]["branch"]
        .as_str()
        .expect("branch")
        .to_string();
    let file = std::process::Command::new("git")
        .args(["show", &format!("{branch}:workflows/welcome-sequence.yaml")])
        .current_dir(d)
        .output()
        .expect("git show");
    let text = String::from_utf8_lossy(&file.stdout);
    assert!(
        text.contains("type: \"delay\"") && text.contains("\"24h\""),
        "{text}"
    );
    assert!(text.contains("template: \"onboarding-tips\""), "{text}");
    assert!(
        text.contains("type: \"form_submission\""),
        "the trigger of contact-form-follow-up: {text}"
    );
    assert!(
        !d.join("workflows/welcome-sequence.yaml").exists(),
        "not live before approval"
    );

    // A broadcast, as campaigns/<id>.yaml.
    let (status, made) = api(
        &u,
        "POST",
        "/api/crm/campaigns",
        Some(&editor),
        Some(
            &json!({"id": "spring", "name": "Spring", "type": "broadcast", "template_id": "case-study",
                     "audience": {"list": "newsletter"}, "subject": "Spring news"}),
        ),
    );
    assert_eq!(status, 201, "{made}");
    // One that would not validate (no such template) is refused, with why.
    let (status, refused) = api(
        &u,
        "POST",
        "/api/crm/campaigns",
        Some(&editor),
        Some(
            &json!({"id": "broken", "name": "Broken", "type": "broadcast", "template_id": "nope",
                     "audience": {"list": "newsletter"}}),
        ),
    );
    assert_eq!(status, 422, "{refused}");
    assert!(refused.to_string().contains("nope"), "{refused}");
    let (status, _) = api(
        &u,
        "POST",
        "/api/crm/campaigns",
        Some(&editor),
        Some(&json!({"name": "X", "type": "newsletter"})),
    );
    assert_eq!(status, 422);

    let (status, a) = api(
        &u,
        "GET",
        "/api/crm/campaigns/december-dispatch/analytics",
        Some(&editor),
        None,
    );
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["status"], "draft");
    let (status, _) = api(
        &u,
        "GET",
        "/api/crm/campaigns/nope/analytics",
        Some(&editor),
        None,
    );
    assert_eq!(status, 404);
    let (status, l) = api(&u, "GET", "/api/crm/campaigns", Some(&editor), None);
    assert_eq!(status, 200);
    assert_eq!(l["campaigns"][0]["id"], "december-dispatch");
}

#[test]
fn the_seed_s_suggestion_route_answers_its_example() {
    let dir = demo();
    let d = dir.path();
    let editor = api_token(d, "ed", "editor");
    let u = up(d);
    let (status, answer) = api(
        &u,
        "POST",
        "/api/ai/suggest-workflows",
        Some(&editor),
        Some(&json!({
            "component_type": "contact_form",
            "component_config": {
                "fields": ["name", "email", "message"],
                "submit_text": "Get In Touch"
            },
            "site_context": {
                "industry": "professional_services",
                "goals": ["lead_generation", "client_acquisition"]
            }
        })),
    );
    assert_eq!(status, 200, "{answer}");
    let suggestions = answer["suggestions"].as_array().expect("suggestions");
    assert_eq!(suggestions.len(), 3);
    let first = &suggestions[0];
    assert_eq!(first["recipe"], "contact-form-sales-follow-up");
    assert!(first["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(first["description"].as_str().is_some_and(|n| !n.is_empty()));
    let confidence = first["confidence"].as_f64().expect("confidence");
    assert!(confidence > 0.5 && confidence <= 1.0, "{confidence}");
    assert!(
        suggestions
            .windows(2)
            .all(|w| w[0]["confidence"].as_f64() >= w[1]["confidence"].as_f64())
    );
    assert_eq!(
        first["workflow_template"]["trigger"]["type"],
        "form_submission"
    );
    assert!(
        first["workflow_template"]["steps"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(first["why"].as_array().is_some_and(|w| !w.is_empty()));
    // For the site's own form: the site's industry from its template, the
    // workflow written for its instance.
    let (status, answer) = api(
        &u,
        "POST",
        "/api/ai/suggest-workflows",
        Some(&editor),
        Some(
            &json!({"component_type": "pricing-table", "site": "demo", "instance": "pricing-table"}),
        ),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["industry"], "saas");
    assert_eq!(
        answer["suggestions"][0]["workflow_template"]["trigger"]["component"],
        "pricing-table"
    );
    // Bad input: a 422 naming the field.
    for (body, field) in [
        (json!({"component_type": "carousel"}), "component_type"),
        (
            json!({"component_type": "cta", "site_context": {"industry": "mining"}}),
            "site_context.industry",
        ),
        (
            json!({"component_type": "cta", "site_context": {"goals": ["fame"]}}),
            "site_context.goals",
        ),
        (json!({"component_type": "cta", "site": "nowhere"}), "site"),
        (
            json!({"component_type": "cta", "site": "demo", "instance": "cta\nsteps: []"}),
            "instance",
        ),
        (
            json!({"component_type": "cta", "instance": "cta"}),
            "instance",
        ),
    ] {
        let (status, answer) = api(
            &u,
            "POST",
            "/api/ai/suggest-workflows",
            Some(&editor),
            Some(&body),
        );
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
}

/// The analytics reports over the API: a form posted through the daemon is a
/// conversion whose path the paths report gives; ROI, forecasts and heat maps
/// answer in their shapes; unknown sites, workflows and parameters are refused.
#[test]
fn the_analytics_reports_answer_over_the_api() {
    let dir = demo();
    let d = dir.path();
    let viewer = api_token(d, "vi", "viewer");
    let u = up(d);
    assert_eq!(u.post_form("paths@example.org"), 303);
    let get = |path: &str| api(&u, "GET", path, Some(&viewer), None);
    let (status, paths) = get("/api/analytics/sites/demo/paths?days=7");
    assert_eq!(status, 200, "{paths}");
    assert_eq!(paths["conversions"], 1, "{paths}");
    let steps = paths["paths"][0]["steps"].as_array().expect("a path");
    assert_eq!(steps.last(), Some(&json!("submit contact-form")), "{paths}");
    let (status, roi) = get("/api/analytics/roi");
    assert_eq!(status, 200, "{roi}");
    assert_eq!(roi["won_deals"], 0);
    assert_eq!(
        roi["window_ms"],
        30 * 86_400_000i64,
        "funnel.yaml's default window"
    );
    assert!(roi["rows"].is_array());
    let (status, forecast) = get("/api/analytics/forecast?workflow=contact-form-follow-up");
    assert_eq!(status, 200, "{forecast}");
    assert_eq!(forecast["weeks"].as_array().map(Vec::len), Some(12));
    assert_eq!(forecast["forecast_weeks"].as_array().map(Vec::len), Some(4));
    let (status, heat) = get("/api/analytics/sites/demo/heatmap?page=/pricing");
    assert_eq!(status, 200, "{heat}");
    assert!(heat["pages"].is_array());
    for (path, want) in [
        ("/api/analytics/sites/nope/paths", 404),
        ("/api/analytics/sites/nope/heatmap", 404),
        ("/api/analytics/forecast?workflow=nope", 404),
        ("/api/analytics/roi?weeks=2", 400),
    ] {
        let (status, answer) = get(path);
        assert_eq!(status, want, "{path}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{path}: {answer}");
    }
}
