//! Visitors, page views and exits per site, page and UTC day: computed once
//! when a day is over and stored (`page_days`, `site_analytics.visitors`), so
//! a report over a month reads a row per page and day instead of every event.
//!
//! A visit is a visitor's day (visitor hashes are daily). Its exit is its
//! last page view, unless the visit posted a form: leaving after converting
//! is no loss. Days the mark has not reached are computed from the raw
//! events, so a report is exact whether or not the daemon rolled them up.
//! Reports count whole UTC days, from the day of their start. A day keeps
//! its [`MAX_PAGES`] most viewed pages; the rest are counted together.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::workflows::{advance_mark, last_closed, mark_of};
use crate::store::db::{Db, params};
use crate::store::{StoreError, UnixMs};

const MARK: &str = "site_days";
/// Pages kept per site and day; the rest are counted as [`OTHER`]. Beacons
/// name any path, so a sender inventing paths must not grow the rollups.
pub const MAX_PAGES: usize = 200;
/// Where pages past [`MAX_PAGES`] are counted.
pub const OTHER: &str = "(other pages)";
const DAY_MS: i64 = 86_400_000;

/// One page's views and the visits that ended on it without a form post.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PageFigures {
    pub views: u64,
    pub exits: u64,
}

/// A site's visitors and pages over some days.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Visits {
    pub visitors: u64,
    pub pages: BTreeMap<String, PageFigures>,
}

impl Visits {
    fn add(&mut self, other: Visits) {
        self.visitors += other.visitors;
        for (page, f) in other.pages {
            let p = self.pages.entry(page).or_default();
            p.views += f.views;
            p.exits += f.exits;
        }
    }
}

/// The figures of `site`'s events in `[since, until)`: one pass over its page
/// views and form posts in time order, holding an entry per visit.
pub fn compute(db: Db<'_>, site: &str, since: UnixMs, until: UnixMs) -> Result<Visits, StoreError> {
    let mut out = Visits::default();
    // Per visit (visitor and day): the last page, or None once it converted.
    let mut visits: HashMap<(String, i64), Option<String>> = HashMap::new();
    let mut stmt = db.prepare_cached(
        "SELECT type, page, visitor, occurred_at FROM analytics_events WHERE site_id = ?1 \
         AND occurred_at >= ?2 AND occurred_at < ?3 \
         AND ((type = 'view' AND component_id IS NULL) OR type = 'submit') ORDER BY occurred_at",
    )?;
    let rows = stmt.query_map(params![site, since, until], |r| {
        Ok((
            r.get::<String>(0)?,
            r.get::<Option<String>>(1)?,
            r.get::<Option<String>>(2)?,
            r.get::<i64>(3)?,
        ))
    })?;
    for row in rows {
        let (kind, page, visitor, at) = row?;
        let visit = (visitor.unwrap_or_default(), at.div_euclid(DAY_MS));
        if kind == "submit" {
            visits.insert(visit, None);
            continue;
        }
        let page = page.unwrap_or_else(|| "/".into());
        out.pages.entry(page.clone()).or_default().views += 1;
        match visits.get_mut(&visit) {
            Some(None) => {}
            Some(last) => *last = Some(page),
            None => {
                visits.insert(visit, Some(page));
            }
        }
    }
    out.visitors = visits.len() as u64;
    for page in visits.into_values().flatten() {
        out.pages.entry(page).or_default().exits += 1;
    }
    if out.pages.len() > MAX_PAGES {
        let mut by_views: Vec<(String, PageFigures)> =
            std::mem::take(&mut out.pages).into_iter().collect();
        by_views.sort_by(|a, b| b.1.views.cmp(&a.1.views).then_with(|| a.0.cmp(&b.0)));
        let rest = by_views.split_off(MAX_PAGES);
        out.pages = by_views.into_iter().collect();
        let other = out.pages.entry(OTHER.to_string()).or_default();
        for (_, f) in rest {
            other.views += f.views;
            other.exits += f.exits;
        }
    }
    Ok(out)
}

fn mark(db: Db<'_>) -> Result<Option<i64>, StoreError> {
    mark_of(db, MARK)
}

/// One site's stored day.
pub type SiteDay = (String, i64, Visits);

/// The closed days not rolled up yet (at most `max_days`, oldest first),
/// computed on a read connection: their rows and the first and last day.
/// None when no day waits.
pub fn pending(
    db: Db<'_>,
    now: UnixMs,
    max_days: i64,
) -> Result<Option<(Vec<SiteDay>, i64, i64)>, StoreError> {
    let closed = last_closed(now);
    let start = match mark(db)? {
        Some(done) => done + 1,
        None => {
            let first: Option<i64> = db
                .prepare_cached("SELECT min(day) FROM site_analytics")?
                .query_row(params![], |r| r.get(0))?;
            match first {
                Some(day) => day.min(closed + 1),
                None => return Ok(Some((Vec::new(), closed + 1, closed))),
            }
        }
    };
    let end = closed.min(start + max_days.max(1) - 1);
    if end < start {
        return Ok(None);
    }
    let mut rows = Vec::new();
    let mut sites = db.prepare_cached("SELECT site_id FROM site_analytics WHERE day = ?1")?;
    for day in start..=end {
        let ids: Vec<String> = sites
            .query_map(params![day], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for site in ids {
            let v = compute(db, &site, day * DAY_MS, (day + 1) * DAY_MS)?;
            rows.push((site, day, v));
        }
    }
    Ok(Some((rows, start, end)))
}

/// Stores rolled-up days and moves the mark to `until` (never back).
pub fn store_days(db: Db<'_>, rows: &[SiteDay], until: i64) -> Result<(), StoreError> {
    let mut visitors = db.prepare_cached(
        "INSERT INTO site_analytics (site_id, day, visitors) VALUES (?1, ?2, ?3) \
         ON CONFLICT (site_id, day) DO UPDATE SET visitors = excluded.visitors",
    )?;
    let mut page = db.prepare_cached(
        "INSERT INTO page_days (site_id, day, page, views, exits) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (site_id, day, page) DO UPDATE SET views = excluded.views, exits = excluded.exits",
    )?;
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for (site, day, v) in rows {
        visitors.execute(params![site.as_str(), *day, n(v.visitors)])?;
        for (p, f) in &v.pages {
            page.execute(params![
                site.as_str(),
                *day,
                p.as_str(),
                n(f.views),
                n(f.exits)
            ])?;
        }
    }
    advance_mark(db, MARK, until)
}

/// [`pending`] then [`store_days`] on one connection. Returns the days rolled up.
pub fn catch_up(db: Db<'_>, now: UnixMs, max_days: i64) -> Result<i64, StoreError> {
    match pending(db, now, max_days)? {
        Some((rows, start, end)) => {
            store_days(db, &rows, end)?;
            Ok(end - start + 1)
        }
        None => Ok(0),
    }
}

/// `site`'s figures for the days from `since`'s to `now`'s: stored days
/// read, the rest computed.
pub fn window(db: Db<'_>, site: &str, since: UnixMs, now: UnixMs) -> Result<Visits, StoreError> {
    let first = since.div_euclid(DAY_MS);
    let today = now.div_euclid(DAY_MS);
    let done = mark(db)?.unwrap_or(first - 1).min(today);
    let mut out = Visits::default();
    if done >= first {
        out.visitors = db
            .prepare_cached(
                "SELECT coalesce(sum(visitors), 0) FROM site_analytics \
                 WHERE site_id = ?1 AND day >= ?2 AND day <= ?3",
            )?
            .query_row(params![site, first, done], |r| r.get::<i64>(0))?
            .max(0) as u64;
        let mut stmt = db.prepare_cached(
            "SELECT page, sum(views), sum(exits) FROM page_days \
             WHERE site_id = ?1 AND day >= ?2 AND day <= ?3 GROUP BY page",
        )?;
        let rows = stmt.query_map(params![site, first, done], |r| {
            Ok((r.get::<String>(0)?, r.get::<i64>(1)?, r.get::<i64>(2)?))
        })?;
        for row in rows {
            let (page, views, exits) = row?;
            out.pages.insert(
                page,
                PageFigures {
                    views: views.max(0) as u64,
                    exits: exits.max(0) as u64,
                },
            );
        }
    }
    let from = (done + 1).max(first);
    if from <= today {
        out.add(compute(db, site, from * DAY_MS, (today + 1) * DAY_MS)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::fixture::{self, DAY};
    use crate::store::test_db::TestDb;

    #[test]
    fn invented_paths_are_folded_into_one_row() {
        let db = TestDb::open();
        let t = 800 * DAY;
        db.transaction(|db| {
            for i in 0..(MAX_PAGES as i64 + 50) {
                fixture::event(
                    db,
                    &format!("v{i}"),
                    None,
                    &format!("/x{i}"),
                    None,
                    "view",
                    "{}",
                    t + i,
                )?;
            }
            fixture::event(db, "v0", None, "/", None, "view", "{}", t + 1000)?;
            fixture::event(db, "v1", None, "/", None, "view", "{}", t + 1001)?;
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let v = compute(db.db(), "demo", t, t + DAY).expect("day");
        assert_eq!(v.pages.len(), MAX_PAGES + 1);
        assert_eq!(v.pages["/"].views, 2, "the most viewed page is kept");
        let total: u64 = v.pages.values().map(|p| p.views).sum();
        assert_eq!(total, MAX_PAGES as u64 + 52, "no view is lost");
        assert_eq!(v.pages[OTHER].views, 51);
    }

    /// The same figures whether days are stored or computed, and equal to
    /// plain SQL: distinct visitors per day, views per page.
    #[test]
    fn stored_and_computed_days_agree_with_plain_sql() {
        let db = TestDb::open();
        let mut rng = crate::rng::Rng::new(3);
        let day0 = 900;
        db.transaction(|db| {
            for i in 0..1500i64 {
                let day = day0 + rng.below(6) as i64;
                let at = day * DAY + rng.below(DAY as u64) as i64;
                let visitor = format!("v{}", rng.below(200));
                let page = ["/", "/pricing", "/about"][rng.below(3) as usize];
                let (component, kind) = match rng.below(10) {
                    0 => (Some("contact-form"), "submit"),
                    1 => (Some("hero"), "click"),
                    _ => (None, "view"),
                };
                fixture::event(db, &visitor, None, page, component, kind, "{}", at + i % 7)?;
                db.execute(
                    "INSERT INTO site_analytics (site_id, day) VALUES ('demo', ?1) ON CONFLICT (site_id, day) DO NOTHING",
                    params![day],
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let (since, now) = (day0 * DAY + 5, (day0 + 5) * DAY + 3_600_000);
        let raw = window(db.db(), "demo", since, now).expect("raw");
        let rolled = db.transaction(|db| catch_up(db, now, 3)).expect("roll-up");
        assert_eq!(rolled, 3, "three days at a time");
        let part = window(db.db(), "demo", since, now).expect("part");
        db.transaction(|db| catch_up(db, now, 30)).expect("roll-up");
        let stored = window(db.db(), "demo", since, now).expect("stored");
        assert_eq!(raw, part);
        assert_eq!(raw, stored);
        let visitors: i64 = db
            .db()
            .query_row(
                "SELECT count(*) FROM (SELECT DISTINCT visitor, occurred_at / 86400000 FROM analytics_events \
                 WHERE (type = 'view' AND component_id IS NULL) OR type = 'submit') AS v",
                params![],
                |r| r.get(0),
            )
            .expect("visitors");
        assert_eq!(raw.visitors, visitors as u64);
        let views: i64 = db
            .db()
            .query_row(
                "SELECT count(*) FROM analytics_events WHERE type = 'view' AND component_id IS NULL AND page = '/pricing'",
                params![],
                |r| r.get(0),
            )
            .expect("views");
        assert_eq!(raw.pages["/pricing"].views, views as u64);
        let exits: u64 = raw.pages.values().map(|p| p.exits).sum();
        assert!(exits > 0 && exits <= raw.visitors);
    }
}
