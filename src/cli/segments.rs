//! `funnel segments list|show|count|explain`: segments from contacts/segments.yaml,
//! counted live on the store.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;

use super::ColorChoice;
use super::loaded::{TableFormat, print_table};
use crate::crm::segment::{self, Explained};
use crate::crm::{CrmError, contact};
use crate::model::contacts::SegmentDef;

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
    /// Every segment with its size now.
    List {
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// A segment's definition, size and first members.
    Show {
        id: String,
        /// How many members to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// How many contacts are in a segment now.
    Count {
        id: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Which of a segment's conditions hold for a contact (email or id).
    Explain {
        id: String,
        contact: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let engine = std::sync::Arc::new(super::loaded::engine(&ws)?);
    let store = super::loaded::store(&ws)?;
    let now = crate::store::now_ms();
    super::contacts::refresh_scores(&store, &engine, now)?;
    let segments = &engine.scoring.segments;
    let find = |id: &str| -> anyhow::Result<SegmentDef> {
        segments.get(id).cloned().ok_or_else(|| {
            let ids: Vec<&str> = segments.keys().map(String::as_str).collect();
            anyhow::anyhow!(
                "no segment `{id}`; {}",
                crate::diagnostic::suggest(id, &ids, "the segments are")
            )
        })
    };
    let count = |def: SegmentDef| -> anyhow::Result<u64> {
        let engine = engine.clone();
        Ok(store.read(move |c| {
            segment::count_segment(c, &engine.scoring, &def, now).map_err(to_store)
        })?)
    };
    match args.command {
        Cmd::List { format } => {
            let mut rows = Vec::new();
            for (id, def) in segments {
                rows.push((id.clone(), def.name.clone(), count(def.clone())?));
            }
            match format {
                TableFormat::Json => {
                    let out: Vec<_> = rows
                        .iter()
                        .map(|(id, name, n)| json!({"id": id, "name": name, "contacts": n}))
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&out)?);
                }
                TableFormat::Table => print_table(
                    &["SEGMENT", "NAME", "CONTACTS"],
                    &rows
                        .into_iter()
                        .map(|(id, name, n)| vec![id, name, n.to_string()])
                        .collect::<Vec<_>>(),
                ),
            }
        }
        Cmd::Count { id, format } => {
            let n = count(find(&id)?)?;
            match format {
                TableFormat::Json => println!("{}", json!({"segment": id, "contacts": n})),
                TableFormat::Table => println!("{n}"),
            }
        }
        Cmd::Show { id, limit, format } => {
            let def = find(&id)?;
            let n = count(def.clone())?;
            let engine2 = engine.clone();
            let d2 = def.clone();
            let members = store.read(move |c| {
                let ids = segment::segment_members(c, &engine2.scoring, &d2, now, 0, limit)
                    .map_err(to_store)?;
                let mut out = Vec::new();
                for cid in ids {
                    out.push(crate::crm::directory::summary(c, cid).map_err(to_store)?);
                }
                Ok(out)
            })?;
            match format {
                TableFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "id": id,
                        "name": def.name,
                        "description": def.description,
                        "match": def.matches,
                        "contacts": n,
                        "members": members,
                    }))?
                ),
                TableFormat::Table => {
                    println!("{id}: {}", def.name);
                    if let Some(d) = &def.description {
                        println!("{d}");
                    }
                    println!("contacts: {n}\n");
                    super::contacts::print_contacts(&members);
                    if n > members.len() as u64 {
                        println!("… and {} more", n - members.len() as u64);
                    }
                }
            }
        }
        Cmd::Explain {
            id,
            contact: who,
            format,
        } => {
            let def = find(&id)?;
            let engine = engine.clone();
            let explained = store
                .read(move |c| {
                    let cid = contact::resolve(c, &who).map_err(to_store)?;
                    segment::explain_segment(c, &engine.scoring, &def, cid, now).map_err(to_store)
                })
                .context("cannot explain")?;
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&explained)?),
                TableFormat::Table => print_tree(&explained, 0),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_tree(e: &Explained, depth: usize) {
    let mark = if e.matched { "✓" } else { "✗" };
    println!("{}{mark} {}", "  ".repeat(depth), e.label);
    for c in &e.children {
        print_tree(c, depth + 1);
    }
}

pub(super) fn to_store(e: CrmError) -> crate::store::StoreError {
    match e {
        CrmError::Store(s) => s,
        other => crate::store::StoreError::Invalid(other.to_string()),
    }
}
