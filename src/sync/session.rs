//! One sync between a store and a hub (the team's daemon): rounds of one page
//! each way until neither side has more. The store's own changes go up from
//! where the hub last acknowledged; the hub's come down from where this store
//! last applied, and are applied in the same transaction that records the
//! new position. A sync cut off anywhere resumes from the last round that
//! finished, and a round sent twice changes nothing (the join is idempotent).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::store::{self, Applied, Change, Cursor, PeerState, SyncError};
use crate::crm::scoring::Scoring;
use crate::store::db::Db;
use crate::store::{Store, StoreError, UnixMs};

/// Changes a round sends each way unless told otherwise.
pub const DEFAULT_PAGE: usize = 2_000;

/// One round, from a store to the hub.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The asking store's node.
    pub node: String,
    /// Its changes (a page of its feed).
    #[serde(default)]
    pub changes: Vec<Change>,
    /// Where the hub's feed continues for this store (empty: the start).
    #[serde(default)]
    pub since: String,
    /// How many of the hub's changes to send back at most (0: none; this
    /// round only sends, another in flight pulls).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Only count what the hub has for this store; apply nothing.
    #[serde(default)]
    pub status: bool,
}

/// The hub's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The hub's node.
    pub node: String,
    pub applied: Applied,
    pub changes: Vec<Change>,
    pub cursor: String,
    pub more: bool,
    /// For a status request: the hub's changes this store has not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<i64>,
}

/// Something that answers rounds: the daemon over HTTP, or a store in this
/// process. Rounds may be sent from several threads at once.
pub trait Hub: Sync {
    fn exchange(&self, req: &Request) -> Result<Response, SyncError>;

    /// How many rounds it applies side by side (its writer connections): a
    /// sync sends that many pages at once.
    fn side_by_side(&self) -> usize {
        1
    }
}

/// Rounds in flight at most, whatever the hub says.
const MAX_SIDE_BY_SIDE: usize = 4;

/// Attempts at a round that failed on a conflict between the hub's writers
/// (two pages changing the same contacts in another order).
pub const ATTEMPTS: usize = 3;

/// The hub's side of a round: applies the store's page, then reads the next
/// page of its own feed for it (never the changes that came from it). Runs in
/// one write transaction.
pub fn serve(
    db: Db<'_>,
    req: &Request,
    now: UnixMs,
    scoring: Option<&Scoring>,
) -> Result<Response, SyncError> {
    let own = store::node(db)?;
    store::enable(db)?;
    if req.node == own {
        return Err(SyncError::BadChange {
            index: 0,
            why: "a store cannot sync with itself".into(),
        });
    }
    let since = Cursor::parse(&req.since)?;
    if req.status {
        return Ok(Response {
            node: own,
            pending: Some(store::pending(db, since, Some(&req.node))?),
            cursor: req.since.clone(),
            ..Response::default()
        });
    }
    let applied = store::apply(db, &req.node, &req.changes, now, scoring)?;
    if req.limit == Some(0) {
        // A round that only sends: another round in flight pulls.
        return Ok(Response {
            node: own,
            applied,
            cursor: req.since.clone(),
            ..Response::default()
        });
    }
    let page = match store::feed(
        db,
        since,
        Some(&req.node),
        req.limit.unwrap_or(DEFAULT_PAGE),
    ) {
        // The page sent is applied all the same; what this store has for
        // the asker waits for its next sync (`sync status` shows it).
        Err(SyncError::Busy) => store::Page {
            cursor: req.since.clone(),
            ..store::Page::default()
        },
        other => other?,
    };
    Ok(Response {
        node: own,
        applied,
        changes: page.changes,
        cursor: page.cursor,
        more: page.more,
        pending: None,
    })
}

/// What one sync moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub rounds: usize,
    /// Changes sent up, and how many of them changed the hub.
    pub sent: usize,
    pub sent_applied: usize,
    /// Changes received, and how many of them changed this store.
    pub received: usize,
    pub received_applied: usize,
    /// The hub's node.
    pub hub: String,
}

/// What is waiting each way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    pub hub: String,
    /// This store's changes the hub has not acknowledged.
    pub to_send: i64,
    /// The hub's changes not applied here.
    pub to_receive: i64,
    pub synced_at: Option<UnixMs>,
}

/// A sync error as the store error it carries (a conflict stays one, so it
/// is retried), or as an invalid page.
pub fn into_store(e: SyncError) -> StoreError {
    match e {
        SyncError::Store(e) => e,
        other => StoreError::Invalid(other.to_string()),
    }
}

/// Syncs `local` with the hub known as `name` until both sides are current.
/// Up to [`Hub::side_by_side`] pages of this store are in flight at once,
/// and a new one leaves as soon as one is answered, so the hub's writers never
/// wait for the slowest page of a group or for this store's own reads. At
/// most one round in flight also pulls the hub's next page. The position sent
/// up advances only over pages acknowledged in order, so a sync cut off among
/// them sends the unacknowledged ones again (the join makes that harmless).
pub fn run(
    local: &Store,
    name: &str,
    hub: &dyn Hub,
    page: usize,
    scoring: Option<Arc<Scoring>>,
    now: impl Fn() -> UnixMs,
) -> Result<Report, SyncError> {
    run_reporting(local, name, hub, page, scoring, now, &|_| {})
}

/// [`run`], telling `on_round` what has moved so far after each answered
/// round (for a progress display; called on the calling thread).
pub fn run_reporting(
    local: &Store,
    name: &str,
    hub: &dyn Hub,
    page: usize,
    scoring: Option<Arc<Scoring>>,
    now: impl Fn() -> UnixMs,
    on_round: &dyn Fn(&Report),
) -> Result<Report, SyncError> {
    let node = local.read(store::node)?;
    local.write_alone(store::enable).wait()?;
    let mut state = local
        .read(|db| store::peer_by_name(db, name))?
        .unwrap_or_else(|| PeerState {
            name: Some(name.to_string()),
            ..PeerState::default()
        });
    let side = hub.side_by_side().clamp(1, MAX_SIDE_BY_SIDE);
    let mut report = Report::default();
    let mut rounds = Rounds {
        local,
        hub,
        node: &node,
        side,
        page,
        scoring: &scoring,
        now: &now,
        on_round,
    };
    loop {
        match rounds.pump(&mut state, &mut report)? {
            None => return Ok(report),
            Some(other) => {
                // The remote is another store than last time (rebuilt or
                // moved): both positions are meaningless there; start over
                // (the join makes a full exchange safe).
                tracing::warn!(was = %state.peer, now = %other, "the hub is another store; syncing from the start");
                state = PeerState {
                    peer: other,
                    name: Some(name.to_string()),
                    ..PeerState::default()
                };
            }
        }
    }
}

/// What one sync's rounds share.
struct Rounds<'a, N> {
    local: &'a Store,
    hub: &'a dyn Hub,
    node: &'a str,
    side: usize,
    page: usize,
    scoring: &'a Option<Arc<Scoring>>,
    now: &'a N,
    on_round: &'a dyn Fn(&Report),
}

/// A round's answer as it comes back: its place among the pages sent,
/// whether it pulled, and how many changes it carried up.
type Answer = (usize, bool, usize, Result<Response, SyncError>);

impl<N: Fn() -> UnixMs> Rounds<'_, N> {
    /// Sends rounds until both sides are current (`None`), or until a round
    /// is answered by another store than `state.peer` (`Some` of its node).
    fn pump(
        &mut self,
        state: &mut PeerState,
        report: &mut Report,
    ) -> Result<Option<String>, SyncError> {
        let (tx, rx) = std::sync::mpsc::channel::<Answer>();
        std::thread::scope(|s| {
            let mut pushed = Cursor::parse(&state.pushed)?;
            let (mut mine_more, mut hub_more, mut pulling) = (true, true, false);
            let mut in_flight = 0;
            // Pages read from the feed and not yet acknowledged in order:
            // their place, the feed's position after them, whether answered.
            let mut unacked: std::collections::VecDeque<(usize, String, bool)> =
                std::collections::VecDeque::new();
            let mut next = 0;
            let mut unsaved = false;
            loop {
                while in_flight < self.side {
                    let pull = hub_more && !pulling;
                    if !mine_more && !pull {
                        break;
                    }
                    let mine = if mine_more {
                        let except = (!state.peer.is_empty()).then(|| state.peer.clone());
                        self.local.read(|db| {
                            store::feed(db, pushed, except.as_deref(), self.page)
                                .map_err(into_store)
                        })?
                    } else {
                        // A round that only pulls: the position stays.
                        store::Page {
                            cursor: pushed.shown(),
                            ..store::Page::default()
                        }
                    };
                    if mine_more {
                        pushed = Cursor::parse(&mine.cursor)?;
                        mine_more = mine.more;
                    }
                    let place = next;
                    next += 1;
                    if mine.changes.is_empty() && !pull {
                        // Nothing to send (every row came from the hub):
                        // acknowledged as read.
                        unacked.push_back((place, mine.cursor, true));
                        unsaved = true;
                        continue;
                    }
                    unacked.push_back((place, mine.cursor, false));
                    let req = Request {
                        node: self.node.to_string(),
                        since: state.pulled.clone(),
                        limit: Some(if pull { self.page } else { 0 }),
                        status: false,
                        changes: mine.changes,
                    };
                    let (tx, hub) = (tx.clone(), self.hub);
                    s.spawn(move || {
                        let answer = hub.exchange(&req);
                        // The receiver outlives the scope: a send cannot fail.
                        let _ = tx.send((place, pull, req.changes.len(), answer));
                    });
                    in_flight += 1;
                    pulling |= pull;
                }
                if in_flight == 0 {
                    // Pages read but never sent (all from the hub) still
                    // move the position.
                    if advance(&mut unacked, state) || unsaved {
                        self.save(state, Vec::new())?;
                    }
                    return Ok(None);
                }
                let Ok((place, pulled, sent, answer)) = rx.recv() else {
                    return Err(SyncError::Hub(
                        "a round's thread ended without an answer".into(),
                    ));
                };
                in_flight -= 1;
                // A failure returns at once; the rounds still in flight end
                // with the scope, and what they did is sent again next time.
                let resp = answer?;
                if !state.peer.is_empty() && resp.node != state.peer {
                    return Ok(Some(resp.node));
                }
                state.peer.clone_from(&resp.node);
                report.hub.clone_from(&resp.node);
                report.rounds += 1;
                report.sent += sent;
                report.sent_applied += resp.applied.applied;
                if let Some(entry) = unacked.iter_mut().find(|(p, _, _)| *p == place) {
                    entry.2 = true;
                }
                advance(&mut unacked, state);
                let mut changes = Vec::new();
                if pulled {
                    pulling = false;
                    hub_more = resp.more;
                    store::check(&resp.changes)?;
                    report.received += resp.changes.len();
                    state.pulled.clone_from(&resp.cursor);
                    changes = resp.changes;
                }
                report.received_applied += self.save(state, changes)?;
                unsaved = false;
                (self.on_round)(report);
            }
        })
    }

    /// Applies the hub's `changes` here and records `state`, in one
    /// transaction; returns how many changed this store.
    fn save(&self, state: &mut PeerState, changes: Vec<Change>) -> Result<usize, SyncError> {
        state.synced_at = Some((self.now)());
        let saved = state.clone();
        let at = (self.now)();
        let scoring = self.scoring.clone();
        let applied = self
            .local
            .write_alone(move |db| {
                let applied = if changes.is_empty() {
                    Applied::default()
                } else {
                    store::apply(db, &saved.peer, &changes, at, scoring.as_deref())
                        .map_err(into_store)?
                };
                store::save_peer(db, &saved)?;
                Ok(applied)
            })
            .wait()?;
        Ok(applied.applied)
    }
}

/// Moves `state.pushed` over the pages at the front of `unacked` that are
/// acknowledged; whether it moved.
fn advance(
    unacked: &mut std::collections::VecDeque<(usize, String, bool)>,
    state: &mut PeerState,
) -> bool {
    let mut moved = false;
    while let Some((_, cursor, true)) = unacked.front() {
        state.pushed.clone_from(cursor);
        unacked.pop_front();
        moved = true;
    }
    moved
}

/// What waits each way between `local` and the hub known as `name`.
pub fn status(local: &Store, name: &str, hub: &dyn Hub) -> Result<Status, SyncError> {
    let node = local.read(store::node)?;
    local.write_alone(store::enable).wait()?;
    let state = local.read(|db| store::peer_by_name(db, name))?;
    let state = state.unwrap_or_default();
    let ask = |since: &str, hub: &dyn Hub| {
        hub.exchange(&Request {
            node: node.clone(),
            since: since.to_string(),
            status: true,
            ..Request::default()
        })
    };
    let mut resp = ask(&state.pulled, hub)?;
    // A hub that is another store than last time has everything to send and
    // to receive.
    let same = state.peer == resp.node;
    if !same && !state.pulled.is_empty() {
        resp = ask("", hub)?;
    }
    let pushed = if same {
        Cursor::parse(&state.pushed)?
    } else {
        Cursor::default()
    };
    let except = same.then_some(state.peer.as_str());
    let to_send = local.read(|db| store::pending(db, pushed, except).map_err(into_store))?;
    Ok(Status {
        hub: resp.node,
        to_send,
        to_receive: resp.pending.unwrap_or_default(),
        synced_at: state.synced_at,
    })
}

/// A store in this process as the hub (tests, benchmarks, and a second
/// store on the same machine).
#[derive(Debug)]
pub struct LocalHub<'a> {
    pub store: &'a Store,
    pub scoring: Option<Arc<Scoring>>,
}

impl Hub for LocalHub<'_> {
    fn exchange(&self, req: &Request) -> Result<Response, SyncError> {
        store::check(&req.changes)?;
        let mut attempt = 1;
        loop {
            let req = req.clone();
            let scoring = self.scoring.clone();
            let answer = self
                .store
                .write_alone(move |db| {
                    serve(db, &req, crate::store::now_ms(), scoring.as_deref()).map_err(into_store)
                })
                .wait();
            match answer {
                Err(e) if e.is_transient() && attempt < ATTEMPTS => attempt += 1,
                other => return Ok(other?),
            }
        }
    }

    fn side_by_side(&self) -> usize {
        self.store.writers()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::model::config::Synchronous;
    use crate::store::SqliteStore;
    use crate::store::db::params;

    fn store(dir: &std::path::Path, name: &str) -> Store {
        SqliteStore::open(&dir.join(name), Synchronous::Normal)
            .expect("store")
            .into()
    }

    /// `n` contacts `{prefix}{i}@example.org`, stamped for sync.
    fn contacts(s: &Store, prefix: &str, n: usize) {
        s.write_alone(store::enable).wait().expect("sync on");
        let prefix = prefix.to_string();
        s.write_alone(move |db| {
            for i in 0..n {
                db.execute(
                    "INSERT INTO contacts (uid, email, name, status, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, 'active', 1, 1)",
                    params![
                        format!("{prefix}{i}"),
                        format!("{prefix}{i}@example.org"),
                        format!("Person {i}")
                    ],
                )?;
            }
            Ok(())
        })
        .wait()
        .expect("contacts");
    }

    fn emails(s: &Store) -> Vec<(String, Option<String>)> {
        s.read(|db| {
            let mut stmt = db.prepare("SELECT email, name FROM contacts ORDER BY email")?;
            let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .expect("emails")
    }

    /// A hub in this process whose rounds answer out of order (every other
    /// one waits), three at once, and that fails the round `fail_at` (after its wait).
    struct Shuffled<'a> {
        inner: LocalHub<'a>,
        calls: AtomicUsize,
        fail_at: usize,
    }

    impl Hub for Shuffled<'_> {
        fn exchange(&self, req: &Request) -> Result<Response, SyncError> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if call.is_multiple_of(2) {
                std::thread::sleep(std::time::Duration::from_millis(60));
            }
            if call == self.fail_at {
                return Err(SyncError::Hub("the line dropped".into()));
            }
            self.inner.exchange(req)
        }

        fn side_by_side(&self) -> usize {
            3
        }
    }

    #[test]
    fn rounds_answered_out_of_order_or_cut_off_leave_both_stores_equal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let laptop = store(dir.path(), "laptop.db");
        let hub_store = store(dir.path(), "hub.db");
        contacts(&laptop, "l", 300);
        contacts(&hub_store, "h", 120);
        let hub = |fail_at| Shuffled {
            inner: LocalHub {
                store: &hub_store,
                scoring: None,
            },
            calls: AtomicUsize::new(0),
            fail_at,
        };
        let now = crate::store::now_ms;
        // Rounds 0 and 2 wait, round 1 is answered first, then round 2
        // fails: the position must not pass its page.
        let cut = run(&laptop, "hub", &hub(2), 16, None, now).expect_err("cut off");
        assert!(cut.to_string().contains("the line dropped"), "{cut}");
        laptop
            .read(|db| store::peer_by_name(db, "hub"))
            .expect("state")
            .expect("saved after the first answer");
        let told = std::cell::RefCell::new(Vec::new());
        let report = run_reporting(&laptop, "hub", &hub(usize::MAX), 16, None, now, &|r| {
            told.borrow_mut().push(r.sent + r.received);
        })
        .expect("sync");
        assert!(report.rounds > 3, "{report:?}");
        // Told after every round, with what had moved so far.
        let told = told.into_inner();
        assert_eq!(told.len(), report.rounds);
        assert!(told.windows(2).all(|w| w[0] <= w[1]), "{told:?}");
        assert_eq!(told.last(), Some(&(report.sent + report.received)));
        assert_eq!(emails(&laptop).len(), 420);
        assert_eq!(emails(&laptop), emails(&hub_store));
        // Both positions are at the end: nothing waits either way.
        let left = status(&laptop, "hub", &hub(usize::MAX)).expect("status");
        assert_eq!((left.to_send, left.to_receive), (0, 0), "{left:?}");
        let again = run(&laptop, "hub", &hub(usize::MAX), 16, None, now).expect("again");
        assert_eq!((again.sent, again.received), (0, 0), "{again:?}");
    }

    #[test]
    fn the_position_moves_only_over_pages_answered_in_order() {
        let mut state = PeerState::default();
        let mut unacked: std::collections::VecDeque<(usize, String, bool)> =
            [(0, "1.1", false), (1, "2.2", true), (2, "3.3", false)]
                .into_iter()
                .map(|(p, c, a)| (p, c.to_string(), a))
                .collect();
        assert!(!advance(&mut unacked, &mut state));
        assert_eq!(state.pushed, "");
        unacked[0].2 = true;
        assert!(advance(&mut unacked, &mut state));
        assert_eq!(state.pushed, "2.2");
        assert_eq!(unacked.len(), 1);
    }
}
