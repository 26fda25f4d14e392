//! The twin migration sets, embedded in the binary: `migrations/sqlite/` and
//! `migrations/postgres/` share version numbers and meaning (a test compares the
//! schemas they produce), and refinery applies them, recording each in
//! `refinery_schema_history`. Applying is idempotent; a migration file edited after
//! it was applied is refused (its checksum diverges).

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

/// Applies every pending SQLite migration; returns how many ran.
pub fn sqlite_migrate(conn: &mut Connection) -> Result<usize, StoreError> {
    let report = sqlite_set::migrations::runner()
        .set_grouped(true)
        .run(conn)
        .map_err(error)?;
    Ok(report.applied_migrations().len())
}

/// Applies every pending PostgreSQL migration; returns how many ran.
pub async fn postgres_migrate(client: &mut tokio_postgres::Client) -> Result<usize, StoreError> {
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
    fn both_sets_have_the_same_versions_and_names() {
        let (mut sqlite, mut postgres) = super::embedded();
        sqlite.sort();
        postgres.sort();
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, postgres, "every migration needs its twin");
    }
}
