//! The step kinds that change the CRM inside the execution's transaction:
//! contacts, fields, tags, scores, stages, activities, lists and deals.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::{At, Outcome, Step, fit_changed, needs_contact, render_all, render_map};
use crate::crm::{self, contact};
use crate::model::scalar::{Ident, TemplateText};
use crate::model::workflow::LifecycleStage;
use crate::store::NewActivity;

pub(super) fn upsert_contact(
    at: At<'_, '_>,
    email: &TemplateText,
    name: &Option<TemplateText>,
    phone: &Option<TemplateText>,
    fields: &BTreeMap<String, Json>,
    tags: &[String],
    lists: &[Ident],
) -> Result<Outcome, Step> {
    let At {
        ctx,
        ex,
        scope,
        program,
        fiber,
        ..
    } = at;
    let exprs = &program.exprs;
    let now = ctx.now;
    // Lists that ask for confirmation are requested below, not joined.
    let (confirm, lists): (Vec<&Ident>, Vec<&Ident>) = lists
        .iter()
        .partition(|l| crate::engine::doi::needs_confirmation(ctx, l.as_str()));
    Ok({
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
            tags: tags.to_vec(),
            lists: lists.iter().map(|l| l.to_string()).collect(),
        };
        let (id, events) = contact::upsert(ctx.conn, &u, now)?;
        let mut asked = Vec::new();
        for list in confirm {
            let (_, key) = ex.effect_key(fiber);
            if crate::engine::doi::request(ctx, id, list.as_str(), &key, Some(ex.id))? {
                asked.push(list.as_str());
            }
        }
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
        Outcome::Next(json!({"contact_id": id, "created": created, "confirmation_sent": asked}))
    })
}

pub(super) fn update_contact(
    at: At<'_, '_>,
    fields: &BTreeMap<String, Json>,
) -> Result<Outcome, Step> {
    let At { ctx, ex, scope, .. } = at;
    let now = ctx.now;
    Ok({
        let id = needs_contact(ex)?;
        let values = render_map(ex, fields, scope)?;
        let events = contact::set_fields(ctx.conn, id, &values, now)?;
        let changed = events.len();
        ctx.fx.events.extend(events);
        fit_changed(ctx, id, now)?;
        ex.contact_view = None;
        Outcome::Next(json!({"changed": changed}))
    })
}

pub(super) fn add_tag(at: At<'_, '_>, tags: &[TemplateText]) -> Result<Outcome, Step> {
    let At { ctx, ex, scope, .. } = at;
    let now = ctx.now;
    Ok({
        let id = needs_contact(ex)?;
        let tags = render_all(ex, tags.iter().map(|t| t.as_str()), scope)?;
        let events = contact::add_tags(ctx.conn, id, &tags, now)?;
        let added = events.len();
        ctx.fx.events.extend(events);
        fit_changed(ctx, id, now)?;
        ex.contact_view = None;
        Outcome::Next(json!({"tags": tags, "added": added}))
    })
}

pub(super) fn remove_tag(at: At<'_, '_>, tags: &[TemplateText]) -> Result<Outcome, Step> {
    let At { ctx, ex, scope, .. } = at;
    let now = ctx.now;
    Ok({
        let id = needs_contact(ex)?;
        let tags = render_all(ex, tags.iter().map(|t| t.as_str()), scope)?;
        let removed = contact::remove_tags(ctx.conn, id, &tags)?;
        fit_changed(ctx, id, now)?;
        ex.contact_view = None;
        Outcome::Next(json!({"tags": tags, "removed": removed}))
    })
}

pub(super) fn adjust_score(
    at: At<'_, '_>,
    points: &f64,
    reason: &Option<String>,
) -> Result<Outcome, Step> {
    let At { ctx, ex, .. } = at;
    let now = ctx.now;
    Ok({
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
    })
}

pub(super) fn set_stage(at: At<'_, '_>, stage: &LifecycleStage) -> Result<Outcome, Step> {
    let At { ctx, ex, .. } = at;
    let now = ctx.now;
    Ok({
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
    })
}

pub(super) fn add_activity(
    at: At<'_, '_>,
    activity: &str,
    data: &BTreeMap<String, Json>,
) -> Result<Outcome, Step> {
    let At {
        ctx,
        ex,
        scope,
        program,
        ..
    } = at;
    let now = ctx.now;
    let source = Some(program.id.as_str());
    Ok({
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
                kind: activity.to_string(),
                subject,
                data,
                source: source.map(String::from),
                occurred_at: now,
            },
            &ctx.engine.scoring,
        )?;
        ctx.fx.events.extend(events);
        Outcome::Next(json!({"activity_id": activity_id}))
    })
}

pub(super) fn add_to_list(at: At<'_, '_>, list: &Ident) -> Result<Outcome, Step> {
    let At { ctx, ex, fiber, .. } = at;
    let now = ctx.now;
    Ok({
        let id = needs_contact(ex)?;
        // A list that asks for confirmation is joined when the contact
        // confirms: now they get the email that asks.
        if crate::engine::doi::needs_confirmation(ctx, list.as_str()) {
            let (_, key) = ex.effect_key(fiber);
            let asked = crate::engine::doi::request(ctx, id, list.as_str(), &key, Some(ex.id))?;
            return Ok(Outcome::Next(
                json!({"list": list.as_str(), "added": false, "confirmation_sent": asked}),
            ));
        }
        let added = contact::add_to_list(ctx.conn, id, list.as_str(), now)?;
        if added {
            ctx.fx.events.push(crm::CrmEvent::ListJoined {
                contact_id: id,
                list: list.as_str().to_string(),
            });
        }
        fit_changed(ctx, id, now)?;
        ex.contact_view = None;
        Outcome::Next(json!({"list": list.as_str(), "added": added}))
    })
}

pub(super) fn remove_from_list(at: At<'_, '_>, list: &Ident) -> Result<Outcome, Step> {
    let At { ctx, ex, .. } = at;
    let now = ctx.now;
    Ok({
        let id = needs_contact(ex)?;
        let removed = contact::remove_from_list(ctx.conn, id, list.as_str())?;
        fit_changed(ctx, id, now)?;
        ex.contact_view = None;
        Outcome::Next(json!({"list": list.as_str(), "removed": removed}))
    })
}

pub(super) fn move_deal(
    at: At<'_, '_>,
    pipeline: &Ident,
    stage: &Ident,
    value: &Option<f64>,
) -> Result<Outcome, Step> {
    let At {
        ctx, ex, program, ..
    } = at;
    let now = ctx.now;
    let source = Some(program.id.as_str());
    Ok({
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
    })
}
