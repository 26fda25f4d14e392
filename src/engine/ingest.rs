//! The one way events enter the engine. The CLI (`funnel emit`), the preview
//! server, the daemon's API and webhooks, the CRM and the scheduler all build an
//! [`Event`] and call [`ingest`], inside a store transaction: the event reaches the
//! executions waiting for it, starts every active workflow whose trigger it matches
//! (conditions checked first), and the CRM changes those executions make are fed
//! back in as events of their own, to a bounded depth.

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::EngineError;
use super::run::{Ctx, MAX_DEPTH, Wake, advance, start};
use crate::crm::{CrmEvent, attribution, contact};
use crate::model::workflow::{CrossDirection, PageEventKind, PayloadField, TriggerKind};
use crate::store::NewActivity;
use crate::store::db::params;

/// An event: what happened (`kind`, a trigger type such as `form_submission` or
/// `custom_event`), its data (what workflows see as `trigger`), and whom it is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: String,
    #[serde(default)]
    pub data: Json,
    /// The contact, by email (a form's or payload's `email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The contact, by id (CRM events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<i64>,
    /// Only this workflow (a schedule's occurrence, a manual run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

/// What one ingestion did.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Ingested {
    /// Executions started, by id.
    pub started: Vec<i64>,
    /// Waiting executions the event resumed.
    pub resumed: Vec<i64>,
    /// Workflows whose trigger matched but whose conditions did not hold.
    pub filtered: Vec<String>,
    /// The workflow of each started execution, in the same order.
    #[serde(skip)]
    pub workflows: Vec<String>,
    /// The event's own contact, and whether the event created it.
    #[serde(skip)]
    pub contact: Option<(i64, bool)>,
}

/// Ingests `event` and the CRM events it causes.
pub fn ingest(ctx: &mut Ctx<'_>, event: Event) -> Result<Ingested, EngineError> {
    let mut out = Ingested::default();
    let mut queue = vec![(event, 0u32)];
    while let Some((ev, depth)) = queue.pop() {
        let before = ctx.fx.events.len();
        // Queued with the event, in its transaction: a rolled-back event is
        // never announced, an acknowledged one always is, an ignored one
        // (a forgotten person's form) never.
        if let Some(subscribed) = one(ctx, &ev, &mut out)? {
            crate::subscriptions::enqueue(ctx.conn, &ev, &subscribed, ctx.now)?;
        }
        let caused: Vec<CrmEvent> = ctx.fx.events.drain(before..).collect();
        if depth + 1 >= MAX_DEPTH {
            if !caused.is_empty() {
                tracing::warn!(count = caused.len(), "CRM events dropped: cascade too deep");
            }
            continue;
        }
        // Reversed so that the queue (a stack) handles them in the order they happened.
        for e in caused.into_iter().rev() {
            queue.push((from_crm(&e), depth + 1));
        }
    }
    Ok(out)
}

/// The event a CRM change raises.
pub fn from_crm(e: &CrmEvent) -> Event {
    let (kind, contact_id, data) = match e {
        CrmEvent::ContactCreated { contact_id, source } => {
            ("contact_created", *contact_id, json!({"source": source}))
        }
        CrmEvent::TagAdded { contact_id, tag } => ("tag_added", *contact_id, json!({"tag": tag})),
        CrmEvent::ListJoined { contact_id, list } => {
            ("list_joined", *contact_id, json!({"list": list}))
        }
        CrmEvent::FieldChanged {
            contact_id,
            field,
            from,
            to,
        } => (
            "field_changed",
            *contact_id,
            json!({"field": field, "from": from, "to": to}),
        ),
        CrmEvent::ScoreCrossed {
            contact_id,
            threshold,
            score,
            previous_score,
            up,
        } => (
            "score_crossed",
            *contact_id,
            json!({"threshold": threshold, "score": score, "previous_score": previous_score,
                   "direction": if *up { "up" } else { "down" }}),
        ),
        CrmEvent::StageChanged {
            contact_id,
            from,
            to,
        } => (
            "stage_changed",
            *contact_id,
            json!({"from": from, "to": to}),
        ),
        CrmEvent::DealStageChanged {
            contact_id,
            deal_id,
            pipeline,
            stage,
            from_stage,
            value,
        } => (
            "deal_stage_changed",
            *contact_id,
            json!({"pipeline": pipeline, "stage": stage, "from_stage": from_stage,
                   "deal_id": deal_id, "value": value}),
        ),
    };
    Event {
        kind: kind.to_string(),
        data,
        contact_id: Some(contact_id),
        ..Event::default()
    }
}

/// Handles one event; the kinds webhook subscribers wait for, or None when the
/// event was ignored.
fn one(
    ctx: &mut Ctx<'_>,
    ev: &Event,
    out: &mut Ingested,
) -> Result<Option<super::Subscribed>, EngineError> {
    let data = trigger_data(ctx, &ev.kind, &ev.data)?;
    if ev.kind == "form_submission" && submitted_by_forgotten(ctx, &data)? {
        // A person who asked to be forgotten is not re-added, nor copied into
        // executions, by a form: only new consent (an import with it, or
        // `contacts consent`) lifts the suppression.
        tracing::info!("form submission from a suppressed address ignored");
        return Ok(None);
    }
    let before = ctx.fx.events.len();
    let contact_id = resolve_contact(ctx, ev, &data)?;
    let mut data = data;
    // A form's contact is made here, before any workflow runs: the trigger says
    // so, and the workflow's `upsert_contact` reports it as created.
    let created = ctx.fx.events[before..]
        .iter()
        .any(|e| matches!(e, crate::crm::CrmEvent::ContactCreated { contact_id: c, .. } if Some(*c) == contact_id));
    if created && let Some(obj) = data.as_object_mut() {
        obj.insert("contact_created".into(), json!(true));
    }
    if out.contact.is_none() {
        out.contact = contact_id.map(|id| (id, created));
    }
    record_page_event(ctx, &data, contact_id)?;
    deliver_to_waiting(ctx, ev, &data, contact_id, out)?;
    let starting = ctx.engine.starting(ctx.conn)?;
    let candidates = starting.active.iter().filter(|p| {
        super::trigger_type(&p.workflow.trigger.kind) == ev.kind
            && ev.workflow.as_deref().is_none_or(|w| w == p.id)
            && super::Engine::runs(p, &starting.overrides)
    });
    for program in candidates {
        if !trigger_matches(ctx, &program.workflow.trigger.kind, &data, contact_id)? {
            continue;
        }
        match start_checked(ctx, program, &data, contact_id)? {
            Started::Running(id) | Started::Failed(id) => {
                out.started.push(id);
                out.workflows.push(program.id.clone());
            }
            Started::Filtered => out.filtered.push(program.id.clone()),
        }
    }
    Ok(Some(starting.subscribed))
}

fn submitted_by_forgotten(ctx: &Ctx<'_>, data: &Json) -> Result<bool, EngineError> {
    let Some(email) = data.pointer("/fields/email").and_then(Json::as_str) else {
        return Ok(false);
    };
    Ok(crate::crm::privacy::is_forgotten(ctx.conn, email)?)
}

/// How a start attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Started (and advanced as far as it goes).
    Running(i64),
    /// Recorded as failed: bad trigger data or a condition that could not run.
    Failed(i64),
    /// The trigger's conditions did not hold.
    Filtered,
}

/// Checks the trigger's declared payload and conditions, then starts `program`.
pub fn start_checked(
    ctx: &mut Ctx<'_>,
    program: &std::sync::Arc<super::program::Program>,
    data: &Json,
    contact_id: Option<i64>,
) -> Result<Started, EngineError> {
    if let Some(problem) = payload_problem(&program.workflow.trigger.kind, data) {
        return Ok(Started::Failed(start_failed(
            ctx, program, data, contact_id, &problem,
        )?));
    }
    let conditions = &program.workflow.trigger.conditions;
    let scope = if conditions.is_empty() {
        minijinja::Value::UNDEFINED
    } else {
        trigger_scope(ctx, program, data, contact_id)?
    };
    for c in conditions {
        match program.exprs.condition(c.as_str(), &scope) {
            Ok(true) => {}
            Ok(false) => return Ok(Started::Filtered),
            Err(e) => {
                let problem = format!("condition: {e}");
                return Ok(Started::Failed(start_failed(
                    ctx, program, data, contact_id, &problem,
                )?));
            }
        }
    }
    Ok(Started::Running(start(
        ctx,
        program,
        data.clone(),
        contact_id,
        None,
    )?))
}

/// The trigger data workflows see: the event's data with `type`, `id` and
/// `occurred_at` filled in.
pub fn trigger_data(ctx: &Ctx<'_>, kind: &str, data: &Json) -> Result<Json, EngineError> {
    let mut data = match data {
        Json::Object(m) => m.clone(),
        Json::Null => serde_json::Map::new(),
        other => {
            return Err(EngineError::Invalid(format!(
                "event data must be an object, not {other}"
            )));
        }
    };
    data.insert("type".into(), json!(kind));
    data.entry("occurred_at").or_insert_with(|| json!(ctx.now));
    data.entry("id")
        .or_insert_with(|| json!(crate::uid::new(ctx.now)));
    Ok(Json::Object(data))
}

/// The contact an event is about: by id, else by email. A form submission creates
/// or updates its contact (with the form's source) and records the submission.
pub fn resolve_contact(
    ctx: &mut Ctx<'_>,
    ev: &Event,
    data: &Json,
) -> Result<Option<i64>, EngineError> {
    if ev.contact_id.is_some() {
        return Ok(ev.contact_id);
    }
    let email = ev.email.clone().or_else(|| {
        ["/fields/email", "/payload/email", "/email"]
            .iter()
            .find_map(|p| data.pointer(p).and_then(Json::as_str))
            .map(String::from)
    });
    let Some(email) = email.filter(|e| !e.trim().is_empty()) else {
        return Ok(None);
    };
    if ev.kind == "form_submission" {
        let text = |p: &str| data.pointer(p).and_then(Json::as_str).map(String::from);
        let u = contact::Upsert {
            contact: crate::store::NewContact {
                email,
                name: text("/fields/name"),
                phone: text("/fields/phone"),
                source_site: text("/site"),
                source_component: text("/component"),
                ..Default::default()
            },
            ..Default::default()
        };
        let (id, events) = match contact::upsert(ctx.conn, &u, ctx.now) {
            Ok(r) => r,
            // A malformed address is the visitor's typo, not an engine failure:
            // the submission starts nothing that needs a contact.
            Err(crate::crm::CrmError::BadEmail(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        ctx.fx.events.extend(events);
        let subject = text("/component");
        let (_, events) = contact::add_activity(
            ctx.conn,
            &NewActivity {
                contact_id: id,
                kind: "form_submit".into(),
                subject,
                data: data.clone(),
                source: text("/site"),
                occurred_at: ctx.now,
            },
            &ctx.engine.scoring,
        )?;
        ctx.fx.events.extend(events);
        let touch = attribution::Touch::from_event("form_submit", data, ctx.now);
        attribution::record_touch(ctx.conn, id, &touch)?;
        return Ok(Some(id));
    }
    Ok(contact::id_by_email(ctx.conn, &email)?)
}

/// A known visitor's page view goes on their timeline, where counted page-event
/// triggers ("viewed /pricing twice in 7 days") and scoring find it by index.
fn record_page_event(
    ctx: &mut Ctx<'_>,
    data: &Json,
    contact_id: Option<i64>,
) -> Result<(), EngineError> {
    let (Some(contact), Some("page_event"), Some("view")) = (
        contact_id,
        data.get("type").and_then(Json::as_str),
        data.get("event").and_then(Json::as_str),
    ) else {
        return Ok(());
    };
    // A component coming into view is not a page view (triggers still see it).
    if data.get("component").is_some_and(|c| !c.is_null()) {
        return Ok(());
    }
    let page = data.get("page").and_then(Json::as_str);
    let site = data.get("site").and_then(Json::as_str);
    let activity = NewActivity {
        contact_id: contact,
        kind: "page_view".into(),
        subject: page.map(String::from),
        data: data.clone(),
        source: site.map(String::from),
        occurred_at: ctx.now,
    };
    let (_, events) = contact::add_activity(ctx.conn, &activity, &ctx.engine.scoring)?;
    ctx.fx.events.extend(events);
    let touch = attribution::Touch::from_event("page_view", data, ctx.now);
    attribution::record_touch(ctx.conn, contact, &touch)?;
    Ok(())
}

/// Resumes executions waiting for this event (by name, about this contact).
pub fn deliver_to_waiting(
    ctx: &mut Ctx<'_>,
    ev: &Event,
    data: &Json,
    contact_id: Option<i64>,
    out: &mut Ingested,
) -> Result<(), EngineError> {
    let name = match (ev.kind.as_str(), data.get("event").and_then(Json::as_str)) {
        ("custom_event", Some(n)) => n.to_string(),
        (kind, _) => kind.to_string(),
    };
    let waits: Vec<(i64, u32, u64, Option<String>)> = {
        let mut stmt = ctx.conn.prepare_cached(
            "SELECT execution_id, fiber, seq, match_expr FROM event_waits \
             WHERE event = ?1 AND (contact_id IS NOT DISTINCT FROM ?2 OR contact_id IS NULL) ORDER BY id",
        )?;
        let rows = stmt.query_map(params![name, contact_id], |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<u32>(1)?,
                r.get::<i64>(2)?.unsigned_abs(),
                r.get::<Option<String>>(3)?,
            ))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    for (execution, fiber, seq, matcher) in waits {
        if let Some(m) = matcher {
            let scope = super::expr::context(&json!({"event": {"name": name, "data": data}}));
            let compiled = super::expr::Compiled::default();
            if !compiled.condition(&m, &scope).unwrap_or(false) {
                continue;
            }
        }
        advance(
            ctx,
            execution,
            &Wake::Event {
                fiber,
                seq,
                data: data.clone(),
            },
        )?;
        out.resumed.push(execution);
    }
    Ok(())
}

fn trigger_scope(
    ctx: &Ctx<'_>,
    program: &super::program::Program,
    data: &Json,
    contact_id: Option<i64>,
) -> Result<minijinja::Value, EngineError> {
    let contact = match contact_id {
        Some(id) if program.conditions_read_contact => {
            contact::view(ctx.conn, id, &ctx.engine.scoring, ctx.now)
                .map_err(|e| EngineError::Invalid(e.to_string()))?
        }
        _ => Json::Null,
    };
    let now = jiff::Timestamp::from_millisecond(ctx.now)
        .map(|t| t.to_string())
        .unwrap_or_default();
    Ok(super::expr::context(&json!({
        "trigger": data,
        "contact": contact,
        "vars": program.workflow.vars,
        "workflow": {"id": program.id, "name": program.workflow.name},
        "now": now,
    })))
}

/// Records an execution that failed before its first step (bad trigger data or a
/// condition that could not be evaluated), so the problem is visible.
fn start_failed(
    ctx: &mut Ctx<'_>,
    program: &std::sync::Arc<super::program::Program>,
    data: &Json,
    contact_id: Option<i64>,
    problem: &str,
) -> Result<i64, EngineError> {
    super::run::ensure_version(ctx, program)?;
    let id: i64 = ctx
        .conn
        .prepare_cached(
            "INSERT INTO executions (uid, workflow_id, version_hash, contact_id, status, trigger_data, \
             state, error, started_at, updated_at, completed_at) \
             VALUES (?1, ?2, ?3, ?4, 'failed', ?5, '{}', ?6, ?7, ?7, ?7) RETURNING id",
        )?
        .query_row(
            params![
                crate::uid::new(ctx.now),
                program.id,
                program.hash,
                contact_id,
                data.to_string(),
                format!("trigger: {problem}"),
                ctx.now
            ],
            |r| r.get(0),
        )?;
    Ok(id)
}

/// Whether the event's data matches the trigger's own filters.
fn trigger_matches(
    ctx: &Ctx<'_>,
    kind: &TriggerKind,
    data: &Json,
    contact_id: Option<i64>,
) -> Result<bool, EngineError> {
    let s = |k: &str| data.get(k).and_then(Json::as_str);
    let n = |k: &str| data.get(k).and_then(Json::as_f64);
    let opt_eq = |want: Option<&str>, k: &str| want.is_none_or(|w| s(k) == Some(w));
    Ok(match kind {
        TriggerKind::FormSubmission { site, component } => {
            s("site") == Some(site.as_str()) && s("component") == Some(component.as_str())
        }
        TriggerKind::PageEvent {
            site,
            page,
            component,
            event,
            threshold,
            within,
        } => {
            let name = serde_json::to_value(event).ok();
            if s("event") != name.as_ref().and_then(Json::as_str)
                || !opt_eq(site.as_ref().map(|x| x.as_str()), "site")
                || !opt_eq(page.as_deref(), "page")
                || !opt_eq(component.as_ref().map(|x| x.as_str()), "component")
            {
                return Ok(false);
            }
            match (event, threshold) {
                (_, None) => true,
                (PageEventKind::View, Some(t)) => {
                    let Some(contact) = contact_id else {
                        return Ok(false);
                    };
                    let window = within
                        .as_ref()
                        .and_then(|w| w.millis().ok())
                        .map_or(i64::MIN, |ms| ctx.now - i64::try_from(ms).unwrap_or(0));
                    let count: f64 = ctx
                        .conn
                        .prepare_cached(
                            "SELECT count(*) FROM activities WHERE contact_id = ?1 AND type = 'page_view' \
                             AND subject IS NOT DISTINCT FROM ?2 AND occurred_at >= ?3",
                        )?
                        .query_row(params![contact, s("page"), window], |r| {
                            r.get::<i64>(0)
                        })? as f64;
                    // This view is on the timeline already: fire on the one that
                    // reaches the threshold, not on every later one.
                    count >= *t && count - 1.0 < *t
                }
                (_, Some(t)) => n("value").is_some_and(|v| v >= *t),
            }
        }
        TriggerKind::Schedule { .. } => true,
        TriggerKind::CustomEvent { event, .. } => s("event") == Some(event.as_str()),
        TriggerKind::Webhook { path, .. } => {
            s("path").map(|p| p.trim_matches('/')) == Some(path.trim_matches('/'))
        }
        TriggerKind::ContactCreated { source } => opt_eq(source.as_deref(), "source"),
        TriggerKind::TagAdded { tag } => s("tag") == Some(tag.as_str()),
        TriggerKind::ListJoined { list } => s("list") == Some(list.as_str()),
        TriggerKind::FieldChanged { field, to } => {
            s("field") == Some(field.as_str())
                && to.as_ref().is_none_or(|t| data.get("to") == Some(t))
        }
        TriggerKind::ScoreCrossed {
            threshold,
            direction,
        } => {
            let dir = match direction.unwrap_or(CrossDirection::Up) {
                CrossDirection::Up => "up",
                CrossDirection::Down => "down",
            };
            n("threshold") == Some(*threshold) && s("direction").is_none_or(|d| d == dir)
        }
        TriggerKind::StageChanged { from, to } => {
            let name = |st: &Option<crate::model::workflow::LifecycleStage>| {
                st.and_then(|x| serde_json::to_value(x).ok())
                    .and_then(|v| v.as_str().map(String::from))
            };
            name(from).is_none_or(|f| s("from") == Some(f.as_str()))
                && name(to).is_none_or(|t| s("to") == Some(t.as_str()))
        }
        TriggerKind::DealStageChanged { pipeline, stage } => {
            s("pipeline") == Some(pipeline.as_str())
                && opt_eq(stage.as_ref().map(|x| x.as_str()), "stage")
        }
        TriggerKind::EmailOpened { template }
        | TriggerKind::EmailBounced { template }
        | TriggerKind::EmailUnsubscribed { template } => {
            opt_eq(template.as_ref().map(|x| x.as_str()), "template")
        }
        TriggerKind::EmailClicked { template, url } => {
            opt_eq(template.as_ref().map(|x| x.as_str()), "template")
                && url
                    .as_deref()
                    .is_none_or(|u| s("url").is_some_and(|got| got.starts_with(u)))
        }
    })
}

/// A payload field of the wrong type, for triggers that declare their payload.
pub fn payload_problem(kind: &TriggerKind, data: &Json) -> Option<String> {
    let spec = match kind {
        TriggerKind::CustomEvent { payload, .. } | TriggerKind::Webhook { payload, .. } => {
            payload.as_ref()?
        }
        _ => return None,
    };
    let payload = data.get("payload");
    for (name, ty) in spec {
        let value = payload.and_then(|p| p.get(name));
        let Some(value) = value else {
            return Some(format!("payload.{name} is missing (declared as {ty:?})"));
        };
        let ok = match ty {
            PayloadField::String => value.is_string(),
            PayloadField::Number => value.is_number(),
            PayloadField::Integer => value.is_i64() || value.is_u64(),
            PayloadField::Boolean => value.is_boolean(),
            PayloadField::Email => value
                .as_str()
                .is_some_and(crate::validate::values::is_email),
            PayloadField::Url => value
                .as_str()
                .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://")),
            PayloadField::Datetime => value
                .as_str()
                .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()),
            PayloadField::List => value.is_array(),
            PayloadField::Object => value.is_object(),
        };
        if !ok {
            return Some(format!(
                "payload.{name} is {value}, expected {}",
                format!("{ty:?}").to_lowercase()
            ));
        }
    }
    None
}

/// The trigger type an event kind names, checked against the known ones.
pub fn is_known_kind(kind: &str) -> bool {
    const KINDS: &[&str] = &[
        "form_submission",
        "page_event",
        "schedule",
        "custom_event",
        "webhook",
        "contact_created",
        "tag_added",
        "list_joined",
        "field_changed",
        "score_crossed",
        "stage_changed",
        "deal_stage_changed",
        "email_opened",
        "email_clicked",
        "email_bounced",
        "email_unsubscribed",
    ];
    KINDS.contains(&kind)
}

// Keep the two lists of trigger types (the model's and this one) in step.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::trigger_type;

    #[test]
    fn every_trigger_type_is_a_known_event_kind() {
        let schema = serde_json::to_value(schemars::schema_for!(TriggerKind)).expect("schema");
        let text = schema.to_string();
        for kind in text.split("\"const\":\"").skip(1) {
            let name = kind.split('"').next().unwrap_or_default();
            assert!(is_known_kind(name), "{name}");
        }
        assert_eq!(
            trigger_type(&TriggerKind::TagAdded { tag: "x".into() }),
            "tag_added"
        );
    }

    #[test]
    fn declared_payloads_are_checked() {
        let kind: TriggerKind = serde_json::from_value(json!({
            "type": "custom_event", "event": "paid",
            "payload": {"amount": "number", "email": "email"}
        }))
        .expect("kind");
        assert!(
            payload_problem(
                &kind,
                &json!({"payload": {"amount": 3, "email": "a@b.example"}})
            )
            .is_none()
        );
        let p = payload_problem(
            &kind,
            &json!({"payload": {"amount": "3", "email": "a@b.example"}}),
        )
        .expect("problem");
        assert!(p.contains("payload.amount"), "{p}");
    }
}
