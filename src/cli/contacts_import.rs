//! `funnel contacts import FILE`: the CSV import with a progress bar, the reject
//! file and the report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;

use super::loaded::TableFormat;
use std::sync::Arc;

use crate::crm::import::{self, ImportError, Options, Reject};
use crate::engine::Engine;
use crate::engine::worker::Worker;
use crate::store::db::params;
use crate::store::{Store, StoreError, UnixMs};
use crate::workspace::Workspace;

#[allow(clippy::too_many_arguments)]
pub fn run(
    ws: &Workspace,
    store: &Store,
    engine: &Arc<Engine>,
    file: &Path,
    opts: Options,
    workflows: bool,
    rejects_path: Option<PathBuf>,
    format: TableFormat,
    now: UnixMs,
) -> anyhow::Result<ExitCode> {
    let fields: BTreeMap<_, _> = ws
        .fields
        .as_ref()
        .map(|d| d.value.fields.clone())
        .unwrap_or_default();
    let lists: BTreeSet<String> = ws
        .lists
        .as_ref()
        .map(|d| d.value.lists.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(l) = &opts.list
        && !lists.contains(l)
    {
        anyhow::bail!("`--list {l}`: no list `{l}` in contacts/lists.yaml");
    }
    let input =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    let contacts: i64 =
        store.read(|c| c.query_row("SELECT count(*) FROM contacts", params![], |r| r.get(0)))?;
    let mut opts = opts;
    opts.defer_indexes = import::worth_deferring(size, u64::try_from(contacts).unwrap_or(0));
    opts.bulk = import::worth_bulk(size);
    if workflows {
        opts.queue_events = engine.trigger_types();
    }
    let bar = progress_bar(size);
    let shown = file.display().to_string();
    let tick = bar.clone();
    let result = store
        .write_alone(move |c| {
            let mut progress = |rows: u64| tick.set_position(rows);
            import::import(c, input, &fields, &lists, &opts, now, &mut progress).map_err(
                |e| match e {
                    ImportError::Crm(crate::crm::CrmError::Store(s)) => s,
                    other => StoreError::Invalid(other.to_string()),
                },
            )
        })
        .wait();
    bar.finish_and_clear();
    let report = result.map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    // The import is committed; the events it queued start their workflows now (a
    // running worker would take them too; each slice is taken once).
    let started = if report.events_queued > 0 {
        run_off_events(store, engine, report.events_queued)?
    } else {
        0
    };
    let rejects_path = rejects_path.unwrap_or_else(|| {
        let mut p = file.as_os_str().to_owned();
        p.push(".rejects.csv");
        PathBuf::from(p)
    });
    if !report.rejects.is_empty() {
        write_rejects(&rejects_path, &report.rejects, report.delimiter as u8)
            .with_context(|| format!("cannot write {}", rejects_path.display()))?;
    }
    match format {
        TableFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "skipped": report.skipped,
                "workflows_started": started,
                "rejected": report.rejects.len(),
                "rejects": report.rejects,
                "rejects_file": (!report.rejects.is_empty()).then(|| rejects_path.display().to_string()),
                "delimiter": report.delimiter.to_string(),
                "columns": report.columns,
            }))?
        ),
        TableFormat::Table => {
            println!(
                "{shown}: {} rows: {} created, {} updated, {} unchanged, {} skipped, {} rejected",
                report.rows,
                report.created,
                report.updated,
                report.unchanged,
                report.skipped,
                report.rejects.len()
            );
            println!(
                "{started} workflow execution{} started",
                if started == 1 { "" } else { "s" }
            );
            let ignored: Vec<&str> = report
                .columns
                .iter()
                .filter(|(_, t)| *t == import::Target::Ignore)
                .map(|(h, _)| h.as_str())
                .collect();
            if !ignored.is_empty() {
                println!(
                    "columns not imported: {} (map them with --map COLUMN=TARGET)",
                    ignored.join(", ")
                );
            }
            for r in report.rejects.iter().take(20) {
                println!("  line {}: {}", r.line, r.reason);
            }
            if report.rejects.len() > 20 {
                println!("  … {} more", report.rejects.len() - 20);
            }
            if !report.rejects.is_empty() {
                println!("rejected rows: {}", rejects_path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The rejects as CSV: line, reason, and the row as it was, as one field (so
/// that any spreadsheet opens it with three columns).
fn write_rejects(path: &Path, rejects: &[Reject], delimiter: u8) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["line", "reason", "row"])?;
    for r in rejects {
        let mut row = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        row.write_record(&r.record)?;
        let row = String::from_utf8_lossy(&row.into_inner()?)
            .trim_end_matches('\n')
            .to_string();
        w.write_record([r.line.to_string(), r.reason.clone(), row])?;
    }
    w.flush()?;
    Ok(())
}

/// Ingests the CRM events an import queued, a slice per transaction, with a bar
/// for many; returns how many executions they started.
fn run_off_events(store: &Store, engine: &Arc<Engine>, queued: u64) -> anyhow::Result<usize> {
    let rt = super::loaded::runtime()?;
    let worker = Worker::new(store.clone(), engine.clone())?;
    let bar = if queued >= 10_000 {
        progress_bar(u64::MAX)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = rt.block_on(async {
        worker.prepare(worker.now()).await?;
        let mut started = 0usize;
        loop {
            let slice = worker
                .transact(worker.now(), crate::engine::backlog::ingest_slice)
                .await?;
            started += slice.started.len();
            bar.inc(slice.events as u64);
            if !slice.more {
                break;
            }
        }
        worker.settle().await;
        worker.deliver_outbox().await?;
        anyhow::Ok(started)
    })?;
    bar.finish_and_clear();
    Ok(started)
}

/// A bar of rows done on an interactive stderr (for work of at least `bytes`
/// bytes); hidden otherwise.
pub(super) fn progress_bar(bytes: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || bytes < 1024 * 1024 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} contacts ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
