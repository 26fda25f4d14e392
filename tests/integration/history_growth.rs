//! No request, step or import row may cost more as stored history grows. The hot
//! paths (a form post, a beacon, an event's ingestion with the steps it runs, an
//! import row, a timeline page) run on a store with little history and again on
//! one with ten times as much, and SQLite's own statement counters say what each
//! cost: virtual machine steps, and steps of full table scans.
//!
//! The history is shaped as the expensive case: one busy visitor (a kiosk, an
//! office behind one address) posting the form again and again, one contact with
//! a long timeline, and many finished executions. `cargo bench --bench
//! history_growth` runs the same at 1,000,000 contacts and 10,000,000 events.

use std::collections::HashMap;
use std::sync::Mutex;

use funnel::engine::Engine;
use funnel::engine::ingest::{Event, ingest};
use funnel::engine::run::{Ctx, Effects};
use funnel::engine::site_traffic::{self, FormPost};
use rusqlite::Connection;
use rusqlite::trace::{TraceEvent, TraceEventCodes};
use serde_json::{Map, json};

/// Counters of the statements run while a measurement is on, per statement.
static COUNTERS: Mutex<Option<Counting>> = Mutex::new(None);

#[derive(Default)]
struct Counting {
    /// The cumulative counters last seen per statement (SQLite keeps counting
    /// across runs of a cached statement).
    seen: HashMap<usize, (i64, i64)>,
    /// Per statement text: VM steps, full-scan steps.
    spent: HashMap<String, (i64, i64)>,
}

fn on_trace(event: TraceEvent<'_>) {
    let TraceEvent::Profile(stmt, _) = event else {
        return;
    };
    let vm = i64::from(stmt.get_status(rusqlite::StatementStatus::VmStep));
    let scan = i64::from(stmt.get_status(rusqlite::StatementStatus::FullscanStep));
    let sql = stmt.sql().to_string();
    let mut guard = COUNTERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(c) = guard.as_mut() else { return };
    // Statements are told apart by text: the pointer of a finalized statement can
    // be reused by the next one prepared.
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        sql.hash(&mut h);
        h.finish() as usize
    };
    let (last_vm, last_scan) = c.seen.get(&key).copied().unwrap_or((0, 0));
    let (dv, ds) = if vm >= last_vm {
        (vm - last_vm, scan - last_scan)
    } else {
        (vm, scan)
    };
    c.seen.insert(key, (vm, scan));
    let e = c.spent.entry(sql).or_default();
    e.0 += dv;
    e.1 += ds;
}

/// What one operation cost, summed over its statements.
#[derive(Debug, Clone, Default)]
pub struct Cost {
    pub vm_steps: i64,
    pub fullscan_steps: i64,
    /// The statements with full-scan steps, and how many.
    pub scans: Vec<(String, i64)>,
    /// The costliest statements by VM steps.
    pub top: Vec<(String, i64)>,
}

/// A store under measurement: a connection of its own, with the engine of a
/// realistic workspace.
pub struct Bench {
    pub conn: Connection,
    pub engine: Engine,
    pub now: i64,
    _dir: tempfile::TempDir,
}

/// A form workflow that saves the contact, scores, tags, emails and calls a
/// webhook, with a concurrency limit (each finished execution looks for a queued
/// one); an event workflow that waits; the starter site's contact form.
const FORM_FLOW: &str = r#"name: Form follow-up
concurrency: 20
trigger:
  type: form_submission
  site: main
  component: contact-form
  conditions:
    - trigger.fields.email is defined
steps:
  - id: save_contact
    type: upsert_contact
    email: "{{ trigger.fields.email }}"
    name: "{{ trigger.fields.name }}"
    fields: {company: "{{ trigger.fields.company }}"}
    tags: [lead]
  - id: prospects
    type: add_to_list
    list: prospects
  - id: stage
    type: set_stage
    stage: lead
    when: contact.stage is none
  - id: note
    type: add_activity
    activity: sales_request
    data: {page: "{{ trigger.page }}"}
  - id: boost
    type: adjust_score
    points: 5
  - id: welcome
    type: send_email
    template: welcome
  - id: tell
    type: http
    url: https://hooks.example.org/new-lead
    body: {email: "{{ contact.email }}"}
    on_error: continue
"#;

const EVENT_FLOW: &str = r#"name: Demo booked
trigger:
  type: custom_event
  event: demo_booked
steps:
  - id: tag
    type: add_tag
    tags: [demo]
  - id: vars
    type: set_vars
    vars: {n: "{{ contact.score }}"}
  - id: branch
    type: if
    condition: contact.score > 3
    then: wait
  - id: wait
    type: delay
    duration: 2d
  - id: done
    type: log
    message: "{{ contact.email }}"
"#;

impl Bench {
    pub fn new() -> Bench {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        funnel::scaffold::init(root, "Growth").expect("init");
        std::fs::write(root.join("workflows/form-follow-up.yaml"), FORM_FLOW).expect("write");
        std::fs::write(root.join("workflows/demo-booked.yaml"), EVENT_FLOW).expect("write");
        std::fs::write(
            root.join("contacts/lists.yaml"),
            "lists:\n  prospects: {name: Prospects}\n",
        )
        .expect("write");
        std::fs::write(
            root.join("contacts/fields.yaml"),
            "fields:\n  company: {type: string, label: Company}\n",
        )
        .expect("write");
        let report = funnel::validate::validate_workspace(root, root).expect("load workspace");
        let errors: Vec<String> = report
            .diagnostics
            .iter()
            .filter(|d| d.severity == funnel::diagnostic::Severity::Error)
            .map(|d| format!("{}:{} {}", d.file.display(), d.line, d.message))
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        let engine = Engine::from_workspace(&report.workspace).expect("engine");
        let mut conn = Connection::open(root.join("growth.db")).expect("open");
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .expect("pragmas");
        funnel::store::migrations::sqlite_migrate(&mut conn).expect("migrate");
        let now = 1_767_603_600_000;
        let b = Bench {
            conn,
            engine,
            now,
            _dir: dir,
        };
        b.write(|ctx| {
            ctx.engine.register(ctx.conn, ctx.now)?;
            Ok(())
        });
        b
    }

    /// Runs `f` as one write transaction, as the store's writer would.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<T, funnel::engine::EngineError>,
    ) -> T {
        self.conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        let mut fx = Effects::default();
        let mut ctx = Ctx {
            conn: funnel::store::db::Db::Sqlite(&self.conn),
            engine: &self.engine,
            now: self.now,
            fx: &mut fx,
            depth: 0,
        };
        let out = f(&mut ctx).unwrap_or_else(|e| panic!("engine: {e}"));
        self.conn.execute_batch("COMMIT").expect("commit");
        out
    }

    /// What `f` cost, from the statement counters.
    pub fn measure(&self, f: impl FnOnce(&Bench)) -> Cost {
        *COUNTERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Counting::default());
        self.conn
            .trace_v2(TraceEventCodes::SQLITE_TRACE_PROFILE, Some(on_trace));
        // Counters already accumulated by cached statements are the baseline.
        f(self);
        self.conn.trace_v2(TraceEventCodes::empty(), None);
        let c = COUNTERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .unwrap_or_default();
        let mut cost = Cost::default();
        let mut all: Vec<(String, i64)> = Vec::new();
        for (sql, (vm, scan)) in c.spent {
            cost.vm_steps += vm;
            cost.fullscan_steps += scan;
            if scan > 0 {
                cost.scans.push((sql.clone(), scan));
            }
            all.push((sql, vm));
        }
        all.sort_by_key(|(_, vm)| -vm);
        all.truncate(5);
        cost.top = all;
        cost
    }

    fn post(&self, n: usize) -> FormPost {
        let mut fields = Map::new();
        fields.insert("email".into(), json!("kiosk@growth.test"));
        fields.insert("name".into(), json!("Kiosk User"));
        fields.insert("company".into(), json!(format!("Co {n}")));
        FormPost {
            site: "main".into(),
            instance: "contact-form".into(),
            page: "/".into(),
            fields,
            utm: Map::new(),
            email: Some("kiosk@growth.test".into()),
            address: "203.0.113.7".into(),
            user_agent: "Kiosk/1.0".into(),
        }
    }

    /// One of each hot operation, warmed once so every statement is cached,
    /// then measured: what one more of each costs now.
    pub fn hot_paths(&mut self) -> Vec<(&'static str, Cost)> {
        let mut out = Vec::new();
        for warm in [true, false] {
            self.now += 1_000;
            let post = self.post(1);
            let c = self.measure(|b| {
                b.write(|ctx| site_traffic::form_post(ctx, post));
            });
            if !warm {
                out.push(("form post", c));
            }
            self.now += 1_000;
            let beacon = funnel::analytics::Beacon::parse(
                br#"{"site":"main","page":"/pricing","event":"view"}"#,
            )
            .expect("beacon");
            let c = self.measure(|b| {
                b.write(|ctx| site_traffic::beacon(ctx, &beacon, "203.0.113.7", "Kiosk/1.0"));
            });
            if !warm {
                out.push(("beacon", c));
            }
            self.now += 1_000;
            let c = self.measure(|b| {
                b.write(|ctx| {
                    ingest(
                        ctx,
                        Event {
                            kind: "custom_event".into(),
                            data: json!({"event": "demo_booked"}),
                            email: Some("kiosk@growth.test".into()),
                            ..Event::default()
                        },
                    )
                });
            });
            if !warm {
                out.push(("event with its steps", c));
            }
            self.now += 1_000;
            let csv = format!(
                "email,name,company,tags\nrow{}@growth.test,Row,Acme,newsletter\nkiosk@growth.test,Kiosk User,Co 1,lead\n",
                self.now
            );
            let mut fields = std::collections::BTreeMap::new();
            fields.insert(
                "company".to_string(),
                serde_json::from_value(json!({"type": "string", "label": "Company"}))
                    .expect("field"),
            );
            let c = self.measure(|b| {
                b.write(|ctx| {
                    funnel::crm::import::import(
                        ctx.conn,
                        csv.as_bytes(),
                        &fields,
                        &Default::default(),
                        &funnel::crm::import::Options::default(),
                        ctx.now,
                        &mut |_| {},
                    )
                    .map_err(|e| funnel::engine::EngineError::Invalid(e.to_string()))
                });
            });
            if !warm {
                out.push(("import of two rows", c));
            }
            let id: i64 = self
                .conn
                .query_row(
                    "SELECT id FROM contacts WHERE email = 'kiosk@growth.test'",
                    [],
                    |r| r.get(0),
                )
                .expect("the kiosk contact");
            let c = self.measure(|b| {
                funnel::crm::directory::timeline(
                    funnel::store::db::Db::Sqlite(&b.conn),
                    id,
                    None,
                    50,
                )
                .expect("timeline");
            });
            if !warm {
                out.push(("timeline page", c));
            }
        }
        out
    }

    /// Adds `n` contacts, each with a custom field and a tag, as an import leaves
    /// them.
    pub fn add_contacts(&self, n: i64) {
        let base: i64 = self
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM contacts", [], |r| {
                r.get(0)
            })
            .expect("max id");
        self.conn.execute_batch("BEGIN").expect("begin");
        self.conn
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                 INSERT INTO contacts (id, uid, email, name, company_domain, created_at, updated_at) \
                 SELECT ?2 + i, 'grown-c-' || (?2 + i), 'person' || (?2 + i) || '@co' || (i % 5000) || '.example', \
                        'Person ' || i, 'co' || (i % 5000) || '.example', ?3, ?3 FROM n",
                rusqlite::params![n, base, self.now],
            )
            .expect("contacts");
        self.conn
            .execute(
                "INSERT INTO contact_fields (contact_id, field, value_text) \
                 SELECT id, 'company', 'Company ' || (id % 5000) FROM contacts WHERE id > ?1",
                [base],
            )
            .expect("fields");
        self.conn
            .execute(
                "INSERT INTO contact_tags (contact_id, tag, added_at) \
                 SELECT id, 'newsletter', ?2 FROM contacts WHERE id > ?1",
                rusqlite::params![base, self.now],
            )
            .expect("tags");
        self.conn.execute_batch("COMMIT").expect("commit");
    }

    /// Adds history: `events` tracking events of the busy visitor (tied to its
    /// contact, as earlier posts left them) and of other visitors, a tenth as many
    /// activities on that contact's timeline, and finished executions.
    pub fn grow(&self, events: i64) {
        let visitor: String = self
            .conn
            .query_row(
                "SELECT visitor FROM analytics_events WHERE visitor IS NOT NULL ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("the busy visitor");
        let contact: i64 = self
            .conn
            .query_row(
                "SELECT id FROM contacts WHERE email = 'kiosk@growth.test'",
                [],
                |r| r.get(0),
            )
            .expect("the kiosk contact");
        self.conn.execute_batch("BEGIN").expect("begin");
        let t = self.now;
        self.conn
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                 INSERT INTO analytics_events (site_id, page, type, visitor, contact_id, data, occurred_at) \
                 SELECT 'main', '/', 'view', CASE WHEN i % 2 = 0 THEN ?2 ELSE 'v' || (i % 5000) END, \
                        CASE WHEN i % 2 = 0 THEN ?3 END, '{}', ?4 - (?1 - i) \
                 FROM n",
                rusqlite::params![events, visitor, contact, t],
            )
            .expect("events");
        self.conn
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                 INSERT INTO activities (contact_id, type, subject, data, source, occurred_at) \
                 SELECT ?2, 'page_view', '/', '{}', 'main', ?3 - (?1 - i) FROM n",
                rusqlite::params![events / 10, contact, t],
            )
            .expect("activities");
        let workflow_version: (String, String) = self
            .conn
            .query_row(
                "SELECT workflow_id, version_hash FROM executions LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("an execution");
        self.conn
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                 INSERT INTO executions (uid, workflow_id, version_hash, status, contact_id, trigger_data, state, started_at, updated_at, completed_at) \
                 SELECT 'grown-' || i || '-' || ?5, ?2, ?3, 'completed', ?4, '{}', '{}', ?5, ?5, ?5 FROM n",
                rusqlite::params![events / 10, workflow_version.0, workflow_version.1, contact, t],
            )
            .expect("executions");
        self.conn.execute_batch("COMMIT; ANALYZE").expect("commit");
    }
}

impl Default for Bench {
    fn default() -> Self {
        Bench::new()
    }
}

/// The check: no full-scan steps, and VM steps per operation at most 1.2× what
/// they were with a tenth of the history.
pub fn check(small: &[(&str, Cost)], large: &[(&str, Cost)]) -> Vec<String> {
    let mut problems = Vec::new();
    for ((name, before), (_, after)) in small.iter().zip(large) {
        if after.fullscan_steps > 0 {
            problems.push(format!("{name}: full table scans {:?}", after.scans));
        }
        let limit = before.vm_steps as f64 * 1.2 + 50.0;
        if after.vm_steps as f64 > limit {
            problems.push(format!(
                "{name}: {} VM steps with 10× the history, {} before; costliest now: {:?}",
                after.vm_steps, before.vm_steps, after.top
            ));
        }
    }
    problems
}

#[test]
fn hot_paths_cost_no_more_on_ten_times_the_history() {
    let mut bench = Bench::new();
    // A first post makes the busy visitor and its contact.
    bench.hot_paths();
    bench.add_contacts(1_000);
    bench.grow(10_000);
    let small = bench.hot_paths();
    bench.add_contacts(9_000);
    bench.grow(90_000);
    let large = bench.hot_paths();
    for ((name, a), (_, b)) in small.iter().zip(&large) {
        eprintln!(
            "{name:24} {:>8} VM steps at 10,000 events, {:>8} at 100,000",
            a.vm_steps, b.vm_steps
        );
    }
    let problems = check(&small, &large);
    assert!(
        problems.is_empty(),
        "costs grew with history:\n{}",
        problems.join("\n")
    );
    // The measurement itself works: each operation ran statements.
    for (name, c) in &large {
        assert!(c.vm_steps > 0, "{name} ran no statement");
    }
}
