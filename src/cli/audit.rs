//! `funnel audit [--since WHEN] [--actor WHO]`: the log of changes, newest first:
//! who (a person from the command line, `token:NAME` through the API), what, when,
//! and the details (before and after where a change has them).

use std::path::PathBuf;
use std::process::ExitCode;

use super::ColorChoice;
use super::loaded::{TableFormat, print_table, shown_time};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// From when: a duration back from now (`24h`, `7d`) or a time (`2026-12-01T00:00:00Z`).
    #[arg(long)]
    pub since: Option<String>,
    /// One actor only (`ada@example.org`, `token:ci`).
    #[arg(long)]
    pub actor: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

pub(super) fn since_ms(text: &str, now: i64) -> anyhow::Result<i64> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    match crate::model::scalar::parse_duration_ms(text) {
        Ok(ms) => Ok(now.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX))),
        Err(_) => anyhow::bail!(
            "--since `{text}`: give a duration back from now (24h, 7d) or a time (2026-12-01T00:00:00Z)"
        ),
    }
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let since = match &args.since {
        Some(s) => since_ms(s, crate::store::now_ms())?,
        None => 0,
    };
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let store = super::loaded::store(&ws)?;
    let (actor, limit) = (args.actor.clone(), args.limit);
    let entries = store.read(move |db| crate::audit::list(db, since, actor.as_deref(), limit))?;
    match args.format {
        TableFormat::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
        TableFormat::Table => {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    let mut details = e.details.to_string();
                    if details.chars().count() > 80 {
                        details = details.chars().take(79).collect::<String>() + "…";
                    }
                    vec![
                        shown_time(e.recorded_at),
                        e.actor.clone(),
                        e.action.clone(),
                        format!("{} {}", e.entity, e.entity_id.clone().unwrap_or_default()),
                        details,
                    ]
                })
                .collect();
            print_table(&["WHEN", "WHO", "ACTION", "WHAT", "DETAILS"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}
