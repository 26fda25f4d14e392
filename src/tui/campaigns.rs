//! The campaigns view: each campaign's state, its plan before sending and its
//! numbers per variant after; send, pause and resume, each confirmed first.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::app::Action;
use super::source::{CampaignRow, Change, Result, Source};

#[derive(Debug, Default)]
pub struct Campaigns {
    pub rows: Vec<CampaignRow>,
    pub selected: usize,
}

impl Campaigns {
    pub fn load(&mut self, source: &dyn Source) -> Result<()> {
        self.rows = source.campaigns()?;
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        Ok(())
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
