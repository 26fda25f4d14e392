//! `funnel tui` in a real terminal: tmux runs the binary on the seeded store,
//! the test types with `send-keys` and reads the screen with `capture-pane`,
//! then checks the store. Skips without tmux, except under CI, where it fails.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::backend;
use super::tui_fixture::{ACTOR, seeded};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn keys(&self, keys: &[&str]) {
        let out = self
            .cmd()
            .args(["send-keys", "-t", "tui"])
            .args(keys)
            .output()
            .expect("tmux send-keys");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Types `text` literally (no key names).
    fn type_text(&self, text: &str) {
        let out = self
            .cmd()
            .args(["send-keys", "-t", "tui", "-l", text])
            .output()
            .expect("tmux send-keys");
        assert!(out.status.success());
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "tui"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits up to 10 s for the screen to show `text`.
    fn wait_for(&self, text: &str) -> String {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                Instant::now() < until,
                "the screen never showed {text:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

fn tmux_available() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is missing: .ci/test installs it (apt-get install tmux)"
        );
        eprintln!("skipped: tmux is not installed");
    }
    found
}

/// Tests in one process each get a tmux server of their own.
static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `funnel tui ARGS` in a new tmux session, with `env` besides the store's.
fn start(root: &Path, args: &str, extra: &[String]) -> Tmux {
    let tmux = Tmux {
        socket: format!(
            "funnel-test-{}-{}-{}",
            std::process::id(),
            backend::run_id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ),
    };
    let mut env = vec![
        format!("FUNNEL_ACTOR={ACTOR}"),
        "NO_COLOR=1".to_string(),
        "TERM=xterm-256color".to_string(),
    ];
    env.extend(extra.iter().cloned());
    if backend::is_postgres() {
        let mut c = Command::new("true");
        backend::apply(&mut c, root);
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                env.push(format!("{}={}", k.to_string_lossy(), v.to_string_lossy()));
            }
        }
    }
    let mut cmd = tmux.cmd();
    cmd.args(["new-session", "-d", "-s", "tui", "-x", "140", "-y", "40"]);
    for e in &env {
        cmd.args(["-e", e]);
    }
    cmd.arg(format!(
        "{} tui {args}; sleep 30",
        env!("CARGO_BIN_EXE_funnel")
    ));
    let out = cmd.output().expect("tmux new-session");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmux
}

#[test]
fn a_marketer_searches_tags_and_moves_a_deal_in_a_real_terminal() {
    if !tmux_available() {
        return;
    }
    let (dir, _engine, _store) = seeded();
    let root = dir.path();
    let t = start(root, &format!("--workspace {}", root.display()), &[]);
    search_tag_and_move(&t, root, ACTOR);
}

#[test]
fn the_same_in_a_real_terminal_on_a_teams_daemon() {
    if !tmux_available() {
        return;
    }
    let (dir, _engine, _store) = seeded();
    let root = dir.path();
    let token = super::support::api_token(root, "mira", "editor");
    let daemon = super::daemon::up(root);
    let config = tempfile::tempdir().expect("config dir");
    let out = super::support::funnel_for(root)
        .args([
            "login",
            "team",
            "--remote",
            &format!("http://{}", daemon.addr),
        ])
        .env("FUNNEL_CONFIG_DIR", config.path())
        .env("FUNNEL_TOKEN", &token)
        .output()
        .expect("funnel login");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No workspace and no FUNNEL_ACTOR's say: the daemon names the token.
    let away = tempfile::tempdir().expect("another folder");
    let t = start(
        away.path(),
        "--remote team",
        &[format!("FUNNEL_CONFIG_DIR={}", config.path().display())],
    );
    search_tag_and_move(&t, root, "token:mira");
}

/// Searches a contact, tags her, moves a deal, and finds both in the store,
/// audited as `actor`, and on the contacts' timelines.
fn search_tag_and_move(t: &Tmux, root: &Path, actor: &str) {
    t.wait_for("newest first");
    // Search as you type, then open the one match.
    t.keys(&["/"]);
    t.type_text("katherine john");
    t.wait_for("search “katherine john” · 1 found");
    t.keys(&["Enter"]);
    // Add a tag to her.
    t.keys(&["t"]);
    t.wait_for("add tag:");
    t.type_text("webinar-2026");
    t.keys(&["Enter"]);
    t.wait_for("1 tag(s) added");
    // On her timeline, with who did it (the line may wrap before the name).
    let s = t.wait_for("tag webinar-2026  by");
    assert!(s.contains(actor), "{s}");
    // Move the first lead's deal on a stage, then open its contact.
    t.keys(&["2"]);
    t.wait_for("New business");
    t.keys(&["L"]);
    t.wait_for("deal moved to qualified");
    t.keys(&["Enter"]);
    let s = t.wait_for("move_deal sales → qualified");
    assert!(s.contains("edsger@structured.example"), "{s}");
    t.keys(&["q"]);
    t.keys(&["q"]);
    // Both changes are in the store, each audited with the person's name.
    let tagged: i64 = backend::scalar(
        root,
        "SELECT count(*) FROM contact_tags t JOIN contacts c ON c.id = t.contact_id \
         WHERE c.email = 'katherine@nasa.example' AND t.tag = 'webinar-2026'",
        funnel::db_params![],
    );
    assert_eq!(tagged, 1);
    let stage: String = backend::scalar(
        root,
        "SELECT d.stage FROM deals d JOIN contacts c ON c.id = d.contact_id \
         WHERE c.email = 'edsger@structured.example'",
        funnel::db_params![],
    );
    assert_eq!(stage, "qualified");
    let audited: i64 = backend::scalar(
        root,
        "SELECT count(*) FROM audit_log WHERE actor = ?1 AND action IN ('tag', 'move_deal')",
        funnel::db_params![actor],
    );
    assert_eq!(audited, 2);
}
