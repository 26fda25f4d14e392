//! The HTML report (`funnel report --html OUT`): one self-contained file with
//! every analytics view of a period: the sites' traffic, conversions, click
//! heat maps, paths and exits; funnels; workflow runs; email; ROI; forecasts
//! and the optimization advice.
//!
//! [`gather`] reads the figures through the analytics modules (the same
//! numbers `funnel analytics …` prints); [`render`] fills
//! `src/report/report.html` with them and charts drawn as inline SVG
//! ([`svg`]). The page carries a Content-Security-Policy that allows no
//! request at all: no script, font, image or style leaves the file, so it can
//! be mailed or archived and opens the same anywhere. Every piece of user
//! text is escaped by the template engine.

pub mod svg;

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::analytics::{self, forecast, funnels, heatmap, paths, roi, workflows};
use crate::optimize::{self, Advice};
use crate::store::db::{Db, params};
use crate::store::{StoreError, UnixMs};
use crate::workspace::Workspace;

const DAY_MS: i64 = 86_400_000;
/// The longest period a report covers: a chart has a bar per day.
pub const MAX_DAYS: i64 = 400;
const TEMPLATE: &str = include_str!("report/report.html");

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the report template: {0}")]
    Template(#[from] minijinja::Error),
}

/// One site's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SiteSection {
    pub report: analytics::SiteReport,
    /// (day, page views, conversions) from the daily rollups.
    pub daily: Vec<(i64, i64, i64)>,
    pub heat: Vec<heatmap::PageHeat>,
    pub paths: paths::PathsReport,
    pub exits: Vec<paths::Exit>,
}

/// Emails sent in the period and what became of them.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct EmailTotals {
    pub sent: i64,
    pub opened: i64,
    pub clicked: i64,
    pub bounced: i64,
}

/// Everything the report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Gathered {
    pub workspace: String,
    pub since: UnixMs,
    pub until: UnixMs,
    pub sites: Vec<SiteSection>,
    pub funnels: Vec<funnels::FunnelReport>,
    pub workflow_days: Vec<workflows::Day>,
    pub email: EmailTotals,
    pub roi: roi::RoiReport,
    pub forecast: forecast::Report,
    pub advice: Vec<Advice>,
}

/// Reads the figures of `[since, until)`. Workflow days are read from the
/// rollups: the caller brings them up to date first.
pub fn gather(
    db: Db<'_>,
    ws: &Workspace,
    since: UnixMs,
    until: UnixMs,
) -> Result<Gathered, StoreError> {
    let mut sites = Vec::new();
    for site in ws.sites.keys() {
        let report = analytics::site_report(db, site, since, until - 1).map_err(|e| match e {
            analytics::AnalyticsError::Store(s) => s,
            other => StoreError::Invalid(other.to_string()),
        })?;
        let mut daily = Vec::new();
        {
            let mut stmt = db.prepare_cached(
                "SELECT day, page_views, conversions FROM site_analytics \
                 WHERE site_id = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day",
            )?;
            let rows = stmt.query_map(
                params![
                    site.as_str(),
                    since.div_euclid(DAY_MS),
                    (until - 1).div_euclid(DAY_MS)
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            for row in rows {
                daily.push(row?);
            }
        }
        sites.push(SiteSection {
            report,
            daily,
            heat: heatmap::report(db, site, since, until)?,
            paths: paths::report(db, site, since, until)?,
            exits: paths::exits(db, site, since, until)?,
        });
    }
    let mut funnel_reports = Vec::new();
    if let Some(a) = ws.config.as_ref().and_then(|c| c.value.analytics.as_ref()) {
        for (id, def) in &a.funnels {
            funnel_reports.push(funnels::report(db, id, def, since, until)?);
        }
    }
    let email = db.query_row(
        "SELECT count(*), count(opened_at), count(clicked_at), count(bounced_at) \
         FROM email_sends WHERE sent_at >= ?1 AND sent_at < ?2",
        params![since, until],
        |r| {
            Ok(EmailTotals {
                sent: r.get(0)?,
                opened: r.get(1)?,
                clicked: r.get(2)?,
                bounced: r.get(3)?,
            })
        },
    )?;
    let (window, cost) = roi::settings(ws);
    Ok(Gathered {
        workspace: ws
            .config
            .as_ref()
            .map(|c| c.value.name.clone())
            .unwrap_or_default(),
        since,
        until,
        sites,
        funnels: funnel_reports,
        workflow_days: workflows::report(db, None, since, until)?,
        email,
        roi: roi::report(db, since, until, window, cost)?,
        forecast: forecast::report(db, None, until, window)?,
        advice: optimize::advise(db, ws, &optimize::Scope::default(), since, until)?,
    })
}

fn date(ms: UnixMs) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// `MM-DD`, for chart labels.
fn short_date(ms: UnixMs) -> String {
    date(ms).get(5..).unwrap_or_default().to_string()
}

fn pct(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.1}%", part / whole * 100.0)
    } else {
        "–".into()
    }
}

fn money(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The charts of a report, drawn already; the context names them by index
/// (serializing marks them unsafe, so they are passed beside it).
type Charts = Vec<minijinja::Value>;

fn chart(charts: &mut Charts, svg: String) -> usize {
    charts.push(minijinja::Value::from_safe_string(svg));
    charts.len() - 1
}

/// The days of the period as labels, and each day's value from `(day, v)`.
fn per_day(since: UnixMs, until: UnixMs, points: &[(i64, f64)]) -> (Vec<String>, Vec<f64>) {
    let (first, last) = (since.div_euclid(DAY_MS), (until - 1).div_euclid(DAY_MS));
    let labels = (first..=last)
        .map(|d| date(d * DAY_MS)[5..].to_string())
        .collect();
    let mut values = vec![0.0; usize::try_from(last - first + 1).unwrap_or(0)];
    for (day, v) in points {
        if let Some(slot) = usize::try_from(day - first)
            .ok()
            .and_then(|i| values.get_mut(i))
        {
            *slot += v;
        }
    }
    (labels, values)
}

fn site_context(g: &Gathered, s: &SiteSection, charts: &mut Charts) -> Json {
    let r = &s.report;
    let views: Vec<(i64, f64)> = s.daily.iter().map(|d| (d.0, d.1 as f64)).collect();
    let (labels, values) = per_day(g.since, g.until, &views);
    let traffic = svg::bars(
        &svg::Chart {
            title: &format!("Page views per day on {}", r.site),
            width: 900,
            height: 240,
            unit: "",
        },
        &labels,
        &values,
    );
    let heat: Vec<Json> = s
        .heat
        .iter()
        .take(3)
        .map(|p| {
            let mut cells = std::collections::BTreeMap::new();
            for c in &p.components {
                for cell in &c.cells {
                    *cells.entry((cell.col, cell.row)).or_insert(0u64) += cell.clicks;
                }
            }
            let cells: Vec<(usize, usize, u64)> = cells.into_iter().map(|((c, r), n)| (c, r, n)).collect();
            let rows = p.rows.clamp(1, heatmap::MAX_ROWS);
            json!({
                "page": p.page,
                "clicks": p.clicks,
                "chart": chart(charts, svg::heat(
                    &svg::Chart {
                        title: &format!("Clicks on {} (tenths of the width × 100 px bands)", p.page),
                        width: 420,
                        height: (60 + rows * 14).clamp(120, 900) as u32,
                        unit: "",
                    },
                    heatmap::COLUMNS,
                    rows,
                    &cells,
                )),
                "components": p.components.iter().take(6).map(|c| json!({
                    "component": c.component,
                    "clicks": c.clicks,
                    "top": c.elements.first().map(|e| format!("{} ×{}", e.0, e.1)).unwrap_or_default(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "site": r.site,
        "visitors": r.visitors,
        "page_views": r.page_views,
        "conversions": r.conversions,
        "conversion_rate": pct(r.conversions as f64, r.visitors as f64),
        "traffic": chart(charts, traffic),
        "components": r.components.iter().take(12).map(|c| json!({
            "component": c.component, "views": c.views, "interactions": c.interactions,
            "conversions": c.conversions, "rate": pct(c.conversions as f64, c.views as f64),
        })).collect::<Vec<_>>(),
        "heat": heat,
        "paths": s.paths.paths.iter().map(|p| json!({
            "path": p.steps.join(" → "), "conversions": p.conversions, "share": pct(p.share, 1.0),
        })).collect::<Vec<_>>(),
        "exits": s.exits.iter().take(8).map(|e| json!({
            "page": e.page, "views": e.views, "exits": e.exits, "rate": pct(e.exit_rate, 1.0),
        })).collect::<Vec<_>>(),
    })
}

fn workflows_context(g: &Gathered, charts: &mut Charts) -> Json {
    let mut by: std::collections::BTreeMap<&str, (i64, i64, i64, Vec<i64>)> = Default::default();
    let mut per_day_runs: std::collections::BTreeMap<i64, f64> = Default::default();
    for d in &g.workflow_days {
        let e = by.entry(d.workflow.as_str()).or_default();
        e.0 += d.runs;
        e.1 += d.completed;
        e.2 += d.failed;
        e.3.push(d.p95_ms);
        *per_day_runs.entry(d.day).or_default() += d.runs as f64;
    }
    let points: Vec<(i64, f64)> = per_day_runs.into_iter().collect();
    let (labels, values) = per_day(g.since, g.until, &points);
    let runs = svg::bars(
        &svg::Chart {
            title: "Workflow runs finished per day",
            width: 900,
            height: 220,
            unit: "",
        },
        &labels,
        &values,
    );
    json!({
        "chart": chart(charts, runs),
        "rows": by.iter().map(|(w, (runs, ok, failed, p95))| json!({
            "workflow": w, "runs": runs, "success": pct(*ok as f64, *runs as f64), "failed": failed,
            "p95": format!("{:.1} s", p95.iter().copied().max().unwrap_or(0) as f64 / 1000.0),
        })).collect::<Vec<_>>(),
    })
}

fn roi_context(g: &Gathered, charts: &mut Charts) -> Json {
    let r = &g.roi;
    let bars: Vec<(String, f64)> = r
        .rows
        .iter()
        .take(10)
        .map(|x| {
            (
                format!("{} {}", x.source.as_str(), x.id),
                x.value_linear - x.cost,
            )
        })
        .collect();
    json!({
        "won": r.won_deals,
        "value": money(r.won_value),
        "window_days": r.window_ms / DAY_MS,
        "cost_per_send": r.cost_per_send,
        "unattributed": money(r.unattributed_value),
        "chart": chart(charts, svg::hbars(
            &svg::Chart { title: "Value credited (linear) minus the cost of sends", width: 900, height: (80 + 28 * bars.len()).max(140) as u32, unit: "" },
            &bars,
        )),
        "rows": r.rows.iter().map(|x| json!({
            "source": x.source.as_str(), "id": x.id, "deals_last": x.deals_last,
            "value_last": money(x.value_last), "deals_linear": format!("{:.2}", x.deals_linear),
            "value_linear": money(x.value_linear), "sends": x.sends, "cost": money(x.cost),
            "roi_last": x.roi_last.map(|v| format!("{:+.0}%", v * 100.0)).unwrap_or_else(|| "–".into()),
            "roi_linear": x.roi_linear.map(|v| format!("{:+.0}%", v * 100.0)).unwrap_or_else(|| "–".into()),
        })).collect::<Vec<_>>(),
    })
}

fn forecast_context(g: &Gathered, charts: &mut Charts) -> Json {
    let f = &g.forecast;
    let labels: Vec<String> = f
        .weeks
        .iter()
        .chain(&f.forecast_weeks)
        .map(|w| short_date(*w))
        .collect();
    let n = f.weeks.len();
    let error = |s: &forecast::Series| match (s.mae, s.mape) {
        (Some(mae), Some(mape)) => format!("±{mae:.1} ({:.0}%)", mape * 100.0),
        (Some(mae), None) => format!("±{mae:.1}"),
        _ => "too little history".into(),
    };
    let rows: Vec<Json> = f
        .workflows
        .iter()
        .filter(|w| w.executions.history.iter().any(|v| *v > 0.0))
        .take(8)
        .map(|w| {
            let s = &w.executions;
            let past: Vec<Option<f64>> = s.history.iter().map(|v| Some(*v)).chain(std::iter::repeat_n(None, s.forecast.len())).collect();
            // The forecast line starts at the last past week so the two join.
            let next: Vec<Option<f64>> = (0..n + s.forecast.len())
                .map(|i| match i.cmp(&(n - 1)) {
                    std::cmp::Ordering::Less => None,
                    std::cmp::Ordering::Equal => s.history.last().copied(),
                    std::cmp::Ordering::Greater => s.forecast.get(i - n).copied(),
                })
                .collect();
            let svg = svg::lines(
                &svg::Chart { title: &format!("{}: runs per week and the next four", w.workflow), width: 440, height: 220, unit: "" },
                &labels,
                &[
                    svg::Series { name: "runs", values: &past, stroke: svg::Stroke::Solid },
                    svg::Series { name: "forecast", values: &next, stroke: svg::Stroke::Dashed },
                ],
            );
            json!({
                "workflow": w.workflow,
                "chart": chart(charts, svg),
                "next": s.forecast.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(", "),
                "error": error(s),
                "conversions_next": w.conversions.forecast.iter().map(|v| format!("{v:.1}")).collect::<Vec<_>>().join(", "),
                "conversions_error": error(&w.conversions),
            })
        })
        .collect();
    json!({ "rows": rows })
}

/// The report as one HTML document.
pub fn render(g: &Gathered) -> Result<String, ReportError> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("report.html", TEMPLATE)?;
    let e = &g.email;
    let mut charts = Charts::new();
    let charts = &mut charts;
    let funnels: Vec<Json> = g
        .funnels
        .iter()
        .map(|f| {
            let bars: Vec<(String, f64)> = f.steps.iter().map(|s| (s.step.clone(), s.contacts as f64)).collect();
            json!({
                "name": f.name,
                "chart": chart(charts, svg::hbars(
                    &svg::Chart { title: &format!("{}: contacts at each step", f.name), width: 900, height: (80 + 28 * bars.len()).max(140) as u32, unit: "" },
                    &bars,
                )),
                "steps": f.steps.iter().map(|s| json!({
                    "step": s.step, "contacts": s.contacts, "conversion": pct(s.conversion, 1.0),
                    "overall": pct(s.overall, 1.0),
                    "median": s.median_ms_from_previous.map(|ms| format!("{:.1} h", ms as f64 / 3_600_000.0)).unwrap_or_default(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let ctx = json!({
        "workspace": g.workspace,
        "since": date(g.since),
        "until": date(g.until),
        "totals": {
            "visitors": g.sites.iter().map(|s| s.report.visitors).sum::<u64>(),
            "conversions": g.sites.iter().map(|s| s.report.conversions).sum::<u64>(),
            "sent": e.sent,
            "open_rate": pct(e.opened as f64, e.sent as f64),
            "click_rate": pct(e.clicked as f64, e.sent as f64),
            "bounce_rate": pct(e.bounced as f64, e.sent as f64),
            "won": g.roi.won_deals,
            "won_value": money(g.roi.won_value),
        },
        "sites": g.sites.iter().map(|s| site_context(g, s, charts)).collect::<Vec<_>>(),
        "funnels": funnels,
        "workflows": workflows_context(g, charts),
        "roi": roi_context(g, charts),
        "forecast": forecast_context(g, charts),
        "advice": g.advice.iter().map(|a| json!({
            "severity": a.severity, "kind": a.kind, "target": a.target,
            "finding": a.finding, "suggestion": a.suggestion,
        })).collect::<Vec<_>>(),
    });
    Ok(env
        .get_template("report.html")?
        .render(minijinja::context! {
            r => minijinja::Value::from(minijinja::value::Serde(&ctx)),
            charts => minijinja::Value::from(std::mem::take(charts)),
        })?)
}
