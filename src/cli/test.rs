//! `funnel test [PATH…] [--filter TEXT] [--format human|json]`: runs the workflow
//! test cases in `workflows/tests/` on the simulator.

use std::path::PathBuf;
use std::process::ExitCode;

use super::ColorChoice;
use super::loaded::TextFormat;
use crate::engine::testing::{CaseResult, run_case};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Test files or workflow ids to run. Default: every test of the workspace.
    pub paths: Vec<PathBuf>,
    /// Only cases whose name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    #[arg(long, value_enum, default_value_t = TextFormat::Human)]
    pub format: TextFormat,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let engine = super::loaded::engine(&ws)?;
    let wanted = |file: &std::path::Path, workflow: &str| {
        args.paths.is_empty()
            || args.paths.iter().any(|p| {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                ws.root.join(file).starts_with(&abs) || p.as_os_str() == workflow
            })
    };
    let mut results: Vec<CaseResult> = Vec::new();
    for doc in &ws.workflow_tests {
        let file = &ws.file(doc.file).rel;
        let workflow = doc.value.workflow.as_str();
        if !wanted(file, workflow) {
            continue;
        }
        for case in &doc.value.cases {
            if args
                .filter
                .as_deref()
                .is_some_and(|f| !case.name.contains(f))
            {
                continue;
            }
            let r = run_case(&engine, workflow, case);
            if args.format == TextFormat::Human {
                let mark = if r.passed() { "ok" } else { "FAILED" };
                println!(
                    "test {workflow} › {} ... {mark} ({} ms)",
                    r.name, r.elapsed_ms
                );
                for f in &r.failures {
                    println!("    {f}");
                }
            }
            results.push(r);
        }
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let passed = results.len() - failed;
    match args.format {
        TextFormat::Json => println!("{}", serde_json::to_string_pretty(&results)?),
        TextFormat::Human => {
            println!();
            println!("{passed} passed, {failed} failed");
        }
    }
    if results.is_empty() {
        eprintln!("warning: no test cases matched");
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
