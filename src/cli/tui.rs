//! `funnel tui`: the terminal UI on the workspace's store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use super::ColorChoice;
use crate::tui::{App, local::Local, theme::Theme};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workspace (default: the one around the current folder).
    #[arg(long)]
    workspace: Option<PathBuf>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "funnel tui needs a terminal; for scripts use `funnel contacts`, `funnel deals` and the others"
        );
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
    let source: Arc<dyn crate::tui::source::Source> = Arc::new(source);
    let theme = Theme::new(color.enabled(&std::io::stdout()));
    let exports = ws.root.join(".funnel/exports");
    crate::tui::term::run(|w, h| {
        let mut app = App::new(source, theme, w, h);
        app.export_dir = exports;
        app
    })
    .context("the terminal failed")?;
    Ok(ExitCode::SUCCESS)
}
