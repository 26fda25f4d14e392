//! `funnel status [--since 4h]`: the seed's backend status block, from the
//! daemon's per-minute rollups in the store, each figure beside its target.

use std::path::PathBuf;
use std::process::ExitCode;

use super::ColorChoice;
use super::loaded::TableFormat;
use crate::status::{Measure, Status};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The window: a duration back from now (4h, 1d) or a time.
    #[arg(long, default_value = "4h")]
    pub since: String,
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let now = crate::store::now_ms();
    let since = super::audit::since_ms(&args.since, now)?;
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    // Adoption: sites with at least one workflow started from one of their
    // components.
    let with_workflows = ws
        .sites
        .keys()
        .filter(|site| {
            crate::suggest::site_components(&ws, site)
                .iter()
                .any(|(id, _, _)| !crate::suggest::workflows_from(&ws, site, id).is_empty())
        })
        .count();
    let adoption = (with_workflows, ws.sites.len());
    let store = super::loaded::store(&ws)?;
    let status = store.read(move |db| crate::status::report(db, since, now, adoption))?;
    match args.format {
        TableFormat::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        TableFormat::Table => print!("{}", block(&status, &args.since)),
    }
    Ok(ExitCode::SUCCESS)
}

fn pct(m: &Measure) -> String {
    m.value
        .map_or_else(|| "n/a".into(), |v| format!("{:.1}%", v * 100.0))
}

fn mark(m: &Measure) -> &'static str {
    match m.met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    }
}

fn line(label: &str, value: String, m: &Measure) -> String {
    let verdict = mark(m);
    if verdict.is_empty() {
        format!("- {label}: {value} (target: {})\n", m.target)
    } else {
        format!("- {label}: {value} (target: {}; {verdict})\n", m.target)
    }
}

/// The seed's block, with the window's real figures.
fn block(s: &Status, window: &str) -> String {
    let at = jiff::Timestamp::from_millisecond(s.until)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let minutes = ((s.until - s.since) / 60_000).max(1);
    let mut out = format!("BACKEND STATUS [{at}] (last {window})\n\nSystem Performance:\n");
    out.push_str(&format!(
        "- Workflow Executions: {} in last {window} (avg: {:.1}/min)\n",
        s.executions, s.executions_per_minute
    ));
    out.push_str(&line(
        "Workflow Success Rate",
        pct(&s.execution_success_rate),
        &s.execution_success_rate,
    ));
    out.push_str(&line(
        "Workflow Execution Time",
        s.execution_seconds_avg
            .value
            .map_or("n/a".into(), |v| format!("{v:.2} s average")),
        &s.execution_seconds_avg,
    ));
    out.push_str(&line(
        "API Response Time",
        s.api_response_ms_avg
            .value
            .map_or("no API requests".into(), |v| {
                format!("{v:.1} ms average over {} requests", s.api_requests)
            }),
        &s.api_response_ms_avg,
    ));
    out.push_str(&line(
        "Database Performance",
        s.store_ms_avg.value.map_or("n/a".into(), |v| {
            format!("{v:.2} ms average over {} store jobs", s.store_jobs)
        }),
        &s.store_ms_avg,
    ));
    out.push_str(&line(
        "Email Delivery Rate",
        s.email_delivery_rate
            .value
            .map_or("no emails sent".into(), |v| {
                format!("{:.1}% of {} sent", v * 100.0, s.emails_sent)
            }),
        &s.email_delivery_rate,
    ));
    out.push_str(&line("Availability", pct(&s.availability), &s.availability));
    out.push_str("\nProduct Metrics:\n");
    out.push_str(&line(
        "Workflow Adoption",
        format!(
            "{} of {} sites use workflows ({})",
            s.sites_with_workflows,
            s.sites,
            pct(&s.workflow_adoption)
        ),
        &s.workflow_adoption,
    ));
    out.push_str(&line("Email Open Rate", pct(&s.open_rate), &s.open_rate));
    out.push_str(&line("Email Click Rate", pct(&s.click_rate), &s.click_rate));
    out.push_str(&line(
        "CRM Data Quality",
        format!(
            "{} of {} contacts reachable and named",
            pct(&s.contact_data_quality),
            s.contacts
        ),
        &s.contact_data_quality,
    ));
    out.push_str(&line(
        "Busiest Hour",
        s.peak_executions_per_hour
            .value
            .map_or("n/a".into(), |v| format!("{v:.0} executions")),
        &s.peak_executions_per_hour,
    ));
    out.push_str(&format!(
        "\nMeasured: {} of the window's {minutes} minutes have the daemon's rollups.\n",
        s.minutes_recorded
    ));
    out
}
