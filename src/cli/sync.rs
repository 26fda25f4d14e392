//! `funnel sync [--remote NAME]` and `funnel sync status`: this workspace's
//! store and a team's daemon (a remote kept by `funnel login`, with an
//! editor's token; never a database URL on a laptop) exchange what changed,
//! a page each way per round, until both are current. Cut off, it resumes
//! where the last finished round left it; run twice, it changes nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;

use super::ColorChoice;
use super::loaded::{TableFormat, shown_time};
use crate::desk::remote::Remote;
use crate::sync::session;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// The team's daemon, as named by `funnel login` (default: the only one kept).
    #[arg(long, value_name = "NAME", global = true)]
    remote: Option<String>,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long, global = true)]
    workspace: Option<PathBuf>,
    /// Changes per round each way.
    #[arg(long, default_value_t = session::DEFAULT_PAGE as u32,
          value_parser = clap::value_parser!(u32).range(1..=5_000))]
    page: u32,
    #[arg(long, value_enum, default_value_t = TableFormat::Table, global = true)]
    format: TableFormat,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// What waits to be sent and received, without moving anything.
    Status,
}

/// The remote to sync with: the one named, or the only one kept.
fn remote(name: Option<&str>) -> anyhow::Result<(String, crate::remotes::Profile)> {
    let remotes = crate::remotes::Remotes::load(&crate::remotes::config_dir()?)?;
    if let Some(name) = name {
        return Ok((name.to_string(), remotes.get(name)?.clone()));
    }
    let kept: Vec<_> = remotes.iter().collect();
    match kept.as_slice() {
        [(name, profile)] => Ok(((*name).clone(), (*profile).clone())),
        [] => anyhow::bail!(
            "no remote kept; first `funnel login NAME --remote URL` with an editor's token"
        ),
        many => anyhow::bail!(
            "several remotes are kept ({}); name one with --remote",
            many.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let (name, profile) = remote(args.remote.as_deref())?;
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let store = super::loaded::store(&ws)?;
    let hub = Remote::connect(&name, &profile).map_err(|e| anyhow::anyhow!("{e}"))?;
    if matches!(args.command, Some(Cmd::Status)) {
        let s = session::status(&store, &name, &hub)?;
        match args.format {
            TableFormat::Json => println!("{}", serde_json::to_string_pretty(&s)?),
            TableFormat::Table => {
                println!("remote {name} (store {})", s.hub);
                println!("  to send:    {} change(s)", s.to_send);
                println!("  to receive: {} change(s)", s.to_receive);
                match s.synced_at {
                    Some(at) => println!("  last synced {}", shown_time(at)),
                    None => println!("  never synced"),
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let scoring = std::sync::Arc::new(super::loaded::engine(&ws)?.scoring.clone());
    let bar = progress();
    let report = session::run_reporting(
        &store,
        &name,
        &hub,
        args.page as usize,
        Some(scoring),
        crate::store::now_ms,
        &|r| {
            bar.set_message(format!(
                "sent {} change(s), received {} ({} round(s))",
                r.sent, r.received, r.rounds
            ));
        },
    );
    bar.finish_and_clear();
    let report =
        report.with_context(|| format!("sync with {name} stopped; run it again to resume"))?;
    match args.format {
        TableFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"remote": name, "report": report}))?
        ),
        TableFormat::Table => println!(
            "synced with {name}: sent {} change(s) ({} new there), received {} ({} new here), {} round(s)",
            report.sent,
            report.sent_applied,
            report.received,
            report.received_applied,
            report.rounds
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// What has moved so far, on an interactive stderr (a sync of many changes
/// takes a while); hidden otherwise.
fn progress() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message("syncing");
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
