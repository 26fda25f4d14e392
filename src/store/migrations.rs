//! The twin migration sets, embedded in the binary: `migrations/sqlite/` and
//! `migrations/postgres/` share version numbers and meaning (a test compares the
//! schemas they produce), and refinery applies them, recording each in
//! `refinery_schema_history`. Applying is idempotent; while migrations are pending,
//! a migration file edited after it was applied is refused (its checksum diverges).
//! A store already at [`LATEST`] is left alone without building refinery's runner,
//! which compiles a Unicode regex to read the file names (half a megabyte that a
//! process would keep, and a few milliseconds of every command's start).

use rusqlite::Connection;

use super::StoreError;

mod sqlite_set {
    refinery::embed_migrations!("migrations/sqlite");
}

mod postgres_set {
    refinery::embed_migrations!("migrations/postgres");
}

/// One migration, as `funnel db status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub version: i64,
    pub name: String,
    pub applied: bool,
}

fn error(e: refinery::Error) -> StoreError {
    StoreError::Migration(e.to_string())
}

/// The newest migration's version, read from the file names at build time.
pub const LATEST: i64 = include!(concat!(env!("OUT_DIR"), "/latest_migration.rs"));

/// Applies every pending SQLite migration; returns how many ran.
pub fn sqlite_migrate(conn: &mut Connection) -> Result<usize, StoreError> {
    let history: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'refinery_schema_history')",
        [],
        |r| r.get(0),
    )?;
    if history {
        let applied: Option<i64> = conn.query_row(
            "SELECT MAX(version) FROM refinery_schema_history",
            [],
            |r| r.get(0),
        )?;
        if applied == Some(LATEST) {
            return Ok(0);
        }
    }
    let report = sqlite_set::migrations::runner()
        .set_grouped(true)
        .run(conn)
        .map_err(error)?;
    Ok(report.applied_migrations().len())
}

/// Applies every pending PostgreSQL migration; returns how many ran.
pub async fn postgres_migrate(client: &mut tokio_postgres::Client) -> Result<usize, StoreError> {
    let row = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await?;
    if row.get::<_, bool>(0) {
        let row = client
            .query_one(
                "SELECT MAX(version)::int8 FROM refinery_schema_history",
                &[],
            )
            .await?;
        if row.get::<_, Option<i64>>(0) == Some(LATEST) {
            return Ok(0);
        }
    }
    let report = postgres_set::migrations::runner()
        .set_grouped(true)
        .run_async(client)
        .await
        .map_err(error)?;
    Ok(report.applied_migrations().len())
}

/// Every embedded migration of `backend` (`sqlite` or `postgres`), and whether
/// it is among the `applied` versions.
pub fn states(backend: &str, applied: &[i64]) -> Vec<MigrationState> {
    let runner = if backend == "postgres" {
        postgres_set::migrations::runner()
    } else {
        sqlite_set::migrations::runner()
    };
    runner
        .get_migrations()
        .iter()
        .map(|m| MigrationState {
            version: i64::from(m.version()),
            name: m.name().to_string(),
            applied: applied.contains(&i64::from(m.version())),
        })
        .collect()
}

/// Versions and names of one migration set.
pub type MigrationList = Vec<(i64, String)>;

/// The versions and names of both sets (SQLite, PostgreSQL), for the twin check.
pub fn embedded() -> (MigrationList, MigrationList) {
    let list = |r: refinery::Runner| {
        r.get_migrations()
            .iter()
            .map(|m| (i64::from(m.version()), m.name().to_string()))
            .collect::<Vec<_>>()
    };
    (
        list(sqlite_set::migrations::runner()),
        list(postgres_set::migrations::runner()),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn latest_is_the_newest_embedded_version() {
        let (sqlite, _) = super::embedded();
        let newest = sqlite.iter().map(|(v, _)| *v).max();
        assert_eq!(newest, Some(super::LATEST));
    }

    #[test]
    fn an_up_to_date_store_is_left_alone_and_a_behind_one_migrated() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        assert!(super::sqlite_migrate(&mut conn).expect("migrate") > 0);
        assert_eq!(super::sqlite_migrate(&mut conn).expect("again"), 0);
        // One migration undone and forgotten: the next open applies it again.
        conn.execute(
            "DELETE FROM refinery_schema_history WHERE version = ?1",
            [super::LATEST],
        )
        .expect("forget");
        assert_eq!(super::sqlite_migrate(&mut conn).expect("behind"), 1);
    }

    #[test]
    fn both_sets_have_the_same_versions_and_names() {
        let (mut sqlite, mut postgres) = super::embedded();
        sqlite.sort();
        postgres.sort();
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, postgres, "every migration needs its twin");
    }
}
