//! The store on real SQLite files and the real PostgreSQL: the migration twins, the
//! group commit, backup during writes, and one story run against both backends.
//!
//! PostgreSQL is `postgres://root@127.0.0.1:5432/test` (or `FUNNEL_TEST_PG`); each
//! test works in a schema of its own. Without a server the PostgreSQL tests skip
//! with a message, except under CI (`CI=true`), where they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use funnel::model::config::Synchronous;
use funnel::store::{NewActivity, NewContact, SqliteStore, StoreLocation, ops::Store};

fn pg_url() -> String {
    std::env::var("FUNNEL_TEST_PG").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

/// A fresh schema on the test server, and a URL that works in it; `None` (after
/// saying why) when no server answers outside CI.
async fn pg_schema() -> Option<(tokio_postgres::Client, String, String)> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let url = pg_url();
    let (client, conn) = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL at {url} is required under CI: {e}");
            }
            eprintln!("skipping: no PostgreSQL at {url} ({e})");
            return None;
        }
    };
    tokio::spawn(conn);
    let schema = format!(
        "funnel_test_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .expect("create schema");
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    Some((client, schema, scoped))
}

async fn drop_schema(client: &tokio_postgres::Client, schema: &str) {
    let _ = client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await;
}

type Shape = BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>;

fn sqlite_shape(path: &std::path::Path) -> Shape {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut shape = Shape::new();
    let mut tables = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE 'contacts_fts%' AND name <> 'refinery_schema_history'",
        )
        .expect("prepare");
    let names: Vec<String> = tables
        .query_map([], |r| r.get(0))
        .expect("tables")
        .collect::<Result<_, _>>()
        .expect("rows");
    for t in names {
        let cols: BTreeSet<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
            .expect("cols")
            .query_map([], |r| r.get(0))
            .expect("q")
            .collect::<Result<_, _>>()
            .expect("rows");
        let idx: BTreeSet<String> = conn
            .prepare(&format!(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '{t}' AND sql IS NOT NULL"
            ))
            .expect("idx")
            .query_map([], |r| r.get(0))
            .expect("q")
            .collect::<Result<_, _>>()
            .expect("rows");
        shape.insert(t, (cols, idx));
    }
    shape
}

async fn pg_shape(client: &tokio_postgres::Client, schema: &str) -> Shape {
    let mut shape = Shape::new();
    let tables = client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 \
             AND table_name <> 'refinery_schema_history'",
            &[&schema],
        )
        .await
        .expect("tables");
    for row in tables {
        let t: String = row.get(0);
        let cols = client
            .query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
                &[&schema, &t],
            )
            .await
            .expect("cols")
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        // Indexes made by CREATE INDEX, not those behind primary keys and UNIQUE.
        let idx = client
            .query(
                "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
                 JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
                 WHERE n.nspname = $1 AND t.relname = $2 \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
                &[&schema, &t],
            )
            .await
            .expect("idx")
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        shape.insert(t, (cols, idx));
    }
    shape
}

#[tokio::test]
async fn both_migration_sets_build_the_same_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("funnel.db");
    drop(SqliteStore::open(&path, Synchronous::Full).expect("open sqlite"));
    let sqlite = sqlite_shape(&path);
    let Some((client, schema, url)) = pg_schema().await else {
        return;
    };
    let open = url.clone();
    tokio::task::spawn_blocking(move || funnel::store::postgres::PgStore::open(&open))
        .await
        .expect("join")
        .expect("migrate pg");
    let mut pg = pg_shape(&client, &schema).await;
    drop_schema(&client, &schema).await;

    // The documented dialect differences (see the migrations' headers), and nothing else.
    let contacts_pg = pg.get_mut("contacts").expect("contacts in pg");
    assert!(contacts_pg.0.remove("search"), "pg has contacts.search");
    assert!(
        contacts_pg.1.remove("contacts_search"),
        "pg has its GIN index"
    );
    let fields_pg = pg.get_mut("contact_fields").expect("contact_fields in pg");
    assert!(
        fields_pg.1.remove("contact_fields_search"),
        "pg has the GIN index over custom text fields"
    );
    let sqlite_fts = rusqlite::Connection::open(&path)
        .expect("open")
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'contacts_fts'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .expect("fts");
    assert_eq!(sqlite_fts, 1, "sqlite has contacts_fts");
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        pg.keys().collect::<Vec<_>>(),
        "tables differ"
    );
    for (table, (cols, idx)) in &sqlite {
        let (pg_cols, pg_idx) = &pg[table];
        assert_eq!(cols, pg_cols, "columns of {table} differ");
        assert_eq!(idx, pg_idx, "indexes of {table} differ");
    }
}

#[test]
fn concurrent_writers_are_all_durable_in_order_per_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::backend::open(dir.path());
    store
        .write(|c| {
            c.execute_batch(&format!(
                "CREATE TABLE probe (id {}, k INTEGER, seq INTEGER)",
                auto_id()
            ))?;
            Ok(())
        })
        .wait()
        .expect("create probe");
    let threads = 32;
    let per = 300;
    let handles: Vec<_> = (0..threads)
        .map(|k| {
            let store = store.clone();
            std::thread::spawn(move || {
                for seq in 0..per {
                    store
                        .write(move |c| {
                            c.prepare_cached("INSERT INTO probe (k, seq) VALUES (?1, ?2)")?
                                .execute(funnel::db_params![k, seq])?;
                            Ok(())
                        })
                        .wait()
                        .expect("durable write");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer thread");
    }
    drop(store);
    // Reopened: what was acknowledged is there, each key in order.
    let rows: Vec<(i64, i64)> = crate::backend::open(dir.path())
        .read(|c| {
            let mut stmt = c.prepare("SELECT k, seq FROM probe ORDER BY id")?;
            let rows = stmt.query_map(funnel::db_params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .expect("rows");
    assert_eq!(rows.len() as i64, threads * per);
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    for (k, seq) in rows {
        let prev = last.insert(k, seq);
        assert_eq!(prev.map_or(0, |p| p + 1), seq, "key {k} out of order");
    }
}

/// An auto-numbered primary key, in the backend's spelling (test tables only; the
/// store's own are in its migrations).
fn auto_id() -> &'static str {
    if crate::backend::is_postgres() {
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    } else {
        "INTEGER PRIMARY KEY"
    }
}

#[test]
fn a_failing_write_does_not_undo_its_neighbours_in_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::backend::open(dir.path());
    store
        .write(|c| c.execute_batch("CREATE TABLE u (v TEXT UNIQUE)"))
        .wait()
        .expect("create");
    let tickets: Vec<_> = (0..200)
        .map(|i| {
            store.write(move |c| {
                // Every tenth value repeats the one before it and must fail alone.
                let v = if i % 10 == 9 { i - 1 } else { i };
                c.execute(
                    "INSERT INTO u (v) VALUES (?1)",
                    funnel::db_params![v.to_string()],
                )?;
                Ok(())
            })
        })
        .collect();
    let results: Vec<_> = tickets.into_iter().map(|t| t.wait()).collect();
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 20);
    let n: i64 = store
        .read(|c| c.query_row("SELECT count(*) FROM u", funnel::db_params![], |r| r.get(0)))
        .expect("count");
    assert_eq!(n, 180);
}

#[test]
fn a_backup_taken_during_writes_restores_to_a_consistent_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let live = dir.path().join("live");
    let schema = format!(
        "CREATE TABLE ledger (id {}, amount INTEGER NOT NULL);
         CREATE TABLE total (id INTEGER PRIMARY KEY CHECK (id = 1), sum INTEGER NOT NULL);",
        auto_id()
    );
    let store = crate::backend::open(&live);
    let ddl = schema.clone();
    store
        .write(move |c| {
            c.execute_batch(&ddl)?;
            c.execute_batch("INSERT INTO total VALUES (1, 0)")?;
            Ok(())
        })
        .wait()
        .expect("create");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (store, stop, acked) = (store.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Two rows that must always agree: a ledger entry and the total.
                    store
                        .write(|c| {
                            c.prepare_cached("INSERT INTO ledger (amount) VALUES (3)")?
                                .execute(funnel::db_params![])?;
                            c.prepare_cached("UPDATE total SET sum = sum + 3")?
                                .execute(funnel::db_params![])?;
                            Ok(())
                        })
                        .wait()
                        .expect("write");
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    while acked.load(Ordering::Relaxed) < 500 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let before = acked.load(Ordering::Relaxed) as i64;
    let backup = dir.path().join("backup.db");
    store.backup_to(&backup).expect("backup");
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    drop(store);

    // Into another store (its own file or schema) with the same tables.
    let other = dir.path().join("other");
    let target = crate::backend::open(&other);
    target
        .write(move |c| c.execute_batch(&schema))
        .wait()
        .expect("create");
    drop(target);
    Store::restore(&crate::backend::location(&other), &backup).expect("restore");
    let restored = crate::backend::open(&other);
    assert!(restored.check().expect("check").is_empty());
    let (rows, sum): (i64, i64) = restored
        .read(|c| {
            c.query_row(
                "SELECT count(*), (SELECT sum FROM total) FROM ledger",
                funnel::db_params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .expect("totals");
    assert_eq!(
        sum,
        rows * 3,
        "the backup caught a half-written transaction"
    );
    assert!(
        rows >= before,
        "writes acknowledged before the backup are in it"
    );
    // The restored store goes on numbering after the restored rows.
    restored
        .write(|c| {
            c.execute(
                "INSERT INTO ledger (amount) VALUES (3)",
                funnel::db_params![],
            )?;
            Ok(())
        })
        .wait()
        .expect("insert after restore");
}

/// One story, both backends: upsert by normalized email, update, activities, timeline.
async fn contact_story(store: &Store) {
    let at = 1_767_225_600_000;
    let (id, created) = store
        .upsert_contact(
            NewContact {
                email: "  Ada@Example.COM ".into(),
                name: Some("Ada".into()),
                ..NewContact::default()
            },
            at,
        )
        .await
        .expect("create");
    assert!(created);
    let (again, created) = store
        .upsert_contact(
            NewContact {
                email: "ada@example.com".into(),
                phone: Some("+44 20 7946 0000".into()),
                ..NewContact::default()
            },
            at + 1,
        )
        .await
        .expect("update");
    assert_eq!((again, created), (id, false));
    let c = store
        .contact_by_email("ADA@example.com")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(c.email, "ada@example.com");
    assert_eq!(
        c.name.as_deref(),
        Some("Ada"),
        "an update keeps what it does not give"
    );
    assert_eq!(c.phone.as_deref(), Some("+44 20 7946 0000"));
    for i in 0..5 {
        store
            .add_activity(NewActivity {
                contact_id: id,
                kind: "page_view".into(),
                subject: Some(format!("/page-{i}")),
                data: serde_json::json!({"duration": i}),
                source: Some("site:demo".into()),
                occurred_at: at + 1000 * i,
            })
            .await
            .expect("activity");
    }
    let timeline = store.timeline(id, 3).await.expect("timeline");
    let subjects: Vec<_> = timeline
        .iter()
        .filter_map(|a| a.subject.as_deref())
        .collect();
    assert_eq!(subjects, ["/page-4", "/page-3", "/page-2"]);
    assert_eq!(timeline[0].data["duration"], 4);
    let c = store
        .contact_by_email("ada@example.com")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(c.last_activity, Some(at + 4000));
    assert!(
        store
            .upsert_contact(
                NewContact {
                    email: "not-an-email".into(),
                    ..NewContact::default()
                },
                at
            )
            .await
            .is_err()
    );
    store
        .audit(
            "test",
            "contact.created",
            "contact",
            Some(&c.uid),
            serde_json::json!({}),
            at,
        )
        .await
        .expect("audit");
}

#[tokio::test]
async fn the_contact_story_holds_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = StoreLocation::Sqlite {
        path: dir.path().join("funnel.db"),
        synchronous: Synchronous::Full,
    };
    let store = Store::open(&location).await.expect("open");
    contact_story(&store).await;
}

#[tokio::test]
async fn the_contact_story_holds_on_postgres() {
    let Some((client, schema, url)) = pg_schema().await else {
        return;
    };
    let store = Store::open(&StoreLocation::Postgres { url })
        .await
        .expect("open");
    contact_story(&store).await;
    drop(store);
    drop_schema(&client, &schema).await;
}

/// Timers on either backend: each dedupe key schedules once; two workers claiming
/// at the same time never get the same timer; a lapsed lease can be taken over.
async fn timer_story(a: &Store, b: &Store) {
    use funnel::store::timers::NewTimer;
    let now = 1_767_225_600_000;
    let mut scheduled = 0;
    for i in 0..300 {
        // Every occurrence is scheduled twice, as two schedulers would.
        let key = format!("cron:digest:{}", i % 150);
        let t = NewTimer {
            kind: "cron".into(),
            execution_id: None,
            due_at: now - 1000 + i,
            payload: serde_json::json!({"occurrence": i % 150}),
            dedupe_key: Some(key),
        };
        if a.schedule_timer(t).await.expect("schedule").is_some() {
            scheduled += 1;
        }
    }
    assert_eq!(scheduled, 150, "each key is scheduled once");
    let later = NewTimer {
        kind: "delay".into(),
        execution_id: None,
        due_at: now + 60_000,
        payload: serde_json::json!({}),
        dedupe_key: None,
    };
    a.schedule_timer(later)
        .await
        .expect("schedule a later timer");

    let take = |store: &Store| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let batch = store.take_due_timers(now, 7).await.expect("take");
                if batch.is_empty() {
                    return ids;
                }
                for t in batch {
                    ids.push(t.id);
                }
            }
        })
    };
    let (ta, tb) = (take(a), take(b));
    let (ids_a, ids_b) = (ta.await.expect("a"), tb.await.expect("b"));
    let all: BTreeSet<i64> = ids_a.iter().chain(&ids_b).copied().collect();
    assert_eq!(ids_a.len() + ids_b.len(), 150, "every due timer taken");
    assert_eq!(all.len(), 150, "no timer taken twice");

    // A worker that dies while handling its timers (its transaction rolled back)
    // leaves them to the others.
    let later_due = now + 61_000;
    let died = a
        .write(move |db| {
            let got = funnel::store::timers::take_due(db, later_due, 100)?;
            assert_eq!(got.len(), 1, "the later timer is due by then");
            Err::<(), _>(funnel::store::StoreError::Invalid("the worker died".into()))
        })
        .await;
    assert!(died.is_err());
    let retaken = b.take_due_timers(later_due, 100).await.expect("retake");
    assert_eq!(retaken.len(), 1, "the timer came back and was taken once");
    assert_eq!(retaken[0].kind, "delay");
    assert!(
        a.take_due_timers(later_due, 100)
            .await
            .expect("nothing left")
            .is_empty()
    );
}

#[tokio::test]
async fn timers_fire_once_per_key_and_are_taken_once_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = StoreLocation::Sqlite {
        path: dir.path().join("funnel.db"),
        synchronous: Synchronous::Full,
    };
    let store = Store::open(&location).await.expect("open");
    timer_story(&store, &store.clone()).await;
}

#[tokio::test]
async fn timers_fire_once_per_key_and_are_taken_once_on_postgres() {
    let Some((client, schema, url)) = pg_schema().await else {
        return;
    };
    // Two connections, as two daemons would have.
    let a = Store::open(&StoreLocation::Postgres { url: url.clone() })
        .await
        .expect("open a");
    let b = Store::open(&StoreLocation::Postgres { url })
        .await
        .expect("open b");
    timer_story(&a, &b).await;
    drop((a, b));
    drop_schema(&client, &schema).await;
}

/// The seam's one statement text on both backends: placeholders, JSON documents
/// in and out, integers, reals, NULLs, the shared functions (`json`, two-argument
/// `max`, `instr`), a missing row, a failing job alone rolled back, and a
/// multi-row insert read back in order.
fn seam_story(store: &Store) {
    use funnel::store::db::{OptionalRow, params};
    let doc = serde_json::json!({"email": "Ada@Example.com", "tags": ["a", "b"]});
    let id: i64 =
        store
            .write(move |db| {
                db.query_row(
                "INSERT INTO audit_log (actor, action, entity, entity_id, details, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, json(?5), ?6) RETURNING id",
                params!["ada", "test", "seam", None::<String>, doc.to_string(), 10_i64],
                |r| r.get(0),
            )
            })
            .wait()
            .expect("insert");
    let (details, at, missing): (serde_json::Value, i64, Option<String>) = store
        .read(|db| {
            db.query_row(
                "SELECT details, max(recorded_at, ?2), entity_id FROM audit_log WHERE id = ?1",
                params![id, 25_i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .expect("read");
    assert_eq!(details["tags"][1], "b");
    assert_eq!(at, 25);
    assert_eq!(missing, None);
    let found: i64 = store
        .read(|db| {
            db.query_row(
                "SELECT count(*) FROM audit_log WHERE instr(lower(details), ?1) > 0",
                params!["ada@example.com"],
                |r| r.get(0),
            )
        })
        .expect("instr");
    assert_eq!(found, 1);
    let none = store
        .read(|db| {
            db.query_row(
                "SELECT actor FROM audit_log WHERE id = ?1",
                params![-1_i64],
                |r| r.get::<String>(0),
            )
            .optional()
        })
        .expect("optional");
    assert_eq!(none, None);
    // A job that fails half-way leaves nothing; its neighbour stands.
    let failed = store
        .write(|db| {
            db.execute(
                "INSERT INTO audit_log (actor, action, entity, details, recorded_at) \
                 VALUES ('x', 'half', 'seam', '{}', 1)",
                params![],
            )?;
            db.execute("INSERT INTO no_such_table VALUES (1)", params![])
        })
        .wait();
    assert!(failed.is_err());
    let ok = store.write(|db| {
        let mut stmt = db.prepare_cached(
            "INSERT INTO audit_log (actor, action, entity, details, recorded_at) \
             VALUES (?1, 'many', 'seam', '{}', ?2)",
        )?;
        for i in 0..50_i64 {
            stmt.execute(params![format!("actor-{i}"), i])?;
        }
        Ok(())
    });
    ok.wait().expect("many");
    let (half, actors): (i64, Vec<String>) = store
        .read(|db| {
            let half = db.query_row(
                "SELECT count(*) FROM audit_log WHERE action = 'half'",
                params![],
                |r| r.get(0),
            )?;
            let mut stmt = db.prepare(
                "SELECT actor FROM audit_log WHERE action = ?1 ORDER BY recorded_at DESC LIMIT ?2",
            )?;
            let actors = stmt
                .query_map(params!["many", 3_i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok((half, actors))
        })
        .expect("read back");
    assert_eq!(half, 0, "the failed job's first insert was rolled back");
    assert_eq!(actors, ["actor-49", "actor-48", "actor-47"]);
    // An average is a NUMERIC on PostgreSQL and a REAL on SQLite: both read as f64.
    let avg: f64 = store
        .read(|db| {
            db.query_row(
                "SELECT avg(recorded_at) FROM audit_log WHERE action = 'many'",
                params![],
                |r| r.get(0),
            )
        })
        .expect("avg");
    assert!((avg - 24.5).abs() < 1e-9, "{avg}");
}

#[tokio::test]
async fn the_seam_story_holds_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = StoreLocation::Sqlite {
        path: dir.path().join("funnel.db"),
        synchronous: Synchronous::Full,
    };
    let store = Store::open(&location).await.expect("open");
    tokio::task::spawn_blocking(move || seam_story(&store))
        .await
        .expect("story");
}

#[tokio::test]
async fn the_seam_story_holds_on_postgres() {
    let Some((client, schema, url)) = pg_schema().await else {
        return;
    };
    let store = Store::open(&StoreLocation::Postgres { url })
        .await
        .expect("open");
    tokio::task::spawn_blocking(move || seam_story(&store))
        .await
        .expect("story");
    drop_schema(&client, &schema).await;
}

/// A page of name changes for `emails`, stamped by a laptop `node` at `wall`.
fn name_page(emails: &[String], node: &str, wall: i64) -> Vec<funnel::sync::store::Change> {
    emails
        .iter()
        .map(|e| funnel::sync::store::Change {
            email: Some(e.clone()),
            item: "f:name".into(),
            wall,
            node: node.into(),
            value: serde_json::json!(format!("{e} from the laptop")),
        })
        .collect()
}

/// Two sync pages are applied side by side on PostgreSQL's two writers: each
/// transaction waits, applied and uncommitted, for the other to have applied
/// too, which it could not if applying took the clock row's lock (V30). (An
/// apply that moves the clock's wall still locks the row, from its end to its
/// commit: here the clock is ahead of both pages.) The transaction-local flag
/// that silences the triggers ends with the apply: a later change in the
/// store is stamped as made here.
#[tokio::test]
async fn sync_pages_apply_side_by_side_on_postgres() {
    use funnel::store::db::params;
    use std::sync::mpsc::{RecvTimeoutError, channel};
    use std::time::Duration;

    let Some((client, schema, url)) = pg_schema().await else {
        return;
    };
    let store = Store::open(&StoreLocation::Postgres { url })
        .await
        .expect("open");
    assert_eq!(store.writers(), 2, "PostgreSQL's writer pool");
    let store2 = store.clone();
    tokio::task::spawn_blocking(move || {
        let store = store2;
        store
            .write_alone(funnel::sync::store::enable)
            .wait()
            .expect("sync on");
        let now = funnel::store::now_ms();
        store
            .write(move |db| db.execute("UPDATE sync_clock SET wall = ?1", params![now]))
            .wait()
            .expect("clock");
        let (a_done, a_seen) = channel::<()>();
        let (b_done, b_seen) = channel::<()>();
        let page = |first: usize, done: std::sync::mpsc::Sender<()>, other: std::sync::mpsc::Receiver<()>| {
            let emails: Vec<String> = (first..first + 50)
                .map(|i| format!("p{i}@example.org"))
                .collect();
            let changes = name_page(&emails, "laptop0000000001", now - 1_000);
            store.write_alone(move |db| {
                let applied = funnel::sync::store::apply(db, "laptop0000000001", &changes, now, None)
                    .map_err(|e| funnel::store::StoreError::Invalid(e.to_string()))?;
                let _ = done.send(());
                match other.recv_timeout(Duration::from_secs(10)) {
                    Err(RecvTimeoutError::Timeout) => Err(funnel::store::StoreError::Invalid(
                        "the other page did not apply while this one was open".into(),
                    )),
                    _ => Ok(applied.applied),
                }
            })
        };
        let a = page(0, a_done, b_seen);
        let b = page(50, b_done, a_seen);
        assert_eq!(a.wait().expect("first page"), 50);
        assert_eq!(b.wait().expect("second page"), 50);
        let (received, local): (i64, i64) = store
            .read(|db| {
                db.query_row(
                    "SELECT count(*) FILTER (WHERE peer IS NOT NULL), count(*) FILTER (WHERE peer IS NULL) \
                     FROM sync_stamps WHERE item = 'f:name'",
                    params![],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .expect("stamps");
        assert_eq!((received, local), (100, 0), "received stamps, none made here");
        store
            .write(|db| {
                db.execute(
                    "UPDATE contacts SET name = 'Edited here' WHERE email = 'p7@example.org'",
                    params![],
                )
            })
            .wait()
            .expect("edit");
        let stamped: i64 = store
            .read(|db| {
                db.query_row(
                    "SELECT count(*) FROM sync_stamps s JOIN contacts c ON c.id = s.contact_id \
                     WHERE c.email = 'p7@example.org' AND s.item = 'f:name' AND s.peer IS NULL",
                    params![],
                    |r| r.get(0),
                )
            })
            .expect("stamp");
        assert_eq!(stamped, 1, "a change after the apply is stamped as made here");
        // An erasure inside an apply (the triggers that stamp are not called)
        // still takes the person's stamps with them.
        let left: i64 = store
            .write(|db| {
                let id: i64 = db.query_row(
                    "SELECT id FROM contacts WHERE email = 'p3@example.org'",
                    params![],
                    |r| r.get(0),
                )?;
                db.execute_batch("SELECT set_config('funnel.sync_applying', '1', true)")?;
                db.execute("DELETE FROM contacts WHERE id = ?1", params![id])?;
                db.execute_batch("SELECT set_config('funnel.sync_applying', '0', true)")?;
                db.query_row(
                    "SELECT count(*) FROM sync_stamps WHERE contact_id = ?1",
                    params![id],
                    |r| r.get(0),
                )
            })
            .wait()
            .expect("erase");
        assert_eq!(left, 0, "no stamp outlives its contact");
    })
    .await
    .expect("story");
    drop_schema(&client, &schema).await;
}

/// A day's counter that every post bumps does not hold PostgreSQL's two
/// writers one behind the other: each transaction's bumps wait for its commit
/// (`store::counters`), so two open transactions that bumped the same row
/// both go on; a job that fails takes its bumps with it.
#[tokio::test]
async fn counter_bumps_wait_for_the_commit_on_postgres() {
    use funnel::store::counters::{Counter, Key, bump};
    use funnel::store::db::params;
    use std::sync::mpsc::{RecvTimeoutError, channel};
    use std::time::Duration;

    let Some((client, schema, url)) = pg_schema().await else {
        return;
    };
    let store = Store::open(&StoreLocation::Postgres { url })
        .await
        .expect("open");
    let store2 = store.clone();
    tokio::task::spawn_blocking(move || {
        let store = store2;
        store
            .write(|db| {
                db.execute_batch(
                    "CREATE TABLE hits (k TEXT NOT NULL, day BIGINT NOT NULL, n BIGINT NOT NULL DEFAULT 0, \
                     PRIMARY KEY (k, day))",
                )
            })
            .wait()
            .expect("table");
        let hit = |k: &str| Counter {
            table: "hits",
            column: "n",
            keys: vec![("k", Key::Text(k.into())), ("day", Key::Int(7))],
        };
        let (a_done, a_seen) = channel::<()>();
        let (b_done, b_seen) = channel::<()>();
        let open = |done: std::sync::mpsc::Sender<()>, other: std::sync::mpsc::Receiver<()>| {
            store.write_alone(move |db| {
                bump(db, hit("a"))?;
                let _ = done.send(());
                match other.recv_timeout(Duration::from_secs(10)) {
                    Err(RecvTimeoutError::Timeout) => Err(funnel::store::StoreError::Invalid(
                        "the other transaction waited on the counter's row".into(),
                    )),
                    _ => Ok(()),
                }
            })
        };
        let a = open(a_done, b_seen);
        let b = open(b_done, a_seen);
        a.wait().expect("first transaction");
        b.wait().expect("second transaction");
        // In the writer's batches: three bumps in one job, one in a job that
        // fails.
        let kept = store.write(move |db| {
            for _ in 0..3 {
                bump(db, hit("a"))?;
            }
            bump(db, hit("b"))
        });
        let failed = store.write(move |db| {
            bump(db, hit("a"))?;
            Err::<(), _>(funnel::store::StoreError::Invalid("this job fails".into()))
        });
        kept.wait().expect("kept");
        assert!(failed.wait().is_err());
        let counts: Vec<(String, i64)> = store
            .read(|db| {
                let mut stmt = db.prepare("SELECT k, n FROM hits ORDER BY k")?;
                let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })
            .expect("counts");
        assert_eq!(counts, vec![("a".to_string(), 5), ("b".to_string(), 1)]);
    })
    .await
    .expect("the test's thread");
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("drop schema");
}
