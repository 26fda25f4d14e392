//! `funnel tui --remote`: the TUI on a team's daemon through its `/api` with a
//! person's token. The same screens drawn from the daemon and from the store
//! itself are the same, changes are made and audited as the token, roles hold,
//! and `funnel login` keeps the remote in the user's config folder.

use std::sync::Arc;

use funnel::desk::local::Local;
use funnel::desk::remote::Remote;
use funnel::desk::{Change, ErrorKind, Source};
use funnel::remotes::Profile;
use funnel::tui::app::ViewId;
use ratatui::crossterm::event::KeyCode;

use super::backend;
use super::support::{api_token, funnel_for};
use super::tui::{LARGE, SMALL, app, key, keys, screens};
use super::tui_fixture::seeded;

fn profile(daemon: &super::daemon::Up, token: &str) -> Profile {
    Profile {
        url: format!("http://{}", daemon.addr),
        token: token.to_string(),
        actor: None,
        role: None,
    }
}

fn remote(daemon: &super::daemon::Up, token: &str) -> Remote {
    Remote::connect("team", &profile(daemon, token)).expect("connect")
}

#[test]
fn a_remote_draws_every_screen_as_the_store_itself_does() {
    let (dir, engine, store) = seeded();
    let token = api_token(dir.path(), "mira", "editor");
    let daemon = super::daemon::up(dir.path());
    let far = remote(&daemon, &token);
    assert_eq!(far.role, "editor");
    assert_eq!(far.info().actor.as_deref(), Some("token:mira"));
    // The store itself, under the same name and location, so only the way
    // the data travels differs.
    let ws = funnel::workspace::load(dir.path(), std::path::Path::new(".")).expect("workspace");
    let fields = ws
        .fields
        .as_ref()
        .map(|d| d.value.fields.keys().cloned().collect())
        .unwrap_or_default();
    let near = Local::new(
        store,
        engine,
        far.info().location.clone(),
        far.info().actor.clone(),
    )
    .expect("local")
    .with_fields(fields);
    assert_eq!(near.info(), far.info());
    let far: Arc<dyn Source> = Arc::new(far);
    let near: Arc<dyn Source> = Arc::new(near);
    for size in [SMALL, LARGE] {
        let (a, b) = (screens(near.clone(), size), screens(far.clone(), size));
        assert_eq!(a.len(), b.len());
        for ((name, mine), (_, theirs)) in a.iter().zip(&b) {
            assert_eq!(mine, theirs, "{name} at {size:?} differs");
        }
        // The screens hold the fixture's data, not two empty frames.
        let all: String = b.iter().map(|(_, s)| s.as_str()).collect();
        for seen in [
            "grace@cobol.example",
            "November News",
            "Proposal",
            "ada+news@",
        ] {
            assert!(all.contains(seen), "{seen} not on any screen");
        }
    }
}

#[test]
fn changes_through_a_remote_are_the_tokens_and_roles_hold() {
    let (dir, _engine, _store) = seeded();
    let editor = api_token(dir.path(), "mira", "editor");
    let viewer = api_token(dir.path(), "vic", "viewer");
    let daemon = super::daemon::up(dir.path());
    let far: Arc<dyn Source> = Arc::new(remote(&daemon, &editor));
    let mut a = app(far.clone(), LARGE);
    // Search, tag, and the tag is stored, audited as the token and on the
    // contact's timeline.
    key(&mut a, KeyCode::Char('/'));
    keys(&mut a, "katherine john");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.contacts.rows.len(), 1);
    key(&mut a, KeyCode::Char('t'));
    keys(&mut a, "webinar-2026");
    key(&mut a, KeyCode::Enter);
    let m = a.message.clone().expect("message");
    assert!(!m.error, "{m:?}");
    let tags: i64 = backend::scalar(
        dir.path(),
        "SELECT count(*) FROM contact_tags t JOIN contacts c ON c.id = t.contact_id \
         WHERE c.email = 'katherine@nasa.example' AND t.tag = 'webinar-2026'",
        funnel::db_params![],
    );
    assert_eq!(tags, 1);
    let actor: String = backend::scalar(
        dir.path(),
        "SELECT actor FROM audit_log WHERE action = 'tag' ORDER BY id DESC LIMIT 1",
        funnel::db_params![],
    );
    assert_eq!(actor, "token:mira");
    let detail = a.contacts.detail.clone().expect("detail");
    assert!(
        detail
            .timeline
            .iter()
            .any(|e| e.kind == "tag" && e.source.as_deref() == Some("by token:mira")),
        "{:?}",
        detail.timeline
    );
    // What the workspace lacks is refused with the daemon's words.
    key(&mut a, KeyCode::Char('e'));
    keys(&mut a, "colour=red");
    key(&mut a, KeyCode::Enter);
    let m = a.message.clone().expect("message");
    assert!(m.error && m.text.contains("no field `colour`"), "{m:?}");
    // A deal moves on the board.
    a.switch(ViewId::Deals);
    let contact = a.deals.selected().expect("a deal").contact.clone();
    key(&mut a, KeyCode::Char('L'));
    let m = a.message.clone().expect("message");
    assert!(!m.error, "{m:?}");
    assert_eq!(a.deals.selected().expect("deal").contact, contact);
    let stage: String = backend::scalar(
        dir.path(),
        &format!(
            "SELECT d.stage FROM deals d JOIN contacts c ON c.id = d.contact_id \
             WHERE c.email = '{contact}'"
        ),
        funnel::db_params![],
    );
    assert_eq!(stage, "qualified");
    // Erasing a person needs an owner.
    let id = a.contacts.rows[0].id;
    let e = far
        .apply(Change::Forget { contact: id })
        .expect_err("editor");
    assert_eq!(e.kind, ErrorKind::Refused, "{e:?}");
    assert!(e.message.contains("owner"), "{e}");
    // A viewer reads, is shown as read-only, and changes nothing.
    let looker = remote(&daemon, &viewer);
    assert_eq!(looker.info().actor, None);
    assert!(
        !looker
            .contacts(None, funnel::crm::directory::Cursor::First, 5)
            .expect("reads")
            .is_empty()
    );
    let e = looker
        .apply(Change::AddTags {
            contact: id,
            tags: vec!["nope".into()],
        })
        .expect_err("viewer");
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(e.message.contains("editor role"), "{e}");
    // A missing contact is not found; a wrong token is told how to log in.
    let e = looker.contact(9_999_999).expect_err("missing");
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
    let e = Remote::connect("team", &profile(&daemon, "funnel_wrong")).expect_err("bad token");
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(e.message.contains("funnel login team"), "{e}");
}

#[test]
fn bad_desk_requests_get_a_json_4xx_and_change_nothing() {
    let (dir, _engine, _store) = seeded();
    let editor = api_token(dir.path(), "mira", "editor");
    let daemon = super::daemon::up(dir.path());
    let post = |path: &str, body: &str| {
        let (status, _, body) = super::http_client::http(
            &daemon.addr,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {editor}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                daemon.addr,
                body.len()
            ),
            body.as_bytes(),
        );
        let json: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
        (status, json)
    };
    let before: i64 = backend::scalar(
        dir.path(),
        "SELECT count(*) FROM audit_log",
        funnel::db_params![],
    );
    for (path, body, want) in [
        (
            "/api/changes",
            r#"{"change": "paint_it_red", "contact": 1}"#,
            422,
        ),
        (
            "/api/changes",
            r#"{"change": "add_tags", "contact": "one", "tags": []}"#,
            422,
        ),
        (
            "/api/changes",
            r#"{"change": "add_to_list", "contact": 1, "list": "vips"}"#,
            422,
        ),
        (
            "/api/changes",
            r#"{"change": "add_tags", "contact": 99999999, "tags": ["x"]}"#,
            404,
        ),
        ("/api/changes", "{not json", 400),
        (
            "/api/crm/contacts/page",
            r#"{"where": {"segment": "nope"}}"#,
            422,
        ),
        (
            "/api/crm/contacts/page",
            r#"{"cursor": {"below": "x"}}"#,
            422,
        ),
        ("/api/crm/contacts/count", r#"{"where": 7}"#, 400),
    ] {
        let (status, json) = post(path, body);
        assert_eq!(status, want, "{path} {body}: {json}");
        assert!(json["error"]["message"].is_string(), "{json}");
    }
    let after: i64 = backend::scalar(
        dir.path(),
        "SELECT count(*) FROM audit_log",
        funnel::db_params![],
    );
    assert_eq!(before, after, "a refused change wrote nothing");
}

#[test]
fn login_keeps_a_remote_that_tui_opens_and_logout_forgets_it() {
    let (dir, _engine, _store) = seeded();
    let token = api_token(dir.path(), "mira", "editor");
    let daemon = super::daemon::up(dir.path());
    let config = tempfile::tempdir().expect("config dir");
    let url = format!("http://{}", daemon.addr);
    let login = |name: &str, url: &str, token: &str| {
        funnel_for(dir.path())
            .args(["login", name, "--remote", url])
            .env("FUNNEL_CONFIG_DIR", config.path())
            .env("FUNNEL_TOKEN", token)
            .output()
            .expect("funnel login")
    };
    let out = login("team", &url, &token);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("as a editor") || said.contains("as an editor") || said.contains("editor"),
        "{said}"
    );
    assert!(!said.contains(&token), "the token is never printed");
    let file = config.path().join("remotes.json");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("remotes.json")).expect("json");
    assert_eq!(saved["remotes"]["team"]["url"], url.as_str());
    assert_eq!(saved["remotes"]["team"]["actor"], "token:mira");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner reads the token");
    }
    // A wrong token, an unreachable daemon and a plain-http network address
    // are refused before anything is saved.
    for (name, url, token, says) in [
        ("bad", url.as_str(), "funnel_nope", "refused the token"),
        (
            "gone",
            "http://127.0.0.1:9",
            token.as_str(),
            "does not answer",
        ),
        ("far", "http://192.0.2.7:7878", token.as_str(), "in clear"),
    ] {
        let out = login(name, url, token);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{name}: {err}");
    }
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("remotes.json")).expect("json");
    assert_eq!(saved["remotes"].as_object().map(|o| o.len()), Some(1));
    // An unknown remote is named, with the ones there are.
    let out = funnel_for(dir.path())
        .args(["tui", "--remote", "tem"])
        .env("FUNNEL_CONFIG_DIR", config.path())
        .output()
        .expect("funnel tui");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no remote named `tem`") && err.contains("team"),
        "{err}"
    );
    let out = funnel_for(dir.path())
        .args(["logout", "team"])
        .env("FUNNEL_CONFIG_DIR", config.path())
        .output()
        .expect("funnel logout");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("remotes.json")).expect("json");
    assert_eq!(saved["remotes"].as_object().map(|o| o.len()), Some(0));
}
