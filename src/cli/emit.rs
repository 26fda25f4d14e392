//! `funnel emit EVENT [--data FILE] [--email ADDRESS]`: sends an event into the
//! engine: a custom event by name, or any trigger type (`form_submission`,
//! `tag_added`, ...). Matching workflows start and run until they wait; a running
//! `funnel worker` takes them from there.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{Value as Json, json};

use super::ColorChoice;
use crate::engine::ingest::{Event, is_known_kind};
use crate::engine::worker::Worker;
use crate::store::db::params;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A custom event name (`demo_booked`), or a trigger type (`form_submission`).
    pub event: String,
    /// The event's data, as a JSON or YAML file.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The contact the event is about.
    #[arg(long)]
    pub email: Option<String>,
    /// Print what happened as JSON.
    #[arg(long)]
    pub json: bool,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let mut data = match &args.data {
        Some(p) => super::loaded::read_data(p)?,
        None => Json::Object(serde_json::Map::new()),
    };
    if !data.is_object() {
        anyhow::bail!("the event data must be a mapping of names to values");
    }
    let kind = if is_known_kind(&args.event) {
        args.event.clone()
    } else {
        if let Some(obj) = data.as_object_mut() {
            obj.insert("event".into(), json!(args.event));
        }
        "custom_event".to_string()
    };
    let engine = Arc::new(super::loaded::engine(&ws)?);
    let store = super::loaded::store(&ws)?;
    let rt = super::loaded::runtime()?;
    let on_store = store.clone();
    let ingested = rt.block_on(async move {
        let worker = Worker::new(on_store, engine)?;
        worker.prepare(crate::store::now_ms()).await?;
        let ingested = worker
            .ingest(Event {
                kind,
                data,
                email: args.email.clone(),
                ..Event::default()
            })
            .await?;
        worker.settle().await;
        worker.deliver_outbox().await?;
        anyhow::Ok(ingested)
    })?;
    let ids = ingested.started.clone();
    let rows = store.read(move |c| {
            let mut out = Vec::new();
            for id in &ids {
                let row = c.query_row(
                    "SELECT uid, workflow_id, status, coalesce(error, '') FROM executions WHERE id = ?1",
                    params![id],
                    |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<String>(2)?, r.get::<String>(3)?)),
                )?;
                out.push(row);
            }
            Ok(out)
        })?;

    if args.json {
        let started: Vec<Json> = rows
            .iter()
            .map(|(uid, wf, status, error)| json!({"execution": uid, "workflow": wf, "status": status, "error": error}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "started": started,
                "resumed": ingested.resumed.len(),
                "filtered": ingested.filtered,
            }))?
        );
    } else {
        if rows.is_empty() && ingested.resumed.is_empty() {
            println!("no workflow started");
        }
        for (uid, wf, status, error) in &rows {
            let error = if error.is_empty() {
                String::new()
            } else {
                format!(": {error}")
            };
            println!("started {wf} ({uid}): {status}{error}");
        }
        if !ingested.resumed.is_empty() {
            println!("resumed {} waiting execution(s)", ingested.resumed.len());
        }
        for wf in &ingested.filtered {
            println!("{wf}: trigger matched, conditions did not hold");
        }
    }
    Ok(ExitCode::SUCCESS)
}
