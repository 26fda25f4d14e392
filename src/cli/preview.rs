//! `funnel preview SITE [--port P]`: one site on 127.0.0.1, served by the daemon
//! (the same process as `funnel up`, addressing only this site, whatever the
//! host): compressed, cache headers as a production host sends them, form posts
//! and tracking beacons into the local store with the worker alongside. Edits
//! are picked up once they validate, and open pages reload themselves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use super::ColorChoice;
use super::up::{Shell, serve};
use crate::daemon::Addressing;

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
    let site = args.site.clone();
    serve(
        Shell {
            start: args.workspace,
            bind: SocketAddr::from(([127, 0, 0, 1], args.port)),
            addressing: Addressing::Only(args.site),
            watch: !args.no_watch,
            friendly: true,
            live_reload: !args.no_watch,
            https_bind: None,
        },
        color,
        move |d| format!("preview of `{site}` at http://{}/ (Ctrl-C stops)", d.addr),
    )
}
