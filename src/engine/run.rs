//! The interpreter: starting executions and advancing them.
//!
//! [`advance`] runs an execution's runnable fibers step by step until each one
//! waits (a timer, an event, a remote call, its children) or ends, and writes every
//! step record, the new state and the local effects on the caller's connection: the
//! caller's transaction makes them one atomic unit, so a crash resumes from the last
//! committed step. Remote calls are returned in [`Effects`] for the caller to send
//! after the commit; their results come back as a [`Wake::Remote`].

use std::sync::Arc;

use crate::store::db::{Db, OptionalRow, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::program::Program;
use super::remote::Request;
use super::state::{ExecState, Wait, cap_output};
use super::steps::{Outcome, execute};
use super::{Engine, EngineError};
use crate::crm::CrmEvent;
use crate::model::step::{OnError, OnErrorHandler, OnErrorSimple, Step};
use crate::store::UnixMs;

/// Most steps one call of [`advance`] runs before it yields (a `run` timer picks
/// the execution up again), so one execution cannot hold the writer for long.
const STEP_BUDGET: u32 = 1_000;

/// Deepest nesting of executions started or woken within one transaction
/// (sub-workflows, error workflows, cascades of CRM events).
pub const MAX_DEPTH: u32 = 8;

/// What happens to an execution, besides running its next steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "wake", rename_all = "snake_case")]
pub enum Wake {
    /// Continue (after a step budget ran out, or a cross-process nudge).
    Run,
    /// A timer of `fiber` came due: a delay's end, a retry's backoff, an event
    /// wait's timeout, or a remote call's recovery deadline.
    Timer { fiber: u32, seq: u64 },
    /// The awaited event arrived.
    Event { fiber: u32, seq: u64, data: Json },
    /// A remote call returned.
    Remote {
        fiber: u32,
        key: String,
        result: Result<Json, super::remote::CallError>,
    },
    /// A sub-workflow execution this fiber waits for has finished.
    Child { fiber: u32 },
}

/// A remote call to send once the transaction that asked for it has committed.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteCall {
    pub execution: i64,
    pub fiber: u32,
    pub key: String,
    pub request: Request,
}

/// What a transaction of the engine leaves for its caller.
#[derive(Debug, Default)]
pub struct Effects {
    pub remote: Vec<RemoteCall>,
    /// CRM changes that triggers may react to (the ingestion loop feeds them back).
    pub events: Vec<CrmEvent>,
    /// The earliest timer scheduled, to wake a sleeping worker.
    pub next_due: Option<UnixMs>,
    /// Emails queued in the outbox.
    pub emails: usize,
    /// Executions started.
    pub started: Vec<i64>,
    /// What an operator watching the process wants to hear about.
    pub notes: Vec<Note>,
}

/// An execution ended or a step failed: one line for a person watching the
/// process (`funnel preview`, the daemon's log), and an event of the API's stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Note {
    Finished {
        execution: String,
        workflow: String,
        status: &'static str,
        /// The failure, or the first step failure that `on_error: continue` passed.
        error: Option<String>,
    },
    StepFailed {
        execution: String,
        workflow: String,
        step: String,
        message: String,
        /// Whether the step will be tried again.
        retrying: bool,
    },
}

impl Effects {
    fn due(&mut self, at: UnixMs) {
        self.next_due = Some(self.next_due.map_or(at, |d| d.min(at)));
    }
}

/// The engine inside one transaction.
pub struct Ctx<'a> {
    pub conn: Db<'a>,
    pub engine: &'a Engine,
    pub now: UnixMs,
    pub fx: &'a mut Effects,
    pub depth: u32,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("now", &self.now).finish()
    }
}

/// An execution being advanced.
#[derive(Debug)]
pub struct Exec {
    pub id: i64,
    pub uid: String,
    pub program: Arc<Program>,
    pub contact_id: Option<i64>,
    pub trigger: Json,
    pub state: ExecState,
    pub status: &'static str,
    pub error: Option<String>,
    /// The contact as expressions see it, loaded once and dropped after a change.
    pub contact_view: Option<Json>,
}

impl Exec {
    /// The sequence number and idempotency key of the effect of `fiber`'s current
    /// step: `<execution uid>:<step id>:<sequence>`, the same on every retry.
    pub fn effect_key(&mut self, fiber: u32) -> (u64, String) {
        let seq = self.state.effect_seq(fiber);
        let step = self
            .state
            .fibers
            .iter()
            .find(|f| f.id == fiber)
            .and_then(|f| f.at.clone())
            .unwrap_or_default();
        (seq, format!("{}:{step}:{seq}", self.uid))
    }
}

/// Starts an execution of `program` and advances it as far as it goes.
pub fn start(
    ctx: &mut Ctx<'_>,
    program: &Arc<Program>,
    trigger: Json,
    contact_id: Option<i64>,
    parent: Option<(i64, u32)>,
) -> Result<i64, EngineError> {
    let conn = ctx.conn;
    ensure_version(ctx, program)?;
    let mut state = ExecState {
        vars: program
            .workflow
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        parent,
        ..ExecState::default()
    };
    let first = program.lists[0]
        .first
        .map(|i| program.nodes[i].step.id.to_string());
    state.spawn(first, None, None);
    // Over the workflow's limit, it is stored queued (with its state) and started
    // when another one finishes; decided before the insert, so a queued start is
    // one row written once.
    let queued = match program.workflow.concurrency {
        Some(limit) => must_queue(ctx, &program.id, limit)?,
        None => false,
    };
    let (status, state_text) = if queued {
        let text =
            serde_json::to_string(&state).map_err(|e| EngineError::BadState(e.to_string()))?;
        ("queued", text)
    } else {
        ("running", "{}".to_string())
    };
    let uid = crate::uid::new(ctx.now);
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO executions (uid, workflow_id, version_hash, contact_id, status, \
             trigger_data, state, started_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) RETURNING id",
        )?
        .query_row(
            params![
                uid,
                program.id,
                program.hash,
                contact_id,
                status,
                trigger.to_string(),
                state_text,
                ctx.now
            ],
            |r| r.get(0),
        )?;
    ctx.fx.started.push(id);
    if queued {
        return Ok(id);
    }
    let mut ex = Exec {
        id,
        uid,
        program: program.clone(),
        contact_id,
        trigger,
        state,
        status: "running",
        error: None,
        contact_view: None,
    };
    drive(ctx, &mut ex)?;
    Ok(id)
}

/// Stores a workflow version by its hash unless the store has it (checked first:
/// a lookup is cheaper than binding the whole definition on every start).
pub(crate) fn ensure_version(ctx: &Ctx<'_>, program: &Program) -> Result<(), EngineError> {
    let known: bool = ctx
        .conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM workflow_versions WHERE hash = ?1)")?
        .query_row(params![&program.hash], |r| r.get(0))?;
    if !known {
        ctx.conn
            .prepare_cached(
                "INSERT INTO workflow_versions (hash, workflow_id, definition, created_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (hash) DO NOTHING",
            )?
            .execute(params![
                program.hash,
                program.id,
                program.definition,
                ctx.now
            ])?;
    }
    Ok(())
}

// The statements a concurrency limit runs at every start and finish. Each repeats
// the partial index's own condition (`status IN ('running', 'waiting',
// 'queued')`): SQLite uses a partial index only for a query whose WHERE repeats
// it. Their cost follows a workflow's unfinished executions, never its history
// or the other workflows' backlog.
const ACTIVE: &str = "SELECT count(*) FROM executions INDEXED BY executions_unfinished \
     WHERE workflow_id = ?1 AND status IN ('running', 'waiting') \
     AND status IN ('running', 'waiting', 'queued')";

/// Whether an execution about to start must wait: the workflow's limit reached,
/// or others queued already (first come, first served). Neither count grows with
/// the queue: the running ones are at most the limit, and a queued one is looked
/// up, not counted.
fn must_queue(ctx: &Ctx<'_>, workflow: &str, limit: u32) -> Result<bool, EngineError> {
    let active: i64 = ctx
        .conn
        .prepare_cached(ACTIVE)?
        .query_row(params![workflow], |r| r.get(0))?;
    if active >= i64::from(limit) {
        return Ok(true);
    }
    Ok(crate::store::claims::next_queued(ctx.conn, workflow)?.is_some())
}

/// Starts the oldest queued execution of a workflow with a `concurrency` limit, if
/// there is room now (after one of its executions finished or was cancelled).
pub(crate) fn release_queued(ctx: &mut Ctx<'_>, workflow: &str) -> Result<(), EngineError> {
    let Some(limit) = ctx
        .engine
        .workflow(workflow)
        .and_then(|p| p.workflow.concurrency)
    else {
        return Ok(());
    };
    let active: i64 = ctx
        .conn
        .prepare_cached(ACTIVE)?
        .query_row(params![workflow], |r| r.get(0))?;
    if active >= i64::from(limit) {
        return Ok(());
    }
    if let Some(id) = crate::store::claims::next_queued(ctx.conn, workflow)? {
        nested(
            ctx,
            |ctx| advance(ctx, id, &Wake::Run).map(|_| ()),
            id,
            &Wake::Run,
        )?;
    }
    Ok(())
}

/// Loads an execution and advances it after `wake`. Finished executions and stale
/// wakes are ignored. Returns the execution's status afterwards.
pub fn advance(ctx: &mut Ctx<'_>, id: i64, wake: &Wake) -> Result<&'static str, EngineError> {
    let Some(mut ex) = load(ctx, id)? else {
        return Ok("missing");
    };
    if is_final(ex.status) {
        return Ok(ex.status);
    }
    apply_wake(ctx, &mut ex, wake)?;
    drive(ctx, &mut ex)?;
    Ok(ex.status)
}

/// Whether a status is final.
pub fn is_final(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

fn status_name(s: &str) -> &'static str {
    match s {
        "queued" => "queued",
        "completed" => "completed",
        "failed" => "failed",
        "cancelled" => "cancelled",
        "waiting" => "waiting",
        _ => "running",
    }
}

fn load(ctx: &Ctx<'_>, id: i64) -> Result<Option<Exec>, EngineError> {
    // On PostgreSQL several writers advance executions at once: two timers of
    // one execution (two fibers of a for_each) fired by two writers would each
    // read the state and the second write would lose the first's progress. The
    // row lock makes the second wait and read the first's result. (SQLite has
    // one writer.)
    let sql = match ctx.conn {
        Db::Sqlite(_) => {
            "SELECT uid, workflow_id, version_hash, contact_id, status, trigger_data, state, error \
             FROM executions WHERE id = ?1"
        }
        Db::Postgres(_) => {
            "SELECT uid, workflow_id, version_hash, contact_id, status, trigger_data, state, error \
             FROM executions WHERE id = ?1 FOR UPDATE"
        }
    };
    let row = ctx
        .conn
        .prepare_cached(sql)?
        .query_row(params![id], |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<String>(1)?,
                r.get::<String>(2)?,
                r.get::<Option<i64>>(3)?,
                r.get::<String>(4)?,
                r.get::<String>(5)?,
                r.get::<String>(6)?,
                r.get::<Option<String>>(7)?,
            ))
        })
        .optional()?;
    let Some((uid, workflow, hash, contact_id, status, trigger, state, error)) = row else {
        return Ok(None);
    };
    let program = ctx.engine.version(ctx.conn, &workflow, &hash)?;
    let state: ExecState =
        serde_json::from_str(&state).map_err(|e| EngineError::BadState(e.to_string()))?;
    Ok(Some(Exec {
        id,
        uid,
        program,
        contact_id,
        trigger: serde_json::from_str(&trigger).unwrap_or(Json::Null),
        state,
        status: status_name(&status),
        error,
        contact_view: None,
    }))
}

fn apply_wake(ctx: &mut Ctx<'_>, ex: &mut Exec, wake: &Wake) -> Result<(), EngineError> {
    let (fiber_id, seq_ok) = match wake {
        Wake::Run => return Ok(()),
        Wake::Timer { fiber, seq } | Wake::Event { fiber, seq, .. } => (*fiber, Some(*seq)),
        Wake::Remote { fiber, .. } | Wake::Child { fiber } => (*fiber, None),
    };
    let Some(fiber) = ex.state.fiber(fiber_id) else {
        return Ok(());
    };
    let (Some(wait), Some(at)) = (fiber.wait.clone(), fiber.at.clone()) else {
        return Ok(());
    };
    let run_id = fiber.run_id;
    let node = ex.program.node(&at);
    match (wait, wake) {
        (Wait::Timer { seq, retry, .. }, Wake::Timer { .. }) if Some(seq) == seq_ok => {
            let f = fiber_mut(ex, fiber_id);
            f.wait = None;
            if retry {
                f.attempt += 1;
            } else {
                f.run_id = None;
                finish_run(ctx, run_id, "completed", None, None)?;
                move_on(ex, fiber_id, node.and_then(|n| ex.program.nodes[n].next));
            }
        }
        (Wait::Event { seq, .. }, Wake::Timer { .. }) if Some(seq) == seq_ok => {
            delete_event_wait(ctx, ex.id, fiber_id)?;
            let output = json!({"timed_out": true});
            finish_run(ctx, run_id, "completed", Some(&output), None)?;
            let target = node.and_then(|n| super::steps::timeout_target(&ex.program, n));
            set_output(ex, &at, output);
            let f = fiber_mut(ex, fiber_id);
            f.wait = None;
            f.run_id = None;
            move_on(ex, fiber_id, target);
        }
        (Wait::Event { seq, .. }, Wake::Event { data, .. }) if Some(seq) == seq_ok => {
            delete_event_wait(ctx, ex.id, fiber_id)?;
            delete_timer(ctx, &timer_key(ex.id, fiber_id, seq))?;
            let output = json!({"timed_out": false, "event": data});
            finish_run(ctx, run_id, "completed", Some(&output), None)?;
            set_output(ex, &at, output);
            let f = fiber_mut(ex, fiber_id);
            f.wait = None;
            f.run_id = None;
            move_on(ex, fiber_id, node.and_then(|n| ex.program.nodes[n].next));
        }
        (Wait::Remote { key, request, seq }, Wake::Timer { .. }) if Some(seq) == seq_ok => {
            // The call's deadline passed without a result (its worker died): send
            // it again under the same key, with a new deadline.
            let due = ctx.now + i64::try_from(request.timeout_ms).unwrap_or(0) + RECOVERY_SLACK_MS;
            schedule(ctx, ex.id, fiber_id, seq, due)?;
            ctx.fx.remote.push(RemoteCall {
                execution: ex.id,
                fiber: fiber_id,
                key,
                request,
            });
        }
        (Wait::Remote { key, seq, .. }, Wake::Remote { key: k, result, .. }) if key == *k => {
            delete_timer(ctx, &timer_key(ex.id, fiber_id, seq))?;
            let f = fiber_mut(ex, fiber_id);
            f.wait = None;
            f.run_id = None;
            match result {
                Ok(output) => {
                    let output = cap_output(output.clone());
                    finish_run(ctx, run_id, "completed", Some(&output), None)?;
                    set_output(ex, &at, output);
                    move_on(ex, fiber_id, node.and_then(|n| ex.program.nodes[n].next));
                }
                Err(failure) => {
                    finish_run(ctx, run_id, "failed", None, Some(&failure.message))?;
                    if let Some(n) = node {
                        let retry = !failure.permanent;
                        fail_step(ctx, ex, fiber_id, n, failure.message.clone(), retry)?;
                    }
                }
            }
        }
        (Wait::Child { execution }, Wake::Child { .. }) => {
            let child: Option<(String, String, Option<String>)> = ctx
                .conn
                .prepare_cached("SELECT status, state, error FROM executions WHERE id = ?1")?
                .query_row(params![execution], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let Some((status, state, error)) = child else {
                return Ok(());
            };
            if !is_final(&status) {
                return Ok(());
            }
            let f = fiber_mut(ex, fiber_id);
            f.wait = None;
            f.run_id = None;
            if status == "completed" {
                let vars = serde_json::from_str::<ExecState>(&state)
                    .map(|s| Json::Object(s.vars))
                    .unwrap_or(Json::Null);
                let output = cap_output(json!({"status": status, "vars": vars}));
                finish_run(ctx, run_id, "completed", Some(&output), None)?;
                set_output(ex, &at, output);
                move_on(ex, fiber_id, node.and_then(|n| ex.program.nodes[n].next));
            } else {
                let message = format!(
                    "sub-workflow execution {status}: {}",
                    error.unwrap_or_default()
                );
                finish_run(ctx, run_id, "failed", None, Some(&message))?;
                if let Some(n) = node {
                    fail_step(ctx, ex, fiber_id, n, message, true)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Extra time past a remote call's timeout before it is presumed lost.
const RECOVERY_SLACK_MS: i64 = 5_000;

fn fiber_mut(ex: &mut Exec, id: u32) -> &mut super::state::Fiber {
    // Callers checked the fiber exists; a missing one is an engine bug, so fall
    // back to a throwaway fiber rather than panic in a worker.
    let pos = ex.state.fibers.iter().position(|f| f.id == id);
    match pos {
        Some(p) => &mut ex.state.fibers[p],
        None => {
            ex.state.spawn(None, None, None);
            let last = ex.state.fibers.len() - 1;
            &mut ex.state.fibers[last]
        }
    }
}

/// Points a fiber at `next` (a node index; `None` ends its list), fresh attempt.
pub(crate) fn move_on(ex: &mut Exec, fiber: u32, next: Option<usize>) {
    let id = next.map(|n| ex.program.nodes[n].step.id.to_string());
    let f = fiber_mut(ex, fiber);
    f.at = id;
    f.attempt = 1;
    f.effect = None;
}

pub(crate) fn set_output(ex: &mut Exec, step: &str, output: Json) {
    ex.state.steps.insert(step.to_string(), output);
}

/// Runs fibers until none can go on, then stores the execution.
fn drive(ctx: &mut Ctx<'_>, ex: &mut Exec) -> Result<(), EngineError> {
    let mut budget = STEP_BUDGET;
    while !is_final(ex.status) {
        let Some(fiber) = ex.state.fibers.iter().find(|f| f.wait.is_none()).cloned() else {
            break;
        };
        if budget == 0 {
            let seq = ex.state.next_seq();
            schedule_wake(
                ctx,
                ex.id,
                &format!("run:{}:{seq}", ex.id),
                ctx.now,
                &Wake::Run,
            )?;
            break;
        }
        budget -= 1;
        match fiber.at.as_deref().and_then(|at| ex.program.node(at)) {
            None => end_fiber(ctx, ex, fiber.id)?,
            Some(node) => run_step(ctx, ex, fiber.id, node)?,
        }
        if ex.state.fibers.is_empty() && !is_final(ex.status) {
            ex.status = "completed";
        }
    }
    if !is_final(ex.status) {
        ex.status = if ex.state.fibers.iter().any(|f| f.wait.is_none()) {
            "running"
        } else {
            "waiting"
        };
    }
    save(ctx, ex)?;
    if is_final(ex.status) {
        ctx.fx.notes.push(Note::Finished {
            execution: ex.uid.clone(),
            workflow: ex.program.id.clone(),
            status: ex.status,
            error: ex.error.clone(),
        });
        finished(ctx, ex)?;
    }
    Ok(())
}

fn save(ctx: &Ctx<'_>, ex: &Exec) -> Result<(), EngineError> {
    let state =
        serde_json::to_string(&ex.state).map_err(|e| EngineError::BadState(e.to_string()))?;
    let completed = is_final(ex.status).then_some(ctx.now);
    ctx.conn
        .prepare_cached(
            "UPDATE executions SET status = ?2, contact_id = ?3, state = ?4, error = ?5, \
             updated_at = ?6, completed_at = ?7 WHERE id = ?1",
        )?
        .execute(params![
            ex.id,
            ex.status,
            ex.contact_id,
            state,
            ex.error,
            ctx.now,
            completed
        ])?;
    Ok(())
}

/// After an execution ends: drop its pending timers and waits, tell a waiting
/// parent, and run the error workflow of a failed one.
fn finished(ctx: &mut Ctx<'_>, ex: &Exec) -> Result<(), EngineError> {
    // Every timer and wait takes a sequence number: none taken, none to remove.
    if ex.state.seq > 0 {
        ctx.conn
            .prepare_cached("DELETE FROM timers WHERE execution_id = ?1")?
            .execute(params![ex.id])?;
        ctx.conn
            .prepare_cached("DELETE FROM event_waits WHERE execution_id = ?1")?
            .execute(params![ex.id])?;
    }
    if let Some((parent, fiber)) = ex.state.parent {
        nested(
            ctx,
            |ctx| advance(ctx, parent, &Wake::Child { fiber }).map(|_| ()),
            parent,
            &Wake::Child { fiber },
        )?;
    }
    if ex.program.workflow.concurrency.is_some() {
        let workflow = ex.program.id.clone();
        release_queued(ctx, &workflow)?;
    }
    if ex.status == "failed"
        && let Some(handler) = ex.program.workflow.error_workflow.as_ref()
        && handler.as_str() != ex.program.id
    {
        let step = ex
            .state
            .error
            .as_ref()
            .and_then(|e| e.get("step"))
            .and_then(Json::as_str)
            .unwrap_or_default();
        let details = failure_trigger(
            &ex.program.id,
            &ex.uid,
            step,
            ex.error.as_deref().unwrap_or_default(),
        );
        start_error_workflow(ctx, handler.as_str(), details, ex.contact_id)?;
    }
    Ok(())
}

/// Runs `f` one level deeper, or, past [`MAX_DEPTH`], leaves the wake to a timer.
fn nested(
    ctx: &mut Ctx<'_>,
    f: impl FnOnce(&mut Ctx<'_>) -> Result<(), EngineError>,
    execution: i64,
    wake: &Wake,
) -> Result<(), EngineError> {
    if ctx.depth >= MAX_DEPTH {
        let key = format!("wake:{execution}:{}", crate::uid::new(ctx.now));
        return schedule_wake(ctx, execution, &key, ctx.now, wake);
    }
    ctx.depth += 1;
    let r = f(ctx);
    ctx.depth -= 1;
    r
}

/// What an error workflow receives: a `workflow.failed` custom event.
pub fn failure_trigger(workflow: &str, execution: &str, step: &str, error: &str) -> Json {
    json!({
        "type": "custom_event",
        "event": "workflow.failed",
        "payload": {"workflow": workflow, "execution_id": execution, "step": step, "error": error},
    })
}

pub(crate) fn start_error_workflow(
    ctx: &mut Ctx<'_>,
    id: &str,
    details: Json,
    contact: Option<i64>,
) -> Result<(), EngineError> {
    let Some(program) = ctx.engine.workflow(id).cloned() else {
        tracing::warn!(workflow = id, "error workflow not found");
        return Ok(());
    };
    if ctx.depth >= MAX_DEPTH {
        tracing::warn!(
            workflow = id,
            "error workflow not started: nesting too deep"
        );
        return Ok(());
    }
    ctx.depth += 1;
    let r = start(ctx, &program, details, contact, None);
    ctx.depth -= 1;
    r.map(|_| ())
}

/// A fiber reached the end of its list.
fn end_fiber(ctx: &mut Ctx<'_>, ex: &mut Exec, fiber: u32) -> Result<(), EngineError> {
    let Some(pos) = ex.state.fibers.iter().position(|f| f.id == fiber) else {
        return Ok(());
    };
    let ended = ex.state.fibers.remove(pos);
    let Some(parent_id) = ended.parent else {
        return Ok(());
    };
    let Some(parent) = ex.state.fiber(parent_id) else {
        return Ok(());
    };
    let Some(Wait::Join {
        step,
        pending,
        items,
        next_item,
        results,
    }) = parent.wait.clone()
    else {
        return Ok(());
    };
    let mut pending = pending.saturating_sub(1);
    let mut next_item = next_item;
    let program = ex.program.clone();
    let node = program.node(&step);
    // A for_each with items left starts the next one in the freed slot.
    if next_item < items.len()
        && let Some(body) = node.and_then(|n| program.bodies.get(&n))
    {
        let first = program.lists[*body]
            .first
            .map(|i| program.nodes[i].step.id.to_string());
        let locals = json!({"item": items[next_item], "index": next_item});
        ex.state.spawn(first, Some(parent_id), Some(locals));
        next_item += 1;
        pending += 1;
    }
    let run_id = ex.state.fiber(parent_id).and_then(|p| p.run_id);
    if pending == 0 {
        let output = json!({"count": next_item.max(results.len())});
        finish_run(ctx, run_id, "completed", Some(&output), None)?;
        set_output(ex, &step, output);
        let next = node.and_then(|n| program.nodes[n].next);
        if let Some(p) = ex.state.fiber(parent_id) {
            p.wait = None;
            p.run_id = None;
        }
        move_on(ex, parent_id, next);
    } else if let Some(p) = ex.state.fiber(parent_id) {
        p.wait = Some(Wait::Join {
            step,
            pending,
            items,
            next_item,
            results,
        });
    }
    Ok(())
}

/// Runs the step at `node` for `fiber`.
fn run_step(ctx: &mut Ctx<'_>, ex: &mut Exec, fiber: u32, node: usize) -> Result<(), EngineError> {
    let program = ex.program.clone();
    let step: &Step = &program.nodes[node].step;
    let attempt = ex.state.fiber(fiber).map_or(1, |f| f.attempt);
    let scope = if program.needs_scope[node] {
        super::steps::scope(ctx, ex, fiber, node)?
    } else {
        minijinja::Value::UNDEFINED
    };
    if let Some(when) = &step.when {
        match program.exprs.condition(when.as_str(), &scope) {
            Ok(true) => {}
            Ok(false) => {
                record(
                    ctx,
                    ex.id,
                    step.id.as_str(),
                    attempt,
                    "skipped",
                    None,
                    None,
                    true,
                )?;
                move_on(ex, fiber, program.nodes[node].next);
                return Ok(());
            }
            Err(e) => return fail_step(ctx, ex, fiber, node, e.to_string(), true),
        }
    }
    let outcome = execute(ctx, ex, fiber, node, &scope)?;
    let id = step.id.as_str();
    match outcome {
        Outcome::Next(output) => {
            let next = program.nodes[node].next;
            completed(ctx, ex, fiber, (id, attempt), cap_output(output), next)?;
        }
        Outcome::Jump(target, output) => {
            completed(ctx, ex, fiber, (id, attempt), cap_output(output), target)?;
        }
        Outcome::Wait(wait, output) => {
            let run = record(
                ctx,
                ex.id,
                id,
                attempt,
                "waiting",
                Some(&output),
                None,
                false,
            )?;
            set_output(ex, id, output);
            if let Some(f) = ex.state.fiber(fiber) {
                f.wait = Some(*wait);
                f.run_id = Some(run);
            }
        }
        Outcome::Stop(output) => {
            record(
                ctx,
                ex.id,
                id,
                attempt,
                "completed",
                Some(&output),
                None,
                true,
            )?;
            set_output(ex, id, output);
            ex.state.fibers.clear();
            ex.status = "completed";
        }
        Outcome::Fail(message) => {
            failed(ctx, ex.id, (id, attempt), &message)?;
            fail_step(ctx, ex, fiber, node, message, true)?;
        }
        Outcome::FailExecution(message) => {
            failed(ctx, ex.id, (id, attempt), &message)?;
            fail_execution(ex, id, message);
        }
    }
    Ok(())
}

/// A step completed: its record, its output, and the fiber moves to `next`.
fn completed(
    ctx: &Ctx<'_>,
    ex: &mut Exec,
    fiber: u32,
    (step, attempt): (&str, u32),
    output: Json,
    next: Option<usize>,
) -> Result<(), EngineError> {
    record(
        ctx,
        ex.id,
        step,
        attempt,
        "completed",
        Some(&output),
        None,
        true,
    )?;
    set_output(ex, step, output);
    move_on(ex, fiber, next);
    Ok(())
}

/// Records a failed attempt of a step.
fn failed(
    ctx: &Ctx<'_>,
    execution: i64,
    (step, attempt): (&str, u32),
    message: &str,
) -> Result<i64, EngineError> {
    record(
        ctx,
        execution,
        step,
        attempt,
        "failed",
        None,
        Some(message),
        true,
    )
}

/// A step failed (its record is written): retry it (unless `retryable` is false:
/// a secret not set or an address not allowed stays so), or apply its on-error
/// policy.
fn fail_step(
    ctx: &mut Ctx<'_>,
    ex: &mut Exec,
    fiber: u32,
    node: usize,
    message: String,
    retryable: bool,
) -> Result<(), EngineError> {
    let program = ex.program.clone();
    let step = &program.nodes[node].step;
    let attempt = ex.state.fiber(fiber).map_or(1, |f| f.attempt);
    let policy = step.retry.as_ref().or_else(|| {
        super::steps::is_remote(&step.kind)
            .then_some(ctx.engine.settings.default_retry.as_ref())
            .flatten()
    });
    let retrying = policy.is_some_and(|p| retryable && attempt < p.attempts);
    ctx.fx.notes.push(Note::StepFailed {
        execution: ex.uid.clone(),
        workflow: program.id.clone(),
        step: step.id.to_string(),
        message: message.clone(),
        retrying,
    });
    if let Some(policy) = policy
        && retrying
    {
        let seq = ex.state.next_seq();
        let delay = super::steps::backoff_ms(policy, attempt, ex.id, seq);
        let until = ctx.now + i64::try_from(delay).unwrap_or(i64::MAX / 2);
        schedule(ctx, ex.id, fiber, seq, until)?;
        if let Some(f) = ex.state.fiber(fiber) {
            f.wait = Some(Wait::Timer {
                until,
                retry: true,
                seq,
            });
        }
        return Ok(());
    }
    let error = json!({"step": step.id.as_str(), "message": message, "attempts": attempt});
    match &step.on_error {
        Some(OnError::Simple(OnErrorSimple::Continue)) => {
            ex.state.error = Some(error.clone());
            // The execution goes on and may complete, but the failure stays
            // visible: `executions list` shows it, stats count it.
            if ex.error.is_none() {
                ex.error = Some(format!("step `{}` failed (continued): {message}", step.id));
            }
            set_output(ex, step.id.as_str(), json!({"error": error}));
            move_on(ex, fiber, program.nodes[node].next);
        }
        Some(OnError::Handler(OnErrorHandler::Goto(target))) => {
            ex.state.error = Some(error);
            let to = program.target(node, target.as_str()).ok().flatten();
            move_on(ex, fiber, to);
        }
        Some(OnError::Handler(OnErrorHandler::Workflow(handler))) => {
            ex.state.error = Some(error);
            let details = failure_trigger(&program.id, &ex.uid, step.id.as_str(), &message);
            start_error_workflow(ctx, handler.as_str(), details, ex.contact_id)?;
            fail_execution(ex, step.id.as_str(), message);
        }
        Some(OnError::Simple(OnErrorSimple::Fail)) | None => {
            ex.state.error = Some(error);
            fail_execution(ex, step.id.as_str(), message);
        }
    }
    Ok(())
}

fn fail_execution(ex: &mut Exec, step: &str, message: String) {
    let recorded = ex
        .state
        .error
        .as_ref()
        .and_then(|e| e.get("step"))
        .and_then(Json::as_str);
    if recorded != Some(step) {
        ex.state.error = Some(json!({"step": step, "message": message}));
    }
    ex.state.fibers.clear();
    ex.status = "failed";
    ex.error = Some(format!("step `{step}`: {message}"));
}

/// Writes a step record; returns its id.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    ctx: &Ctx<'_>,
    execution: i64,
    step: &str,
    attempt: u32,
    status: &str,
    output: Option<&Json>,
    error: Option<&str>,
    finished: bool,
) -> Result<i64, EngineError> {
    Ok(ctx
        .conn
        .prepare_cached(
            "INSERT INTO step_runs (execution_id, step_id, attempt, status, output, error, \
             started_at, finished_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        )?
        .query_row(
            params![
                execution,
                step,
                attempt,
                status,
                output.map(Json::to_string),
                error,
                ctx.now,
                finished.then_some(ctx.now)
            ],
            |r| r.get(0),
        )?)
}

fn finish_run(
    ctx: &Ctx<'_>,
    run: Option<i64>,
    status: &str,
    output: Option<&Json>,
    error: Option<&str>,
) -> Result<(), EngineError> {
    if let Some(run) = run {
        ctx.conn
            .prepare_cached(
                "UPDATE step_runs SET status = ?2, output = coalesce(?3, output), error = ?4, \
                 finished_at = ?5 WHERE id = ?1",
            )?
            .execute(params![
                run,
                status,
                output.map(Json::to_string),
                error,
                ctx.now
            ])?;
    }
    Ok(())
}

/// The dedupe key of a fiber's timer.
pub fn timer_key(execution: i64, fiber: u32, seq: u64) -> String {
    format!("t:{execution}:{fiber}:{seq}")
}

/// Schedules a fiber's timer (a delay, a retry, a timeout, a recovery deadline).
pub(crate) fn schedule(
    ctx: &mut Ctx<'_>,
    execution: i64,
    fiber: u32,
    seq: u64,
    due: UnixMs,
) -> Result<(), EngineError> {
    schedule_wake(
        ctx,
        execution,
        &timer_key(execution, fiber, seq),
        due,
        &Wake::Timer { fiber, seq },
    )
}

pub(crate) fn schedule_wake(
    ctx: &mut Ctx<'_>,
    execution: i64,
    key: &str,
    due: UnixMs,
    wake: &Wake,
) -> Result<(), EngineError> {
    let payload = serde_json::to_string(wake).map_err(|e| EngineError::BadState(e.to_string()))?;
    ctx.conn
        .prepare_cached(
            "INSERT INTO timers (kind, execution_id, due_at, payload, dedupe_key) \
             VALUES ('wake', ?1, ?2, ?3, ?4) ON CONFLICT (dedupe_key) DO UPDATE SET \
             due_at = excluded.due_at, payload = excluded.payload, claimed_by = NULL, \
             claimed_until = NULL",
        )?
        .execute(params![execution, due, payload, key])?;
    ctx.fx.due(due);
    Ok(())
}

pub use crate::store::timers::DueTimer;

/// Takes the timers due at `now`, at most `limit`, inside the caller's
/// transaction (see [`crate::store::timers::take_due`]).
pub fn take_due_timers(
    conn: Db<'_>,
    now: UnixMs,
    limit: usize,
) -> Result<Vec<DueTimer>, EngineError> {
    Ok(crate::store::timers::take_due(conn, now, limit)?)
}

fn delete_timer(ctx: &Ctx<'_>, key: &str) -> Result<(), EngineError> {
    ctx.conn
        .prepare_cached("DELETE FROM timers WHERE dedupe_key = ?1")?
        .execute(params![key])?;
    Ok(())
}

fn delete_event_wait(ctx: &Ctx<'_>, execution: i64, fiber: u32) -> Result<(), EngineError> {
    ctx.conn
        .prepare_cached("DELETE FROM event_waits WHERE execution_id = ?1 AND fiber = ?2")?
        .execute(params![execution, fiber])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ACTIVE;
    use crate::store::claims::NEXT_QUEUED_SQLITE as NEXT_QUEUED;

    /// The concurrency statements seek in the partial index of unfinished
    /// executions: no scan, no sort, whatever the history and the backlog.
    #[test]
    fn concurrency_lookups_seek_the_unfinished_index() {
        let conn = crate::store::sqlite::in_memory().expect("store");
        for sql in [ACTIVE, NEXT_QUEUED] {
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("plan");
            let plan: Vec<String> = stmt
                .query_map(["w"], |r| r.get::<_, String>(3))
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("plan rows");
            let text = plan.join(" | ");
            assert!(
                text.contains("INDEX executions_unfinished (workflow_id=?"),
                "{sql}: {text}"
            );
            assert!(
                !text.contains("SCAN") && !text.contains("TEMP B-TREE"),
                "{sql}: {text}"
            );
        }
    }
}
