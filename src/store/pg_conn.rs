//! A blocking PostgreSQL connection for [`super::db::Db`]: a tokio-postgres client
//! driven by a runtime of its own on the calling thread, with its prepared
//! statements cached.
//!
//! Each call blocks the thread it is made on (the store runs these on writer and
//! reader threads, never on an async task: a runtime cannot block inside another).

use tokio_postgres::{Client, Statement};

use super::StoreError;
use super::db::{Params, PgParam, StatementCache, to_postgres};

/// A prepared statement with its text, which errors name.
#[derive(Debug, Clone)]
pub(super) struct PgStatement {
    pub(super) stmt: Statement,
    sql: std::sync::Arc<str>,
}

/// One open connection.
pub struct PgConn {
    client: Client,
    cache: StatementCache,
    /// Whether the store's writer has a transaction open on it.
    in_tx: std::cell::Cell<bool>,
    /// Counter bumps waiting for the writer's commit (`store::counters`).
    counters: std::cell::RefCell<Vec<super::counters::Counter>>,
    // Dropped last: the connection's task lives on it.
    rt: OwnRuntime,
}

/// The connection's runtime, shut down without blocking when dropped: a store may
/// be dropped on an async task, where blocking on a runtime's shutdown panics.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for OwnRuntime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &Self::Target {
        // Only `Drop` takes it out.
        self.0.as_ref().expect("runtime present until drop")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgConn")
    }
}

impl PgConn {
    /// Connects to `url` (libpq syntax; TLS as its `sslmode` says).
    pub fn connect(url: &str) -> Result<PgConn, StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let client = rt.block_on(async {
            let client = super::postgres::connect(url).await?;
            Ok::<_, StoreError>(client)
        })?;
        Ok(PgConn {
            client,
            cache: StatementCache::default(),
            in_tx: std::cell::Cell::new(false),
            counters: std::cell::RefCell::default(),
            rt: OwnRuntime(Some(rt)),
        })
    }

    /// The async client, for work the blocking interface does not cover (COPY).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the schema the URL's `search_path` names when it does not exist (a
    /// workspace may live in a schema of a shared database), then applies pending
    /// migrations. Returns how many ran.
    pub(super) fn prepare_schema(&mut self) -> Result<usize, StoreError> {
        let rt = &self.rt;
        let client = &mut self.client;
        rt.block_on(async {
            let current: Option<String> = client
                .query_one("SELECT current_schema()", &[])
                .await?
                .get(0);
            if current.is_none() {
                let path: String = client.query_one("SHOW search_path", &[]).await?.get(0);
                let first = path
                    .split(',')
                    .map(|s| s.trim().trim_matches('"'))
                    .find(|s| !s.is_empty() && *s != "$user")
                    .ok_or_else(|| {
                        StoreError::Invalid(format!("no schema to create in search_path `{path}`"))
                    })?;
                let quoted = format!("\"{}\"", first.replace('"', "\"\""));
                client
                    .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}"))
                    .await?;
            }
            super::migrations::postgres_migrate(client).await
        })
    }

    /// Runs `f` to completion on this connection's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub(super) fn set_in_transaction(&self, open: bool) {
        self.in_tx.set(open);
    }

    pub(super) fn in_transaction(&self) -> bool {
        self.in_tx.get()
    }

    pub(super) fn counters(&self) -> &std::cell::RefCell<Vec<super::counters::Counter>> {
        &self.counters
    }

    pub(super) fn prepare_cached(&self, sql: &str) -> Result<PgStatement, StoreError> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s);
        }
        let stmt = self.prepare(sql)?;
        self.cache.put(sql, stmt.clone());
        Ok(stmt)
    }

    pub(super) fn prepare(&self, sql: &str) -> Result<PgStatement, StoreError> {
        let translated = to_postgres(sql);
        match self.rt.block_on(self.client.prepare(&translated)) {
            Ok(stmt) => Ok(PgStatement {
                stmt,
                sql: translated.into(),
            }),
            Err(e) => Err(named(e, &translated)),
        }
    }

    pub(super) fn execute(
        &self,
        stmt: &PgStatement,
        params: Params<'_>,
    ) -> Result<u64, StoreError> {
        let bound: Vec<PgParam<'_>> = params.iter().map(|p| PgParam(p.to_value())).collect();
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = bound
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        self.rt
            .block_on(self.client.execute(&stmt.stmt, &refs))
            .map_err(|e| named(e, &stmt.sql))
    }

    pub(super) fn query(
        &self,
        stmt: &PgStatement,
        params: Params<'_>,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let bound: Vec<PgParam<'_>> = params.iter().map(|p| PgParam(p.to_value())).collect();
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = bound
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        self.rt
            .block_on(self.client.query(&stmt.stmt, &refs))
            .map_err(|e| named(e, &stmt.sql))
    }

    pub(super) fn execute_batch(&self, sql: &str) -> Result<(), StoreError> {
        self.rt.block_on(self.client.batch_execute(sql))?;
        // DDL may change what cached statements return.
        self.cache.clear();
        Ok(())
    }
}

/// A statement's error, naming the statement: the server's message alone rarely
/// says which.
fn named(e: tokio_postgres::Error, sql: &str) -> StoreError {
    match StoreError::from(e) {
        StoreError::Postgres(m) => StoreError::Postgres(format!("{m} in `{sql}`")),
        other => other,
    }
}
