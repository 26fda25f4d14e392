//! `funnel graph WORKFLOW [--format mermaid|dot|json]`: the workflow's node graph.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use super::ColorChoice;
use crate::engine::graph::{dot, graph, mermaid};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workflow id.
    pub workflow: String,
    #[arg(long, value_enum, default_value_t = Format::Mermaid)]
    pub format: Format,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Mermaid,
    Dot,
    Json,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let mut args = args;
    args.workflow = super::loaded::workflow_id(&args.workflow);
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let engine = super::loaded::engine(&ws)?;
    let Some(program) = engine.workflow(&args.workflow) else {
        let ids: Vec<&str> = engine.workflows().map(|(i, _)| i.as_str()).collect();
        anyhow::bail!(
            "no workflow `{}`; {}",
            args.workflow,
            crate::diagnostic::suggest(&args.workflow, &ids, "the workflows are")
        );
    };
    let g = graph(program);
    match args.format {
        Format::Mermaid => print!("{}", mermaid(&g)),
        Format::Dot => print!("{}", dot(&g)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&g)?),
    }
    Ok(ExitCode::SUCCESS)
}
