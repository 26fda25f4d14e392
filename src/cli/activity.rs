//! What the long-running commands (`worker`, `preview`) print as they go: the
//! secrets this environment lacks when they start, then a line for every
//! execution that ends and every step that fails.

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

/// Prints the worker's notes to stdout until the worker is dropped.
pub fn print_notes(worker: &Worker) -> tokio::task::JoinHandle<()> {
    let mut notes = worker.notes();
    tokio::spawn(async move {
        loop {
            match notes.recv().await {
                Ok(note) => {
                    if let Some(line) = note_line(&note) {
                        #[allow(clippy::print_stdout)]
                        {
                            println!("{line}");
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    #[allow(clippy::print_stdout)]
                    {
                        println!("… {n} more");
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}
