//! Counts computed off the drawing thread: a segment of a large store may take
//! a while to count, and the first screen must never wait for it. Jobs go to one
//! background thread in order; the app picks up what is finished at each tick.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::desk::{Result, Source};
use crate::model::contacts::Condition;

struct Job {
    key: String,
    filter: Option<Condition>,
}

/// The background counter.
pub struct Counter {
    jobs: Sender<Job>,
    done: Receiver<(String, Result<u64>)>,
    outstanding: usize,
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("outstanding", &self.outstanding)
            .finish()
    }
}

impl Counter {
    /// The thread stops when the counter is dropped.
    pub fn start(source: Arc<dyn Source>) -> Counter {
        let (jobs, queue) = channel::<Job>();
        let (report, done) = channel();
        std::thread::Builder::new()
            .name("funnel-tui-counts".into())
            .spawn(move || {
                for job in queue {
                    let n = source.count(job.filter.as_ref());
                    if report.send((job.key, n)).is_err() {
                        break;
                    }
                }
            })
            .ok();
        Counter {
            jobs,
            done,
            outstanding: 0,
        }
    }

    /// Asks for the count of `filter` under `key`.
    pub fn request(&mut self, key: String, filter: Option<Condition>) {
        if self.jobs.send(Job { key, filter }).is_ok() {
            self.outstanding += 1;
        }
    }

    /// Whether every count asked for is in.
    pub fn is_idle(&self) -> bool {
        self.outstanding == 0
    }

    /// The counts finished since the last call.
    pub fn finished(&mut self) -> Vec<(String, Result<u64>)> {
        let out: Vec<_> = self.done.try_iter().collect();
        self.outstanding = self.outstanding.saturating_sub(out.len());
        out
    }

    /// Blocks until every requested count is in, then returns them all.
    pub fn wait_idle(&mut self) -> Vec<(String, Result<u64>)> {
        let mut out = Vec::new();
        while self.outstanding > 0 {
            match self.done.recv() {
                Ok(r) => {
                    out.push(r);
                    self.outstanding -= 1;
                }
                Err(_) => break,
            }
        }
        out
    }
}
