//! The dashboard view: totals and series over the last days, re-read while open.

use ratatui::crossterm::event::KeyEvent;

use super::app::Action;
use super::source::{self, Result, Source};

#[derive(Debug, Default)]
pub struct Dashboard {
    pub data: Option<source::Dashboard>,
}

impl Dashboard {
    pub fn load(&mut self, source: &dyn Source) -> Result<()> {
        self.data = Some(source.dashboard()?);
        Ok(())
    }

    pub fn key(&mut self, _source: &dyn Source, _key: KeyEvent) -> Action {
        Action::None
    }
}
