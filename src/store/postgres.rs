//! The PostgreSQL backend: a connection, its migrations, and the schema it works in.
//!
//! For now one connection (the operations in `ops` run one statement each); a pool
//! and `SELECT … FOR UPDATE SKIP LOCKED` work claiming come with the multi-daemon
//! issue. Connections are made without TLS: the server is expected on loopback or a
//! private network until the rustls connector is added.

use std::sync::Arc;

use tokio_postgres::{Client, NoTls};

use super::StoreError;

/// An open PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    client: Arc<Client>,
}

impl PgStore {
    /// Connects to `url` and applies pending migrations. A `schema` query parameter
    /// of the URL is not standard; to work in one schema, give `options=-c
    /// search_path=NAME` in the URL (libpq syntax).
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let (mut client, connection) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("PostgreSQL connection ended: {e}");
            }
        });
        super::migrations::postgres_migrate(&mut client).await?;
        Ok(PgStore {
            client: Arc::new(client),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}
