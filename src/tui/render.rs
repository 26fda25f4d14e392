//! Drawing the app: the tab bar, the open view, the bottom line (hints, a
//! prompt, a question or a message) and the help overlay. Every screen fits
//! 80×24; wider screens get more columns and a detail pane.

mod campaigns;
mod contacts;
mod dashboard;
mod deals;
mod dupes;
mod executions;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table};

use super::app::{App, Mode, ViewId};
use super::theme::Theme;
use crate::store::UnixMs;

pub fn frame(app: &mut App, f: &mut Frame<'_>) {
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(f.area());
    tabs(app, f, top);
    match app.view {
        ViewId::Contacts => contacts::render(app, f, body),
        ViewId::Deals => deals::render(app, f, body),
        ViewId::Campaigns => campaigns::render(app, f, body),
        ViewId::Executions => executions::render(app, f, body),
        ViewId::Dashboard => dashboard::render(app, f, body),
    }
    footer(app, f, bottom);
    if app.help {
        help(app, f, body);
    }
}

fn tabs(app: &App, f: &mut Frame<'_>, area: Rect) {
    let t = app.theme;
    let mut spans = vec![Span::styled(" funnel ", t.title())];
    for (i, v) in ViewId::ALL.iter().enumerate() {
        let label = format!(" {} {} ", i + 1, v.name());
        spans.push(if *v == app.view {
            Span::styled(label, t.selected())
        } else {
            Span::raw(label)
        });
    }
    let info = app.source.info();
    let who = info.actor.as_deref().unwrap_or("read-only");
    let right = format!("{} · {who} ", info.location);
    let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    let width = usize::from(area.width);
    if used + right.chars().count() < width {
        spans.push(Span::raw(" ".repeat(width - used - right.chars().count())));
        spans.push(Span::styled(right, t.dim()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn footer(app: &App, f: &mut Frame<'_>, area: Rect) {
    let t = app.theme;
    let line = match &app.mode {
        Mode::Prompt { ask, text } => Line::from(vec![
            Span::styled(ask.label(), t.key()),
            Span::raw(text.clone()),
            Span::styled("█", t.dim()),
        ]),
        Mode::Confirm { question, .. } => Line::from(vec![
            Span::styled(question.clone(), t.key()),
            Span::raw("  y/n"),
        ]),
        Mode::Normal => match &app.message {
            Some(m) => Line::from(Span::styled(
                m.text.clone(),
                if m.error { t.error() } else { t.ok() },
            )),
            None => hints(app),
        },
    };
    f.render_widget(Paragraph::new(line), area);
}

fn hints(app: &App) -> Line<'static> {
    let t = app.theme;
    let mut spans = Vec::new();
    let keys = current_keys(app)
        .iter()
        .take(5)
        .chain([("?", "help"), ("q", "quit")].iter());
    for (k, what) in keys {
        let what = what
            .split([',', ' '])
            .next()
            .unwrap_or(what)
            .trim_end_matches(':');
        spans.push(Span::styled((*k).to_string(), t.key()));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    Line::from(spans)
}

fn help(app: &App, f: &mut Frame<'_>, body: Rect) {
    let t = app.theme;
    let keys: Vec<&(&str, &str)> = current_keys(app)
        .iter()
        .chain(super::help::GLOBAL)
        .collect();
    // Two columns when one does not fit the height.
    let per_column = if keys.len() + 2 > usize::from(body.height) {
        keys.len().div_ceil(2)
    } else {
        keys.len()
    };
    let two = per_column < keys.len();
    let rows: Vec<Row> = (0..per_column)
        .map(|i| {
            let mut cells = Vec::new();
            for k in [keys.get(i), keys.get(i + per_column).filter(|_| two)]
                .into_iter()
                .flatten()
            {
                cells.push(Span::styled(k.0.to_string(), t.key()));
                cells.push(Span::raw(k.1.to_string()));
            }
            Row::new(cells)
        })
        .collect();
    let height = (u16::try_from(rows.len()).unwrap_or(u16::MAX) + 2).min(body.height);
    let width = body.width.min(if two { 120 } else { 64 });
    let area = Rect {
        x: body.x + (body.width - width) / 2,
        y: body.y + (body.height - height) / 2,
        width,
        height,
    };
    f.render_widget(Clear, area);
    let title = format!(" keys: {} (Esc closes) ", app.view.name());
    f.render_widget(
        Table::new(
            rows,
            if two {
                vec![
                    Constraint::Length(9),
                    Constraint::Min(10),
                    Constraint::Length(9),
                    Constraint::Min(10),
                ]
            } else {
                vec![Constraint::Length(10), Constraint::Min(10)]
            },
        )
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(t.focused_border())
                .title(Span::styled(title, t.title())),
        ),
        area,
    );
}

/// The keys of what is on screen: a view, or the duplicates queue inside one.
fn current_keys(app: &App) -> &'static [(&'static str, &'static str)] {
    if app.view == ViewId::Contacts && app.contacts.dupes.is_some() {
        super::help::DUPLICATES
    } else {
        super::help::keys(app.view)
    }
}

/// A bordered block, brighter when it has the focus.
fn pane(t: Theme, title: String, focused: bool) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(if focused {
            t.focused_border()
        } else {
            t.border()
        })
        .title(Span::styled(
            title,
            if focused { t.title() } else { t.dim() },
        ))
}

/// How long ago, in the largest unit that fits: `now`, `5m`, `3h`, `2d`, `7w`.
pub fn ago(now: UnixMs, then: UnixMs) -> String {
    let s = (now - then).max(0) / 1000;
    match s {
        0..60 => "now".into(),
        60..3_600 => format!("{}m", s / 60),
        3_600..86_400 => format!("{}h", s / 3_600),
        86_400..1_209_600 => format!("{}d", s / 86_400),
        _ => format!("{}w", s / 604_800),
    }
}

/// A time as `2026-12-05 14:03` (UTC).
pub fn when(ms: UnixMs) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// A number with thousands separators: 1,234,567.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// JSON as one line with its keys sorted, so a value reads the same whichever
/// backend stored it (PostgreSQL's JSONB orders keys its own way).
pub fn json_line(v: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                serde_json::Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// `text` cut to `width` characters, with an ellipsis when cut.
pub fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut t: String = text.chars().take(width.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name from a web form may carry terminal escapes (an OSC 52 clipboard
    /// write, a screen clear): none may reach the terminal.
    #[test]
    fn control_characters_in_stored_text_never_reach_the_terminal() {
        use ratatui::Terminal;
        use ratatui::backend::TestBackend;
        let hostile = "Eve\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\u{9b}31m\r\nX";
        let mut term = Terminal::new(TestBackend::new(40, 3)).expect("terminal");
        term.draw(|f| {
            f.render_widget(Paragraph::new(Line::from(hostile)), f.area());
        })
        .expect("draw");
        let buffer = term.backend().buffer();
        for cell in buffer.content() {
            assert!(
                !cell.symbol().chars().any(char::is_control),
                "{:?} reached the screen",
                cell.symbol()
            );
        }
    }

    #[test]
    fn numbers_and_times_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(ago(100_000, 100_000), "now");
        assert_eq!(ago(3 * 3_600_000, 0), "3h");
        assert_eq!(ago(2 * 86_400_000 + 5, 0), "2d");
        assert_eq!(ago(30 * 86_400_000, 0), "4w");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
        assert_eq!(when(0), "1970-01-01 00:00");
    }
}
