//! The few SQL fragments whose spelling differs by backend, named by what they
//! mean, for statements built above the store. Everything else is written once:
//! PostgreSQL has SQLite's scalar functions (`migrations/postgres/V8`, `V9`) and
//! `?N` placeholders are translated (`db.rs`).

use super::db::Db;

/// A subquery of one column, `id`: the integers of a JSON array bound as one
/// parameter (a list of ids of any length in one statement).
pub fn json_ids(db: Db<'_>) -> &'static str {
    db.pick(
        "SELECT value AS id FROM json_each(?)",
        "SELECT value::bigint AS id FROM jsonb_array_elements_text(?::jsonb)",
    )
}
