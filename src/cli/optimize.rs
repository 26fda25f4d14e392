//! `funnel optimize [WORKFLOW|CAMPAIGN|TEMPLATE|SITE]`: advice from the figures, each
//! with the numbers behind it and what to do.

use std::path::PathBuf;
use std::process::ExitCode;

use super::ColorChoice;
use super::loaded::TableFormat;
use crate::optimize::Scope;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A workflow, a campaign, an email template or a site (default:
    /// everything).
    pub target: Option<String>,
    /// Since: a date (2026-11-01) or an age (7d, 12h, 4w); default 30 days.
    #[arg(long, value_parser = super::analytics::parse_since)]
    pub since: Option<i64>,
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let scope = Scope::of(&ws, args.target.as_deref()).map_err(anyhow::Error::msg)?;
    let now = crate::store::now_ms();
    let since = args.since.unwrap_or(now - 30 * 86_400_000);
    let store = super::loaded::store(&ws)?;
    super::analytics::roll_up(&store, now);
    let ws = std::sync::Arc::new(ws);
    let shared = ws.clone();
    let advice = store.read(move |db| crate::optimize::advise(db, &shared, &scope, since, now))?;
    match args.format {
        TableFormat::Json => println!("{}", serde_json::to_string_pretty(&advice)?),
        TableFormat::Table => {
            if advice.is_empty() {
                println!(
                    "no advice since {}: nothing stands out in the figures",
                    super::loaded::shown_time(since)
                );
            }
            for a in &advice {
                println!("[{}] {} ({})", a.severity, a.target, a.kind);
                println!("  {}", a.finding);
                println!("  → {}", a.suggestion);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
