//! `funnel analytics site|attribution|conversions|funnel|workflows|roi|
//! heatmap|paths|forecast`: a site's traffic and conversions per component,
//! where contacts came from (first- and last-touch channel), which components
//! convert, funnels, each workflow's runs, success rate, durations and failing
//! steps per day, the ROI of workflows and campaigns, click heat maps, the
//! paths to a conversion, and four-week forecasts.

mod forecast;
mod heatmap;
mod paths;
mod roi;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::ColorChoice;
use super::loaded::{TableFormat, print_table};
use super::segments::to_store;
use crate::crm::attribution::{self, Model};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long, global = true)]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TouchModel {
    First,
    Last,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// A site's visitors (estimated without cookies), page views, component views,
    /// interactions and conversions, and conversion rate per component.
    Site {
        site: String,
        /// Since: a date (2026-11-01) or an age (7d, 12h, 4w); default 30 days.
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// New contacts per channel (UTM source, referring site, or direct) of their
    /// first or last touch.
    Attribution {
        #[arg(long, value_enum, default_value_t = TouchModel::First)]
        model: TouchModel,
        /// Contacts created since: a date (2026-11-01) or an age (7d, 12h, 4w).
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Form submissions per site component: submissions, distinct contacts, and
    /// the contacts each component created.
    Conversions {
        /// Submissions since: a date (2026-11-01) or an age (7d, 12h, 4w).
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// A funnel of funnel.yaml's `analytics.funnels`: the contacts at each
    /// step, the conversion from the step before, and the median time it took.
    Funnel {
        /// The funnel's id.
        funnel: String,
        /// Since: a date (2026-11-01) or an age (7d, 12h, 4w); default 30 days.
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// The value of deals won credited to the workflows and campaigns that
    /// touched the contact within the attribution window (last touch and
    /// linear), against sends × email.cost_per_send.
    Roi {
        /// Deals won since: a date (2026-11-01) or an age (7d, 12h, 4w);
        /// default 30 days.
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Where a site's clicks land on each page, per component: tenths of the
    /// viewport's width by 100-pixel bands, and the elements clicked most.
    Heatmap {
        site: String,
        /// Only this page (a path such as /pricing).
        #[arg(long)]
        page: Option<String>,
        /// Since: a date (2026-11-01) or an age (7d, 12h, 4w); default 30 days.
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// The most common paths of pages and clicks before a site's form posts,
    /// and the pages where visits end without one.
    Paths {
        site: String,
        /// Since: a date (2026-11-01) or an age (7d, 12h, 4w); default 30 days.
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Each workflow's runs and conversions per week over the last 12 weeks,
    /// the next 4 from the trend, and the error of that method on past weeks.
    Forecast {
        /// Only this workflow.
        workflow: Option<String>,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Each workflow's finished runs per day: success rate, median and 95th
    /// percentile duration, failed attempts per step, and a chart of runs.
    Workflows {
        /// Only this workflow.
        workflow: Option<String>,
        /// Since: a date (2026-11-01) or an age (7d, 12h, 4w); default 30 days.
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
}

/// A `--since` value as Unix milliseconds: a date (midnight UTC) or an age back
/// from now.
pub fn parse_since(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return date
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| e.to_string());
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let unit_ms: i64 = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => {
            return Err(format!(
                "`{text}` is neither a date (YYYY-MM-DD) nor an age such as 30m, 12h, 7d or 4w"
            ));
        }
    };
    let n: i64 = n
        .parse()
        .map_err(|_| format!("`{text}`: the age needs a number before `{unit}`"))?;
    Ok(crate::store::now_ms() - n.saturating_mul(unit_ms))
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let store = super::loaded::store(&ws)?;
    match args.command {
        Cmd::Site {
            site,
            since,
            format,
        } => {
            super::loaded::known_site(&ws, &site)?;
            roll_up(&store, crate::store::now_ms());
            let since = since.unwrap_or_else(|| crate::store::now_ms() - 30 * 86_400_000);
            let r = store.read(move |c| {
                crate::analytics::site_report(c, &site, since, crate::store::now_ms())
                    .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))
            })?;
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&r)?),
                TableFormat::Table => {
                    println!(
                        "{} since {}: {} visitors, {} page views, {} conversions ({:.1}% of visitors)",
                        r.site,
                        super::loaded::shown_time(r.since),
                        r.visitors,
                        r.page_views,
                        r.conversions,
                        r.conversion_rate * 100.0
                    );
                    println!();
                    print_table(
                        &["COMPONENT", "VIEWS", "INTERACTIONS", "CONVERSIONS", "RATE"],
                        &r.components
                            .iter()
                            .map(|c| {
                                vec![
                                    c.component.clone(),
                                    c.views.to_string(),
                                    c.interactions.to_string(),
                                    c.conversions.to_string(),
                                    format!("{:.1}%", c.conversion_rate * 100.0),
                                ]
                            })
                            .collect::<Vec<_>>(),
                    );
                    if !r.pages.is_empty() {
                        println!();
                        print_table(
                            &["PAGE", "VIEWS"],
                            &r.pages
                                .iter()
                                .map(|(p, n)| vec![p.clone(), n.to_string()])
                                .collect::<Vec<_>>(),
                        );
                    }
                }
            }
        }
        Cmd::Attribution {
            model,
            since,
            format,
        } => {
            let model = match model {
                TouchModel::First => Model::FirstTouch,
                TouchModel::Last => Model::LastTouch,
            };
            let since = since.unwrap_or(0);
            let rows =
                store.read(move |c| attribution::channels(c, model, since).map_err(to_store))?;
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                TableFormat::Table => print_table(
                    &["CHANNEL", "CONTACTS"],
                    &rows
                        .iter()
                        .map(|r| vec![r.channel.clone(), r.contacts.to_string()])
                        .collect::<Vec<_>>(),
                ),
            }
        }
        Cmd::Funnel {
            funnel,
            since,
            format,
        } => {
            let funnels = ws
                .config
                .as_ref()
                .and_then(|c| c.value.analytics.as_ref())
                .map(|a| a.funnels.clone())
                .unwrap_or_default();
            let Some(def) = funnels.get(&funnel).cloned() else {
                let known: Vec<&str> = funnels.keys().map(String::as_str).collect();
                anyhow::bail!(
                    "no funnel `{funnel}` in funnel.yaml's analytics.funnels{}",
                    if known.is_empty() {
                        String::new()
                    } else {
                        format!(" (funnels: {})", known.join(", "))
                    }
                );
            };
            let now = crate::store::now_ms();
            let since = since.unwrap_or(now - 30 * 86_400_000);
            let r = store
                .read(move |db| crate::analytics::funnels::report(db, &funnel, &def, since, now))?;
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&r)?),
                TableFormat::Table => {
                    println!("{} since {}", r.name, super::loaded::shown_time(r.since));
                    let top = r.steps.first().map_or(0, |s| s.contacts).max(1);
                    print_table(
                        &[
                            "STEP",
                            "CONTACTS",
                            "FROM PREVIOUS",
                            "OF FIRST",
                            "MEDIAN TIME",
                            "",
                        ],
                        &r.steps
                            .iter()
                            .map(|s| {
                                vec![
                                    s.step.clone(),
                                    s.contacts.to_string(),
                                    format!("{:.1}%", s.conversion * 100.0),
                                    format!("{:.1}%", s.overall * 100.0),
                                    s.median_ms_from_previous
                                        .map(shown_span)
                                        .unwrap_or_default(),
                                    "█".repeat(usize::try_from(s.contacts * 30 / top).unwrap_or(0)),
                                ]
                            })
                            .collect::<Vec<_>>(),
                    );
                }
            }
        }
        Cmd::Workflows {
            workflow,
            since,
            format,
        } => {
            let now = crate::store::now_ms();
            let since = since.unwrap_or(now - 30 * 86_400_000);
            roll_up(&store, now);
            let rows = store.read(move |db| {
                crate::analytics::workflows::report(db, workflow.as_deref(), since, now)
            })?;
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                TableFormat::Table => print_workflow_days(&rows, since, now),
            }
        }
        Cmd::Roi { since, format } => {
            let now = crate::store::now_ms();
            let since = since.unwrap_or(now - 30 * 86_400_000);
            let (window, cost) = crate::analytics::roi::settings(&ws);
            let r = store
                .read(move |db| crate::analytics::roi::report(db, since, now, window, cost))?;
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&r)?),
                TableFormat::Table => roi::print(&r),
            }
        }
        Cmd::Heatmap {
            site,
            page,
            since,
            format,
        } => {
            super::loaded::known_site(&ws, &site)?;
            let now = crate::store::now_ms();
            let since = since.unwrap_or(now - 30 * 86_400_000);
            let mut pages =
                store.read(move |db| crate::analytics::heatmap::report(db, &site, since, now))?;
            if let Some(page) = page {
                pages.retain(|p| p.page == page);
            }
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&pages)?),
                TableFormat::Table => heatmap::print(&pages),
            }
        }
        Cmd::Paths {
            site,
            since,
            format,
        } => {
            super::loaded::known_site(&ws, &site)?;
            let now = crate::store::now_ms();
            roll_up(&store, now);
            let since = since.unwrap_or(now - 30 * 86_400_000);
            let (r, exits) = store.read(move |db| {
                Ok((
                    crate::analytics::paths::report(db, &site, since, now)?,
                    crate::analytics::paths::exits(db, &site, since, now)?,
                ))
            })?;
            match format {
                TableFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "site": r.site, "conversions": r.conversions, "paths": r.paths, "exits": exits,
                    }))?
                ),
                TableFormat::Table => paths::print(&r, &exits),
            }
        }
        Cmd::Forecast { workflow, format } => {
            if let Some(w) = &workflow
                && !ws.workflows.contains_key(w)
            {
                anyhow::bail!("no workflow `{w}` in workflows/");
            }
            let now = crate::store::now_ms();
            roll_up(&store, now);
            let (window, _) = crate::analytics::roi::settings(&ws);
            let r = store.read(move |db| {
                crate::analytics::forecast::report(db, workflow.as_deref(), now, window)
            })?;
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&r)?),
                TableFormat::Table => forecast::print(&r),
            }
        }
        Cmd::Conversions { since, format } => {
            let since = since.unwrap_or(0);
            let rows = store
                .read(move |c| attribution::conversions_by_component(c, since).map_err(to_store))?;
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                TableFormat::Table => print_table(
                    &[
                        "SITE",
                        "COMPONENT",
                        "SUBMISSIONS",
                        "CONTACTS",
                        "NEW CONTACTS",
                    ],
                    &rows
                        .iter()
                        .map(|r| {
                            vec![
                                r.site.clone().unwrap_or_default(),
                                r.component.clone().unwrap_or_default(),
                                r.submissions.to_string(),
                                r.contacts.to_string(),
                                r.new_contacts.to_string(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn since_takes_a_date_or_an_age() {
        assert_eq!(parse_since("2026-01-01"), Ok(1_767_225_600_000));
        let week = parse_since("1w").expect("age");
        let now = crate::store::now_ms();
        assert!((now - week - 7 * 86_400_000).abs() < 10_000);
        assert!(parse_since("7y").is_err());
        assert!(parse_since("d").is_err());
    }
}

/// Stores the workflow and site days that closed since the last roll-up, so
/// reports read them instead of the raw runs and events: computed on a read
/// connection, written in short writes, 400 days at a time until caught up.
/// Best effort: reports are exact without it (they compute the days not
/// stored), so a store this user cannot write still answers.
pub fn roll_up(store: &crate::store::Store, now: i64) {
    let caught_up = || -> anyhow::Result<()> {
        while let Some((rows, _, until)) =
            store.read(move |db| crate::analytics::workflows::pending(db, now, 400))?
        {
            store
                .write(move |db| crate::analytics::workflows::store_days(db, &rows, until))
                .wait()?;
        }
        while let Some((rows, _, until)) =
            store.read(move |db| crate::analytics::site_days::pending(db, now, 400))?
        {
            store
                .write(move |db| crate::analytics::site_days::store_days(db, &rows, until))
                .wait()?;
        }
        Ok(())
    };
    if let Err(e) = caught_up() {
        tracing::warn!(error = %e, "daily rollups not stored; the report computes them");
    }
}

/// The days as a table, then each workflow's runs per day as a bar chart.
fn print_workflow_days(rows: &[crate::analytics::workflows::Day], since: i64, now: i64) {
    use crate::analytics::workflows::DAY_MS;
    if rows.is_empty() {
        println!(
            "no workflow finished a run since {}",
            super::loaded::shown_time(since)
        );
        return;
    }
    let secs = |ms: i64| format!("{:.1} s", ms as f64 / 1000.0);
    print_table(
        &[
            "DAY",
            "WORKFLOW",
            "RUNS",
            "OK",
            "FAILED",
            "P50",
            "P95",
            "FAILING STEPS",
        ],
        &rows
            .iter()
            .map(|d| {
                vec![
                    d.date.clone(),
                    d.workflow.clone(),
                    d.runs.to_string(),
                    format!("{:.1}%", d.success_rate * 100.0),
                    d.failed.to_string(),
                    secs(d.p50_ms),
                    secs(d.p95_ms),
                    d.step_failures
                        .iter()
                        .map(|(s, n)| format!("{s} ×{n}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!();
    let (first, last) = (since.div_euclid(DAY_MS), now.div_euclid(DAY_MS));
    let mut by_workflow: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
    for d in rows {
        let days = by_workflow
            .entry(d.workflow.as_str())
            .or_insert_with(|| vec![0; usize::try_from(last - first + 1).unwrap_or(0)]);
        if let Some(slot) = usize::try_from(d.day - first)
            .ok()
            .and_then(|i| days.get_mut(i))
        {
            *slot += d.runs;
        }
    }
    let width = by_workflow.keys().map(|w| w.len()).max().unwrap_or(0);
    println!(
        "runs per day, {} to {}:",
        super::loaded::shown_time(since),
        super::loaded::shown_time(now)
    );
    for (workflow, days) in by_workflow {
        let total: i64 = days.iter().sum();
        println!("  {workflow:<width$}  {}  {total}", bars(&days));
    }
}

/// A time span as people say it: 45 s, 12 min, 3.5 h, 2.0 d.
fn shown_span(ms: i64) -> String {
    let s = ms as f64 / 1000.0;
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86_400.0)
    }
}

/// A bar per value, eight heights, scaled to the largest.
fn bars(values: &[i64]) -> String {
    const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let top = values.iter().copied().max().unwrap_or(0).max(1);
    values
        .iter()
        .map(|&v| {
            if v <= 0 {
                '·'
            } else {
                BARS[usize::try_from((v * 8 + top - 1) / top)
                    .unwrap_or(8)
                    .clamp(1, 8)]
            }
        })
        .collect()
}

#[cfg(test)]
mod chart_tests {
    #[test]
    fn bars_scale_to_the_largest_and_mark_empty_days() {
        assert_eq!(super::bars(&[0, 1, 4, 8]), "·▁▄█");
        assert_eq!(super::bars(&[3, 3]), "██");
        assert_eq!(super::bars(&[]), "");
    }
}
