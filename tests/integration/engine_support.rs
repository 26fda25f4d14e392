//! A workspace in a temporary folder, its engine on a real SQLite store file, a
//! worker with a virtual clock for timers, and a loopback HTTP server.

use std::path::PathBuf;
use std::sync::Arc;

use funnel::engine::Engine;
use funnel::engine::ingest::{Event, Ingested};
use funnel::engine::remote::Secrets;
use funnel::engine::worker::{Tick, Worker};
use funnel::store::Store;
use serde_json::Value as Json;

use super::http_server::Server;

/// Monday 2026-01-05 09:00:00 UTC.
pub const T0: i64 = 1_767_603_600_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;

/// funnel.yaml without `network.allow`: outgoing calls reach public addresses only.
pub const STRICT_CONFIG: &str = "name: Engine test\npublic_url: https://go.test.example\ntimezone: UTC\n\
email:\n  from: Test <hello@test.example>\n  outbox: .funnel/outbox\n";

/// funnel.yaml whose outgoing calls may reach the loopback test server.
pub const CONFIG: &str = "name: Engine test\npublic_url: https://go.test.example\ntimezone: UTC\n\
email:\n  from: Test <hello@test.example>\n  outbox: .funnel/outbox\nnetwork:\n  allow: [127.0.0.1]\n";

pub const CONTACT_FILES: &[(&str, &str)] = &[
    (
        "contacts/lists.yaml",
        "lists:\n  prospects: {name: Prospects}\n  vip: {name: VIPs}\n",
    ),
    (
        "contacts/fields.yaml",
        "fields:\n  company: {type: string, label: Company}\n  size: {type: integer, label: Size}\n  plan: {type: string, label: Plan}\n",
    ),
    (
        "contacts/pipelines.yaml",
        "pipelines:\n  sales:\n    name: Sales\n    stages:\n      - {id: lead, name: Lead}\n      - {id: demo, name: Demo}\n      - {id: won, name: Won}\n",
    ),
    (
        "templates/emails/note.yaml",
        "name: Note\nkind: transactional\nsubject: 'Hello {{ contact.first_name | default(\"there\") }} {{ data.n }}'\nhtml: '<p>Hi {{ contact.name }}, item {{ data.n }}.</p>'\n",
    ),
];

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub worker: Worker,
    pub rt: tokio::runtime::Runtime,
    pub http: Server,
}

impl Harness {
    pub fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn store(&self) -> &Store {
        self.worker.store()
    }

    /// Ingests an event at `at` and waits for the remote calls it caused.
    pub fn emit_at(&self, at: i64, kind: &str, data: Json) -> Ingested {
        let ev = Event {
            kind: kind.to_string(),
            data,
            ..Event::default()
        };
        self.worker.set_time(at);
        let out = self
            .rt
            .block_on(self.worker.ingest_at(ev, at))
            .unwrap_or_else(|e| panic!("ingest {kind}: {e}"));
        self.settle();
        out
    }

    pub fn emit(&self, kind: &str, data: Json) -> Ingested {
        self.emit_at(T0, kind, data)
    }

    /// Fires the timers due at `at`, and what their remote calls cause, until quiet.
    pub fn tick(&self, at: i64) -> Tick {
        self.worker.set_time(at);
        let mut last = Tick::default();
        for _ in 0..20 {
            last = self.rt.block_on(self.worker.tick_at(at)).expect("tick");
            self.settle();
            if last.fired == 0 {
                break;
            }
        }
        last
    }

    pub fn settle(&self) {
        self.rt.block_on(self.worker.settle());
    }

    /// The first column of every row of `sql`, as text.
    pub fn column(&self, sql: &str) -> Vec<String> {
        let sql = sql.to_string();
        self.store()
            .read(move |c| {
                let mut stmt = c.prepare(&sql)?;
                let rows = stmt.query_map(funnel::db_params![], |r| {
                    use funnel::store::db::Value;
                    let v: Value<'static> = r.get(0)?;
                    Ok(match v {
                        Value::Null => "NULL".to_string(),
                        Value::Int(i) => i.to_string(),
                        Value::Real(f) => f.to_string(),
                        Value::Text(t) => t.into_owned(),
                        Value::Blob(_) => "<blob>".to_string(),
                    })
                })?;
                rows.collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_else(|e| panic!("query failed: {e}"))
    }

    pub fn one(&self, sql: &str) -> String {
        self.column(sql).into_iter().next().unwrap_or_default()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.one(sql).parse().unwrap_or(-1)
    }

    /// Statuses of a workflow's executions, oldest first.
    pub fn statuses(&self, workflow: &str) -> Vec<String> {
        self.column(&format!(
            "SELECT status FROM executions WHERE workflow_id = '{workflow}' ORDER BY id"
        ))
    }

    /// The step ids one execution ran (skips excluded), in order.
    pub fn path(&self, workflow: &str) -> Vec<String> {
        self.column(&format!(
            "SELECT r.step_id FROM step_runs r JOIN executions e ON e.id = r.execution_id \
             WHERE e.workflow_id = '{workflow}' AND r.status != 'skipped' ORDER BY r.id"
        ))
    }

    /// A step's stored output.
    pub fn output(&self, workflow: &str, step: &str) -> Json {
        let text = self.one(&format!(
            "SELECT r.output FROM step_runs r JOIN executions e ON e.id = r.execution_id \
             WHERE e.workflow_id = '{workflow}' AND r.step_id = '{step}' ORDER BY r.id DESC LIMIT 1"
        ));
        serde_json::from_str(&text).unwrap_or(Json::Null)
    }

    pub fn deliver_outbox(&self) -> usize {
        self.rt
            .block_on(self.worker.deliver_outbox())
            .expect("outbox delivery")
    }
}

/// Builds the workspace (funnel.yaml and the contact files unless given; `$SERVER`
/// in a file becomes the loopback server's URL), checks
/// it validates, and starts a worker on a fresh store.
pub fn harness(files: &[(&str, &str)]) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let http = Server::start();
    let mut all: Vec<(&str, &str)> = vec![("funnel.yaml", CONFIG)];
    all.extend_from_slice(CONTACT_FILES);
    for (path, text) in files {
        all.retain(|(p, _)| p != path);
        all.push((path, text));
    }
    for (path, text) in &all {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text.replace("$SERVER", &http.url)).expect("write workspace file");
    }
    let engine = engine_of(root);
    let store = crate::backend::open(root);
    let secrets = Secrets::default()
        .with("HOOK_URL", &format!("{}/ok", http.url))
        .with("SOCIAL_TOKEN", "secret-token");
    let worker = Worker::with_secrets(store, Arc::new(engine), secrets).expect("worker");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(worker.prepare(T0)).expect("prepare");
    Harness {
        dir,
        worker,
        rt,
        http,
    }
}

/// The engine of the workspace at `root`, which must validate without errors.
pub fn engine_of(root: &std::path::Path) -> Engine {
    let report = funnel::validate::validate_workspace(root, root).expect("load workspace");
    let errors: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == funnel::diagnostic::Severity::Error)
        .map(|d| format!("{}:{}:{} {}", d.file.display(), d.line, d.column, d.message))
        .collect();
    assert!(
        errors.is_empty(),
        "the test workspace has errors:\n{}",
        errors.join("\n")
    );
    Engine::from_workspace(&report.workspace).expect("engine")
}

/// A workflow file triggered by the custom event `go`.
pub fn on_go(steps: &str) -> String {
    format!("name: t\ntrigger:\n  type: custom_event\n  event: go\nsteps:\n{steps}")
}
