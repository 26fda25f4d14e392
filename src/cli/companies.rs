//! `funnel companies list|show`: contacts grouped by the domain of their email
//! address (free-mail domains left out).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::ColorChoice;
use super::loaded::{TableFormat, print_table, shown_time};
use super::segments::to_store;
use crate::crm::{company, directory};

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
    /// Companies by number of contacts, with their open deals.
    List {
        /// Only companies with at least this many contacts.
        #[arg(long, default_value_t = 1)]
        min_contacts: u64,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// One company (by domain) and its contacts.
    Show {
        domain: String,
        /// Contacts shown at most.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let store = super::loaded::store(&ws)?;
    match args.command {
        Cmd::List {
            min_contacts,
            limit,
            format,
        } => {
            let rows =
                store.read(move |c| company::list(c, min_contacts, limit).map_err(to_store))?;
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                TableFormat::Table => print_table(
                    &[
                        "DOMAIN",
                        "CONTACTS",
                        "OPEN DEALS",
                        "OPEN VALUE",
                        "LAST ACTIVITY",
                    ],
                    &rows
                        .iter()
                        .map(|r| {
                            vec![
                                r.domain.clone(),
                                r.contacts.to_string(),
                                r.open_deals.to_string(),
                                format!("{:.2}", r.open_value),
                                r.last_activity.map(shown_time).unwrap_or_default(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        Cmd::Show {
            domain,
            limit,
            format,
        } => {
            let (found, people) = store.read(move |c| {
                let (found, ids) = company::show(c, &domain).map_err(to_store)?;
                let people = ids
                    .iter()
                    .take(limit)
                    .map(|id| directory::summary(c, *id))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(to_store)?;
                Ok((found, people))
            })?;
            match format {
                TableFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"company": found, "contacts": people})
                    )?
                ),
                TableFormat::Table => {
                    println!(
                        "{}: {} contacts, {} open deals worth {:.2}",
                        found.domain, found.contacts, found.open_deals, found.open_value
                    );
                    super::contacts::print_contacts(&people);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
