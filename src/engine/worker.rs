//! The worker: runs due timers, sends remote calls, delivers the dev outbox, fires
//! cron occurrences and prunes old executions, on either store. The daemon
//! embeds it; `funnel worker` runs it alone.
//!
//! Each batch of due timers is taken and handled in one write transaction (group
//! committed with everything else), so a timer is consumed exactly when its effects
//! commit. Remote calls go out after their step's record committed, many at once,
//! and their results come back as writes of their own. The loop sleeps until the
//! next due timer or until woken by new work: in this process, or announced by
//! another on PostgreSQL (LISTEN/NOTIFY, see `store::wakeups`); a one-second
//! poll picks up what other processes stored on SQLite.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::store::db::Db;
use tokio::sync::{Notify, Semaphore};

use super::ingest::{Event, Ingested, ingest};
use super::run::{Ctx, Effects, RemoteCall, Wake, advance};
use super::{Engine, EngineError};

pub mod campaigns;
mod email;
mod hooks;
mod preferences;
mod reports;
use crate::store::db::params;
use crate::store::{Store, StoreError, UnixMs, now_ms};
pub use preferences::{ListChoice, Preferences, Saved};
pub use reports::ReportTally;

/// Most due timers one transaction takes.
const BATCH: usize = 256;

/// Most remote calls in flight at once.
const MAX_IN_FLIGHT: usize = 256;

/// How often an idle worker looks for work stored by other processes.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// How often finished executions past the retention are pruned.
const PRUNE_EVERY_MS: i64 = 10 * 60 * 1000;
/// How often the contact search index catches up: a contact that several steps
/// change within this time is indexed once, not once per change.
const REINDEX_EVERY_MS: i64 = 1_000;
/// Contacts indexed per write: each is one background job on the writer, and a
/// request may wait behind one job, so a job stays a few milliseconds long
/// (about 30 µs a contact).
const REINDEX_BATCH: usize = 50;

/// Contacts per transaction of the score sweep: the writer is never held for
/// long, whatever the number of contacts.
const SWEEP_PAGE: usize = 500;

/// What one tick did.
/// Which of the writer's lanes a transaction waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Request,
    Background,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Timers handled.
    pub fired: usize,
    /// The earliest timer still stored.
    pub next_due: Option<UnixMs>,
}

/// A worker over one store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    /// Swapped whole when the workspace changes ([`Worker::replace_engine`]): a
    /// transaction runs on the engine it started with.
    engine: std::sync::RwLock<Arc<Engine>>,
    client: reqwest::Client,
    egress: super::egress::Egress,
    secrets: super::remote::Secrets,
    wake: Notify,
    calls: Semaphore,
    in_flight: AtomicUsize,
    idle: Notify,
    notes: tokio::sync::broadcast::Sender<super::run::Note>,
    /// A time set by [`Worker::set_time`], or `i64::MIN` for the system clock.
    manual_time: AtomicI64,
    /// The SMTP relay, built on first use and again when its settings change.
    relay: std::sync::Mutex<Option<(String, crate::email::relays::Relays)>>,
    /// When the next email may go, under funnel.yaml's `email.rate_limit`.
    send_pace: tokio::sync::Mutex<tokio::time::Instant>,
}

fn to_store(e: EngineError) -> StoreError {
    match e {
        EngineError::Store(s) => s,
        other => StoreError::Invalid(other.to_string()),
    }
}

fn from_store(e: StoreError) -> EngineError {
    match e {
        StoreError::Invalid(m) => EngineError::Invalid(m),
        other => EngineError::Store(other),
    }
}

impl Worker {
    pub fn new(store: Store, engine: Arc<Engine>) -> Result<Worker, EngineError> {
        Worker::with_secrets(store, engine, super::remote::Secrets::default())
    }

    /// A worker whose `${NAME}` references resolve from `secrets` first.
    pub fn with_secrets(
        store: Store,
        engine: Arc<Engine>,
        secrets: super::remote::Secrets,
    ) -> Result<Worker, EngineError> {
        let egress = super::egress::Egress::new(&engine.settings.network_allow)
            .map_err(|e| EngineError::Invalid(format!("funnel.yaml network.allow: {e}")))?;
        let client = egress
            .client(Duration::from_secs(10))
            .map_err(|e| EngineError::Invalid(format!("HTTP client: {e}")))?;
        Ok(Worker {
            inner: Arc::new(Inner {
                store,
                engine: std::sync::RwLock::new(engine),
                client,
                egress,
                secrets,
                wake: Notify::new(),
                calls: Semaphore::new(MAX_IN_FLIGHT),
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
                notes: tokio::sync::broadcast::channel(1024).0,
                manual_time: AtomicI64::new(i64::MIN),
                relay: std::sync::Mutex::new(None),
                send_pace: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            }),
        })
    }

    /// Freezes this worker's clock at `at` (Unix ms) until set again: tests and
    /// replays step through time without waiting.
    pub fn set_time(&self, at: UnixMs) {
        self.inner.manual_time.store(at, Ordering::SeqCst);
    }

    /// The worker's current time.
    pub fn now(&self) -> UnixMs {
        match self.inner.manual_time.load(Ordering::SeqCst) {
            i64::MIN => now_ms(),
            t => t,
        }
    }

    /// The engine new transactions run on.
    /// The value of a `${NAME}` reference from funnel.yaml.
    pub fn secret(&self, name: &str) -> Option<String> {
        self.inner.secrets.get(name)
    }

    pub fn engine(&self) -> Arc<Engine> {
        match self.inner.engine.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes `engine` (a changed workspace's, validated) the one new transactions
    /// run on, and registers its workflows as the store's active set. Executions in
    /// flight keep their versions (each names its own); the HTTP client and its
    /// egress policy stay those the worker started with.
    pub async fn replace_engine(&self, engine: Arc<Engine>) -> Result<(), EngineError> {
        match self.inner.engine.write() {
            Ok(mut e) => *e = engine,
            Err(poisoned) => *poisoned.into_inner() = engine,
        }
        self.prepare(self.now()).await?;
        // New schedules may be due: look at the timers now.
        self.inner.wake.notify_one();
        Ok(())
    }

    /// The egress policy its remote calls and webhook deliveries follow.
    pub fn egress(&self) -> &super::egress::Egress {
        &self.inner.egress
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Runs `f` as one engine transaction on the writer, then sends what it asked for.
    pub async fn transact<T, F>(&self, now: UnixMs, f: F) -> Result<T, EngineError>
    where
        F: FnOnce(&mut Ctx<'_>) -> Result<T, EngineError> + Send + 'static,
        T: Send + 'static,
    {
        self.transact_in(Lane::Request, now, f).await
    }

    /// [`Worker::transact`] for work no client waits on (timers, remote results,
    /// sweeps): it yields to requests' writes (see [`crate::store::writer`]).
    pub async fn transact_background<T, F>(&self, now: UnixMs, f: F) -> Result<T, EngineError>
    where
        F: FnOnce(&mut Ctx<'_>) -> Result<T, EngineError> + Send + 'static,
        T: Send + 'static,
    {
        self.transact_in(Lane::Background, now, f).await
    }

    async fn transact_in<T, F>(&self, lane: Lane, now: UnixMs, f: F) -> Result<T, EngineError>
    where
        F: FnOnce(&mut Ctx<'_>) -> Result<T, EngineError> + Send + 'static,
        T: Send + 'static,
    {
        let engine = self.engine();
        let job = move |conn: Db<'_>| {
            let mut fx = Effects::default();
            let mut ctx = Ctx {
                conn,
                engine: &engine,
                now,
                fx: &mut fx,
                depth: 0,
            };
            let value = f(&mut ctx).map_err(to_store)?;
            // Other workers on the store take work due now at once, not at
            // their next poll.
            if fx.emails > 0 || fx.next_due.is_some_and(|d| d <= now + 1_000) {
                crate::store::wakeups::announce_work(conn)?;
            }
            Ok((value, fx))
        };
        let store = &self.inner.store;
        let ticket = match lane {
            Lane::Request => store.write(job),
            Lane::Background => store.write_background(job),
        };
        let (value, fx) = ticket.await.map_err(from_store)?;
        self.dispatch(fx);
        Ok(value)
    }

    /// [`Worker::transact`], run again (at most three times in all) when the store
    /// failed it for a write conflict with another writer connection (see
    /// [`crate::store::is_conflict`]): the failed attempt left nothing behind, its
    /// savepoint rolled back.
    pub async fn transact_retrying<T, F>(&self, now: UnixMs, f: F) -> Result<T, EngineError>
    where
        F: Fn(&mut Ctx<'_>) -> Result<T, EngineError> + Send + Sync + 'static,
        T: Send + 'static,
    {
        self.retrying_in(Lane::Request, now, f).await
    }

    /// [`Worker::transact_retrying`] in the background lane.
    pub async fn background_retrying<T, F>(&self, now: UnixMs, f: F) -> Result<T, EngineError>
    where
        F: Fn(&mut Ctx<'_>) -> Result<T, EngineError> + Send + Sync + 'static,
        T: Send + 'static,
    {
        self.retrying_in(Lane::Background, now, f).await
    }

    async fn retrying_in<T, F>(&self, lane: Lane, now: UnixMs, f: F) -> Result<T, EngineError>
    where
        F: Fn(&mut Ctx<'_>) -> Result<T, EngineError> + Send + Sync + 'static,
        T: Send + 'static,
    {
        let f = Arc::new(f);
        let mut attempt = 1;
        loop {
            let g = f.clone();
            match self.transact_in(lane, now, move |ctx| g(ctx)).await {
                Err(e) if attempt < 3 && crate::store::is_conflict(&e.to_string()) => {
                    tracing::debug!(attempt, error = %e, "write conflict; trying again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Records the workflows and their versions, and plans cron occurrences.
    pub async fn prepare(&self, now: UnixMs) -> Result<(), EngineError> {
        self.transact(now, |ctx| {
            ctx.engine.register(ctx.conn, ctx.now)?;
            super::schedule::ensure(ctx)?;
            // Engagement is recomputed when scoring.yaml's rules changed.
            ctx.engine.scoring.refresh(ctx.conn, ctx.now, false)?;
            Ok(())
        })
        .await
    }

    /// Ingests an event (see [`super::ingest`]).
    pub async fn ingest(&self, event: Event) -> Result<Ingested, EngineError> {
        self.ingest_at(event, self.now()).await
    }

    pub async fn ingest_at(&self, event: Event, now: UnixMs) -> Result<Ingested, EngineError> {
        self.transact(now, move |ctx| ingest(ctx, event)).await
    }

    /// Applies a CRM change made outside a workflow (the command line, the API, the
    /// TUI) in one transaction, and feeds the CRM events it returns through
    /// [`ingest`]: a contact added by hand starts the `contact_created` workflows
    /// as one created by a form does. Returns the change's value and what the
    /// events started or resumed.
    pub async fn crm_change<T, F>(&self, f: F) -> Result<(T, Ingested), EngineError>
    where
        F: FnOnce(Db<'_>, UnixMs) -> Result<(T, Vec<crate::crm::CrmEvent>), EngineError>
            + Send
            + 'static,
        T: Send + 'static,
    {
        self.transact(self.now(), move |ctx| {
            let (value, events) = f(ctx.conn, ctx.now)?;
            let mut total = Ingested::default();
            for e in &events {
                let done = ingest(ctx, super::ingest::from_crm(e))?;
                total.started.extend(done.started);
                total.resumed.extend(done.resumed);
                total.filtered.extend(done.filtered);
            }
            Ok((value, total))
        })
        .await
    }

    /// Starts one workflow with `data` as its trigger, whatever the trigger's type
    /// (its conditions and declared payload still apply): `funnel run`.
    pub async fn start_workflow(
        &self,
        id: &str,
        data: serde_json::Value,
    ) -> Result<super::ingest::Started, EngineError> {
        let program = self
            .engine()
            .workflow(id)
            .cloned()
            .ok_or_else(|| EngineError::UnknownWorkflow(id.to_string()))?;
        self.transact(self.now(), move |ctx| {
            use super::ingest::{from_crm, resolve_contact, start_checked, trigger_data};
            let kind = super::trigger_type(&program.workflow.trigger.kind);
            let data = trigger_data(ctx, kind, &data)?;
            let event = Event {
                kind: kind.to_string(),
                data: data.clone(),
                ..Event::default()
            };
            let contact = resolve_contact(ctx, &event, &data)?;
            let started = start_checked(ctx, &program, &data, contact)?;
            // What it changed in the CRM triggers other workflows, as always.
            let caused: Vec<_> = ctx.fx.events.drain(..).collect();
            for e in caused {
                ingest(ctx, from_crm(&e))?;
            }
            Ok(started)
        })
        .await
    }

    /// Handles every timer due at `now`, in batches; returns the totals. Where the
    /// store runs transactions side by side (PostgreSQL), as many batches are in
    /// flight as it has writer connections: each takes timers the others skip.
    pub async fn tick_at(&self, now: UnixMs) -> Result<Tick, EngineError> {
        let lanes = self.inner.store.parallel_writes();
        if lanes <= 1 {
            return self.tick_lane(now).await;
        }
        let results = futures_util::future::join_all((0..lanes).map(|_| self.tick_lane(now))).await;
        let mut total = Tick::default();
        for r in results {
            let t = r?;
            total.fired += t.fired;
            total.next_due = match (total.next_due, t.next_due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(total)
    }

    async fn tick_lane(&self, now: UnixMs) -> Result<Tick, EngineError> {
        let mut total = Tick::default();
        loop {
            let t = self.transact_background(now, take_due).await?;
            total.fired += t.fired;
            total.next_due = t.next_due;
            if t.fired < BATCH {
                return Ok(total);
            }
        }
    }

    /// Ingests CRM events queued by imports (see [`super::backlog`]), at most
    /// `slices` transactions of them; whether more wait.
    pub async fn work_off_backlog(&self, slices: usize) -> Result<bool, EngineError> {
        // Looked for on a reader first: an idle worker asks every second, and an
        // empty write transaction would still cost the writer a sync.
        let store = self.inner.store.clone();
        let waiting = tokio::task::spawn_blocking(move || {
            store.read(|c| {
                c.prepare_cached("SELECT EXISTS (SELECT 1 FROM crm_event_batches)")?
                    .query_row(params![], |r| r.get::<bool>(0))
            })
        })
        .await
        .map_err(|e| EngineError::Invalid(format!("backlog check: {e}")))?
        .map_err(from_store)?;
        if !waiting {
            return Ok(false);
        }
        for _ in 0..slices {
            let slice = self
                .transact_background(self.now(), super::backlog::ingest_slice)
                .await?;
            if !slice.more {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Executions that end and steps that fail from now on, for a process that
    /// shows them (a slow listener misses the oldest, never blocks the worker).
    pub fn notes(&self) -> tokio::sync::broadcast::Receiver<super::run::Note> {
        self.inner.notes.subscribe()
    }

    /// Sends remote calls and wakes the loop for new timers.
    fn dispatch(&self, fx: Effects) {
        for note in fx.notes {
            // No listener is no error.
            let _ = self.inner.notes.send(note);
        }
        if fx.next_due.is_some() || !fx.started.is_empty() {
            self.inner.wake.notify_one();
        }
        if fx.emails > 0 {
            self.inner.wake.notify_one();
        }
        for call in fx.remote {
            self.inner.in_flight.fetch_add(1, Ordering::SeqCst);
            let w = self.clone();
            tokio::spawn(async move {
                w.call(call).await;
                if w.inner.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                    w.inner.idle.notify_waiters();
                }
            });
        }
    }

    async fn call(&self, call: RemoteCall) {
        let result = match self.inner.calls.acquire().await {
            Ok(_permit) => super::remote::send(
                &self.inner.client,
                &self.inner.egress,
                &call.request,
                &call.key,
                &self.inner.secrets,
            )
            .await
            .map(|r| r.output()),
            Err(_) => Err(super::remote::CallError::transient(
                "the worker is shutting down",
            )),
        };
        if let Err(e) = &result {
            tracing::info!(execution = call.execution, key = %call.key, error = %e, "remote call failed");
        }
        let wake = Wake::Remote {
            fiber: call.fiber,
            key: call.key.clone(),
            result,
        };
        let execution = call.execution;
        let done = Box::pin(self.background_retrying(self.now(), move |ctx| {
            advance(ctx, execution, &wake).map(|_| ())
        }))
        .await;
        if let Err(e) = done {
            // The recovery timer sends the call again later under the same key.
            tracing::warn!(execution, error = %e, "could not record a remote result");
        }
    }

    /// Waits until no remote call is in flight.
    pub async fn settle(&self) {
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Moves queued contact changes into the search index, in batches.
    pub async fn reindex(&self) -> Result<usize, EngineError> {
        let mut total = 0;
        loop {
            let n = self
                .inner
                .store
                .write_background(|c| {
                    if crate::store::search::reindex_pending(c)? {
                        crate::store::search::reindex_contacts(c, REINDEX_BATCH)
                    } else {
                        Ok(0)
                    }
                })
                .await
                .map_err(from_store)?;
            total += n;
            if n < REINDEX_BATCH {
                return Ok(total);
            }
        }
    }

    /// Observes every scored contact, so that scores that decayed below a threshold
    /// fire their downward `score_crossed` (upward ones fire when the activity
    /// arrives). Returns how many crossings it found.
    pub async fn sweep_scores(&self, now: UnixMs) -> Result<usize, EngineError> {
        let mut after = 0;
        let mut total = 0;
        loop {
            let (n, next) = self
                .transact_background(now, move |ctx| {
                    let (events, next) = ctx
                        .engine
                        .scoring
                        .sweep(ctx.conn, ctx.now, after, SWEEP_PAGE)?;
                    let n = events.len();
                    for e in events {
                        ingest(ctx, super::ingest::from_crm(&e))?;
                    }
                    Ok((n, next))
                })
                .await?;
            total += n;
            match next {
                Some(id) => after = id,
                None => return Ok(total),
            }
            // Form posts and steps queued meanwhile go first.
            tokio::task::yield_now().await;
        }
    }

    /// Deletes finished executions older than the retention setting.
    pub async fn prune(&self, now: UnixMs) -> Result<usize, EngineError> {
        let Some(keep) = self.engine().settings.retention_ms else {
            return Ok(0);
        };
        let cutoff = now - i64::try_from(keep).unwrap_or(i64::MAX / 2);
        let mut total = 0;
        loop {
            let n = self
                .inner
                .store
                .write_background(move |c| {
                    c.prepare_cached(
                        "DELETE FROM executions WHERE id IN (SELECT id FROM executions \
                         WHERE completed_at < ?1 LIMIT 1000)",
                    )?
                    .execute(params![cutoff])
                })
                .await
                .map_err(from_store)?;
            total += n;
            if n < 1000 {
                return Ok(total);
            }
        }
    }

    /// Runs until `stop` resolves: timers, outbox, pruning.
    pub async fn run(
        &self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), EngineError> {
        tokio::pin!(stop);
        // Another process on the same SQLite file (a second worker, an import) can
        // hold the write lock past the busy timeout; a worker waits its turn
        // instead of exiting.
        loop {
            match self.prepare(self.now()).await {
                Ok(()) => break,
                Err(EngineError::Store(e)) if e.is_transient() => {
                    tracing::warn!(error = %e, "the store is busy; starting again in 1 s");
                    tokio::select! {
                        () = &mut stop => return Ok(()),
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // Stopped with the loop, also when `run` itself is dropped mid-way; it
        // holds the worker weakly, so it never keeps one alive.
        let _listener = StopOnDrop(self.inner.store.listen_for_work({
            let woken = Arc::downgrade(&self.inner);
            move || {
                if let Some(inner) = woken.upgrade() {
                    inner.wake.notify_one();
                }
            }
        }));
        self.run_loop(stop).await
    }

    async fn run_loop(
        &self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), EngineError> {
        let mut last_prune: Option<UnixMs> = None;
        let mut last_reindex: Option<UnixMs> = None;
        tokio::pin!(stop);
        loop {
            let now = self.now();
            // A failed tick (a busy store, a full disk) is logged and tried again
            // after a pause; only a stopped writer ends the loop.
            let tick = match self.tick_at(now).await {
                Ok(t) => t,
                Err(EngineError::Store(StoreError::WriterGone)) => {
                    return Err(EngineError::Store(StoreError::WriterGone));
                }
                Err(e) => {
                    tracing::error!(error = %e, "worker tick failed; retrying in 1 s");
                    Tick {
                        fired: 0,
                        next_due: Some(now + 1_000),
                    }
                }
            };
            if let Err(e) = self.deliver_outbox().await {
                tracing::warn!(error = %e, "email delivery failed; retrying later");
            }
            if let Err(e) = self.deliver_hooks().await {
                tracing::warn!(error = %e, "webhook deliveries failed; retrying later");
            }
            let campaigns_queued = match self.campaigns_tick().await {
                Ok(t) => t.queued > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "campaign sending failed; retrying later");
                    false
                }
            };
            let backlog = match self.work_off_backlog(25).await {
                Ok(more) => more,
                Err(e) => {
                    tracing::warn!(error = %e, "queued CRM events failed; retrying later");
                    false
                }
            };
            if last_reindex.is_none_or(|t| now.saturating_sub(t) >= REINDEX_EVERY_MS) {
                last_reindex = Some(now);
                if let Err(e) = self.reindex().await {
                    tracing::warn!(error = %e, "contact search indexing failed; retrying later");
                }
            }
            if last_prune.is_none_or(|t| now.saturating_sub(t) > PRUNE_EVERY_MS) {
                last_prune = Some(now);
                match self.sweep_scores(now).await {
                    Ok(0) => {}
                    Ok(crossed) => tracing::info!(crossed, "scores decayed across thresholds"),
                    Err(e) => tracing::warn!(error = %e, "score sweep failed; retrying later"),
                }
                match self.prune(now).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "old executions pruned"),
                    Err(e) => tracing::warn!(error = %e, "pruning failed; retrying later"),
                }
                let before = now - crate::subscriptions::KEEP_FINISHED_MS;
                match self
                    .inner
                    .store
                    .write_background(move |c| crate::subscriptions::prune(c, before))
                    .await
                {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "finished webhook deliveries pruned"),
                    Err(e) => {
                        tracing::warn!(error = %e, "pruning deliveries failed; retrying later")
                    }
                }
            }
            let wait = if backlog || campaigns_queued {
                Duration::ZERO
            } else {
                tick.next_due.map_or(IDLE_POLL, |due| {
                    Duration::from_millis(u64::try_from(due - self.now()).unwrap_or(0))
                        .min(IDLE_POLL)
                })
            };
            tokio::select! {
                () = &mut stop => break,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        self.settle().await;
        Ok(())
    }
}

/// A background task aborted when this is dropped.
struct StopOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Takes up to [`BATCH`] due timers and handles each in a savepoint of its own: one
/// broken execution fails alone instead of blocking the queue.
fn take_due(ctx: &mut Ctx<'_>) -> Result<Tick, EngineError> {
    let mut due = super::run::take_due_timers(ctx.conn, ctx.now, BATCH)?;
    // Executions are locked in one order by every writer (see `run::load`), so
    // two writers firing timers of the same executions cannot deadlock.
    due.sort_by_key(|t| (t.execution, t.id));
    let fired = due.len();
    for super::run::DueTimer {
        id,
        kind,
        execution,
        payload,
    } in due
    {
        savepoint(ctx.conn, "timer_begin")?;
        let result = handle(ctx, &kind, execution, &payload);
        match result {
            Ok(()) => savepoint(ctx.conn, "timer_ok")?,
            Err(e) => {
                savepoint(ctx.conn, "timer_undo")?;
                tracing::error!(timer = id, ?execution, error = %e, "timer failed; execution marked failed");
                if let Some(ex) = execution {
                    ctx.conn
                        .prepare_cached(
                            "UPDATE executions SET status = 'failed', error = ?2, updated_at = ?3, \
                             completed_at = ?3 WHERE id = ?1",
                        )?
                        .execute(params![ex, format!("engine: {e}"), ctx.now])?;
                }
            }
        }
    }
    let next_due: Option<i64> = ctx
        .conn
        .prepare_cached("SELECT min(due_at) FROM timers")?
        .query_row(params![], |r| r.get(0))?;
    Ok(Tick { fired, next_due })
}

fn savepoint(conn: Db<'_>, step: &str) -> Result<(), EngineError> {
    let sql = match step {
        "timer_begin" => "SAVEPOINT timer",
        "timer_ok" => "RELEASE timer",
        _ => "ROLLBACK TO timer",
    };
    conn.prepare_cached(sql)?.execute(params![])?;
    if step == "timer_undo" {
        conn.prepare_cached("RELEASE timer")?.execute(params![])?;
    }
    Ok(())
}

fn handle(
    ctx: &mut Ctx<'_>,
    kind: &str,
    execution: Option<i64>,
    payload: &str,
) -> Result<(), EngineError> {
    match (kind, execution) {
        ("wake", Some(ex)) => {
            let wake: Wake = serde_json::from_str(payload)
                .map_err(|e| EngineError::BadState(format!("timer payload: {e}")))?;
            advance(ctx, ex, &wake)?;
        }
        ("cron", _) => {
            let v: serde_json::Value = serde_json::from_str(payload)
                .map_err(|e| EngineError::BadState(format!("timer payload: {e}")))?;
            let workflow = v["workflow"].as_str().unwrap_or_default().to_string();
            let occurrence = v["occurrence"].as_i64().unwrap_or(ctx.now);
            super::schedule::fire(ctx, &workflow, occurrence)?;
        }
        _ => tracing::warn!(kind, "unknown timer kind ignored"),
    }
    Ok(())
}
