//! `funnel analytics heatmap SITE`: where each page's clicks land, per
//! component, as a grid of shades.

use crate::analytics::heatmap::{COLUMNS, PageHeat, ROW_PX};

const SHADES: [char; 5] = ['·', '░', '▒', '▓', '█'];

/// Beacon text as a terminal may show it: control characters (escape
/// sequences a sender could plant) dropped.
pub fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

pub fn print(pages: &[PageHeat]) {
    if pages.is_empty() {
        println!("no clicks in the period");
        return;
    }
    for page in pages {
        println!("{}  {} click(s)", shown(&page.page), page.clicks);
        for c in &page.components {
            println!("  {}  {} click(s)", shown(&c.component), c.clicks);
            let top = c.cells.iter().map(|x| x.clicks).max().unwrap_or(0).max(1);
            let rows = c.cells.iter().map(|x| x.row + 1).max().unwrap_or(0);
            for row in 0..rows {
                let mut line = String::new();
                for col in 0..COLUMNS {
                    let n = c
                        .cells
                        .iter()
                        .find(|x| x.row == row && x.col == col)
                        .map_or(0, |x| x.clicks);
                    let shade = if n == 0 {
                        0
                    } else {
                        1 + usize::try_from(n * 3 / top).unwrap_or(3).min(3)
                    };
                    line.push(SHADES[shade]);
                    line.push(SHADES[shade]);
                }
                println!("    {:>5} px  {line}", row as i64 * ROW_PX);
            }
            for (element, n) in &c.elements {
                println!("    {n:>5} × {}", shown(element));
            }
        }
        println!();
    }
}
