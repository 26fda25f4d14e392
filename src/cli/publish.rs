//! `funnel publish [SITE…|--all] [--out DIR]`: builds sites to static folders
//! (`DIR/<site>/`), rewriting only the files that changed, after validating the
//! workspace and checking every internal link.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use serde_json::json;

use super::ColorChoice;
use crate::publish::{self, Options};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sites to publish (folder names under sites/).
    pub sites: Vec<String>,
    /// Publish every site of the workspace.
    #[arg(long, conflicts_with = "sites")]
    pub all: bool,
    /// The output folder; each site goes into `<out>/<site>/`.
    #[arg(long, default_value = "public")]
    pub out: PathBuf,
    /// The sites' own address for canonical links and the sitemap (default:
    /// `https://<domain>`, else `public_url`).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Where forms post and tracking reports go (default: funnel.yaml's `public_url`).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Print a JSON report.
    #[arg(long)]
    pub json: bool,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

/// How a build addresses the world: the flags, else funnel.yaml's `public_url`.
pub(super) fn options(
    ws: &crate::workspace::Workspace,
    public_url: Option<String>,
    base_url: Option<String>,
) -> Options {
    let public_url = public_url
        .or_else(|| ws.config.as_ref().map(|c| c.value.public_url.to_string()))
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    Options {
        public_url,
        base_url,
    }
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let sites: Vec<String> = if args.all {
        ws.sites.keys().cloned().collect()
    } else {
        args.sites.clone()
    };
    if sites.is_empty() {
        anyhow::bail!("name the sites to publish, or give --all");
    }
    for s in &sites {
        super::loaded::known_site(&ws, s)?;
    }
    let opts = options(&ws, args.public_url.clone(), args.base_url.clone());
    let bar = (sites.len() > 3).then(|| super::contacts_import::progress_bar(sites.len() as u64));
    let started = Instant::now();
    let mut report = Vec::new();
    let mut pages_total = 0;
    for site in &sites {
        let t = Instant::now();
        let build = publish::build(&ws, site, &opts)?;
        let dir = args.out.join(site);
        let written = publish::output::write(&build, &dir)?;
        pages_total += build.pages.len();
        report.push(json!({
            "site": site,
            "folder": dir.display().to_string(),
            "pages": build.pages.len(),
            "files": build.files.len(),
            "written": written.written,
            "unchanged": written.unchanged,
            "removed": written.removed,
            "ms": t.elapsed().as_secs_f64() * 1000.0,
        }));
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "sites": report,
                "pages": pages_total,
                "ms": total_ms,
            }))?
        );
    } else {
        for r in &report {
            println!(
                "{}: {} pages → {} ({} written, {} unchanged, {} removed)",
                r["site"].as_str().unwrap_or(""),
                r["pages"],
                r["folder"].as_str().unwrap_or(""),
                r["written"],
                r["unchanged"],
                r["removed"]
            );
        }
        println!(
            "published {} site(s), {pages_total} pages in {total_ms:.0} ms",
            report.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
