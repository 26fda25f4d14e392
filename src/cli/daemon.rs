//! `funnel daemon`: the same process as `funnel up`, for servers: it binds where
//! told (loopback unless told otherwise), answers each site on its domain from
//! site.yaml (and `<site>.localhost`), logs instead of chatting, and prints one
//! line with its address once it listens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use super::ColorChoice;
use super::up::{Shell, serve};
use crate::daemon::Addressing;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address to listen on; another interface than loopback must be named.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub bind: SocketAddr,
    /// Where HTTPS listens for the sites' domains; needs `daemon.tls` in
    /// funnel.yaml, which names the ACME directory that issues the certificates.
    #[arg(long)]
    pub https_bind: Option<SocketAddr>,
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
            bind: args.bind,
            addressing: Addressing::Domains,
            watch: !args.no_watch,
            friendly: false,
            live_reload: false,
            https_bind: args.https_bind,
        },
        color,
        |d| format!("listening on http://{}", d.addr),
    )
}
