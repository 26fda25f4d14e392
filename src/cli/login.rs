//! `funnel login NAME --remote URL` and `funnel logout NAME`: a team's daemon
//! kept as a named remote in the user's config folder with their token, checked
//! against the daemon before it is saved. The token is read from `FUNNEL_TOKEN`
//! or standard input, never from an argument (arguments end up in shell history
//! and in `ps`).

use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::desk::Source as _;
use crate::desk::remote::Remote;
use crate::remotes::{self, Profile, Remotes};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The name to know the remote by (`funnel tui --remote NAME`).
    name: String,
    /// The daemon's base URL (`https://funnel.example.com`).
    #[arg(long = "remote", value_name = "URL")]
    url: String,
    /// Take a plain-http URL to a host that is not this machine (the token
    /// crosses the network in clear).
    #[arg(long)]
    allow_http: bool,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The remote to forget.
    name: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    remotes::check_name(&args.name)?;
    let url = remotes::check_url(&args.url, args.allow_http)?;
    let token = read_token()?;
    let mut profile = Profile {
        url,
        token,
        actor: None,
        role: None,
    };
    let remote = Remote::connect(&args.name, &profile).map_err(|e| anyhow::anyhow!("{e}"))?;
    profile.actor = remote.info().actor.clone();
    profile.role = Some(remote.role.clone());
    let dir = remotes::config_dir()?;
    let mut all = Remotes::load(&dir)?;
    all.set(&args.name, profile)?;
    all.save()?;
    println!(
        "logged in to {} as {} {}{}; saved in {}",
        args.name,
        if remote.role.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        },
        remote.role,
        remote
            .info()
            .actor
            .as_deref()
            .map(|a| format!(" (changes are recorded as {a})"))
            .unwrap_or_else(|| " (read-only)".into()),
        all.path().display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let mut all = Remotes::load(&remotes::config_dir()?)?;
    if !all.remove(&args.name) {
        all.get(&args.name)?;
    }
    all.save()?;
    println!("forgot the remote {} and its token", args.name);
    Ok(ExitCode::SUCCESS)
}

/// The token from `FUNNEL_TOKEN`, else the first line of standard input
/// (prompted for on a terminal).
fn read_token() -> anyhow::Result<String> {
    if let Ok(t) = std::env::var("FUNNEL_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("token (from `funnel tokens create` on the daemon's machine): ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the token from standard input")?;
    let token = line.trim().to_string();
    if token.is_empty() {
        anyhow::bail!(
            "no token: give it on standard input or in FUNNEL_TOKEN (an owner makes one with `funnel tokens create --name YOU --role editor`)"
        );
    }
    Ok(token)
}
