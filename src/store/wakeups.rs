//! Wake-ups between processes that share a store.
//!
//! PostgreSQL: a transaction that stores work others may take (timers, outbox
//! messages) notifies the channel [`CHANNEL`]; the server delivers the
//! notification when the transaction commits, so a woken worker finds the work.
//! Each worker listens on a connection of its own and wakes at once instead of
//! at its next poll. Notifications a transaction repeats are delivered once.
//! SQLite: the processes are on one machine and a worker polls every second;
//! nothing to announce.

use std::time::Duration;

use futures_util::StreamExt;

use super::StoreError;
use super::db::{Db, params};
use super::ops::Store;

/// The notification channel.
pub const CHANNEL: &str = "funnel_work";

/// Announces, inside a write transaction, that it stores work others may take.
pub fn announce_work(db: Db<'_>) -> Result<(), StoreError> {
    if let Db::Postgres(_) = db {
        db.prepare_cached("SELECT pg_notify('funnel_work', '')")?
            .query_row(params![], |_| Ok(()))?;
    }
    Ok(())
}

impl Store {
    /// Calls `wake` whenever another process announces work, from a task on the
    /// current runtime that reconnects when its connection drops. `None` on
    /// SQLite. Abort the handle to stop listening.
    pub fn listen_for_work(
        &self,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let Store::Postgres(p) = self else {
            return None;
        };
        let url = p.url().to_string();
        Some(tokio::spawn(async move {
            loop {
                if let Err(e) = listen(&url, &wake).await {
                    tracing::warn!(error = %e, "work notifications lost; listening again in 1 s");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }
}

/// Listens until the connection ends.
async fn listen(url: &str, wake: &(impl Fn() + Send + Sync)) -> Result<(), StoreError> {
    let (client, mut messages) = super::postgres::connect_raw(url).await?;
    let listen = format!("LISTEN {CHANNEL}");
    let subscribe = client.batch_execute(&listen);
    tokio::pin!(subscribe);
    // The connection is driven by this loop: the LISTEN completes inside it.
    let mut subscribed = false;
    loop {
        tokio::select! {
            done = &mut subscribe, if !subscribed => {
                done?;
                subscribed = true;
                // Work announced before the LISTEN took effect is not missed.
                wake();
            }
            message = messages.next() => match message {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => wake(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
        }
    }
}
