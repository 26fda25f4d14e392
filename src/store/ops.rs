//! The store's interface: one [`Store`] over either backend, with the operations the
//! engine, CRM, daemon and TUI share. Each operation is written once, on the seam's
//! [`Db`]; where the dialects differ the store picks the statement, so code outside
//! `src/store/` never asks which backend it is on. The same tests run against both
//! (`tests/integration/store.rs`, and the whole suite with `FUNNEL_TEST_BACKEND`).

use serde_json::Value as Json;

use super::db::{Db, OptionalRow, params};
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

/// A store job longer than this is logged (at debug level) with the function
/// that sent it: a request may wait behind one such job.
const SLOW_JOB: std::time::Duration = std::time::Duration::from_millis(10);

/// `f`, adding its duration to the store's clock (`store::timing`).
fn timed<T, F>(f: F) -> impl FnOnce(Db<'_>) -> Result<T, StoreError>
where
    F: FnOnce(Db<'_>) -> Result<T, StoreError>,
{
    move |db| {
        let started = std::time::Instant::now();
        let out = f(db);
        let took = started.elapsed();
        super::timing::add(took);
        if took >= SLOW_JOB {
            // The closure's type names the function that wrote it.
            tracing::debug!(
                job = std::any::type_name::<F>(),
                ms = took.as_millis(),
                "slow store job"
            );
        }
        out
    }
}

/// The store, on either backend.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl From<SqliteStore> for Store {
    fn from(s: SqliteStore) -> Self {
        Store::Sqlite(s)
    }
}

impl Store {
    /// Opens the store at `location` and applies pending migrations. Blocking:
    /// async callers use [`Store::open`].
    pub fn open_blocking(location: &StoreLocation) -> Result<Store, StoreError> {
        match location {
            StoreLocation::Sqlite { path, synchronous } => {
                Ok(Store::Sqlite(SqliteStore::open(path, *synchronous)?))
            }
            StoreLocation::Postgres { url } => Ok(Store::Postgres(PgStore::open(url)?)),
        }
    }

    /// [`Store::open_blocking`] off the async threads.
    pub async fn open(location: &StoreLocation) -> Result<Store, StoreError> {
        let location = location.clone();
        blocking(move || Store::open_blocking(&location)).await
    }

    /// Where the store is, fit to print (a URL's password hidden).
    pub fn describe(&self) -> String {
        match self {
            Store::Sqlite(s) => format!("SQLite at {}", s.path().display()),
            Store::Postgres(p) => format!("PostgreSQL at {}", p.url_for_display()),
        }
    }

    /// How many write transactions it runs side by side: SQLite has one
    /// writer; PostgreSQL a few connections.
    pub fn writers(&self) -> usize {
        match self {
            Store::Sqlite(_) => 1,
            Store::Postgres(p) => p.writers(),
        }
    }

    /// Which backend: `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// How many write transactions run side by side: 1 on SQLite (one writer),
    /// the writer connections on PostgreSQL.
    pub fn parallel_writes(&self) -> usize {
        match self {
            Store::Sqlite(_) => 1,
            Store::Postgres(p) => p.writers(),
        }
    }

    /// Queues a write for the backend's group commit; the ticket resolves once it
    /// is durable. `f` runs on the writer's thread inside a savepoint of its own.
    pub fn write<T, F>(&self, f: F) -> super::writer::WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let f = timed(f);
        match self {
            Store::Sqlite(s) => s.write(f),
            Store::Postgres(p) => p.write(f),
        }
    }

    /// Queues a write no client waits on: it yields to requests' writes (see
    /// [`super::writer`]).
    pub fn write_background<T, F>(&self, f: F) -> super::writer::WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let f = timed(f);
        match self {
            Store::Sqlite(s) => s.write_background(f),
            Store::Postgres(p) => p.write_background(f),
        }
    }

    /// Queues a write that changes many rows, in a transaction of its own.
    pub fn write_alone<T, F>(&self, f: F) -> super::writer::WriteTicket<T>
    where
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let f = timed(f);
        match self {
            Store::Sqlite(s) => s.write_alone(f),
            Store::Postgres(p) => p.write_alone(f),
        }
    }

    /// Runs `f` on a read connection. Blocking: async callers use
    /// [`Store::read_async`].
    pub fn read<T>(
        &self,
        f: impl FnOnce(Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let f = timed(f);
        match self {
            Store::Sqlite(s) => s.read(f),
            Store::Postgres(p) => p.read(f),
        }
    }

    /// [`Store::read`] on a blocking thread, for async callers.
    pub async fn read_async<T: Send + 'static>(
        &self,
        f: impl FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        blocking(move || store.read(f)).await
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
        self.write(move |db| upsert_contact(db, &c, &email, &uid, at))
            .await
    }

    /// The contact with this email (normalized), if any.
    pub async fn contact_by_email(&self, email: &str) -> Result<Option<ContactRow>, StoreError> {
        let email = normalize_email(email);
        self.read_async(move |db| {
            db.query_row(
                &format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE email = ?1"),
                params![email],
                |r| {
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
                },
            )
            .optional()
        })
        .await
    }

    /// Appends an activity and moves the contact's `last_activity` forward.
    pub async fn add_activity(&self, a: NewActivity) -> Result<i64, StoreError> {
        self.write(move |db| add_activity(db, &a)).await
    }

    /// The newest `limit` activities of a contact, newest first.
    pub async fn timeline(
        &self,
        contact_id: i64,
        limit: u32,
    ) -> Result<Vec<ActivityRow>, StoreError> {
        self.read_async(move |db| {
            let mut stmt = db.prepare_cached(
                "SELECT id, type, subject, data, source, occurred_at FROM activities \
                 WHERE contact_id = ?1 ORDER BY occurred_at DESC, id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![contact_id, limit], |r| {
                Ok(ActivityRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    subject: r.get(2)?,
                    data: r.get(3)?,
                    source: r.get(4)?,
                    occurred_at: r.get(5)?,
                })
            })?;
            rows.collect()
        })
        .await
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
        self.write(move |db| {
            db.query_row(
                "INSERT INTO audit_log (actor, action, entity, entity_id, details, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                params![actor, action, entity, entity_id, details, at],
                |r| r.get(0),
            )
        })
        .await
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
        self.read_async(|db| {
            STATUS_TABLES
                .iter()
                .map(|t| {
                    let n = db.query_row(&format!("SELECT count(*) FROM {t}"), params![], |r| {
                        r.get(0)
                    })?;
                    Ok(((*t).to_string(), n))
                })
                .collect()
        })
        .await
    }

    /// Every embedded migration and whether the store has applied it.
    pub async fn migrations(&self) -> Result<Vec<super::migrations::MigrationState>, StoreError> {
        let backend = self.backend_name();
        let applied: Vec<i64> = self
            .read_async(|db| {
                let mut stmt = db.prepare("SELECT version FROM refinery_schema_history")?;
                let rows = stmt.query_map(params![], |r| r.get(0))?;
                rows.collect()
            })
            .await?;
        Ok(super::migrations::states(backend, &applied))
    }
}

const CONTACT_COLUMNS: &str =
    "id, uid, email, name, phone, status, created_at, updated_at, last_activity";

pub(crate) fn upsert_contact(
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
        params![
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

pub(crate) fn add_activity(conn: Db<'_>, a: &NewActivity) -> Result<i64, StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO activities (contact_id, type, subject, data, source, occurred_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
    )?;
    let id: i64 = insert.query_row(
        params![
            a.contact_id,
            a.kind,
            a.subject,
            a.data,
            a.source,
            a.occurred_at
        ],
        |r| r.get(0),
    )?;
    let mut touch = conn.prepare_cached(
        "UPDATE contacts SET last_activity = max(coalesce(last_activity, ?2), ?2) WHERE id = ?1",
    )?;
    touch.execute(params![a.contact_id, a.occurred_at])?;
    Ok(id)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(e.to_string()))?
}
