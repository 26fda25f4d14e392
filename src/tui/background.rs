//! One read off the drawing thread: started, then picked up when done (at a
//! tick) or waited for (tests). The views whose reads cost the store's size
//! (the dashboard, campaign plans, the duplicates queue) use it.

use std::sync::mpsc::{Receiver, TryRecvError, channel};

use crate::desk::{Result, SourceError};

#[derive(Debug)]
pub struct Pending<T> {
    rx: Option<Receiver<Result<T>>>,
    what: &'static str,
}

impl<T: Send + 'static> Pending<T> {
    /// Nothing under way; `what` names the read in errors.
    pub fn new(what: &'static str) -> Pending<T> {
        Pending { rx: None, what }
    }

    pub fn busy(&self) -> bool {
        self.rx.is_some()
    }

    /// Starts `read` on a thread of its own, unless a read is under way.
    pub fn start(&mut self, read: impl FnOnce() -> Result<T> + Send + 'static) {
        if self.rx.is_some() {
            return;
        }
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name(format!("funnel-tui-{}", self.what))
            .spawn(move || {
                let _ = tx.send(read());
            })
            .ok();
        self.rx = Some(rx);
    }

    /// The result, if the read is done.
    pub fn poll(&mut self) -> Option<Result<T>> {
        let rx = self.rx.as_ref()?;
        match rx.try_recv() {
            Ok(r) => {
                self.rx = None;
                Some(r)
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.rx = None;
                Some(Err(self.stopped()))
            }
        }
    }

    /// Blocks until the read under way is done; `None` when there is none.
    pub fn wait(&mut self) -> Option<Result<T>> {
        let rx = self.rx.take()?;
        Some(rx.recv().unwrap_or_else(|_| Err(self.stopped())))
    }

    fn stopped(&self) -> SourceError {
        SourceError::new(format!("the {} read stopped", self.what))
    }
}
