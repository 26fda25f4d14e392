//! Site analytics without cookies: the tracking script's beacons parsed and
//! bounded ([`Beacon`]), visitors counted by a daily hash of site, address and
//! browser (the day's salt is random and forgotten the next day, so visits cannot
//! be linked across days), raw events in `analytics_events` with daily rollups in
//! `site_analytics` and `component_analytics`, visitors tied to contacts by a
//! signed token ([`token`]), and the per-site report; workflow analytics per
//! day ([`workflows`]); funnels of ordered steps ([`funnels`]); return on
//! investment per workflow and campaign ([`roi`]); four-week forecasts
//! ([`forecast`]); click heat maps ([`heatmap`]); the paths to a conversion
//! and the pages visitors leave from ([`paths`]); visitors, page views and
//! exits rolled up per day ([`site_days`]).

#[cfg(test)]
pub(crate) mod fixture;
pub mod forecast;
pub mod funnels;
pub mod heatmap;
pub mod paths;
pub mod roi;
pub mod site_days;
pub mod token;
pub mod workflows;

use crate::store::counters::{self, Counter, Key};
use crate::store::db::{Db, OptionalRow, params};
use serde::Serialize;
use serde_json::{Map, Value as Json, json};

use crate::store::{StoreError, UnixMs};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error("{0}")]
    Bad(String),
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One report of the tracking script.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Beacon {
    pub site: String,
    pub page: String,
    /// `view`, `click`, `scroll_depth` or `time_on_page`.
    pub event: String,
    pub component: Option<String>,
    pub value: Option<f64>,
    pub utm: Map<String, Json>,
    pub referrer: Option<String>,
    /// For clicks: the element (tag, link, start of its text) and where, for heat
    /// maps (page coordinates and the viewport width).
    pub element: Option<String>,
    pub x: Option<i64>,
    pub y: Option<i64>,
    pub w: Option<i64>,
    pub token: Option<String>,
}

/// The largest beacon accepted.
pub const MAX_BEACON_BYTES: usize = 4096;

fn text(v: &Json, key: &str, max: usize) -> Option<String> {
    v.get(key)
        .and_then(Json::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(max).collect())
}

impl Beacon {
    /// Parses a beacon body (JSON, as `navigator.sendBeacon` sends it).
    pub fn parse(body: &[u8]) -> Result<Beacon, AnalyticsError> {
        if body.len() > MAX_BEACON_BYTES {
            return Err(AnalyticsError::Bad(format!(
                "a beacon is at most {MAX_BEACON_BYTES} bytes"
            )));
        }
        let v: Json = serde_json::from_slice(body)
            .map_err(|e| AnalyticsError::Bad(format!("not JSON: {e}")))?;
        if !v.is_object() {
            return Err(AnalyticsError::Bad("a beacon is a JSON object".into()));
        }
        let site = text(&v, "site", 64).ok_or_else(|| AnalyticsError::Bad("no `site`".into()))?;
        let page = text(&v, "page", 512).unwrap_or_else(|| "/".into());
        let event =
            text(&v, "event", 32).ok_or_else(|| AnalyticsError::Bad("no `event`".into()))?;
        if !matches!(
            event.as_str(),
            "view" | "click" | "scroll_depth" | "time_on_page"
        ) {
            return Err(AnalyticsError::Bad(format!(
                "`event` must be view, click, scroll_depth or time_on_page, not `{event}`"
            )));
        }
        let mut utm = Map::new();
        if let Some(u) = v.get("utm").and_then(Json::as_object) {
            for key in crate::crm::attribution::UTM_KEYS {
                if let Some(s) = u.get(key).and_then(Json::as_str) {
                    utm.insert(key.into(), Json::String(s.chars().take(200).collect()));
                }
            }
        }
        let int = |k: &str| {
            v.get(k)
                .and_then(Json::as_f64)
                .map(|n| n.clamp(-1e7, 1e7) as i64)
        };
        Ok(Beacon {
            site,
            page,
            event,
            component: text(&v, "component", 64),
            value: v
                .get("value")
                .and_then(Json::as_f64)
                .filter(|n| n.is_finite()),
            utm,
            referrer: text(&v, "referrer", 500),
            element: text(&v, "element", 120),
            x: int("x"),
            y: int("y"),
            w: int("w"),
            token: text(&v, "token", 200),
        })
    }

    /// The event data a workflow's `page_event` trigger sees (no token).
    pub fn trigger_data(&self) -> Json {
        let mut d = json!({
            "type": "page_event",
            "site": self.site,
            "page": self.page,
            "event": self.event,
        });
        let put = |d: &mut Json, k: &str, v: Json| {
            if !v.is_null() {
                d[k] = v;
            }
        };
        put(&mut d, "component", json!(self.component));
        put(&mut d, "value", json!(self.value));
        if !self.utm.is_empty() {
            d["utm"] = Json::Object(self.utm.clone());
        }
        put(&mut d, "referrer", json!(self.referrer));
        put(&mut d, "element", json!(self.element));
        put(&mut d, "x", json!(self.x));
        put(&mut d, "y", json!(self.y));
        d
    }
}

/// The day (days since the epoch, UTC) of a moment.
pub fn day_of(at: UnixMs) -> i64 {
    at.div_euclid(DAY_MS)
}

/// The visitor of `site` for this address and browser today: a hash under the
/// day's random salt (made on first use; older salts are deleted).
pub fn visitor(
    conn: Db<'_>,
    site: &str,
    address: &str,
    user_agent: &str,
    now: UnixMs,
) -> Result<String, AnalyticsError> {
    let day = day_of(now);
    let key = format!("visitor_salt:{day}");
    let salt: Option<String> = conn
        .query_row(
            "SELECT value FROM crm_state WHERE key = ?1",
            params![&key],
            |r| r.get(0),
        )
        .optional()?;
    let salt = match salt {
        Some(s) => s,
        None => {
            let s = hex::encode(token::random_key()?);
            conn.execute(
                "DELETE FROM crm_state WHERE key LIKE 'visitor_salt:%' AND key <> ?1",
                params![&key],
            )?;
            conn.execute(
                "INSERT INTO crm_state (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                params![key, s],
            )?;
            conn.query_row(
                "SELECT value FROM crm_state WHERE key = ?1",
                params![&key],
                |r| r.get(0),
            )?
        }
    };
    let mac = token::hmac_sha256(
        salt.as_bytes(),
        format!("{site}\n{address}\n{user_agent}").as_bytes(),
    );
    Ok(hex::encode(&mac[..8]))
}

/// The contact tied to a visitor today, if any.
pub fn contact_of_visitor(
    conn: Db<'_>,
    site: &str,
    visitor: &str,
    now: UnixMs,
) -> Result<Option<i64>, AnalyticsError> {
    Ok(conn
        .prepare_cached(
            "SELECT contact_id FROM visitor_contacts WHERE site_id = ?1 AND visitor = ?2 AND day = ?3",
        )?
        .query_row(params![site, visitor, day_of(now)], |r| r.get(0))
        .optional()?)
}

/// Ties today's visitor to a contact: later events carry the contact, and the
/// visitor's anonymous events of the day are given to it. Returns the trigger data
/// of the page views so given (for the contact's timeline and touches).
pub fn tie(
    conn: Db<'_>,
    site: &str,
    visitor: &str,
    contact_id: i64,
    now: UnixMs,
) -> Result<Vec<(UnixMs, Json)>, AnalyticsError> {
    let day = day_of(now);
    conn.execute(
        "INSERT INTO visitor_contacts (site_id, visitor, contact_id, day) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (site_id, visitor) DO UPDATE SET contact_id = excluded.contact_id, day = excluded.day",
        params![site, visitor, contact_id, day],
    )?;
    let mut views = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT occurred_at, page, data FROM analytics_events \
             WHERE site_id = ?1 AND visitor = ?2 AND occurred_at >= ?3 AND contact_id IS NULL \
               AND type = 'view' AND component_id IS NULL ORDER BY occurred_at",
        )?;
        let mut rows = stmt.query(params![site, visitor, day * DAY_MS])?;
        while let Some(r) = rows.next()? {
            let at: i64 = r.get(0)?;
            let page: Option<String> = r.get(1)?;
            let data: String = r.get(2)?;
            let mut d: Json = serde_json::from_str(&data).unwrap_or_else(|_| json!({}));
            d["type"] = json!("page_event");
            d["event"] = json!("view");
            d["site"] = json!(site);
            d["page"] = json!(page);
            views.push((at, d));
        }
    }
    conn.execute(
        "UPDATE analytics_events SET contact_id = ?3 \
         WHERE site_id = ?1 AND visitor = ?2 AND occurred_at >= ?4 AND contact_id IS NULL",
        params![site, visitor, contact_id, day * DAY_MS],
    )?;
    Ok(views)
}

/// Records a beacon: the raw event and its daily rollups.
pub fn record(
    conn: Db<'_>,
    b: &Beacon,
    visitor: &str,
    contact_id: Option<i64>,
    now: UnixMs,
) -> Result<i64, AnalyticsError> {
    let mut data = b.trigger_data();
    if let Some(obj) = data.as_object_mut() {
        for k in ["type", "site", "page", "event", "component"] {
            obj.remove(k);
        }
        if let Some(w) = b.w {
            obj.insert("w".into(), json!(w));
        }
    }
    let kind = b.event.as_str();
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO analytics_events (site_id, page, component_id, type, visitor, contact_id, data, occurred_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        )?
        .query_row(
            params![b.site, b.page, b.component, kind, visitor, contact_id, data.to_string(), now],
            |r| r.get(0),
        )?;
    let day = day_of(now);
    match (kind, &b.component) {
        ("view", None) => bump_site(conn, &b.site, day, "page_views")?,
        ("view", Some(c)) => bump_component(conn, &b.site, c, day, "views")?,
        ("click", Some(c)) => bump_component(conn, &b.site, c, day, "interactions")?,
        _ => {}
    }
    Ok(id)
}

/// Adds one to a site's day (a counter every post or view bumps: written
/// once per writer's transaction, see `store::counters`).
fn bump_site(
    conn: Db<'_>,
    site: &str,
    day: i64,
    column: &'static str,
) -> Result<(), AnalyticsError> {
    counters::bump(
        conn,
        Counter {
            table: "site_analytics",
            column,
            keys: vec![
                ("site_id", Key::Text(site.to_string())),
                ("day", Key::Int(day)),
            ],
        },
    )?;
    Ok(())
}

/// Adds one to a component's day.
fn bump_component(
    conn: Db<'_>,
    site: &str,
    component: &str,
    day: i64,
    column: &'static str,
) -> Result<(), AnalyticsError> {
    counters::bump(
        conn,
        Counter {
            table: "component_analytics",
            column,
            keys: vec![
                ("site_id", Key::Text(site.to_string())),
                ("component_id", Key::Text(component.to_string())),
                ("day", Key::Int(day)),
            ],
        },
    )?;
    Ok(())
}

/// Records a form submission of a component as a conversion.
pub fn record_conversion(
    conn: Db<'_>,
    site: &str,
    page: &str,
    component: &str,
    visitor: &str,
    contact_id: Option<i64>,
    now: UnixMs,
) -> Result<(), AnalyticsError> {
    conn.prepare_cached(
        "INSERT INTO analytics_events (site_id, page, component_id, type, visitor, contact_id, data, occurred_at) \
         VALUES (?1, ?2, ?3, 'submit', ?4, ?5, '{}', ?6)",
    )?
    .execute(params![site, page, component, visitor, contact_id, now])?;
    let day = day_of(now);
    bump_site(conn, site, day, "conversions")?;
    bump_component(conn, site, component, day, "conversions")
}

/// A site's figures over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SiteReport {
    pub site: String,
    pub since: UnixMs,
    /// Distinct daily visitor hashes: a visitor coming back on another day counts
    /// again (the price of counting without cookies).
    pub visitors: u64,
    pub page_views: u64,
    pub conversions: u64,
    /// Conversions per visitor.
    pub conversion_rate: f64,
    pub components: Vec<ComponentReport>,
    pub pages: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ComponentReport {
    pub component: String,
    pub views: u64,
    pub interactions: u64,
    pub conversions: u64,
    /// Conversions per view.
    pub conversion_rate: f64,
}

/// The report of `site` for the whole UTC days from the day of `since` to
/// `now`'s: closed days from the rollups, the rest from the raw events.
pub fn site_report(
    conn: Db<'_>,
    site: &str,
    since: UnixMs,
    now: UnixMs,
) -> Result<SiteReport, AnalyticsError> {
    let n = |v: i64| v.max(0) as u64;
    let visits = site_days::window(conn, site, since, now)?;
    let (visitors, views) = (
        visits.visitors,
        visits.pages.values().map(|p| p.views).sum::<u64>(),
    );
    let mut components = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT component_id, sum(views), sum(interactions), sum(conversions) \
             FROM component_analytics WHERE site_id = ?1 AND day >= ?2 \
             GROUP BY component_id ORDER BY sum(conversions) DESC, sum(views) DESC, component_id",
        )?;
        let mut rows = stmt.query(params![site, day_of(since)])?;
        while let Some(r) = rows.next()? {
            let (views, interactions, conversions) = (n(r.get(1)?), n(r.get(2)?), n(r.get(3)?));
            components.push(ComponentReport {
                component: r.get(0)?,
                views,
                interactions,
                conversions,
                conversion_rate: if views > 0 {
                    conversions as f64 / views as f64
                } else {
                    0.0
                },
            });
        }
    }
    let conversions: i64 = conn.query_row(
        "SELECT coalesce(sum(conversions), 0) FROM site_analytics WHERE site_id = ?1 AND day >= ?2 AND day <= ?3",
        params![site, day_of(since), day_of(now)],
        |r| r.get(0),
    )?;
    let mut pages: Vec<(String, u64)> = visits
        .pages
        .into_iter()
        .map(|(p, f)| (p, f.views))
        .collect();
    pages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    pages.truncate(20);
    Ok(SiteReport {
        site: site.to_string(),
        since,
        visitors,
        page_views: views,
        conversions: n(conversions),
        conversion_rate: if visitors > 0 {
            n(conversions) as f64 / visitors as f64
        } else {
            0.0
        },
        components,
        pages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> crate::store::test_db::TestDb {
        crate::store::test_db::TestDb::open()
    }

    #[test]
    fn beacons_are_bounded_and_checked() {
        let b = Beacon::parse(
            br#"{"site":"demo","page":"/","event":"click","component":"hero","x":10,"y":2000,"w":375,"element":"a /pricing See plans","utm":{"source":"ads","evil":"x"}}"#,
        )
        .expect("beacon");
        assert_eq!((b.x, b.y, b.w), (Some(10), Some(2000), Some(375)));
        assert_eq!(b.utm.len(), 1, "only UTM keys");
        assert!(Beacon::parse(b"{}").is_err());
        assert!(Beacon::parse(br#"{"site":"demo","event":"hack"}"#).is_err());
        assert!(Beacon::parse(&[b' '; MAX_BEACON_BYTES + 1]).is_err());
        assert!(Beacon::parse(b"[1]").is_err());
    }

    #[test]
    fn visitors_are_daily_hashes_and_reports_count_them() {
        let memory = store();
        let conn = memory.db();
        let day0 = 20_000 * DAY_MS;
        let a = visitor(conn, "demo", "10.0.0.1", "Firefox", day0).expect("v");
        assert_eq!(
            a,
            visitor(conn, "demo", "10.0.0.1", "Firefox", day0 + 1000).expect("v")
        );
        assert_ne!(
            a,
            visitor(conn, "demo", "10.0.0.2", "Firefox", day0).expect("v")
        );
        let next_day = visitor(conn, "demo", "10.0.0.1", "Firefox", day0 + DAY_MS).expect("v");
        assert_ne!(a, next_day, "a new salt every day");
        let salts: i64 = conn
            .query_row(
                "SELECT count(*) FROM crm_state WHERE key LIKE 'visitor_salt:%'",
                params![],
                |r| r.get(0),
            )
            .expect("salts");
        assert_eq!(salts, 1, "yesterday's salt is gone");
        let view = |page: &str| Beacon {
            site: "demo".into(),
            page: page.into(),
            event: "view".into(),
            ..Beacon::default()
        };
        let t = day0 + DAY_MS + 5;
        record(conn, &view("/"), &next_day, None, t).expect("r");
        record(conn, &view("/pricing"), &next_day, None, t + 1).expect("r");
        record(conn, &view("/"), "other", None, t + 2).expect("r");
        let comp = Beacon {
            component: Some("contact-form".into()),
            ..view("/")
        };
        record(conn, &comp, &next_day, None, t + 3).expect("r");
        record(conn, &comp, "other", None, t + 4).expect("r");
        record_conversion(conn, "demo", "/", "contact-form", &next_day, None, t + 5).expect("c");
        let r = site_report(conn, "demo", day0 + DAY_MS, t + 10).expect("report");
        assert_eq!((r.visitors, r.page_views, r.conversions), (2, 3, 1));
        assert!((r.conversion_rate - 0.5).abs() < 1e-9);
        let form = &r.components[0];
        assert_eq!(
            (form.component.as_str(), form.views, form.conversions),
            ("contact-form", 2, 1)
        );
        assert_eq!(r.pages[0], ("/".to_string(), 2));
    }
}
