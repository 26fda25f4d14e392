//! What each kind of step does, given the execution's scope: CRM changes and queued
//! emails happen here on the transaction's connection; remote calls, waits and
//! branches come back as an [`Outcome`] for the interpreter to record.

use std::collections::BTreeMap;

use minijinja::Value;
use serde_json::{Value as Json, json};

use super::EngineError;
use super::expr::{ExprError, context};
use super::program::Program;
use super::remote::Request;
use super::run::{Ctx, Exec, RemoteCall, schedule, start};
use super::state::{MAX_ITEMS, Wait};
use crate::crm::{self, CrmError, contact};
use crate::model::step::{HttpMethod, RetryPolicy, StepKind};
use crate::store::{NewActivity, UnixMs};

/// How a step ended.
#[derive(Debug)]
pub enum Outcome {
    /// Done; go to the step's successor.
    Next(Json),
    /// Done; go to this node (`None` ends the list).
    Jump(Option<usize>, Json),
    /// The fiber waits.
    Wait(Box<Wait>, Json),
    /// End the whole execution successfully.
    Stop(Json),
    /// The step failed: retry it or apply its on-error policy.
    Fail(String),
    /// End the execution as failed, whatever the policy (a `fail` step).
    FailExecution(String),
}

impl From<ExprError> for Outcome {
    fn from(e: ExprError) -> Self {
        Outcome::Fail(e.to_string())
    }
}

/// After a change that fit rules may look at (fields, tags, lists, stage), the
/// score is observed again, so a crossing fires in the same transaction.
fn fit_changed(ctx: &mut Ctx<'_>, id: i64, now: UnixMs) -> Result<(), EngineError> {
    if ctx.engine.scoring.fit.is_empty() {
        return Ok(());
    }
    let events = ctx.engine.scoring.observe(ctx.conn, id, now)?;
    ctx.fx.events.extend(events);
    Ok(())
}

/// The values a step's expressions see: the names it mentions (see
/// [`Program::roots`]), plus the loop's `item` and `index` in a `for_each` body.
pub fn scope(ctx: &Ctx<'_>, ex: &mut Exec, fiber: u32, node: usize) -> Result<Value, EngineError> {
    let program = ex.program.clone();
    let roots = &program.roots[node];
    let mut scope = serde_json::Map::new();
    for root in roots {
        let value = match *root {
            "contact" => {
                if ex.contact_view.is_none()
                    && let Some(id) = ex.contact_id
                {
                    ex.contact_view =
                        match contact::view(ctx.conn, id, &ctx.engine.scoring, ctx.now) {
                            Ok(v) => Some(v),
                            Err(CrmError::NoContact(_)) => None,
                            Err(CrmError::Store(e)) => return Err(EngineError::Store(e)),
                            Err(e) => return Err(EngineError::Invalid(e.to_string())),
                        };
                }
                ex.contact_view.clone().unwrap_or(Json::Null)
            }
            "trigger" => ex.trigger.clone(),
            "steps" => Json::Object(ex.state.steps.clone()),
            "vars" => Json::Object(ex.state.vars.clone()),
            "workflow" => json!({"id": program.id, "name": program.workflow.name}),
            "execution" => json!({"id": ex.uid}),
            "now" => json!(
                jiff::Timestamp::from_millisecond(ctx.now)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            ),
            "error" => ex.state.error.clone().unwrap_or(Json::Null),
            _ => continue,
        };
        scope.insert((*root).to_string(), value);
    }
    if let Some(Json::Object(locals)) = ex
        .state
        .fibers
        .iter()
        .find(|f| f.id == fiber)
        .and_then(|f| f.locals.clone())
    {
        scope.extend(locals);
    }
    Ok(context(&Json::Object(scope)))
}

/// Whether a step's effect leaves the process (the workspace's default retry
/// applies to these).
pub fn is_remote(kind: &StepKind) -> bool {
    matches!(
        kind,
        StepKind::Http { .. }
            | StepKind::Slack { .. }
            | StepKind::Discord { .. }
            | StepKind::SocialPost { .. }
    )
}

/// Where a `wait_for_event` goes when its timeout passes.
pub fn timeout_target(program: &Program, node: usize) -> Option<usize> {
    match &program.nodes[node].step.kind {
        StepKind::WaitForEvent {
            on_timeout: Some(t),
            ..
        } => program.target(node, t.as_str()).ok().flatten(),
        _ => program.nodes[node].next,
    }
}

/// The wait before attempt `attempt + 1`: `backoff` doubled per failure, capped at
/// `max_delay`, randomized by ±`jitter` (seeded by execution and sequence, so a
/// replay waits the same).
pub fn backoff_ms(policy: &RetryPolicy, attempt: u32, execution: i64, seq: u64) -> u64 {
    let base = policy
        .backoff
        .as_ref()
        .and_then(|b| b.millis().ok())
        .unwrap_or(1_000);
    let max = policy
        .max_delay
        .as_ref()
        .and_then(|m| m.millis().ok())
        .unwrap_or(3_600_000);
    let raw = base
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
        .min(max);
    let jitter = policy.jitter.unwrap_or(0.2).clamp(0.0, 1.0);
    let mut rng = crate::rng::Rng::new(execution.unsigned_abs() ^ seq.rotate_left(32));
    let factor = 1.0 + jitter * (rng.unit() * 2.0 - 1.0);
    ((raw as f64) * factor).round().max(0.0) as u64
}

fn needs_contact(ex: &Exec) -> Result<i64, Outcome> {
    ex.contact_id
        .ok_or_else(|| Outcome::Fail(CrmError::NeedsContact.to_string()))
}

fn crm_fail(e: CrmError) -> Result<Outcome, EngineError> {
    match e {
        CrmError::Store(s) => Err(EngineError::Store(s)),
        other => Ok(Outcome::Fail(other.to_string())),
    }
}

fn render_map(
    ex: &Exec,
    map: &BTreeMap<String, Json>,
    scope: &Value,
) -> Result<BTreeMap<String, Json>, ExprError> {
    map.iter()
        .map(|(k, v)| Ok((k.clone(), ex.program.exprs.render_tree(v, scope)?)))
        .collect()
}

/// Runs one step.
pub fn execute(
    ctx: &mut Ctx<'_>,
    ex: &mut Exec,
    fiber: u32,
    node: usize,
    scope: &Value,
) -> Result<Outcome, EngineError> {
    match run_kind(ctx, ex, fiber, node, scope) {
        Ok(outcome) => Ok(outcome),
        Err(Step::Engine(e)) => Err(e),
        Err(Step::Outcome(o)) => Ok(o),
    }
}

/// Early exits of a step: a failure to record, or an engine error to propagate.
enum Step {
    Outcome(Outcome),
    Engine(EngineError),
}

impl From<ExprError> for Step {
    fn from(e: ExprError) -> Self {
        Step::Outcome(Outcome::Fail(e.to_string()))
    }
}

impl From<Outcome> for Step {
    fn from(o: Outcome) -> Self {
        Step::Outcome(o)
    }
}

impl From<CrmError> for Step {
    fn from(e: CrmError) -> Self {
        match crm_fail(e) {
            Ok(o) => Step::Outcome(o),
            Err(e) => Step::Engine(e),
        }
    }
}

impl From<EngineError> for Step {
    fn from(e: EngineError) -> Self {
        Step::Engine(e)
    }
}

impl From<crate::store::StoreError> for Step {
    fn from(e: crate::store::StoreError) -> Self {
        Step::Engine(EngineError::Store(e))
    }
}

fn run_kind(
    ctx: &mut Ctx<'_>,
    ex: &mut Exec,
    fiber: u32,
    node: usize,
    scope: &Value,
) -> Result<Outcome, Step> {
    let program = ex.program.clone();
    let step = &program.nodes[node].step;
    let exprs = &program.exprs;
    let now = ctx.now;
    let source = Some(program.id.as_str());
    Ok(match &step.kind {
        StepKind::UpsertContact {
            email,
            name,
            phone,
            fields,
            tags,
            lists,
        } => {
            let u = contact::Upsert {
                contact: crate::store::NewContact {
                    email: exprs.render(email.as_str(), scope)?,
                    name: name
                        .as_ref()
                        .map(|n| exprs.render(n.as_str(), scope))
                        .transpose()?
                        .filter(|n| !n.trim().is_empty()),
                    phone: phone
                        .as_ref()
                        .map(|p| exprs.render(p.as_str(), scope))
                        .transpose()?
                        .filter(|p| !p.trim().is_empty()),
                    source_workflow: Some(program.id.clone()),
                    ..Default::default()
                },
                fields: render_map(ex, fields, scope)?,
                tags: tags.clone(),
                lists: lists.iter().map(|l| l.to_string()).collect(),
            };
            let (id, events) = contact::upsert(ctx.conn, &u, now)?;
            // Created by this step, or by the ingestion of this very trigger (a
            // form's contact is made before its workflows start).
            let created = events
                .iter()
                .any(|e| matches!(e, crm::CrmEvent::ContactCreated { .. }))
                || (ex.contact_id == Some(id)
                    && ex.trigger.get("contact_created") == Some(&Json::Bool(true)));
            ctx.fx.events.extend(events);
            fit_changed(ctx, id, now)?;
            ex.contact_id = Some(id);
            ex.contact_view = None;
            Outcome::Next(json!({"contact_id": id, "created": created}))
        }
        StepKind::UpdateContact { fields } => {
            let id = needs_contact(ex)?;
            let values = render_map(ex, fields, scope)?;
            let events = contact::set_fields(ctx.conn, id, &values, now)?;
            let changed = events.len();
            ctx.fx.events.extend(events);
            fit_changed(ctx, id, now)?;
            ex.contact_view = None;
            Outcome::Next(json!({"changed": changed}))
        }
        StepKind::AddTag { tags } => {
            let id = needs_contact(ex)?;
            let tags = render_all(ex, tags.iter().map(|t| t.as_str()), scope)?;
            let events = contact::add_tags(ctx.conn, id, &tags, now)?;
            let added = events.len();
            ctx.fx.events.extend(events);
            fit_changed(ctx, id, now)?;
            ex.contact_view = None;
            Outcome::Next(json!({"tags": tags, "added": added}))
        }
        StepKind::RemoveTag { tags } => {
            let id = needs_contact(ex)?;
            let tags = render_all(ex, tags.iter().map(|t| t.as_str()), scope)?;
            let removed = contact::remove_tags(ctx.conn, id, &tags)?;
            fit_changed(ctx, id, now)?;
            ex.contact_view = None;
            Outcome::Next(json!({"tags": tags, "removed": removed}))
        }
        StepKind::AdjustScore { points, reason } => {
            let id = needs_contact(ex)?;
            let (score, events) = contact::adjust_score(
                ctx.conn,
                id,
                *points,
                reason.as_deref(),
                Some(ex.id),
                now,
                &ctx.engine.scoring,
            )?;
            ctx.fx.events.extend(events);
            ex.contact_view = None;
            Outcome::Next(json!({"points": points, "score": score}))
        }
        StepKind::SetStage { stage } => {
            let id = needs_contact(ex)?;
            let name = serde_json::to_value(stage)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let events = contact::set_stage(ctx.conn, id, &name, now)?;
            ctx.fx.events.extend(events);
            fit_changed(ctx, id, now)?;
            ex.contact_view = None;
            Outcome::Next(json!({"stage": name}))
        }
        StepKind::AddActivity { activity, data } => {
            let id = needs_contact(ex)?;
            let data = Json::Object(render_map(ex, data, scope)?.into_iter().collect());
            let subject = crm::segment::SUBJECT_KEYS
                .iter()
                .find_map(|k| data.get(*k).and_then(Json::as_str))
                .map(String::from);
            let (activity_id, events) = contact::add_activity(
                ctx.conn,
                &NewActivity {
                    contact_id: id,
                    kind: activity.clone(),
                    subject,
                    data,
                    source: source.map(String::from),
                    occurred_at: now,
                },
                &ctx.engine.scoring,
            )?;
            ctx.fx.events.extend(events);
            Outcome::Next(json!({"activity_id": activity_id}))
        }
        StepKind::AddToList { list } => {
            let id = needs_contact(ex)?;
            let added = contact::add_to_list(ctx.conn, id, list.as_str(), now)?;
            fit_changed(ctx, id, now)?;
            ex.contact_view = None;
            Outcome::Next(json!({"list": list.as_str(), "added": added}))
        }
        StepKind::RemoveFromList { list } => {
            let id = needs_contact(ex)?;
            let removed = contact::remove_from_list(ctx.conn, id, list.as_str())?;
            fit_changed(ctx, id, now)?;
            ex.contact_view = None;
            Outcome::Next(json!({"list": list.as_str(), "removed": removed}))
        }
        StepKind::MoveDeal {
            pipeline,
            stage,
            value,
        } => {
            let id = needs_contact(ex)?;
            let (deal, events) = crm::deal::move_to_stage(
                ctx.conn,
                id,
                pipeline.as_str(),
                stage.as_str(),
                *value,
                source,
                now,
            )?;
            ctx.fx.events.extend(events);
            let status = ctx.engine.deal_status(pipeline.as_str(), stage.as_str());
            crm::deal::set_status(ctx.conn, deal, status, now)?;
            Outcome::Next(json!({"deal_id": deal, "stage": stage.as_str(), "status": status}))
        }
        StepKind::SendEmail {
            template,
            to,
            subject,
            data,
        } => super::mail::send(
            ctx,
            ex,
            fiber,
            template.as_str(),
            to.as_ref(),
            subject.as_ref(),
            data,
            scope,
        )?,
        StepKind::Http {
            method,
            url,
            headers,
            body,
            accept_status,
        } => {
            let body = body
                .as_ref()
                .map(|b| exprs.render_request_tree(b, scope))
                .transpose()?;
            let method = method.unwrap_or(if body.is_some() {
                HttpMethod::Post
            } else {
                HttpMethod::Get
            });
            let headers = headers
                .iter()
                .map(|(k, v)| Ok((k.clone(), exprs.render_request(v.as_str(), scope)?)))
                .collect::<Result<_, ExprError>>()?;
            let req = Request {
                kind: "http".into(),
                method: serde_json::to_value(method)
                    .ok()
                    .and_then(|m| m.as_str().map(String::from))
                    .unwrap_or_else(|| "GET".into()),
                url: exprs.render_request(url.as_str(), scope)?,
                headers,
                body,
                timeout_ms: timeout(ctx, step),
                accept: accept_status.clone(),
            };
            remote(ctx, ex, fiber, req)?
        }
        StepKind::Slack { webhook_url, text } => {
            let body = json!({"text": exprs.render_request(text.as_str(), scope)?});
            let req = post("slack", webhook_url.as_str(), body, timeout(ctx, step));
            remote(ctx, ex, fiber, req)?
        }
        StepKind::Discord {
            webhook_url,
            content,
        } => {
            let body = json!({"content": exprs.render_request(content.as_str(), scope)?});
            let req = post("discord", webhook_url.as_str(), body, timeout(ctx, step));
            remote(ctx, ex, fiber, req)?
        }
        StepKind::SocialPost {
            instance_url,
            token,
            status,
            visibility,
        } => {
            let visibility = visibility
                .and_then(|v| serde_json::to_value(v).ok())
                .unwrap_or(json!("public"));
            let body = json!({"status": exprs.render_request(status.as_str(), scope)?, "visibility": visibility});
            let url = format!(
                "{}/api/v1/statuses",
                instance_url.as_str().trim_end_matches('/')
            );
            let mut req = post("social_post", &url, body, timeout(ctx, step));
            req.headers
                .insert("Authorization".into(), format!("Bearer {}", token.as_str()));
            remote(ctx, ex, fiber, req)?
        }
        StepKind::SetVars { vars } => {
            let values = render_map(ex, vars, scope)?;
            for (k, v) in &values {
                ex.state.vars.insert(k.clone(), v.clone());
            }
            Outcome::Next(Json::Object(values.into_iter().collect()))
        }
        StepKind::Log { message, level } => {
            let message = exprs.render(message.as_str(), scope)?;
            let level = level
                .and_then(|l| serde_json::to_value(l).ok())
                .unwrap_or(json!("info"));
            tracing::info!(workflow = %program.id, execution = %ex.uid, %message, "workflow log");
            Outcome::Next(json!({"message": message, "level": level}))
        }
        StepKind::If {
            condition,
            then,
            otherwise,
        } => {
            let holds = exprs.condition(condition.as_str(), scope)?;
            let output = json!({"result": holds});
            let target = if holds {
                Some(then)
            } else {
                otherwise.as_ref()
            };
            match target {
                Some(t) => Outcome::Jump(jump(&program, node, t.as_str())?, output),
                None => Outcome::Next(output),
            }
        }
        StepKind::Switch { cases, default } => {
            for (i, case) in cases.iter().enumerate() {
                if exprs.condition(case.when.as_str(), scope)? {
                    let to = jump(&program, node, case.next.as_str())?;
                    return Ok(Outcome::Jump(to, json!({"case": i})));
                }
            }
            match default {
                Some(d) => Outcome::Jump(
                    jump(&program, node, d.as_str())?,
                    json!({"case": "default"}),
                ),
                None => Outcome::Next(json!({"case": "default"})),
            }
        }
        StepKind::Parallel { .. } => {
            let branches = program.branches.get(&node).cloned().unwrap_or_default();
            if branches.is_empty() {
                return Ok(Outcome::Next(json!({"branches": 0})));
            }
            for (_, list) in &branches {
                let first = program.lists[*list]
                    .first
                    .map(|i| program.nodes[i].step.id.to_string());
                ex.state.spawn(first, Some(fiber), None);
            }
            let n = u32::try_from(branches.len()).unwrap_or(u32::MAX);
            Outcome::Wait(
                Box::new(Wait::Join {
                    step: step.id.to_string(),
                    pending: n,
                    items: Vec::new(),
                    next_item: 0,
                    results: Vec::new(),
                }),
                json!({"branches": branches.iter().map(|(b, _)| b.clone()).collect::<Vec<_>>()}),
            )
        }
        StepKind::ForEach {
            items, concurrency, ..
        } => {
            let value = super::expr::to_json(&exprs.eval(items.as_str(), scope)?);
            let Json::Array(mut list) = value else {
                return Ok(Outcome::Fail(format!(
                    "`{}` gave {value}, not a list",
                    items.as_str()
                )));
            };
            list.truncate(MAX_ITEMS);
            if list.is_empty() {
                return Ok(Outcome::Next(json!({"count": 0})));
            }
            let body = program.bodies.get(&node).copied().unwrap_or(0);
            let first = program.lists[body]
                .first
                .map(|i| program.nodes[i].step.id.to_string());
            let cap = usize::try_from(concurrency.unwrap_or(1).max(1)).unwrap_or(1);
            let start_now = cap.min(list.len());
            for (index, item) in list.iter().enumerate().take(start_now) {
                let locals = json!({"item": item, "index": index});
                ex.state.spawn(first.clone(), Some(fiber), Some(locals));
            }
            let total = list.len();
            Outcome::Wait(
                Box::new(Wait::Join {
                    step: step.id.to_string(),
                    pending: u32::try_from(start_now).unwrap_or(u32::MAX),
                    items: list,
                    next_item: start_now,
                    results: Vec::new(),
                }),
                json!({"items": total}),
            )
        }
        StepKind::Loop {
            to,
            max_iterations,
            condition,
        } => {
            let used = ex.state.loops.get(step.id.as_str()).copied().unwrap_or(0);
            let holds = match condition {
                Some(c) => exprs.condition(c.as_str(), scope)?,
                None => true,
            };
            if holds && used < *max_iterations {
                ex.state.loops.insert(step.id.to_string(), used + 1);
                Outcome::Jump(
                    jump(&program, node, to.as_str())?,
                    json!({"iteration": used + 1}),
                )
            } else {
                ex.state.loops.remove(step.id.as_str());
                Outcome::Next(json!({"iterations": used, "exhausted": holds}))
            }
        }
        StepKind::Delay { duration } => {
            let ms = duration.millis().map_err(Outcome::Fail)?;
            timer(
                ctx,
                ex,
                fiber,
                now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX / 2)),
            )?
        }
        StepKind::WaitUntil { time } => {
            let text = exprs.render(time.as_str(), scope)?;
            let until = parse_time(&text, ctx.engine.settings.timezone.as_deref())
                .map_err(Outcome::Fail)?;
            if until <= now {
                Outcome::Next(json!({"until": text, "waited": false}))
            } else {
                timer(ctx, ex, fiber, until)?
            }
        }
        StepKind::WaitForEvent {
            event,
            matches,
            within,
            ..
        } => {
            let ms = within.millis().map_err(Outcome::Fail)?;
            let until = now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX / 2));
            let seq = ex.state.next_seq();
            ctx.conn
                .prepare_cached(
                    "INSERT INTO event_waits (execution_id, fiber, seq, event, contact_id, match_expr, expires_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(|e| Step::Engine(e.into()))?
                .execute(rusqlite::params![
                    ex.id,
                    fiber,
                    i64::try_from(seq).unwrap_or(i64::MAX),
                    event,
                    ex.contact_id,
                    matches.as_ref().map(|m| m.as_str()),
                    until
                ])
                .map_err(|e| Step::Engine(e.into()))?;
            schedule(ctx, ex.id, fiber, seq, until)?;
            Outcome::Wait(
                Box::new(Wait::Event {
                    event: event.clone(),
                    until,
                    seq,
                }),
                json!({"event": event, "until": until}),
            )
        }
        StepKind::SubWorkflow {
            workflow,
            input,
            wait,
        } => {
            let Some(child) = ctx.engine.workflow(workflow.as_str()).cloned() else {
                return Ok(Outcome::Fail(format!(
                    "no workflow `{}`",
                    workflow.as_str()
                )));
            };
            if ctx.depth >= super::run::MAX_DEPTH {
                return Ok(Outcome::Fail("sub-workflows nested too deep".into()));
            }
            let input = render_map(ex, input, scope)?;
            let trigger = json!({
                "type": "sub_workflow",
                "input": input,
                "parent": {"workflow": program.id, "execution": ex.uid},
            });
            let waits = wait.unwrap_or(true);
            let parent = waits.then_some((ex.id, fiber));
            ctx.depth += 1;
            let started = start(ctx, &child, trigger, ex.contact_id, parent);
            ctx.depth -= 1;
            let child_id = started?;
            if waits {
                // The child ran as far as it could already; if it finished, its
                // wake found this fiber not yet waiting, so settle it here.
                let status: String = ctx
                    .conn
                    .prepare_cached("SELECT status FROM executions WHERE id = ?1")
                    .and_then(|mut s| s.query_row([child_id], |r| r.get(0)))
                    .map_err(|e| Step::Engine(e.into()))?;
                if super::run::is_final(&status) {
                    ex.state.next_seq();
                    let key = format!("child:{}:{child_id}", ex.id);
                    super::run::schedule_wake(
                        ctx,
                        ex.id,
                        &key,
                        now,
                        &super::run::Wake::Child { fiber },
                    )?;
                }
                Outcome::Wait(
                    Box::new(Wait::Child {
                        execution: child_id,
                    }),
                    json!({"execution": child_id}),
                )
            } else {
                Outcome::Next(json!({"execution": child_id}))
            }
        }
        StepKind::Stop {} => Outcome::Stop(json!({"stopped": true})),
        StepKind::Fail { message } => {
            Outcome::FailExecution(exprs.render(message.as_str(), scope)?)
        }
    })
}

fn render_all<'a>(
    ex: &Exec,
    texts: impl Iterator<Item = &'a str>,
    scope: &Value,
) -> Result<Vec<String>, ExprError> {
    texts
        .map(|t| ex.program.exprs.render(t, scope))
        .filter(|r| r.as_ref().map_or(true, |s| !s.trim().is_empty()))
        .collect()
}

fn jump(program: &Program, node: usize, to: &str) -> Result<Option<usize>, Step> {
    program
        .target(node, to)
        .map_err(|e| Step::Outcome(Outcome::Fail(e.to_string())))
}

fn timeout(ctx: &Ctx<'_>, step: &crate::model::step::Step) -> u64 {
    step.timeout
        .as_ref()
        .and_then(|t| t.millis().ok())
        .unwrap_or(ctx.engine.settings.step_timeout_ms)
}

fn post(kind: &str, url: &str, body: Json, timeout_ms: u64) -> Request {
    Request {
        kind: kind.to_string(),
        method: "POST".into(),
        url: url.to_string(),
        headers: BTreeMap::new(),
        body: Some(body),
        timeout_ms,
        accept: Vec::new(),
    }
}

/// Parks the fiber on a remote call: the request and its key are stored with the
/// fiber and a recovery deadline is set before the call is handed out.
fn remote(ctx: &mut Ctx<'_>, ex: &mut Exec, fiber: u32, request: Request) -> Result<Outcome, Step> {
    let (seq, key) = ex.effect_key(fiber);
    let due = ctx.now + i64::try_from(request.timeout_ms).unwrap_or(0) + 5_000;
    schedule(ctx, ex.id, fiber, seq, due)?;
    ctx.fx.remote.push(RemoteCall {
        execution: ex.id,
        fiber,
        key: key.clone(),
        request: request.clone(),
    });
    let shown = json!({
        "method": request.method,
        "url": super::remote::shown_url(&request.url),
        "idempotency_key": key,
    });
    Ok(Outcome::Wait(
        Box::new(Wait::Remote { key, request, seq }),
        shown,
    ))
}

fn timer(ctx: &mut Ctx<'_>, ex: &mut Exec, fiber: u32, until: UnixMs) -> Result<Outcome, Step> {
    let seq = ex.state.next_seq();
    schedule(ctx, ex.id, fiber, seq, until)?;
    let shown = jiff::Timestamp::from_millisecond(until)
        .map(|t| t.to_string())
        .unwrap_or_default();
    Ok(Outcome::Wait(
        Box::new(Wait::Timer {
            until,
            retry: false,
            seq,
        }),
        json!({"until": shown}),
    ))
}

/// An RFC 3339 time, a civil date-time in the workspace's time zone, or a date (at
/// midnight there), as Unix milliseconds.
pub fn parse_time(text: &str, tz: Option<&str>) -> Result<UnixMs, String> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let zone = tz
        .and_then(|z| jiff::tz::TimeZone::get(z).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC);
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(zone)
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| e.to_string());
    }
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        return d
            .to_zoned(zone)
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| e.to_string());
    }
    Err(format!(
        "`{text}` is not a time (expected RFC 3339, e.g. 2026-03-01T09:00:00Z, or a date)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_within_bounds() {
        let policy: RetryPolicy = serde_json::from_value(json!({
            "attempts": 5, "backoff": "1s", "max_delay": "3s", "jitter": 0.2
        }))
        .expect("policy");
        let a1 = backoff_ms(&policy, 1, 7, 1);
        let a2 = backoff_ms(&policy, 2, 7, 2);
        let a4 = backoff_ms(&policy, 4, 7, 4);
        assert!((800..=1200).contains(&a1), "{a1}");
        assert!((1600..=2400).contains(&a2), "{a2}");
        assert!((2400..=3600).contains(&a4), "{a4}");
        assert_eq!(a1, backoff_ms(&policy, 1, 7, 1), "replays wait the same");
    }

    #[test]
    fn times_parse_in_several_shapes() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z", None), Ok(1000));
        assert_eq!(parse_time("1970-01-02", None), Ok(86_400_000));
        assert_eq!(
            parse_time("1970-01-01T01:00:00", Some("Europe/Berlin")),
            Ok(0)
        );
        assert!(parse_time("next tuesday", None).is_err());
    }
}
