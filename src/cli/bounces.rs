//! `funnel bounces import PATH…`: bounce notices (DSN, RFC 3464) and spam
//! complaints (ARF, RFC 5965) from a mailbox, as `.eml` files, mbox files or
//! Maildir folders. Every message is read before anything is recorded, so an
//! unreadable file changes nothing; other mail in the box (auto-replies, delays)
//! is counted and skipped. Each report suppresses its address and marks its
//! contact and send; importing the same mailbox again records nothing twice.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;

use super::ColorChoice;
use crate::email::reports::{self, Parsed};
use crate::engine::worker::Worker;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long, global = true)]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Record the bounces and complaints in these files or Maildir folders.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print what each skipped message was.
        #[arg(long)]
        verbose: bool,
        #[arg(long, value_enum, default_value_t = super::loaded::TableFormat::Table)]
        format: super::loaded::TableFormat,
    },
}

/// The message files under `path`: itself, or a Maildir's `new` and `cur`
/// (or any folder's files), sorted.
fn files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let folders: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .map(|f| path.join(f))
        .filter(|p| p.is_dir())
        .collect();
    let folders = if folders.is_empty() {
        vec![path.to_path_buf()]
    } else {
        folders
    };
    for folder in folders {
        for entry in std::fs::read_dir(&folder)
            .with_context(|| format!("cannot read the folder {}", folder.display()))?
        {
            let p = entry?.path();
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if p.is_file() && !hidden {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Cmd::Import {
        paths,
        verbose,
        format,
    } = args.command;
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    // Everything is read first: a file that cannot be read stops the import
    // before anything is recorded.
    let mut found = Vec::new();
    let mut skipped = 0usize;
    let mut messages = 0usize;
    for path in &paths {
        for file in files(path)? {
            let raw =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            for (n, message) in reports::split_mbox(&raw).into_iter().enumerate() {
                messages += 1;
                match reports::parse_message(message) {
                    Parsed::Reports(r) => found.extend(r),
                    Parsed::Ignored(why) => {
                        skipped += 1;
                        if verbose {
                            eprintln!("{}: message {}: skipped: {why}", file.display(), n + 1);
                        }
                    }
                }
            }
        }
    }
    let engine = Arc::new(super::loaded::engine(&ws)?);
    let store = super::loaded::store(&ws)?;
    let n_reports = found.len();
    let tally = super::loaded::runtime()?.block_on(async move {
        let worker = Worker::new(store, engine)?;
        worker.record_reports(found).await
    })?;
    let summary = serde_json::json!({
        "messages": messages,
        "reports": n_reports,
        "bounces": tally.bounces,
        "complaints": tally.complaints,
        "unsubscribes": tally.unsubscribes,
        "known": tally.known,
        "unmatched": tally.unmatched,
        "skipped": skipped,
    });
    match format {
        super::loaded::TableFormat::Json => println!("{summary:#}"),
        super::loaded::TableFormat::Table => {
            println!(
                "{messages} messages: {} bounces, {} complaints and {} unsubscribes recorded, {} known already, {} naming no send or address, {skipped} skipped (not a report)",
                tally.bounces, tally.complaints, tally.unsubscribes, tally.known, tally.unmatched
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
