//! `funnel analytics roi`: the value of deals won credited to workflows and
//! campaigns, last touch and linear, against the cost of their sends.

use crate::analytics::roi::RoiReport;
use crate::cli::loaded::{print_table, shown_time};

/// Money as reports show it: no decimals from a thousand up.
pub fn money(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn percent(roi: Option<f64>) -> String {
    roi.map(|r| format!("{:+.0}%", r * 100.0))
        .unwrap_or_else(|| "–".into())
}

pub fn print(r: &RoiReport) {
    println!(
        "{} deals won worth {} from {} to {} (attribution window {} d, {} per send)",
        r.won_deals,
        money(r.won_value),
        shown_time(r.since),
        shown_time(r.until),
        r.window_ms / 86_400_000,
        money(r.cost_per_send),
    );
    if r.rows.is_empty() {
        println!("no workflow or campaign sent an email or touched a won deal's contact");
        return;
    }
    let top = r
        .rows
        .iter()
        .map(|x| x.value_linear)
        .fold(0.0f64, f64::max)
        .max(1e-9);
    print_table(
        &[
            "SOURCE",
            "ID",
            "DEALS (LAST)",
            "VALUE (LAST)",
            "DEALS (LINEAR)",
            "VALUE (LINEAR)",
            "SENDS",
            "COST",
            "ROI (LAST)",
            "ROI (LINEAR)",
            "",
        ],
        &r.rows
            .iter()
            .map(|x| {
                vec![
                    x.source.as_str().to_string(),
                    x.id.clone(),
                    x.deals_last.to_string(),
                    money(x.value_last),
                    format!("{:.2}", x.deals_linear),
                    money(x.value_linear),
                    x.sends.to_string(),
                    money(x.cost),
                    percent(x.roi_last),
                    percent(x.roi_linear),
                    "█".repeat((x.value_linear / top * 20.0).round().max(0.0) as usize),
                ]
            })
            .collect::<Vec<_>>(),
    );
    if r.unattributed_deals > 0 {
        println!(
            "{} deal(s) worth {} had no touch in the window",
            r.unattributed_deals,
            money(r.unattributed_value)
        );
    }
}
