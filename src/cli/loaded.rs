//! The workspace a command works on: found from `--workspace` or the current
//! folder, validated, with its errors shown in place of running on a broken one.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::ColorChoice;
use crate::diagnostic::{self, Severity};
use crate::engine::Engine;
use crate::store::db::Db;
use crate::workspace::Workspace;

/// A workflow named by its id or by its file (`workflows/welcome-drip.yaml`):
/// the id.
pub fn workflow_id(arg: &str) -> String {
    let path = Path::new(arg);
    let is_path = arg.ends_with(".yaml") || arg.ends_with(".yml") || arg.contains(['/', '\\']);
    match path.file_stem() {
        Some(stem) if is_path => stem.to_string_lossy().into_owned(),
        _ => arg.to_string(),
    }
}

/// Output of listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    Table,
    Json,
}

/// Output of reporting commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextFormat {
    Human,
    Json,
}

/// The workspace around `start` as loaded, valid or not (for listings of templates
/// and components); outside any workspace, the built-in templates alone.
pub fn workspace_or_builtin(
    start: Option<&Path>,
    _color: ColorChoice,
) -> anyhow::Result<Workspace> {
    let start = start.unwrap_or(Path::new("."));
    let root = match crate::workspace::find_root(start) {
        Ok(root) => root,
        Err(crate::workspace::LoadError::NotFound(_)) => {
            // No workspace: a folder without workspace files holds the built-ins only.
            let empty = std::env::temp_dir().join("funnel-no-workspace");
            std::fs::create_dir_all(&empty)?;
            return Ok(crate::workspace::load(&empty, Path::new("."))?);
        }
        Err(e) => return Err(e.into()),
    };
    Ok(crate::workspace::load(&root, &shown(&root))?)
}

/// A validated workspace, or `None` after its errors were printed.
pub fn valid_workspace(
    start: Option<&Path>,
    color: ColorChoice,
) -> anyhow::Result<Option<Workspace>> {
    let start = start.unwrap_or(Path::new("."));
    let root = crate::workspace::find_root(start)?;
    let report = crate::validate::validate_workspace(&root, &shown(&root))
        .with_context(|| format!("cannot load {}", root.display()))?;
    let errors: Vec<_> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .cloned()
        .collect();
    if errors.is_empty() {
        return Ok(Some(report.workspace));
    }
    let ws = &report.workspace;
    let text = diagnostic::render_human(&errors, color.enabled(&std::io::stderr()), |p| {
        ws.text_of(p)
    });
    eprint!("{text}");
    eprintln!(
        "error: the workspace has {} error(s); fix them first (`funnel validate` lists them)",
        errors.len()
    );
    Ok(None)
}

/// The engine of a validated workspace.
pub fn engine(ws: &Workspace) -> anyhow::Result<Engine> {
    Ok(Engine::from_workspace(ws)?)
}

fn shown(root: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    root.strip_prefix(&cwd)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| root.to_path_buf())
}

/// A JSON or YAML data file (trigger data, event data, a contact) as JSON. Problems
/// come back as one error naming the file, line and column.
pub fn read_data(path: &Path) -> anyhow::Result<serde_json::Value> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > crate::workspace::MAX_FILE_BYTES {
        anyhow::bail!(
            "{}: {} bytes is larger than the {} byte limit",
            path.display(),
            meta.len(),
            crate::workspace::MAX_FILE_BYTES
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text =
        crate::workspace::decode(bytes, path).map_err(|d| anyhow::anyhow!("{}", d.message))?;
    let mut diags = Vec::new();
    let node = crate::workspace::parse_text(&text, path, &mut diags);
    if let Some(d) = diags.first() {
        anyhow::bail!("{}:{}:{}: {}", path.display(), d.line, d.column, d.message);
    }
    Ok(node.map(|n| n.to_json()).unwrap_or(serde_json::Value::Null))
}

/// The workspace's store, on whichever backend funnel.yaml (or
/// `FUNNEL_STORE_URL`) names, migrated.
pub fn store(ws: &Workspace) -> anyhow::Result<crate::store::Store> {
    let location =
        crate::store::StoreLocation::from_config(&ws.root, ws.config.as_ref().map(|d| &d.value))?;
    crate::store::Store::open_blocking(&location)
        .with_context(|| format!("cannot open the store ({})", location.describe()))
}

/// A multi-threaded runtime for commands that run the engine.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Makes a CRM change as the engine does (see `Worker::crm_change`): the events
/// it causes start their workflows, which then run to their first wait, and the
/// outbox is delivered. Prints how many executions started, when any did.
pub fn crm_change<T, F>(
    store: &crate::store::Store,
    engine: std::sync::Arc<Engine>,
    f: F,
) -> anyhow::Result<T>
where
    F: FnOnce(
            Db<'_>,
            crate::store::UnixMs,
        ) -> Result<(T, Vec<crate::crm::CrmEvent>), crate::engine::EngineError>
        + Send
        + 'static,
    T: Send + 'static,
{
    let worker = crate::engine::worker::Worker::new(store.clone(), engine)?;
    let (value, ingested) = runtime()?.block_on(async move {
        worker.prepare(crate::store::now_ms()).await?;
        let done = worker.crm_change(f).await?;
        worker.settle().await;
        worker.deliver_outbox().await?;
        anyhow::Ok(done)
    })?;
    match ingested.started.len() {
        0 => {}
        1 => println!("1 workflow execution started"),
        n => println!("{n} workflow executions started"),
    }
    Ok(value)
}

/// An error naming the sites there are, unless the workspace has site `id`.
pub fn known_site(ws: &Workspace, id: &str) -> anyhow::Result<()> {
    if ws.sites.contains_key(id) {
        return Ok(());
    }
    let ids: Vec<&str> = ws.sites.keys().map(String::as_str).collect();
    anyhow::bail!(
        "no site `{id}`; {}",
        crate::diagnostic::suggest(id, &ids, "the sites are")
    )
}

/// Prints rows under headers, columns padded to their widest cell.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                let pad = widths[i].saturating_sub(c.chars().count());
                out.push_str(c);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// A Unix-ms time as RFC 3339 (UTC, seconds).
pub fn shown_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// The step records of an execution as a table; long outputs cut to `width`.
pub fn print_steps(steps: &[crate::engine::manage::StepRow], width: Option<usize>) {
    let cut = |text: String| match width {
        Some(w) if text.chars().count() > w => {
            let mut t: String = text.chars().take(w).collect();
            t.push('…');
            t
        }
        _ => text,
    };
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            vec![
                s.step.clone(),
                s.attempt.to_string(),
                s.status.clone(),
                shown_time(s.started_at),
                cut(s
                    .error
                    .clone()
                    .or_else(|| s.output.as_ref().map(|o| o.to_string()))
                    .unwrap_or_default()),
            ]
        })
        .collect();
    print_table(
        &["STEP", "ATTEMPT", "STATUS", "AT (UTC)", "OUTPUT / ERROR"],
        &rows,
    );
}

/// Who a change made from this command line is recorded as: `FUNNEL_ACTOR`, else
/// the repository's `git config user.email`, else `cli`.
pub fn actor(root: &Path) -> String {
    known_actor(root).unwrap_or_else(|| "cli".to_string())
}

/// `FUNNEL_ACTOR`, else the repository's `git config user.email`, if either is set.
pub fn known_actor(root: &Path) -> Option<String> {
    if let Ok(a) = std::env::var("FUNNEL_ACTOR")
        && !a.trim().is_empty()
    {
        return Some(a.trim().chars().take(200).collect());
    }
    std::process::Command::new("git")
        .args(["config", "user.email"])
        .current_dir(root)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|e| !e.is_empty())
}
