//! A blocking PostgreSQL connection for [`super::db::Db`]: a tokio-postgres client
//! driven by a runtime of its own on the calling thread, with its prepared
//! statements cached.
//!
//! Each call blocks the thread it is made on (the store runs these on writer and
//! reader threads, never on an async task: a runtime cannot block inside another).

use tokio_postgres::{Client, Statement};

use super::StoreError;
use super::db::{Params, PgParam, StatementCache, to_postgres};

/// One open connection.
pub struct PgConn {
    client: Client,
    cache: StatementCache,
    /// Whether the store's writer has a transaction open on it.
    in_tx: std::cell::Cell<bool>,
    // Dropped last: the connection's task lives on it.
    rt: tokio::runtime::Runtime,
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
            rt,
        })
    }

    /// The async client, for work the blocking interface does not cover (COPY).
    pub fn client(&self) -> &Client {
        &self.client
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

    pub(super) fn prepare_cached(&self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s);
        }
        let stmt = self.prepare(sql)?;
        self.cache.put(sql, stmt.clone());
        Ok(stmt)
    }

    pub(super) fn prepare(&self, sql: &str) -> Result<Statement, StoreError> {
        let translated = to_postgres(sql);
        Ok(self.rt.block_on(self.client.prepare(&translated))?)
    }

    pub(super) fn execute(&self, stmt: &Statement, params: Params<'_>) -> Result<u64, StoreError> {
        let bound: Vec<PgParam<'_>> = params.iter().map(|p| PgParam(p.to_value())).collect();
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = bound
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        Ok(self.rt.block_on(self.client.execute(stmt, &refs))?)
    }

    pub(super) fn query(
        &self,
        stmt: &Statement,
        params: Params<'_>,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let bound: Vec<PgParam<'_>> = params.iter().map(|p| PgParam(p.to_value())).collect();
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = bound
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        Ok(self.rt.block_on(self.client.query(stmt, &refs))?)
    }

    pub(super) fn execute_batch(&self, sql: &str) -> Result<(), StoreError> {
        self.rt.block_on(self.client.batch_execute(sql))?;
        // DDL may change what cached statements return.
        self.cache.clear();
        Ok(())
    }
}
