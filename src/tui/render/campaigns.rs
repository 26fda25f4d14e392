//! The campaigns view: the list, and the selected campaign's plan or its
//! numbers per variant as bars.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Paragraph, Row, Table, TableState};

use super::{pane, thousands};
use crate::tui::app::App;

pub fn render(app: &mut App, f: &mut Frame<'_>, area: Rect) {
    let t = app.theme;
    let c = &app.campaigns;
    let [list, detail] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
    let rows: Vec<Row> = c
        .rows
        .iter()
        .map(|r| {
            Row::new(vec![
                Span::raw(r.key.clone()),
                Span::styled(r.status.clone(), t.status(&r.status)),
                Span::raw(
                    r.recipients
                        .map_or("-".into(), |n| thousands(n.max(0) as u64)),
                ),
            ])
        })
        .collect();
    let mut state = TableState::default().with_selected((!c.rows.is_empty()).then_some(c.selected));
    f.render_stateful_widget(
        Table::new(
            rows,
            [
                Constraint::Min(12),
                Constraint::Length(8),
                Constraint::Length(6),
            ],
        )
        .header(Row::new(vec!["CAMPAIGN", "STATUS", "TO"]).style(t.dim()))
        .block(pane(t, " campaigns ".into(), true))
        .row_highlight_style(t.selected()),
        list,
        &mut state,
    );
    let Some(r) = c.current() else {
        let text = if c.loaded {
            "no campaigns in campaigns/"
        } else {
            "loading…"
        };
        f.render_widget(
            Paragraph::new(Span::styled(text, t.dim())).block(pane(t, " campaign ".into(), false)),
            detail,
        );
        return;
    };
    let block = pane(t, format!(" {} ", r.name), false);
    let inner = block.inner(detail);
    f.render_widget(block, detail);
    let mut lines = vec![Line::from(vec![
        Span::raw("status "),
        Span::styled(r.status.clone(), t.status(&r.status)),
        Span::raw(
            r.winner
                .as_ref()
                .map_or(String::new(), |w| format!("  winner {w}")),
        ),
    ])];
    if let Some(p) = &r.plan {
        lines.push(Line::from(format!(
            "plan: {} recipient(s), {} suppressed",
            thousands(p.recipients),
            thousands(p.suppressed)
        )));
        for (v, n) in &p.variants {
            let v = if v.is_empty() { "winner" } else { v.as_str() };
            lines.push(Line::from(format!("  variant {v}: {}", thousands(*n))));
        }
    }
    for s in &r.stats {
        let v = if s.variant.is_empty() {
            "all"
        } else {
            s.variant.as_str()
        };
        let rate = |n: u64| {
            if s.delivered == 0 {
                "-".to_string()
            } else {
                format!("{:.1}%", n as f64 * 100.0 / s.delivered as f64)
            }
        };
        lines.push(Line::from(format!(
            "{v}: {} sent · {} opened ({}) · {} clicked ({}) · {} bounced · {} unsub",
            thousands(s.sent),
            thousands(s.unique_opens),
            rate(s.unique_opens),
            thousands(s.unique_clicks),
            rate(s.unique_clicks),
            thousands(s.bounced),
            thousands(s.unsubscribes),
        )));
    }
    let text_h = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .min(inner.height);
    let [text, chart] =
        Layout::vertical([Constraint::Length(text_h + 1), Constraint::Min(0)]).areas(inner);
    f.render_widget(
        Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: true }),
        text,
    );
    if r.stats.is_empty() || chart.height < 4 {
        return;
    }
    let mut bars = BarChart::default().bar_width(5).bar_gap(1).group_gap(2);
    for s in &r.stats {
        let v = if s.variant.is_empty() {
            "all"
        } else {
            s.variant.as_str()
        };
        let bar = |label: &str, n: u64| {
            Bar::default()
                .label(Line::from(label.to_string()))
                .value(n)
                .style(t.title())
        };
        bars = bars.data(BarGroup::default().label(Line::from(v.to_string())).bars(&[
            bar("sent", s.sent),
            bar("open", s.unique_opens),
            bar("click", s.unique_clicks),
        ]));
    }
    f.render_widget(bars, chart);
}
