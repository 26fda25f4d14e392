//! The duplicates queue: likely duplicate pairs found in the background (the
//! search reads the whole store), reviewed one by one: merge either way, or
//! dismiss (stored: the pair is never offered again), each undoable.

use std::sync::Arc;

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::app::Action;
use super::background::Pending;
use crate::desk::{Change, DuplicatePair, Result, Source};

/// Pairs the queue shows at most, best first.
const LIMIT: usize = 500;

#[derive(Debug)]
pub struct Dupes {
    pub pairs: Vec<DuplicatePair>,
    pub selected: usize,
    pub loading: bool,
    read: Pending<Vec<DuplicatePair>>,
    /// What takes back each change made here, the last on top.
    pub undo: Vec<Change>,
    /// A reload was asked for while one was under way.
    pub again: bool,
}

impl Dupes {
    /// Starts looking for pairs in the background.
    pub fn start(source: Arc<dyn Source>) -> Dupes {
        let mut d = Dupes {
            pairs: Vec::new(),
            selected: 0,
            loading: false,
            read: Pending::new("duplicates"),
            undo: Vec::new(),
            again: false,
        };
        d.reload(source);
        d
    }

    pub fn reload(&mut self, source: Arc<dyn Source>) {
        if self.read.busy() {
            // The search under way may have read before the change: once it is
            // in, another one.
            self.again = true;
            return;
        }
        self.again = false;
        self.read.start(move || source.duplicates(LIMIT));
        self.loading = true;
    }

    /// Takes the pairs if they are ready.
    pub fn poll(&mut self) -> Result<()> {
        match self.read.poll() {
            Some(found) => self.finish(found),
            None => Ok(()),
        }
    }

    /// Blocks until the pairs are in (tests).
    pub fn wait(&mut self) -> Result<()> {
        match self.read.wait() {
            Some(found) => self.finish(found),
            None => Ok(()),
        }
    }

    fn finish(&mut self, found: Result<Vec<DuplicatePair>>) -> Result<()> {
        self.loading = false;
        self.pairs = found?;
        self.selected = self.selected.min(self.pairs.len().saturating_sub(1));
        Ok(())
    }

    pub fn current(&self) -> Option<&DuplicatePair> {
        self.pairs.get(self.selected)
    }

    pub fn key(&mut self, key: KeyEvent) -> Action {
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(self.pairs.len().saturating_sub(1))
            }
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Char('m') | KeyCode::Char('M') => {
                let Some(p) = self.current() else {
                    return Action::Error("no pair selected".into());
                };
                let (keep, other) = if key.code == KeyCode::Char('m') {
                    (&p.a, &p.b)
                } else {
                    (&p.b, &p.a)
                };
                return Action::Confirm(
                    format!("merge {} into {}?", other.email, keep.email),
                    Change::Merge {
                        keep: keep.id,
                        other: other.id,
                    },
                );
            }
            KeyCode::Char('x') => {
                let Some(p) = self.current() else {
                    return Action::Error("no pair selected".into());
                };
                return Action::Apply(Change::Dismiss {
                    a: p.a.id,
                    b: p.b.id,
                });
            }
            KeyCode::Char('u') => {
                return match self.undo.pop() {
                    Some(change) => Action::Apply(change),
                    None => Action::Error("nothing to undo".into()),
                };
            }
            _ => {}
        }
        Action::None
    }

    /// A change made: the queue drops what it settled and remembers its undo;
    /// an undo brings the pairs back.
    pub fn applied(&mut self, change: &Change, source: Arc<dyn Source>) {
        match change {
            Change::Merge { keep, other } => {
                self.undo.push(Change::Unmerge {
                    keep: *keep,
                    other: *other,
                });
                self.pairs.retain(|p| p.a.id != *other && p.b.id != *other);
            }
            Change::Dismiss { a, b } => {
                self.undo.push(Change::Undismiss { a: *a, b: *b });
                self.pairs.retain(|p| {
                    !(p.a.id.min(p.b.id) == *a.min(b) && p.a.id.max(p.b.id) == *a.max(b))
                });
            }
            Change::Unmerge { .. } | Change::Undismiss { .. } => self.reload(source),
            _ => {}
        }
        self.selected = self.selected.min(self.pairs.len().saturating_sub(1));
    }
}
