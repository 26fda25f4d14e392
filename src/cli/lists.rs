//! `funnel lists list|show|add|remove`: the static lists of contacts/lists.yaml and
//! their members.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::ColorChoice;
use super::loaded::{TableFormat, print_table};
use super::segments::to_store;
use crate::crm::{contact, directory};
use crate::model::contacts::Condition;
use crate::model::scalar::Ident;
use crate::store::db::params;

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
    /// Every list with its number of members.
    List {
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// A list's members, oldest contact first.
    Show {
        list: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Add contacts (emails or ids) to a list.
    Add { list: String, contacts: Vec<String> },
    /// Remove contacts (emails or ids) from a list.
    Remove { list: String, contacts: Vec<String> },
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let engine = std::sync::Arc::new(super::loaded::engine(&ws)?);
    let store = super::loaded::store(&ws)?;
    let now = crate::store::now_ms();
    let lists = ws
        .lists
        .as_ref()
        .map(|d| d.value.lists.clone())
        .unwrap_or_default();
    let known = |id: &str| -> anyhow::Result<()> {
        if lists.contains_key(id) {
            return Ok(());
        }
        let ids: Vec<&str> = lists.keys().map(String::as_str).collect();
        anyhow::bail!(
            "no list `{id}`; {}",
            crate::diagnostic::suggest(id, &ids, "the lists are")
        )
    };
    match args.command {
        Cmd::List { format } => {
            let counts = store.read(|c| {
                let mut stmt =
                    c.prepare("SELECT list_id, count(*) FROM list_members GROUP BY list_id")?;
                let rows =
                    stmt.query_map(params![], |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)))?;
                rows.collect::<Result<std::collections::BTreeMap<_, _>, _>>()
            })?;
            let rows: Vec<(String, String, i64)> = lists
                .iter()
                .map(|(id, def)| {
                    (
                        id.clone(),
                        def.name.clone(),
                        counts.get(id).copied().unwrap_or(0),
                    )
                })
                .collect();
            match format {
                TableFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &rows
                            .iter()
                            .map(|(id, name, n)| json!({"id": id, "name": name, "members": n}))
                            .collect::<Vec<_>>()
                    )?
                ),
                TableFormat::Table => print_table(
                    &["LIST", "NAME", "MEMBERS"],
                    &rows
                        .into_iter()
                        .map(|(id, name, n)| vec![id, name, n.to_string()])
                        .collect::<Vec<_>>(),
                ),
            }
        }
        Cmd::Show {
            list,
            limit,
            format,
        } => {
            known(&list)?;
            let e = engine.clone();
            let members = store.read(move |c| {
                let cond = Condition::List(Ident(list));
                directory::list(c, &e.scoring, Some(&cond), now, 0, limit).map_err(to_store)
            })?;
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&members)?),
                TableFormat::Table => super::contacts::print_contacts(&members),
            }
        }
        Cmd::Add { list, contacts } | Cmd::Remove { list, contacts } if contacts.is_empty() => {
            anyhow::bail!("name the contacts to change on list `{list}` (emails or ids)");
        }
        Cmd::Add { list, contacts } => {
            known(&list)?;
            let n = store
                .write(move |c| {
                    let mut n = 0;
                    for who in &contacts {
                        let id = contact::resolve(c, who).map_err(to_store)?;
                        n +=
                            usize::from(contact::add_to_list(c, id, &list, now).map_err(to_store)?);
                    }
                    Ok(n)
                })
                .wait()?;
            println!("{n} added");
        }
        Cmd::Remove { list, contacts } => {
            known(&list)?;
            let n = store
                .write(move |c| {
                    let mut n = 0;
                    for who in &contacts {
                        let id = contact::resolve(c, who).map_err(to_store)?;
                        n +=
                            usize::from(contact::remove_from_list(c, id, &list).map_err(to_store)?);
                    }
                    Ok(n)
                })
                .wait()?;
            println!("{n} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}
