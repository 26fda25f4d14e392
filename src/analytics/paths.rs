//! Behaviour patterns: the most common paths of pages and clicks that led to a
//! conversion (a form post) on a site, and where visitors leave without one.
//!
//! A path is the visitor's last [`STEPS`] steps of the day before the form
//! post: page views (`/pricing`) and component clicks (`click hero`), with
//! repeats in a row folded into one, ending in the post (`submit
//! contact-form`). A visitor is a daily hash, so a path never spans days.
//!
//! Conversions are read per form component through the component index; each
//! one's steps through the contact's events of that day (a post ties the
//! day's visit to the contact) or, for a post without a contact, the
//! visitor's untied events: the cost grows with the conversions in the
//! period, not with the site's history.

use std::collections::HashMap;

use serde::Serialize;

use crate::store::db::{Db, OptionalRow, params};
use crate::store::{StoreError, UnixMs};

/// Steps kept before a conversion.
pub const STEPS: usize = 4;
/// Paths listed.
pub const TOP: usize = 10;

/// One path and the conversions that took it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Path {
    pub steps: Vec<String>,
    pub conversions: u64,
    /// Of all conversions in the period.
    pub share: f64,
}

/// The paths of a site's conversions over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathsReport {
    pub site: String,
    pub conversions: u64,
    /// Most taken first.
    pub paths: Vec<Path>,
}

/// An event on a converting visitor's way: type, page, component, visitor.
type Step = (String, Option<String>, Option<String>, Option<String>);

struct Conversion {
    component: String,
    visitor: Option<String>,
    contact: Option<i64>,
    at: UnixMs,
}

/// The step an event is on a path, if it is one.
fn step(kind: &str, page: Option<&str>, component: Option<&str>) -> Option<String> {
    match (kind, component) {
        ("view", None) => Some(page.unwrap_or("/").to_string()),
        ("click", Some(c)) => Some(format!("click {c}")),
        ("submit", Some(c)) => Some(format!("submit {c}")),
        _ => None,
    }
}

/// The components of `site` with conversions in the period, from the rollups.
fn forms(db: Db<'_>, site: &str, since: UnixMs, until: UnixMs) -> Result<Vec<String>, StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT DISTINCT component_id FROM component_analytics \
         WHERE site_id = ?1 AND day >= ?2 AND day <= ?3 AND conversions > 0 ORDER BY component_id",
    )?;
    let rows = stmt.query_map(
        params![site, super::day_of(since), super::day_of(until)],
        |r| r.get(0),
    )?;
    rows.collect::<Result<_, _>>()
}

/// The paths before `site`'s conversions in `[since, until)`.
pub fn report(
    db: Db<'_>,
    site: &str,
    since: UnixMs,
    until: UnixMs,
) -> Result<PathsReport, StoreError> {
    let mut conversions = Vec::new();
    {
        let mut stmt = db.prepare_cached(
            "SELECT visitor, contact_id, occurred_at FROM analytics_events WHERE site_id = ?1 \
             AND component_id = ?2 AND type = 'submit' AND occurred_at >= ?3 AND occurred_at < ?4",
        )?;
        for component in forms(db, site, since, until)? {
            let rows = stmt.query_map(params![site, component.as_str(), since, until], |r| {
                Ok(Conversion {
                    component: component.clone(),
                    visitor: r.get(0)?,
                    contact: r.get(1)?,
                    at: r.get(2)?,
                })
            })?;
            for c in rows {
                conversions.push(c?);
            }
        }
    }
    let mut by_contact = db.prepare_cached(
        "SELECT type, page, component_id, visitor FROM analytics_events WHERE contact_id = ?1 \
         AND occurred_at >= ?2 AND occurred_at < ?3 AND site_id = ?4 ORDER BY occurred_at, id",
    )?;
    let mut untied = db.prepare_cached(
        "SELECT type, page, component_id, visitor FROM analytics_events WHERE site_id = ?1 \
         AND visitor = ?2 AND occurred_at >= ?3 AND occurred_at < ?4 AND contact_id IS NULL \
         ORDER BY occurred_at, id",
    )?;
    let mut tied = db.prepare_cached(
        "SELECT contact_id FROM visitor_contacts WHERE site_id = ?1 AND visitor = ?2 AND day = ?3",
    )?;
    let mut counts: HashMap<Vec<String>, u64> = HashMap::new();
    for c in &mut conversions {
        // A post without a contact by a visitor tied earlier that day (a
        // newsletter form without an email field, say): the visit's events
        // carry that contact.
        if c.contact.is_none()
            && let Some(v) = &c.visitor
        {
            c.contact = tied
                .query_row(params![site, v.as_str(), super::day_of(c.at)], |r| r.get(0))
                .optional()?;
        }
    }
    for c in &conversions {
        let day_start = super::day_of(c.at) * super::DAY_MS;
        let read = |r: crate::store::db::Row<'_>| {
            Ok((
                r.get::<String>(0)?,
                r.get::<Option<String>>(1)?,
                r.get::<Option<String>>(2)?,
                r.get::<Option<String>>(3)?,
            ))
        };
        let events: Vec<Step> = match (c.contact, &c.visitor) {
            (Some(contact), _) => by_contact
                .query_map(params![contact, day_start, c.at, site], read)?
                .collect::<Result<_, _>>()?,
            (None, Some(v)) => untied
                .query_map(params![site, v.as_str(), day_start, c.at], read)?
                .collect::<Result<_, _>>()?,
            (None, None) => Vec::new(),
        };
        let mut path: Vec<String> = Vec::new();
        for (kind, page, component, visitor) in &events {
            // A contact's events of the day on this site may come from
            // another browser: only the converting visitor's count.
            if c.visitor.is_some() && visitor != &c.visitor {
                continue;
            }
            if let Some(s) = step(kind, page.as_deref(), component.as_deref())
                && path.last() != Some(&s)
            {
                path.push(s);
            }
        }
        let keep = path.len().saturating_sub(STEPS);
        let mut path = path.split_off(keep);
        path.push(format!("submit {}", c.component));
        *counts.entry(path).or_default() += 1;
    }
    let total = conversions.len() as u64;
    let mut paths: Vec<Path> = counts
        .into_iter()
        .map(|(steps, n)| Path {
            steps,
            conversions: n,
            share: n as f64 / total.max(1) as f64,
        })
        .collect();
    paths.sort_by(|a, b| {
        b.conversions
            .cmp(&a.conversions)
            .then_with(|| a.steps.cmp(&b.steps))
    });
    paths.truncate(TOP);
    Ok(PathsReport {
        site: site.to_string(),
        conversions: total,
        paths,
    })
}

/// A page's views and the visits that ended on it without a conversion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exit {
    pub page: String,
    pub views: u64,
    /// Visits (a visitor's day) whose last page this was, with no form post.
    pub exits: u64,
    pub exit_rate: f64,
}

/// Where `site`'s visitors leave without converting, over the days from
/// `since`'s to `until`'s (see [`super::site_days`]), pages by exits.
pub fn exits(
    db: Db<'_>,
    site: &str,
    since: UnixMs,
    until: UnixMs,
) -> Result<Vec<Exit>, StoreError> {
    let mut out: Vec<Exit> = super::site_days::window(db, site, since, until)?
        .pages
        .into_iter()
        .map(|(page, f)| Exit {
            page,
            views: f.views,
            exits: f.exits,
            exit_rate: f.exits as f64 / f.views.max(1) as f64,
        })
        .collect();
    out.sort_by(|a, b| b.exits.cmp(&a.exits).then_with(|| a.page.cmp(&b.page)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::fixture::{self, DAY};
    use crate::store::test_db::TestDb;

    /// Hand-counted: four conversions by four visitors (one never tied to a
    /// contact), two visits without one, a view of another day and one of
    /// the same contact from another browser.
    fn scenario(db: &TestDb) -> i64 {
        let t = 700 * DAY + 3_600_000;
        db.transaction(|db| {
            fixture::contacts(db, 3)?;
            let mut at = t;
            let mut e = |db,
                         visitor: &str,
                         contact: Option<i64>,
                         page: &str,
                         comp: Option<&str>,
                         kind: &str| {
                at += 1000;
                fixture::event(db, visitor, contact, page, comp, kind, "{}", at)
            };
            e(db, "a", Some(1), "/", None, "view")?;
            e(db, "a", Some(1), "/", Some("hero"), "view")?;
            e(db, "a", Some(1), "/", Some("hero"), "click")?;
            e(db, "a", Some(1), "/pricing", None, "view")?;
            e(db, "a", Some(1), "/pricing", None, "view")?;
            e(db, "z", Some(1), "/", None, "view")?;
            e(db, "a", Some(1), "/pricing", Some("contact-form"), "submit")?;
            e(db, "a", Some(1), "/thank-you", None, "view")?;
            e(db, "b", Some(2), "/", None, "view")?;
            e(db, "b", Some(2), "/pricing", None, "view")?;
            e(db, "b", Some(2), "/pricing", Some("contact-form"), "submit")?;
            e(db, "c", None, "/", None, "view")?;
            e(db, "c", None, "/", Some("hero"), "click")?;
            e(db, "c", None, "/pricing", None, "view")?;
            e(db, "c", None, "/pricing", Some("contact-form"), "submit")?;
            for page in ["/", "/blog", "/", "/pricing"] {
                e(db, "d", Some(3), page, None, "view")?;
            }
            e(db, "d", Some(3), "/pricing", Some("pricing-table"), "click")?;
            e(db, "d", Some(3), "/pricing", None, "view")?;
            e(db, "d", Some(3), "/pricing", Some("newsletter"), "submit")?;
            e(db, "e", None, "/", None, "view")?;
            e(db, "e", None, "/pricing", None, "view")?;
            e(db, "f", None, "/blog", None, "view")?;
            // Visitor g was tied to contact 2 earlier in the day; its post
            // carries no contact.
            db.execute(
                "INSERT INTO visitor_contacts (site_id, visitor, contact_id, day) VALUES ('demo', 'g', 2, ?1)",
                params![t / DAY],
            )?;
            e(db, "g", Some(2), "/about", None, "view")?;
            e(db, "g", None, "/about", Some("newsletter"), "submit")?;
            fixture::event(db, "a", Some(1), "/blog", None, "view", "{}", t - DAY)?;
            for (c, n) in [("contact-form", 3), ("newsletter", 2)] {
                db.execute(
                    "INSERT INTO component_analytics (site_id, component_id, day, conversions) \
                     VALUES ('demo', ?1, ?2, ?3)",
                    params![c, t / DAY, n],
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        700 * DAY
    }

    fn steps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_hand_counted_paths() {
        let db = TestDb::open();
        let day = scenario(&db);
        let r = report(db.db(), "demo", day, day + DAY).expect("paths");
        assert_eq!(r.conversions, 5);
        assert_eq!(
            r.paths[0].steps,
            steps(&["/", "click hero", "/pricing", "submit contact-form"])
        );
        assert_eq!((r.paths[0].conversions, r.paths[0].share), (2, 0.4));
        let rest: Vec<Vec<String>> = r.paths[1..].iter().map(|p| p.steps.clone()).collect();
        assert_eq!(
            rest,
            vec![
                steps(&[
                    "/",
                    "/pricing",
                    "click pricing-table",
                    "/pricing",
                    "submit newsletter"
                ]),
                steps(&["/", "/pricing", "submit contact-form"]),
                steps(&["/about", "submit newsletter"]),
            ]
        );
    }

    #[test]
    fn the_hand_counted_exits() {
        let db = TestDb::open();
        let day = scenario(&db);
        let got: Vec<(String, u64, u64)> = exits(db.db(), "demo", day, day + DAY - 1)
            .expect("exits")
            .into_iter()
            .map(|e| (e.page, e.views, e.exits))
            .collect();
        let want = [
            ("/", 7, 1),
            ("/blog", 2, 1),
            ("/pricing", 7, 1),
            ("/about", 1, 0),
            ("/thank-you", 1, 0),
        ];
        assert_eq!(
            got,
            want.iter()
                .map(|(p, v, e)| (p.to_string(), *v, *e))
                .collect::<Vec<_>>()
        );
    }
}
