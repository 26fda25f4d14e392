//! `funnel tui`: the terminal UI on the workspace's store, or on a team's
//! daemon with `--remote NAME` (a remote kept by `funnel login`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use super::ColorChoice;
use crate::desk::local::Local;
use crate::desk::remote::Remote;
use crate::tui::{App, theme::Theme};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workspace (default: the one around the current folder).
    #[arg(long, conflicts_with = "remote")]
    workspace: Option<PathBuf>,
    /// A team's daemon, kept by `funnel login NAME --remote URL`: its data,
    /// changed with your token's name and role.
    #[arg(long, value_name = "NAME")]
    remote: Option<String>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal as _;
    // A remote's name is checked first: a typo is told before anything else.
    let profile = match &args.remote {
        Some(name) => {
            let remotes = crate::remotes::Remotes::load(&crate::remotes::config_dir()?)?;
            Some(remotes.get(name)?.clone())
        }
        None => None,
    };
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "funnel tui needs a terminal; for scripts use `funnel contacts`, `funnel deals` and the others"
        );
    }
    let theme = Theme::new(color.enabled(&std::io::stdout()));
    if let (Some(name), Some(profile)) = (&args.remote, &profile) {
        let source = Remote::connect(name, profile).map_err(|e| anyhow::anyhow!("{e}"))?;
        let source: Arc<dyn crate::desk::Source> = Arc::new(source);
        // Exports land where the command was started: there is no workspace.
        let exports = std::env::current_dir()?.join("funnel-exports");
        crate::tui::term::run(|w, h| {
            let mut app = App::new(source, theme, w, h);
            app.export_dir = exports;
            app
        })
        .context("the terminal failed")?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let engine = Arc::new(super::loaded::engine(&ws)?);
    let store = super::loaded::store(&ws)?;
    let location =
        crate::store::StoreLocation::from_config(&ws.root, ws.config.as_ref().map(|d| &d.value))?;
    let actor = super::loaded::known_actor(&ws.root);
    let fields = ws
        .fields
        .as_ref()
        .map(|d| d.value.fields.keys().cloned().collect())
        .unwrap_or_default();
    let source = Local::new(store, engine, location.describe(), actor)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_fields(fields);
    let source: Arc<dyn crate::desk::Source> = Arc::new(source);
    let exports = ws.root.join(".funnel/exports");
    crate::tui::term::run(|w, h| {
        let mut app = App::new(source, theme, w, h);
        app.export_dir = exports;
        app
    })
    .context("the terminal failed")?;
    Ok(ExitCode::SUCCESS)
}
