//! The dashboard view: totals and series over the last days. Its queries read
//! windows of time by index, but a count of every contact still costs the
//! store's size: it loads off the drawing thread, and again every 15 seconds
//! while open.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use ratatui::crossterm::event::KeyEvent;

use super::app::Action;
use super::source::{self, Result, Source, SourceError};

#[derive(Debug, Default)]
pub struct Dashboard {
    pub data: Option<source::Dashboard>,
    rx: Option<Receiver<Result<source::Dashboard>>>,
}

impl Dashboard {
    /// Starts reading the numbers in the background (unless a read is under way).
    pub fn load(&mut self, source: Arc<dyn Source>) {
        if self.rx.is_some() {
            return;
        }
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("funnel-tui-dashboard".into())
            .spawn(move || {
                let _ = tx.send(source.dashboard());
            })
            .ok();
        self.rx = Some(rx);
    }

    /// Takes the numbers if they are ready.
    pub fn poll(&mut self) -> Result<()> {
        let Some(rx) = &self.rx else { return Ok(()) };
        match rx.try_recv() {
            Ok(r) => {
                self.rx = None;
                self.data = Some(r?);
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                self.rx = None;
                return Err(SourceError("the dashboard's read stopped".into()));
            }
        }
        Ok(())
    }

    /// Blocks until a read under way is in (tests).
    pub fn wait(&mut self) -> Result<()> {
        let Some(rx) = self.rx.take() else {
            return Ok(());
        };
        let r = rx
            .recv()
            .map_err(|_| SourceError("the dashboard's read stopped".into()))?;
        self.data = Some(r?);
        Ok(())
    }

    pub fn key(&mut self, _source: &dyn Source, _key: KeyEvent) -> Action {
        Action::None
    }
}
