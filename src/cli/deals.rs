//! `funnel deals list|show|move|pipeline`: deals in the pipelines of
//! contacts/pipelines.yaml.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::ColorChoice;
use super::loaded::{TableFormat, print_table, shown_time};
use super::segments::to_store;
use crate::crm::{contact, deal};

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
    /// Deals, newest first.
    List {
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long)]
        stage: Option<String>,
        /// open, won or lost.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// A deal and its stage history.
    Show {
        deal: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Move a contact's open deal to a stage (a new deal when there is none).
    Move {
        contact: String,
        stage: String,
        /// The pipeline (default: the only one, if there is one).
        #[arg(long)]
        pipeline: Option<String>,
        /// The deal's value.
        #[arg(long)]
        value: Option<f64>,
    },
    /// A pipeline's stages with their deals, value and weighted value.
    Pipeline {
        id: Option<String>,
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
    let pipeline_of = |given: Option<String>| -> anyhow::Result<String> {
        let ids: Vec<&str> = engine.pipelines.keys().map(String::as_str).collect();
        match given {
            Some(p) if engine.pipelines.contains_key(&p) => Ok(p),
            Some(p) => anyhow::bail!(
                "no pipeline `{p}`; {}",
                crate::diagnostic::suggest(&p, &ids, "the pipelines are")
            ),
            None if ids.len() == 1 => Ok(ids[0].to_string()),
            None => anyhow::bail!(
                "name the pipeline with --pipeline (one of: {})",
                ids.join(", ")
            ),
        }
    };
    match args.command {
        Cmd::List {
            pipeline,
            stage,
            status,
            limit,
            format,
        } => {
            let rows = store.read(move |c| {
                deal::list(
                    c,
                    pipeline.as_deref(),
                    stage.as_deref(),
                    status.as_deref(),
                    limit,
                )
                .map_err(to_store)
            })?;
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                TableFormat::Table => print_table(
                    &[
                        "DEAL",
                        "CONTACT",
                        "PIPELINE",
                        "STAGE",
                        "VALUE",
                        "STATUS",
                        "UPDATED (UTC)",
                    ],
                    &rows
                        .iter()
                        .map(|d| {
                            vec![
                                d.uid.clone(),
                                d.contact.clone(),
                                d.pipeline.clone(),
                                d.stage.clone(),
                                d.value.map(|v| format!("{v:.2}")).unwrap_or_default(),
                                d.status.clone(),
                                shown_time(d.updated_at),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        Cmd::Show { deal: key, format } => {
            let (d, history) = store.read(move |c| deal::show(c, &key).map_err(to_store))?;
            match format {
                TableFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"deal": d, "history": history}))?
                ),
                TableFormat::Table => {
                    println!(
                        "deal {} of {} in {}: {} ({})",
                        d.uid, d.contact, d.pipeline, d.stage, d.status
                    );
                    if let Some(v) = d.value {
                        println!("value: {v:.2}");
                    }
                    print_table(
                        &["AT (UTC)", "FROM", "TO", "BY"],
                        &history
                            .iter()
                            .map(|h| {
                                vec![
                                    shown_time(h.at),
                                    h.from.clone().unwrap_or_default(),
                                    h.to.clone(),
                                    h.source.clone().unwrap_or_default(),
                                ]
                            })
                            .collect::<Vec<_>>(),
                    );
                }
            }
        }
        Cmd::Move {
            contact: who,
            stage,
            pipeline,
            value,
        } => {
            let pipeline = pipeline_of(pipeline)?;
            let stages: Vec<&str> = engine.pipelines[&pipeline]
                .stages
                .iter()
                .map(|s| s.id.as_str())
                .collect();
            if !stages.contains(&stage.as_str()) {
                anyhow::bail!(
                    "no stage `{stage}` in pipeline `{pipeline}`; {}",
                    crate::diagnostic::suggest(&stage, &stages, "its stages are")
                );
            }
            let status = engine.deal_status(&pipeline, &stage);
            let (p, s) = (pipeline.clone(), stage.clone());
            let uid = super::loaded::crm_change(&store, engine.clone(), move |c, now| {
                let id = contact::resolve(c, &who)?;
                let (deal_id, events) =
                    deal::move_to_stage(c, id, &p, &s, value, Some("cli"), now)?;
                deal::set_status(c, deal_id, status, now)?;
                Ok((deal::show(c, &deal_id.to_string())?.0.uid, events))
            })?;
            println!("deal {uid}: {pipeline} → {stage} ({status})");
        }
        Cmd::Pipeline { id, format } => {
            let pipeline = pipeline_of(id)?;
            let def = engine.pipelines[&pipeline].clone();
            let p = pipeline.clone();
            let counts = store.read(move |c| deal::by_stage(c, &p).map_err(to_store))?;
            let rows: Vec<(String, String, i64, f64, f64)> = def
                .stages
                .iter()
                .map(|s| {
                    let (n, value) = counts
                        .iter()
                        .find(|(st, _, _)| st == s.id.as_str())
                        .map_or((0, 0.0), |(_, n, v)| (*n, *v));
                    let weighted = value * s.probability.unwrap_or(0.0);
                    (s.id.to_string(), s.name.clone(), n, value, weighted)
                })
                .collect();
            match format {
                TableFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &rows
                            .iter()
                            .map(|(id, name, n, v, w)| json!({"stage": id, "name": name, "deals": n, "value": v, "weighted": w}))
                            .collect::<Vec<_>>()
                    )?
                ),
                TableFormat::Table => {
                    println!("{}: {}", pipeline, def.name);
                    print_table(
                        &["STAGE", "NAME", "DEALS", "VALUE", "WEIGHTED"],
                        &rows
                            .iter()
                            .map(|(id, name, n, v, w)| {
                                vec![id.clone(), name.clone(), n.to_string(), format!("{v:.2}"), format!("{w:.2}")]
                            })
                            .collect::<Vec<_>>(),
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
