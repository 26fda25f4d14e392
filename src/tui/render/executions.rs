//! The executions view: workflows with their counts, the executions, and one
//! execution's step timeline.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Row, Table, TableState, Wrap};

use super::{ago, cut, json_line, pane, when};
use crate::tui::app::App;
use crate::tui::executions::{Pane, STATUSES};

pub fn render(app: &mut App, f: &mut Frame<'_>, area: Rect) {
    let t = app.theme;
    let now = app.source.now();
    let e = &app.executions;
    if let Some(d) = &e.detail {
        let x = &d.execution;
        let mut lines = vec![
            Line::from(vec![
                Span::styled(x.workflow.clone(), t.title()),
                Span::raw("  "),
                Span::styled(x.status.clone(), t.status(&x.status)),
                Span::raw(format!(
                    "  contact {}  started {}",
                    x.contact.as_deref().unwrap_or("-"),
                    when(x.started_at)
                )),
            ]),
            Line::from(format!("trigger {}", cut(&json_line(&d.trigger), 300))),
        ];
        if let Some(err) = &x.error {
            lines.push(Line::from(Span::styled(format!("error {err}"), t.error())));
        }
        lines.push(Line::from(Span::styled("steps", t.title())));
        for s in &d.steps {
            let took = s
                .finished_at
                .map_or("…".into(), |end| format!("{} ms", end - s.started_at));
            lines.push(Line::from(vec![
                Span::raw(format!("  {} ", when(s.started_at))),
                Span::styled(format!("{:<10}", s.status), t.status(&s.status)),
                Span::raw(format!(" {} (attempt {}, {took})", s.step, s.attempt)),
            ]));
            if let Some(err) = &s.error {
                lines.push(Line::from(Span::styled(
                    format!("      error {err}"),
                    t.error(),
                )));
            }
            if let Some(out) = &s.output {
                lines.push(Line::from(Span::styled(
                    format!("      output {}", cut(&json_line(out), 400)),
                    t.dim(),
                )));
            }
        }
        lines.push(Line::from(format!(
            "vars {}",
            cut(&json_line(&d.vars), 400)
        )));
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .scroll((e.detail_scroll, 0))
                .block(pane(t, format!(" execution of {} ", x.workflow), true)),
            area,
        );
        return;
    }
    let side = if area.width >= 120 { 44 } else { 30 };
    let [left, right] =
        Layout::horizontal([Constraint::Length(side), Constraint::Min(20)]).areas(area);
    let width = usize::from(left.width.saturating_sub(2));
    let items: Vec<ListItem> = e
        .workflows
        .iter()
        .map(|w| {
            let counts = format!(
                "{}▶ {}⏸ {}✗ {}✓",
                w.running, w.waiting, w.failed, w.completed
            );
            let name = cut(
                &w.workflow,
                width.saturating_sub(counts.chars().count() + 1),
            );
            let pad = width.saturating_sub(name.chars().count() + counts.chars().count());
            ListItem::new(Line::from(vec![
                Span::raw(format!("{name}{}", " ".repeat(pad))),
                Span::styled(counts, t.dim()),
            ]))
        })
        .collect();
    let mut ws = ListState::default().with_selected(Some(e.workflow));
    let focused = e.pane == Pane::Workflows;
    f.render_stateful_widget(
        List::new(items)
            .block(pane(t, " workflows · 30 days ".into(), focused))
            .highlight_style(if focused {
                t.selected()
            } else {
                t.selected_idle()
            }),
        left,
        &mut ws,
    );
    let wide = right.width >= 90;
    let rows: Vec<Row> = e
        .rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                Span::raw(r.workflow.clone()),
                Span::styled(r.status.clone(), t.status(&r.status)),
                Span::raw(r.contact.clone().unwrap_or_else(|| "-".into())),
                Span::raw(ago(now, r.started_at)),
            ];
            if wide {
                cells.push(Span::styled(r.error.clone().unwrap_or_default(), t.error()));
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(if wide { 26 } else { 14 }),
        Constraint::Length(9),
        Constraint::Min(12),
        Constraint::Length(4),
    ];
    let mut header = vec!["WORKFLOW", "STATUS", "CONTACT", "AGO"];
    if wide {
        widths.push(Constraint::Min(20));
        header.push("ERROR");
    }
    let status = STATUSES[e.status].unwrap_or("all");
    let title = format!(" executions · {status} · {} shown ", e.rows.len());
    let focused = e.pane == Pane::List;
    let mut state = TableState::default().with_selected((!e.rows.is_empty()).then_some(e.selected));
    f.render_stateful_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(t.dim()))
            .block(pane(t, title, focused))
            .row_highlight_style(if focused {
                t.selected()
            } else {
                t.selected_idle()
            }),
        right,
        &mut state,
    );
}
