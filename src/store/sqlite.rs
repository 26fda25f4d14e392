//! The SQLite backend: opening the file with the right settings, the writer thread,
//! a small pool of read connections, migrations, checks, backup and restore.
//!
//! Settings on every connection: WAL (readers never block the writer), a busy
//! timeout, foreign keys on. The configured `synchronous` level decides what an
//! acknowledged write survives: `full` (the default) a power loss as well as a
//! process crash, because the write-ahead log is fsynced before the answer (by the
//! writer's syncer thread, see `writer`); `normal` a process crash only (the answer
//! comes once the commit is in the operating system's cache).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::db::Db;
use super::writer::{WriteConn, WriteTicket, Writer, WriterThread};
use crate::model::config::Synchronous;

/// How long a connection waits on a lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read connections kept open at most.
const READERS: usize = 4;

/// An open SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: ReadPool,
    _checkpointer: Checkpointer,
    // Declared last: dropped after the writer handle, so the thread sees the
    // channel close and drains before it is joined.
    _thread: WriterThread,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and applies pending migrations.
    pub fn open(path: &Path, synchronous: Synchronous) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut conn = Connection::open(path)?;
        configure(&conn, synchronous)?;
        super::migrations::sqlite_migrate(&mut conn)?;
        // Migrating read every page of the schema; they are not what the writer
        // reads next, and an idle daemon would keep them resident (about 1 MiB).
        conn.execute_batch("PRAGMA shrink_memory")?;
        // FULL durability with the sync moved off the writer: the connection commits
        // at NORMAL and the writer's syncer fsyncs the log before answering.
        let wal = match synchronous {
            Synchronous::Full => {
                conn.execute_batch("PRAGMA synchronous = NORMAL")?;
                Some(PathBuf::from(format!("{}-wal", path.display())))
            }
            Synchronous::Normal => None,
        };
        let (writer, thread) = Writer::start(WriteConn::Sqlite(conn), wal)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer,
                readers: ReadPool::new(path.to_path_buf()),
                _checkpointer: Checkpointer::start(path)?,
                _thread: thread,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Queues a write for the group commit; see [`Writer::write`].
    pub fn write<T, F>(&self, f: F) -> WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.writer.write(f)
    }

    /// Queues a write in the writer's background lane; see
    /// [`Writer::write_background`].
    pub fn write_background<T, F>(&self, f: F) -> WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.writer.write_background(f)
    }

    /// Queues a write that changes many rows, in a transaction of its own; see
    /// [`Writer::write_alone`].
    pub fn write_alone<T, F>(&self, f: F) -> WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.writer.write_alone(f)
    }

    /// Runs `f` on a read connection (a consistent snapshot for its duration when
    /// `f` opens a transaction). Blocking: async callers use `spawn_blocking`.
    pub fn read<T>(
        &self,
        f: impl FnOnce(Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.read_sqlite(|c| f(Db::Sqlite(c)))
    }

    /// [`SqliteStore::read`] with SQLite's own connection, for the store's
    /// SQLite-only statements (checks, backup).
    pub(crate) fn read_sqlite<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.inner.readers.take()?;
        let result = f(&conn);
        self.inner.readers.put(conn);
        result
    }

    /// `PRAGMA integrity_check` and `foreign_key_check`; the problems found, if any.
    pub fn check(&self) -> Result<Vec<String>, StoreError> {
        self.read_sqlite(|c| {
            let mut problems = Vec::new();
            let mut stmt = c.prepare("PRAGMA integrity_check")?;
            for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
                let row = row?;
                if row != "ok" {
                    problems.push(row);
                }
            }
            let mut stmt = c.prepare("PRAGMA foreign_key_check")?;
            let rows = stmt.query_map([], |r| {
                Ok(format!(
                    "foreign key: {} row {} points at a missing {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1).unwrap_or_default(),
                    r.get::<_, String>(2)?
                ))
            })?;
            for row in rows {
                problems.push(row?);
            }
            Ok(problems)
        })
    }

    /// Compacts the file and truncates the WAL (through the writer, so no write is
    /// in flight).
    pub fn vacuum(&self) -> WriteTicket<()> {
        self.inner.writer.maintain(|c| {
            c.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
            Ok(())
        })
    }

    /// Moves the WAL's content into the database file and empties the WAL.
    pub fn checkpoint(&self) -> WriteTicket<()> {
        self.inner.writer.maintain(|c| {
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
            Ok(())
        })
    }

    /// A consistent copy of the whole store at one moment, while writers go on:
    /// SQLite's online backup, copying every page in one step under one read
    /// transaction (so concurrent commits cannot tear it).
    pub fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        let tmp = dest.with_extension("partial");
        let _ = std::fs::remove_file(&tmp);
        self.read_sqlite(|src| {
            let mut out = Connection::open(&tmp)?;
            let backup = rusqlite::backup::Backup::new(src, &mut out)?;
            backup.step(-1)?;
            drop(backup);
            out.execute_batch("PRAGMA journal_mode=DELETE")?;
            Ok(())
        })?;
        std::fs::rename(&tmp, dest)?;
        Ok(())
    }
}

/// A migrated store in memory, for simulations and tests: gone when dropped.
pub fn in_memory() -> Result<Connection, StoreError> {
    let mut conn = Connection::open_in_memory()?;
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    super::migrations::sqlite_migrate(&mut conn)?;
    Ok(conn)
}

/// Replaces the store at `live` with the backup at `backup`, after checking that the
/// backup is a sound funnel store. Copies page by page into the live file under its
/// own locks, so a half-done restore never leaves a torn file.
pub fn restore(backup: &Path, live: &Path) -> Result<(), StoreError> {
    let src = Connection::open_with_flags(backup, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let ok: String = src.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if ok != "ok" {
        return Err(StoreError::Invalid(format!(
            "{} is damaged: {ok}",
            backup.display()
        )));
    }
    let has_history: i64 = src.query_row(
        "SELECT count(*) FROM sqlite_master WHERE name = 'refinery_schema_history'",
        [],
        |r| r.get(0),
    )?;
    if has_history == 0 {
        return Err(StoreError::Invalid(format!(
            "{} is not a funnel store (no migration history)",
            backup.display()
        )));
    }
    if let Some(parent) = live.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut dst = Connection::open(live)?;
    dst.busy_timeout(BUSY_TIMEOUT)?;
    let backup_op = rusqlite::backup::Backup::new(&src, &mut dst)?;
    backup_op.step(-1)?;
    Ok(())
}

/// Pages the WAL may hold before the writer checkpoints itself. The checkpointer
/// thread normally keeps it far below; this only bounds the WAL if it cannot.
const WAL_SAFETY_PAGES: u32 = 4000;
/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

fn configure(conn: &Connection, synchronous: Synchronous) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let level = match synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {level}; PRAGMA foreign_keys = ON; \
         PRAGMA wal_autocheckpoint = {WAL_SAFETY_PAGES}; PRAGMA journal_size_limit = 67108864; \
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768; PRAGMA secure_delete = FAST;"
    ))?;
    // secure_delete FAST: a row's old bytes, freed inside a page by an update or a
    // delete, are zeroed when that page is written anyway (no extra I/O). Without
    // it an execution's trigger data, rewritten at every step, left copies of a
    // person's address in free space that `contacts forget` cannot reach later.
    // Every job runs in a savepoint: its statement journal stays in memory rather
    // than in a temporary file (measured: a fifth of the writer's time went to
    // those writes). The engine and CRM use a few dozen distinct statements; the
    // default cache of 16 re-prepared them all the time.
    conn.set_prepared_statement_cache_capacity(256);
    Ok(())
}

/// Copies the WAL into the database file from a thread of its own, so that commits
/// do not pay for checkpoints (a passive checkpoint never blocks the writer).
#[derive(Debug)]
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("funnel-store-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(CHECKPOINT_EVERY)
                {
                    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                        tracing::warn!("checkpoint failed: {e}");
                    }
                }
            })
            .map_err(|e| StoreError::Io(e.to_string()))?;
        Ok(Checkpointer {
            stop: Some(stop),
            handle: Some(handle),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A bounded pool of read-only connections.
#[derive(Debug)]
struct ReadPool {
    path: PathBuf,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct PoolState {
    idle: Vec<Connection>,
    open: usize,
}

impl ReadPool {
    fn new(path: PathBuf) -> Self {
        ReadPool {
            path,
            state: Mutex::new(PoolState::default()),
            freed: Condvar::new(),
        }
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| StoreError::Io("read pool poisoned".into()))?;
        loop {
            if let Some(c) = state.idle.pop() {
                return Ok(c);
            }
            if state.open < READERS {
                state.open += 1;
                drop(state);
                return self.open().inspect_err(|_| {
                    if let Ok(mut s) = self.state.lock() {
                        s.open -= 1;
                    }
                });
            }
            state = self
                .freed
                .wait(state)
                .map_err(|_| StoreError::Io("read pool poisoned".into()))?;
        }
    }

    fn put(&self, conn: Connection) {
        if let Ok(mut state) = self.state.lock() {
            state.idle.push(conn);
            self.freed.notify_one();
        }
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA query_only = ON;")?;
        Ok(conn)
    }
}
