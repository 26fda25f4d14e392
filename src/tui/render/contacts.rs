//! The contacts view: sidebar, list and detail.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Row, Table, Wrap};
use serde_json::Value as Json;

use super::{ago, cut, pane, thousands, when};
use crate::desk::ContactDetail;
use crate::tui::app::App;
use crate::tui::contacts::Pane;
use crate::tui::theme::Theme;

pub fn render(app: &mut App, f: &mut Frame<'_>, area: Rect) {
    let t = app.theme;
    let now = app.source.now();
    let c = &mut app.contacts;
    if c.detail_open && !c.wide {
        detail(t, now, c.detail.as_ref(), c.detail_scroll, true, f, area);
        return;
    }
    let side = if c.wide { 30 } else { 22 };
    let [left, rest] =
        Layout::horizontal([Constraint::Length(side), Constraint::Min(20)]).areas(area);
    sidebar(app, f, left);
    let c = &mut app.contacts;
    if let Some(d) = &c.dupes {
        super::dupes::render(t, now, d, f, rest);
        return;
    }
    if c.wide {
        let [list_area, detail_area] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(rest);
        list(t, now, c, f, list_area);
        detail(
            t,
            now,
            c.detail.as_ref(),
            c.detail_scroll,
            c.pane == Pane::Detail,
            f,
            detail_area,
        );
    } else {
        list(t, now, c, f, rest);
    }
}

fn sidebar(app: &App, f: &mut Frame<'_>, area: Rect) {
    let t = app.theme;
    let c = &app.contacts;
    let width = usize::from(area.width.saturating_sub(2));
    let items: Vec<ListItem> = c
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let count = match &s.count {
                None => "…".to_string(),
                Some(Ok(n)) => thousands(*n),
                Some(Err(_)) => "!".to_string(),
            };
            let mark = if i == c.segment { "▸" } else { " " };
            let name_w = width.saturating_sub(count.chars().count() + 2);
            let name = cut(s.label(), name_w);
            let pad = width.saturating_sub(name.chars().count() + count.chars().count() + 1);
            ListItem::new(Line::from(vec![
                Span::raw(format!("{mark}{name}{}", " ".repeat(pad))),
                Span::styled(count, t.dim()),
            ]))
        })
        .collect();
    let focused = c.pane == Pane::Segments;
    let mut state = ListState::default().with_selected(Some(c.segment_cursor));
    f.render_stateful_widget(
        List::new(items)
            .block(pane(t, " segments ".into(), focused))
            .highlight_style(if focused {
                t.selected()
            } else {
                t.selected_idle()
            }),
        area,
        &mut state,
    );
}

fn list(t: Theme, now: i64, c: &mut crate::tui::contacts::Contacts, f: &mut Frame<'_>, area: Rect) {
    let wide = area.width >= 90;
    let header: Vec<&str> = if wide {
        vec!["", "EMAIL", "NAME", "STATUS", "STAGE", "SOURCE", "LAST"]
    } else {
        vec!["", "EMAIL", "NAME", "STATUS", "LAST"]
    };
    let rows: Vec<Row> = c
        .rows
        .iter()
        .map(|s| {
            let mark = if c.marked.contains(&s.id) { "●" } else { " " };
            let last = s.last_activity.map_or("-".into(), |a| ago(now, a));
            let mut cells = vec![
                Span::styled(mark, t.marked()),
                Span::raw(s.email.clone()),
                Span::raw(s.name.clone().unwrap_or_default()),
                Span::styled(s.status.clone(), t.status(&s.status)),
            ];
            if wide {
                cells.push(Span::raw(s.stage.clone().unwrap_or_default()));
                cells.push(Span::raw(s.source.clone().unwrap_or_default()));
            }
            cells.push(Span::raw(last));
            Row::new(cells)
        })
        .collect();
    let widths: Vec<Constraint> = if wide {
        vec![
            Constraint::Length(1),
            Constraint::Min(18),
            Constraint::Length(18),
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Length(14),
            Constraint::Length(4),
        ]
    } else {
        vec![
            Constraint::Length(1),
            Constraint::Min(16),
            Constraint::Length(12),
            Constraint::Length(8),
            Constraint::Length(4),
        ]
    };
    let mut title = String::from(" contacts");
    if !c.query.is_empty() {
        title.push_str(&format!(" · search “{}” · {} found", c.query, c.rows.len()));
    } else {
        if let Some(seg) = c.segments.get(c.segment).and_then(|s| s.id.as_ref()) {
            title.push_str(&format!(" · {seg}"));
        }
        if !c.filter_text.is_empty() {
            title.push_str(&format!(" · {}", c.filter_text));
        }
        if let Some(n) = c.matching {
            title.push_str(&format!(" · {}", thousands(n)));
        }
        title.push_str(" · newest first");
    }
    if !c.marked.is_empty() {
        title.push_str(&format!(" · {} marked", c.marked.len()));
    }
    title.push(' ');
    let focused = c.pane == Pane::List;
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.dim()))
        .block(pane(
            t,
            cut(&title, usize::from(area.width.saturating_sub(2))),
            focused,
        ))
        .row_highlight_style(if focused {
            t.selected()
        } else {
            t.selected_idle()
        });
    if c.rows.is_empty() {
        let empty = if c.query.is_empty() {
            "no contacts match"
        } else {
            "no contact matches every word"
        };
        f.render_widget(
            Paragraph::new(Span::styled(empty, t.dim())).block(pane(t, title, focused)),
            area,
        );
        return;
    }
    f.render_stateful_widget(table, area, &mut c.table);
}

fn detail(
    t: Theme,
    now: i64,
    d: Option<&ContactDetail>,
    scroll: u16,
    focused: bool,
    f: &mut Frame<'_>,
    area: Rect,
) {
    let Some(d) = d else {
        f.render_widget(
            Paragraph::new(Span::styled("no contact selected", t.dim())).block(pane(
                t,
                " contact ".into(),
                focused,
            )),
            area,
        );
        return;
    };
    let v = &d.view;
    let s = &d.summary;
    let text = |k: &str| v.get(k).and_then(Json::as_str).unwrap_or("-").to_string();
    let label = |l: &str| Span::styled(format!("{l:<9}"), t.dim());
    let mut lines = vec![
        Line::from(vec![
            Span::styled(s.name.clone().unwrap_or_else(|| s.email.clone()), t.title()),
            Span::raw(format!("  <{}>", s.email)),
        ]),
        Line::from(vec![
            label("status"),
            Span::styled(s.status.clone(), t.status(&s.status)),
            Span::raw(format!(
                "  stage {}  score {}",
                s.stage.as_deref().unwrap_or("-"),
                v.get("score").map_or("-".into(), Json::to_string)
            )),
        ]),
        Line::from(vec![
            label("source"),
            Span::raw(format!(
                "{}  created {}  last {}",
                text("source"),
                when(s.created_at),
                s.last_activity.map_or("-".into(), |a| ago(now, a))
            )),
        ]),
        Line::from(vec![label("tags"), Span::raw(joined(v.get("tags")))]),
        Line::from(vec![label("lists"), Span::raw(joined(v.get("lists")))]),
    ];
    if let Some(Json::Object(fields)) = v.get("fields")
        && !fields.is_empty()
    {
        let shown: Vec<String> = fields
            .iter()
            .map(|(k, v)| match v {
                Json::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        lines.push(Line::from(vec![
            label("fields"),
            Span::raw(shown.join("  ")),
        ]));
    }
    lines.push(Line::from(vec![
        label("score"),
        Span::raw(score_parts(&d.score)),
    ]));
    if d.deals.is_empty() {
        lines.push(Line::from(vec![
            label("deals"),
            Span::styled("none", t.dim()),
        ]));
    }
    for deal in &d.deals {
        lines.push(Line::from(vec![
            label("deal"),
            Span::raw(format!(
                "{} / {} {}",
                deal.pipeline,
                deal.stage,
                deal.value.map_or(String::new(), |v| format!("{v:.2}"))
            )),
            Span::raw(" "),
            Span::styled(deal.status.clone(), t.status(&deal.status)),
        ]));
    }
    for c in &d.consent {
        lines.push(Line::from(vec![
            label("consent"),
            Span::raw(format!(
                "{} {} {} {}",
                c.purpose,
                if c.granted { "granted" } else { "withdrawn" },
                c.source.as_deref().unwrap_or(""),
                when(c.recorded_at)
            )),
        ]));
    }
    lines.push(Line::from(Span::styled("timeline", t.title())));
    if d.timeline.is_empty() {
        lines.push(Line::from(Span::styled("  nothing yet", t.dim())));
    }
    for a in &d.timeline {
        lines.push(Line::from(vec![
            Span::styled(format!("  {:>4} ", ago(now, a.occurred_at)), t.dim()),
            Span::raw(a.kind.clone()),
            Span::raw(format!(" {}", a.subject.as_deref().unwrap_or(""))),
            Span::styled(
                a.source
                    .as_ref()
                    .map_or(String::new(), |s| format!("  {s}")),
                t.dim(),
            ),
        ]));
    }
    let title = format!(" {} ", s.email);
    f.render_widget(
        Paragraph::new(lines)
            .block(pane(t, title, focused))
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        area,
    );
}

fn joined(v: Option<&Json>) -> String {
    match v.and_then(Json::as_array) {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".into(),
    }
}

/// The score's explanation on one line: `fit vip +10 · engagement form +5`.
fn score_parts(e: &Json) -> String {
    let mut parts = Vec::new();
    for (kind, key) in [("fit", "fit"), ("engaged", "engagement")] {
        for r in e.get(key).and_then(Json::as_array).into_iter().flatten() {
            let name = r.get("rule").and_then(Json::as_str).unwrap_or("?");
            let points = r.get("points").and_then(Json::as_f64).unwrap_or(0.0);
            parts.push(format!("{kind} {name} {points:+}"));
        }
    }
    let band = e.get("band").and_then(Json::as_str).unwrap_or("");
    let score = e.get("score").map_or("-".into(), Json::to_string);
    let mut out = format!("{score} {band}");
    if !parts.is_empty() {
        out.push_str(" = ");
        out.push_str(&parts.join(" · "));
    }
    out.trim().to_string()
}
