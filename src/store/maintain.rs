//! Keeping a store healthy, on either backend: integrity checks, compaction and
//! WAL checkpoints, backup and restore.

use std::path::Path;

use super::db::params;
use super::ops::Store;
use super::{StoreError, StoreLocation};

impl Store {
    /// The problems an integrity check finds; empty when the store is sound.
    /// SQLite: `integrity_check` and `foreign_key_check`. PostgreSQL enforces its
    /// constraints on every write, so its check looks for what can still go wrong:
    /// indexes left invalid by an interrupted build.
    pub fn check(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Sqlite(s) => s.check(),
            Store::Postgres(p) => p.read(|db| {
                let mut stmt = db.prepare(
                    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = current_schema() AND NOT i.indisvalid ORDER BY 1",
                )?;
                let rows = stmt.query_map(params![], |r| {
                    Ok(format!(
                        "index {} is invalid (rebuild it with REINDEX)",
                        r.get::<String>(0)?
                    ))
                })?;
                rows.collect()
            }),
        }
    }

    /// Compacts the store: SQLite rewrites the file and empties the WAL (through
    /// the writer, so no write is in flight); PostgreSQL vacuums and analyzes the
    /// store's tables.
    pub fn vacuum(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.vacuum().wait(),
            Store::Postgres(p) => p.vacuum(),
        }
    }

    /// Drops old copies of changed rows, after a privacy erasure: SQLite's WAL
    /// still holds the pages as they were until it is checkpointed and truncated;
    /// PostgreSQL keeps dead row versions until a vacuum.
    pub fn scrub_old_versions(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.checkpoint().wait(),
            Store::Postgres(p) => p.vacuum(),
        }
    }

    /// A consistent copy of the whole store at one moment, while writers go on:
    /// SQLite's online backup into a database file; PostgreSQL's rows in the text
    /// format of `pg_dump --data-only` (see `pg_backup`).
    pub fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.backup_to(dest),
            Store::Postgres(p) => super::pg_backup::backup(p.url(), dest),
        }
    }

    /// Replaces the whole store at `location` with the backup at `file`. SQLite:
    /// page by page into the live file, without opening it as a store first.
    pub fn restore(location: &StoreLocation, file: &Path) -> Result<(), StoreError> {
        match location {
            StoreLocation::Sqlite { path, .. } => super::sqlite::restore(file, path),
            // Migrated first: the backup's rows go into the current schema.
            StoreLocation::Postgres { url } => {
                drop(super::postgres::PgStore::open(url)?);
                super::pg_backup::restore(url, file)
            }
        }
    }

    /// The SQLite file, for commands that report its size.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Store::Sqlite(s) => Some(s.path()),
            Store::Postgres(_) => None,
        }
    }
}
