//! `funnel analytics paths SITE`: the most common paths to a form post, and
//! the pages visitors leave from without one.

use crate::analytics::paths::{Exit, PathsReport};
use crate::cli::loaded::print_table;

pub fn print(r: &PathsReport, exits: &[Exit]) {
    println!("{} conversion(s) on {}", r.conversions, r.site);
    if !r.paths.is_empty() {
        print_table(
            &["CONVERSIONS", "SHARE", "PATH"],
            &r.paths
                .iter()
                .map(|p| {
                    vec![
                        p.conversions.to_string(),
                        format!("{:.0}%", p.share * 100.0),
                        super::heatmap::shown(&p.steps.join(" → ")),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
    println!();
    println!("where visits end without a conversion:");
    print_table(
        &["PAGE", "VIEWS", "EXITS", "EXIT RATE"],
        &exits
            .iter()
            .take(15)
            .map(|e| {
                vec![
                    super::heatmap::shown(&e.page),
                    e.views.to_string(),
                    e.exits.to_string(),
                    format!("{:.0}%", e.exit_rate * 100.0),
                ]
            })
            .collect::<Vec<_>>(),
    );
}
