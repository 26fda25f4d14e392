//! Counters that many writes bump (a site's day of page views and
//! conversions, a component's day): on PostgreSQL a bump inside a writer's
//! transaction waits in the connection until just before the commit and is
//! written once per row then, in one order. Written at once, the first bump
//! locked the day's row from a batch's first post to its commit, so the
//! pool's other writer waited for the whole batch at its own first post
//! (the two writers ran one after the other). SQLite has one writer: a bump
//! is written at once.

use std::collections::BTreeMap;

use super::StoreError;
use super::db::{Db, ToValue};
use super::pg_conn::PgConn;

/// One counter: a row of `table` found by `keys`, its `column` bumped.
/// Table and column names are the caller's constants, never input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Counter {
    pub table: &'static str,
    pub column: &'static str,
    pub keys: Vec<(&'static str, Key)>,
}

/// A key column's value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Text(String),
    Int(i64),
}

impl Counter {
    /// The upsert that adds its last parameter to the row.
    fn sql(&self) -> String {
        let names: Vec<&str> = self.keys.iter().map(|(k, _)| *k).collect();
        let marks: Vec<String> = (1..=names.len() + 1).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO {table} ({keys}, {column}) VALUES ({marks}) \
             ON CONFLICT ({keys}) DO UPDATE SET {column} = {table}.{column} + excluded.{column}",
            table = self.table,
            column = self.column,
            keys = names.join(", "),
            marks = marks.join(", "),
        )
    }

    fn write(&self, db: Db<'_>, by: i64) -> Result<(), StoreError> {
        let mut values: Vec<&dyn ToValue> = self
            .keys
            .iter()
            .map(|(_, k)| match k {
                Key::Text(t) => t as &dyn ToValue,
                Key::Int(i) => i as &dyn ToValue,
            })
            .collect();
        values.push(&by);
        db.prepare_cached(&self.sql())?.execute(&values)?;
        Ok(())
    }
}

/// Adds one to `counter`: now, or before the writer's transaction commits.
pub fn bump(db: Db<'_>, counter: Counter) -> Result<(), StoreError> {
    match db {
        Db::Postgres(conn) if conn.in_transaction() => {
            conn.counters().borrow_mut().push(counter);
            Ok(())
        }
        _ => counter.write(db, 1),
    }
}

/// How many bumps wait (a job's savepoint notes it, to forget its own bumps
/// if it rolls back).
pub(super) fn mark(db: Db<'_>) -> usize {
    match db {
        Db::Postgres(conn) => conn.counters().borrow().len(),
        Db::Sqlite(_) => 0,
    }
}

/// Forgets the bumps after `mark` (their job rolled back).
pub(super) fn forget_after(db: Db<'_>, mark: usize) {
    if let Db::Postgres(conn) = db {
        conn.counters().borrow_mut().truncate(mark);
    }
}

/// Writes the waiting bumps, one statement per row in the rows' order (two
/// writers flushing lock rows in the same order, so never each other's
/// in a cycle). Called just before the commit; the bumps are gone either way.
pub(super) fn flush(conn: &PgConn) -> Result<(), StoreError> {
    let waiting = std::mem::take(&mut *conn.counters().borrow_mut());
    if waiting.is_empty() {
        return Ok(());
    }
    let mut rows: BTreeMap<Counter, i64> = BTreeMap::new();
    for c in waiting {
        *rows.entry(c).or_default() += 1;
    }
    for (counter, by) in &rows {
        counter.write(Db::Postgres(conn), *by)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_is_one_upsert_adding_its_amount() {
        let c = Counter {
            table: "component_analytics",
            column: "views",
            keys: vec![
                ("site_id", Key::Text("demo".into())),
                ("component_id", Key::Text("hero".into())),
                ("day", Key::Int(20_000)),
            ],
        };
        assert_eq!(
            c.sql(),
            "INSERT INTO component_analytics (site_id, component_id, day, views) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (site_id, component_id, day) DO UPDATE SET views = component_analytics.views + excluded.views"
        );
    }
}
