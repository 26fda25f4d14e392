//! `funnel worker`: runs due executions, timers, remote calls, the dev outbox and
//! cron schedules until stopped (Ctrl-C or SIGTERM finishes in-flight work first).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::ColorChoice;
use crate::engine::worker::Worker;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let engine = Arc::new(super::loaded::engine(&ws)?);
    let store = super::loaded::store(&ws)?;
    let rt = super::loaded::runtime()?;
    rt.block_on(async move {
        let worker = Worker::new(store, engine)?;
        super::activity::warn_unset_secrets(&ws);
        let _printing = super::activity::print_notes(&worker, super::activity::Printer::start());
        eprintln!(
            "funnel worker: running {} workflows from {} (Ctrl-C stops)",
            worker.engine().workflows().count(),
            ws.root.display()
        );
        worker.run(shutdown()).await?;
        eprintln!("funnel worker: stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
pub(super) async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
