//! The TUI without a terminal: every screen rendered into ratatui's
//! `TestBackend` from the seeded fixture (at 80×24 and 160×48) and compared
//! with its snapshot, and the key handling checked on the app's state, with
//! the changes it makes read back from the store.

use std::sync::Arc;

use funnel::desk::Source;
use funnel::tui::app::{App, Mode, ViewId};
use funnel::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::backend;
use super::tui_fixture::{ACTOR, seeded, source};

pub(super) const SMALL: (u16, u16) = (80, 24);
pub(super) const LARGE: (u16, u16) = (160, 48);

pub(super) fn app(source: Arc<dyn Source>, (w, h): (u16, u16)) -> App {
    let mut app = App::new(source, Theme::new(false), w, h);
    app.wait_for_background();
    app
}

/// The screen as text, public ids masked (they are random) and row ids too
/// (PostgreSQL's sequences skip the values an upsert's conflict used).
pub(super) fn screen(app: &mut App) -> String {
    let (w, h) = app.size;
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    term.draw(|f| app.render(f)).expect("draw");
    let text = term.backend().to_string();
    mask_row_ids(&mask_uids(&text))
}

/// `"contact_id":27` as `"contact_id":#`.
fn mask_row_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("_id\":") {
        let (head, tail) = rest.split_at(at + 5);
        out.push_str(head);
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push('#');
            out.push_str(&" ".repeat(digits - 1));
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

fn mask_uids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let take: String = chars[i..chars.len().min(i + 36)].iter().collect();
        let is_uid = take.len() == 36
            && take.chars().enumerate().all(|(k, c)| {
                if [8, 13, 18, 23].contains(&k) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            });
        if is_uid {
            out.push_str("<uid>");
            i += 36;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

pub(super) fn key(app: &mut App, code: KeyCode) {
    app.key(KeyEvent::new(code, KeyModifiers::NONE));
}

pub(super) fn keys(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// The screens of every view, driven by the same keys (each with its name).
pub(super) fn screens(src: Arc<dyn Source>, size: (u16, u16)) -> Vec<(&'static str, String)> {
    let mut a = app(src, size);
    let mut out = Vec::new();
    let mut shot = |name: &'static str, a: &mut App| out.push((name, screen(a)));
    shot("contacts", &mut a);
    for _ in 0..3 {
        key(&mut a, KeyCode::Char('j'));
    }
    key(&mut a, KeyCode::Enter);
    shot("contact_detail", &mut a);
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Char('G'));
    shot("contacts_end", &mut a);
    key(&mut a, KeyCode::Char('/'));
    keys(&mut a, "grace cob");
    shot("search", &mut a);
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Char('?'));
    shot("help", &mut a);
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Char('D'));
    a.wait_for_background();
    shot("duplicates_queue", &mut a);
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Char('2'));
    shot("deals", &mut a);
    key(&mut a, KeyCode::Char('3'));
    a.wait_for_background();
    shot("campaigns", &mut a);
    key(&mut a, KeyCode::Char('j'));
    shot("campaign_sent", &mut a);
    key(&mut a, KeyCode::Char('4'));
    shot("executions", &mut a);
    key(&mut a, KeyCode::Enter);
    shot("execution_detail", &mut a);
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Char('5'));
    a.wait_for_background();
    shot("dashboard", &mut a);
    out
}

/// Every screen at one size, each under its own snapshot name.
fn every_screen(size: (u16, u16), tag: &str) {
    let (_dir, engine, store) = seeded();
    for (name, text) in screens(source(engine, store), size) {
        insta::assert_snapshot!(format!("tui_{tag}_{name}"), text);
    }
}

#[test]
fn every_screen_at_80_by_24() {
    every_screen(SMALL, "80x24");
}

#[test]
fn every_screen_at_160_by_48() {
    every_screen(LARGE, "160x48");
}

#[test]
fn the_list_pages_by_keyset_both_ways_and_the_end_is_the_oldest_contact() {
    let (_dir, engine, store) = seeded();
    let mut a = app(source(engine, store), SMALL);
    let page = a.contacts.page;
    let first = a.contacts.rows[0].email.clone();
    assert_eq!(a.contacts.rows.len(), page, "a full first page");
    key(&mut a, KeyCode::End);
    let oldest = a.contacts.selected().expect("selected").email.clone();
    assert_eq!(oldest, "ada@analytical.example", "the end is the oldest");
    assert_eq!(a.contacts.rows.len(), page, "the last page is full too");
    key(&mut a, KeyCode::Home);
    assert_eq!(a.contacts.selected().expect("selected").email, first);
    // Moving past the page reads the next rows: no contact is skipped or repeated.
    let mut seen = vec![first.clone()];
    for _ in 0..40 {
        key(&mut a, KeyCode::Char('j'));
        let e = a.contacts.selected().expect("selected").email.clone();
        if seen.last() != Some(&e) {
            seen.push(e);
        }
    }
    let total = 28; // 24 seeded, Ada's second address, 3 from the form posts
    assert_eq!(seen.len(), total, "every contact once: {seen:?}");
    assert_eq!(
        seen.last().map(String::as_str),
        Some("ada@analytical.example")
    );
    // And back up, a line at a time, to the newest.
    for _ in 0..40 {
        key(&mut a, KeyCode::Char('k'));
    }
    assert_eq!(a.contacts.selected().expect("selected").email, first);
    key(&mut a, KeyCode::PageDown);
    key(&mut a, KeyCode::PageUp);
    assert_eq!(a.contacts.rows[0].email, first);
}

#[test]
fn segments_count_in_the_background_and_filter_the_list() {
    let (_dir, engine, store) = seeded();
    let mut a = app(source(engine, store), SMALL);
    let counts = a.contacts.counts();
    assert_eq!(counts["all contacts"], Some(28));
    // Choose a segment from the sidebar: the list shows its members only.
    key(&mut a, KeyCode::BackTab);
    assert_eq!(a.contacts.pane, funnel::tui::contacts::Pane::Segments);
    let target = a.contacts.segments.iter().position(|s| {
        s.count
            .as_ref()
            .is_some_and(|c| c.as_ref().is_ok_and(|n| *n > 0))
            && s.id.is_some()
    });
    if let Some(target) = target {
        for _ in 0..target {
            key(&mut a, KeyCode::Char('j'));
        }
        key(&mut a, KeyCode::Enter);
        let n = a.contacts.segments[target]
            .count
            .clone()
            .expect("counted")
            .expect("ok");
        assert_eq!(a.contacts.pane, funnel::tui::contacts::Pane::List);
        assert_eq!(
            u64::try_from(a.contacts.rows.len()).expect("len"),
            n.min(u64::try_from(a.contacts.page).expect("page"))
        );
    }
    // A typed filter: every word must hold.
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Char('f'));
    keys(&mut a, "tag:vip plan=pro");
    key(&mut a, KeyCode::Enter);
    a.wait_for_background();
    assert_eq!(a.contacts.matching, Some(4), "indexes 0, 6, 12, 18");
    assert!(a.contacts.rows.iter().all(|r| {
        [0, 6, 12, 18]
            .iter()
            .any(|i| r.email == super::tui_fixture::email(*i))
    }));
    // A bad filter says where and why, and keeps the list as it was.
    key(&mut a, KeyCode::Char('f'));
    key(&mut a, KeyCode::Char('u'));
    a.key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    keys(&mut a, "tag:vip colour:red");
    key(&mut a, KeyCode::Enter);
    let m = a.message.clone().expect("a message");
    assert!(m.error && m.text.contains("column 9"), "{m:?}");
}

#[test]
fn a_tag_added_from_the_detail_is_stored_audited_and_on_the_timeline() {
    let (dir, engine, store) = seeded();
    let mut a = app(source(engine, store), LARGE);
    key(&mut a, KeyCode::Char('/'));
    keys(&mut a, "katherine john");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.contacts.rows.len(), 1);
    key(&mut a, KeyCode::Char('t'));
    assert!(matches!(a.mode, Mode::Prompt { .. }));
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
    assert_eq!(actor, ACTOR);
    // What the workspace does not have is refused with what it has.
    for (k, text, says) in [
        ('e', "colour=red", "no field `colour`"),
        ('s', "champion", "no stage `champion`"),
        ('L', "vips", "no list `vips`"),
    ] {
        key(&mut a, KeyCode::Char(k));
        keys(&mut a, text);
        key(&mut a, KeyCode::Enter);
        let m = a.message.clone().expect("message");
        assert!(m.error && m.text.contains(says), "{m:?}");
    }
    key(&mut a, KeyCode::Char('e'));
    keys(&mut a, "plan=enterprise");
    key(&mut a, KeyCode::Enter);
    key(&mut a, KeyCode::Char('s'));
    keys(&mut a, "opportunity");
    key(&mut a, KeyCode::Enter);
    let d = a.contacts.detail.clone().expect("detail");
    assert_eq!(d.view["fields"]["plan"], "enterprise");
    assert_eq!(d.summary.stage.as_deref(), Some("opportunity"));
    let detail = a.contacts.detail.clone().expect("detail shown");
    assert!(
        detail.timeline.iter().any(|e| e.kind == "tag"
            && e.subject.as_deref() == Some("webinar-2026")
            && e.source.as_deref() == Some(&format!("by {ACTOR}")[..])),
        "{:?}",
        detail.timeline
    );
}

#[test]
fn a_deal_moves_a_stage_on_with_the_keyboard_and_the_board_follows_it() {
    let (dir, engine, store) = seeded();
    let mut a = app(source(engine, store), SMALL);
    a.switch(ViewId::Deals);
    // Lead column: two deals; the second column (qualified) two.
    assert_eq!(a.deals.columns[0].deals.len(), 2);
    assert_eq!(a.deals.columns[0].count, 2);
    let contact = a.deals.selected().expect("a deal").contact.clone();
    key(&mut a, KeyCode::Char('L'));
    let m = a.message.clone().expect("message");
    assert!(!m.error, "{m:?}");
    assert_eq!(a.deals.column, 1, "the board follows the deal");
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
    // The first stage has nothing before it.
    key(&mut a, KeyCode::Char('h'));
    key(&mut a, KeyCode::Char('h'));
    key(&mut a, KeyCode::Char('H'));
    assert!(a.message.clone().expect("message").error);
    // Enter opens the deal's contact, with the move on its timeline.
    key(&mut a, KeyCode::Char('l'));
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.view, ViewId::Contacts);
    let detail = a.contacts.detail.clone().expect("detail");
    assert_eq!(detail.summary.email, contact);
    assert!(
        detail
            .timeline
            .iter()
            .any(|e| e.kind == "move_deal" && e.subject.as_deref() == Some("sales → qualified")),
        "{:?}",
        detail.timeline
    );
}

#[test]
fn changes_need_a_name_for_the_audit_log() {
    let (_dir, engine, store) = seeded();
    let src: Arc<dyn Source> = Arc::new(
        funnel::desk::local::Local::new(store, engine, "x".into(), None)
            .expect("source")
            .at(super::tui_fixture::NOW),
    );
    let mut a = app(src, SMALL);
    key(&mut a, KeyCode::Char('t'));
    keys(&mut a, "x");
    key(&mut a, KeyCode::Enter);
    let m = a.message.clone().expect("message");
    assert!(m.error && m.text.contains("FUNNEL_ACTOR"), "{m:?}");
}

#[test]
fn keys_jump_views_confirm_and_quit() {
    let (_dir, engine, store) = seeded();
    let mut a = app(source(engine, store), SMALL);
    key(&mut a, KeyCode::Char(':'));
    keys(&mut a, "exec");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.view, ViewId::Executions);
    key(&mut a, KeyCode::Char(':'));
    keys(&mut a, "nowhere");
    key(&mut a, KeyCode::Enter);
    assert!(
        a.message
            .clone()
            .expect("message")
            .text
            .contains("no view `nowhere`")
    );
    // Cancelling an execution asks first; `n` leaves it running.
    key(&mut a, KeyCode::Char('c'));
    assert!(matches!(a.mode, Mode::Confirm { .. }));
    key(&mut a, KeyCode::Char('n'));
    assert!(matches!(a.mode, Mode::Normal));
    key(&mut a, KeyCode::Char('3'));
    assert_eq!(a.view, ViewId::Campaigns);
    a.wait_for_background();
    key(&mut a, KeyCode::Char('s'));
    assert!(
        matches!(&a.mode, Mode::Confirm { question, .. } if question.starts_with("send december-dispatch"))
    );
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Char('?'));
    assert!(a.help);
    key(&mut a, KeyCode::Char('q'));
    assert!(!a.help && !a.quit, "q closes the help first");
    key(&mut a, KeyCode::Char('q'));
    assert!(a.quit);
}

#[test]
fn a_change_from_another_process_shows_in_the_open_view_within_a_second() {
    let (dir, engine, store) = seeded();
    let mut a = app(source(engine, store), LARGE);
    let before = a.contacts.rows[0].email.clone();
    // Another process (the CLI) adds a contact and tags one on screen.
    let out = super::support::run(
        &[
            "contacts",
            "add",
            "zoe@newcomer.example",
            "--name",
            "Zoe New",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = super::support::run(&["contacts", "tag", &before, "from-elsewhere"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The terminal loop ticks every 250 ms; four ticks are a second.
    let started = std::time::Instant::now();
    let mut seen_at = None;
    for _ in 0..4 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        a.tick();
        let top = a.contacts.rows[0].email.clone();
        let tagged = a.contacts.detail.as_ref().is_some_and(|d| {
            d.view["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == "from-elsewhere"))
        });
        if top == "zoe@newcomer.example" && tagged {
            seen_at = Some(started.elapsed());
            break;
        }
    }
    let seen = seen_at.unwrap_or_else(|| {
        panic!(
            "not shown within a second: top {:?}, detail {:?}",
            a.contacts.rows.first().map(|r| &r.email),
            a.contacts.detail.as_ref().map(|d| &d.view["tags"])
        )
    });
    assert!(seen <= std::time::Duration::from_millis(1_100), "{seen:?}");
    // The selection stayed on the contact it was on.
    assert_eq!(a.contacts.selected().expect("selected").email, before);
    assert!(screen(&mut a).contains("zoe@newcomer.example"));
}

#[test]
fn the_duplicates_queue_merges_dismisses_and_undoes() {
    let (dir, engine, store) = seeded();
    let mut a = app(source(engine, store), LARGE);
    key(&mut a, KeyCode::Char('D'));
    a.wait_for_background();
    let d = a.contacts.dupes.as_ref().expect("queue open");
    assert_eq!(d.pairs.len(), 1, "{:?}", d.pairs);
    let pair = d.pairs[0].clone();
    assert_eq!(pair.a.email, "ada@analytical.example");
    assert_eq!(pair.b.email, "ada+news@analytical.example");
    insta::assert_snapshot!("tui_160x48_duplicates", screen(&mut a));
    let contacts = |dir: &std::path::Path| -> i64 {
        backend::scalar(dir, "SELECT count(*) FROM contacts", funnel::db_params![])
    };
    let before = contacts(dir.path());
    // Merge asks first; the merged contact is gone, and undo brings it back.
    key(&mut a, KeyCode::Char('m'));
    assert!(matches!(&a.mode, Mode::Confirm { question, .. }
        if question == "merge ada+news@analytical.example into ada@analytical.example?"));
    key(&mut a, KeyCode::Char('y'));
    assert!(!a.message.clone().expect("message").error);
    assert_eq!(contacts(dir.path()), before - 1);
    assert!(a.contacts.dupes.as_ref().expect("open").pairs.is_empty());
    key(&mut a, KeyCode::Char('u'));
    a.wait_for_background();
    assert_eq!(contacts(dir.path()), before);
    assert_eq!(a.contacts.dupes.as_ref().expect("open").pairs.len(), 1);
    // Dismissed: stored, so it is not offered again, even to the CLI.
    key(&mut a, KeyCode::Char('x'));
    assert!(a.contacts.dupes.as_ref().expect("open").pairs.is_empty());
    let out = super::support::run(&["contacts", "dedupe", "--format", "json"], dir.path());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "[]",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    key(&mut a, KeyCode::Char('u'));
    a.wait_for_background();
    assert_eq!(a.contacts.dupes.as_ref().expect("open").pairs.len(), 1);
    key(&mut a, KeyCode::Esc);
    assert!(a.contacts.dupes.is_none());
}

#[test]
fn forget_asks_first_and_erases_and_export_writes_the_persons_data() {
    let (dir, engine, store) = seeded();
    let mut a = app(source(engine, store), SMALL);
    let out = tempfile::tempdir().expect("tempdir");
    a.export_dir = out.path().to_path_buf();
    key(&mut a, KeyCode::Char('/'));
    keys(&mut a, "grace hopper");
    key(&mut a, KeyCode::Enter);
    key(&mut a, KeyCode::Char('E'));
    let m = a.message.clone().expect("message");
    assert!(!m.error, "{m:?}");
    let file = std::fs::read_dir(out.path())
        .expect("exports")
        .next()
        .expect("one file")
        .expect("entry")
        .path();
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    assert_eq!(data["contact"][0]["email"], "grace@cobol.example");
    key(&mut a, KeyCode::Char('X'));
    assert!(
        matches!(&a.mode, Mode::Confirm { question, .. } if question.contains("cannot be undone"))
    );
    key(&mut a, KeyCode::Char('y'));
    let m = a.message.clone().expect("message");
    assert!(
        !m.error && m.text.starts_with("forgot grace@cobol.example"),
        "{m:?}"
    );
    let left: i64 = backend::scalar(
        dir.path(),
        "SELECT count(*) FROM contacts WHERE email = 'grace@cobol.example'",
        funnel::db_params![],
    );
    assert_eq!(left, 0);
    let audited: String = backend::scalar(
        dir.path(),
        "SELECT actor FROM audit_log WHERE action = 'forget'",
        funnel::db_params![],
    );
    assert_eq!(audited, ACTOR);
}

#[test]
fn a_change_for_a_whole_filter_names_the_count_and_changes_exactly_those() {
    let (dir, engine, store) = seeded();
    let mut a = app(source(engine, store), SMALL);
    key(&mut a, KeyCode::Char('A'));
    assert!(a.message.clone().expect("refused without a filter").error);
    key(&mut a, KeyCode::Char('f'));
    keys(&mut a, "plan=pro");
    key(&mut a, KeyCode::Enter);
    a.wait_for_background();
    assert_eq!(a.contacts.matching, Some(12));
    key(&mut a, KeyCode::Char('A'));
    keys(&mut a, "tag pro-q4");
    key(&mut a, KeyCode::Enter);
    assert!(
        matches!(&a.mode, Mode::Confirm { question, .. }
        if question == "add tag pro-q4 for all 12 contact(s) of `plan=pro`?"),
        "{:?}",
        a.mode
    );
    key(&mut a, KeyCode::Char('y'));
    let tagged: i64 = backend::scalar(
        dir.path(),
        "SELECT count(*) FROM contact_tags WHERE tag = 'pro-q4'",
        funnel::db_params![],
    );
    assert_eq!(tagged, 12);
}

#[test]
fn it_works_beside_the_daemon_on_the_same_store() {
    let (dir, engine, store) = seeded();
    let daemon = super::daemon::up(dir.path());
    let mut a = app(source(engine, store), LARGE);
    // A visitor's form post through the daemon shows in the open list.
    assert_eq!(daemon.post_form("visitor@daemon.example"), 303);
    let mut shown = false;
    for _ in 0..4 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        a.tick();
        if a.contacts.rows[0].email == "visitor@daemon.example" {
            shown = true;
            break;
        }
    }
    assert!(
        shown,
        "top: {:?}",
        a.contacts.rows.first().map(|r| &r.email)
    );
    // The selection stayed on its contact; the newcomer is above it.
    assert_eq!(
        a.contacts.selected().expect("selected").email,
        "ola@example.org"
    );
    key(&mut a, KeyCode::Char('g'));
    assert_eq!(
        a.contacts.selected().expect("selected").email,
        "visitor@daemon.example"
    );
    // A change from the TUI while the daemon writes too.
    key(&mut a, KeyCode::Char('t'));
    keys(&mut a, "met-at-booth");
    key(&mut a, KeyCode::Enter);
    let m = a.message.clone().expect("message");
    assert!(!m.error, "{m:?}");
    assert_eq!(daemon.post_form("second@daemon.example"), 303);
    let tagged: i64 = backend::scalar(
        dir.path(),
        "SELECT count(*) FROM contact_tags t JOIN contacts c ON c.id = t.contact_id \
         WHERE c.email = 'visitor@daemon.example' AND t.tag = 'met-at-booth'",
        funnel::db_params![],
    );
    assert_eq!(tagged, 1);
}

#[test]
fn marked_contacts_change_together_after_a_confirmation() {
    let (dir, engine, store) = seeded();
    let mut a = app(source(engine, store), SMALL);
    key(&mut a, KeyCode::Char('a'));
    assert!(a.message.clone().expect("nothing marked").error);
    // Space marks and moves on: the first two contacts.
    key(&mut a, KeyCode::Char(' '));
    key(&mut a, KeyCode::Char(' '));
    assert_eq!(a.contacts.marked.len(), 2);
    assert!(screen(&mut a).contains("2 marked"));
    key(&mut a, KeyCode::Char('a'));
    keys(&mut a, "nonsense here");
    key(&mut a, KeyCode::Enter);
    assert!(
        a.message
            .clone()
            .expect("a bad line")
            .text
            .contains("`nonsense` is not a change")
    );
    key(&mut a, KeyCode::Char('a'));
    keys(&mut a, "field plan=enterprise");
    key(&mut a, KeyCode::Enter);
    assert!(
        matches!(&a.mode, Mode::Confirm { question, .. }
        if question == "set plan = \"enterprise\" for 2 marked contact(s)?"),
        "{:?}",
        a.mode
    );
    key(&mut a, KeyCode::Char('y'));
    let n: i64 = backend::scalar(
        dir.path(),
        "SELECT count(*) FROM contact_fields WHERE field = 'plan' AND value_text = 'enterprise'",
        funnel::db_params![],
    );
    assert_eq!(n, 2);
    let audited: String = backend::scalar(
        dir.path(),
        "SELECT actor FROM audit_log WHERE action = 'bulk'",
        funnel::db_params![],
    );
    assert_eq!(audited, ACTOR);
}

#[test]
fn the_mouse_wheel_scrolls_and_a_resize_refits_the_page() {
    use ratatui::crossterm::event::{MouseEvent, MouseEventKind};
    let (_dir, engine, store) = seeded();
    let mut a = app(source(engine, store), SMALL);
    let wheel = |a: &mut App, kind| {
        a.mouse(MouseEvent {
            kind,
            column: 40,
            row: 10,
            modifiers: KeyModifiers::NONE,
        });
    };
    wheel(&mut a, MouseEventKind::ScrollDown);
    wheel(&mut a, MouseEventKind::ScrollDown);
    assert_eq!(a.contacts.table.selected(), Some(2));
    wheel(&mut a, MouseEventKind::ScrollUp);
    assert_eq!(a.contacts.table.selected(), Some(1));
    // 80×24 holds 19 rows; 160×48 holds 28 contacts, all of them.
    assert_eq!(a.contacts.rows.len(), 19);
    a.resize(160, 48);
    assert_eq!(a.contacts.page, 43);
    assert_eq!(a.contacts.rows.len(), 28);
    assert!(
        a.contacts.detail.is_some(),
        "wide enough for the detail pane"
    );
    let text = screen(&mut a);
    assert!(text.contains("ada@analytical.example"), "{text}");
    a.resize(80, 24);
    assert_eq!(a.contacts.page, 19);
    assert!(screen(&mut a).lines().count() >= 24);
}

#[test]
fn without_color_nothing_is_told_by_color_alone() {
    use ratatui::style::Color;
    let (_dir, engine, store) = seeded();
    let src = source(engine, store);
    for color in [true, false] {
        let mut a = App::new(src.clone(), Theme::new(color), 80, 24);
        let mut term = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        term.draw(|f| a.render(f)).expect("draw");
        let colored = term
            .backend()
            .buffer()
            .content()
            .iter()
            .any(|c| c.fg != Color::Reset || c.bg != Color::Reset);
        assert_eq!(colored, color, "color {color}");
    }
}
