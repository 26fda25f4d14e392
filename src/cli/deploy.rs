//! `funnel deploy SITE --to git:BRANCH|dir:PATH` and `funnel deploy SITE --log`:
//! the site built as `funnel publish` builds it (links checked first), then
//! committed on a branch or swapped into a folder, and logged with who did it.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::ColorChoice;
use super::loaded::{print_table, shown_time};
use crate::deploy::{self, Target};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The site (its folder name under sites/).
    site: String,
    /// `git:BRANCH`: a commit of exactly the site's files on BRANCH (never the
    /// checked-out one). `dir:PATH`: a new release folder, then PATH switched
    /// to it in one rename (PATH is a link funnel manages).
    #[arg(long, value_name = "TARGET", required_unless_present = "log")]
    to: Option<String>,
    /// The site's deploys, newest first, instead of deploying.
    #[arg(long, conflicts_with = "to")]
    log: bool,
    /// The site's own address for canonical links and the sitemap.
    #[arg(long)]
    base_url: Option<String>,
    /// Where forms post and tracking reports go (default: funnel.yaml's `public_url`).
    #[arg(long)]
    public_url: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    workspace: Option<PathBuf>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    super::loaded::known_site(&ws, &args.site)?;
    let store = super::loaded::store(&ws)?;
    if args.log {
        let site = args.site.clone();
        let rows = store.read(move |db| deploy::log(db, &site, 100))?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "deploys": rows }))?
            );
            return Ok(ExitCode::SUCCESS);
        }
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    shown_time(r.deployed_at),
                    r.target.clone(),
                    r.revision.chars().take(24).collect(),
                    if r.changed { "new" } else { "same" }.to_string(),
                    r.files.to_string(),
                    r.actor.clone(),
                ]
            })
            .collect();
        if table.is_empty() {
            println!("{} has not been deployed yet", args.site);
        } else {
            print_table(&["when", "target", "revision", "", "files", "by"], &table);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let target = Target::parse(args.to.as_deref().unwrap_or_default())?;
    let actor = super::loaded::known_actor(&ws.root).unwrap_or_else(|| "unknown".into());
    let opts = super::publish::options(&ws, args.public_url.clone(), args.base_url.clone());
    // The publish's own build: a broken link stops here, before anything is written.
    let build = crate::publish::build(&ws, &args.site, &opts)?;
    let done = deploy::deploy(&ws.root, &build, &target, &actor)?;
    let logged = done.clone();
    let by = actor.clone();
    store
        .write(move |db| {
            let now = crate::store::now_ms();
            deploy::record(db, &logged, &by, now)?;
            crate::audit::record(
                db,
                &by,
                "deploy",
                "site",
                Some(&logged.site),
                &json!({"target": logged.target, "revision": logged.revision, "changed": logged.changed}),
                now,
            )
        })
        .wait()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    } else if done.changed {
        println!(
            "deployed {} to {}: {} files, {} bytes, now at {}",
            done.site, done.target, done.files, done.bytes, done.revision
        );
    } else {
        println!(
            "{} at {} has these files already ({}); nothing written",
            done.target, done.revision, done.site
        );
    }
    Ok(ExitCode::SUCCESS)
}
