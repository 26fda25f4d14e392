//! Click heat-map data per page: each component's clicks bucketed by where on
//! the page they landed, and the elements clicked most.
//!
//! The tracking script reports a click's page coordinates and the viewport's
//! width. Columns are tenths of the viewport width, so phones and desktops
//! share a grid; rows are bands of [`ROW_PX`] pixels down the page (the last
//! row also holds anything further down). Clicks without coordinates count in
//! the totals but in no cell.
//!
//! Clicks are read per component through the component index, for the
//! components whose daily rollups show interactions in the period.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::db::{Db, params};
use crate::store::{StoreError, UnixMs};

/// Columns of the grid: tenths of the viewport's width.
pub const COLUMNS: usize = 10;
/// Height of a row, in CSS pixels.
pub const ROW_PX: i64 = 100;
/// Rows of the grid; the last takes every click below it.
pub const MAX_ROWS: usize = 60;
/// Elements listed per component.
const TOP_ELEMENTS: usize = 5;

/// Clicks in one cell of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub col: usize,
    pub row: usize,
    pub clicks: u64,
}

/// One component's clicks on a page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentHeat {
    pub component: String,
    pub clicks: u64,
    /// Cells with clicks, by row then column.
    pub cells: Vec<Cell>,
    /// The elements clicked most (tag, link and start of the text).
    pub elements: Vec<(String, u64)>,
}

/// One page's heat map.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageHeat {
    pub page: String,
    pub clicks: u64,
    /// Rows the page's cells reach (the grid to draw is COLUMNS × rows).
    pub rows: usize,
    /// By clicks, most first.
    pub components: Vec<ComponentHeat>,
}

/// The cell of a click at `(x, y)` on a viewport `w` wide.
pub fn cell_of(x: i64, y: i64, w: i64) -> Option<(usize, usize)> {
    if w <= 0 || x < 0 || y < 0 {
        return None;
    }
    let col = usize::try_from(x.saturating_mul(COLUMNS as i64) / w)
        .ok()?
        .min(COLUMNS - 1);
    let row = usize::try_from(y / ROW_PX).ok()?.min(MAX_ROWS - 1);
    Some((col, row))
}

#[derive(Default)]
struct Acc {
    clicks: u64,
    cells: BTreeMap<(usize, usize), u64>,
    elements: BTreeMap<String, u64>,
}

/// The heat maps of `site`'s pages over `[since, until)`, pages by clicks.
pub fn report(
    db: Db<'_>,
    site: &str,
    since: UnixMs,
    until: UnixMs,
) -> Result<Vec<PageHeat>, StoreError> {
    let components: Vec<String> = {
        let mut stmt = db.prepare_cached(
            "SELECT DISTINCT component_id FROM component_analytics \
             WHERE site_id = ?1 AND day >= ?2 AND day <= ?3 AND interactions > 0 ORDER BY component_id",
        )?;
        let rows = stmt.query_map(
            params![site, super::day_of(since), super::day_of(until)],
            |r| r.get(0),
        )?;
        rows.collect::<Result<_, _>>()?
    };
    let mut pages: BTreeMap<String, BTreeMap<String, Acc>> = BTreeMap::new();
    let mut stmt = db.prepare_cached(
        "SELECT page, data FROM analytics_events WHERE site_id = ?1 AND component_id = ?2 \
         AND type = 'click' AND occurred_at >= ?3 AND occurred_at < ?4",
    )?;
    for component in &components {
        let rows = stmt.query_map(params![site, component.as_str(), since, until], |r| {
            Ok((r.get::<Option<String>>(0)?, r.get::<String>(1)?))
        })?;
        for row in rows {
            let (page, data) = row?;
            let acc = pages
                .entry(page.unwrap_or_else(|| "/".into()))
                .or_default()
                .entry(component.clone())
                .or_default();
            acc.clicks += 1;
            let d: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
            let int = |k: &str| d.get(k).and_then(serde_json::Value::as_i64);
            if let (Some(x), Some(y), Some(w)) = (int("x"), int("y"), int("w"))
                && let Some(cell) = cell_of(x, y, w)
            {
                *acc.cells.entry((cell.1, cell.0)).or_default() += 1;
            }
            if let Some(e) = d.get("element").and_then(serde_json::Value::as_str) {
                *acc.elements.entry(e.to_string()).or_default() += 1;
            }
        }
    }
    let mut out: Vec<PageHeat> = pages
        .into_iter()
        .map(|(page, comps)| {
            let mut components: Vec<ComponentHeat> = comps
                .into_iter()
                .map(|(component, acc)| {
                    let mut elements: Vec<(String, u64)> = acc.elements.into_iter().collect();
                    elements.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                    elements.truncate(TOP_ELEMENTS);
                    ComponentHeat {
                        component,
                        clicks: acc.clicks,
                        cells: acc
                            .cells
                            .into_iter()
                            .map(|((row, col), clicks)| Cell { col, row, clicks })
                            .collect(),
                        elements,
                    }
                })
                .collect();
            components.sort_by(|a, b| {
                b.clicks
                    .cmp(&a.clicks)
                    .then_with(|| a.component.cmp(&b.component))
            });
            let rows = components
                .iter()
                .flat_map(|c| c.cells.iter().map(|cell| cell.row + 1))
                .max()
                .unwrap_or(0);
            PageHeat {
                page,
                clicks: components.iter().map(|c| c.clicks).sum(),
                rows,
                components,
            }
        })
        .collect();
    out.sort_by(|a, b| b.clicks.cmp(&a.clicks).then_with(|| a.page.cmp(&b.page)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::fixture::{self, DAY};
    use crate::store::test_db::TestDb;

    #[test]
    fn cells_are_tenths_of_the_width_and_bands_of_the_page() {
        assert_eq!(cell_of(0, 0, 1000), Some((0, 0)));
        assert_eq!(cell_of(999, 199, 1000), Some((9, 1)));
        assert_eq!(cell_of(187, 250, 375), Some((4, 2)), "a phone");
        assert_eq!(
            cell_of(5000, 1_000_000, 1000),
            Some((9, MAX_ROWS - 1)),
            "clamped"
        );
        assert_eq!(cell_of(10, 10, 0), None);
        assert_eq!(cell_of(-1, 10, 100), None);
    }

    /// Hand-counted: five clicks on two components of two pages, one
    /// without coordinates, one outside the period.
    #[test]
    fn the_hand_counted_page() {
        let db = TestDb::open();
        let t = 500 * DAY;
        db.transaction(|db| {
            let click = |db, page, comp, data: &str, at| {
                fixture::event(db, "v", None, page, Some(comp), "click", data, at)
            };
            click(
                db,
                "/",
                "hero",
                r#"{"x":100,"y":50,"w":1000,"element":"a /pricing See plans"}"#,
                t,
            )?;
            click(
                db,
                "/",
                "hero",
                r#"{"x":120,"y":80,"w":1000,"element":"a /pricing See plans"}"#,
                t + 1,
            )?;
            click(
                db,
                "/",
                "hero",
                r#"{"x":900,"y":150,"w":1000,"element":"button Play"}"#,
                t + 2,
            )?;
            click(
                db,
                "/",
                "contact-form",
                r#"{"element":"button Send"}"#,
                t + 3,
            )?;
            click(db, "/pricing", "hero", r#"{"x":10,"y":10,"w":375}"#, t + 4)?;
            click(db, "/", "hero", r#"{"x":1,"y":1,"w":1000}"#, t - DAY)?;
            for (c, n) in [("hero", 5), ("contact-form", 1)] {
                db.execute(
                    "INSERT INTO component_analytics (site_id, component_id, day, interactions) \
                     VALUES ('demo', ?1, ?2, ?3)",
                    params![c, t / DAY, n],
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let pages = report(db.db(), "demo", t, t + DAY).expect("heat");
        assert_eq!(pages.len(), 2);
        let home = &pages[0];
        assert_eq!((home.page.as_str(), home.clicks, home.rows), ("/", 4, 2));
        let hero = &home.components[0];
        assert_eq!((hero.component.as_str(), hero.clicks), ("hero", 3));
        assert_eq!(
            hero.cells,
            vec![
                Cell {
                    col: 1,
                    row: 0,
                    clicks: 2
                },
                Cell {
                    col: 9,
                    row: 1,
                    clicks: 1
                }
            ]
        );
        assert_eq!(hero.elements[0], ("a /pricing See plans".to_string(), 2));
        let form = &home.components[1];
        assert_eq!(
            (form.clicks, form.cells.len()),
            (1, 0),
            "no coordinates, no cell"
        );
        assert_eq!(
            pages[1].components[0].cells,
            vec![Cell {
                col: 0,
                row: 0,
                clicks: 1
            }]
        );
    }
}
