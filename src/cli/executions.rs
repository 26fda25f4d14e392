//! `funnel executions list|show|retry|cancel`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use super::ColorChoice;
use super::loaded::TableFormat;
use super::loaded::{print_table, shown_time};
use crate::engine::manage::{self, Filter};
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
    /// The newest executions.
    List {
        #[arg(long)]
        workflow: Option<String>,
        /// running, waiting, completed, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// One execution: its steps, outputs and variables.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Run a failed execution again from the step that failed.
    Retry { id: String },
    /// Stop a running or waiting execution.
    Cancel { id: String },
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let store = super::loaded::store(&ws)?;
    match args.command {
        Cmd::List {
            workflow,
            status,
            limit,
            format,
        } => {
            let f = Filter {
                workflow,
                status,
                limit,
            };
            let rows = store.read(|c| manage::list(c, &f).map_err(to_store))?;
            if format == TableFormat::Json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.workflow.clone(),
                        r.status.clone(),
                        r.contact.clone().unwrap_or_default(),
                        shown_time(r.started_at),
                        r.completed_at
                            .map(|c| format!("{} ms", c - r.started_at))
                            .unwrap_or_default(),
                        r.error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "ID",
                    "WORKFLOW",
                    "STATUS",
                    "CONTACT",
                    "STARTED (UTC)",
                    "TOOK",
                    "ERROR",
                ],
                &table,
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Show { id, format } => {
            let d = store.read(|c| manage::show(c, &id).map_err(to_store))?;
            if format == TableFormat::Json {
                println!("{}", serde_json::to_string_pretty(&d)?);
                return Ok(ExitCode::SUCCESS);
            }
            let e = &d.execution;
            println!(
                "execution {} of {} (version {})",
                e.id, e.workflow, e.version
            );
            println!("status:   {}", e.status);
            if let Some(err) = &e.error {
                println!("error:    {err}");
            }
            println!("contact:  {}", e.contact.as_deref().unwrap_or("-"));
            println!("started:  {} UTC", shown_time(e.started_at));
            println!("trigger:  {}", d.trigger);
            println!("vars:     {}", d.vars);
            println!();
            super::loaded::print_steps(&d.steps, Some(80));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Retry { id } => change(&ws, store, id, true),
        Cmd::Cancel { id } => change(&ws, store, id, false),
    }
}

fn change(
    ws: &crate::workspace::Workspace,
    store: crate::store::Store,
    id: String,
    retry: bool,
) -> anyhow::Result<ExitCode> {
    let engine = Arc::new(super::loaded::engine(ws)?);
    let actor = super::loaded::actor(&ws.root);
    let rt = super::loaded::runtime()?;
    let message = rt.block_on(async move {
        let worker = Worker::new(store, engine)?;
        let uid = id.clone();
        let message = if retry {
            let status = worker
                .transact(crate::store::now_ms(), move |ctx| {
                    manage::retry(ctx, &uid, &actor)
                })
                .await?;
            format!("execution {id} retried: {status}")
        } else {
            let cancelled = worker
                .transact(crate::store::now_ms(), move |ctx| {
                    manage::cancel(ctx, &uid, &actor)
                })
                .await?;
            if cancelled {
                format!("execution {id} cancelled")
            } else {
                format!("execution {id} had finished already; nothing to cancel")
            }
        };
        worker.settle().await;
        worker.deliver_outbox().await?;
        anyhow::Ok(message)
    })?;
    println!("{message}");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn to_store(e: crate::engine::EngineError) -> crate::store::StoreError {
    match e {
        crate::engine::EngineError::Store(s) => s,
        other => crate::store::StoreError::Invalid(other.to_string()),
    }
}
