//! Optimization advice (`funnel optimize`): what the figures say to change,
//! each piece of advice with the numbers behind it and what to do.
//!
//! - **Failing steps**: a workflow step whose attempts fail in 5% of the
//!   workflow's runs or more (3 failures at least), from the daily rollups.
//! - **Slow steps** (bottlenecks): an action step whose attempts take 10 s or
//!   more at the 95th percentile (5 attempts at least); waits, delays,
//!   sub-workflows and containers are slow on purpose and left out.
//! - **Subject lines**: an email template whose open rate is under 80% of the
//!   workspace's median (templates with 20 sends or more), with an A/B test
//!   of a new subject as the suggestion.
//! - **Forms that get views and no submissions** (50 views or more).
//! - **Components nobody sees**: an instance with no view on a page viewed
//!   50 times or more; and **components seen and never clicked**: a
//!   clickable, non-form component seen 50 times or more with no click.
//! - **Forms no workflow starts from**, with the `funnel suggest` line that
//!   proposes one.
//! - **Funnel drop-offs**: each funnel's weakest step, when under 30%.
//! - **Pages where visitors leave**: pages with 50 views or more where 60% or
//!   more of the visits that end there end without a form post.
//! - **Workflows and campaigns that do not pay for their sends**: 20 sends or
//!   more whose cost (`email.cost_per_send`) exceeds the value of the won
//!   deals credited to them (linear attribution, see `analytics::roi`).
//!
//! The thresholds are constants below, written where they are used.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::store::db::{Db, params};
use crate::store::{StoreError, UnixMs};
use crate::workspace::Workspace;

const STEP_FAILURE_SHARE: f64 = 0.05;
const STEP_FAILURES_MIN: i64 = 3;
const SLOW_STEP_MS: i64 = 10_000;
const SLOW_STEP_ATTEMPTS_MIN: usize = 5;
/// Steps that take long by design.
const PAUSES: [&str; 7] = [
    "delay",
    "wait_until",
    "wait_for_event",
    "sub_workflow",
    "parallel",
    "for_each",
    "loop",
];
const SENDS_MIN: i64 = 20;
const SUBJECT_SHARE_OF_MEDIAN: f64 = 0.8;
const VIEWS_MIN: i64 = 50;
const FUNNEL_STEP_MIN: f64 = 0.30;
const EXIT_RATE_MIN: f64 = 0.60;

/// One piece of advice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    pub kind: &'static str,
    /// What it is about: a workflow, `workflow › step`, a template,
    /// `site › component` or a funnel.
    pub target: String,
    /// `high`, `medium` or `low`.
    pub severity: &'static str,
    pub finding: String,
    pub suggestion: String,
    /// The numbers behind it.
    pub evidence: Json,
}

/// What to look at: everything, or one workflow, campaign, template or site.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub workflow: Option<String>,
    /// A campaign: its sends, and its template's subject line (`template`).
    pub campaign: Option<String>,
    pub template: Option<String>,
    pub site: Option<String>,
}

impl Scope {
    /// The scope `target` names: a workflow, a campaign, an email template or
    /// a site of `ws`, looked up in that order (none: everything).
    pub fn of(ws: &Workspace, target: Option<&str>) -> Result<Scope, String> {
        let Some(t) = target else {
            return Ok(Scope::default());
        };
        let one = Some(t.to_string());
        if ws.workflows.contains_key(t) {
            Ok(Scope {
                workflow: one,
                ..Scope::default()
            })
        } else if let Some(c) = ws.campaigns.get(t) {
            Ok(Scope {
                campaign: one,
                template: Some(c.value.template.to_string()),
                ..Scope::default()
            })
        } else if ws.email_templates.contains_key(t) {
            Ok(Scope {
                template: one,
                ..Scope::default()
            })
        } else if ws.sites.contains_key(t) {
            Ok(Scope {
                site: one,
                ..Scope::default()
            })
        } else {
            Err(format!(
                "`{}` is no workflow, campaign, email template or site of this workspace",
                t.chars().take(60).collect::<String>()
            ))
        }
    }

    fn all(&self) -> bool {
        self.workflow.is_none()
            && self.campaign.is_none()
            && self.template.is_none()
            && self.site.is_none()
    }
}

/// The advice for `[since, now)`, most severe first.
pub fn advise(
    db: Db<'_>,
    ws: &Workspace,
    scope: &Scope,
    since: UnixMs,
    now: UnixMs,
) -> Result<Vec<Advice>, StoreError> {
    let mut out = Vec::new();
    if scope.all() || scope.workflow.is_some() {
        failing_steps(db, scope, since, now, &mut out)?;
        slow_steps(db, ws, scope, since, now, &mut out)?;
    }
    if scope.all() || scope.template.is_some() {
        subject_lines(db, ws, scope, since, now, &mut out)?;
    }
    if scope.all() || scope.site.is_some() {
        forms(db, ws, scope, since, &mut out)?;
    }
    if scope.all() || scope.site.is_some() {
        exits(db, ws, scope, since, now, &mut out)?;
        components(db, ws, scope, since, now, &mut out)?;
    }
    if scope.all() {
        funnels(db, ws, since, now, &mut out)?;
    }
    if scope.all() || scope.workflow.is_some() || scope.campaign.is_some() {
        unpaid_sends(db, ws, scope, since, now, &mut out)?;
    }
    let rank = |s: &str| match s {
        "high" => 0,
        "medium" => 1,
        _ => 2,
    };
    out.sort_by(|a, b| {
        rank(a.severity)
            .cmp(&rank(b.severity))
            .then_with(|| a.kind.cmp(b.kind))
            .then_with(|| a.target.cmp(&b.target))
    });
    Ok(out)
}

fn failing_steps(
    db: Db<'_>,
    scope: &Scope,
    since: UnixMs,
    now: UnixMs,
    out: &mut Vec<Advice>,
) -> Result<(), StoreError> {
    let days = crate::analytics::workflows::report(db, scope.workflow.as_deref(), since, now)?;
    let mut runs: BTreeMap<&str, i64> = BTreeMap::new();
    let mut failures: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for d in &days {
        *runs.entry(d.workflow.as_str()).or_default() += d.runs;
        for (step, n) in &d.step_failures {
            *failures
                .entry((d.workflow.as_str(), step.as_str()))
                .or_default() += n;
        }
    }
    for ((workflow, step), n) in failures {
        let total = runs.get(workflow).copied().unwrap_or(0).max(1);
        let share = n as f64 / total as f64;
        if n < STEP_FAILURES_MIN || share < STEP_FAILURE_SHARE {
            continue;
        }
        out.push(Advice {
            kind: "failing_step",
            target: format!("{workflow} › {step}"),
            severity: if share >= 0.2 { "high" } else { "medium" },
            finding: format!(
                "step `{step}` failed {n} times in {total} runs of `{workflow}` ({:.0}%)",
                share * 100.0
            ),
            suggestion: format!(
                "look at the failures (`funnel executions list --workflow {workflow} --status failed`); give the step a `retry` policy for passing errors, or a `when` condition for the cases it cannot handle"
            ),
            evidence: json!({"failures": n, "runs": total, "share": share}),
        });
    }
    Ok(())
}

/// Every step's type by id, the steps inside `parallel` branches and
/// `for_each` included.
fn step_types<'a>(
    steps: &'a [crate::model::step::Step],
    out: &mut BTreeMap<&'a str, &'static str>,
) {
    use crate::model::step::StepKind;
    for s in steps {
        out.insert(s.id.as_str(), s.kind.type_name());
        match &s.kind {
            StepKind::Parallel { branches } => {
                for b in branches.values() {
                    step_types(b, out);
                }
            }
            StepKind::ForEach { steps, .. } => step_types(steps, out),
            _ => {}
        }
    }
}

fn slow_steps(
    db: Db<'_>,
    ws: &Workspace,
    scope: &Scope,
    since: UnixMs,
    now: UnixMs,
    out: &mut Vec<Advice>,
) -> Result<(), StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT s.step_id, s.finished_at - s.started_at FROM executions e \
         JOIN step_runs s ON s.execution_id = e.id WHERE e.workflow_id = ?1 \
         AND e.started_at >= ?2 AND e.started_at < ?3 AND s.finished_at IS NOT NULL",
    )?;
    for (id, doc) in &ws.workflows {
        if scope.workflow.as_ref().is_some_and(|w| w != id) {
            continue;
        }
        let mut kinds: BTreeMap<&str, &str> = BTreeMap::new();
        step_types(&doc.value.steps, &mut kinds);
        let mut times: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let rows = stmt.query_map(params![id.as_str(), since, now], |r| {
            Ok((r.get::<String>(0)?, r.get::<i64>(1)?))
        })?;
        for row in rows {
            let (step, ms) = row?;
            if kinds
                .get(step.as_str())
                .is_some_and(|k| !PAUSES.contains(k))
            {
                times.entry(step).or_default().push(ms.max(0));
            }
        }
        for (step, mut ms) in times {
            if ms.len() < SLOW_STEP_ATTEMPTS_MIN {
                continue;
            }
            ms.sort_unstable();
            let p95 = crate::analytics::workflows::nearest_rank(&ms, 0.95);
            if p95 < SLOW_STEP_MS {
                continue;
            }
            let p50 = crate::analytics::workflows::nearest_rank(&ms, 0.5);
            let kind = kinds.get(step.as_str()).copied().unwrap_or("");
            out.push(Advice {
                kind: "slow_step",
                target: format!("{id} › {step}"),
                severity: if p95 >= 6 * SLOW_STEP_MS { "medium" } else { "low" },
                finding: format!(
                    "step `{step}` ({kind}) takes {:.1} s at the 95th percentile (median {:.1} s) over {} attempts",
                    p95 as f64 / 1000.0,
                    p50 as f64 / 1000.0,
                    ms.len()
                ),
                suggestion: "give the step a `timeout` so a slow remote cannot hold runs, and check the service it calls; a step that waits on purpose belongs in a `delay` or `wait_for_event`".into(),
                evidence: json!({"p95_ms": p95, "p50_ms": p50, "attempts": ms.len(), "type": kind}),
            });
        }
    }
    Ok(())
}

fn subject_lines(
    db: Db<'_>,
    ws: &Workspace,
    scope: &Scope,
    since: UnixMs,
    now: UnixMs,
    out: &mut Vec<Advice>,
) -> Result<(), StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT template_id, count(*), \
         coalesce(sum(CASE WHEN opened_at IS NOT NULL THEN 1 ELSE 0 END), 0) \
         FROM email_sends WHERE sent_at >= ?1 AND sent_at < ?2 GROUP BY template_id",
    )?;
    let rows = stmt.query_map(params![since, now], |r| {
        Ok((r.get::<String>(0)?, r.get::<i64>(1)?, r.get::<i64>(2)?))
    })?;
    let mut rates = Vec::new();
    for row in rows {
        let (template, sent, opened) = row?;
        if sent >= SENDS_MIN {
            rates.push((template, sent, opened, opened as f64 / sent as f64));
        }
    }
    if rates.len() < 2 {
        return Ok(());
    }
    let mut sorted: Vec<f64> = rates.iter().map(|r| r.3).collect();
    sorted.sort_by(f64::total_cmp);
    let median = if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    };
    for (template, sent, opened, rate) in rates {
        if scope.template.as_ref().is_some_and(|t| *t != template)
            || rate >= median * SUBJECT_SHARE_OF_MEDIAN
        {
            continue;
        }
        let subject = ws
            .email_templates
            .get(&template)
            .map(|t| t.value.subject.to_string())
            .unwrap_or_default();
        out.push(Advice {
            kind: "subject_line",
            target: template.clone(),
            severity: if rate < median * 0.5 { "high" } else { "medium" },
            finding: format!(
                "`{template}` (\"{subject}\") was opened by {:.1}% of {sent} recipients; the workspace's median is {:.1}%",
                rate * 100.0,
                median * 100.0
            ),
            suggestion: format!(
                "A/B test a new subject: a campaign with `variants` of `{template}` sends each to a share of the audience and keeps the winner at p < 0.05 (docs/email.md)"
            ),
            evidence: json!({"sent": sent, "opened": opened, "open_rate": rate, "median_open_rate": median}),
        });
    }
    Ok(())
}

fn forms(
    db: Db<'_>,
    ws: &Workspace,
    scope: &Scope,
    since: UnixMs,
    out: &mut Vec<Advice>,
) -> Result<(), StoreError> {
    let day = since.div_euclid(crate::analytics::workflows::DAY_MS);
    for site in ws.sites.keys() {
        if scope.site.as_ref().is_some_and(|s| s != site) {
            continue;
        }
        for (instance, component, _) in crate::suggest::site_components(ws, site) {
            let is_form = ws.components.get(&component).is_some_and(|c| {
                c.value
                    .events
                    .contains(&crate::model::component::ComponentEvent::Submit)
            });
            if !is_form {
                continue;
            }
            let (views, conversions): (i64, i64) = db
                .prepare_cached(
                    "SELECT coalesce(sum(views), 0), coalesce(sum(conversions), 0) \
                     FROM component_analytics WHERE site_id = ?1 AND component_id = ?2 AND day >= ?3",
                )?
                .query_row(params![site.as_str(), instance.as_str(), day], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            if views >= VIEWS_MIN && conversions == 0 {
                out.push(Advice {
                    kind: "form_without_submissions",
                    target: format!("{site} › {instance}"),
                    severity: "high",
                    finding: format!("`{instance}` was seen {views} times and never submitted"),
                    suggestion: "shorten the form (fewer required fields), make the button say what happens next, or move it higher on the page".into(),
                    evidence: json!({"views": views, "conversions": conversions}),
                });
            }
            if crate::suggest::workflows_from(ws, site, &instance).is_empty() {
                out.push(Advice {
                    kind: "form_without_workflow",
                    target: format!("{site} › {instance}"),
                    severity: if conversions > 0 { "medium" } else { "low" },
                    finding: format!(
                        "no workflow starts from `{instance}`: its {conversions} submissions are saved and nobody follows up"
                    ),
                    suggestion: format!(
                        "`funnel suggest --site {site} --instance {instance}` proposes workflows for it (`--write` adds the best)"
                    ),
                    evidence: json!({"views": views, "conversions": conversions}),
                });
            }
        }
    }
    Ok(())
}

fn exits(
    db: Db<'_>,
    ws: &Workspace,
    scope: &Scope,
    since: UnixMs,
    now: UnixMs,
    out: &mut Vec<Advice>,
) -> Result<(), StoreError> {
    for site in ws.sites.keys() {
        if scope.site.as_ref().is_some_and(|s| s != site) {
            continue;
        }
        // Only the site's own pages: beacons can name any path.
        let known: std::collections::BTreeSet<String> =
            crate::validate::sites::site_pages(ws, site)
                .map(|pages| pages.into_iter().map(|(p, _, _)| p.path.clone()).collect())
                .unwrap_or_default();
        for e in crate::analytics::paths::exits(db, site, since, now)? {
            if e.views < VIEWS_MIN as u64 || e.exit_rate < EXIT_RATE_MIN || !known.contains(&e.page)
            {
                continue;
            }
            out.push(Advice {
                kind: "page_exits",
                target: format!("{site} › {}", e.page),
                severity: if e.exit_rate >= 0.8 { "medium" } else { "low" },
                finding: format!(
                    "{:.0}% of the views of {} end the visit, without a form post ({} of {})",
                    e.exit_rate * 100.0,
                    e.page,
                    e.exits,
                    e.views
                ),
                suggestion: format!(
                    "give the page a next step above the fold (a call to action, a short form, a link to pricing); `funnel analytics heatmap {site} --page {}` shows where its visitors click",
                    e.page
                ),
                evidence: json!({"views": e.views, "exits": e.exits, "exit_rate": e.exit_rate}),
            });
        }
    }
    Ok(())
}

fn components(
    db: Db<'_>,
    ws: &Workspace,
    scope: &Scope,
    since: UnixMs,
    now: UnixMs,
    out: &mut Vec<Advice>,
) -> Result<(), StoreError> {
    use crate::model::component::ComponentEvent;
    let day = since.div_euclid(crate::analytics::workflows::DAY_MS);
    let mut figures = db.prepare_cached(
        "SELECT coalesce(sum(views), 0), coalesce(sum(interactions), 0) \
         FROM component_analytics WHERE site_id = ?1 AND component_id = ?2 AND day >= ?3",
    )?;
    for site in ws.sites.keys() {
        if scope.site.as_ref().is_some_and(|s| s != site) {
            continue;
        }
        let Some(instances) = crate::validate::sites::site_instances(ws, site) else {
            continue;
        };
        let pages = crate::analytics::site_days::window(db, site, since, now)?.pages;
        let mut seen = std::collections::BTreeSet::new();
        for i in instances {
            let instance = i.instance.id.as_str();
            if !seen.insert(instance) {
                continue;
            }
            let page_views = pages.get(&i.page.path).map_or(0, |p| p.views);
            let (views, clicks): (i64, i64) = figures
                .query_row(params![site.as_str(), instance, day], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            let events = ws
                .components
                .get(i.instance.component.as_str())
                .map(|c| c.value.events.clone())
                .unwrap_or_default();
            if views == 0 && page_views >= VIEWS_MIN as u64 {
                out.push(Advice {
                    kind: "unused_component",
                    target: format!("{site} › {instance}"),
                    severity: "low",
                    finding: format!(
                        "`{instance}` on {} was never in view, though the page was viewed {page_views} times",
                        i.page.path
                    ),
                    suggestion: "visitors do not scroll that far: move it up the page if it matters, or remove it".into(),
                    evidence: json!({"page": i.page.path, "page_views": page_views, "views": 0}),
                });
            } else if views >= VIEWS_MIN
                && clicks == 0
                && events.contains(&ComponentEvent::Click)
                && !events.contains(&ComponentEvent::Submit)
            {
                out.push(Advice {
                    kind: "component_without_clicks",
                    target: format!("{site} › {instance}"),
                    severity: "low",
                    finding: format!("`{instance}` was seen {views} times and never clicked"),
                    suggestion: "make its call to action say what the visitor gets, give it contrast, or test another offer".into(),
                    evidence: json!({"views": views, "clicks": 0}),
                });
            }
        }
    }
    Ok(())
}

fn unpaid_sends(
    db: Db<'_>,
    ws: &Workspace,
    scope: &Scope,
    since: UnixMs,
    now: UnixMs,
    out: &mut Vec<Advice>,
) -> Result<(), StoreError> {
    let (window, cost) = crate::analytics::roi::settings(ws);
    if cost <= 0.0 {
        return Ok(());
    }
    let r = crate::analytics::roi::report(db, since, now, window, cost)?;
    for row in &r.rows {
        use crate::analytics::roi::Source;
        let in_scope = match (&scope.workflow, &scope.campaign) {
            (Some(w), _) => row.source == Source::Workflow && &row.id == w,
            (_, Some(c)) => row.source == Source::Campaign && &row.id == c,
            _ => true,
        };
        if !in_scope || row.sends < SENDS_MIN as u64 || row.value_linear >= row.cost {
            continue;
        }
        out.push(Advice {
            kind: "sends_not_paid",
            target: format!("{} {}", row.source.as_str(), row.id),
            severity: if row.value_linear == 0.0 { "medium" } else { "low" },
            finding: format!(
                "{} emails cost {:.2} and the won deals credited to it are worth {:.2} (linear, {} days' window)",
                row.sends,
                row.cost,
                row.value_linear,
                window / 86_400_000
            ),
            suggestion: "send to a narrower segment (engaged or high-score contacts), send fewer emails, or test a stronger offer; `funnel analytics roi` has the figures".into(),
            evidence: json!({"sends": row.sends, "cost": row.cost, "value_linear": row.value_linear, "value_last": row.value_last, "deals_linear": row.deals_linear}),
        });
    }
    Ok(())
}

fn funnels(
    db: Db<'_>,
    ws: &Workspace,
    since: UnixMs,
    now: UnixMs,
    out: &mut Vec<Advice>,
) -> Result<(), StoreError> {
    let Some(analytics) = ws.config.as_ref().and_then(|c| c.value.analytics.as_ref()) else {
        return Ok(());
    };
    for (id, def) in &analytics.funnels {
        let r = crate::analytics::funnels::report(db, id, def, since, now)?;
        let weakest = r
            .steps
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(k, _)| r.steps[k - 1].contacts > 0)
            .min_by(|a, b| a.1.conversion.total_cmp(&b.1.conversion));
        if let Some((k, step)) = weakest
            && step.conversion < FUNNEL_STEP_MIN
        {
            out.push(Advice {
                kind: "funnel_drop_off",
                target: id.clone(),
                severity: if step.conversion < 0.1 { "high" } else { "medium" },
                finding: format!(
                    "in `{}`, {:.0}% go on from \"{}\" to \"{}\" ({} of {})",
                    r.name,
                    step.conversion * 100.0,
                    r.steps[k - 1].step,
                    step.step,
                    step.contacts,
                    r.steps[k - 1].contacts
                ),
                suggestion: "this is the funnel's weakest step: a workflow on the step before (a reminder, an offer) or a clearer next step on the page moves the most people".into(),
                evidence: json!({"step": k + 1, "conversion": step.conversion, "from": r.steps[k - 1].contacts, "to": step.contacts}),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TestDb;

    const DAY: i64 = 86_400_000;

    fn demo() -> Workspace {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        crate::workspace::load(root, std::path::Path::new(".")).expect("the demo workspace")
    }

    /// welcome-drip's `day0_welcome` (a send) takes 12 s at the 95th
    /// percentile: slow; its `wait_until_day2` (a delay) takes days on
    /// purpose: not advised. On the home page, viewed 60 times, `hero` is
    /// seen 55 times and never clicked, `testimonials` never seen.
    #[test]
    fn slow_steps_and_components_nobody_sees_or_clicks() {
        use crate::analytics::fixture;
        let ws = demo();
        let db = TestDb::open();
        let now = 20_010 * DAY;
        db.transaction(|db| {
            let t = now - 2 * DAY;
            for n in 0..10i64 {
                let run = fixture::run(db, "welcome-drip", None, t + n, "completed")?;
                let send_ms = if n < 2 { 12_000 } else { 800 };
                db.execute(
                    "INSERT INTO step_runs (execution_id, step_id, attempt, status, started_at, finished_at) \
                     VALUES (?1, 'day0_welcome', 1, 'completed', ?2, ?3), \
                            (?1, 'wait_until_day2', 1, 'completed', ?3, ?4)",
                    params![run, t, t + send_ms, t + 2 * DAY],
                )?;
            }
            for v in 0..60i64 {
                fixture::event(db, &format!("v{v}"), None, "/", None, "view", "{}", t + v)?;
            }
            db.execute(
                "INSERT INTO component_analytics (site_id, component_id, day, views, interactions, conversions) \
                 VALUES ('demo', 'hero', ?1, 55, 0, 0), ('demo', 'nav', ?1, 60, 4, 0), \
                        ('demo', 'features', ?1, 40, 0, 0)",
                params![t / DAY],
            )?;
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let advice = advise(db.db(), &ws, &Scope::default(), now - 30 * DAY, now).expect("advice");
        let of = |kind: &str| -> Vec<String> {
            advice
                .iter()
                .filter(|a| a.kind == kind)
                .map(|a| a.target.clone())
                .collect()
        };
        assert_eq!(
            of("slow_step"),
            vec!["welcome-drip › day0_welcome".to_string()]
        );
        let slow = advice.iter().find(|a| a.kind == "slow_step").expect("slow");
        assert_eq!(
            (
                slow.evidence["p95_ms"].as_i64(),
                slow.evidence["attempts"].as_u64()
            ),
            (Some(12_000), Some(10))
        );
        assert_eq!(
            of("component_without_clicks"),
            vec!["demo › hero".to_string()],
            "nav was clicked, features seen 40 times only"
        );
        let unused = of("unused_component");
        assert!(
            unused.contains(&"demo › testimonials".to_string()),
            "{unused:?}"
        );
        for seen in ["demo › hero", "demo › nav", "demo › features"] {
            assert!(!unused.contains(&seen.to_string()), "{seen} was seen");
        }
        assert!(
            unused.iter().all(|u| !u.contains("pricing")),
            "the pricing page had no views: {unused:?}"
        );
    }

    /// Visits that end on /pricing without a form post, and a campaign whose
    /// 30 sends (at the demo's 0.01 each) are credited nothing, beside a
    /// workflow whose won deal pays for its sends.
    #[test]
    fn pages_visitors_leave_and_sends_that_do_not_pay() {
        use crate::analytics::fixture;
        let ws = demo();
        let db = TestDb::open();
        let now = 20_010 * DAY;
        db.transaction(|db| {
            let t = now - 2 * DAY;
            for v in 0..60i64 {
                let visitor = format!("v{v}");
                fixture::event(db, &visitor, None, "/", None, "view", "{}", t + v * 10)?;
                fixture::event(
                    db,
                    &visitor,
                    None,
                    "/pricing",
                    None,
                    "view",
                    "{}",
                    t + v * 10 + 1,
                )?;
                if v < 10 {
                    fixture::event(
                        db,
                        &visitor,
                        None,
                        "/",
                        Some("contact-form"),
                        "submit",
                        "{}",
                        t + v * 10 + 2,
                    )?;
                }
            }
            fixture::contacts(db, 2)?;
            let campaign = fixture::campaign(db, "december-dispatch")?;
            for n in 0..30 {
                fixture::send(db, Some(campaign), None, 1, t + n)?;
            }
            let run = fixture::run(db, "welcome-drip", Some(2), t, "completed")?;
            for n in 0..25 {
                fixture::send(db, None, Some(run), 2, t + n)?;
            }
            fixture::deal(db, 2, 1000.0, "won", "won", t + DAY)?;
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let advice = advise(db.db(), &ws, &Scope::default(), now - 30 * DAY, now).expect("advice");
        let exits: Vec<&Advice> = advice.iter().filter(|a| a.kind == "page_exits").collect();
        assert_eq!(exits.len(), 1, "{advice:#?}");
        assert_eq!(exits[0].target, "demo › /pricing");
        assert_eq!(
            (
                exits[0].evidence["views"].as_u64(),
                exits[0].evidence["exits"].as_u64()
            ),
            (Some(60), Some(50))
        );
        assert_eq!(exits[0].severity, "medium");
        let unpaid: Vec<&Advice> = advice
            .iter()
            .filter(|a| a.kind == "sends_not_paid")
            .collect();
        assert_eq!(unpaid.len(), 1, "{advice:#?}");
        assert_eq!(unpaid[0].target, "campaign december-dispatch");
        assert_eq!(unpaid[0].evidence["sends"], 30);
        assert!((unpaid[0].evidence["cost"].as_f64().unwrap_or(0.0) - 0.3).abs() < 1e-9);
        let only = advise(
            db.db(),
            &ws,
            &Scope {
                workflow: Some("welcome-drip".into()),
                ..Scope::default()
            },
            now - 30 * DAY,
            now,
        )
        .expect("advice");
        assert!(
            !only.iter().any(|a| a.kind == "sends_not_paid"),
            "the drip pays: {only:#?}"
        );
    }

    #[test]
    fn the_figures_give_advice_with_their_numbers() {
        let ws = demo();
        let db = TestDb::open();
        let now = 20_010 * DAY;
        db.transaction(|db| {
            db.execute(
                "INSERT INTO workflow_versions (hash, workflow_id, definition, created_at) \
                 VALUES ('h', 'w', '{}', 0)",
                params![],
            )?;
            // 20 runs of welcome-drip, 4 with a failed `send_day_1` attempt
            // (20%): high; one failure of another step: below the minimum.
            for n in 0..20i64 {
                let at = now - 2 * DAY + n * 1000;
                let id: i64 = db.query_row(
                    "INSERT INTO executions (uid, workflow_id, version_hash, status, started_at, \
                     updated_at, completed_at) VALUES (?1, 'welcome-drip', 'h', 'completed', ?2, ?2, ?3) \
                     RETURNING id",
                    params![format!("e{n}"), at, at + 500],
                    |r| r.get(0),
                )?;
                if n < 4 || n == 7 {
                    db.execute(
                        "INSERT INTO step_runs (execution_id, step_id, attempt, status, started_at) \
                         VALUES (?1, ?2, 1, 'failed', ?3)",
                        params![id, if n == 7 { "tag" } else { "send_day_1" }, at],
                    )?;
                }
            }
            // Open rates: welcome 60%, case-study 50%, demo-invite 10%
            // (median 50%: demo-invite is under 80% of it).
            for (template, opened) in [("welcome", 12), ("case-study", 10), ("demo-invite", 2)] {
                for n in 0..20 {
                    db.execute(
                        "INSERT INTO email_sends (uid, template_id, status, sent_at, opened_at, created_at) \
                         VALUES (?1, ?2, 'sent', ?3, ?4, ?3)",
                        params![
                            format!("{template}-{n}"),
                            template,
                            now - DAY,
                            (n < opened).then_some(now - DAY + 10)
                        ],
                    )?;
                }
            }
            // The contact form: 80 views, no conversion.
            db.execute(
                "INSERT INTO component_analytics (site_id, component_id, day, views, interactions, conversions) \
                 VALUES ('demo', 'contact-form', ?1, 80, 0, 0)",
                params![20_008],
            )?;
            Ok::<_, StoreError>(())
        })
        .expect("fixture");
        let advice = advise(db.db(), &ws, &Scope::default(), now - 30 * DAY, now).expect("advice");
        let find = |kind: &str, target: &str| {
            advice
                .iter()
                .find(|a| a.kind == kind && a.target == target)
                .unwrap_or_else(|| panic!("no {kind} for {target}: {advice:#?}"))
        };
        let step = find("failing_step", "welcome-drip › send_day_1");
        assert_eq!(step.severity, "high");
        assert_eq!(step.evidence["failures"], 4);
        assert_eq!(step.evidence["runs"], 20);
        assert!(!advice.iter().any(|a| a.target == "welcome-drip › tag"));
        let subject = find("subject_line", "demo-invite");
        assert_eq!(subject.evidence["median_open_rate"], 0.5);
        assert!(subject.suggestion.contains("A/B"));
        assert!(
            !advice
                .iter()
                .any(|a| a.kind == "subject_line" && a.target == "welcome")
        );
        let form = find("form_without_submissions", "demo › contact-form");
        assert_eq!(form.evidence["views"], 80);
        // The demo's contact form starts workflows: no advice to add one.
        assert!(
            !advice
                .iter()
                .any(|a| a.kind == "form_without_workflow" && a.target == "demo › contact-form")
        );
        // High first.
        assert_eq!(advice[0].severity, "high");
        // A scope keeps its own kind only.
        let only = advise(
            db.db(),
            &ws,
            &Scope::of(&ws, Some("demo-invite")).expect("scope"),
            now - 30 * DAY,
            now,
        )
        .expect("advice");
        assert!(only.iter().all(|a| a.target == "demo-invite"), "{only:#?}");
        assert!(Scope::of(&ws, Some("nothing-of-that-name")).is_err());
    }
}
