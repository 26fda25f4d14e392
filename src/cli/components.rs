//! `funnel components list|show`: the component library, and the workflows wired
//! to a component's events.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

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
    /// Every component with its events and the templates using it.
    List {
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// One component: config, events, and the workflows its events start.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
}

fn events(e: &[crate::model::component::ComponentEvent]) -> String {
    e.iter()
        .map(|e| {
            serde_json::to_value(e)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let ws = super::loaded::workspace_or_builtin(args.workspace.as_deref(), color)?;
    match args.command {
        Cmd::List { format } => {
            let rows = catalog::components(&ws);
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                TableFormat::Table => print_table(
                    &["COMPONENT", "NAME", "EVENTS", "TEMPLATES"],
                    &rows
                        .iter()
                        .map(|c| {
                            vec![
                                c.id.clone(),
                                c.name.clone(),
                                events(&c.events),
                                c.templates.len().to_string(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        Cmd::Show { id, format } => {
            let Some(c) = catalog::components(&ws).into_iter().find(|c| c.id == id) else {
                let ids: Vec<&str> = ws.components.keys().map(String::as_str).collect();
                anyhow::bail!(
                    "no component `{id}`; {}",
                    crate::diagnostic::suggest(&id, &ids, "the components are")
                );
            };
            let config = ws.components[&id].value.config.clone();
            let wired = catalog::connections(&ws, &id);
            match format {
                TableFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "component": c,
                        "config": config,
                        "workflows": wired,
                    }))?
                ),
                TableFormat::Table => {
                    println!("{} ({})", c.name, c.id);
                    if let Some(d) = &c.description {
                        println!("{d}");
                    }
                    println!("events: {}", events(&c.events));
                    println!("used by templates: {}\n", c.templates.join(", "));
                    print_table(
                        &["CONFIG", "TYPE", "REQUIRED", "LABEL"],
                        &config
                            .iter()
                            .map(|(k, v)| {
                                vec![
                                    k.clone(),
                                    v.kind.name().to_string(),
                                    if v.default.is_none() { "yes" } else { "" }.to_string(),
                                    v.label.clone().unwrap_or_default(),
                                ]
                            })
                            .collect::<Vec<_>>(),
                    );
                    if wired.is_empty() {
                        println!("\nno workflow is wired to its events");
                    } else {
                        println!("\nworkflows:");
                        for w in &wired {
                            println!(
                                "  {} ({} on {}{})",
                                w.workflow,
                                w.trigger,
                                w.site
                                    .as_deref()
                                    .map(|s| format!("{s}/"))
                                    .unwrap_or_default(),
                                w.instance
                            );
                        }
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
