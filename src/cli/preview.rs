//! `funnel preview SITE [--port P]`: serves a site on 127.0.0.1 as a production
//! host would (compressed, cache headers), rebuilds it and reloads open pages when
//! a workspace file changes, and takes form posts and tracking beacons into the
//! local store through the engine, whose worker runs alongside (delays, emails
//! into the dev outbox).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;

use super::ColorChoice;
use crate::engine::worker::Worker;
use crate::publish::{self, Options};
use crate::web::{SiteServer, router};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The site to serve (folder name under sites/).
    pub site: String,
    /// The port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 4000)]
    pub port: u16,
    /// Do not watch the workspace for changes.
    #[arg(long)]
    pub no_watch: bool,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    super::loaded::known_site(&ws, &args.site)?;
    let engine = Arc::new(super::loaded::engine(&ws)?);
    let store = super::loaded::store(&ws)?;
    let rt = super::loaded::runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let opts = Options {
            public_url: url.clone(),
            base_url: Some(url.clone()),
        };
        let build = publish::build(&ws, &args.site, &opts)?;
        let worker = Worker::new(store, engine)?;
        super::activity::warn_unset_secrets(&ws);
        let _printing = super::activity::print_notes(&worker);
        let (notices, mut notice_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(line) = notice_rx.recv().await {
                #[allow(clippy::print_stdout)]
                {
                    println!("{line}");
                }
            }
        });
        let (version, _) = tokio::sync::watch::channel(0u64);
        let state = Arc::new(SiteServer {
            site: args.site.clone(),
            build: RwLock::new(Arc::new(build)),
            worker: worker.clone(),
            version,
            live_reload: !args.no_watch,
            notices: Some(notices),
            gate: Arc::new(
                crate::web::gate::Gate::from_config(ws.config.as_ref().map(|c| &c.value))
                    .map_err(|e| anyhow::anyhow!("funnel.yaml daemon: {e}"))?,
            ),
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let background = {
            let worker = worker.clone();
            let mut rx = stop_rx.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|s| *s).await;
                };
                if let Err(e) = worker.run(stop).await {
                    tracing::error!(error = %e, "the worker stopped");
                }
            })
        };
        let _watcher = if args.no_watch {
            None
        } else {
            Some(watch(
                ws.root.clone(),
                args.site.clone(),
                opts,
                state.clone(),
                color,
            )?)
        };
        #[allow(clippy::print_stdout)]
        {
            println!("preview of `{}` at {url}/ (Ctrl-C stops)", args.site);
        }
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        let _ = stop_tx.send(true);
        let _ = background.await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Rebuilds the site when a workspace file changes (bursts of changes within
/// 200 ms make one rebuild); a workspace with errors keeps the last good build.
fn watch(
    root: PathBuf,
    site: String,
    opts: Options,
    state: Arc<SiteServer>,
    color: ColorChoice,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    // Events name absolute paths: compare with the absolute root.
    let root = root.canonicalize().unwrap_or(root);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let ignored: Vec<PathBuf> = [".funnel", "public", "target", ".git"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        use notify::EventKind as K;
        // Reading files (as a rebuild does) raises access events: only changes count.
        if let Ok(event) = res
            && matches!(
                event.kind,
                K::Create(_)
                    | K::Remove(_)
                    | K::Modify(notify::event::ModifyKind::Data(_))
                    | K::Modify(notify::event::ModifyKind::Name(_))
                    | K::Modify(notify::event::ModifyKind::Any)
            )
            && event
                .paths
                .iter()
                .any(|p| !ignored.iter().any(|i| p.starts_with(i)))
        {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&root, notify::RecursiveMode::Recursive)?;
    std::thread::spawn(move || {
        while rx.recv().is_ok() {
            while rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
            let started = std::time::Instant::now();
            match super::loaded::valid_workspace(Some(&root), color) {
                Ok(Some(ws)) => match publish::build(&ws, &site, &opts) {
                    Ok(build) => {
                        state.replace(build);
                        tracing::info!(ms = started.elapsed().as_millis() as u64, "rebuilt");
                        #[allow(clippy::print_stderr)]
                        {
                            eprintln!("rebuilt in {} ms", started.elapsed().as_millis());
                        }
                    }
                    Err(e) => {
                        #[allow(clippy::print_stderr)]
                        {
                            eprintln!("error: {e}");
                        }
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    #[allow(clippy::print_stderr)]
                    {
                        eprintln!("error: {e:#}");
                    }
                }
            }
        }
    });
    Ok(watcher)
}
