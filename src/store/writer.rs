//! The one SQLite writer: a thread that owns the write connection and commits many
//! small writes in one transaction (group commit).
//!
//! Callers send a job and get a [`WriteTicket`]. The thread takes every job waiting
//! (up to [`MAX_BATCH`]), runs them in one `BEGIN IMMEDIATE` transaction, each inside
//! its own savepoint so that one failing job rolls back alone, commits, and only then
//! answers each caller. An answer therefore means "durable at the configured
//! synchronous level". Jobs from one caller run in the order sent: the queue is FIFO
//! and the thread runs a batch in order.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::StoreError;

/// Most jobs in one transaction. Large enough to amortize the commit's fsync over
/// many callers, small enough to keep each caller's wait short.
pub const MAX_BATCH: usize = 1024;

/// How many jobs may wait before senders block (back-pressure).
const QUEUE: usize = 16 * 1024;

/// What the writer does after the commit: tell the caller how it went.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A unit of work for the writer thread.
trait Job: Send {
    fn run(self: Box<Self>, conn: &Connection) -> Completion;
    /// The job could not run (the transaction did not begin): say why.
    fn fail(self: Box<Self>, error: &StoreError);
    /// Runs outside any transaction (VACUUM, checkpoints), between two batches.
    fn outside(&self) -> bool;
}

struct ClosureJob<F, T> {
    f: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
    outside: bool,
}

impl<F, T> Job for ClosureJob<F, T>
where
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Completion {
        let ClosureJob { f, reply, outside } = *self;
        let result = if outside {
            f(conn)
        } else {
            in_savepoint(conn, f)
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

    fn outside(&self) -> bool {
        self.outside
    }
}

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("SAVEPOINT job")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
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
    /// Starts the writer thread on `conn`.
    pub fn start(conn: Connection) -> Result<(Writer, WriterThread), StoreError> {
        let (tx, rx) = mpsc::sync_channel::<Box<dyn Job>>(QUEUE);
        let handle = std::thread::Builder::new()
            .name("funnel-store-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Io(e.to_string()))?;
        Ok((
            Writer { tx },
            WriterThread {
                handle: Some(handle),
            },
        ))
    }

    /// Queues a write. `f` runs on the writer thread inside the group transaction;
    /// the ticket resolves once that transaction has committed.
    pub fn write<T, F>(&self, f: F) -> WriteTicket<T>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.send(f, false)
    }

    /// Queues work that must run outside a transaction (VACUUM, a WAL checkpoint):
    /// the writer commits what came before, runs it alone, then goes on.
    pub fn maintain<T, F>(&self, f: F) -> WriteTicket<T>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.send(f, true)
    }

    fn send<T, F>(&self, f: F, outside: bool) -> WriteTicket<T>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(ClosureJob { f, reply, outside });
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            // The thread is gone; answer at once through the job's own channel.
            drop(job);
        }
        WriteTicket { rx }
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut done: Vec<Completion> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut in_transaction = false;
        for job in batch.drain(..) {
            if job.outside() {
                if in_transaction {
                    commit(&conn, &mut done);
                    in_transaction = false;
                }
                (job.run(&conn))(None);
                continue;
            }
            if !in_transaction {
                if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                    job.fail(&StoreError::from(e));
                    continue;
                }
                in_transaction = true;
            }
            done.push(job.run(&conn));
        }
        if in_transaction {
            commit(&conn, &mut done);
        }
    }
    tracing::debug!("store writer stopped: all handles dropped");
}

/// Commits the open transaction, then answers every job in it.
fn commit(conn: &Connection, done: &mut Vec<Completion>) {
    let result = conn.execute_batch("COMMIT").map_err(StoreError::from);
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let err = result.err();
    for completion in done.drain(..) {
        completion(err.as_ref());
    }
}
