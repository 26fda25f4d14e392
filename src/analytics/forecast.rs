//! Forecasts of each workflow's executions and conversions for the next four
//! weeks, from its trend over the last twelve, with the error the same method
//! made on the past weeks.
//!
//! - **Inputs**: finished runs per week from the daily rollups
//!   (`workflow_days`, days not rolled up yet computed from the runs), and
//!   conversions per week: deals won whose last touch
//!   was a run of the workflow ([`super::roi`]).
//! - **Method**: a least-squares line through the weekly figures from the
//!   workflow's first active week, extended four weeks and never below zero.
//!   Fewer than three weeks of history give a flat forecast of the last week.
//! - **Error**: each of the last four weeks is forecast from the weeks before
//!   it alone (a one-week-ahead backtest); the mean absolute error of those
//!   forecasts, and the mean absolute percentage error over weeks that had
//!   any, say how far to trust the line.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::db::Db;
use crate::store::{StoreError, UnixMs};

pub const WEEK_MS: i64 = 7 * 86_400_000;
/// Weeks of history the trend is fitted on.
pub const HISTORY_WEEKS: usize = 12;
/// Weeks forecast.
pub const HORIZON_WEEKS: usize = 4;
/// Past weeks the backtest forecasts.
pub const BACKTEST_WEEKS: usize = 4;
/// The fewest points a line is fitted through.
const MIN_POINTS: usize = 3;

/// One weekly series, its forecast and its error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// One figure per week of [`Report::weeks`].
    pub history: Vec<f64>,
    /// The next [`HORIZON_WEEKS`] weeks.
    pub forecast: Vec<f64>,
    /// Change per week of the fitted line.
    pub slope: f64,
    /// Mean absolute error of the one-week-ahead backtest (none when the
    /// history is too short to backtest).
    pub mae: Option<f64>,
    /// Mean absolute percentage error of the backtest over weeks with a
    /// non-zero figure.
    pub mape: Option<f64>,
}

/// A line `a + b·x` through the points `(i, values[i])`.
fn line(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.len() < 2 {
        return (values.first().copied().unwrap_or(0.0), 0.0);
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = values.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in values.iter().enumerate() {
        let dx = i as f64 - mean_x;
        sxy += dx * (y - mean_y);
        sxx += dx * dx;
    }
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (mean_y - b * mean_x, b)
}

/// The next `horizon` values after `values`: the fitted line, or the last
/// value when there are too few points; never negative.
fn extend(values: &[f64], horizon: usize) -> (Vec<f64>, f64) {
    if values.len() < MIN_POINTS {
        let last = values.last().copied().unwrap_or(0.0);
        return (vec![last.max(0.0); horizon], 0.0);
    }
    let (a, b) = line(values);
    let n = values.len();
    let out = (0..horizon)
        .map(|k| (a + b * (n + k) as f64).max(0.0))
        .collect();
    (out, b)
}

/// Fits a weekly series: `history` has one figure per week, oldest first;
/// leading weeks of zeros (before the workflow existed) are not fitted.
pub fn fit(history: &[f64]) -> Series {
    let start = history
        .iter()
        .position(|v| *v != 0.0)
        .unwrap_or(history.len());
    let active = &history[start..];
    let (forecast, slope) = extend(active, HORIZON_WEEKS);
    let mut errors = Vec::new();
    let mut pct = Vec::new();
    for t in active.len().saturating_sub(BACKTEST_WEEKS)..active.len() {
        if t < MIN_POINTS {
            continue;
        }
        let (guess, _) = extend(&active[..t], 1);
        let (guess, actual) = (guess.first().copied().unwrap_or(0.0), active[t]);
        errors.push((guess - actual).abs());
        if actual != 0.0 {
            pct.push((guess - actual).abs() / actual.abs());
        }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    Series {
        history: history.to_vec(),
        forecast,
        slope,
        mae: mean(&errors),
        mape: mean(&pct),
    }
}

/// One workflow's forecasts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowForecast {
    pub workflow: String,
    pub executions: Series,
    pub conversions: Series,
}

/// Forecasts of every workflow with runs in the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Start of each history week (Unix ms), oldest first; the last week ends
    /// at the start of the day of the report.
    pub weeks: Vec<UnixMs>,
    /// Start of each forecast week.
    pub forecast_weeks: Vec<UnixMs>,
    pub workflows: Vec<WorkflowForecast>,
}

/// Forecasts as of `now`, from the workflows' days and the deals won, with
/// `window_ms` as the attribution window.
pub fn report(
    db: Db<'_>,
    workflow: Option<&str>,
    now: UnixMs,
    window_ms: i64,
) -> Result<Report, StoreError> {
    let end = now.div_euclid(86_400_000) * 86_400_000;
    let start = end - HISTORY_WEEKS as i64 * WEEK_MS;
    let week_of = |at: UnixMs| usize::try_from((at - start).div_euclid(WEEK_MS)).ok();
    let mut runs: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    // Stored days are read, days not rolled up yet computed: the same
    // figures whether or not the roll-up has caught up.
    for d in super::workflows::report(db, workflow, start, end - 1)? {
        if let Some(w) = week_of(d.day * 86_400_000).filter(|w| *w < HISTORY_WEEKS) {
            runs.entry(d.workflow)
                .or_insert_with(|| vec![0.0; HISTORY_WEEKS])[w] += d.runs as f64;
        }
    }
    let mut conversions: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for win in super::roi::wins(db, start, end, window_ms)? {
        let Some(last) = win.last_touch() else {
            continue;
        };
        if last.source != super::roi::Source::Workflow || workflow.is_some_and(|w| w != last.id) {
            continue;
        }
        if let Some(w) = week_of(win.won_at).filter(|w| *w < HISTORY_WEEKS) {
            conversions
                .entry(last.id.clone())
                .or_insert_with(|| vec![0.0; HISTORY_WEEKS])[w] += 1.0;
        }
    }
    let ids: std::collections::BTreeSet<&String> = runs.keys().chain(conversions.keys()).collect();
    let zeros = vec![0.0; HISTORY_WEEKS];
    let workflows = ids
        .into_iter()
        .map(|id| WorkflowForecast {
            workflow: id.clone(),
            executions: fit(runs.get(id).unwrap_or(&zeros)),
            conversions: fit(conversions.get(id).unwrap_or(&zeros)),
        })
        .collect();
    Ok(Report {
        weeks: (0..HISTORY_WEEKS as i64)
            .map(|w| start + w * WEEK_MS)
            .collect(),
        forecast_weeks: (0..HORIZON_WEEKS as i64)
            .map(|w| end + w * WEEK_MS)
            .collect(),
        workflows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::fixture::{self, DAY};
    use crate::store::db::params;
    use crate::store::test_db::TestDb;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_straight_line_is_extended_without_error() {
        let s = fit(&[0.0, 0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(s.forecast, vec![10.0, 12.0, 14.0, 16.0]);
        assert!(close(s.slope, 2.0));
        assert_eq!((s.mae, s.mape), (Some(0.0), Some(0.0)));
    }

    /// Worked by hand: 10, 12, 11, 15, 14. The line through all five has
    /// slope 11/10 (sums of products 11 over squares 10 about x = 2, y = 12.4)
    /// and 10.2 at x = 0, so the next weeks are 15.7, 16.8, 17.9 and 19.
    /// Backtest: week 3 from (10, 12, 11): 10.5 + 0.5·x gives 12 against 15
    /// (error 3, 20%); week 4 from (10, 12, 11, 15): 9.9 + 1.4·x gives 15.5
    /// against 14 (error 1.5, 1.5/14).
    #[test]
    fn the_hand_computed_series() {
        let s = fit(&[10.0, 12.0, 11.0, 15.0, 14.0]);
        let want = [15.7, 16.8, 17.9, 19.0];
        for (got, want) in s.forecast.iter().zip(want) {
            assert!(close(*got, want), "{:?}", s.forecast);
        }
        assert!(close(s.slope, 1.1));
        assert!(close(s.mae.expect("mae"), (3.0 + 1.5) / 2.0));
        assert!(close(s.mape.expect("mape"), (0.2 + 1.5 / 14.0) / 2.0));
    }

    #[test]
    fn short_and_falling_series() {
        let s = fit(&[0.0, 0.0, 5.0, 7.0]);
        assert_eq!(s.forecast, vec![7.0; 4], "two weeks: flat");
        assert_eq!(s.mae, None);
        let s = fit(&[9.0, 6.0, 3.0]);
        assert_eq!(s.forecast, vec![0.0; 4], "never below zero");
        assert_eq!(fit(&[0.0; 12]).forecast, vec![0.0; 4]);
    }

    /// Runs per week come from the daily rollups; conversions are the deals
    /// whose last touch was the workflow.
    #[test]
    fn the_inputs_are_the_rollups_and_last_touch_wins() {
        let db = TestDb::open();
        let now = 1000 * DAY + 5;
        let start = 1000 * DAY - HISTORY_WEEKS as i64 * WEEK_MS;
        db.transaction(|db| {
            for (week, n) in [(9i64, 3), (10, 5), (11, 7)] {
                db.execute(
                    "INSERT INTO workflow_days (workflow_id, day, runs, completed, failed, \
                     duration_ms_sum, p50_ms, p95_ms) VALUES ('drip', ?1, ?2, ?2, 0, 0, 0, 0)",
                    params![(start + week * WEEK_MS) / DAY + 2, n],
                )?;
            }
            // Every day of the history is rolled up; the runs below are
            // only there to be touches.
            db.execute(
                "INSERT INTO rollup_marks (name, done_until) VALUES ('workflow_days', ?1)",
                params![1000 - 1],
            )?;
            fixture::contacts(db, 2)?;
            fixture::run(db, "drip", Some(1), start + 10 * WEEK_MS, "completed")?;
            fixture::deal(db, 1, 10.0, "won", "won", start + 10 * WEEK_MS + DAY)?;
            fixture::run(db, "other", Some(2), start + 11 * WEEK_MS, "completed")?;
            fixture::deal(db, 2, 10.0, "won", "won", start + 11 * WEEK_MS + DAY)?;
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let r = report(db.db(), None, now, 30 * DAY).expect("forecast");
        assert_eq!(r.weeks.len(), HISTORY_WEEKS);
        assert_eq!(r.forecast_weeks[0], 1000 * DAY);
        let drip = r
            .workflows
            .iter()
            .find(|w| w.workflow == "drip")
            .expect("drip");
        assert_eq!(&drip.executions.history[9..], &[3.0, 5.0, 7.0]);
        assert_eq!(drip.executions.forecast[0], 9.0);
        assert_eq!(drip.conversions.history[10], 1.0);
        assert_eq!(drip.conversions.history.iter().sum::<f64>(), 1.0);
        let other = r
            .workflows
            .iter()
            .find(|w| w.workflow == "other")
            .expect("other");
        assert_eq!(other.conversions.history[11], 1.0);
        let only = report(db.db(), Some("other"), now, 30 * DAY).expect("forecast");
        assert_eq!(only.workflows.len(), 1);
    }
}
