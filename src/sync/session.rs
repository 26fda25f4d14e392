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
/// Up to [`Hub::side_by_side`] pages of this store go up at once; one of
/// them brings the hub's next page back. The position sent up advances only
/// once every page in flight is acknowledged, so a sync cut off among them
/// sends them again (the join makes that harmless).
pub fn run(
    local: &Store,
    name: &str,
    hub: &dyn Hub,
    page: usize,
    scoring: Option<Arc<Scoring>>,
    now: impl Fn() -> UnixMs,
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
    loop {
        let except = (!state.peer.is_empty()).then(|| state.peer.clone());
        let mut pushed = Cursor::parse(&state.pushed)?;
        let mut pages = Vec::with_capacity(side);
        while pages.len() < side {
            let mine = local
                .read(|db| store::feed(db, pushed, except.as_deref(), page).map_err(into_store))?;
            pushed = Cursor::parse(&mine.cursor)?;
            let more = mine.more;
            pages.push(mine);
            if !more {
                break;
            }
        }
        let requests: Vec<Request> = pages
            .iter_mut()
            .enumerate()
            .map(|(i, mine)| Request {
                node: node.clone(),
                changes: std::mem::take(&mut mine.changes),
                since: state.pulled.clone(),
                limit: Some(if i == 0 { page } else { 0 }),
                status: false,
            })
            .collect();
        let mut answers = exchange_all(hub, &requests)?;
        let resp = answers.swap_remove(0);
        if !state.peer.is_empty()
            && std::iter::once(&resp)
                .chain(&answers)
                .any(|r| r.node != state.peer)
        {
            // The remote is another store than last time (rebuilt or moved):
            // both positions are meaningless there; start over (the join
            // makes a full exchange safe).
            tracing::warn!(was = %state.peer, now = %resp.node, "the hub is another store; syncing from the start");
            state = PeerState {
                peer: resp.node.clone(),
                name: Some(name.to_string()),
                ..PeerState::default()
            };
            continue;
        }
        report.rounds += requests.len();
        report.sent += requests.iter().map(|r| r.changes.len()).sum::<usize>();
        report.sent_applied +=
            resp.applied.applied + answers.iter().map(|r| r.applied.applied).sum::<usize>();
        report.received += resp.changes.len();
        report.hub.clone_from(&resp.node);
        state.peer.clone_from(&resp.node);
        state.pushed = pages.last().map(|p| p.cursor.clone()).unwrap_or_default();
        state.pulled.clone_from(&resp.cursor);
        state.synced_at = Some(now());
        store::check(&resp.changes)?;
        let saved = state.clone();
        let changes = resp.changes;
        let at = now();
        let scoring = scoring.clone();
        let applied = local
            .write_alone(move |db| {
                let applied = store::apply(db, &saved.peer, &changes, at, scoring.as_deref())
                    .map_err(into_store)?;
                store::save_peer(db, &saved)?;
                Ok(applied)
            })
            .wait()?;
        report.received_applied += applied.applied;
        let mine_more = pages.last().is_some_and(|p| p.more);
        if !mine_more && !resp.more {
            return Ok(report);
        }
    }
}

/// Sends `requests` side by side; their answers in the same order, or the
/// first failure.
fn exchange_all(hub: &dyn Hub, requests: &[Request]) -> Result<Vec<Response>, SyncError> {
    if let [one] = requests {
        return Ok(vec![hub.exchange(one)?]);
    }
    std::thread::scope(|s| {
        let rounds: Vec<_> = requests
            .iter()
            .map(|r| s.spawn(move || hub.exchange(r)))
            .collect();
        rounds
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(SyncError::Hub("a round's thread panicked".into())))
            })
            .collect()
    })
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
