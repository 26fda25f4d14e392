//! What the long-running commands (`worker`, `preview`) print as they go: the
//! secrets this environment lacks when they start, then a line for every
//! execution that ends and every step that fails.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use crate::engine::run::Note;
use crate::engine::worker::Worker;
use crate::workspace::Workspace;

/// Warns, one line per variable, about `${NAME}` references this environment
/// does not set (`funnel validate --env` lists every place).
pub fn warn_unset_secrets(ws: &Workspace) {
    let found = crate::validate::env::unset_secrets(ws, |n| std::env::var_os(n).is_some());
    let mut names: Vec<(String, String, usize)> = Vec::new();
    for d in &found {
        let name = d.message.split('`').nth(1).unwrap_or_default().to_string();
        let place = format!("{}:{}:{}", d.file.display(), d.line, d.column);
        match names.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, _, more)) => *more += 1,
            None => names.push((name, place, 0)),
        }
    }
    for (name, place, more) in names {
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "warning: `{name}` is not set ({place}{more}): steps that need it will fail at once"
            );
        }
    }
}

/// The line for one note.
pub fn note_line(note: &Note) -> Option<String> {
    let short = |uid: &str| uid.chars().take(13).collect::<String>();
    Some(match note {
        Note::Finished {
            execution,
            workflow,
            status,
            error,
        } => match (*status, error) {
            ("failed", Some(e)) => format!("{workflow} {} failed: {e}", short(execution)),
            (status, Some(e)) => format!("{workflow} {} {status}, but {e}", short(execution)),
            (status, None) => format!("{workflow} {} {status}", short(execution)),
        },
        Note::StepFailed {
            execution,
            workflow,
            step,
            message,
            retrying: true,
        } => format!(
            "{workflow} {} step `{step}` failed, will retry: {message}",
            short(execution)
        ),
        // A failure that is not retried shows in the execution's own line.
        Note::StepFailed { .. } => return None,
    })
}

/// Lines for stdout, written by a thread of their own. A terminal that stops
/// reading (paused, or a pipe nobody drains) blocks that thread and never the
/// daemon's; lines beyond [`QUEUED`] are counted and shown as "… N more"
/// rather than held; a closed stdout ends the printing, not the process (a
/// panic there once cost a daemon 40 MiB of resolved backtrace).
#[derive(Debug, Clone)]
pub struct Printer {
    tx: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

/// Lines waiting for stdout at most.
const QUEUED: usize = 1024;

impl Printer {
    pub fn start() -> Printer {
        let (tx, rx) = sync_channel::<String>(QUEUED);
        let dropped = Arc::new(AtomicU64::new(0));
        let missed = dropped.clone();
        let spawned = std::thread::Builder::new()
            .name("funnel-stdout".into())
            .spawn(move || {
                // Stdout writes each line apart; a burst goes out in one write.
                let mut out = std::io::BufWriter::new(std::io::stdout());
                while let Ok(first) = rx.recv() {
                    let written = std::iter::once(first)
                        .chain(std::iter::from_fn(|| rx.try_recv().ok()))
                        .try_for_each(|line| {
                            match missed.swap(0, Ordering::Relaxed) {
                                0 => {}
                                n => writeln!(out, "… {n} more")?,
                            }
                            writeln!(out, "{line}")
                        })
                        .and_then(|()| out.flush());
                    if written.is_err() {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            // The receiver is gone with the closure: lines are dropped.
            tracing::warn!("cannot start the thread that prints to stdout: {e}");
        }
        Printer { tx, dropped }
    }

    /// Queues a line; never waits.
    pub fn line(&self, line: String) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Prints the worker's notes through `printer` until the worker is dropped.
pub fn print_notes(worker: &Worker, printer: Printer) -> tokio::task::JoinHandle<()> {
    let mut notes = worker.notes();
    tokio::spawn(async move {
        loop {
            match notes.recv().await {
                Ok(note) => {
                    if let Some(line) = note_line(&note) {
                        printer.line(line);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    printer.line(format!("… {n} more"));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}
