//! The store's interface: one [`Store`] over either backend, with the operations the
//! engine, CRM, daemon and TUI share. Each operation is written once per dialect,
//! next to each other here, so the two cannot drift apart unnoticed; the same tests
//! run against both (`tests/integration/store.rs`).

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value as Json;

use super::db::Db;
use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{StoreError, StoreLocation, UnixMs};

/// A contact to create, or to update by its email.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewContact {
    pub email: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub source_site: Option<String>,
    pub source_component: Option<String>,
    pub source_workflow: Option<String>,
    /// The file an import read the contact from (`import:people.csv`).
    pub source_import: Option<String>,
}

/// A stored contact's main fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRow {
    pub id: i64,
    pub uid: String,
    pub email: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub status: String,
    pub created_at: UnixMs,
    pub updated_at: UnixMs,
    pub last_activity: Option<UnixMs>,
}

/// An activity to record on a contact's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    pub contact_id: i64,
    pub kind: String,
    pub subject: Option<String>,
    pub data: Json,
    pub source: Option<String>,
    pub occurred_at: UnixMs,
}

/// A stored activity.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    pub id: i64,
    pub kind: String,
    pub subject: Option<String>,
    pub data: Json,
    pub source: Option<String>,
    pub occurred_at: UnixMs,
}

/// Emails are unique after this normalization: trimmed and lowercased. (Mailbox
/// names are case-sensitive in theory and case-blind in every real system.)
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The domain of an address, for grouping contacts by company.
pub(crate) fn domain_of(email: &str) -> Option<String> {
    email.rsplit_once('@').map(|(_, d)| d.to_string())
}

/// The store, on either backend.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Opens the store at `location` and applies pending migrations.
    pub async fn open(location: &StoreLocation) -> Result<Store, StoreError> {
        match location {
            StoreLocation::Sqlite { path, synchronous } => {
                let (path, sync) = (path.clone(), *synchronous);
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path, sync))
                    .await
                    .map_err(|e| StoreError::Io(e.to_string()))??;
                Ok(Store::Sqlite(store))
            }
            StoreLocation::Postgres { url } => Ok(Store::Postgres(PgStore::connect(url).await?)),
        }
    }

    /// Queues a write for the backend's group commit; the ticket resolves once it
    /// is durable. `f` runs on the writer's thread inside a savepoint of its own.
    pub fn write<T, F>(&self, f: F) -> super::writer::WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        match self {
            Store::Sqlite(s) => s.write(f),
            Store::Postgres(p) => p.write(f),
        }
    }

    /// Queues a write that changes many rows, in a transaction of its own.
    pub fn write_alone<T, F>(&self, f: F) -> super::writer::WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        match self {
            Store::Sqlite(s) => s.write_alone(f),
            Store::Postgres(p) => p.write_alone(f),
        }
    }

    /// Runs `f` on a read connection. Blocking: async callers use `spawn_blocking`.
    pub fn read<T>(
        &self,
        f: impl FnOnce(Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self {
            Store::Sqlite(s) => s.read(f),
            Store::Postgres(p) => p.read(f),
        }
    }

    /// Creates the contact, or updates the one with the same email (keeping values
    /// the update does not give). Returns its id and whether it was created.
    pub async fn upsert_contact(
        &self,
        c: NewContact,
        at: UnixMs,
    ) -> Result<(i64, bool), StoreError> {
        let email = normalize_email(&c.email);
        if !crate::validate::values::is_email(&email) {
            return Err(StoreError::Invalid(format!(
                "`{}` is not an email address",
                c.email
            )));
        }
        let uid = crate::uid::new(at);
        match self {
            Store::Sqlite(s) => {
                s.write(move |conn| sqlite_upsert_contact(conn, &c, &email, &uid, at))
                    .await
            }
            Store::Postgres(p) => {
                let row = p
                    .client()
                    .query_one(
                        "INSERT INTO contacts (uid, email, name, phone, company_domain, source_site, \
                         source_component, source_workflow, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                         ON CONFLICT (email) DO UPDATE SET \
                           name = coalesce(excluded.name, contacts.name), \
                           phone = coalesce(excluded.phone, contacts.phone), \
                           updated_at = excluded.updated_at \
                         RETURNING id, uid",
                        &[
                            &uid,
                            &email,
                            &c.name,
                            &c.phone,
                            &domain_of(&email),
                            &c.source_site,
                            &c.source_component,
                            &c.source_workflow,
                            &at,
                        ],
                    )
                    .await?;
                let stored: String = row.get(1);
                Ok((row.get(0), stored == uid))
            }
        }
    }

    /// The contact with this email (normalized), if any.
    pub async fn contact_by_email(&self, email: &str) -> Result<Option<ContactRow>, StoreError> {
        let email = normalize_email(email);
        match self {
            Store::Sqlite(s) => {
                let s = s.clone();
                blocking(move || {
                    s.read_sqlite(|conn| {
                        let mut stmt = conn.prepare_cached(&format!(
                            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE email = ?1"
                        ))?;
                        Ok(stmt.query_row([&email], sqlite_contact).optional()?)
                    })
                })
                .await
            }
            Store::Postgres(p) => {
                let row = p
                    .client()
                    .query_opt(
                        &format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE email = $1"),
                        &[&email],
                    )
                    .await?;
                Ok(row.map(|r| ContactRow {
                    id: r.get(0),
                    uid: r.get(1),
                    email: r.get(2),
                    name: r.get(3),
                    phone: r.get(4),
                    status: r.get(5),
                    created_at: r.get(6),
                    updated_at: r.get(7),
                    last_activity: r.get(8),
                }))
            }
        }
    }

    /// Appends an activity and moves the contact's `last_activity` forward.
    pub async fn add_activity(&self, a: NewActivity) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.write(move |conn| sqlite_add_activity(conn, &a)).await,
            Store::Postgres(p) => {
                let client = p.client();
                let row = client
                    .query_one(
                        "WITH ins AS (INSERT INTO activities (contact_id, type, subject, data, source, occurred_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id), \
                         upd AS (UPDATE contacts SET last_activity = greatest(coalesce(last_activity, $6), $6) \
                         WHERE id = $1) SELECT id FROM ins",
                        &[&a.contact_id, &a.kind, &a.subject, &a.data, &a.source, &a.occurred_at],
                    )
                    .await?;
                Ok(row.get(0))
            }
        }
    }

    /// The newest `limit` activities of a contact, newest first.
    pub async fn timeline(
        &self,
        contact_id: i64,
        limit: u32,
    ) -> Result<Vec<ActivityRow>, StoreError> {
        match self {
            Store::Sqlite(s) => {
                let s = s.clone();
                blocking(move || {
                    s.read_sqlite(|conn| {
                        let mut stmt = conn.prepare_cached(
                            "SELECT id, type, subject, data, source, occurred_at FROM activities \
                             WHERE contact_id = ?1 ORDER BY occurred_at DESC, id DESC LIMIT ?2",
                        )?;
                        let rows = stmt.query_map(params![contact_id, limit], |r| {
                            let data: String = r.get(3)?;
                            Ok(ActivityRow {
                                id: r.get(0)?,
                                kind: r.get(1)?,
                                subject: r.get(2)?,
                                data: serde_json::from_str(&data).unwrap_or(Json::Null),
                                source: r.get(4)?,
                                occurred_at: r.get(5)?,
                            })
                        })?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                })
                .await
            }
            Store::Postgres(p) => {
                let rows = p
                    .client()
                    .query(
                        "SELECT id, type, subject, data, source, occurred_at FROM activities \
                         WHERE contact_id = $1 ORDER BY occurred_at DESC, id DESC LIMIT $2",
                        &[&contact_id, &i64::from(limit)],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| ActivityRow {
                        id: r.get(0),
                        kind: r.get(1),
                        subject: r.get(2),
                        data: r.get(3),
                        source: r.get(4),
                        occurred_at: r.get(5),
                    })
                    .collect())
            }
        }
    }

    /// Records who did what to which entity, for the audit trail.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        entity: &str,
        entity_id: Option<&str>,
        details: Json,
        at: UnixMs,
    ) -> Result<i64, StoreError> {
        let (actor, action, entity) = (actor.to_string(), action.to_string(), entity.to_string());
        let entity_id = entity_id.map(str::to_string);
        match self {
            Store::Sqlite(s) => {
                s.write_sqlite(move |conn| {
                    let mut stmt = conn.prepare_cached(
                        "INSERT INTO audit_log (actor, action, entity, entity_id, details, recorded_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                    )?;
                    Ok(stmt.query_row(
                        params![actor, action, entity, entity_id, details.to_string(), at],
                        |r| r.get(0),
                    )?)
                })
                .await
            }
            Store::Postgres(p) => {
                let row = p
                    .client()
                    .query_one(
                        "INSERT INTO audit_log (actor, action, entity, entity_id, details, recorded_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                        &[&actor, &action, &entity, &entity_id, &details, &at],
                    )
                    .await?;
                Ok(row.get(0))
            }
        }
    }
}

/// The tables whose sizes `funnel db status` shows.
pub const STATUS_TABLES: &[&str] = &[
    "contacts",
    "activities",
    "executions",
    "step_runs",
    "timers",
    "outbox",
    "analytics_events",
    "audit_log",
];

impl Store {
    /// Row counts of [`STATUS_TABLES`].
    pub async fn counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = |t: &str| format!("SELECT count(*) FROM {t}");
        match self {
            Store::Sqlite(s) => {
                let s = s.clone();
                blocking(move || {
                    s.read_sqlite(|c| {
                        STATUS_TABLES
                            .iter()
                            .map(|t| {
                                Ok(((*t).to_string(), c.query_row(&sql(t), [], |r| r.get(0))?))
                            })
                            .collect()
                    })
                })
                .await
            }
            Store::Postgres(p) => {
                let mut out = Vec::new();
                for t in STATUS_TABLES {
                    let n: i64 = p.client().query_one(&sql(t), &[]).await?.get(0);
                    out.push(((*t).to_string(), n));
                }
                Ok(out)
            }
        }
    }

    /// Every embedded migration and whether the store has applied it.
    pub async fn migrations(&self) -> Result<Vec<super::migrations::MigrationState>, StoreError> {
        match self {
            Store::Sqlite(s) => {
                let path = s.path().to_path_buf();
                blocking(move || {
                    let mut conn = Connection::open(&path)?;
                    super::migrations::sqlite_status(&mut conn)
                })
                .await
            }
            Store::Postgres(p) => super::migrations::postgres_status(p.client()).await,
        }
    }
}

const CONTACT_COLUMNS: &str =
    "id, uid, email, name, phone, status, created_at, updated_at, last_activity";

fn sqlite_contact(r: &rusqlite::Row<'_>) -> rusqlite::Result<ContactRow> {
    Ok(ContactRow {
        id: r.get(0)?,
        uid: r.get(1)?,
        email: r.get(2)?,
        name: r.get(3)?,
        phone: r.get(4)?,
        status: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        last_activity: r.get(8)?,
    })
}

pub(crate) fn sqlite_upsert_contact(
    conn: Db<'_>,
    c: &NewContact,
    email: &str,
    uid: &str,
    at: UnixMs,
) -> Result<(i64, bool), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO contacts (uid, email, name, phone, company_domain, source_site, \
         source_component, source_workflow, source_import, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10, ?9, ?9) \
         ON CONFLICT (email) DO UPDATE SET \
           name = coalesce(excluded.name, contacts.name), \
           phone = coalesce(excluded.phone, contacts.phone), \
           updated_at = excluded.updated_at \
         RETURNING id, uid",
    )?;
    let (id, stored): (i64, String) = stmt.query_row(
        crate::store::db::params![
            uid,
            email,
            c.name,
            c.phone,
            domain_of(email),
            c.source_site,
            c.source_component,
            c.source_workflow,
            at,
            c.source_import
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((id, stored == uid))
}

pub(crate) fn sqlite_add_activity(conn: Db<'_>, a: &NewActivity) -> Result<i64, StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO activities (contact_id, type, subject, data, source, occurred_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
    )?;
    let id: i64 = insert.query_row(
        crate::store::db::params![
            a.contact_id,
            a.kind,
            a.subject,
            a.data.to_string(),
            a.source,
            a.occurred_at
        ],
        |r| r.get(0),
    )?;
    let mut touch = conn.prepare_cached(
        "UPDATE contacts SET last_activity = max(coalesce(last_activity, ?2), ?2) WHERE id = ?1",
    )?;
    touch.execute(crate::store::db::params![a.contact_id, a.occurred_at])?;
    Ok(id)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(e.to_string()))?
}
