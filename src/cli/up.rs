//! `funnel up`: makes the workspace live on this machine. Every site at
//! `http://<site>.localhost:<port>/`, forms and tracking taken into the local
//! store, workflows and timers running, mail into the dev outbox, and edits
//! picked up once they validate. Ctrl-C or SIGTERM stops it cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use super::ColorChoice;
use crate::daemon::{Addressing, Daemon, reload};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 7878)]
    pub port: u16,
    /// Do not reload the workspace when its files change.
    #[arg(long)]
    pub no_watch: bool,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let bind = SocketAddr::from(([127, 0, 0, 1], args.port));
    serve(
        args.workspace,
        bind,
        Addressing::Local,
        !args.no_watch,
        color,
        |d| {
            let mut text = format!("funnel is up: {}\n", d.root.display());
            for site in d.sites().iter() {
                text.push_str(&format!("  site {:<16} {}/\n", site.name, site.url));
            }
            text.push_str(&format!("  daemon {:<14} http://{}/\n", "", d.addr));
            text.push_str("Edits are picked up once they validate. Ctrl-C stops.");
            text
        },
        true,
    )
}

/// Starts the daemon for the workspace around `start` on `bind`, prints
/// `banner`'s text once it listens, and serves until Ctrl-C or SIGTERM. With
/// `friendly`, reload outcomes are printed too (they are always logged).
pub(super) fn serve(
    start: Option<PathBuf>,
    bind: SocketAddr,
    addressing: Addressing,
    watch: bool,
    color: ColorChoice,
    banner: impl FnOnce(&Daemon) -> String,
    friendly: bool,
) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(start.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let engine = Arc::new(super::loaded::engine(&ws)?);
    let store = super::loaded::store(&ws)?;
    let rt = super::loaded::runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        let addr = listener.local_addr()?;
        super::activity::warn_unset_secrets(&ws);
        let daemon = Daemon::new(Arc::new(ws), store, engine, addr, addressing).await?;
        let _printing = friendly.then(|| super::activity::print_notes(daemon.worker()));
        let _watcher = if watch {
            Some(reload::watch(
                daemon.clone(),
                tokio::runtime::Handle::current(),
                move |outcome| {
                    if !friendly {
                        return;
                    }
                    #[allow(clippy::print_stderr)]
                    match outcome {
                        reload::Outcome::Applied => eprintln!("reloaded: the changed workspace runs now"),
                        reload::Outcome::Refused(text) => eprintln!(
                            "{text}not reloaded: the changed workspace has errors; the running version stays"
                        ),
                    }
                },
            )?)
        } else {
            None
        };
        #[allow(clippy::print_stdout)]
        {
            use std::io::Write as _;
            println!("{}", banner(&daemon));
            let _ = std::io::stdout().flush();
        }
        daemon.serve(listener, super::worker::shutdown()).await?;
        #[allow(clippy::print_stderr)]
        {
            eprintln!("funnel: stopped");
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
