//! The dashboard view: totals and series over the last days. Its queries read
//! windows of time by index, but a count of every contact still costs the
//! store's size: it loads off the drawing thread, and again every 15 seconds
//! while open.

use std::sync::Arc;

use ratatui::crossterm::event::KeyEvent;

use super::app::Action;
use super::background::Pending;
use crate::desk::{self as source, Result, Source};

#[derive(Debug)]
pub struct Dashboard {
    pub data: Option<source::Dashboard>,
    read: Pending<source::Dashboard>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            data: None,
            read: Pending::new("dashboard"),
        }
    }
}

impl Dashboard {
    /// Starts reading the numbers in the background (unless a read is under way).
    pub fn load(&mut self, source: Arc<dyn Source>) {
        self.read.start(move || source.dashboard());
    }

    /// Takes the numbers if they are ready.
    pub fn poll(&mut self) -> Result<()> {
        if let Some(r) = self.read.poll() {
            self.data = Some(r?);
        }
        Ok(())
    }

    /// Blocks until a read under way is in (tests).
    pub fn wait(&mut self) -> Result<()> {
        if let Some(r) = self.read.wait() {
            self.data = Some(r?);
        }
        Ok(())
    }

    pub fn key(&mut self, _source: &dyn Source, _key: KeyEvent) -> Action {
        Action::None
    }
}
