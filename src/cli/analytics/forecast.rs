//! `funnel analytics forecast [WORKFLOW]`: each workflow's runs and
//! conversions per week, the next four weeks from the trend, and the error
//! the same method made on the past weeks.

use crate::analytics::forecast::{Report, Series};
use crate::cli::loaded::{print_table, shown_time};

fn figures(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn error(s: &Series) -> String {
    match (s.mae, s.mape) {
        (Some(mae), Some(mape)) => format!("±{mae:.1} ({:.0}%)", mape * 100.0),
        (Some(mae), None) => format!("±{mae:.1}"),
        _ => "too little history".into(),
    }
}

fn spark(s: &Series) -> String {
    let whole: Vec<i64> = s
        .history
        .iter()
        .chain(&s.forecast)
        .map(|v| v.round() as i64)
        .collect();
    let chart = super::bars(&whole);
    let split = s.history.len();
    let (past, next): (String, String) = (
        chart.chars().take(split).collect(),
        chart.chars().skip(split).collect(),
    );
    format!("{past}┊{next}")
}

pub fn print(r: &Report) {
    let (Some(first), Some(next)) = (r.weeks.first(), r.forecast_weeks.first()) else {
        return;
    };
    println!(
        "weeks from {} ; forecast from {} (past weeks ┊ next four)",
        shown_time(*first),
        shown_time(*next)
    );
    if r.workflows.is_empty() {
        println!("no workflow ran in the last {} weeks", r.weeks.len());
        return;
    }
    let mut rows = Vec::new();
    for w in &r.workflows {
        for (what, s) in [("runs", &w.executions), ("conversions", &w.conversions)] {
            rows.push(vec![
                w.workflow.clone(),
                what.to_string(),
                spark(s),
                figures(&s.forecast),
                format!("{:+.1}/wk", s.slope),
                error(s),
            ]);
        }
    }
    print_table(
        &[
            "WORKFLOW",
            "SERIES",
            "TREND",
            "NEXT 4 WEEKS",
            "SLOPE",
            "PAST ERROR",
        ],
        &rows,
    );
}
