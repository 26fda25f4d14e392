//! The dashboard: totals, sparklines of the last days and a bar chart of
//! conversions by site and component.

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Paragraph, Sparkline};

use super::{cut, pane, thousands};
use crate::tui::app::App;

pub fn render(app: &mut App, f: &mut Frame<'_>, area: Rect) {
    let t = app.theme;
    let Some(d) = &app.dashboard.data else {
        f.render_widget(
            Paragraph::new(Span::styled("loading…", t.dim())).block(pane(
                t,
                " dashboard ".into(),
                false,
            )),
            area,
        );
        return;
    };
    let wide = area.width >= 100;
    let [top, charts, bottom] = Layout::vertical([
        Constraint::Length(3),
        if wide {
            Constraint::Percentage(50)
        } else {
            Constraint::Length(8)
        },
        Constraint::Min(3),
    ])
    .areas(area);
    let sum = |v: &[u64]| v.iter().sum::<u64>();
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(format!("{} contacts", thousands(d.contacts)), t.title()),
            Span::raw(format!(
                " · {} new in 14 days · {} executions in 24 h · {} opens, {} clicks in 14 days",
                thousands(sum(&d.new_contacts)),
                thousands(sum(&d.executions)),
                thousands(sum(&d.opens)),
                thousands(sum(&d.clicks)),
            )),
        ]))
        .wrap(ratatui::widgets::Wrap { trim: true })
        .block(pane(t, " dashboard ".into(), false)),
        top,
    );
    // Four across on a wide screen, two by two on a narrow one.
    let cells: Vec<Rect> = if wide {
        Layout::horizontal([Constraint::Ratio(1, 4); 4])
            .split(charts)
            .to_vec()
    } else {
        Layout::vertical([Constraint::Ratio(1, 2); 2])
            .split(charts)
            .iter()
            .flat_map(|row| {
                Layout::horizontal([Constraint::Ratio(1, 2); 2])
                    .split(*row)
                    .to_vec()
            })
            .collect()
    };
    let spark = |title: String, data: &[u64], width: u16| {
        Sparkline::default()
            .block(pane(t, title, false))
            .data(stretch(data, usize::from(width.saturating_sub(2))))
            .style(t.title())
    };
    f.render_widget(
        spark(
            format!(" new contacts/day {} ", sum(&d.new_contacts)),
            &d.new_contacts,
            cells[0].width,
        ),
        cells[0],
    );
    f.render_widget(
        spark(
            format!(" executions/hour {} ", sum(&d.executions)),
            &d.executions,
            cells[1].width,
        ),
        cells[1],
    );
    f.render_widget(
        spark(
            format!(" opens/day {} ", sum(&d.opens)),
            &d.opens,
            cells[2].width,
        ),
        cells[2],
    );
    f.render_widget(
        spark(
            format!(" clicks/day {} ", sum(&d.clicks)),
            &d.clicks,
            cells[3].width,
        ),
        cells[3],
    );
    if d.conversions.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled("no form posts in 30 days", t.dim())).block(pane(
                t,
                " conversions by site / component, 30 days ".into(),
                false,
            )),
            bottom,
        );
        return;
    }
    let label_w = usize::from(bottom.width / 3).max(12);
    let bars: Vec<Bar> = d
        .conversions
        .iter()
        .map(|(name, n)| {
            Bar::default()
                .label(Line::from(cut(name, label_w)))
                .value(*n)
                .style(t.title())
        })
        .collect();
    f.render_widget(
        BarChart::default()
            .direction(Direction::Horizontal)
            .bar_width(1)
            .bar_gap(0)
            .data(BarGroup::default().bars(&bars))
            .block(pane(
                t,
                " conversions by site / component, 30 days ".into(),
                false,
            )),
        bottom,
    );
}

/// Each point repeated so the series fills `width` columns.
fn stretch(data: &[u64], width: usize) -> Vec<u64> {
    let each = (width / data.len().max(1)).max(1);
    data.iter()
        .flat_map(|v| std::iter::repeat_n(*v, each))
        .collect()
}
