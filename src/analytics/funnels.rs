//! Funnels: the contacts who did a funnel's first step in a window, then each
//! next step at or after the previous one (within the funnel's `within` of
//! the first), with the conversion of each step and the median time from the
//! step before.
//!
//! Each step's events in the window are read once, by an index where the
//! source has one (page and component events by site, activities by type,
//! deal stages by deal), grouped by contact with their times sorted; a
//! contact's next step is then a binary search. Events of unknown visitors
//! (no contact) are not in funnels: a funnel follows people.

use std::collections::HashMap;

use serde::Serialize;

use super::workflows::nearest_rank;
use crate::model::component::ComponentEvent;
use crate::model::config::{FunnelDef, FunnelStep};
use crate::store::db::{Db, Params, params};
use crate::store::{StoreError, UnixMs};

/// One step's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepFigures {
    pub step: String,
    /// Contacts who reached this step.
    pub contacts: i64,
    /// Of those who reached the step before (1 for the first step).
    pub conversion: f64,
    /// Of those who did the first step.
    pub overall: f64,
    /// Median time from the step before (None for the first step, or when
    /// nobody reached this one).
    pub median_ms_from_previous: Option<i64>,
}

/// A funnel over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelReport {
    pub funnel: String,
    pub name: String,
    pub since: UnixMs,
    pub until: UnixMs,
    pub steps: Vec<StepFigures>,
}

/// How a step reads in a report.
pub fn label(step: &FunnelStep) -> String {
    let event = |e: &ComponentEvent| match e {
        ComponentEvent::View => "view",
        ComponentEvent::Click => "click",
        ComponentEvent::Submit => "submit",
    };
    match step {
        FunnelStep::PageView { site, page } => format!(
            "page view {site}{}",
            page.as_deref().map(|p| format!(" {p}")).unwrap_or_default()
        ),
        FunnelStep::ComponentEvent {
            site,
            component,
            event: e,
        } => format!("{} of {site} › {component}", event(e)),
        FunnelStep::FormPost { site, component } => format!("form post {site} › {component}"),
        FunnelStep::EmailOpened { template } => format!(
            "email opened{}",
            template
                .as_ref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        ),
        FunnelStep::EmailClicked { template } => format!(
            "email clicked{}",
            template
                .as_ref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        ),
        FunnelStep::Activity { kind } => format!("activity {kind}"),
        FunnelStep::DealStage { pipeline, stage } => format!("deal {pipeline} → {stage}"),
    }
}

/// Each contact's times of the step's events in `[since, until)`, ascending.
fn events(
    db: Db<'_>,
    step: &FunnelStep,
    since: UnixMs,
    until: UnixMs,
) -> Result<HashMap<i64, Vec<UnixMs>>, StoreError> {
    const EVENTS: &str = "SELECT contact_id, occurred_at FROM analytics_events \
        WHERE site_id = ?1 AND occurred_at >= ?2 AND occurred_at < ?3 AND contact_id IS NOT NULL";
    let read = |sql: &str, p: Params<'_>| -> Result<HashMap<i64, Vec<UnixMs>>, StoreError> {
        let mut out: HashMap<i64, Vec<UnixMs>> = HashMap::new();
        let mut stmt = db.prepare_cached(sql)?;
        let rows = stmt.query_map(p, |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?)))?;
        for row in rows {
            let (contact, at) = row?;
            out.entry(contact).or_default().push(at);
        }
        for times in out.values_mut() {
            times.sort_unstable();
        }
        Ok(out)
    };
    match step {
        FunnelStep::PageView { site, page: None } => read(
            &format!("{EVENTS} AND type = 'view' AND component_id IS NULL"),
            params![site.as_str(), since, until],
        ),
        FunnelStep::PageView {
            site,
            page: Some(page),
        } => read(
            &format!("{EVENTS} AND type = 'view' AND component_id IS NULL AND page = ?4"),
            params![site.as_str(), since, until, page.as_str()],
        ),
        FunnelStep::ComponentEvent {
            site,
            component,
            event,
        } => {
            let kind = match event {
                ComponentEvent::View => "view",
                ComponentEvent::Click => "click",
                ComponentEvent::Submit => "submit",
            };
            read(
                &format!("{EVENTS} AND component_id = ?4 AND type = ?5"),
                params![site.as_str(), since, until, component.as_str(), kind],
            )
        }
        FunnelStep::FormPost { site, component } => read(
            &format!("{EVENTS} AND component_id = ?4 AND type = 'submit'"),
            params![site.as_str(), since, until, component.as_str()],
        ),
        FunnelStep::EmailOpened { template } | FunnelStep::EmailClicked { template } => {
            let column = if matches!(step, FunnelStep::EmailOpened { .. }) {
                "opened_at"
            } else {
                "clicked_at"
            };
            let base = format!(
                "SELECT contact_id, {column} FROM email_sends WHERE {column} >= ?1 \
                 AND {column} < ?2 AND contact_id IS NOT NULL"
            );
            match template {
                Some(t) => read(
                    &format!("{base} AND template_id = ?3"),
                    params![since, until, t.as_str()],
                ),
                None => read(&base, params![since, until]),
            }
        }
        FunnelStep::Activity { kind } => read(
            "SELECT contact_id, occurred_at FROM activities \
             WHERE type = ?1 AND occurred_at >= ?2 AND occurred_at < ?3",
            params![kind.as_str(), since, until],
        ),
        FunnelStep::DealStage { pipeline, stage } => read(
            "SELECT d.contact_id, h.changed_at FROM deal_stage_history h \
             JOIN deals d ON d.id = h.deal_id WHERE d.pipeline = ?1 AND h.to_stage = ?2 \
             AND h.changed_at >= ?3 AND h.changed_at < ?4",
            params![pipeline.as_str(), stage.as_str(), since, until],
        ),
    }
}

/// The funnel `id` over `[since, until)`.
pub fn report(
    db: Db<'_>,
    id: &str,
    def: &FunnelDef,
    since: UnixMs,
    until: UnixMs,
) -> Result<FunnelReport, StoreError> {
    let within = def
        .within
        .as_ref()
        .and_then(|w| w.millis().ok())
        .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX));
    // Each contact still in the funnel: (time of its first step, of its last).
    let mut alive: HashMap<i64, (UnixMs, UnixMs)> = HashMap::new();
    let mut steps = Vec::new();
    let mut first_count = 0i64;
    let mut previous_count = 0i64;
    for (k, step) in def.steps.iter().enumerate() {
        let times = events(db, step, since, until)?;
        let mut gaps = Vec::new();
        if k == 0 {
            alive = times
                .into_iter()
                .filter_map(|(c, t)| t.first().map(|&at| (c, (at, at))))
                .collect();
        } else {
            alive = alive
                .into_iter()
                .filter_map(|(c, (start, last))| {
                    let t = times.get(&c)?;
                    let next = t[t.partition_point(|&at| at < last)..].first().copied()?;
                    if within.is_some_and(|w| next - start > w) {
                        return None;
                    }
                    gaps.push(next - last);
                    Some((c, (start, next)))
                })
                .collect();
        }
        let n = i64::try_from(alive.len()).unwrap_or(i64::MAX);
        if k == 0 {
            first_count = n;
            previous_count = n;
        }
        gaps.sort_unstable();
        let ratio = |num: i64, den: i64| {
            if den > 0 {
                num as f64 / den as f64
            } else {
                0.0
            }
        };
        steps.push(StepFigures {
            step: label(step),
            contacts: n,
            conversion: ratio(n, previous_count),
            overall: ratio(n, first_count),
            median_ms_from_previous: (k > 0 && !gaps.is_empty()).then(|| nearest_rank(&gaps, 0.5)),
        });
        previous_count = n;
    }
    Ok(FunnelReport {
        funnel: id.to_string(),
        name: def.name.clone().unwrap_or_else(|| id.to_string()),
        since,
        until,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::fixture::contacts;
    use crate::store::test_db::TestDb;

    const DAY: i64 = 86_400_000;
    const T0: i64 = 20_000 * DAY;

    fn funnel(yaml: &str) -> FunnelDef {
        let root = crate::yaml::parse(yaml).root.expect("yaml").to_json();
        serde_json::from_value(root).expect("funnel")
    }

    fn three_steps(within: Option<&str>) -> FunnelDef {
        funnel(&format!(
            "steps:\n  - page_view: {{site: demo, page: /pricing}}\n  - form_post: {{site: demo, component: contact-form}}\n  - activity: {{type: call}}\n{}",
            within.map(|w| format!("within: {w}\n")).unwrap_or_default()
        ))
    }

    fn event(
        db: Db<'_>,
        contact: Option<i64>,
        page: &str,
        component: Option<&str>,
        kind: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        db.execute(
            "INSERT INTO analytics_events (site_id, page, component_id, type, visitor, contact_id, occurred_at) \
             VALUES ('demo', ?1, ?2, ?3, 'v', ?4, ?5)",
            params![page, component, kind, contact, at],
        )?;
        Ok(())
    }

    fn call(db: Db<'_>, contact: i64, at: i64) -> Result<(), StoreError> {
        db.execute(
            "INSERT INTO activities (contact_id, type, occurred_at) VALUES (?1, 'call', ?2)",
            params![contact, at],
        )?;
        Ok(())
    }

    /// The same funnel in plain SQL: correlated subqueries, step by step.
    fn naive(db: Db<'_>, since: i64, until: i64) -> (Vec<i64>, Vec<Option<i64>>) {
        let ctes = "WITH s1 AS (SELECT contact_id AS c, min(occurred_at) AS t FROM analytics_events \
            WHERE site_id = 'demo' AND type = 'view' AND component_id IS NULL AND page = '/pricing' \
            AND contact_id IS NOT NULL AND occurred_at >= ?1 AND occurred_at < ?2 GROUP BY contact_id), \
            s2 AS (SELECT c, t AS t1, (SELECT min(e.occurred_at) FROM analytics_events e WHERE e.contact_id = s1.c \
            AND e.site_id = 'demo' AND e.component_id = 'contact-form' AND e.type = 'submit' \
            AND e.occurred_at >= s1.t AND e.occurred_at < ?2) AS t FROM s1), \
            s3 AS (SELECT c, t AS t2, (SELECT min(a.occurred_at) FROM activities a WHERE a.contact_id = s2.c \
            AND a.type = 'call' AND a.occurred_at >= s2.t AND a.occurred_at < ?2) AS t FROM s2 WHERE t IS NOT NULL)";
        let count = |tail: &str| -> i64 {
            db.query_row(&format!("{ctes} {tail}"), params![since, until], |r| {
                r.get(0)
            })
            .expect(tail)
        };
        let counts = vec![
            count("SELECT count(*) FROM s1"),
            count("SELECT count(t) FROM s2"),
            count("SELECT count(t) FROM s3"),
        ];
        let median = |table: &str, from: &str, n: i64| -> Option<i64> {
            (n > 0).then(|| {
                let k = ((0.5 * n as f64).ceil() as i64).max(1) - 1;
                db.query_row(
                    &format!("{ctes} SELECT t - {from} FROM {table} WHERE t IS NOT NULL ORDER BY 1 LIMIT 1 OFFSET ?3"),
                    params![since, until, k],
                    |r| r.get(0),
                )
                .expect("median")
            })
        };
        let medians = vec![
            None,
            median("s2", "t1", counts[1]),
            median("s3", "t2", counts[2]),
        ];
        (counts, medians)
    }

    #[test]
    fn generated_funnels_equal_plain_sql() {
        let db = TestDb::open();
        let mut rng = crate::rng::Rng::new(42);
        db.transaction(|db| {
            contacts(db, 80)?;
            for _ in 0..900 {
                let c = i64::try_from(rng.below(81)).unwrap_or(0);
                let contact = (c > 0).then_some(c);
                // Some before the window, most in it, some after.
                let at = T0 - DAY + i64::try_from(rng.below((12 * DAY) as u64)).unwrap_or(0);
                match rng.below(5) {
                    0 | 1 => event(db, contact, "/pricing", None, "view", at)?,
                    2 => event(db, contact, "/about", None, "view", at)?,
                    3 => event(db, contact, "/", Some("contact-form"), "submit", at)?,
                    _ => {
                        if let Some(c) = contact {
                            call(db, c, at)?;
                        }
                    }
                }
            }
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let (since, until) = (T0, T0 + 10 * DAY);
        let r = report(db.db(), "f", &three_steps(None), since, until).expect("report");
        let (counts, medians) = naive(db.db(), since, until);
        let got: Vec<i64> = r.steps.iter().map(|s| s.contacts).collect();
        assert_eq!(got, counts);
        let got: Vec<Option<i64>> = r.steps.iter().map(|s| s.median_ms_from_previous).collect();
        assert_eq!(got, medians);
        assert!(
            counts[0] > 10 && counts[2] > 0,
            "a fixture that exercises every step: {counts:?}"
        );
        for w in r.steps.windows(2) {
            assert!((w[1].conversion - w[1].contacts as f64 / w[0].contacts as f64).abs() < 1e-12);
        }
    }

    #[test]
    fn a_hand_computed_funnel() {
        let db = TestDb::open();
        let h = 3_600_000;
        db.transaction(|db| {
            contacts(db, 5)?;
            // 1: pricing, form 2 h later, call 1 h later: the whole funnel.
            event(db, Some(1), "/pricing", None, "view", T0)?;
            event(db, Some(1), "/", Some("contact-form"), "submit", T0 + 2 * h)?;
            call(db, 1, T0 + 3 * h)?;
            // 2: form before pricing does not count; a later one does (4 h).
            event(db, Some(2), "/", Some("contact-form"), "submit", T0)?;
            event(db, Some(2), "/pricing", None, "view", T0 + h)?;
            event(db, Some(2), "/", Some("contact-form"), "submit", T0 + 5 * h)?;
            // 3: pricing only.
            event(db, Some(3), "/pricing", None, "view", T0 + h)?;
            // 4: another page only: not in the funnel.
            event(db, Some(4), "/about", None, "view", T0)?;
            // 5: pricing, form after 1 h, call 30 days later.
            event(db, Some(5), "/pricing", None, "view", T0)?;
            event(db, Some(5), "/", Some("contact-form"), "submit", T0 + h)?;
            call(db, 5, T0 + 30 * DAY)?;
            // An unknown visitor: never in a funnel.
            event(db, None, "/pricing", None, "view", T0)?;
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let r = report(db.db(), "f", &three_steps(None), T0, T0 + 60 * DAY).expect("report");
        let counts: Vec<i64> = r.steps.iter().map(|s| s.contacts).collect();
        assert_eq!(counts, vec![4, 3, 2]);
        // Gaps to the form: 2 h, 4 h, 1 h → median 2 h; to the call: 1 h and
        // 30 days less 1 h → median (nearest rank of 2) 1 h.
        assert_eq!(r.steps[1].median_ms_from_previous, Some(2 * h));
        assert_eq!(r.steps[2].median_ms_from_previous, Some(h));
        assert!((r.steps[1].conversion - 0.75).abs() < 1e-12);
        assert!((r.steps[2].overall - 0.5).abs() < 1e-12);
        // Within a week, contact 5's call is too late.
        let r = report(db.db(), "f", &three_steps(Some("7d")), T0, T0 + 60 * DAY).expect("report");
        let counts: Vec<i64> = r.steps.iter().map(|s| s.contacts).collect();
        assert_eq!(counts, vec![4, 3, 1]);
        assert_eq!(r.steps[0].step, "page view demo /pricing");
    }
}
