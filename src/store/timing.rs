//! How long the store's work takes in this process: every read and every
//! write job (its statements, not the group commit's sync) adds its duration
//! here, and the daemon's per-minute rollup takes the sums (`funnel status`'s
//! database time). Two relaxed atomic adds per job.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counts and durations of store jobs since the last [`take`].
#[derive(Debug, Default)]
struct Clock {
    jobs: AtomicU64,
    micros: AtomicU64,
    max_micros: AtomicU64,
}

static CLOCK: Clock = Clock {
    jobs: AtomicU64::new(0),
    micros: AtomicU64::new(0),
    max_micros: AtomicU64::new(0),
};

/// Adds one job that took `took`.
pub fn add(took: Duration) {
    let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    CLOCK.jobs.fetch_add(1, Ordering::Relaxed);
    CLOCK.micros.fetch_add(us, Ordering::Relaxed);
    CLOCK.max_micros.fetch_max(us, Ordering::Relaxed);
}

/// The jobs, their total and their longest duration in microseconds since
/// the last call, and starts counting again.
pub fn take() -> (u64, u64, u64) {
    (
        CLOCK.jobs.swap(0, Ordering::Relaxed),
        CLOCK.micros.swap(0, Ordering::Relaxed),
        CLOCK.max_micros.swap(0, Ordering::Relaxed),
    )
}
