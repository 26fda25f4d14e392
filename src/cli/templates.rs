//! `funnel templates list|show`: the site templates, built in and the workspace's.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::ColorChoice;
use super::loaded::{TableFormat, print_table};
use crate::catalog;

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
    /// Templates, by category.
    List {
        /// Only this category (saas, restaurant, real_estate, …).
        #[arg(long)]
        category: Option<String>,
        /// Only templates whose name, description or tags contain these words.
        #[arg(long)]
        search: Option<String>,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// One template: its variables, pages and components.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let ws = super::loaded::workspace_or_builtin(args.workspace.as_deref(), color)?;
    match args.command {
        Cmd::List {
            category,
            search,
            format,
        } => {
            let rows = catalog::list(&ws, category.as_deref(), search.as_deref());
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                TableFormat::Table => {
                    print_table(
                        &["TEMPLATE", "CATEGORY", "NAME", "PAGES", "TAGS"],
                        &rows
                            .iter()
                            .map(|t| {
                                vec![
                                    t.id.clone(),
                                    t.category.clone(),
                                    t.name.clone(),
                                    t.pages.to_string(),
                                    t.tags.join(", "),
                                ]
                            })
                            .collect::<Vec<_>>(),
                    );
                    println!("{} template(s)", rows.len());
                }
            }
        }
        Cmd::Show { id, format } => {
            let Some(t) = catalog::show(&ws, &id) else {
                let ids: Vec<&str> = ws.site_template_ids().collect();
                anyhow::bail!(
                    "no template `{id}`; {}",
                    crate::diagnostic::suggest(&id, &ids, "the templates are")
                );
            };
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&t)?),
                TableFormat::Table => {
                    println!(
                        "{} ({}, {})",
                        t.summary.name, t.summary.id, t.summary.category
                    );
                    println!("{}\n", t.summary.description);
                    println!("variables:");
                    print_table(
                        &["NAME", "TYPE", "DEFAULT", "LABEL"],
                        &t.variables
                            .iter()
                            .map(|(k, v)| {
                                vec![
                                    k.clone(),
                                    v.kind.name().to_string(),
                                    v.default.as_ref().map_or_else(
                                        || "(required)".to_string(),
                                        |d| {
                                            let s = d
                                                .as_str()
                                                .map_or_else(|| d.to_string(), String::from);
                                            s.chars().take(40).collect()
                                        },
                                    ),
                                    v.label.clone().unwrap_or_default(),
                                ]
                            })
                            .collect::<Vec<_>>(),
                    );
                    println!("\npages:");
                    for p in &t.pages {
                        let comps: Vec<String> = p
                            .components
                            .iter()
                            .map(|(i, c)| {
                                if i == c {
                                    c.clone()
                                } else {
                                    format!("{i} ({c})")
                                }
                            })
                            .collect();
                        println!("  {}: {}", p.path, comps.join(", "));
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
