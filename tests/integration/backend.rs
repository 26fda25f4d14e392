//! Which store backend the suite runs on. By default every test's store is a SQLite
//! file in its workspace; with `FUNNEL_TEST_BACKEND=postgres` the same tests run
//! against the real PostgreSQL (`FUNNEL_TEST_PG`, default
//! `postgres://root@127.0.0.1:5432/test`), each workspace in a schema of its own
//! that the store creates on first open. The binary is pointed at the same schema
//! through `FUNNEL_STORE_URL`.

use std::path::{Path, PathBuf};
use std::process::Command;

use funnel::model::config::Synchronous;
use funnel::store::db::{FromValue, Params};
use funnel::store::{Store, StoreLocation};

pub fn is_postgres() -> bool {
    std::env::var("FUNNEL_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

pub fn pg_url() -> String {
    std::env::var("FUNNEL_TEST_PG").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

/// A URL of the test server that works in `schema`.
pub fn url_in_schema(schema: &str) -> String {
    let url = pg_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// The schema of the workspace at `root`: named after this test process and the
/// folder, so the binary and the test find the same one, and no two tests share.
fn schema_of(root: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    canonical.hash(&mut h);
    format!("ft_{}_{:016x}", run_id(), h.finish())
}

/// This run's part of schema names: the test process's id, or the parent's when a
/// test spawns a copy of the test binary as its child (`FUNNEL_TEST_RUN`).
pub fn run_id() -> String {
    std::env::var("FUNNEL_TEST_RUN").unwrap_or_else(|_| std::process::id().to_string())
}

/// The store of the workspace at `root`.
pub fn location(root: &Path) -> StoreLocation {
    if is_postgres() {
        StoreLocation::Postgres {
            url: url_in_schema(&schema_of(root)),
        }
    } else {
        StoreLocation::Sqlite {
            path: root.join(".funnel/funnel.db"),
            synchronous: Synchronous::Full,
        }
    }
}

/// Opens (creating and migrating) the store of the workspace at `root`.
pub fn open(root: &Path) -> Store {
    let location = location(root);
    Store::open_blocking(&location)
        .unwrap_or_else(|e| panic!("open the store ({}): {e}", location.describe()))
}

/// The workspace a command run in `cwd` with `args` works on: `--workspace`, or the
/// nearest folder up from `cwd` with a funnel.yaml, or `cwd` itself.
pub fn workspace_of(cwd: &Path, args: &[&str]) -> PathBuf {
    if let Some(i) = args.iter().position(|a| *a == "--workspace")
        && let Some(ws) = args.get(i + 1)
    {
        return cwd.join(ws);
    }
    cwd.ancestors()
        .find(|d| d.join("funnel.yaml").is_file())
        .unwrap_or(cwd)
        .to_path_buf()
}

/// Points the binary at the store of the workspace at `root`.
pub fn apply(cmd: &mut Command, root: &Path) {
    if is_postgres() {
        cmd.env("FUNNEL_STORE_URL", url_in_schema(&schema_of(root)));
    } else {
        cmd.env_remove("FUNNEL_STORE_URL");
    }
}

/// The first column of the one row `sql` returns, from the store of `root`.
pub fn scalar<T: FromValue>(root: &Path, sql: &str, params: Params<'_>) -> T {
    open(root)
        .read(|db| db.query_row(sql, params, |r| r.get(0)))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The first column of every row `sql` returns, from the store of `root`.
pub fn column<T: FromValue>(root: &Path, sql: &str) -> Vec<T> {
    open(root)
        .read(|db| {
            let mut stmt = db.prepare(sql)?;
            let rows = stmt.query_map(&[], |r| r.get(0))?;
            rows.collect()
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Runs a statement on the store of `root`, outside the product's code paths (a
/// test setting up a state or damaging one).
pub fn execute(root: &Path, sql: &str) {
    let owned = sql.to_string();
    open(root)
        .write(move |db| db.execute_batch(&owned))
        .wait()
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// On PostgreSQL, the tables of the store of `root` with a row whose text holds
/// `needle` (any case): what a search of the SQLite file's bytes finds there.
pub fn tables_containing(root: &Path, needle: &[u8]) -> Vec<String> {
    if !is_postgres() {
        return Vec::new();
    }
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    let tables: Vec<String> = column(
        root,
        "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1",
    );
    tables
        .into_iter()
        .filter(|t| {
            scalar::<i64>(
                root,
                &format!("SELECT count(*) FROM {t} WHERE position(?1 in lower({t}::text)) > 0"),
                funnel::db_params![needle],
            ) > 0
        })
        .map(|t| format!("table {t}"))
        .collect()
}
