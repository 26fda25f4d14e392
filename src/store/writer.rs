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
//! With a [`Syncer`], the connection commits without syncing (`synchronous=NORMAL`
//! writes the WAL frames but does not fsync them) and a second thread fsyncs the WAL
//! and only then answers the callers of every batch committed before that fsync
//! began. The writer meanwhile runs the next batch, so the disk's sync and the
//! writer's work overlap. An answered write is as durable as with `FULL`; what is
//! saved is the writer's idle time during each sync.

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::StoreError;
use super::db::Db;
use super::pg_conn::PgConn;

/// The connection a writer thread owns.
#[derive(Debug)]
pub enum WriteConn {
    Sqlite(Connection),
    Postgres(PgConn),
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
                c.execute_batch("COMMIT")?;
            }
        }
        Ok(())
    }

    fn rollback(&self) {
        let _ = self.db().execute_batch("ROLLBACK");
        if let WriteConn::Postgres(c) = self {
            c.set_in_transaction(false);
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
            Mode::Batched => in_savepoint(conn.db(), f),
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
    match f(conn) {
        Ok(v) => {
            conn.prepare_cached("RELEASE job")?.execute(&[])?;
            Ok(v)
        }
        Err(e) => {
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

/// The next batch: the first job to arrive and everything already waiting behind
/// it. `None` once every handle is gone.
fn next_batch(rx: &Queue, batch: &mut Vec<Box<dyn Job>>) -> Option<()> {
    let rx = rx.lock().ok()?;
    let first = rx.recv().ok()?;
    batch.push(first);
    batch.extend(rx.try_iter().take(MAX_BATCH - 1));
    Some(())
}

fn run(conn: WriteConn, rx: &Queue, syncer: Option<Syncer>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut done: Vec<Completion> = Vec::with_capacity(MAX_BATCH);
    // Everything already waiting joins the batch. There is no deliberate wait for
    // more: with the syncer, callers come back while the previous batch syncs, so
    // batches fill by themselves (a wait measured slower).
    while next_batch(rx, &mut batch).is_some() {
        let mut in_transaction = false;
        for job in batch.drain(..) {
            let mode = job.mode();
            if mode != Mode::Batched {
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
            if !in_transaction {
                if let Err(e) = conn.begin() {
                    job.fail(&e);
                    continue;
                }
                in_transaction = true;
            }
            done.push(job.run(&conn));
        }
        if in_transaction {
            commit(&conn, &mut done, syncer.as_ref());
        }
    }
    tracing::debug!("store writer stopped: all handles dropped");
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
