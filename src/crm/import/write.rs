//! The store side of an import: checked rows arrive in chunks, are looked up in
//! email order and written in id order; for a large file the search-queue
//! triggers, and for a file large against the store the secondary indexes, are
//! off for the import's length and put back at its end (inside its transaction,
//! so a failed import puts them back too).
//!
//! Every statement here writes one row, and in a large import fires no trigger,
//! so SQLite keeps no statement journal for it: inside one long transaction, a
//! statement that may write several rows (an upsert, `RETURNING`, a trigger)
//! first copies each page it touches into that journal, which was a third of an
//! import's time. With the triggers on, what the import queues for search itself
//! is already queued, and nothing is queued twice.

use std::collections::{BTreeSet, HashMap};

use crate::store::db::{Db, OptionalRow, params};

use super::{ExistingPolicy, ImportError, Options, Reject, Report, Row};
use crate::crm::{CrmEvent, contact};
use crate::store::{NewContact, UnixMs};

/// Rows read before they are written: a chunk is looked up in email order and
/// written in contact order, so that a large store's indexes are walked forward
/// instead of at random (on a store of 2,000,000 contacts, the random walk made
/// each row wait for pages of the email index and the field and tag tables).
pub(super) const CHUNK: usize = 50_000;

/// Page cache of the writer during an import, in KiB.
pub(super) const IMPORT_CACHE_KIB: i64 = 65_536;

/// A row that passed its checks, waiting in a chunk.
pub(super) struct Pending {
    line: u64,
    /// The row as read, for its reject if its address repeats an earlier row's.
    record: csv::StringRecord,
    email: String,
    row: Row,
    found: Option<Found>,
}

impl Pending {
    /// `email` is the row's address, normalized.
    pub(super) fn new(line: u64, record: &csv::StringRecord, email: String, row: Row) -> Pending {
        Pending {
            line,
            record: record.clone(),
            email,
            row,
            found: None,
        }
    }

    fn duplicate_of(&self, first: u64) -> Reject {
        Reject {
            line: self.line,
            reason: format!("duplicate of line {first} ({})", self.email),
            record: self.record.iter().map(String::from).collect(),
        }
    }
}

/// The line of the row that wrote each contact in this import, so that a later
/// row with the same address is a duplicate: four bytes per new contact and
/// sixteen per existing one it touched, instead of every address in memory.
#[derive(Default)]
struct FirstLines {
    /// Contacts that existed before the import, by id.
    existing: HashMap<i64, u32>,
    /// Contacts it created, by id above the largest before it (ids ascend).
    created: Vec<u32>,
}

impl FirstLines {
    fn get(&self, id: i64, max_id_before: i64) -> Option<u64> {
        let line = if id > max_id_before {
            usize::try_from(id - max_id_before - 1)
                .ok()
                .and_then(|i| self.created.get(i).copied())
        } else {
            self.existing.get(&id).copied()
        };
        line.filter(|l| *l > 0).map(u64::from)
    }

    fn set(&mut self, id: i64, max_id_before: i64, line: u64) {
        let line = u32::try_from(line).unwrap_or(u32::MAX);
        if id > max_id_before {
            if let Ok(i) = usize::try_from(id - max_id_before - 1) {
                if self.created.len() <= i {
                    self.created.resize(i + 1, 0);
                }
                self.created[i] = line;
            }
        } else {
            self.existing.insert(id, line);
        }
    }
}

/// The contact a row's address already belongs to.
struct Found {
    id: i64,
    name: Option<String>,
    phone: Option<String>,
}

/// Writes the chunks of one import.
pub(super) struct StoreSide<'a> {
    conn: Db<'a>,
    opts: &'a Options,
    now: UnixMs,
    queue: EventQueue<'a>,
    /// Statements that put back the dropped triggers.
    triggers: Vec<String>,
    /// Statements that rebuild the dropped indexes (empty while none are).
    indexes: Vec<String>,
    /// Whether dropping the indexes was decided.
    decided: bool,
    /// Contacts above this id are new in this import.
    max_id_before: i64,
    first_lines: FirstLines,
}

impl<'a> StoreSide<'a> {
    pub(super) fn begin(
        conn: Db<'a>,
        opts: &'a Options,
        now: UnixMs,
    ) -> Result<StoreSide<'a>, ImportError> {
        let max_id_before = conn.query_row(
            "SELECT coalesce(max(id), 0) FROM contacts",
            params![],
            |r| r.get(0),
        )?;
        Ok(StoreSide {
            conn,
            opts,
            now,
            queue: EventQueue::new(conn, &opts.queue_events, now),
            triggers: if opts.bulk {
                crate::store::tuning::defer(conn, crate::store::tuning::Deferred::SearchTriggers)?
            } else {
                Vec::new()
            },
            indexes: Vec::new(),
            decided: !opts.defer_indexes,
            max_id_before,
            first_lines: FirstLines::default(),
        })
    }

    /// After the first chunk of an import large against the store: the indexes are
    /// dropped (and rebuilt at the end) unless that chunk was nearly all unchanged
    /// rows. Rebuilding costs in proportion to the whole store, so a re-import of
    /// an unchanged list keeps them: measured at 1,000,000 rows into 2,000,000
    /// contacts, 30.7 s rebuilding and 17.7 s keeping them.
    pub(super) fn maybe_defer(&mut self, report: &Report) -> Result<(), ImportError> {
        if self.decided {
            return Ok(());
        }
        self.decided = true;
        let written = report.created + report.updated;
        if written * 10 >= report.unchanged {
            self.indexes = crate::store::tuning::defer(
                self.conn,
                crate::store::tuning::Deferred::ContactIndexes,
            )?;
        }
        Ok(())
    }

    /// Looks the chunk's addresses up in email order, then writes the existing
    /// contacts in id order and the new ones in email order (their ids ascend with
    /// it, so their field and tag rows append). A row whose address an earlier
    /// row had is rejected: in the chunk, they are neighbours once sorted; before
    /// it, the earlier row wrote (or skipped) the contact found.
    pub(super) fn write(
        &mut self,
        chunk: &mut Vec<Pending>,
        report: &mut Report,
    ) -> Result<(), ImportError> {
        chunk.sort_unstable_by(|a, b| a.email.cmp(&b.email).then(a.line.cmp(&b.line)));
        // Repeats in the chunk wait for the row they repeat: if that one repeats
        // an earlier chunk's row, they name that row's line too.
        let mut repeats: Vec<(u64, Reject)> = Vec::new();
        chunk.dedup_by(|later, first| {
            let repeat = later.email == first.email;
            if repeat {
                repeats.push((first.line, later.duplicate_of(first.line)));
            }
            repeat
        });
        let mut first_of: HashMap<u64, Reject> = HashMap::new();
        let mut existing = self
            .conn
            .prepare_cached("SELECT id, name, phone FROM contacts WHERE email = ?1")?;
        for p in chunk.iter_mut() {
            p.found = existing
                .query_row(params![&p.email], |r| {
                    Ok(Found {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        phone: r.get(2)?,
                    })
                })
                .optional()?;
        }
        // New ones stay in email order after the existing ones, by id.
        chunk.sort_by_key(|p| p.found.as_ref().map_or(i64::MAX, |f| f.id));
        for p in chunk.drain(..) {
            let max = self.max_id_before;
            if let Some(found) = &p.found {
                if let Some(first) = self.first_lines.get(found.id, max) {
                    first_of.insert(p.line, p.duplicate_of(first));
                    continue;
                }
                self.first_lines.set(found.id, max, p.line);
            }
            match p.found {
                Some(_) if self.opts.existing == ExistingPolicy::Skip => report.skipped += 1,
                Some(found) => self.update(found, p.row, report)?,
                None => {
                    let id = self.create(p.email, p.row, report)?;
                    self.first_lines.set(id, max, p.line);
                }
            }
        }
        for (kept, mut reject) in repeats {
            if let Some(earlier) = first_of.get(&kept) {
                reject.reason.clone_from(&earlier.reason);
            }
            report.rejects.push(reject);
        }
        report.rejects.extend(first_of.into_values());
        Ok(())
    }

    fn create(&mut self, email: String, row: Row, report: &mut Report) -> Result<i64, ImportError> {
        let c = NewContact {
            email,
            name: row.name.clone(),
            phone: row.phone.clone(),
            source_import: self.opts.source.clone(),
            ..NewContact::default()
        };
        let id = contact::insert_new(self.conn, &c, &row.fields, &row.tags, &row.lists, self.now)?;
        report.created += 1;
        self.queue.created(id, &row, self.opts.source.as_deref())?;
        Ok(id)
    }

    fn update(&mut self, found: Found, row: Row, report: &mut Report) -> Result<(), ImportError> {
        let (conn, id, now) = (self.conn, found.id, self.now);
        // Compared before written: an unchanged row writes nothing.
        let mut events = contact::set_fields(conn, id, &row.fields, now)?;
        let fields_changed = !events.is_empty();
        events.extend(contact::add_tags(conn, id, &row.tags, now)?);
        let mut changed = !events.is_empty();
        for list in &row.lists {
            changed |= contact::add_to_list(conn, id, list, now)?;
        }
        let renamed = row.name.is_some() && row.name != found.name;
        let rephoned = row.phone.is_some() && row.phone != found.phone;
        if changed || renamed || rephoned {
            conn.prepare_cached(
                "UPDATE contacts SET name = coalesce(?2, name), phone = coalesce(?3, phone), \
                 updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![id, row.name, row.phone, now])?;
            report.updated += 1;
        } else {
            report.unchanged += 1;
        }
        if fields_changed || renamed {
            // What the search-queue triggers would have done.
            crate::store::search::queue_contact(conn, id)?;
        }
        self.queue.push(events)
    }

    /// Flushes the queued events, queues the new contacts for search and puts
    /// back what was dropped.
    pub(super) fn finish(self, report: &mut Report) -> Result<(), ImportError> {
        report.events_queued = self.queue.finish()?;
        // New contacts have ids above every old one: queued in one go.
        crate::store::search::queue_contacts_above(self.conn, self.max_id_before)?;
        for sql in self.indexes.iter().chain(&self.triggers) {
            self.conn.execute_batch(sql)?;
        }
        Ok(())
    }
}

/// Events some workflow listens to, written a thousand to a row of
/// `crm_event_batches`.
struct EventQueue<'a> {
    conn: Db<'a>,
    wanted: &'a BTreeSet<String>,
    /// The tags and fields whose `tag_added` and `field_changed` are wanted, and
    /// whether `contact_created` is: a new contact's events are built only then.
    tags: BTreeSet<&'a str>,
    fields: BTreeSet<&'a str>,
    contact_created: bool,
    pending: Vec<CrmEvent>,
    queued: u64,
    now: UnixMs,
}

impl<'a> EventQueue<'a> {
    const BATCH: usize = 1000;

    fn new(conn: Db<'a>, wanted: &'a BTreeSet<String>, now: UnixMs) -> EventQueue<'a> {
        let named = |prefix: &str| -> BTreeSet<&'a str> {
            wanted
                .iter()
                .filter_map(|k| k.strip_prefix(prefix))
                .collect()
        };
        EventQueue {
            conn,
            wanted,
            tags: named("tag_added:"),
            fields: named("field_changed:"),
            contact_created: wanted.contains("contact_created"),
            pending: Vec::new(),
            queued: 0,
            now,
        }
    }

    /// The events of a contact this import created: every field set and every
    /// (distinct) tag is a change.
    fn created(&mut self, id: i64, row: &Row, source: Option<&str>) -> Result<(), ImportError> {
        if self.wanted.is_empty() {
            return Ok(());
        }
        if self.contact_created {
            self.pending.push(CrmEvent::ContactCreated {
                contact_id: id,
                source: source.map(String::from),
            });
        }
        for (field, value) in &row.fields {
            if self.fields.contains(field.as_str()) && !value.is_null() {
                self.pending.push(CrmEvent::FieldChanged {
                    contact_id: id,
                    field: field.clone(),
                    from: serde_json::Value::Null,
                    to: value.clone(),
                });
            }
        }
        for tag in &row.tags {
            if self.tags.contains(tag.as_str()) {
                self.pending.push(CrmEvent::TagAdded {
                    contact_id: id,
                    tag: tag.clone(),
                });
            }
        }
        self.flush_when_full()
    }

    fn push(&mut self, events: Vec<CrmEvent>) -> Result<(), ImportError> {
        if self.wanted.is_empty() {
            return Ok(());
        }
        for e in events {
            if self.wanted.contains(&e.queue_key()) {
                self.pending.push(e);
            }
        }
        self.flush_when_full()
    }

    fn flush_when_full(&mut self) -> Result<(), ImportError> {
        if self.pending.len() >= Self::BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ImportError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let text = serde_json::to_string(&self.pending)
            .map_err(|e| ImportError::Io(format!("queueing events: {e}")))?;
        self.conn
            .prepare_cached("INSERT INTO crm_event_batches (events, created_at) VALUES (?1, ?2)")?
            .execute(params![text, self.now])?;
        self.queued += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<u64, ImportError> {
        self.flush()?;
        Ok(self.queued)
    }
}
