//! A migrated, empty store for the library's unit tests, on the backend the suite
//! runs on: in-memory SQLite by default, the real PostgreSQL under
//! `FUNNEL_TEST_BACKEND=postgres` (`FUNNEL_TEST_PG`, default
//! `postgres://root@127.0.0.1:5432/test`), in a schema of its own that is dropped
//! when the test ends. The integration suite's `tests/integration/backend.rs` does
//! the same for whole workspaces.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::StoreError;
use super::db::Db;
use super::pg_conn::PgConn;

/// One test's store.
#[derive(Debug)]
pub struct TestDb {
    conn: Conn,
}

#[derive(Debug)]
enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres { conn: Box<PgConn>, schema: String },
}

/// Whether this run's unit tests use PostgreSQL.
pub fn is_postgres() -> bool {
    std::env::var("FUNNEL_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

fn pg_url() -> String {
    std::env::var("FUNNEL_TEST_PG").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

impl TestDb {
    /// Opens a fresh store; panics (failing the test) when it cannot, PostgreSQL
    /// included: a run that asked for it never skips.
    pub fn open() -> TestDb {
        match Self::try_open() {
            Ok(db) => db,
            Err(e) => panic!("cannot open the test store: {e}"),
        }
    }

    fn try_open() -> Result<TestDb, StoreError> {
        if !is_postgres() {
            return Ok(TestDb {
                conn: Conn::Sqlite(super::sqlite::in_memory()?),
            });
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let schema = format!(
            "ft_unit_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let url = pg_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        let mut conn = PgConn::connect(&format!("{url}{sep}options=-c%20search_path%3D{schema}"))?;
        // A schema left by an earlier run of a process with the same id.
        conn.execute_batch(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))?;
        conn.prepare_schema()?;
        Ok(TestDb {
            conn: Conn::Postgres {
                conn: Box::new(conn),
                schema,
            },
        })
    }

    pub fn db(&self) -> Db<'_> {
        match &self.conn {
            Conn::Sqlite(c) => Db::Sqlite(c),
            Conn::Postgres { conn, .. } => Db::Postgres(conn),
        }
    }

    /// Runs `f` in a transaction that commits when it returns `Ok`, as the store's
    /// writers do. Panics when the store cannot begin or commit.
    pub fn transaction<T, E>(&self, f: impl FnOnce(Db<'_>) -> Result<T, E>) -> Result<T, E> {
        let db = self.db();
        if let Err(e) = db.execute_batch("BEGIN") {
            panic!("begin: {e}");
        }
        if let Conn::Postgres { conn, .. } = &self.conn {
            conn.set_in_transaction(true);
        }
        let out = f(db);
        if let Conn::Postgres { conn, .. } = &self.conn {
            conn.set_in_transaction(false);
            if out.is_ok() {
                if let Err(e) = super::counters::flush(conn) {
                    panic!("counters: {e}");
                }
            } else {
                super::counters::forget_after(db, 0);
            }
        }
        match out {
            Ok(v) => {
                if let Err(e) = db.execute_batch("COMMIT") {
                    panic!("commit: {e}");
                }
                Ok(v)
            }
            Err(e) => {
                let _ = db.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Conn::Postgres { conn, schema } = &self.conn {
            let _ = conn.execute_batch(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}
