//! Backup and restore of a PostgreSQL store: a consistent snapshot in the text
//! format of `pg_dump --data-only` (one `COPY … FROM stdin;` block per table), and
//! its restore in one transaction.
//!
//! The backup reads every table in one `REPEATABLE READ` transaction, so writers
//! go on and the copy is of one moment. The file is plain SQL: `psql` can load it
//! into an empty migrated store, and `funnel restore` replaces a store's whole
//! content with it: it empties the tables, copies the rows back in an order that
//! satisfies the foreign keys, and moves the id sequences past the restored ids,
//! all or nothing. Both stream: memory stays bounded whatever the store's size.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio_postgres::Client;

use super::StoreError;
use super::pg_conn::PgConn;

/// The first line of every backup, which restore looks for.
const MAGIC: &str = "-- funnel backup of a PostgreSQL store";
/// Rows sent to the server per message during a restore.
const CHUNK: usize = 256 * 1024;

/// Writes a snapshot of the store at `url` to `dest` (through a `.partial` file,
/// renamed once complete).
pub fn backup(url: &str, dest: &Path) -> Result<(), StoreError> {
    let conn = PgConn::connect(url)?;
    let tmp = dest.with_extension("partial");
    let file = std::fs::File::create(&tmp)?;
    let mut out = BufWriter::new(file);
    let client = conn.client();
    let written: Result<(), StoreError> = conn.block_on(async {
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let version = schema_version(client).await?;
        writeln!(out, "{MAGIC}")?;
        writeln!(out, "-- schema version: {version}")?;
        writeln!(out, "SET client_encoding = 'UTF8';")?;
        for (table, columns) in tables_in_order(client).await? {
            let list = columns.join(", ");
            writeln!(out, "\nCOPY {table} ({list}) FROM stdin;")?;
            let stream = client
                .copy_out(&format!("COPY {table} ({list}) TO STDOUT"))
                .await?;
            let mut stream = std::pin::pin!(stream);
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk?)?;
            }
            writeln!(out, "\\.")?;
        }
        client.batch_execute("COMMIT").await?;
        Ok(())
    });
    written?;
    out.into_inner()
        .map_err(|e| StoreError::Io(e.to_string()))?
        .sync_all()?;
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

/// Replaces the whole content of the store at `url` with the backup at `file`.
pub fn restore(url: &str, file: &Path) -> Result<(), StoreError> {
    let mut lines = BufReader::new(std::fs::File::open(file)?);
    let mut first = Vec::new();
    lines.read_until(b'\n', &mut first)?;
    if String::from_utf8_lossy(&first).trim_end() != MAGIC {
        return Err(StoreError::Invalid(format!(
            "{} is not a funnel store backup of PostgreSQL (a PostgreSQL store restores \
             what `funnel backup` wrote from one)",
            file.display()
        )));
    }
    let conn = PgConn::connect(url)?;
    let client = conn.client();
    conn.block_on(async {
        let ours = schema_version(client).await?;
        client.batch_execute("BEGIN").await?;
        let result = load(client, &mut lines, ours, file).await;
        match result {
            Ok(()) => Ok(client.batch_execute("COMMIT").await?),
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    })
}

async fn load(
    client: &Client,
    lines: &mut impl BufRead,
    ours: i64,
    file: &Path,
) -> Result<(), StoreError> {
    let tables = tables_in_order(client).await?;
    let known: BTreeSet<&str> = tables.iter().map(|(t, _)| t.as_str()).collect();
    let all: Vec<&str> = known.iter().copied().collect();
    client
        .batch_execute(&format!(
            "TRUNCATE {} RESTART IDENTITY CASCADE",
            all.join(", ")
        ))
        .await?;
    // The rows come back as they were: no trigger (sync's stamps) may add
    // to them while they are copied in. Undone by the transaction's end
    // either way (ALTER TABLE is transactional).
    for table in &all {
        client
            .batch_execute(&format!("ALTER TABLE {table} DISABLE TRIGGER USER"))
            .await?;
    }
    let mut line = Vec::new();
    let mut at = 1usize;
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        at += 1;
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let text = text.as_str();
        if let Some(v) = text.strip_prefix("-- schema version: ") {
            let theirs: i64 = v.trim().parse().unwrap_or(i64::MAX);
            if theirs > ours {
                return Err(StoreError::Invalid(format!(
                    "{} comes from a newer store (schema version {theirs}, this one has \
                     {ours}): upgrade funnel first",
                    file.display()
                )));
            }
            continue;
        }
        let Some(copy) = text.strip_prefix("COPY ").map(str::to_string) else {
            continue;
        };
        let table = copy
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        if !known.contains(table.as_str()) || !copy.ends_with("FROM stdin;") {
            return Err(StoreError::Invalid(format!(
                "{}:{at}: `{text}` is not a copy into a table of the store",
                file.display()
            )));
        }
        let statement = copy
            .trim_end_matches(';')
            .replace("FROM stdin", "FROM STDIN");
        let sink = client
            .copy_in::<_, Bytes>(&format!("COPY {statement}"))
            .await?;
        let mut sink = std::pin::pin!(sink);
        let mut chunk = Vec::with_capacity(CHUNK);
        loop {
            line.clear();
            if lines.read_until(b'\n', &mut line)? == 0 {
                return Err(StoreError::Invalid(format!(
                    "{}: the copy into {table} is cut short (no `\\.` line): the backup is incomplete",
                    file.display()
                )));
            }
            at += 1;
            if line == b"\\.\n" || line == b"\\." {
                break;
            }
            chunk.extend_from_slice(&line);
            if chunk.len() >= CHUNK {
                sink.send(Bytes::from(std::mem::take(&mut chunk))).await?;
            }
        }
        if !chunk.is_empty() {
            sink.send(Bytes::from(chunk)).await?;
        }
        sink.as_mut().finish().await?;
    }
    // Identity columns go on after the highest restored id.
    for (table, columns) in &tables {
        if !columns.iter().any(|c| c == "\"id\"") {
            continue;
        }
        let sequence: Option<String> = client
            .query_one("SELECT pg_get_serial_sequence($1, 'id')", &[table])
            .await?
            .get(0);
        if sequence.is_some() {
            client
                .batch_execute(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                ))
                .await?;
        }
    }
    for table in &all {
        client
            .batch_execute(&format!("ALTER TABLE {table} ENABLE TRIGGER USER"))
            .await?;
    }
    if known.contains("sync_clock") {
        // A backup from before sync has no clock: the store gets a new node.
        // The feed's places go on after the highest restored one.
        client
            .batch_execute(
                "INSERT INTO sync_clock (one, node) SELECT 1, lower(hex(randomblob(8))) \
                 WHERE NOT EXISTS (SELECT 1 FROM sync_clock); \
                 SELECT setval('sync_ord', coalesce((SELECT max(ord) FROM sync_stamps), 0) + 2, false)",
            )
            .await?;
    }
    Ok(())
}

async fn schema_version(client: &Client) -> Result<i64, StoreError> {
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM refinery_schema_history",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// The store's tables (not the migration history) with their stored columns (not
/// generated ones), parents before the tables whose foreign keys point at them.
async fn tables_in_order(client: &Client) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let rows = client
        .query(
            "SELECT c.table_name::text, c.column_name::text FROM information_schema.columns c \
             JOIN information_schema.tables t ON t.table_schema = c.table_schema \
               AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' \
             WHERE c.table_schema = current_schema() AND c.is_generated = 'NEVER' \
               AND c.table_name <> 'refinery_schema_history' \
             ORDER BY c.table_name, c.ordinal_position",
            &[],
        )
        .await?;
    let mut columns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &rows {
        let (table, column): (String, String) = (r.get(0), r.get(1));
        columns.entry(table).or_default().push(quote(&column));
    }
    let edges = client
        .query(
            "SELECT child.relname::text, parent.relname::text FROM pg_constraint k \
             JOIN pg_class child ON child.oid = k.conrelid \
             JOIN pg_class parent ON parent.oid = k.confrelid \
             JOIN pg_namespace n ON n.oid = child.relnamespace \
             WHERE k.contype = 'f' AND n.nspname = current_schema()",
            &[],
        )
        .await?;
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in &edges {
        let (child, parent): (String, String) = (e.get(0), e.get(1));
        if child != parent {
            parents.entry(child).or_default().insert(parent);
        }
    }
    // Kahn's order, alphabetical among equals so backups of equal stores are equal.
    let mut out = Vec::new();
    let mut placed: BTreeSet<String> = BTreeSet::new();
    while placed.len() < columns.len() {
        let next = columns.keys().find(|t| {
            !placed.contains(*t)
                && parents.get(*t).is_none_or(|ps| {
                    ps.iter()
                        .all(|p| placed.contains(p) || !columns.contains_key(p))
                })
        });
        let Some(table) = next.cloned() else {
            return Err(StoreError::Invalid(
                "the store's foreign keys form a cycle; cannot order a backup".into(),
            ));
        };
        placed.insert(table.clone());
        out.push(table);
    }
    Ok(out
        .into_iter()
        .map(|t| {
            let cols = columns.remove(&t).unwrap_or_default();
            (quote(&t), cols)
        })
        .collect())
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}
