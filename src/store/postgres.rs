//! The PostgreSQL backend: connections, migrations, the writer and the read pool.
//!
//! Writes go through the same group-commit writer as SQLite's (one transaction per
//! batch of jobs, a savepoint each), on a connection of its own; reads take a
//! connection from a small pool. Several processes may share one database: work is
//! claimed with `FOR UPDATE SKIP LOCKED`, so their writers do not wait on each
//! other. To work in one schema, give `options=-c search_path=NAME` in the URL
//! (libpq syntax).

use std::sync::{Arc, Condvar, Mutex};

use tokio_postgres::{Client, NoTls};

use super::StoreError;
use super::db::Db;
use super::pg_conn::PgConn;
use super::writer::{WriteConn, WriteTicket, Writer, WriterThread};

/// Writer connections, each with a thread and group commit of its own, taking
/// batches from one queue (`FUNNEL_PG_WRITERS` changes it, for measurements).
fn writers() -> usize {
    std::env::var("FUNNEL_PG_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=16).contains(n))
        .unwrap_or(WRITERS)
}

const WRITERS: usize = 2;

/// Read connections kept open at most.
const READERS: usize = 4;

/// An open PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: String,
    writers: usize,
    writer: Writer,
    readers: ReadPool,
    // Declared last: joined after the writer handle is dropped.
    _threads: Vec<WriterThread>,
}

impl PgStore {
    /// Connects to `url`, creates the schema its `search_path` names if needed and
    /// applies pending migrations. Blocking: call it off async tasks.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let mut conn = PgConn::connect(url)?;
        conn.prepare_schema()?;
        let mut conns = vec![WriteConn::Postgres(Box::new(conn))];
        for _ in 1..writers() {
            conns.push(WriteConn::Postgres(Box::new(PgConn::connect(url)?)));
        }
        let writers = conns.len();
        let (writer, threads) = Writer::start_pool(conns)?;
        Ok(PgStore {
            inner: Arc::new(Inner {
                url: url.to_string(),
                writers,
                writer,
                readers: ReadPool::new(url.to_string()),
                _threads: threads,
            }),
        })
    }

    /// Its writer connections.
    pub fn writers(&self) -> usize {
        self.inner.writers
    }

    /// The URL it was opened with (secrets included: never print it).
    pub(super) fn url(&self) -> &str {
        &self.inner.url
    }

    /// The URL with its password hidden.
    pub fn url_for_display(&self) -> String {
        without_password(&self.inner.url)
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

    /// Queues a write that changes many rows, in a transaction of its own.
    pub fn write_alone<T, F>(&self, f: F) -> WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.writer.write_alone(f)
    }

    /// `VACUUM (ANALYZE)` on the store's own tables (not the rest of the database),
    /// on a pooled connection: VACUUM cannot run inside the writer's transactions.
    pub fn vacuum(&self) -> Result<(), StoreError> {
        let tables: Vec<String> = self.read(|db| {
            let mut stmt = db.prepare(
                "SELECT quote_ident(tablename) FROM pg_tables \
                 WHERE schemaname = current_schema() ORDER BY 1",
            )?;
            let rows = stmt.query_map(super::db::params![], |r| r.get(0))?;
            rows.collect()
        })?;
        if tables.is_empty() {
            return Ok(());
        }
        self.read(|db| db.execute_batch(&format!("VACUUM (ANALYZE) {}", tables.join(", "))))
    }

    /// Runs `f` on a pooled connection. Blocking: async callers use `spawn_blocking`.
    pub fn read<T>(
        &self,
        f: impl FnOnce(Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.inner.readers.take()?;
        let result = f(Db::Postgres(&conn));
        self.inner.readers.put(conn);
        result
    }
}

/// Messages of a connection, which drive it while they are read.
pub(super) type Messages = std::pin::Pin<
    Box<
        dyn futures_util::Stream<Item = Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>>
            + Send,
    >,
>;

/// Connects to `url`, with TLS as its `sslmode` asks (see `pg_tls`); the caller
/// reads the messages, which drives the connection.
pub(super) async fn connect_raw(url: &str) -> Result<(Client, Messages), StoreError> {
    let (rest, tls) = super::pg_tls::split(url)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| StoreError::Invalid(format!("the store URL: {e}")))?;
    config.ssl_mode(tls.ssl_mode());
    match tls.client_config()? {
        None => {
            let (client, mut connection) = config.connect(NoTls).await?;
            let messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            Ok((client, Box::pin(messages)))
        }
        Some(rustls) => {
            let make = tokio_postgres_rustls::MakeRustlsConnect::new(rustls);
            let (client, mut connection) = config.connect(make).await?;
            let messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            Ok((client, Box::pin(messages)))
        }
    }
}

/// Opens a client to `url` and drives its connection from a task on the current
/// runtime.
pub async fn connect(url: &str) -> Result<Client, StoreError> {
    use futures_util::StreamExt;
    let (client, mut messages) = connect_raw(url).await?;
    tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            if let Err(e) = message {
                tracing::warn!("PostgreSQL connection ended: {e}");
                break;
            }
        }
    });
    Ok(client)
}

/// A connection URL fit to print: the password replaced.
pub fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A bounded pool of blocking connections.
#[derive(Debug)]
struct ReadPool {
    url: String,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct PoolState {
    idle: Vec<PgConn>,
    open: usize,
}

impl ReadPool {
    fn new(url: String) -> Self {
        ReadPool {
            url,
            state: Mutex::new(PoolState::default()),
            freed: Condvar::new(),
        }
    }

    fn take(&self) -> Result<PgConn, StoreError> {
        let poisoned = |_| StoreError::Io("read pool poisoned".into());
        let mut state = self.state.lock().map_err(poisoned)?;
        loop {
            if let Some(c) = state.idle.pop() {
                return Ok(c);
            }
            if state.open < READERS {
                state.open += 1;
                drop(state);
                return PgConn::connect(&self.url).inspect_err(|_| {
                    if let Ok(mut s) = self.state.lock() {
                        s.open -= 1;
                    }
                });
            }
            state = self.freed.wait(state).map_err(poisoned)?;
        }
    }

    fn put(&self, conn: PgConn) {
        if let Ok(mut state) = self.state.lock() {
            if conn.client().is_closed() {
                // A broken connection is not reused; the next taker opens another.
                state.open -= 1;
            } else {
                state.idle.push(conn);
            }
            self.freed.notify_one();
        }
    }
}
