//! One synchronous SQL interface over both backends: [`Db`], a connection (or a
//! transaction on one) to SQLite or PostgreSQL, with prepared and cached statements,
//! rows and parameters shaped like rusqlite's.
//!
//! The domain modules write their statements once, in the subset both dialects
//! share: `?N` placeholders (rewritten to `$N` for PostgreSQL), `ON CONFLICT`,
//! `RETURNING`, and the few SQLite functions the PostgreSQL migrations define too
//! (`json`, `max(a, b)`, `instr`, `glob`; see `migrations/postgres/V8__*`). SQLite's
//! `INDEXED BY` hints are dropped on PostgreSQL, whose planner needs none. Values
//! cross the seam as [`Value`]s: integers, reals, text (JSON documents are text on
//! SQLite and JSONB on PostgreSQL: a parameter binds to the column's type, a
//! column reads back as text) and blobs. Where the dialects cannot share a
//! statement, the two versions sit side by side in the store module that owns it.
//!
//! Blocking: async callers run these on a blocking thread (the store's writers and
//! readers do).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::StoreError;
use super::pg_conn::PgConn;

/// A connection to either backend.
#[derive(Clone, Copy)]
pub enum Db<'c> {
    Sqlite(&'c rusqlite::Connection),
    Postgres(&'c PgConn),
}

impl std::fmt::Debug for Db<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Db::Sqlite(_) => "Db::Sqlite",
            Db::Postgres(_) => "Db::Postgres",
        })
    }
}

impl<'c> From<&'c rusqlite::Connection> for Db<'c> {
    fn from(c: &'c rusqlite::Connection) -> Self {
        Db::Sqlite(c)
    }
}

impl<'c> From<&'c PgConn> for Db<'c> {
    fn from(c: &'c PgConn) -> Self {
        Db::Postgres(c)
    }
}

/// A value crossing the seam, as a parameter or read from a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(Cow<'a, str>),
    Blob(Cow<'a, [u8]>),
}

impl Value<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }

    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Int(i) => Value::Int(i),
            Value::Real(r) => Value::Real(r),
            Value::Text(t) => Value::Text(Cow::Owned(t.into_owned())),
            Value::Blob(b) => Value::Blob(Cow::Owned(b.into_owned())),
        }
    }
}

/// A Rust value that binds as a statement parameter.
pub trait ToValue {
    fn to_value(&self) -> Value<'_>;
}

/// Statement parameters, in placeholder order.
pub type Params<'p> = &'p [&'p dyn ToValue];

/// Parameters for a statement, like rusqlite's macro of the same name.
#[macro_export]
macro_rules! db_params {
    () => { &[] as &[&dyn $crate::store::db::ToValue] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::db::ToValue),+] as &[&dyn $crate::store::db::ToValue] };
}
pub use crate::db_params as params;

/// Parameters from a list of values (SQL built at run time).
pub fn refs<T: ToValue>(values: &[T]) -> Vec<&dyn ToValue> {
    values.iter().map(|v| v as &dyn ToValue).collect()
}

impl ToValue for Value<'_> {
    fn to_value(&self) -> Value<'_> {
        match self {
            Value::Text(t) => Value::Text(Cow::Borrowed(t)),
            Value::Blob(b) => Value::Blob(Cow::Borrowed(b)),
            Value::Null => Value::Null,
            Value::Int(i) => Value::Int(*i),
            Value::Real(r) => Value::Real(*r),
        }
    }
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value<'_> {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_to_value!(i64, i32, i16, u32, u16, u8);

impl ToValue for usize {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToValue for u64 {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(Cow::Borrowed(self))
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(Cow::Borrowed(self))
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(Cow::Borrowed(self))
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(Cow::Borrowed(self))
    }
}

/// A JSON document binds as its text (JSONB on PostgreSQL).
impl ToValue for serde_json::Value {
    fn to_value(&self) -> Value<'_> {
        Value::Text(Cow::Owned(self.to_string()))
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value<'_> {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}

impl<T: ToValue + ?Sized> ToValue for Box<T> {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}

/// A Rust value read from a column.
pub trait FromValue: Sized {
    fn from_value(v: Value<'_>) -> Result<Self, String>;
}

impl FromValue for i64 {
    fn from_value(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(i),
            other => Err(format!("expected an integer, found {}", other.kind())),
        }
    }
}

macro_rules! narrow_int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value<'_>) -> Result<Self, String> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range for {}", stringify!($t)))
            }
        }
    )*};
}
narrow_int_from_value!(i32, i16, u64, u32, u16, u8, usize);

impl FromValue for bool {
    fn from_value(v: Value<'_>) -> Result<Self, String> {
        i64::from_value(v).map(|i| i != 0)
    }
}

impl FromValue for f64 {
    fn from_value(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Real(r) => Ok(r),
            Value::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {}", other.kind())),
        }
    }
}

impl FromValue for String {
    fn from_value(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Text(t) => Ok(t.into_owned()),
            other => Err(format!("expected text, found {}", other.kind())),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.into_owned()),
            Value::Text(t) => Ok(t.into_owned().into_bytes()),
            other => Err(format!("expected a blob, found {}", other.kind())),
        }
    }
}

/// A JSON document stored as text (SQLite) or JSONB (PostgreSQL); a NULL reads
/// as JSON null.
impl FromValue for serde_json::Value {
    fn from_value(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Null => Ok(serde_json::Value::Null),
            Value::Text(t) => serde_json::from_str(&t).map_err(|e| format!("stored JSON: {e}")),
            Value::Int(i) => Ok(i.into()),
            Value::Real(r) => Ok(r.into()),
            other => Err(format!("expected JSON, found {}", other.kind())),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value<'_>) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

impl FromValue for Value<'static> {
    fn from_value(v: Value<'_>) -> Result<Self, String> {
        Ok(v.into_owned())
    }
}

/// One row of a result.
#[derive(Clone, Copy)]
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r tokio_postgres::Row),
}

impl std::fmt::Debug for Row<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Row")
    }
}

impl Row<'_> {
    /// The value of column `idx` (from 0) as a `T`.
    pub fn get<T: FromValue>(&self, idx: usize) -> Result<T, StoreError> {
        let value = self.value(idx)?;
        T::from_value(value).map_err(|e| StoreError::Decode(format!("column {idx}: {e}")))
    }

    fn value(&self, idx: usize) -> Result<Value<'_>, StoreError> {
        match self {
            Row::Sqlite(r) => {
                use rusqlite::types::ValueRef;
                Ok(match r.get_ref(idx)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::Int(i),
                    ValueRef::Real(f) => Value::Real(f),
                    ValueRef::Text(t) => Value::Text(Cow::Borrowed(
                        std::str::from_utf8(t)
                            .map_err(|e| StoreError::Decode(format!("column {idx}: {e}")))?,
                    )),
                    ValueRef::Blob(b) => Value::Blob(Cow::Borrowed(b)),
                })
            }
            Row::Postgres(r) => Ok(r.try_get::<_, PgValue<'_>>(idx)?.0),
        }
    }

    /// How many columns the row has.
    pub fn len(&self) -> usize {
        match self {
            Row::Sqlite(r) => r.as_ref().column_count(),
            Row::Postgres(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `Option` for "no row": `query_row(...).optional()`.
pub trait OptionalRow<T> {
    fn optional(self) -> Result<Option<T>, StoreError>;
}

impl<T> OptionalRow<T> for Result<T, StoreError> {
    fn optional(self) -> Result<Option<T>, StoreError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<'c> Db<'c> {
    /// A statement, parsed (and on PostgreSQL prepared) once per connection.
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'c>, StoreError> {
        Ok(Stmt(match self {
            Db::Sqlite(c) => StmtInner::Sqlite(c.prepare_cached(sql)?),
            Db::Postgres(c) => StmtInner::Postgres(c, c.prepare_cached(sql)?),
        }))
    }

    /// A statement for one use (SQL built at run time).
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'c>, StoreError> {
        Ok(Stmt(match self {
            Db::Sqlite(c) => StmtInner::SqliteOnce(c.prepare(sql)?),
            Db::Postgres(c) => StmtInner::Postgres(c, c.prepare(sql)?),
        }))
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: Params<'_>) -> Result<usize, StoreError> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// The first row of a query, through `f`; [`StoreError::NoRows`] when none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        f: impl FnOnce(Row<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// Runs statements separated by `;`, without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(c) => c.execute_batch(sql),
        }
    }

    /// Whether no transaction is open (SQLite's autocommit mode).
    pub fn is_autocommit(&self) -> bool {
        match self {
            Db::Sqlite(c) => c.is_autocommit(),
            Db::Postgres(c) => !c.in_transaction(),
        }
    }

    /// The statement for this backend, where the dialects differ. Only the store
    /// chooses by backend; the code above it writes one statement.
    pub(crate) fn pick(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self {
            Db::Sqlite(_) => sqlite,
            Db::Postgres(_) => postgres,
        }
    }

    /// Which backend this is, for messages and for the store's own dialect choices.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}

/// A prepared statement.
pub struct Stmt<'c>(StmtInner<'c>);

enum StmtInner<'c> {
    Sqlite(rusqlite::CachedStatement<'c>),
    SqliteOnce(rusqlite::Statement<'c>),
    Postgres(&'c PgConn, super::pg_conn::PgStatement),
}

impl std::fmt::Debug for Stmt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stmt")
    }
}

fn sqlite_params(params: Params<'_>) -> Vec<SqliteParam<'_>> {
    params.iter().map(|p| SqliteParam(p.to_value())).collect()
}

impl<'c> Stmt<'c> {
    fn sqlite(&mut self) -> Option<&mut rusqlite::Statement<'c>> {
        match &mut self.0 {
            StmtInner::Sqlite(s) => Some(s),
            StmtInner::SqliteOnce(s) => Some(s),
            StmtInner::Postgres(..) => None,
        }
    }

    /// Runs the statement; the number of rows it changed.
    pub fn execute(&mut self, params: Params<'_>) -> Result<usize, StoreError> {
        if let StmtInner::Postgres(c, s) = &self.0 {
            return c.execute(s, params).map(|n| n as usize);
        }
        let s = self.sqlite().ok_or(StoreError::NoRows)?;
        let bound = sqlite_params(params);
        Ok(s.execute(rusqlite::params_from_iter(bound.iter()))?)
    }

    /// The first row, through `f`; [`StoreError::NoRows`] when there is none.
    pub fn query_row<T>(
        &mut self,
        params: Params<'_>,
        f: impl FnOnce(Row<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(r) => f(r),
            None => Err(StoreError::NoRows),
        }
    }

    /// Every row through `f`, lazily on SQLite.
    pub fn query_map<'s, T, F>(
        &'s mut self,
        params: Params<'_>,
        f: F,
    ) -> Result<MappedRows<'s, F>, StoreError>
    where
        F: FnMut(Row<'_>) -> Result<T, StoreError>,
    {
        Ok(MappedRows {
            rows: self.query(params)?,
            f,
        })
    }

    /// The rows of the result, to step through with [`Rows::next`].
    pub fn query(&mut self, params: Params<'_>) -> Result<Rows<'_>, StoreError> {
        if let StmtInner::Postgres(c, s) = &self.0 {
            let rows = c.query(s, params)?;
            return Ok(Rows(RowsInner::Postgres(rows.into_iter(), None)));
        }
        let s = self.sqlite().ok_or(StoreError::NoRows)?;
        let bound = sqlite_params(params);
        Ok(Rows(RowsInner::Sqlite(
            s.query(rusqlite::params_from_iter(bound.iter()))?,
        )))
    }

    /// The names of the result's columns.
    pub fn column_names(&self) -> Vec<String> {
        match &self.0 {
            StmtInner::Sqlite(s) => s.column_names().iter().map(|c| c.to_string()).collect(),
            StmtInner::SqliteOnce(s) => s.column_names().iter().map(|c| c.to_string()).collect(),
            StmtInner::Postgres(_, s) => s
                .stmt
                .columns()
                .iter()
                .map(|c| c.name().to_string())
                .collect(),
        }
    }

    /// How many parameters the statement takes.
    pub fn parameter_count(&self) -> usize {
        match &self.0 {
            StmtInner::Sqlite(s) => s.parameter_count(),
            StmtInner::SqliteOnce(s) => s.parameter_count(),
            StmtInner::Postgres(_, s) => s.stmt.params().len(),
        }
    }

    /// Whether the statement returns at least one row.
    pub fn exists(&mut self, params: Params<'_>) -> Result<bool, StoreError> {
        Ok(self.query(params)?.next()?.is_some())
    }
}

/// The rows of a query.
pub struct Rows<'s>(RowsInner<'s>);

enum RowsInner<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Postgres(
        std::vec::IntoIter<tokio_postgres::Row>,
        Option<tokio_postgres::Row>,
    ),
}

impl std::fmt::Debug for Rows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rows")
    }
}

impl Rows<'_> {
    /// The next row, or `None` at the end.
    #[allow(clippy::should_implement_trait)] // rows borrow from the cursor: not an Iterator
    pub fn next(&mut self) -> Result<Option<Row<'_>>, StoreError> {
        match &mut self.0 {
            RowsInner::Sqlite(rows) => Ok(rows.next()?.map(Row::Sqlite)),
            RowsInner::Postgres(iter, current) => {
                *current = iter.next();
                Ok(current.as_ref().map(Row::Postgres))
            }
        }
    }
}

/// Rows mapped through a function, as an iterator.
pub struct MappedRows<'s, F> {
    rows: Rows<'s>,
    f: F,
}

impl<F> std::fmt::Debug for MappedRows<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MappedRows")
    }
}

impl<T, F> Iterator for MappedRows<'_, F>
where
    F: FnMut(Row<'_>) -> Result<T, StoreError>,
{
    type Item = Result<T, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rows.next() {
            Ok(Some(r)) => Some((self.f)(r)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// A parameter as SQLite binds it.
struct SqliteParam<'a>(Value<'a>);

impl rusqlite::ToSql for SqliteParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match &self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// A parameter as PostgreSQL binds it: converted to the type the server inferred
/// for its placeholder, so one Rust value fits BIGINT, INTEGER, BOOLEAN, TEXT or
/// JSONB alike.
#[derive(Debug)]
pub(super) struct PgParam<'a>(pub(super) Value<'a>);

impl ToSql for PgParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let mismatch = || -> Box<dyn std::error::Error + Sync + Send> {
            format!("cannot bind {} to a {} parameter", self.0.kind(), ty.name()).into()
        };
        match &self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i).map_err(|_| mismatch())?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i).map_err(|_| mismatch())?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => i.to_string().to_sql(ty, out),
                Type::JSONB => {
                    out.put_u8(1);
                    out.put_slice(i.to_string().as_bytes());
                    Ok(IsNull::No)
                }
                _ => Err(mismatch()),
            },
            Value::Real(r) => match *ty {
                Type::FLOAT8 => r.to_sql(ty, out),
                Type::FLOAT4 => (*r as f32).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => r.to_string().to_sql(ty, out),
                Type::JSONB => {
                    out.put_u8(1);
                    out.put_slice(r.to_string().as_bytes());
                    Ok(IsNull::No)
                }
                _ => Err(mismatch()),
            },
            Value::Text(t) => match *ty {
                Type::JSONB => {
                    out.put_u8(1);
                    // JSONB refuses the NUL character (`\u0000`) that JSON allows.
                    if t.contains("\\u0000") {
                        out.put_slice(t.replace("\\u0000", "\\ufffd").as_bytes());
                    } else {
                        out.put_slice(t.as_bytes());
                    }
                    Ok(IsNull::No)
                }
                Type::INT8 => t.parse::<i64>().map_err(|_| mismatch())?.to_sql(ty, out),
                Type::FLOAT8 => t.parse::<f64>().map_err(|_| mismatch())?.to_sql(ty, out),
                Type::BYTEA => t.as_bytes().to_sql(ty, out),
                // TEXT, VARCHAR, NAME, JSON and the rest take the text as it is,
                // but for NUL, which PostgreSQL's text cannot hold: it becomes
                // U+FFFD, so a value with one is stored (or looked up) instead of
                // failing the whole statement.
                _ => {
                    if t.contains('\0') {
                        out.put_slice(t.replace('\0', "\u{fffd}").as_bytes());
                    } else {
                        out.put_slice(t.as_bytes());
                    }
                    Ok(IsNull::No)
                }
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.as_ref().to_sql(ty, out),
                _ => Err(mismatch()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A column as PostgreSQL sends it, decoded into a [`Value`] whatever its type.
struct PgValue<'a>(Value<'a>);

impl<'a> FromSql<'a> for PgValue<'a> {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let text = |b: &'a [u8]| -> Result<Value<'a>, Box<dyn std::error::Error + Sync + Send>> {
            Ok(Value::Text(Cow::Borrowed(std::str::from_utf8(b)?)))
        };
        Ok(PgValue(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::OID => Value::Int(i64::from(u32::from_sql(ty, raw)?)),
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::NUMERIC => numeric(raw)?,
            Type::JSONB => text(raw.get(1..).unwrap_or_default())?,
            Type::BYTEA => Value::Blob(Cow::Borrowed(raw)),
            // TEXT, VARCHAR, NAME, BPCHAR, JSON, UNKNOWN: text on the wire.
            _ => text(raw)?,
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A NUMERIC (what `sum` and `avg` of integers return) as an integer when it has
/// no fraction and fits, else as a real.
fn numeric(raw: &[u8]) -> Result<Value<'static>, Box<dyn std::error::Error + Sync + Send>> {
    let word = |i: usize| -> Result<i16, Box<dyn std::error::Error + Sync + Send>> {
        raw.get(i..i + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "short NUMERIC".into())
    };
    let ndigits = word(0)? as usize;
    let weight = i32::from(word(2)?);
    let sign = word(4)? as u16;
    if sign == 0xC000 {
        return Ok(Value::Real(f64::NAN));
    }
    let mut value = 0f64;
    let mut integral: i128 = 0;
    let mut exact = true;
    for d in 0..ndigits {
        let digit = i32::from(word(8 + 2 * d)?);
        let power = weight - d as i32;
        value += f64::from(digit) * 10000f64.powi(power);
        if power >= 0 {
            integral = integral
                .saturating_mul(10000)
                .saturating_add(i128::from(digit));
        } else if digit != 0 {
            exact = false;
        }
    }
    // Trailing zero groups are not sent: scale the integral part up to its weight.
    let sent_integral = (0..ndigits).filter(|d| weight - *d as i32 >= 0).count() as i32;
    for _ in sent_integral..=weight {
        integral = integral.saturating_mul(10000);
    }
    let negative = sign == 0x4000;
    if exact && let Ok(i) = i64::try_from(if negative { -integral } else { integral }) {
        return Ok(Value::Int(i));
    }
    Ok(Value::Real(if negative { -value } else { value }))
}

/// Rewrites SQLite-flavoured SQL for PostgreSQL: `?N` and `?` placeholders become
/// `$N`, and `INDEXED BY name` hints go. Quoted text is left alone.
pub(super) fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.char_indices().peekable();
    let mut next_bare = 0;
    let mut quote: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
                    digits.push(d);
                    chars.next();
                }
                if digits.is_empty() {
                    next_bare += 1;
                    digits = next_bare.to_string();
                }
                out.push('$');
                out.push_str(&digits);
            }
            'I' | 'i' if is_indexed_by(&sql[i..]) && boundary_before(sql, i) => {
                // Skip `INDEXED BY <name>`.
                let rest = &sql[i..];
                let after_by = rest[7..].trim_start();
                let after_by = after_by[2..].trim_start();
                let name_len = after_by
                    .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                    .unwrap_or(after_by.len());
                let skip = rest.len() - after_by.len() + name_len;
                let end = i + skip;
                while chars.peek().is_some_and(|(j, _)| *j < end) {
                    chars.next();
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn boundary_before(sql: &str, i: usize) -> bool {
    sql[..i]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
}

fn is_indexed_by(rest: &str) -> bool {
    let Some(head) = rest.get(..7) else {
        return false;
    };
    if !head.eq_ignore_ascii_case("indexed") {
        return false;
    }
    let after = &rest[7..];
    let trimmed = after.trim_start();
    trimmed.len() < after.len()
        && trimmed
            .get(..2)
            .is_some_and(|b| b.eq_ignore_ascii_case("by"))
        && trimmed[2..].starts_with(char::is_whitespace)
}

/// Statements a PostgreSQL connection has prepared, by their SQLite-flavoured text.
#[derive(Debug, Default)]
pub(super) struct StatementCache {
    map: RefCell<HashMap<Box<str>, super::pg_conn::PgStatement>>,
}

/// Most statements kept per connection: SQL built at run time must not grow the
/// cache without end.
const CACHE_CAP: usize = 512;

impl StatementCache {
    pub(super) fn get(&self, sql: &str) -> Option<super::pg_conn::PgStatement> {
        self.map.borrow().get(sql).cloned()
    }

    pub(super) fn put(&self, sql: &str, stmt: super::pg_conn::PgStatement) {
        let mut map = self.map.borrow_mut();
        if map.len() >= CACHE_CAP {
            map.clear();
        }
        map.insert(sql.into(), stmt);
    }

    pub(super) fn clear(&self) {
        self.map.borrow_mut().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered() {
        assert_eq!(
            to_postgres("SELECT a FROM t WHERE b = ?1 AND c = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = $12"
        );
        assert_eq!(to_postgres("VALUES (?, ?, ?)"), "VALUES ($1, $2, $3)");
    }

    #[test]
    fn quoted_question_marks_stay() {
        assert_eq!(
            to_postgres("SELECT '?1', \"a?\" FROM t WHERE x = ?1"),
            "SELECT '?1', \"a?\" FROM t WHERE x = $1"
        );
    }

    #[test]
    fn index_hints_go() {
        assert_eq!(
            to_postgres("SELECT id FROM contacts INDEXED BY contacts_by_email WHERE email = ?1"),
            "SELECT id FROM contacts  WHERE email = $1"
        );
        assert_eq!(
            to_postgres("SELECT reindexed by FROM t"),
            "SELECT reindexed by FROM t"
        );
    }

    #[test]
    fn numerics_decode() {
        // 12345678 = weight 1, digits [1234, 5678]
        let raw = [0, 2, 0, 1, 0, 0, 0, 0, 0x04, 0xD2, 0x16, 0x2E];
        assert_eq!(numeric(&raw).ok(), Some(Value::Int(12_345_678)));
        // 20000 = weight 1, digits [2] (trailing zero group not sent)
        let raw = [0, 1, 0, 1, 0, 0, 0, 0, 0, 2];
        assert_eq!(numeric(&raw).ok(), Some(Value::Int(20_000)));
        // -1.5 = weight 0, digits [1, 5000], negative
        let raw = [0, 2, 0, 0, 0x40, 0, 0, 1, 0, 1, 0x13, 0x88];
        assert_eq!(numeric(&raw).ok(), Some(Value::Real(-1.5)));
        // 0
        let raw = [0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(numeric(&raw).ok(), Some(Value::Int(0)));
    }

    #[test]
    fn values_read_back_as_rust_types() -> Result<(), StoreError> {
        let store = super::super::test_db::TestDb::open();
        let db = store.db();
        db.execute_batch(db.pick(
            "CREATE TABLE t (n INTEGER, i INTEGER, r REAL, s TEXT, j TEXT, b BLOB)",
            "CREATE TABLE t (n BIGINT, i BIGINT, r DOUBLE PRECISION, s TEXT, j JSONB, b BYTEA)",
        ))?;
        let doc = serde_json::json!({"a": [1, 2]});
        db.execute(
            "INSERT INTO t VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            params![7_i64, 1.5_f64, "x", doc, vec![1_u8, 2]],
        )?;
        db.execute(
            "INSERT INTO t VALUES (2, ?1, ?2, ?3, ?4, ?5)",
            params![
                None::<i64>,
                None::<f64>,
                None::<String>,
                None::<String>,
                None::<Vec<u8>>
            ],
        )?;
        let mut stmt = db.prepare_cached("SELECT i, r, s, j, b FROM t ORDER BY n")?;
        #[allow(clippy::type_complexity)]
        let rows: Vec<(
            Option<i64>,
            Option<f64>,
            Option<String>,
            serde_json::Value,
            Option<Vec<u8>>,
        )> = stmt
            .query_map(params![], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        assert_eq!(
            rows[0],
            (Some(7), Some(1.5), Some("x".into()), doc, Some(vec![1, 2]))
        );
        assert_eq!(rows[1], (None, None, None, serde_json::Value::Null, None));
        let missing = db
            .query_row("SELECT i FROM t WHERE i = 99", params![], |r| {
                r.get::<i64>(0)
            })
            .optional()?;
        assert_eq!(missing, None);
        let wrong = db.query_row("SELECT s FROM t WHERE i = 7", params![], |r| {
            r.get::<i64>(0)
        });
        assert!(matches!(wrong, Err(StoreError::Decode(_))), "{wrong:?}");
        Ok(())
    }

    #[test]
    fn a_nul_character_is_stored_on_either_backend() -> Result<(), StoreError> {
        let store = super::super::test_db::TestDb::open();
        let db = store.db();
        db.execute_batch(db.pick(
            "CREATE TABLE n (s TEXT, j TEXT)",
            "CREATE TABLE n (s TEXT, j JSONB)",
        ))?;
        let doc = serde_json::json!({"field": "a\u{0}b"});
        db.execute("INSERT INTO n VALUES (?1, ?2)", params!["x\u{0}y", doc])?;
        let (s, j): (String, serde_json::Value) =
            db.query_row("SELECT s, j FROM n", params![], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        assert!(
            s.starts_with('x') && s.ends_with('y') && s.chars().count() == 3,
            "{s:?}"
        );
        assert_eq!(j["field"].as_str().map(|t| t.chars().count()), Some(3));
        Ok(())
    }
}
