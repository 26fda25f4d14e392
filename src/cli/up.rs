//! `funnel up`: makes the workspace live on this machine. Every site at
//! `http://<site>.localhost:<port>/`, forms and tracking taken into the local
//! store, workflows and timers running, mail into the dev outbox, and edits
//! picked up once they validate. Ctrl-C or SIGTERM stops it cleanly.
//!
//! `funnel daemon` and `funnel preview` run the same process through
//! [`serve`], with other addressing and output.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use super::ColorChoice;
use crate::daemon::{Addressing, Daemon, Serving, reload};

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
    serve(
        Shell {
            start: args.workspace,
            bind: SocketAddr::from(([127, 0, 0, 1], args.port)),
            addressing: Addressing::Local,
            watch: !args.no_watch,
            friendly: true,
            live_reload: false,
            https_bind: None,
        },
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
    )
}

/// How a command runs the daemon.
#[derive(Debug)]
pub(super) struct Shell {
    /// Where to look for the workspace.
    pub start: Option<PathBuf>,
    pub bind: SocketAddr,
    pub addressing: Addressing,
    /// Reload the workspace when its files change.
    pub watch: bool,
    /// Print form posts, finished executions and reloads (they are always logged).
    pub friendly: bool,
    /// Pages reload themselves when their site changes.
    pub live_reload: bool,
    /// Where HTTPS listens for the sites' domains (`daemon.tls` in funnel.yaml).
    pub https_bind: Option<SocketAddr>,
}

/// Starts the daemon as `shell` says, prints `banner`'s text once it listens,
/// and serves until Ctrl-C or SIGTERM.
pub(super) fn serve(
    shell: Shell,
    color: ColorChoice,
    banner: impl FnOnce(&Daemon) -> String,
) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(shell.start.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    if let Addressing::Only(site) = &shell.addressing {
        super::loaded::known_site(&ws, site)?;
    }
    let tls_on = crate::daemon::tls::config(&ws).is_some();
    match (shell.https_bind, tls_on, &shell.addressing) {
        (Some(_), false, _) => anyhow::bail!(
            "--https-bind needs `daemon.tls` in funnel.yaml (the ACME directory that issues the certificates)"
        ),
        (None, true, Addressing::Domains) => anyhow::bail!(
            "funnel.yaml turns `daemon.tls` on: name where HTTPS listens with --https-bind (e.g. 0.0.0.0:443)"
        ),
        _ => {}
    }
    let engine = Arc::new(super::loaded::engine(&ws)?);
    let store = super::loaded::store(&ws)?;
    let rt = super::loaded::runtime()?;
    let friendly = shell.friendly;
    rt.block_on(async move {
        let bind = shell.bind;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        let addr = listener.local_addr()?;
        let https = match shell.https_bind {
            Some(at) => Some(
                tokio::net::TcpListener::bind(at)
                    .await
                    .with_context(|| format!("cannot listen on {at} for HTTPS"))?,
            ),
            None => None,
        };
        let https_addr = https.as_ref().map(|l| l.local_addr()).transpose()?;
        super::activity::warn_unset_secrets(&ws);
        let printer = friendly.then(super::activity::Printer::start);
        let notices = printer.clone().map(|printer| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            // Never waits: the printer drops what stdout cannot take.
            tokio::spawn(async move {
                while let Some(line) = rx.recv().await {
                    printer.line(line);
                }
            });
            tx
        });
        let serving = Serving {
            addressing: shell.addressing,
            live_reload: shell.live_reload,
            notices,
        };
        let daemon = Daemon::new(Arc::new(ws), store, engine, addr, serving).await?;
        let _printing = printer.map(|p| super::activity::print_notes(daemon.worker(), p));
        let _watcher = if shell.watch {
            Some(reload::watch(
                daemon.clone(),
                tokio::runtime::Handle::current(),
                move |outcome| {
                    if !friendly {
                        return;
                    }
                    match outcome {
                        reload::Outcome::Applied => {
                            eprintln!("reloaded: the changed workspace runs now")
                        }
                        reload::Outcome::Refused(text) => eprintln!(
                            "{text}not reloaded: the changed workspace has errors; the running version stays"
                        ),
                    }
                },
            )?)
        } else {
            None
        };
        {
            use std::io::Write as _;
            println!("{}", banner(&daemon));
            if let Some(at) = https_addr {
                println!("HTTPS on {at} for the sites' domains");
            }
            let _ = std::io::stdout().flush();
        }
        daemon.serve(listener, https, super::worker::shutdown()).await?;
        eprintln!("funnel: stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
