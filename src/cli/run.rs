//! `funnel run WORKFLOW --trigger FILE|-`: one real execution on the local store,
//! run until it completes, fails or parks on a timer or an event; prints its trace.
//! A parked execution is continued by `funnel worker`.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::ColorChoice;
use super::executions::to_store;
use crate::engine::ingest::Started;
use crate::engine::manage;
use crate::engine::worker::Worker;
use crate::store::db::params;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workflow id.
    pub workflow: String,
    /// The trigger's data as a JSON or YAML file, or `-` for standard input.
    #[arg(long)]
    pub trigger: Option<PathBuf>,
    /// Print the trace as JSON.
    #[arg(long)]
    pub json: bool,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let mut args = args;
    args.workflow = super::loaded::workflow_id(&args.workflow);
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let data = match args.trigger.as_deref() {
        None => serde_json::Value::Object(serde_json::Map::new()),
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            let tmp = tempfile_in(&ws.root, &text)?;
            let value = super::loaded::read_data(&tmp);
            let _ = std::fs::remove_file(&tmp);
            value?
        }
        Some(p) => super::loaded::read_data(p)?,
    };
    let engine = Arc::new(super::loaded::engine(&ws)?);
    if engine.workflow(&args.workflow).is_none() {
        let ids: Vec<&str> = engine.workflows().map(|(i, _)| i.as_str()).collect();
        anyhow::bail!(
            "no workflow `{}`; {}",
            args.workflow,
            crate::diagnostic::suggest(&args.workflow, &ids, "the workflows are")
        );
    }
    let store = super::loaded::store(&ws)?;
    let rt = super::loaded::runtime()?;
    let workflow = args.workflow.clone();
    let started = rt.block_on(async {
        let worker = Worker::new(store.clone(), engine)?;
        worker.prepare(worker.now()).await?;
        let started = worker.start_workflow(&workflow, data).await?;
        // Let remote calls return and anything already due run, then deliver mail.
        loop {
            worker.settle().await;
            let tick = worker.tick_at(worker.now()).await?;
            if tick.fired == 0 {
                break;
            }
        }
        worker.settle().await;
        worker.deliver_outbox().await?;
        anyhow::Ok(started)
    })?;
    let id = match started {
        Started::Filtered => {
            println!(
                "{}: the trigger's conditions did not hold; nothing ran",
                args.workflow
            );
            return Ok(ExitCode::SUCCESS);
        }
        Started::Running(id) | Started::Failed(id) => id,
    };
    let uid: String = store.read(move |c| {
        c.query_row(
            "SELECT uid FROM executions WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
    })?;
    let detail = store.read(|c| manage::show(c, &uid).map_err(to_store))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
    } else {
        let e = &detail.execution;
        println!("execution {} of {}: {}", e.id, e.workflow, e.status);
        if let Some(err) = &e.error {
            println!("error: {err}");
        }
        super::loaded::print_steps(&detail.steps, None);
        if e.status == "waiting" {
            println!("\nthe execution waits; `funnel worker` continues it when it is due");
        }
    }
    Ok(if detail.execution.status == "failed" {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Standard input goes through a file so that its problems are reported with a
/// line and column like any other data file.
fn tempfile_in(root: &std::path::Path, text: &str) -> anyhow::Result<PathBuf> {
    let dir = root.join(".funnel");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("stdin-{}.yaml", std::process::id()));
    std::fs::write(&path, text)?;
    Ok(path)
}
