//! `funnel import FILE.json [--site SITE] [--force]`: turns a workflow in the seed's
//! JSON shape into `workflows/<id>.yaml`, validated before it is written.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::ColorChoice;
use crate::engine::import::{convert, slug, to_yaml};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The JSON file.
    pub file: PathBuf,
    /// The site of a form trigger without `site_id`.
    #[arg(long)]
    pub site: Option<String>,
    /// The workflow id (default: from its name).
    #[arg(long)]
    pub id: Option<String>,
    /// Replace an existing workflow file.
    #[arg(long)]
    pub force: bool,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let start = args.workspace.clone().unwrap_or_else(|| PathBuf::from("."));
    let root = crate::workspace::find_root(&start)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let seed: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}:{}:{}: not JSON: {e}",
            args.file.display(),
            e.line(),
            e.column()
        )
    })?;
    let doc = convert(&seed, args.site.as_deref())
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| slug(doc["name"].as_str().unwrap_or("imported")));
    let target = root.join("workflows").join(format!("{id}.yaml"));
    if target.exists() && !args.force {
        anyhow::bail!(
            "{} exists; choose another `--id` or replace it with `--force`",
            target.display()
        );
    }
    let yaml = format!(
        "# Imported from {} by `funnel import`.\n{}",
        args.file.display(),
        to_yaml(&doc)
    );
    let previous = std::fs::read(&target).ok();
    std::fs::create_dir_all(target.parent().unwrap_or(&root))?;
    std::fs::write(&target, &yaml)?;
    // Check the whole workspace with the new file; undo the write if it broke.
    let ok = super::loaded::valid_workspace(Some(&root), color)?.is_some();
    if !ok {
        match previous {
            Some(bytes) => std::fs::write(&target, bytes)?,
            None => std::fs::remove_file(&target)?,
        }
        eprintln!("error: the imported workflow does not validate; nothing was written");
        return Ok(ExitCode::from(1));
    }
    println!("wrote {}", target.display());
    Ok(ExitCode::SUCCESS)
}
