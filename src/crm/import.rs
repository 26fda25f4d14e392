//! CSV import of contacts: header mapping (common names detected, explicit
//! overrides), delimiter sniffing, BOM, quoted newlines, typed custom fields, an
//! update-or-skip policy for existing contacts, and a reject for every bad row with
//! its line and reason. One transaction: an import that stops halfway (an error, a
//! kill) leaves the store as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use crate::store::db::Db;
use serde::Serialize;
use serde_json::Value as Json;

use super::CrmError;
use super::privacy;
use crate::model::contacts::{FieldDef, FieldType};
use crate::store::UnixMs;
use crate::store::ops::normalize_email;

mod write;

use write::{CHUNK, IMPORT_CACHE_KIB, Pending, StoreSide};

/// What to do with a row whose email is already a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExistingPolicy {
    /// Fill in and overwrite the columns the file has.
    #[default]
    Update,
    /// Leave the contact as it is.
    Skip,
}

/// Where a column's values go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Email,
    Name,
    FirstName,
    LastName,
    Phone,
    Tags,
    Lists,
    /// A custom field of contacts/fields.yaml.
    Field(String),
    Ignore,
}

/// Options of one import.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Explicit `header=target` mappings, over the detected ones.
    pub map: BTreeMap<String, String>,
    pub existing: ExistingPolicy,
    /// A delimiter to use instead of sniffing one.
    pub delimiter: Option<u8>,
    /// Tags every imported contact gets.
    pub tags: Vec<String>,
    /// A list every imported contact joins.
    pub list: Option<String>,
    /// Rebuild the contact indexes once at the end instead of updating them row by
    /// row: for a file large against the store (see [`worth_deferring`]).
    pub defer_indexes: bool,
    /// Turn the search queue's triggers off for the import's length and queue
    /// what they would have (see [`worth_bulk`]).
    pub bulk: bool,
    /// Where the contacts came from (`import:people.csv`), kept as their source.
    pub source: Option<String>,
    /// The CRM events to queue for ingestion, by [`CrmEvent::queue_key`]
    /// (`tag_added:newsletter`, …): those some workflow's trigger listens to.
    /// Empty: the import starts no workflow.
    pub queue_events: BTreeSet<String>,
}

/// Whether an import of `file_bytes` into a store of `contacts` contacts should
/// rebuild the indexes at its end: when it brings at least as many rows as there
/// are (a row of a contact CSV is rarely under 40 bytes).
pub fn worth_deferring(file_bytes: u64, contacts: u64) -> bool {
    file_bytes / 40 >= contacts.max(10_000)
}

/// Whether an import of `file_bytes` should turn the search queue's triggers
/// off: for thousands of rows, where each statement under a trigger makes SQLite
/// journal the pages it touches (a third of an import's time); a few rows keep
/// them rather than change the schema, which every connection then prepares
/// its statements again for.
pub fn worth_bulk(file_bytes: u64) -> bool {
    file_bytes >= 256 * 1024
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reject {
    /// The line the row starts on (1 is the header).
    pub line: u64,
    pub reason: String,
    pub record: Vec<String>,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    /// Existing contacts the row changed nothing about (nothing was written).
    pub unchanged: u64,
    pub skipped: u64,
    /// CRM events queued for ingestion (see `engine::backlog`).
    pub events_queued: u64,
    pub rejects: Vec<Reject>,
    /// Each header and where it went.
    pub columns: Vec<(String, Target)>,
    pub delimiter: char,
}

/// Why an import could not run at all (bad rows are rejects, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("line 1: {0}")]
    Header(String),
    #[error("line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Crm(#[from] CrmError),
}

impl From<crate::store::StoreError> for ImportError {
    fn from(e: crate::store::StoreError) -> Self {
        ImportError::Crm(CrmError::from(e))
    }
}

/// Detected header names, compared lowercased with spaces, dashes and dots
/// removed.
fn detect(header: &str, fields: &BTreeMap<String, FieldDef>) -> Target {
    let key: String = header
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    match key.as_str() {
        "email" | "emailaddress" | "mail" | "emailaddr" | "primaryemail" => Target::Email,
        "name" | "fullname" | "contactname" | "displayname" => Target::Name,
        "firstname" | "givenname" | "first" | "fname" | "forename" => Target::FirstName,
        "lastname" | "surname" | "familyname" | "last" | "lname" => Target::LastName,
        "phone" | "phonenumber" | "mobile" | "telephone" | "tel" | "mobilephone" => Target::Phone,
        "tags" | "tag" | "labels" => Target::Tags,
        "lists" | "list" => Target::Lists,
        _ => fields
            .keys()
            .find(|f| {
                f.chars()
                    .filter(|c| c.is_alphanumeric())
                    .collect::<String>()
                    == key
            })
            .map_or(Target::Ignore, |f| Target::Field(f.clone())),
    }
}

fn target_named(name: &str, fields: &BTreeMap<String, FieldDef>) -> Result<Target, String> {
    Ok(match name {
        "email" => Target::Email,
        "name" => Target::Name,
        "first_name" => Target::FirstName,
        "last_name" => Target::LastName,
        "phone" => Target::Phone,
        "tags" => Target::Tags,
        "lists" => Target::Lists,
        "ignore" | "-" => Target::Ignore,
        f if fields.contains_key(f) => Target::Field(f.to_string()),
        other => {
            return Err(format!(
                "`{other}` is not a target: use email, name, first_name, last_name, phone, \
                 tags, lists, ignore or a field of contacts/fields.yaml"
            ));
        }
    })
}

/// The delimiter of the header line: the most frequent of `,`, `;`, tab and `|`
/// outside quotes (comma when none occurs).
pub fn sniff_delimiter(head: &[u8]) -> u8 {
    let line_end = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
    let mut counts = [0usize; 4];
    let candidates = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for b in &head[..line_end] {
        if *b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = candidates.iter().position(|c| c == b) {
            counts[i] += 1;
        }
    }
    let best = (0..4).max_by_key(|i| (counts[*i], 4 - *i)).unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        candidates[best]
    }
}

/// Imports contacts from CSV text into the store, inside the caller's transaction
/// (run it as a transaction of its own, not inside a savepoint: SQLite truncates
/// its in-memory statement journal from the start at every statement's end, so
/// statements inside a long savepoint cost more with every page changed).
/// `progress` is called with the rows read so far, every few thousand rows. The
/// CRM events the import causes, of the types in [`Options::queue_events`], are
/// queued in batches in `crm_event_batches` as it goes, for the engine to ingest
/// afterwards: they start workflows as a change by hand would, without a
/// million of them in memory or in this transaction.
pub fn import(
    conn: Db<'_>,
    input: impl Read,
    fields: &BTreeMap<String, FieldDef>,
    lists: &BTreeSet<String>,
    opts: &Options,
    now: UnixMs,
    progress: &mut dyn FnMut(u64),
) -> Result<Report, ImportError> {
    // The file streams through; only its head is read ahead, to sniff.
    let mut input = input;
    let mut head = Vec::with_capacity(64 * 1024);
    (&mut input)
        .take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(|e| ImportError::Io(e.to_string()))?;
    let skip = if head.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let delimiter = opts
        .delimiter
        .unwrap_or_else(|| sniff_delimiter(&head[skip..]));
    let body = std::io::Cursor::new(head).chain(input);
    let mut body = std::io::BufReader::with_capacity(256 * 1024, body);
    if skip > 0 {
        let mut bom = [0u8; 3];
        body.read_exact(&mut bom)
            .map_err(|e| ImportError::Io(e.to_string()))?;
    }
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .terminator(csv::Terminator::Any(b'\n'))
        .flexible(true)
        .has_headers(true)
        .from_reader(LfOnly {
            inner: body,
            pending_cr: false,
        });
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ImportError::Header(e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut columns: Vec<(String, Target)> = headers
        .iter()
        .map(|h| (h.clone(), detect(h, fields)))
        .collect();
    for (header, target) in &opts.map {
        let Some(col) = columns
            .iter_mut()
            .find(|(h, _)| h.eq_ignore_ascii_case(header))
        else {
            return Err(ImportError::Header(format!(
                "`--map {header}=…`: the file has no column `{header}` (its columns: {})",
                headers.join(", ")
            )));
        };
        col.1 = target_named(target, fields).map_err(ImportError::Header)?;
    }
    if !columns.iter().any(|(_, t)| *t == Target::Email) {
        return Err(ImportError::Header(format!(
            "no email column among {}; name it with --map COLUMN=email",
            headers.join(", ")
        )));
    }
    let mut report = Report {
        columns: columns.clone(),
        delimiter: char::from(delimiter),
        ..Report::default()
    };
    if conn.is_autocommit() {
        // Its indexes and triggers come back at its end; only a transaction
        // promises that they do if it stops half-way.
        return Err(ImportError::Io(
            "an import runs inside a transaction".into(),
        ));
    }
    // Random inserts into the email, name and field indexes of a large store miss
    // the writer's usual page cache; a larger one for the import's length, given
    // back after (the statement below cannot fail half-way). Rebuilt indexes are
    // sorted in files beyond that cache, not in memory: millions of entries.
    crate::store::tuning::with_bulk_cache(conn, IMPORT_CACHE_KIB, || {
        let mut side = StoreSide::begin(conn, opts, now)?;
        rows_into_store(
            conn,
            &mut reader,
            &columns,
            (fields, lists),
            opts,
            progress,
            &mut report,
            &mut side,
        )?;
        side.finish(&mut report)
    })?;
    progress(report.rows);
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn rows_into_store<R: Read>(
    conn: Db<'_>,
    reader: &mut csv::Reader<R>,
    columns: &[(String, Target)],
    (fields, lists): (&BTreeMap<String, FieldDef>, &BTreeSet<String>),
    opts: &Options,
    progress: &mut dyn FnMut(u64),
    report: &mut Report,
    side: &mut StoreSide<'_>,
) -> Result<(), ImportError> {
    // Forgotten people are few: their hashes are read once, not queried per row.
    let suppressed = privacy::forgotten_hashes(conn)?;
    let mut chunk: Vec<Pending> = Vec::with_capacity(CHUNK);
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, csv::Position::line);
                return Err(ImportError::Csv {
                    line,
                    message: e.to_string(),
                });
            }
        }
        let line = record.position().map_or(line, csv::Position::line);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        report.rows += 1;
        if report.rows.is_multiple_of(4096) {
            progress(report.rows);
        }
        let reject = |reason: String| Reject {
            line,
            reason,
            record: record.iter().map(String::from).collect(),
        };
        let mut row = match parse_row(&record, columns, fields, lists) {
            Ok(r) => r,
            Err(reason) => {
                report.rejects.push(reject(reason));
                continue;
            }
        };
        // A repeated address is found when its chunk is written (see
        // `write::StoreSide::write`), without a set of every address in memory.
        let email = normalize_email(&row.email);
        if !suppressed.is_empty() && suppressed.contains(&privacy::email_hash(&email)) {
            report.rejects.push(reject(
                "suppressed: this person asked to be forgotten; import them only with new consent"
                    .into(),
            ));
            continue;
        }
        add_distinct(&mut row.tags, &opts.tags);
        add_distinct(&mut row.lists, opts.list.as_slice());
        chunk.push(Pending::new(line, &record, email, row));
        if chunk.len() >= CHUNK {
            side.write(&mut chunk, report)?;
            side.maybe_defer(report)?;
        }
    }
    side.write(&mut chunk, report)?;
    // Repeats are found a chunk at a time: rejects are listed in file order.
    report.rejects.sort_by_key(|r| r.line);
    Ok(())
}

/// Appends what `to` lacks of `more` (trimmed, not empty) and drops repeats:
/// a new contact's tags are written and announced once each.
fn add_distinct(to: &mut Vec<String>, more: &[String]) {
    to.extend(more.iter().map(|t| t.trim().to_string()));
    let mut kept = 0;
    for i in 0..to.len() {
        if !to[i].trim().is_empty() && !to[..kept].contains(&to[i]) {
            to.swap(kept, i);
            kept += 1;
        }
    }
    to.truncate(kept);
}

/// Reads through, dropping every `\r` that precedes a `\n`: the csv crate counts
/// lines wrongly with CRLF endings (one short after the header), and a reject's
/// line number must be right. A `\r` last in one read waits for the next.
struct LfOnly<R> {
    inner: R,
    /// A `\r` consumed but not yet written.
    pending_cr: bool,
}

impl<R: std::io::BufRead> Read for LfOnly<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let buf = self.inner.fill_buf()?;
        let mut n = 0;
        if self.pending_cr {
            self.pending_cr = false;
            if buf.first() != Some(&b'\n') {
                out[0] = b'\r';
                n = 1;
            }
        }
        let mut used = 0;
        while used < buf.len() && n < out.len() {
            let b = buf[used];
            used += 1;
            if b == b'\r' {
                match buf.get(used) {
                    Some(b'\n') => continue,
                    None => {
                        self.pending_cr = true;
                        break;
                    }
                    Some(_) => {}
                }
            }
            out[n] = b;
            n += 1;
        }
        self.inner.consume(used);
        if n == 0 && self.pending_cr {
            // Only a `\r` was read: look at what follows before answering.
            return self.read(out);
        }
        Ok(n)
    }
}

struct Row {
    email: String,
    name: Option<String>,
    phone: Option<String>,
    tags: Vec<String>,
    lists: Vec<String>,
    fields: BTreeMap<String, Json>,
}

fn parse_row(
    record: &csv::StringRecord,
    columns: &[(String, Target)],
    fields: &BTreeMap<String, FieldDef>,
    lists: &BTreeSet<String>,
) -> Result<Row, String> {
    let mut row = Row {
        email: String::new(),
        name: None,
        phone: None,
        tags: Vec::new(),
        lists: Vec::new(),
        fields: BTreeMap::new(),
    };
    let (mut first, mut last) = (None, None);
    for (i, (header, target)) in columns.iter().enumerate() {
        let value = record.get(i).map(str::trim).unwrap_or("");
        if value.is_empty() {
            continue;
        }
        let some = || Some(value.to_string());
        match target {
            Target::Email => row.email = value.to_string(),
            Target::Name => row.name = some(),
            Target::FirstName => first = some(),
            Target::LastName => last = some(),
            Target::Phone => row.phone = some(),
            Target::Tags => row.tags.extend(split_list(value)),
            Target::Lists => {
                for l in split_list(value) {
                    if !lists.contains(&l) {
                        return Err(format!(
                            "column `{header}`: no list `{l}` in contacts/lists.yaml"
                        ));
                    }
                    row.lists.push(l);
                }
            }
            Target::Field(f) => {
                let def = &fields[f];
                let v = typed(value, def)
                    .map_err(|why| format!("column `{header}` (field {f}): {why}"))?;
                row.fields.insert(f.clone(), v);
            }
            Target::Ignore => {}
        }
    }
    if row.email.is_empty() {
        return Err("no email address".into());
    }
    let email = normalize_email(&row.email);
    if !crate::validate::values::is_email(&email) {
        return Err(format!("`{}` is not a valid email address", row.email));
    }
    if row.name.is_none() {
        row.name = match (first, last) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (f, l) => f.or(l),
        };
    }
    Ok(row)
}

/// Tags and lists in one cell: separated by `;`, `,` or `|`.
fn split_list(value: &str) -> Vec<String> {
    value
        .split([';', ',', '|'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// A cell as the JSON value of a custom field of this type.
pub fn typed(value: &str, def: &FieldDef) -> Result<Json, String> {
    match def.kind {
        FieldType::Integer => value
            .parse::<i64>()
            .map(Json::from)
            .map_err(|_| format!("`{value}` is not a whole number")),
        FieldType::Number => value
            .replace(',', ".")
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Json::from)
            .ok_or_else(|| format!("`{value}` is not a number")),
        FieldType::Boolean => match value.to_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Ok(Json::Bool(true)),
            "false" | "no" | "n" | "0" => Ok(Json::Bool(false)),
            _ => Err(format!("`{value}` is not yes/no")),
        },
        FieldType::Date => value
            .parse::<jiff::civil::Date>()
            .map(|d| Json::String(d.to_string()))
            .map_err(|_| format!("`{value}` is not a date (YYYY-MM-DD)")),
        FieldType::Select => {
            let found = def.options.iter().find(|o| o.eq_ignore_ascii_case(value));
            found
                .map(|o| Json::String(o.clone()))
                .ok_or_else(|| format!("`{value}` is not one of {}", def.options.join(", ")))
        }
        FieldType::Email => {
            let e = normalize_email(value);
            if crate::validate::values::is_email(&e) {
                Ok(Json::String(e))
            } else {
                Err(format!("`{value}` is not an email address"))
            }
        }
        _ => Ok(Json::String(value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Report {
        let store = crate::store::test_db::TestDb::open();
        store
            .transaction(|tx| {
                import(
                    tx,
                    text.as_bytes(),
                    &BTreeMap::new(),
                    &BTreeSet::new(),
                    &Options::default(),
                    0,
                    &mut |_| {},
                )
            })
            .expect("import")
    }

    #[test]
    fn a_repeated_address_is_rejected_in_its_chunk_and_across_chunks() {
        let mut text = String::from("email\n");
        for i in 0..write::CHUNK + 10 {
            text.push_str(&format!("p{i}@example.org\n"));
        }
        // Line 2 is p0, in the first chunk; the repeats below land in the second,
        // one of them twice, and one differs only in case.
        text.push_str("P0@Example.org\np50005@example.org\np50005@example.org\np1@example.org\np1@example.org\n");
        let r = run(&text);
        let last = write::CHUNK as u64 + 11;
        let rejects: Vec<(u64, &str)> = r
            .rejects
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(
            rejects,
            [
                (last + 1, "duplicate of line 2 (p0@example.org)"),
                (last + 2, "duplicate of line 50007 (p50005@example.org)"),
                (last + 3, "duplicate of line 50007 (p50005@example.org)"),
                (last + 4, "duplicate of line 3 (p1@example.org)"),
                (last + 5, "duplicate of line 3 (p1@example.org)"),
            ]
        );
        assert_eq!(r.created, write::CHUNK as u64 + 10);
        assert_eq!(r.rejects[0].record, ["P0@Example.org"]);
    }

    #[test]
    fn repeated_tags_are_kept_once_in_their_first_order() {
        let mut tags = vec!["b".to_string(), "a".into(), "b".into(), " ".into()];
        add_distinct(&mut tags, &[" a ".into(), "c".into()]);
        assert_eq!(tags, ["b", "a", "c"]);
    }

    #[test]
    fn rejects_name_the_line_the_row_starts_on() {
        let r = run("email,name\nbad,One\n\"ok@example.org\",\"Two\nlines\"\nworse,Three\n");
        let lines: Vec<u64> = r.rejects.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 5]);
        assert_eq!(r.created, 1);
        let crlf =
            run("email,name\r\nbad,One\r\n\"ok@example.org\",\"Two\r\nlines\"\r\nworse,Three\r\n");
        let lines: Vec<u64> = crlf.rejects.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 5], "CRLF line ends");
        let bom = run("\u{feff}email\nbad\n");
        assert_eq!(bom.rejects[0].line, 2, "after a BOM");
    }

    #[test]
    fn crlf_becomes_lf_across_any_read_boundary() {
        let text = b"a\r\nb\rc\r\n\r\nd\r";
        for cap in 1..text.len() {
            let mut r = LfOnly {
                inner: std::io::BufReader::with_capacity(cap, &text[..]),
                pending_cr: false,
            };
            let mut out = Vec::new();
            r.read_to_end(&mut out).expect("read");
            assert_eq!(out, b"a\nb\rc\n\nd\r", "buffer of {cap}");
        }
    }

    #[test]
    fn the_delimiter_is_sniffed_outside_quotes() {
        assert_eq!(sniff_delimiter(b"a;b;c\n1,2,3"), b';');
        assert_eq!(sniff_delimiter(b"\"a,b\";c;d\n"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\n"), b'\t');
        assert_eq!(sniff_delimiter(b"email\n"), b',');
    }
}
