//! The deals board: one column per stage with its count and weighted total.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph};

use super::{cut, pane, thousands};
use crate::tui::app::App;

pub fn render(app: &mut App, f: &mut Frame<'_>, area: Rect) {
    let t = app.theme;
    let d = &app.deals;
    let Some(p) = d.current() else {
        f.render_widget(
            Paragraph::new(Span::styled(
                "no pipelines: describe one in contacts/pipelines.yaml",
                t.dim(),
            ))
            .block(pane(t, " deals ".into(), true)),
            area,
        );
        return;
    };
    let [head, board] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let open: u64 = d
        .columns
        .iter()
        .zip(&p.stages)
        .filter(|(_, s)| s.probability > 0.0 && s.probability < 1.0)
        .map(|(c, _)| c.count)
        .sum();
    let weighted: f64 = d
        .columns
        .iter()
        .zip(&p.stages)
        .filter(|(_, s)| s.probability < 1.0)
        .map(|(c, s)| c.total * s.probability)
        .sum();
    let pipelines = if d.pipelines.len() > 1 {
        format!("  ([ ] {} of {})", d.pipeline + 1, d.pipelines.len())
    } else {
        String::new()
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(format!(" {} ", p.name), t.title()),
            Span::raw(format!(
                "{open} open deals · weighted pipeline {}{pipelines}",
                money(weighted)
            )),
        ])),
        head,
    );
    let n = p.stages.len().max(1);
    let constraints: Vec<Constraint> = (0..n)
        .map(|_| Constraint::Ratio(1, u32::try_from(n).unwrap_or(1)))
        .collect();
    let areas = Layout::horizontal(constraints).split(board);
    for (i, stage) in p.stages.iter().enumerate() {
        let Some(col) = d.columns.get(i) else {
            continue;
        };
        let width = usize::from(areas[i].width.saturating_sub(2));
        let items: Vec<ListItem> = col
            .deals
            .iter()
            .map(|deal| {
                ListItem::new(vec![
                    Line::from(cut(&deal.contact, width)),
                    Line::from(Span::styled(deal.value.map_or("-".into(), money), t.dim())),
                ])
            })
            .collect();
        let focused = i == d.column;
        let totals = format!(
            " {} · {} ",
            col.count,
            money(
                col.total
                    * if stage.probability > 0.0 {
                        stage.probability
                    } else {
                        1.0
                    }
            )
        );
        let mut state = ListState::default().with_selected(
            focused
                .then(|| d.card.get(i).copied())
                .flatten()
                .filter(|_| !col.deals.is_empty()),
        );
        f.render_stateful_widget(
            List::new(items)
                .block(
                    pane(t, cut(&format!(" {} ", stage.name), width + 2), focused)
                        .title_bottom(Line::from(cut(&totals, width + 2)).right_aligned()),
                )
                .highlight_style(t.selected()),
            areas[i],
            &mut state,
        );
    }
}

/// Whole currency units with separators: 12,500.
fn money(v: f64) -> String {
    thousands(v.max(0.0).round() as u64)
}
