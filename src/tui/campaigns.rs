//! The campaigns view: each campaign's state, its plan before sending and its
//! numbers per variant after; send, pause and resume, each confirmed first.
//! A draft's plan counts its audience, which on a large store takes a while:
//! the view reads in the background and keeps showing what it had meanwhile.

use std::sync::Arc;

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::app::Action;
use super::background::Pending;
use crate::desk::{CampaignRow, Change, Result, Source};

#[derive(Debug)]
pub struct Campaigns {
    pub rows: Vec<CampaignRow>,
    pub selected: usize,
    /// Whether the first read is in.
    pub loaded: bool,
    read: Pending<Vec<CampaignRow>>,
}

impl Default for Campaigns {
    fn default() -> Self {
        Campaigns {
            rows: Vec::new(),
            selected: 0,
            loaded: false,
            read: Pending::new("campaigns"),
        }
    }
}

impl Campaigns {
    /// Starts a read in the background (unless one is under way).
    pub fn load(&mut self, source: Arc<dyn Source>) {
        self.read.start(move || source.campaigns());
    }

    /// Takes the rows if they are ready.
    pub fn poll(&mut self) -> Result<()> {
        if let Some(r) = self.read.poll() {
            self.set(r?);
        }
        Ok(())
    }

    /// Blocks until a read under way is in (tests).
    pub fn wait(&mut self) -> Result<()> {
        if let Some(r) = self.read.wait() {
            self.set(r?);
        }
        Ok(())
    }

    fn set(&mut self, rows: Vec<CampaignRow>) {
        self.rows = rows;
        self.loaded = true;
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    pub fn current(&self) -> Option<&CampaignRow> {
        self.rows.get(self.selected)
    }

    pub fn key(&mut self, _source: &dyn Source, key: KeyEvent) -> Action {
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(self.rows.len().saturating_sub(1))
            }
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Char('s') | KeyCode::Char('p') | KeyCode::Char('r') => {
                let Some(c) = self.current() else {
                    return Action::Error("no campaign selected".into());
                };
                let key_ = c.key.clone();
                return match key.code {
                    KeyCode::Char('s') => {
                        let n = c.plan.as_ref().map_or(String::new(), |p| {
                            format!(" to {} recipient(s)", p.recipients)
                        });
                        Action::Confirm(
                            format!("send {}{n}?", c.key),
                            Change::CampaignSend { key: key_ },
                        )
                    }
                    KeyCode::Char('p') => Action::Confirm(
                        format!("pause {}?", c.key),
                        Change::CampaignPause { key: key_ },
                    ),
                    _ => Action::Confirm(
                        format!("resume {}?", c.key),
                        Change::CampaignResume { key: key_ },
                    ),
                };
            }
            _ => {}
        }
        Action::None
    }
}
