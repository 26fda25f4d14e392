//! `funnel workflows list|enable|disable|stats`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::ColorChoice;
use super::executions::to_store;
use super::loaded::TableFormat;
use super::loaded::print_table;
use crate::engine::{Engine, manage, trigger_type};

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
    /// Every workflow, its trigger, and whether it runs here.
    List {
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Let a workflow run in this store, whatever its `active:` says.
    Enable { id: String },
    /// Stop a workflow from starting in this store, whatever its `active:` says.
    Disable { id: String },
    /// Forget the store's override: `active:` decides again.
    Reset { id: String },
    /// Executions, success rate, durations and failures per step.
    Stats {
        /// One workflow (default: all).
        id: Option<String>,
        /// Runs started since: a date (2026-11-01) or an age (7d, 12h, 4w);
        /// default 30 days.
        #[arg(long, value_parser = super::analytics::parse_since)]
        since: Option<i64>,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let engine = super::loaded::engine(&ws)?;
    let store = super::loaded::store(&ws)?;
    let known = |id: &str| -> anyhow::Result<()> {
        if engine.workflow(id).is_none() {
            let ids: Vec<&str> = engine.workflows().map(|(i, _)| i.as_str()).collect();
            anyhow::bail!(
                "no workflow `{id}`; {}",
                crate::diagnostic::suggest(id, &ids, "the workflows are")
            );
        }
        Ok(())
    };
    let set = |id: String, value: Option<bool>| -> anyhow::Result<ExitCode> {
        known(&id)?;
        let now = crate::store::now_ms();
        let shown = id.clone();
        store
            .write(move |c| Engine::set_override(c, &id, value, now).map_err(to_store))
            .wait()?;
        let what = match value {
            Some(true) => "enabled (override)",
            Some(false) => "disabled (override)",
            None => "back to its `active:` setting",
        };
        println!("workflow {shown}: {what}");
        Ok(ExitCode::SUCCESS)
    };
    match args.command {
        Cmd::Enable { id } => set(id, Some(true)),
        Cmd::Disable { id } => set(id, Some(false)),
        Cmd::Reset { id } => set(id, None),
        Cmd::List { format } => {
            let overrides = store.read(|c| Engine::overrides(c).map_err(to_store))?;
            let rows: Vec<serde_json::Value> = engine
                .workflows()
                .map(|(id, p)| {
                    serde_json::json!({
                        "id": id,
                        "name": p.workflow.name,
                        "trigger": trigger_type(&p.workflow.trigger.kind),
                        "active": engine.is_active(id, &overrides),
                        "override": overrides.get(id),
                        "version": p.hash,
                        "steps": p.nodes.len(),
                    })
                })
                .collect();
            if format == TableFormat::Json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let active = match (r["active"].as_bool(), r["override"].as_bool()) {
                        (Some(true), Some(_)) => "yes (override)",
                        (Some(false), Some(_)) => "no (override)",
                        (Some(true), None) => "yes",
                        _ => "no",
                    };
                    vec![
                        r["id"].as_str().unwrap_or_default().to_string(),
                        r["trigger"].as_str().unwrap_or_default().to_string(),
                        active.to_string(),
                        r["steps"].to_string(),
                        r["version"].as_str().unwrap_or_default()[..12].to_string(),
                        r["name"].as_str().unwrap_or_default().to_string(),
                    ]
                })
                .collect();
            print_table(
                &["ID", "TRIGGER", "ACTIVE", "STEPS", "VERSION", "NAME"],
                &table,
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Stats { id, since, format } => {
            let now = crate::store::now_ms();
            let since = since.unwrap_or(now - 30 * 86_400_000);
            let ids: Vec<String> = match id {
                Some(id) => {
                    known(&id)?;
                    vec![id]
                }
                None => engine.workflows().map(|(i, _)| i.clone()).collect(),
            };
            let stats = store.read(|c| {
                ids.iter()
                    .map(|id| manage::stats(c, id, since, now + 1).map_err(to_store))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            if format == TableFormat::Json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
                return Ok(ExitCode::SUCCESS);
            }
            let ms = |v: Option<i64>| v.map(|v| format!("{v} ms")).unwrap_or_else(|| "-".into());
            let table: Vec<Vec<String>> = stats
                .iter()
                .map(|s| {
                    vec![
                        s.workflow.clone(),
                        s.executions.to_string(),
                        s.completed.to_string(),
                        s.completed_with_errors.to_string(),
                        s.failed.to_string(),
                        s.success_rate
                            .map(|r| format!("{:.1}%", r * 100.0))
                            .unwrap_or_else(|| "-".into()),
                        s.avg_ms
                            .map(|v| format!("{v:.0} ms"))
                            .unwrap_or_else(|| "-".into()),
                        ms(s.p50_ms),
                        ms(s.p95_ms),
                        s.failures_by_step
                            .iter()
                            .map(|(step, n)| format!("{step}: {n}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ]
                })
                .collect();
            print_table(
                &[
                    "WORKFLOW",
                    "RUNS",
                    "OK",
                    "WITH ERRORS",
                    "FAILED",
                    "SUCCESS",
                    "AVG",
                    "P50",
                    "P95",
                    "FAILURES BY STEP",
                ],
                &table,
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
