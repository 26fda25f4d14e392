//! What each kind of step does, given the execution's scope: CRM changes and queued
//! emails happen here on the transaction's connection; remote calls, waits and
//! branches come back as an [`Outcome`] for the interpreter to record.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Value;
use serde_json::{Value as Json, json};

use super::EngineError;
use super::expr::{ExprError, context};
use super::program::Program;
use super::remote::Request;
use super::run::{Ctx, Exec, RemoteCall, schedule};
use super::state::Wait;
use crate::crm::{CrmError, contact};
use crate::model::step::{RetryPolicy, StepKind};
use crate::store::UnixMs;

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

mod calls;
mod crm_changes;
mod flow;

/// One step being run: the engine's transaction, the execution, the fiber and
/// node it stands on, and the values its expressions see.
struct At<'a, 'c> {
    ctx: &'a mut Ctx<'c>,
    ex: &'a mut Exec,
    fiber: u32,
    node: usize,
    scope: &'a Value,
    /// The execution's program (its steps and compiled expressions).
    program: Arc<Program>,
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
    let at = At {
        ctx,
        ex,
        fiber,
        node,
        scope,
        program: program.clone(),
    };
    match &program.nodes[node].step.kind {
        StepKind::UpsertContact {
            email,
            name,
            phone,
            fields,
            tags,
            lists,
        } => crm_changes::upsert_contact(at, email, name, phone, fields, tags, lists),
        StepKind::UpdateContact { fields } => crm_changes::update_contact(at, fields),
        StepKind::AddTag { tags } => crm_changes::add_tag(at, tags),
        StepKind::RemoveTag { tags } => crm_changes::remove_tag(at, tags),
        StepKind::AdjustScore { points, reason } => crm_changes::adjust_score(at, points, reason),
        StepKind::SetStage { stage } => crm_changes::set_stage(at, stage),
        StepKind::AddActivity { activity, data } => crm_changes::add_activity(at, activity, data),
        StepKind::AddToList { list } => crm_changes::add_to_list(at, list),
        StepKind::RemoveFromList { list } => crm_changes::remove_from_list(at, list),
        StepKind::MoveDeal {
            pipeline,
            stage,
            value,
        } => crm_changes::move_deal(at, pipeline, stage, value),
        StepKind::SendEmail {
            template,
            to,
            subject,
            data,
        } => calls::send_email(at, template, to, subject, data),
        StepKind::Http {
            method,
            url,
            headers,
            body,
            accept_status,
        } => calls::http(at, method, url, headers, body, accept_status),
        StepKind::Slack { webhook_url, text } => calls::slack(at, webhook_url, text),
        StepKind::Discord {
            webhook_url,
            content,
        } => calls::discord(at, webhook_url, content),
        StepKind::SocialPost {
            instance_url,
            token,
            status,
            visibility,
        } => calls::social_post(at, instance_url, token, status, visibility),
        StepKind::SetVars { vars } => flow::set_vars(at, vars),
        StepKind::Log { message, level } => flow::log(at, message, level),
        StepKind::If {
            condition,
            then,
            otherwise,
        } => flow::if_step(at, condition, then, otherwise),
        StepKind::Switch { cases, default } => flow::switch(at, cases, default),
        StepKind::Parallel { .. } => flow::parallel(at),
        StepKind::ForEach {
            items, concurrency, ..
        } => flow::for_each(at, items, concurrency),
        StepKind::Loop {
            to,
            max_iterations,
            condition,
        } => flow::loop_step(at, to, max_iterations, condition),
        StepKind::Delay { duration } => flow::delay(at, duration),
        StepKind::WaitUntil { time } => flow::wait_until(at, time),
        StepKind::WaitForEvent {
            event,
            matches,
            within,
            ..
        } => flow::wait_for_event(at, event, matches, within),
        StepKind::SubWorkflow {
            workflow,
            input,
            wait,
        } => flow::sub_workflow(at, workflow, input, wait),
        StepKind::Stop { .. } => flow::stop(at),
        StepKind::Fail { message } => flow::fail_execution(at, message),
    }
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
