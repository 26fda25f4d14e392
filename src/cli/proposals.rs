//! `funnel proposals list|show|comment|approve|reject`: the changes proposed
//! through the API (each a validated commit on a branch), reviewed from the
//! command line. Approving merges the branch into the checked-out one, as an
//! owner's approval over the API does; a running daemon picks the change up.
//! Each act is audited with `FUNNEL_ACTOR` or `git config user.email`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::ColorChoice;
use super::loaded::{TableFormat, print_table, shown_time};
use crate::proposals::{self, ProposalError};
use crate::store::StoreError;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long, global = true)]
    workspace: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Open proposals, newest first (`--all`: decided ones too).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// One proposal: its files, its diff and its comments.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Comment on a proposal.
    Comment { id: String, text: String },
    /// Merge a proposal's branch: the change goes live.
    Approve { id: String },
    /// Close a proposal without merging it.
    Reject { id: String },
}

fn audit(
    db: crate::store::db::Db<'_>,
    actor: &str,
    action: &str,
    id: &str,
    details: serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    crate::audit::record(db, actor, action, "proposal", Some(id), &details, now)
}

fn kept(e: ProposalError) -> StoreError {
    match e {
        ProposalError::Store(s) => s,
        other => StoreError::Invalid(other.to_string()),
    }
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let store = super::loaded::store(&ws)?;
    let now = crate::store::now_ms();
    let actor = super::loaded::actor(&ws.root);
    match args.command {
        Cmd::List { all, format } => {
            let rows = store.read(move |db| proposals::list(db, all, 500).map_err(kept))?;
            match format {
                TableFormat::Json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&json!({ "proposals": rows }))?
                    );
                }
                TableFormat::Table if rows.is_empty() => println!("no open proposals"),
                TableFormat::Table => {
                    let table: Vec<Vec<String>> = rows
                        .iter()
                        .map(|p| {
                            vec![
                                p.id.clone(),
                                p.status.clone(),
                                p.title.clone(),
                                p.author.clone(),
                                shown_time(p.created_at),
                                p.files.len().to_string(),
                            ]
                        })
                        .collect();
                    print_table(&["ID", "STATUS", "TITLE", "BY", "WHEN", "FILES"], &table);
                }
            }
        }
        Cmd::Show { id, format } => {
            let key = id.clone();
            let (p, comments) = store.read(move |db| {
                let p = proposals::get(db, &key).map_err(kept)?;
                let c = proposals::comments(db, &key).map_err(kept)?;
                Ok((p, c))
            })?;
            if matches!(format, TableFormat::Json) {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"proposal": p, "comments": comments}))?
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{} · {} · by {} · {}",
                p.id,
                p.status,
                p.author,
                shown_time(p.created_at)
            );
            println!("{}\n", p.title);
            let diff = crate::git::run(
                &ws.root,
                &[
                    "diff",
                    "--stat",
                    "--patch",
                    &format!("{}^", p.commit),
                    &p.commit,
                ],
                &[],
                None,
            )
            .unwrap_or_else(|e| format!("(no diff: {e})"));
            println!("{diff}\n");
            // Comments are anyone's text: no escape sequence reaches the terminal.
            let clean = |t: &str| -> String {
                t.chars()
                    .filter(|c| !c.is_control() || *c == '\n')
                    .collect::<String>()
                    .replace('\n', "\n  ")
            };
            for c in &comments {
                println!(
                    "— {} at {}\n  {}",
                    clean(&c.author),
                    shown_time(c.created_at),
                    clean(&c.body)
                );
            }
            if let Some(by) = &p.decided_by {
                println!("{} by {by}", p.status);
            }
        }
        Cmd::Comment { id, text } => {
            let by = actor.clone();
            store
                .write(move |db| {
                    proposals::comment(db, &id, &by, &text, now).map_err(kept)?;
                    audit(db, &by, "comment", &id, json!({}), now)
                })
                .wait()?;
            eprintln!("commented");
        }
        Cmd::Approve { id } => {
            let key = id.clone();
            let p = store.read(move |db| proposals::get(db, &key).map_err(kept))?;
            if p.status != "open" {
                anyhow::bail!("proposal {} is {}, not open", p.id, p.status);
            }
            let head = proposals::merge_branch(&ws.root, &p.branch, &actor)?;
            let h = head.clone();
            store
                .write(move |db| {
                    proposals::decide(db, &id, "merged", &actor, now).map_err(kept)?;
                    audit(db, &actor, "approve", &id, json!({"merged_as": h}), now)
                })
                .wait()?;
            println!("merged {} as {head}", p.branch);
        }
        Cmd::Reject { id } => {
            store
                .write(move |db| {
                    proposals::decide(db, &id, "rejected", &actor, now).map_err(kept)?;
                    audit(db, &actor, "reject", &id, json!({}), now)
                })
                .wait()?;
            eprintln!("rejected");
        }
    }
    Ok(ExitCode::SUCCESS)
}
