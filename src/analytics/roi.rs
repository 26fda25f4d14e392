//! Return on investment per workflow and campaign: each deal won in a period
//! is credited to the workflows and campaigns that touched its contact in the
//! attribution window before the win, and set against the cost of their sends.
//!
//! - A **touch** is a run of a workflow for the contact (its start) or a
//!   campaign email sent to the contact, in `[won - window, won)`. A
//!   workflow's own emails are part of its run, not touches of their own.
//!   The run that moved the deal to its won stage counts even when it
//!   started in the same millisecond (the stage history names its
//!   workflow); another run starting then was started by the win.
//! - **Last touch** gives the whole value to the latest touch; **linear**
//!   splits it equally between all touches (a workflow run twice gets two
//!   shares). A deal with no touch stays unattributed.
//! - **Cost** is the emails sent in the period × `email.cost_per_send`;
//!   ROI is `(value - cost) / cost`, none without a cost.
//!
//! Deals are read by the time they were won (an index on the stage history),
//! touches by contact, sends by time: the cost grows with the period asked
//! for, not with the store's history.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::db::{Db, params};
use crate::store::{StoreError, UnixMs};

/// The attribution window when funnel.yaml names none.
pub const DEFAULT_WINDOW_MS: i64 = 30 * 86_400_000;

/// The attribution window and the cost of a send that funnel.yaml sets
/// (`analytics.attribution_window`, `email.cost_per_send`), or the defaults.
pub fn settings(ws: &crate::workspace::Workspace) -> (i64, f64) {
    let config = ws.config.as_ref().map(|d| &d.value);
    let window = config
        .and_then(|c| c.analytics.as_ref())
        .and_then(|a| a.attribution_window.as_ref())
        .and_then(|w| w.millis().ok())
        .and_then(|ms| i64::try_from(ms).ok())
        .unwrap_or(DEFAULT_WINDOW_MS);
    let cost = config
        .and_then(|c| c.email.as_ref())
        .and_then(|e| e.cost_per_send)
        .filter(|c| c.is_finite() && *c >= 0.0)
        .unwrap_or(0.0);
    (window, cost)
}

/// What touched a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Workflow,
    Campaign,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Workflow => "workflow",
            Source::Campaign => "campaign",
        }
    }
}

/// One touch of a won deal's contact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Touch {
    pub at: UnixMs,
    pub source: Source,
    pub id: String,
}

/// A deal won, with the touches before it in time order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Win {
    pub deal_id: i64,
    pub contact_id: i64,
    pub value: f64,
    pub won_at: UnixMs,
    /// The workflow that moved the deal to its won stage, if one did.
    pub source: Option<String>,
    pub touches: Vec<Touch>,
}

impl Win {
    /// The touch credited under last touch: the latest (ties broken by source
    /// and id, so the answer never depends on row order).
    pub fn last_touch(&self) -> Option<&Touch> {
        self.touches.iter().max()
    }
}

/// The deals won in `[since, until)`, each with its touches in
/// `[won - window_ms, won)`.
pub fn wins(
    db: Db<'_>,
    since: UnixMs,
    until: UnixMs,
    window_ms: i64,
) -> Result<Vec<Win>, StoreError> {
    let mut out = Vec::new();
    {
        // A closed deal never moves again, so the stage-history row that
        // brought it to its current (won) stage is the moment it was won.
        let mut stmt = db.prepare_cached(
            "SELECT d.id, d.contact_id, coalesce(d.value, 0), h.changed_at, h.source \
             FROM deal_stage_history h JOIN deals d ON d.id = h.deal_id \
             WHERE h.changed_at >= ?1 AND h.changed_at < ?2 AND d.status = 'won' \
               AND h.to_stage = d.stage ORDER BY h.changed_at, d.id",
        )?;
        let rows = stmt.query_map(params![since, until], |r| {
            Ok(Win {
                deal_id: r.get(0)?,
                contact_id: r.get(1)?,
                value: r.get(2)?,
                won_at: r.get(3)?,
                source: r.get(4)?,
                touches: Vec::new(),
            })
        })?;
        for row in rows {
            let win = row?;
            if out.last().is_some_and(|w: &Win| w.deal_id == win.deal_id) {
                continue;
            }
            out.push(win);
        }
    }
    let mut runs = db.prepare_cached(
        "SELECT workflow_id, started_at FROM executions WHERE contact_id = ?1 \
         AND started_at >= ?2 AND (started_at < ?3 OR (started_at = ?3 AND workflow_id = ?4))",
    )?;
    let mut sends = db.prepare_cached(
        "SELECT coalesce(c.campaign_key, c.uid), s.sent_at FROM email_sends s \
         JOIN email_campaigns c ON c.id = s.campaign_id \
         WHERE s.contact_id = ?1 AND s.sent_at >= ?2 AND s.sent_at < ?3",
    )?;
    for win in &mut out {
        let from = win.won_at.saturating_sub(window_ms);
        // No workflow id is empty: a win by hand lets no same-moment run in.
        let closer = win.source.clone().unwrap_or_default();
        let touch = |r: crate::store::db::Row<'_>, source| {
            Ok(Touch {
                id: r.get(0)?,
                at: r.get(1)?,
                source,
            })
        };
        for t in runs.query_map(
            params![win.contact_id, from, win.won_at, closer.as_str()],
            |r| touch(r, Source::Workflow),
        )? {
            win.touches.push(t?);
        }
        for t in sends.query_map(params![win.contact_id, from, win.won_at], |r| {
            touch(r, Source::Campaign)
        })? {
            win.touches.push(t?);
        }
        win.touches.sort();
    }
    Ok(out)
}

/// One workflow's or campaign's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoiRow {
    pub source: Source,
    /// The workflow's id or the campaign's key.
    pub id: String,
    /// Deals credited under last touch.
    pub deals_last: u64,
    pub value_last: f64,
    /// Deals credited under linear (fractions of deals).
    pub deals_linear: f64,
    pub value_linear: f64,
    /// Emails sent in the period.
    pub sends: u64,
    pub cost: f64,
    pub roi_last: Option<f64>,
    pub roi_linear: Option<f64>,
}

/// ROI over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoiReport {
    pub since: UnixMs,
    pub until: UnixMs,
    pub window_ms: i64,
    pub cost_per_send: f64,
    pub won_deals: u64,
    pub won_value: f64,
    pub unattributed_deals: u64,
    pub unattributed_value: f64,
    /// By linear value, then cost, then source and id.
    pub rows: Vec<RoiRow>,
}

fn entry<'a>(
    rows: &'a mut BTreeMap<(Source, String), RoiRow>,
    source: Source,
    id: &str,
) -> &'a mut RoiRow {
    rows.entry((source, id.to_string()))
        .or_insert_with(|| RoiRow {
            source,
            id: id.to_string(),
            deals_last: 0,
            value_last: 0.0,
            deals_linear: 0.0,
            value_linear: 0.0,
            sends: 0,
            cost: 0.0,
            roi_last: None,
            roi_linear: None,
        })
}

fn roi(value: f64, cost: f64) -> Option<f64> {
    (cost > 0.0).then(|| (value - cost) / cost)
}

/// Emails sent in `[since, until)` per workflow and per campaign. A send of a
/// campaign counts for the campaign, any other for its run's workflow.
pub fn sends(
    db: Db<'_>,
    since: UnixMs,
    until: UnixMs,
) -> Result<BTreeMap<(Source, String), u64>, StoreError> {
    let mut out = BTreeMap::new();
    for (sql, source) in [
        (
            "SELECT e.workflow_id, count(*) FROM email_sends s JOIN executions e ON e.id = s.execution_id \
             WHERE s.sent_at >= ?1 AND s.sent_at < ?2 AND s.campaign_id IS NULL GROUP BY e.workflow_id",
            Source::Workflow,
        ),
        (
            "SELECT coalesce(c.campaign_key, c.uid), count(*) FROM email_sends s \
             JOIN email_campaigns c ON c.id = s.campaign_id \
             WHERE s.sent_at >= ?1 AND s.sent_at < ?2 GROUP BY coalesce(c.campaign_key, c.uid)",
            Source::Campaign,
        ),
    ] {
        let mut stmt = db.prepare_cached(sql)?;
        let rows = stmt.query_map(params![since, until], |r| {
            Ok((r.get::<String>(0)?, r.get::<i64>(1)?))
        })?;
        for row in rows {
            let (id, n) = row?;
            out.insert((source, id), n.max(0) as u64);
        }
    }
    Ok(out)
}

/// The ROI report of `[since, until)`.
pub fn report(
    db: Db<'_>,
    since: UnixMs,
    until: UnixMs,
    window_ms: i64,
    cost_per_send: f64,
) -> Result<RoiReport, StoreError> {
    let wins = wins(db, since, until, window_ms)?;
    let sent = sends(db, since, until)?;
    let mut rows: BTreeMap<(Source, String), RoiRow> = BTreeMap::new();
    let (mut unattributed_deals, mut unattributed_value, mut won_value) = (0u64, 0.0, 0.0);
    for win in &wins {
        won_value += win.value;
        let Some(last) = win.last_touch() else {
            unattributed_deals += 1;
            unattributed_value += win.value;
            continue;
        };
        let r = entry(&mut rows, last.source, &last.id);
        r.deals_last += 1;
        r.value_last += win.value;
        let share = 1.0 / win.touches.len() as f64;
        for t in &win.touches {
            let r = entry(&mut rows, t.source, &t.id);
            r.deals_linear += share;
            r.value_linear += win.value * share;
        }
    }
    for ((source, id), n) in &sent {
        entry(&mut rows, *source, id).sends = *n;
    }
    let mut rows: Vec<RoiRow> = rows
        .into_values()
        .map(|mut r| {
            r.cost = r.sends as f64 * cost_per_send;
            r.roi_last = roi(r.value_last, r.cost);
            r.roi_linear = roi(r.value_linear, r.cost);
            r
        })
        .collect();
    rows.sort_by(|a, b| {
        b.value_linear
            .total_cmp(&a.value_linear)
            .then(b.cost.total_cmp(&a.cost))
            .then(a.source.cmp(&b.source))
            .then(a.id.cmp(&b.id))
    });
    Ok(RoiReport {
        since,
        until,
        window_ms,
        cost_per_send,
        won_deals: wins.len() as u64,
        won_value,
        unattributed_deals,
        unattributed_value,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::fixture::{self, DAY};
    use crate::store::test_db::TestDb;

    /// The hand-computed case (docs/analytics.md walks through it): three
    /// deals won in days 100–130, touched as below; cost 100 per send.
    fn scenario(db: &TestDb) {
        db.transaction(|db| {
            fixture::contacts(db, 4)?;
            let spring = fixture::campaign(db, "spring")?;
            // Contact 1: welcome (day 95, its email day 101), spring (105),
            // nurture (108, emails 108 and 109); won 1000 on day 110.
            let welcome = fixture::run(db, "welcome", Some(1), 95 * DAY, "completed")?;
            fixture::send(db, None, Some(welcome), 1, 101 * DAY)?;
            fixture::send(db, Some(spring), None, 1, 105 * DAY)?;
            let nurture = fixture::run(db, "nurture", Some(1), 108 * DAY, "completed")?;
            fixture::send(db, None, Some(nurture), 1, 108 * DAY)?;
            fixture::send(db, None, Some(nurture), 1, 109 * DAY)?;
            fixture::deal(db, 1, 1000.0, "won", "won", 110 * DAY)?;
            // Contact 2: welcome on day 80 is outside the window of a win on
            // day 115; spring on day 112.
            fixture::run(db, "welcome", Some(2), 80 * DAY, "completed")?;
            fixture::send(db, Some(spring), None, 2, 112 * DAY)?;
            fixture::deal(db, 2, 600.0, "won", "won", 115 * DAY)?;
            // Contact 3: won on day 120 untouched; a run after the win.
            fixture::deal(db, 3, 400.0, "won", "won", 120 * DAY)?;
            fixture::run(db, "welcome", Some(3), 121 * DAY, "completed")?;
            // Contact 4: won before the period, an open and a lost deal, a
            // spring email before the period.
            fixture::run(db, "welcome", Some(4), 85 * DAY, "completed")?;
            fixture::deal(db, 4, 5000.0, "won", "won", 90 * DAY)?;
            fixture::deal(db, 4, 999.0, "proposal", "open", 125 * DAY)?;
            fixture::deal(db, 4, 777.0, "lost", "lost", 126 * DAY)?;
            fixture::send(db, Some(spring), None, 4, 99 * DAY)?;
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn the_hand_computed_case() {
        let db = TestDb::open();
        scenario(&db);
        let r = report(db.db(), 100 * DAY, 130 * DAY, DEFAULT_WINDOW_MS, 100.0).expect("roi");
        assert_eq!(r.won_deals, 3);
        assert!(close(r.won_value, 2000.0));
        assert_eq!(r.unattributed_deals, 1);
        assert!(close(r.unattributed_value, 400.0));
        let by = |id: &str| r.rows.iter().find(|x| x.id == id).expect(id).clone();
        let spring = by("spring");
        assert_eq!(
            (spring.source, spring.deals_last, spring.sends),
            (Source::Campaign, 1, 2)
        );
        assert!(close(spring.value_last, 600.0));
        assert!(close(spring.value_linear, 600.0 + 1000.0 / 3.0));
        assert!(close(spring.cost, 200.0));
        assert!(close(spring.roi_last.expect("cost"), 2.0));
        let nurture = by("nurture");
        assert_eq!((nurture.deals_last, nurture.sends), (1, 2));
        assert!(close(nurture.value_last, 1000.0));
        assert!(close(nurture.roi_last.expect("cost"), 4.0));
        assert!(close(
            nurture.roi_linear.expect("cost"),
            (1000.0 / 3.0 - 200.0) / 200.0
        ));
        let welcome = by("welcome");
        assert_eq!((welcome.deals_last, welcome.sends), (0, 1));
        assert!(close(welcome.deals_linear, 1.0 / 3.0));
        assert!(close(welcome.roi_last.expect("cost"), -1.0));
        assert_eq!(r.rows[0].id, "spring", "ordered by linear value");
        let credited: f64 = r.rows.iter().map(|x| x.value_linear).sum();
        assert!(
            close(credited + r.unattributed_value, r.won_value),
            "linear credit adds up"
        );
    }

    /// A workflow that closes the deal in the run's first millisecond is
    /// credited; a run another workflow started in that millisecond (the
    /// win's own trigger) is not.
    #[test]
    fn the_closing_run_counts_the_runs_it_starts_do_not() {
        let db = TestDb::open();
        let at = 200 * DAY;
        db.transaction(|db| {
            fixture::contacts(db, 1)?;
            fixture::run(db, "stripe-payment", Some(1), at, "completed")?;
            fixture::run(db, "thank-you", Some(1), at, "completed")?;
            let deal = fixture::deal(db, 1, 50.0, "won", "won", at)?;
            db.execute(
                "UPDATE deal_stage_history SET source = 'stripe-payment' WHERE deal_id = ?1 AND to_stage = 'won'",
                params![deal],
            )?;
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let w = wins(db.db(), at, at + 1, DEFAULT_WINDOW_MS).expect("wins");
        let ids: Vec<&str> = w[0].touches.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, vec!["stripe-payment"]);
    }

    #[test]
    fn the_window_and_a_free_sender() {
        let db = TestDb::open();
        scenario(&db);
        // A 10-day window leaves contact 1 with spring and nurture only.
        let r = report(db.db(), 100 * DAY, 130 * DAY, 10 * DAY, 0.0).expect("roi");
        let welcome = r.rows.iter().find(|x| x.id == "welcome").expect("welcome");
        assert!(close(welcome.value_linear, 0.0));
        let spring = r.rows.iter().find(|x| x.id == "spring").expect("spring");
        assert!(close(spring.value_linear, 600.0 + 500.0));
        assert_eq!(spring.roi_last, None, "no cost, no ROI");
    }

    /// Linear credit per workflow equals a plain SQL reading of the rule
    /// over generated runs, campaign emails and deals.
    #[test]
    fn linear_credit_equals_plain_sql() {
        let db = TestDb::open();
        let mut rng = crate::rng::Rng::new(7);
        db.transaction(|db| {
            fixture::contacts(db, 60)?;
            let camps = [fixture::campaign(db, "a")?, fixture::campaign(db, "b")?];
            for _ in 0..400 {
                let c = 1 + rng.below(60) as i64;
                let at = (60 + rng.below(80) as i64) * DAY + rng.below(DAY as u64) as i64;
                match rng.below(3) {
                    0 => drop(fixture::run(
                        db,
                        ["w1", "w2", "w3"][rng.below(3) as usize],
                        Some(c),
                        at,
                        "completed",
                    )?),
                    _ => fixture::send(db, Some(camps[rng.below(2) as usize]), None, c, at)?,
                }
            }
            for c in 1..=60 {
                if rng.below(2) == 0 {
                    let at = (100 + rng.below(40) as i64) * DAY + 7;
                    fixture::deal(db, c, (1 + rng.below(50)) as f64 * 10.0, "won", "won", at)?;
                }
            }
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let (since, until, window) = (100 * DAY, 140 * DAY, 20 * DAY);
        let r = report(db.db(), since, until, window, 1.0).expect("roi");
        let naive = |id: &str| -> f64 {
            let sql = "WITH won AS (SELECT d.id, d.contact_id AS c, d.value AS v, h.changed_at AS t \
                 FROM deals d JOIN deal_stage_history h ON h.deal_id = d.id AND h.to_stage = d.stage \
                 WHERE d.status = 'won' AND h.changed_at >= ?1 AND h.changed_at < ?2), \
               touches AS (SELECT won.id, e.workflow_id AS who FROM won JOIN executions e ON e.contact_id = won.c \
                   AND e.started_at >= won.t - ?3 AND e.started_at < won.t \
                 UNION ALL SELECT won.id, c.campaign_key FROM won JOIN email_sends s ON s.contact_id = won.c \
                   AND s.sent_at >= won.t - ?3 AND s.sent_at < won.t JOIN email_campaigns c ON c.id = s.campaign_id), \
               n AS (SELECT id, count(*) AS k FROM touches GROUP BY id) \
               SELECT coalesce(sum(won.v * 1.0 / n.k), 0) FROM touches JOIN won ON won.id = touches.id \
                 JOIN n ON n.id = touches.id WHERE touches.who = ?4";
            db.db()
                .query_row(sql, params![since, until, window, id], |r| r.get(0))
                .expect("naive")
        };
        for id in ["w1", "w2", "w3", "a", "b"] {
            let ours = r
                .rows
                .iter()
                .find(|x| x.id == id)
                .map_or(0.0, |x| x.value_linear);
            assert!(close(ours, naive(id)), "{id}: {ours} vs {}", naive(id));
        }
        assert!(r.won_deals > 10, "the fixture wins deals: {}", r.won_deals);
    }
}
