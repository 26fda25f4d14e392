//! Simulation: the real interpreter on an in-memory store, with a virtual clock that
//! jumps from one due timer to the next and mocked remote calls. `funnel simulate`
//! and `funnel test` run on it; nothing leaves the process.
//!
//! Only the simulated workflow runs (with its sub-workflows and error workflow):
//! CRM changes it makes are reported, not fed to other workflows' triggers.

use crate::store::db::{Db, OptionalRow, params};
use serde::Serialize;
use serde_json::{Value as Json, json};

use super::ingest::{Event, Started, resolve_contact, start_checked, trigger_data};
use super::run::{Ctx, Effects, Wake, advance, is_final};
use super::{Engine, EngineError, trigger_type};
use crate::crm::{CrmEvent, contact};
use crate::model::workflow_test::{MockResponse, TestContact, TestEvent};
use crate::store::UnixMs;

/// What to simulate.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    pub workflow: String,
    /// The trigger's data (`trigger`), without `type`.
    pub trigger: Json,
    /// The clock's start, Unix ms.
    pub at: UnixMs,
    /// How far the clock may run past the start.
    pub until_ms: u64,
    pub contacts: Vec<TestContact>,
    pub http: Vec<MockResponse>,
    pub events: Vec<TestEvent>,
}

/// The default start of the virtual clock: Monday 2026-01-05 09:00 UTC.
pub const DEFAULT_START: &str = "2026-01-05T09:00:00Z";

/// The default horizon: 90 days.
pub const DEFAULT_UNTIL_MS: u64 = 90 * 86_400_000;

/// A step that ran.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceStep {
    pub workflow: String,
    pub step: String,
    pub status: String,
    pub attempt: u32,
    /// Milliseconds after the start.
    pub at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An email the simulation queued.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceEmail {
    pub workflow: String,
    pub template: String,
    pub to: String,
    pub subject: String,
    pub at: i64,
}

/// A remote request that would have gone out.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceRequest {
    pub workflow: String,
    /// The step type: `http`, `slack`, `discord` or `social_post`.
    pub kind: String,
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Json>,
    pub idempotency_key: String,
    pub status: u16,
    pub at: i64,
    /// `${NAME}` references of the request whose variable is not set here: a
    /// real run would fail the step at once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unset_secrets: Vec<String>,
}

/// Everything a simulation saw.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Trace {
    pub workflow: String,
    /// `completed`, `failed`, `waiting`, `running` or `skipped`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub path: Vec<TraceStep>,
    pub emails: Vec<TraceEmail>,
    pub http: Vec<TraceRequest>,
    /// CRM changes, as the events they raise.
    pub crm: Vec<Json>,
    /// The execution's contact at the end.
    pub contact: Option<Json>,
    /// Other workflows started (error workflows).
    pub also_started: Vec<String>,
    /// Milliseconds of virtual time that passed.
    pub elapsed: i64,
}

impl Trace {
    /// The step ids in the order they ran, once per run (retries folded in).
    pub fn step_ids(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in self.path.iter().filter(|s| s.workflow == self.workflow) {
            if s.status == "skipped" {
                continue;
            }
            if s.attempt > 1 && out.last() == Some(&s.step) {
                continue;
            }
            out.push(s.step.clone());
        }
        out
    }
}

/// Runs a scenario.
pub fn simulate(engine: &Engine, sc: &Scenario) -> Result<Trace, EngineError> {
    let program = engine
        .workflow(&sc.workflow)
        .cloned()
        .ok_or_else(|| EngineError::UnknownWorkflow(sc.workflow.clone()))?;
    let memory = crate::store::sqlite::in_memory()?;
    let conn = Db::Sqlite(&memory);
    let start = sc.at;
    let end = start.saturating_add(i64::try_from(sc.until_ms).unwrap_or(i64::MAX / 4));
    let mut sim = Sim {
        conn,
        engine,
        now: start,
        start,
        mocks: sc.http.iter().map(|m| (m.clone(), false)).collect(),
        trace: Trace {
            workflow: sc.workflow.clone(),
            ..Trace::default()
        },
        seen_emails: 0,
    };
    // Contacts as they stand before the trigger; their own CRM events are history.
    for c in &sc.contacts {
        seed_contact(conn, engine, c, start)?;
    }
    let kind = trigger_type(&program.workflow.trigger.kind);
    let mut fx = Effects::default();
    let root = {
        let mut ctx = sim.ctx(&mut fx);
        let data = trigger_data(&ctx, kind, &sc.trigger)?;
        let event = Event {
            kind: kind.to_string(),
            data: data.clone(),
            ..Event::default()
        };
        let mut contact_id = resolve_contact(&mut ctx, &event, &data)?;
        if contact_id.is_none()
            && let Some(first) = sc.contacts.first()
        {
            contact_id = contact::id_by_email(conn, &first.email)
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
        }
        start_checked(&mut ctx, &program, &data, contact_id)?
    };
    let root = match root {
        Started::Filtered => {
            sim.trace.status = "skipped".into();
            return Ok(sim.trace);
        }
        Started::Running(id) | Started::Failed(id) => id,
    };
    sim.settle(&mut fx)?;
    let mut pending_events: Vec<(i64, &TestEvent)> = sc
        .events
        .iter()
        .map(|e| {
            let after = e
                .after
                .millis()
                .map_or(0, |m| i64::try_from(m).unwrap_or(0));
            (start + after, e)
        })
        .collect();
    pending_events.sort_by_key(|(at, _)| *at);
    let mut events = pending_events.into_iter().peekable();
    loop {
        if status_of(conn, root)?.is_some_and(|s| is_final(&s)) {
            break;
        }
        let next_timer: Option<i64> =
            conn.query_row("SELECT min(due_at) FROM timers", params![], |r| r.get(0))?;
        let next_event = events.peek().map(|(at, _)| *at);
        let next = match (next_timer, next_event) {
            (Some(t), Some(e)) => t.min(e),
            (Some(t), None) => t,
            (None, Some(e)) => e,
            (None, None) => break,
        };
        if next > end {
            break;
        }
        sim.now = sim.now.max(next);
        if next_event.is_some_and(|e| e <= sim.now)
            && let Some((_, e)) = events.next()
        {
            sim.deliver(&mut fx, e)?;
            sim.settle(&mut fx)?;
            continue;
        }
        sim.fire_due(&mut fx)?;
        sim.settle(&mut fx)?;
    }
    sim.finish(root)?;
    Ok(sim.trace)
}

fn status_of(conn: Db<'_>, id: i64) -> Result<Option<String>, EngineError> {
    Ok(conn
        .query_row(
            "SELECT status FROM executions WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()?)
}

fn seed_contact(
    conn: Db<'_>,
    engine: &Engine,
    c: &TestContact,
    at: UnixMs,
) -> Result<(), EngineError> {
    let crm =
        |e: crate::crm::CrmError| EngineError::Invalid(format!("test contact {}: {e}", c.email));
    let u = contact::Upsert {
        contact: crate::store::NewContact {
            email: c.email.clone(),
            name: c.name.clone(),
            ..Default::default()
        },
        fields: c.fields.clone(),
        tags: c.tags.clone(),
        lists: Vec::new(),
    };
    let (id, _) = contact::upsert(conn, &u, at).map_err(crm)?;
    if let Some(score) = c.score {
        contact::adjust_score(
            conn,
            id,
            score,
            Some("test setup"),
            None,
            at,
            &engine.scoring,
        )
        .map_err(crm)?;
    }
    Ok(())
}

struct Sim<'a> {
    conn: Db<'a>,
    engine: &'a Engine,
    now: UnixMs,
    start: UnixMs,
    mocks: Vec<(MockResponse, bool)>,
    trace: Trace,
    seen_emails: i64,
}

impl<'a> Sim<'a> {
    fn ctx<'b>(&self, fx: &'b mut Effects) -> Ctx<'b>
    where
        'a: 'b,
    {
        Ctx {
            conn: self.conn,
            engine: self.engine,
            now: self.now,
            fx,
            depth: 0,
        }
    }

    /// Answers remote calls from the mocks until none are left, and notes what the
    /// last transaction did.
    fn settle(&mut self, fx: &mut Effects) -> Result<(), EngineError> {
        loop {
            self.note_crm(fx);
            self.note_emails()?;
            let calls = std::mem::take(&mut fx.remote);
            if calls.is_empty() {
                return Ok(());
            }
            for call in calls {
                let workflow = workflow_of(self.conn, call.execution)?;
                let (status, body) = self.mock(&call.request.method, &call.request.url);
                self.trace.http.push(TraceRequest {
                    workflow,
                    kind: call.request.kind.clone(),
                    method: call.request.method.clone(),
                    url: call.request.url.clone(),
                    body: call.request.body.clone(),
                    idempotency_key: call.key.clone(),
                    status,
                    at: self.now - self.start,
                    unset_secrets: super::remote::unset_secrets(
                        &call.request,
                        &super::remote::Secrets::default(),
                    ),
                });
                let result =
                    if (200..300).contains(&status) || call.request.accept.contains(&status) {
                        Ok(super::remote::Response { status, body }.output())
                    } else {
                        Err(super::remote::CallError::transient(format!(
                            "{} {} answered {status}: {body}",
                            call.request.method, call.request.url
                        )))
                    };
                let wake = Wake::Remote {
                    fiber: call.fiber,
                    key: call.key,
                    result,
                };
                let mut ctx = self.ctx(fx);
                advance(&mut ctx, call.execution, &wake)?;
            }
        }
    }

    /// The first unused mock that matches, else 200 with an empty body.
    fn mock(&mut self, method: &str, url: &str) -> (u16, Json) {
        for (m, used) in &mut self.mocks {
            let method_ok = m
                .method
                .and_then(|x| serde_json::to_value(x).ok())
                .is_none_or(|x| x.as_str() == Some(method));
            let url_ok = match m.url.strip_suffix('*') {
                Some(prefix) => url.starts_with(prefix),
                None => m.url == url,
            };
            if method_ok && url_ok && !*used {
                *used = true;
                return (
                    m.status.unwrap_or(200),
                    m.body.clone().unwrap_or(Json::Null),
                );
            }
        }
        (200, Json::Null)
    }

    fn note_crm(&mut self, fx: &mut Effects) {
        for e in fx.events.drain(..) {
            self.trace.crm.push(crm_json(&e));
        }
    }

    fn note_emails(&mut self) -> Result<(), EngineError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, s.template_id, o.to_address, o.subject, e.workflow_id FROM outbox o \
             JOIN email_sends s ON s.id = o.send_id LEFT JOIN executions e ON e.id = s.execution_id \
             WHERE o.id > ?1 ORDER BY o.id",
        )?;
        let rows = stmt.query_map(params![self.seen_emails], |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<String>(1)?,
                r.get::<String>(2)?,
                r.get::<String>(3)?,
                r.get::<Option<String>>(4)?,
            ))
        })?;
        for row in rows {
            let (id, template, to, subject, workflow) = row?;
            self.seen_emails = id;
            self.trace.emails.push(TraceEmail {
                workflow: workflow.unwrap_or_default(),
                template,
                to,
                subject,
                at: self.now - self.start,
            });
        }
        Ok(())
    }

    /// Fires every timer due at the current time, in order.
    fn fire_due(&mut self, fx: &mut Effects) -> Result<(), EngineError> {
        let due = super::run::take_due_timers(self.conn, self.now, usize::MAX)?;
        for super::run::DueTimer {
            execution, payload, ..
        } in due
        {
            let (Some(execution), Ok(wake)) = (execution, serde_json::from_str::<Wake>(&payload))
            else {
                continue;
            };
            let mut ctx = self.ctx(fx);
            advance(&mut ctx, execution, &wake)?;
            self.settle(fx)?;
        }
        Ok(())
    }

    /// Delivers a test's event to whoever waits for it.
    fn deliver(&mut self, fx: &mut Effects, e: &TestEvent) -> Result<(), EngineError> {
        let kind = if super::ingest::is_known_kind(&e.event) {
            e.event.clone()
        } else {
            "custom_event".to_string()
        };
        let mut data = match &e.data {
            Json::Object(m) => m.clone(),
            _ => serde_json::Map::new(),
        };
        if kind == "custom_event" {
            data.insert("event".into(), json!(e.event));
        }
        let mut ctx = self.ctx(fx);
        let data = trigger_data(&ctx, &kind, &Json::Object(data))?;
        let event = Event {
            kind,
            data: data.clone(),
            ..Event::default()
        };
        let contact = resolve_contact(&mut ctx, &event, &data)?;
        // Without a contact in the event, it is about the simulated execution's one.
        let contact = match contact {
            Some(c) => Some(c),
            None => self
                .conn
                .query_row(
                    "SELECT contact_id FROM executions WHERE workflow_id = ?1 ORDER BY id LIMIT 1",
                    params![&self.trace.workflow],
                    |r| r.get(0),
                )
                .ok()
                .flatten(),
        };
        let mut ingested = super::ingest::Ingested::default();
        super::ingest::deliver_to_waiting(&mut ctx, &event, &data, contact, &mut ingested)?;
        Ok(())
    }

    fn finish(&mut self, root: i64) -> Result<(), EngineError> {
        let (status, error, contact_id): (String, Option<String>, Option<i64>) =
            self.conn.query_row(
                "SELECT status, error, contact_id FROM executions WHERE id = ?1",
                params![root],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
        self.trace.status = status;
        self.trace.error = error;
        self.trace.elapsed = self.now - self.start;
        let mut stmt = self.conn.prepare(
            "SELECT e.workflow_id, r.step_id, r.status, r.attempt, r.started_at, r.output, r.error \
             FROM step_runs r JOIN executions e ON e.id = r.execution_id ORDER BY r.id",
        )?;
        let rows = stmt.query_map(params![], |r| {
            Ok(TraceStep {
                workflow: r.get(0)?,
                step: r.get(1)?,
                status: r.get(2)?,
                attempt: r.get(3)?,
                at: r.get::<i64>(4)? - self.start,
                output: r
                    .get::<Option<String>>(5)?
                    .and_then(|o| serde_json::from_str(&o).ok()),
                error: r.get(6)?,
            })
        })?;
        self.trace.path = rows.collect::<Result<_, _>>()?;
        let mut others = self.conn.prepare(
            "SELECT DISTINCT workflow_id FROM executions WHERE workflow_id != ?1 ORDER BY 1",
        )?;
        self.trace.also_started = others
            .query_map(params![self.trace.workflow], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if let Some(id) = contact_id {
            self.trace.contact = contact::view(self.conn, id, &self.engine.scoring, self.now).ok();
        }
        Ok(())
    }
}

fn workflow_of(conn: Db<'_>, execution: i64) -> Result<String, EngineError> {
    Ok(conn.query_row(
        "SELECT workflow_id FROM executions WHERE id = ?1",
        params![execution],
        |r| r.get(0),
    )?)
}

fn crm_json(e: &CrmEvent) -> Json {
    let ev = super::ingest::from_crm(e);
    let mut data = ev.data;
    if let Some(obj) = data.as_object_mut() {
        obj.insert("type".into(), json!(ev.kind));
    }
    data
}

/// Parses an RFC 3339 start time.
pub fn parse_start(text: Option<&str>) -> Result<UnixMs, EngineError> {
    let text = text.unwrap_or(DEFAULT_START);
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| EngineError::Invalid(format!("`{text}` is not an RFC 3339 time: {e}")))
}
