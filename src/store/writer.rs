//! The one SQLite writer: a thread that owns the write connection and commits many
//! small writes in one transaction (group commit).
//!
//! Callers send a job and get a [`WriteTicket`]. The thread takes every job waiting
//! (up to [`MAX_BATCH`]), runs them in one `BEGIN IMMEDIATE` transaction, each inside
//! its own savepoint so that one failing job rolls back alone, commits, and only then
//! answers each caller. An answer therefore means "durable at the configured
//! synchronous level". Jobs from one caller run in the order sent: the queue is FIFO
//! and the thread runs a batch in order.
//!
//! Jobs wait in one of two lanes. A request's write (a form post, an API call,
//! anything a client waits on) runs in the next batch. Background work (a
//! workflow resumed by its remote call's result, timers, the search index,
//! sweeps) runs after the batch's requests: while requests keep coming it gets
//! [`BACKGROUND_SHARE`] of their time, accounted across batches (a long job is
//! paid back by the batches after it), and while none waits it runs in slices
//! of [`BACKGROUND_SLICE`]. Under a burst of form posts the writer therefore
//! acknowledges posts first and workflows catch up after, yet never stop; a
//! post waits behind at most one slice or one job of background work. Jobs of
//! one lane keep their order; a request may overtake background work sent
//! before it.
//!
//! With a [`Syncer`], the connection commits without syncing (`synchronous=NORMAL`
//! writes the WAL frames but does not fsync them) and a second thread fsyncs the WAL
//! and only then answers the callers of every batch committed before that fsync
//! began. The writer meanwhile runs the next batch, so the disk's sync and the
//! writer's work overlap. An answered write is as durable as with `FULL`; what is
//! saved is the writer's idle time during each sync.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::StoreError;
use super::db::Db;
use super::pg_conn::PgConn;

/// The connection a writer thread owns.
#[derive(Debug)]
pub enum WriteConn {
    Sqlite(Connection),
    Postgres(Box<PgConn>),
}

impl WriteConn {
    fn db(&self) -> Db<'_> {
        match self {
            WriteConn::Sqlite(c) => Db::Sqlite(c),
            WriteConn::Postgres(c) => Db::Postgres(c),
        }
    }

    /// Opens the write transaction: `BEGIN IMMEDIATE` on SQLite takes the write
    /// lock at once (a deferred one can fail with BUSY half-way).
    fn begin(&self) -> Result<(), StoreError> {
        match self {
            WriteConn::Sqlite(c) => {
                c.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            }
            WriteConn::Postgres(c) => {
                c.execute_batch("BEGIN")?;
                c.set_in_transaction(true);
            }
        }
        Ok(())
    }

    fn commit(&self) -> Result<(), StoreError> {
        match self {
            WriteConn::Sqlite(c) => {
                c.prepare_cached("COMMIT")?.execute([])?;
            }
            WriteConn::Postgres(c) => {
                c.set_in_transaction(false);
                super::counters::flush(c)?;
                c.execute_batch("COMMIT")?;
            }
        }
        Ok(())
    }

    fn rollback(&self) {
        let _ = self.db().execute_batch("ROLLBACK");
        if let WriteConn::Postgres(c) = self {
            c.set_in_transaction(false);
            super::counters::forget_after(self.db(), 0);
        }
    }

    fn in_transaction(&self) -> bool {
        match self {
            WriteConn::Sqlite(c) => !c.is_autocommit(),
            WriteConn::Postgres(c) => c.in_transaction(),
        }
    }
}

/// Most jobs in one transaction. Large enough to amortize the commit's fsync over
/// many callers, small enough to keep each caller's wait short.
pub const MAX_BATCH: usize = 1024;

/// How many jobs may wait before senders block (back-pressure).
const QUEUE: usize = 16 * 1024;

/// Background work's time in a batch, as a share of the time its requests took.
/// Under a sustained burst, requests get 80% of the writer and background work
/// 20%.
pub const BACKGROUND_SHARE: f64 = 0.25;

/// Background work's time in a batch without requests: short enough that a
/// request arriving meanwhile waits little, long enough to share a commit.
pub const BACKGROUND_SLICE: Duration = Duration::from_millis(5);

/// What the writer does after the commit: tell the caller how it went.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A unit of work for the writer thread.
trait Job: Send {
    fn run(self: Box<Self>, conn: &WriteConn) -> Completion;
    /// The job could not run (the transaction did not begin): say why.
    fn fail(self: Box<Self>, error: &StoreError);
    fn mode(&self) -> Mode;
}

/// How a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// In the group commit's transaction, inside a savepoint of its own.
    Batched,
    /// Like `Batched`, in the background lane (see the module docs).
    Background,
    /// In a transaction of its own, without a savepoint: a write that changes
    /// many rows. (SQLite truncates its in-memory statement journal back to the
    /// start of the innermost savepoint at every statement's end, walking it from
    /// its start: inside a long savepoint, every statement costs more with every
    /// page the savepoint has changed.)
    Alone,
    /// Outside any transaction (VACUUM, checkpoints), between two batches.
    Outside,
}

struct ClosureJob<F, T> {
    f: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
    mode: Mode,
}

impl<F, T> Job for ClosureJob<F, T>
where
    F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &WriteConn) -> Completion {
        let ClosureJob { f, reply, mode } = *self;
        let result = match mode {
            Mode::Outside => f(conn.db()),
            Mode::Batched | Mode::Background => in_savepoint(conn.db(), f),
            Mode::Alone => {
                let result = conn.begin().and_then(|_| f(conn.db()));
                if result.is_err() && conn.in_transaction() {
                    conn.rollback();
                }
                result
            }
        };
        Box::new(move |commit_error| {
            let result = match commit_error {
                Some(e) => Err(e.clone()),
                None => result,
            };
            // The caller may have stopped waiting; its write stands all the same.
            let _ = reply.send(result);
        })
    }

    fn fail(self: Box<Self>, error: &StoreError) {
        let _ = self.reply.send(Err(error.clone()));
    }

    fn mode(&self) -> Mode {
        self.mode
    }
}

fn in_savepoint<T>(
    conn: Db<'_>,
    f: impl FnOnce(Db<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    // Cached statements: parsing these on every job costs more than running them.
    conn.prepare_cached("SAVEPOINT job")?.execute(&[])?;
    let bumps = super::counters::mark(conn);
    match f(conn) {
        Ok(v) => {
            conn.prepare_cached("RELEASE job")?.execute(&[])?;
            Ok(v)
        }
        Err(e) => {
            super::counters::forget_after(conn, bumps);
            conn.prepare_cached("ROLLBACK TO job")?.execute(&[])?;
            conn.prepare_cached("RELEASE job")?.execute(&[])?;
            Err(e)
        }
    }
}

/// The answer to one write: wait for it, blocking or async.
#[derive(Debug)]
pub struct WriteTicket<T> {
    rx: oneshot::Receiver<Result<T, StoreError>>,
}

impl<T> WriteTicket<T> {
    /// Blocks until the write is durable (or failed). Not for async code: await the
    /// ticket there.
    pub fn wait(self) -> Result<T, StoreError> {
        self.rx
            .blocking_recv()
            .unwrap_or(Err(StoreError::WriterGone))
    }
}

impl<T: Send + 'static> std::future::IntoFuture for WriteTicket<T> {
    type Output = Result<T, StoreError>;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.rx.await.unwrap_or(Err(StoreError::WriterGone)) })
    }
}

/// The handle callers hold; cloning it is cheap.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::SyncSender<Box<dyn Job>>,
}

impl std::fmt::Debug for dyn Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

/// The writer thread; joined when dropped, after the queue drains.
#[derive(Debug)]
pub struct WriterThread {
    handle: Option<JoinHandle<()>>,
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Writer {
    /// Starts the writer thread on `conn`. With `wal`, answers wait for a separate
    /// fsync of that write-ahead log file (see the module docs); the connection
    /// must then run with `synchronous=NORMAL`.
    pub fn start(
        conn: WriteConn,
        wal: Option<PathBuf>,
    ) -> Result<(Writer, WriterThread), StoreError> {
        let (tx, rx) = mpsc::sync_channel::<Box<dyn Job>>(QUEUE);
        let syncer = wal.map(Syncer::start).transpose()?;
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let handle = std::thread::Builder::new()
            .name("funnel-store-writer".into())
            .spawn(move || run(conn, &rx, syncer))
            .map_err(|e| StoreError::Io(e.to_string()))?;
        Ok((
            Writer { tx },
            WriterThread {
                handle: Some(handle),
            },
        ))
    }

    /// Starts one writer thread per connection, all taking batches from one queue:
    /// for a server that runs transactions side by side (PostgreSQL), so one
    /// process's writes are not bound by one connection's round trips. Jobs a
    /// caller sends without waiting for the first's answer may then commit in
    /// either order (callers that need an order wait, as the engine does).
    pub fn start_pool(conns: Vec<WriteConn>) -> Result<(Writer, Vec<WriterThread>), StoreError> {
        let (tx, rx) = mpsc::sync_channel::<Box<dyn Job>>(QUEUE);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let mut threads = Vec::with_capacity(conns.len());
        for (i, conn) in conns.into_iter().enumerate() {
            let rx = rx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("funnel-store-writer-{i}"))
                .spawn(move || run(conn, &rx, None))
                .map_err(|e| StoreError::Io(e.to_string()))?;
            threads.push(WriterThread {
                handle: Some(handle),
            });
        }
        Ok((Writer { tx }, threads))
    }

    /// Queues a write. `f` runs on the writer thread inside the group transaction;
    /// the ticket resolves once that transaction has committed.
    pub fn write<T, F>(&self, f: F) -> WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.send(f, Mode::Batched)
    }

    /// Queues a write in the background lane: work no client waits on, which
    /// yields to requests' writes (see the module docs).
    pub fn write_background<T, F>(&self, f: F) -> WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.send(f, Mode::Background)
    }

    /// Queues a write that changes many rows (an import, a bulk change): the
    /// writer commits what came before, then runs it in a transaction of its own
    /// (rolled back whole if it fails), without the per-job savepoint.
    pub fn write_alone<T, F>(&self, f: F) -> WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.send(f, Mode::Alone)
    }

    /// Queues work that must run outside a transaction (VACUUM, a WAL checkpoint):
    /// the writer commits what came before, runs it alone, then goes on.
    pub fn maintain<T, F>(&self, f: F) -> WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.send(f, Mode::Outside)
    }

    fn send<T, F>(&self, f: F, mode: Mode) -> WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(ClosureJob { f, reply, mode });
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            // The thread is gone; answer at once through the job's own channel.
            drop(job);
        }
        WriteTicket { rx }
    }
}

type Queue = std::sync::Mutex<mpsc::Receiver<Box<dyn Job>>>;

/// The jobs one writer thread has taken from the queue: the next batch's
/// requests (and `Alone`/`Outside` jobs, in order with them) and the background
/// work still to run.
struct Taken {
    batch: Vec<Box<dyn Job>>,
    later: VecDeque<Box<dyn Job>>,
}

impl Taken {
    fn place(&mut self, job: Box<dyn Job>) {
        // Past a full queue's worth, background work runs in order with the
        // requests: the lane never holds more than the channel's back-pressure
        // would have allowed.
        if job.mode() == Mode::Background && self.later.len() < QUEUE {
            self.later.push_back(job);
        } else {
            self.batch.push(job);
        }
    }

    /// Takes what is waiting without blocking; whether requests wait now.
    fn poll(&mut self, rx: &Queue) -> bool {
        if let Ok(rx) = rx.try_lock() {
            self.take_waiting(&rx, MAX_BATCH - self.batch.len());
        }
        !self.batch.is_empty()
    }

    /// Takes up to `n` waiting jobs, stopping after one that runs in a
    /// transaction of its own: the jobs behind it would wait for it here,
    /// while another writer of a pool can start them (two sync rounds, two
    /// imports) side by side.
    fn take_waiting(&mut self, rx: &mpsc::Receiver<Box<dyn Job>>, n: usize) {
        for job in rx.try_iter().take(n) {
            let alone = !matches!(job.mode(), Mode::Batched | Mode::Background);
            self.place(job);
            if alone {
                break;
            }
        }
    }

    /// Takes what is waiting: blocks for the first job only when no background
    /// work is left. `None` once every handle is gone and nothing is left.
    fn take(&mut self, rx: &Queue) -> Option<()> {
        if self.later.is_empty() {
            let rx = rx.lock().ok()?;
            let first = rx.recv().ok()?;
            let alone = !matches!(first.mode(), Mode::Batched | Mode::Background);
            self.place(first);
            if !alone {
                self.take_waiting(&rx, MAX_BATCH - 1);
            }
        } else if let Ok(rx) = rx.try_lock() {
            // `try_lock`: another writer thread (PostgreSQL's pool) may hold the
            // queue while it blocks for a job; this one has work of its own.
            self.take_waiting(&rx, MAX_BATCH);
        }
        Some(())
    }
}

fn run(conn: WriteConn, rx: &Queue, syncer: Option<Syncer>) {
    let mut taken = Taken {
        batch: Vec::with_capacity(MAX_BATCH),
        later: VecDeque::new(),
    };
    let mut done: Vec<Completion> = Vec::with_capacity(MAX_BATCH);
    // Seconds of writer time background work may still take while requests
    // wait (negative: owed).
    let mut credit = 0.0_f64;
    // Everything already waiting joins the batch. There is no deliberate wait for
    // more: with the syncer, callers come back while the previous batch syncs, so
    // batches fill by themselves (a wait measured slower).
    while taken.take(rx).is_some() {
        let mut in_transaction = false;
        let requests = !taken.batch.is_empty();
        let started = Instant::now();
        for job in taken.batch.drain(..) {
            let mode = job.mode();
            if !matches!(mode, Mode::Batched | Mode::Background) {
                if in_transaction {
                    commit(&conn, &mut done, syncer.as_ref());
                    in_transaction = false;
                }
                let completion = job.run(&conn);
                if mode == Mode::Alone && conn.in_transaction() {
                    // Its transaction is open: commit it like a batch of one.
                    done.push(completion);
                    commit(&conn, &mut done, syncer.as_ref());
                } else {
                    completion(None);
                }
                continue;
            }
            run_batched(&conn, job, &mut in_transaction, &mut done);
        }
        if requests {
            // Background work earns a share of the requests' time and spends
            // what it takes, going into debt for a long job: over many batches
            // it gets its share exactly, and a long job waits out the next
            // batches instead of delaying them.
            let earned = started.elapsed().as_secs_f64() * BACKGROUND_SHARE;
            credit = (credit + earned).min(BACKGROUND_SLICE.as_secs_f64());
            while credit > 0.0
                && let Some(job) = taken.later.pop_front()
            {
                let t = Instant::now();
                run_batched(&conn, job, &mut in_transaction, &mut done);
                credit -= t.elapsed().as_secs_f64();
            }
        } else {
            // No request waits: background work until one arrives (looked for
            // after every job) or the slice is over, then the commit.
            credit = 0.0;
            while let Some(job) = taken.later.pop_front() {
                run_batched(&conn, job, &mut in_transaction, &mut done);
                if started.elapsed() >= BACKGROUND_SLICE || taken.poll(rx) {
                    break;
                }
            }
        }
        if in_transaction {
            commit(&conn, &mut done, syncer.as_ref());
        }
    }
    tracing::debug!("store writer stopped: all handles dropped");
}

/// Runs a job in the open group transaction, opening it first if needed.
fn run_batched(
    conn: &WriteConn,
    job: Box<dyn Job>,
    in_transaction: &mut bool,
    done: &mut Vec<Completion>,
) {
    if !*in_transaction {
        if let Err(e) = conn.begin() {
            job.fail(&e);
            return;
        }
        *in_transaction = true;
    }
    done.push(job.run(conn));
}

/// Commits the open transaction, then answers every job in it, or hands them to
/// the syncer to answer once the commit is on disk.
fn commit(conn: &WriteConn, done: &mut Vec<Completion>, syncer: Option<&Syncer>) {
    let result = conn.commit();
    if result.is_err() {
        conn.rollback();
    }
    match (result, syncer) {
        (Ok(()), Some(syncer)) => syncer.after_sync(std::mem::take(done)),
        (result, _) => {
            let err = result.err();
            for completion in done.drain(..) {
                completion(err.as_ref());
            }
        }
    }
}

/// The thread that fsyncs the write-ahead log and answers the batches committed
/// before each fsync.
struct Syncer {
    tx: Option<mpsc::Sender<Vec<Completion>>>,
    handle: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Syncer")
    }
}

impl Syncer {
    fn start(wal: PathBuf) -> Result<Syncer, StoreError> {
        let (tx, rx) = mpsc::channel::<Vec<Completion>>();
        let handle = std::thread::Builder::new()
            .name("funnel-store-sync".into())
            .spawn(move || {
                let mut file: Option<std::fs::File> = None;
                while let Ok(first) = rx.recv() {
                    let mut groups = vec![first];
                    groups.extend(rx.try_iter());
                    // Open lazily: the log exists once the first commit wrote to it.
                    if file.is_none() {
                        file = std::fs::File::open(&wal).ok();
                    }
                    let synced = match &file {
                        Some(f) => f.sync_data().map_err(StoreError::from),
                        None => Err(StoreError::Io(format!("cannot open {}", wal.display()))),
                    };
                    let err = synced.err();
                    for completion in groups.into_iter().flatten() {
                        completion(err.as_ref());
                    }
                }
            })
            .map_err(|e| StoreError::Io(e.to_string()))?;
        Ok(Syncer {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    fn after_sync(&self, group: Vec<Completion>) {
        if let Some(tx) = &self.tx
            && let Err(mpsc::SendError(group)) = tx.send(group)
        {
            let err = StoreError::WriterGone;
            for completion in group {
                completion(Some(&err));
            }
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer on an in-memory store. Fields drop in order: the handle first,
    /// so the thread can stop before it is joined (also when a test fails).
    struct Running {
        w: Writer,
        _thread: WriterThread,
    }

    fn writer() -> Running {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE log (seq INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .expect("table");
        let (w, thread) = Writer::start(WriteConn::Sqlite(conn), None).expect("writer");
        Running { w, _thread: thread }
    }

    fn log(name: &'static str) -> impl FnOnce(Db<'_>) -> Result<(), StoreError> + Send {
        move |db| {
            db.prepare_cached("INSERT INTO log (name) VALUES (?1)")?
                .execute(super::super::db::params![name])?;
            Ok(())
        }
    }

    fn names(w: &Writer) -> Vec<String> {
        w.write(|db| {
            let mut stmt = db.prepare_cached("SELECT name FROM log ORDER BY seq")?;
            let mut rows = stmt.query(&[])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(row.get::<String>(0)?);
            }
            Ok(out)
        })
        .wait()
        .expect("read")
    }

    /// Holds the writer until the returned sender is dropped, so that what is
    /// sent meanwhile waits in the queue together.
    fn hold(w: &Writer) -> (mpsc::Sender<()>, WriteTicket<()>) {
        let (tx, rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let ticket = w.write(move |_| {
            let _ = started_tx.send(());
            let _ = rx.recv();
            Ok(())
        });
        started_rx.recv().expect("the writer took the holding job");
        (tx, ticket)
    }

    #[test]
    fn requests_overtake_background_work_and_each_lane_keeps_its_order() {
        let running = writer();
        let w = &running.w;
        let (release, held) = hold(w);
        let b: Vec<_> = ["b1", "b2", "b3"]
            .into_iter()
            .map(|n| w.write_background(log(n)))
            .collect();
        let r: Vec<_> = ["r1", "r2"].into_iter().map(|n| w.write(log(n))).collect();
        drop(release);
        held.wait().expect("held");
        for t in b.into_iter().chain(r) {
            t.wait().expect("write");
        }
        assert_eq!(names(w), ["r1", "r2", "b1", "b2", "b3"]);
    }

    #[test]
    fn background_work_gets_its_share_while_requests_keep_waiting() {
        let running = writer();
        let w = &running.w;
        let (release, held) = hold(w);
        let slow = |name: &'static str| {
            move |db: Db<'_>| {
                std::thread::sleep(Duration::from_micros(200));
                log(name)(db)
            }
        };
        let background: Vec<_> = (0..10).map(|_| w.write_background(slow("b"))).collect();
        let requests: Vec<_> = (0..3_000).map(|_| w.write(slow("r"))).collect();
        drop(release);
        held.wait().expect("held");
        for t in background.into_iter().chain(requests) {
            t.wait().expect("write");
        }
        let names = names(w);
        let last_background = names
            .iter()
            .rposition(|n| n == "b")
            .expect("background ran");
        // The first batch (1,024 requests, 0.2 s) earns the background work a
        // full slice: it runs then, not after the 3,000 requests.
        assert!(
            last_background < 1_500,
            "background finished at {last_background} of {}",
            names.len()
        );
    }

    #[test]
    fn a_failing_background_job_rolls_back_alone() {
        let running = writer();
        let w = &running.w;
        let (release, held) = hold(w);
        let first = w.write_background(log("kept"));
        let failing = w.write_background(|db| -> Result<(), StoreError> {
            log("undone")(db)?;
            Err(StoreError::Io("refused".into()))
        });
        let request = w.write(log("request"));
        drop(release);
        held.wait().expect("held");
        first.wait().expect("first");
        assert!(failing.wait().is_err());
        request.wait().expect("request");
        assert_eq!(names(w), ["request", "kept"]);
    }

    #[test]
    fn background_work_queued_at_shutdown_still_runs() {
        let Running { w, _thread: thread } = writer();
        let (release, held) = hold(&w);
        let tickets: Vec<_> = (0..50).map(|_| w.write_background(log("late"))).collect();
        drop(release);
        held.wait().expect("held");
        // Every handle gone: the thread drains both lanes, then stops.
        drop(w);
        drop(thread);
        for t in tickets {
            t.wait().expect("background write committed");
        }
    }
}
