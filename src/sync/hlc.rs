//! Hybrid logical clocks: a stamp is (wall milliseconds, counter, node). It
//! follows the wall clock when the clock moves on, counts when it does not (or
//! steps back), and jumps past every stamp it has seen from the other side, so
//! a change made after seeing another always sorts after it, whatever the two
//! machines' clocks say. The node breaks ties, so any two stamps are ordered
//! and every store orders them alike.

use serde::{Deserialize, Serialize};

/// How far ahead of this machine's clock a received stamp may be.
pub const MAX_DRIFT_MS: i64 = 24 * 3_600_000;

/// One stamp; compared by wall time, then counter, then node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    pub wall: i64,
    pub counter: u32,
    pub node: String,
}

impl Stamp {
    /// `1796126400000.3.laptop-a`: sortable as text only within one width, so
    /// stored as three columns; this form is for people.
    pub fn shown(&self) -> String {
        format!("{}.{}.{}", self.wall, self.counter, self.node)
    }
}

/// A node's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    node: String,
    wall: i64,
    counter: u32,
}

impl Clock {
    pub fn new(node: impl Into<String>) -> Clock {
        Clock {
            node: node.into(),
            wall: i64::MIN,
            counter: 0,
        }
    }

    /// The stamp of a change made now (`physical`: the machine's clock, ms).
    pub fn tick(&mut self, physical: i64) -> Stamp {
        if physical > self.wall {
            self.wall = physical;
            self.counter = 0;
        } else {
            self.counter = self.counter.saturating_add(1);
        }
        self.stamp()
    }

    /// Takes in a stamp received from another node, so the next tick sorts
    /// after it. A stamp further ahead of this machine's clock than
    /// [`MAX_DRIFT_MS`] is not followed: one broken clock must not drag every
    /// store's stamps into the future.
    pub fn observe(&mut self, seen: &Stamp, physical: i64) {
        if seen.wall > physical.saturating_add(MAX_DRIFT_MS) {
            return;
        }
        let wall = self.wall.max(seen.wall).max(physical);
        self.counter = if wall == self.wall && wall == seen.wall {
            self.counter.max(seen.counter).saturating_add(1)
        } else if wall == self.wall {
            self.counter.saturating_add(1)
        } else if wall == seen.wall {
            seen.counter.saturating_add(1)
        } else {
            0
        };
        self.wall = wall;
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            wall: self.wall,
            counter: self.counter,
            node: self.node.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_that_stands_still_or_steps_back_still_moves_forward() {
        let mut c = Clock::new("a");
        let s1 = c.tick(1_000);
        let s2 = c.tick(1_000);
        let s3 = c.tick(900);
        let s4 = c.tick(2_000);
        assert!(s1 < s2 && s2 < s3 && s3 < s4, "{s1:?} {s2:?} {s3:?} {s4:?}");
        assert_eq!((s3.wall, s3.counter), (1_000, 2));
    }

    #[test]
    fn a_change_after_seeing_another_sorts_after_it_despite_a_slow_clock() {
        // The laptop's clock is an hour behind the server's.
        let mut server = Clock::new("server");
        let mut laptop = Clock::new("laptop");
        let theirs = server.tick(10_000_000);
        laptop.observe(&theirs, 10_000_000 - 3_600_000);
        let mine = laptop.tick(10_000_000 - 3_600_000 + 5);
        assert!(mine > theirs, "{mine:?} vs {theirs:?}");
    }

    #[test]
    fn equal_times_are_ordered_by_node() {
        let a = Clock::new("a").tick(5);
        let b = Clock::new("b").tick(5);
        assert!(a < b);
    }
}
