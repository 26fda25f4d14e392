//! `funnel report --html OUT [--since]`: every analytics view of a period in
//! one self-contained HTML file.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::ColorChoice;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the report (an .html file; replaced whole).
    #[arg(long, value_name = "OUT")]
    pub html: PathBuf,
    /// Since: a date (2026-11-01) or an age (7d, 12h, 4w); default 30 days.
    #[arg(long, value_parser = super::analytics::parse_since)]
    pub since: Option<i64>,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let now = crate::store::now_ms();
    let since = args.since.unwrap_or(now - 30 * 86_400_000);
    if since >= now {
        anyhow::bail!("--since must be in the past");
    }
    if now - since > crate::report::MAX_DAYS * 86_400_000 {
        anyhow::bail!(
            "--since reaches back at most {} days: a report draws a bar per day",
            crate::report::MAX_DAYS
        );
    }
    let store = super::loaded::store(&ws)?;
    super::analytics::roll_up(&store, now);
    let ws = std::sync::Arc::new(ws);
    let shared = ws.clone();
    let gathered = store.read(move |db| crate::report::gather(db, &shared, since, now))?;
    let html = crate::report::render(&gathered)?;
    // Written beside the target and renamed over it: a reader never sees half a report.
    let out = &args.html;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    let name = out
        .file_name()
        .with_context(|| format!("{} names no file", out.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(html.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, out));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", out.display()));
    }
    println!(
        "wrote {} ({} KiB): {} to {}",
        out.display(),
        html.len().div_ceil(1024),
        super::loaded::shown_time(since),
        super::loaded::shown_time(now)
    );
    Ok(ExitCode::SUCCESS)
}
