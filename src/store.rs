//! The run-time store: contacts, activities, executions, timers, email sends,
//! analytics events and the audit log, in SQLite (the embedded default) or
//! PostgreSQL, behind one interface.
//!
//! Owns the schema (twin migration sets under `migrations/`, applied with refinery),
//! the SQLite write path (one writer thread, group commit: [`writer`]), the read
//! pool, backup and restore, and the operations the engine, CRM, email, daemon and TUI
//! call. It does not decide what to write; those modules do.

pub mod claims;
pub mod counters;
pub mod db;
pub mod dialect;
pub mod maintain;
pub mod migrations;
pub mod ops;
pub mod pg_backup;
pub mod pg_conn;
pub mod pg_tls;
pub mod postgres;
pub mod search;
pub mod sqlite;
#[cfg(test)]
pub mod test_db;
pub mod timers;
pub mod timing;
pub mod tuning;
pub mod wakeups;
pub mod writer;

use std::path::{Path, PathBuf};

use crate::model::config::{StoreBackend, Synchronous, WorkspaceConfig};

pub use ops::Store;
pub use ops::{ActivityRow, ContactRow, NewActivity, NewContact};
pub use sqlite::SqliteStore;

/// The default SQLite file, relative to the workspace root.
pub const DEFAULT_PATH: &str = ".funnel/funnel.db";

/// The environment variable that points a workspace at a PostgreSQL store,
/// overriding funnel.yaml.
pub const STORE_URL_ENV: &str = "FUNNEL_STORE_URL";

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite: {0}")]
    Sqlite(String),
    /// Another process held SQLite's write lock past the busy timeout: nothing was
    /// done, and the same work succeeds when tried again.
    #[error("SQLite: {0}")]
    Busy(String),
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    #[error("migrations: {0}")]
    Migration(String),
    #[error("{0}")]
    Io(String),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("{0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A query that had to return a row returned none.
    #[error("no row")]
    NoRows,
    /// A column did not hold what the code reads from it.
    #[error("unreadable column: {0}")]
    Decode(String),
    #[error("environment variable {0} is not set (the store URL refers to it)")]
    MissingEnv(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if matches!(e, rusqlite::Error::QueryReturnedNoRows) {
            return StoreError::NoRows;
        }
        if matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        ) {
            return StoreError::Busy(e.to_string());
        }
        StoreError::Sqlite(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's own message (with its detail) says more than the Display.
        match e.as_db_error() {
            Some(db) => StoreError::Postgres(format!("{}: {}", db.code().code(), db.message())),
            None => {
                // A parameter that would not serialize says why in its source.
                let mut text = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    text.push_str(": ");
                    text.push_str(&c.to_string());
                    cause = c.source();
                }
                StoreError::Postgres(text)
            }
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// Where the store is and how it writes, resolved from funnel.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite {
        path: PathBuf,
        synchronous: Synchronous,
    },
    Postgres {
        url: String,
    },
}

impl StoreLocation {
    /// The store a workspace's settings name. `${ENV}` references are resolved here,
    /// at run time, never stored.
    /// `FUNNEL_STORE_URL`, when set, overrides the file: a deployment (or CI) points
    /// the same workspace at its PostgreSQL without editing funnel.yaml.
    pub fn from_config(root: &Path, config: Option<&WorkspaceConfig>) -> Result<Self, StoreError> {
        if let Some(url) = std::env::var(STORE_URL_ENV).ok().filter(|u| !u.is_empty()) {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(StoreError::Invalid(format!(
                    "{STORE_URL_ENV} must be a postgres:// URL (unset it to use funnel.yaml's store)"
                )));
            }
            return Ok(StoreLocation::Postgres { url });
        }
        let store = config.and_then(|c| c.store.as_ref());
        match store.map(|s| s.backend).unwrap_or_default() {
            StoreBackend::Sqlite => {
                let rel = store
                    .and_then(|s| s.path.clone())
                    .unwrap_or_else(|| DEFAULT_PATH.to_string());
                Ok(StoreLocation::Sqlite {
                    path: root.join(rel),
                    synchronous: store
                        .and_then(|s| s.synchronous)
                        .unwrap_or(Synchronous::Full),
                })
            }
            StoreBackend::Postgres => {
                let reference = store.and_then(|s| s.url.as_ref()).ok_or_else(|| {
                    StoreError::Invalid("the postgres backend needs `url`".into())
                })?;
                Ok(StoreLocation::Postgres {
                    url: resolve_env(reference.as_str())?,
                })
            }
        }
    }
}

impl StoreLocation {
    /// Where the store is, fit to print (a URL's password hidden).
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Sqlite { path, .. } => format!("SQLite at {}", path.display()),
            StoreLocation::Postgres { url } => {
                format!("PostgreSQL at {}", postgres::without_password(url))
            }
        }
    }
}

/// Resolves a `${NAME}` reference from the environment.
pub fn resolve_env(reference: &str) -> Result<String, StoreError> {
    match reference
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
    {
        Some(name) => std::env::var(name).map_err(|_| StoreError::MissingEnv(name.to_string())),
        None => Ok(reference.to_string()),
    }
}

/// Milliseconds since the Unix epoch: the store's time unit.
pub type UnixMs = i64;

/// Whether an error's text is PostgreSQL's report of a write conflict between
/// connections: a deadlock it broke by failing this transaction (`40P01`), or a
/// serialization failure (`40001`). The work itself was fine; run again, it
/// succeeds. (Errors keep the server's SQLSTATE at the front of their message,
/// through every layer that wraps them.)
pub fn is_conflict(message: &str) -> bool {
    message.contains("40P01:") || message.contains("40001:")
}

impl StoreError {
    /// Whether the same work would succeed if run again: SQLite's write lock held
    /// by another process, or a PostgreSQL deadlock or serialization failure.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Busy(_) => true,
            StoreError::Postgres(m) => is_conflict(m),
            _ => false,
        }
    }
}

/// The wall clock, for the shells; the core takes times as arguments.
pub fn now_ms() -> UnixMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod conflict_tests {
    #[test]
    fn deadlocks_and_serialization_failures_are_conflicts_others_are_not() {
        let deadlock = "PostgreSQL: 40P01: deadlock detected in `INSERT INTO site_analytics …`";
        assert!(super::is_conflict(deadlock));
        assert!(super::is_conflict(&format!("form post failed: {deadlock}")));
        assert!(super::is_conflict(
            "PostgreSQL: 40001: could not serialize access due to concurrent update"
        ));
        assert!(!super::is_conflict(
            "PostgreSQL: 23505: duplicate key value violates unique constraint"
        ));
        assert!(!super::is_conflict("SQLite: database is locked"));
    }

    #[test]
    fn a_write_lock_held_by_another_connection_is_a_transient_busy_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("busy.db");
        let holder = rusqlite::Connection::open(&path).expect("open");
        holder
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); BEGIN IMMEDIATE")
            .expect("hold the write lock");
        let other = rusqlite::Connection::open(&path).expect("open");
        other
            .busy_timeout(std::time::Duration::ZERO)
            .expect("timeout");
        let e = super::StoreError::from(other.execute_batch("BEGIN IMMEDIATE").expect_err("busy"));
        assert!(matches!(e, super::StoreError::Busy(_)), "{e:?}");
        assert!(e.is_transient());
        let broken = super::StoreError::from(other.execute_batch("SELEC 1").expect_err("syntax"));
        assert!(!broken.is_transient(), "{broken:?}");
    }
}
