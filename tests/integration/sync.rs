//! `funnel sync`: a laptop's workspace (SQLite, always) and the team's daemon
//! (SQLite, or PostgreSQL under `FUNNEL_TEST_BACKEND=postgres`) through
//! `POST /api/sync` with a person's token. Concurrent edits converge, a synced
//! change starts no workflow, an erasure holds on both sides, a second sync
//! moves nothing, roles hold and bad rounds are refused whole.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value as Json, json};

use super::backend;
use super::daemon_api::api;
use super::support::{api_token, demo, drip_on_tag, funnel, funnel_for};

/// The laptop: its own SQLite store under `.funnel/`, its own config folder.
fn laptop(dir: &Path, config: &Path, args: &[&str]) -> Output {
    let mut cmd: Command = funnel();
    cmd.args(args)
        .current_dir(dir)
        .env("FUNNEL_CONFIG_DIR", config)
        .env_remove("FUNNEL_STORE_URL");
    cmd.output().expect("funnel runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn hosted(dir: &Path, args: &[&str]) -> String {
    ok(&funnel_for(dir)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("funnel runs"))
}

/// A contact as `contacts show --format json` prints it, or None.
fn show(out: &Output) -> Option<Json> {
    out.status.success().then(|| {
        let shown: Json = serde_json::from_slice(&out.stdout).expect("json");
        shown["contact"].clone()
    })
}

fn name_and_tags(c: &Json) -> (String, Vec<String>) {
    let name = c["name"].as_str().unwrap_or_default().to_string();
    let mut tags: Vec<String> = c["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    (name, tags)
}

fn executions_for(dir: &Path, email: &str) -> i64 {
    backend::scalar(
        dir,
        "SELECT count(*) FROM executions e JOIN contacts c ON c.id = e.contact_id WHERE c.email = ?1",
        funnel::db_params![email],
    )
}

#[test]
fn a_laptop_and_the_team_daemon_converge_and_an_erasure_holds() {
    let team = demo();
    // A tag starts the welcome drip, so a synced tag that started it would show.
    drip_on_tag(team.path());
    let token = api_token(team.path(), "mira", "editor");
    let viewer = api_token(team.path(), "vic", "viewer");
    let daemon = super::daemon::up(team.path());
    let url = format!("http://{}", daemon.addr);
    let mine = demo();
    let config = tempfile::tempdir().expect("config");
    let (me, cfg) = (mine.path(), config.path());
    let login = |name: &str, token: &str| {
        let mut cmd = funnel();
        cmd.args(["login", name, "--remote", &url])
            .current_dir(me)
            .env("FUNNEL_CONFIG_DIR", cfg)
            .env("FUNNEL_TOKEN", token);
        ok(&cmd.output().expect("login"));
    };
    login("team", &token);

    // The same person edited on both sides; the team's edit is the later one.
    ok(&laptop(
        me,
        cfg,
        &[
            "contacts",
            "add",
            "ada@example.org",
            "--name",
            "Ada",
            "--tag",
            "vip",
        ],
    ));
    ok(&laptop(
        me,
        cfg,
        &[
            "contacts",
            "add",
            "grace@example.org",
            "--name",
            "Grace",
            "--field",
            "plan=pro",
        ],
    ));
    ok(&laptop(
        me,
        cfg,
        &["contacts", "tag", "grace@example.org", "newsletter"],
    ));
    hosted(
        team.path(),
        &[
            "contacts",
            "add",
            "ada@example.org",
            "--name",
            "Ada Lovelace",
            "--tag",
            "speaker",
        ],
    );
    hosted(
        team.path(),
        &["contacts", "add", "kate@example.org", "--name", "Katherine"],
    );
    // On the team's side a tag does start the drip (so the check below can fail).
    hosted(
        team.path(),
        &["contacts", "tag", "kate@example.org", "newsletter"],
    );
    let kate_runs = executions_for(team.path(), "kate@example.org");
    assert!(kate_runs > 0, "the drip starts on the team's own tag");

    let said = ok(&laptop(me, cfg, &["sync"]));
    assert!(said.contains("synced with team"), "{said}");
    for email in ["ada@example.org", "grace@example.org", "kate@example.org"] {
        let here = show(&laptop(
            me,
            cfg,
            &["contacts", "show", email, "--format", "json"],
        ))
        .unwrap_or_else(|| panic!("{email} on the laptop"));
        let there = show(
            &funnel_for(team.path())
                .args(["contacts", "show", email, "--format", "json"])
                .current_dir(team.path())
                .output()
                .expect("show"),
        )
        .unwrap_or_else(|| panic!("{email} on the team's store"));
        assert_eq!(name_and_tags(&here), name_and_tags(&there), "{email}");
        assert_eq!(here["fields"], there["fields"], "{email}");
    }
    let ada = show(&laptop(
        me,
        cfg,
        &["contacts", "show", "ada@example.org", "--format", "json"],
    ))
    .expect("ada");
    let (name, tags) = name_and_tags(&ada);
    assert_eq!(name, "Ada Lovelace", "the later edit wins");
    assert_eq!(tags, ["speaker", "vip"], "tags from both sides");
    // Grace's tag came by sync: the team's drip did not start for her.
    assert_eq!(executions_for(team.path(), "grace@example.org"), 0);
    assert_eq!(executions_for(team.path(), "kate@example.org"), kate_runs);
    let audited: i64 = backend::scalar(
        team.path(),
        "SELECT count(*) FROM audit_log WHERE action = 'sync' AND actor = 'token:mira'",
        funnel::db_params![],
    );
    assert!(audited >= 1, "the round is audited as the token");

    // Again: nothing moves, nothing waits.
    let said = ok(&laptop(me, cfg, &["sync", "--format", "json"]));
    let report: Json = serde_json::from_str(&said).expect("json");
    assert_eq!(report["report"]["sent_applied"], 0, "{said}");
    assert_eq!(report["report"]["received_applied"], 0, "{said}");
    let status: Json = serde_json::from_str(&ok(&laptop(
        me,
        cfg,
        &["sync", "status", "--format", "json"],
    )))
    .expect("json");
    assert_eq!(status["to_send"], 0, "{status}");
    assert_eq!(status["to_receive"], 0, "{status}");

    // The team erases Grace while the laptop, not yet told, tags her.
    hosted(team.path(), &["contacts", "forget", "grace@example.org"]);
    ok(&laptop(
        me,
        cfg,
        &["contacts", "tag", "grace@example.org", "late"],
    ));
    let status: Json = serde_json::from_str(&ok(&laptop(
        me,
        cfg,
        &["sync", "status", "--format", "json"],
    )))
    .expect("json");
    assert!(status["to_send"].as_i64() > Some(0), "{status}");
    assert!(status["to_receive"].as_i64() > Some(0), "{status}");
    ok(&laptop(me, cfg, &["sync"]));
    ok(&laptop(me, cfg, &["sync"]));
    assert!(
        show(&laptop(
            me,
            cfg,
            &["contacts", "show", "grace@example.org", "--format", "json"]
        ))
        .is_none()
    );
    let left: i64 = backend::scalar(
        team.path(),
        "SELECT count(*) FROM contacts WHERE email = 'grace@example.org'",
        funnel::db_params![],
    );
    assert_eq!(left, 0, "no sync resurrects an erased person");

    // A viewer may not sync; a bad round is refused whole.
    let (status, body) = api(
        &daemon,
        "POST",
        "/api/sync",
        Some(&viewer),
        Some(&json!({"node": "somewhere", "changes": []})),
    );
    assert_eq!(status, 403, "{body}");
    let before: i64 = backend::scalar(
        team.path(),
        "SELECT count(*) FROM contacts",
        funnel::db_params![],
    );
    let (status, body) = api(
        &daemon,
        "POST",
        "/api/sync",
        Some(&token),
        Some(&json!({"node": "somewhere", "changes": [
            {"email": "new@example.org", "item": "t:vip", "wall": 1, "node": "x", "value": true},
            {"email": "new2@example.org", "item": "f:email", "wall": 1, "node": "x", "value": "a"}
        ]})),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "changes", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("change 1")),
        "{body}"
    );
    let after: i64 = backend::scalar(
        team.path(),
        "SELECT count(*) FROM contacts",
        funnel::db_params![],
    );
    assert_eq!(before, after, "nothing of a refused page is stored");
    // Erasing through sync is an owner's act, as it is everywhere else.
    let hash = "0".repeat(64);
    let (status, body) = api(
        &daemon,
        "POST",
        "/api/sync",
        Some(&token),
        Some(&json!({"node": "somewhere", "changes": [
            {"item": format!("s:{hash}"), "wall": 1, "node": "x", "value": {"reason": "forgotten"}}
        ]})),
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("owner")),
        "{body}"
    );
    for (bad, field) in [
        (json!({"node": "", "changes": []}), "node"),
        (json!({"node": "n", "since": "x.y"}), "since"),
        (json!({"node": "n", "limit": 1_000_000}), "limit"),
    ] {
        let (status, body) = api(&daemon, "POST", "/api/sync", Some(&token), Some(&bad));
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
}

#[test]
fn a_sync_killed_midway_resumes_without_duplicates() {
    let team = demo();
    let token = api_token(team.path(), "mira", "editor");
    let daemon = super::daemon::up(team.path());
    let url = format!("http://{}", daemon.addr);
    let mine = demo();
    let config = tempfile::tempdir().expect("config");
    let (me, cfg) = (mine.path(), config.path());
    let mut login = funnel();
    login
        .args(["login", "team", "--remote", &url])
        .current_dir(me)
        .env("FUNNEL_CONFIG_DIR", cfg)
        .env("FUNNEL_TOKEN", &token);
    ok(&login.output().expect("login"));
    let people = 2_000;
    let mut csv = String::from("email,name,company\n");
    for i in 0..people {
        csv.push_str(&format!("p{i}@example.org,Person {i},Acme {}\n", i % 7));
    }
    std::fs::write(me.join("people.csv"), csv).expect("csv");
    ok(&laptop(me, cfg, &["contacts", "import", "people.csv"]));
    for i in (0..people).step_by(10) {
        ok(&laptop(
            me,
            cfg,
            &["contacts", "tag", &format!("p{i}@example.org"), "sampled"],
        ));
        if i > 200 {
            break;
        }
    }
    // Small rounds, killed once the team's store has some but not all.
    let mut child = funnel()
        .args(["sync", "--page", "20"])
        .current_dir(me)
        .env("FUNNEL_CONFIG_DIR", cfg)
        .env_remove("FUNNEL_STORE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sync");
    let count = || -> i64 {
        backend::scalar(
            team.path(),
            "SELECT count(*) FROM contacts WHERE email LIKE 'p%@example.org'",
            funnel::db_params![],
        )
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("kill");
    child.wait().expect("reaped");
    let midway = count();
    assert!(
        midway > 0 && midway < people,
        "killed midway: {midway} of {people}"
    );
    let said = ok(&laptop(me, cfg, &["sync", "--format", "json"]));
    let report: Json = serde_json::from_str(&said).expect("json");
    assert!(report["report"]["sent"].as_i64() > Some(0), "{said}");
    assert_eq!(count(), people);
    // Each contact once, each tag once, each activity once: the same as the laptop.
    let on_team = |sql: &str| -> i64 { backend::scalar(team.path(), sql, funnel::db_params![]) };
    let store = funnel::store::Store::open_blocking(&funnel::store::StoreLocation::Sqlite {
        path: me.join(".funnel/funnel.db"),
        synchronous: funnel::model::config::Synchronous::Full,
    })
    .expect("laptop store");
    let on_laptop = |sql: &'static str| -> i64 {
        store
            .read(|db| db.query_row(sql, funnel::db_params![], |r| r.get(0)))
            .expect("laptop count")
    };
    for sql in [
        "SELECT count(*) FROM contact_tags t JOIN contacts c ON c.id = t.contact_id WHERE c.email LIKE 'p%@example.org'",
        "SELECT count(*) FROM activities a JOIN contacts c ON c.id = a.contact_id WHERE c.email LIKE 'p%@example.org'",
        "SELECT count(*) FROM contact_fields f JOIN contacts c ON c.id = f.contact_id WHERE c.email LIKE 'p%@example.org'",
    ] {
        assert_eq!(on_team(sql), on_laptop(sql), "{sql}");
    }
    assert!(
        on_laptop("SELECT count(*) FROM contact_tags WHERE tag = 'sampled'") > 0,
        "the fixture has tags"
    );
}

#[test]
fn sync_says_what_to_do_without_a_remote_or_with_a_viewer_token() {
    let mine = demo();
    let config = tempfile::tempdir().expect("config");
    let (me, cfg) = (mine.path(), config.path());
    let out = laptop(me, cfg, &["sync"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("funnel login"), "{err}");
    let out = laptop(me, cfg, &["sync", "--remote", "nowhere"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nowhere"), "{err}");

    let team = demo();
    let viewer = api_token(team.path(), "vic", "viewer");
    let daemon = super::daemon::up(team.path());
    let mut login = funnel();
    login
        .args([
            "login",
            "team",
            "--remote",
            &format!("http://{}", daemon.addr),
        ])
        .current_dir(me)
        .env("FUNNEL_CONFIG_DIR", cfg)
        .env("FUNNEL_TOKEN", &viewer);
    ok(&login.output().expect("login"));
    ok(&laptop(me, cfg, &["contacts", "add", "ada@example.org"]));
    let out = laptop(me, cfg, &["sync"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("editor"),
        "a viewer is told the role it needs: {err}"
    );
    let stored: i64 = backend::scalar(
        team.path(),
        "SELECT count(*) FROM contacts WHERE email = 'ada@example.org'",
        funnel::db_params![],
    );
    assert_eq!(stored, 0);
}
