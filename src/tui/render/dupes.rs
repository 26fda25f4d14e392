//! The duplicates queue: the pairs, and the selected pair side by side.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, TableState};

use super::{ago, pane, when};
use crate::crm::directory::Summary;
use crate::tui::dupes::Dupes;
use crate::tui::theme::Theme;

pub fn render(t: Theme, now: i64, d: &Dupes, f: &mut Frame<'_>, area: Rect) {
    let title = if d.loading {
        " duplicates · looking… ".to_string()
    } else {
        format!(" duplicates · {} pair(s) ", d.pairs.len())
    };
    if d.pairs.is_empty() {
        let text = if d.loading {
            "reading every contact for likely duplicates…"
        } else {
            "no likely duplicates"
        };
        f.render_widget(
            Paragraph::new(Span::styled(text, t.dim())).block(pane(t, title, true)),
            area,
        );
        return;
    }
    let [list, sides] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let rows: Vec<Row> = d
        .pairs
        .iter()
        .map(|p| {
            Row::new(vec![
                Span::raw(format!("{:.2}", p.score)),
                Span::raw(p.a.email.clone()),
                Span::raw(p.b.email.clone()),
                Span::styled(p.reason.clone(), t.dim()),
            ])
        })
        .collect();
    let mut state = TableState::default().with_selected(Some(d.selected));
    f.render_stateful_widget(
        Table::new(
            rows,
            [
                Constraint::Length(5),
                Constraint::Percentage(35),
                Constraint::Percentage(35),
                Constraint::Min(10),
            ],
        )
        .header(Row::new(vec!["SCORE", "KEEP (m)", "OR KEEP (M)", "WHY"]).style(t.dim()))
        .block(pane(t, title, true))
        .row_highlight_style(t.selected()),
        list,
        &mut state,
    );
    let Some(p) = d.current() else { return };
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(sides);
    for (s, area, key) in [
        (&p.a, left, "m keeps this one"),
        (&p.b, right, "M keeps this one"),
    ] {
        f.render_widget(
            Paragraph::new(side(t, now, s)).block(pane(t, format!(" {key} "), false)),
            area,
        );
    }
}

fn side(t: Theme, now: i64, s: &Summary) -> Vec<Line<'static>> {
    vec![
        Line::from(Span::styled(s.email.clone(), t.title())),
        Line::from(s.name.clone().unwrap_or_else(|| "-".into())),
        Line::from(vec![
            Span::styled(s.status.clone(), t.status(&s.status)),
            Span::raw(format!("  stage {}", s.stage.as_deref().unwrap_or("-"))),
        ]),
        Line::from(format!(
            "created {}  last {}",
            when(s.created_at),
            s.last_activity.map_or("-".into(), |a| ago(now, a))
        )),
        Line::from(format!("source {}", s.source.as_deref().unwrap_or("-"))),
    ]
}
