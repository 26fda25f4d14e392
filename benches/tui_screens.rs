//! Benchmark: the TUI on a store of 1,000,000 contacts and 10,000,000 activities
//! (interleaved in time), drawn into a 160×48 `TestBackend` by the same code the
//! terminal runs. Measures:
//!
//! - the first screen: opening the store, the app's first page and its detail
//!   pane, drawn (the segment counts fill in afterwards, in the background);
//! - each keystroke of a search as you type, until the screen is redrawn;
//! - a filter of about 100,000 contacts (`plan=pro tag:newsletter`): its first
//!   page, the jump to its end (one reverse keyset query), and each page up
//!   from there and down from the top; the same for two of the demo's segments.
//!
//! `cargo bench --bench tui_screens` (`-- --contacts N --seed S --store FILE`);
//! the generated store is kept at `target/tui-bench.db` and reused while it has
//! the asked number of contacts. Figures are in docs/tui.md.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use funnel::desk::Source;
use funnel::desk::local::Local;
use funnel::model::config::Synchronous;
use funnel::store::{Store, StoreLocation};
use funnel::tui::app::App;
use funnel::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[path = "support/crm_data.rs"]
#[allow(dead_code)]
mod crm_data;
use crm_data::{DAY, generate};

fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn draw(term: &mut Terminal<TestBackend>, app: &mut App) {
    term.draw(|f| app.render(f)).expect("draw");
}

fn press(term: &mut Terminal<TestBackend>, app: &mut App, code: KeyCode) -> f64 {
    let t = Instant::now();
    app.key(KeyEvent::new(code, KeyModifiers::NONE));
    draw(term, app);
    assert!(
        !app.message.as_ref().is_some_and(|m| m.error),
        "{:?}",
        app.message
    );
    t.elapsed().as_secs_f64() * 1000.0
}

fn report(label: &str, times: &[f64]) {
    let mut t = times.to_vec();
    t.sort_by(f64::total_cmp);
    println!(
        "{label}: median {:.1} ms, worst {:.1} ms ({} runs)",
        t[t.len() / 2],
        t[t.len() - 1],
        t.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench tui_screens` to measure");
        return;
    }
    let n: u64 = flag(&args, "--contacts").unwrap_or(1_000_000);
    let seed: u64 = flag(&args, "--seed").unwrap_or(7);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path: PathBuf = flag::<String>(&args, "--store")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target/tui-bench.db"));
    let now = 1_767_225_600_000i64 + 120 * DAY;
    let have: Option<i64> = rusqlite::Connection::open(&path).ok().and_then(|c| {
        c.query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))
            .ok()
    });
    if have != Some(i64::try_from(n).unwrap_or(0)) {
        let _ = std::fs::remove_file(&path);
        let t = Instant::now();
        generate(&path, seed, n, now, false);
        println!(
            "generated {} (seed {seed}) in {:.1} s",
            path.display(),
            t.elapsed().as_secs_f64()
        );
    } else {
        println!("reusing {} ({n} contacts)", path.display());
    }
    let ws = funnel::workspace::load(repo, repo).expect("demo workspace");
    let engine = Arc::new(funnel::engine::Engine::from_workspace(&ws).expect("engine"));
    let location = StoreLocation::Sqlite {
        path: path.clone(),
        synchronous: Synchronous::Full,
    };

    // 1. The first screen, five times (the first with a cold page cache for the
    // process; the file's pages may be in the OS cache from generating it).
    let mut firsts = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let store = Store::open_blocking(&location).expect("store");
        let source: Arc<dyn Source> = Arc::new(
            Local::new(store, engine.clone(), "bench".into(), Some("bench".into()))
                .expect("source")
                .at(now),
        );
        let mut app = App::new(source, Theme::new(true), 160, 48);
        let mut term = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
        draw(&mut term, &mut app);
        firsts.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(app.contacts.rows.len(), app.contacts.page);
        let t = Instant::now();
        app.wait_for_background();
        println!(
            "  first screen {:.1} ms; segment counts {:.0} ms later in the background: {:?}",
            firsts[firsts.len() - 1],
            t.elapsed().as_secs_f64() * 1000.0,
            app.contacts.counts()
        );
    }
    report("first screen (open, first page, detail, draw)", &firsts);

    let store = Store::open_blocking(&location).expect("store");
    let source: Arc<dyn Source> = Arc::new(
        Local::new(store, engine.clone(), "bench".into(), Some("bench".into()))
            .expect("source")
            .at(now),
    );
    let mut app = App::new(source, Theme::new(true), 160, 48);
    app.wait_for_background();
    let mut term = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    draw(&mut term, &mut app);

    // 2. Search as you type: each keystroke to the redrawn screen.
    let mut keys = Vec::new();
    for query in ["lena fi", "okafor ch", "co4", "ramí", "zo"] {
        press(&mut term, &mut app, KeyCode::Char('/'));
        let mut each = Vec::new();
        for c in query.chars() {
            let ms = press(&mut term, &mut app, KeyCode::Char(c));
            keys.push(ms);
            each.push(format!("{ms:.1}"));
        }
        println!(
            "  search {query:?}: {} shown; keystrokes {} ms",
            app.contacts.rows.len(),
            each.join(", ")
        );
        press(&mut term, &mut app, KeyCode::Esc);
    }
    report("search keystroke (query and redraw)", &keys);

    // 3. A filter of about 100,000 contacts: first page, end, pages.
    press(&mut term, &mut app, KeyCode::Char('f'));
    for c in "plan=pro tag:newsletter".chars() {
        press(&mut term, &mut app, KeyCode::Char(c));
    }
    let first_page = press(&mut term, &mut app, KeyCode::Enter);
    app.wait_for_background();
    println!(
        "filter plan=pro tag:newsletter: {:?} contacts; first page {first_page:.1} ms",
        app.contacts.matching
    );
    let end = press(&mut term, &mut app, KeyCode::End);
    println!("  jump to the end: {end:.1} ms");
    let mut up = Vec::new();
    for _ in 0..20 {
        up.push(press(&mut term, &mut app, KeyCode::PageUp));
    }
    report("page up from the end", &up);
    press(&mut term, &mut app, KeyCode::Home);
    let mut down = Vec::new();
    for _ in 0..20 {
        down.push(press(&mut term, &mut app, KeyCode::PageDown));
    }
    report("page down from the top", &down);
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines.push(press(&mut term, &mut app, KeyCode::Char('j')));
    }
    report("line down past the page (one keyset row)", &lines);

    // 4. The demo's segments of about 85,000 and 250,000 contacts, chosen in
    // the sidebar: one with an email condition (opened nothing in 90 days), one
    // of fields.
    press(&mut term, &mut app, KeyCode::Esc);
    for segment in ["dormant-subscribers", "enterprise-prospects"] {
        let at = app
            .contacts
            .segments
            .iter()
            .position(|s| s.id.as_deref() == Some(segment))
            .expect("the demo's segment");
        app.contacts.segment_cursor = at;
        app.contacts.pane = funnel::tui::contacts::Pane::Segments;
        let first = press(&mut term, &mut app, KeyCode::Enter);
        let end = press(&mut term, &mut app, KeyCode::End);
        let mut up = Vec::new();
        for _ in 0..20 {
            up.push(press(&mut term, &mut app, KeyCode::PageUp));
        }
        let n = app.contacts.segments[at].count.clone();
        println!("segment {segment} ({n:?}): first page {first:.1} ms, end {end:.1} ms");
        report("  page up from its end", &up);
    }
}
