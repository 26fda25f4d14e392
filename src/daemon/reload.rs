//! Picks up changed workspace files while the daemon runs. A burst of changes
//! (200 ms of quiet ends it) triggers one validation of the whole workspace; only
//! a workspace without errors is built and swapped in ([`Daemon::reload`]). A
//! broken edit is logged with its diagnostics and the running version stays.

use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::Duration;

use super::{Daemon, DaemonError};
use crate::diagnostic::{self, Severity};

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The changed workspace runs now.
    Applied,
    /// The workspace has errors (rendered, without color); nothing changed.
    Refused(String),
}

/// Validates the workspace at `daemon.root` and swaps it in when it has no errors.
pub async fn reload_once(daemon: &Daemon) -> Result<Outcome, DaemonError> {
    let root = daemon.root.clone();
    let report = tokio::task::spawn_blocking(move || {
        crate::validate::validate_workspace(&root, Path::new("."))
    })
    .await
    .map_err(|e| DaemonError::Io(std::io::Error::other(e.to_string())))?
    .map_err(|e| DaemonError::Io(std::io::Error::other(e.to_string())))?;
    let errors: Vec<_> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .cloned()
        .collect();
    if !errors.is_empty() {
        let ws = &report.workspace;
        return Ok(Outcome::Refused(diagnostic::render_human(
            &errors,
            false,
            |p| ws.text_of(p),
        )));
    }
    daemon.reload(report.workspace).await?;
    Ok(Outcome::Applied)
}

/// Watches the workspace and reloads it after changes, on `runtime`, until the
/// returned watcher is dropped. Each outcome is logged and passed to `report`.
pub fn watch(
    daemon: Arc<Daemon>,
    runtime: tokio::runtime::Handle,
    report: impl Fn(&Outcome) + Send + 'static,
) -> Result<notify::RecommendedWatcher, DaemonError> {
    use notify::Watcher as _;
    // Events name absolute paths: compare with the absolute root.
    let root = daemon.root.canonicalize().unwrap_or(daemon.root.clone());
    // Only the workspace's own files count: a log or build output written beside
    // them must not trigger reloads.
    let watched: Vec<PathBuf> = ["workflows", "templates", "sites", "contacts"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    let config = root.join(crate::workspace::CONFIG_FILE);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        use notify::EventKind as K;
        // Reading files (as a validation does) raises access events: only changes count.
        if let Ok(event) = res
            && matches!(event.kind, K::Create(_) | K::Remove(_) | K::Modify(_))
            && !matches!(
                event.kind,
                K::Modify(notify::event::ModifyKind::Metadata(_))
            )
            && event
                .paths
                .iter()
                .any(|p| *p == config || watched.iter().any(|w| p.starts_with(w)))
        {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&root, notify::RecursiveMode::Recursive)?;
    std::thread::Builder::new()
        .name("funnel-reload".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                while rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
                let started = std::time::Instant::now();
                let outcome = match runtime.block_on(reload_once(&daemon)) {
                    Ok(o) => o,
                    Err(e) => Outcome::Refused(format!("error: {e}\n")),
                };
                match &outcome {
                    Outcome::Applied => tracing::info!(
                        ms = started.elapsed().as_millis() as u64,
                        "workspace reloaded"
                    ),
                    Outcome::Refused(text) => tracing::warn!(
                        "the changed workspace was not applied; the running version stays\n{text}"
                    ),
                }
                report(&outcome);
            }
        })?;
    Ok(watcher)
}
