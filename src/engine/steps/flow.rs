//! The step kinds that steer an execution: variables and logs, branches, loops,
//! parallel branches and lists, delays and waits, sub-workflows, stop and fail.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::{At, Outcome, Step, jump, parse_time, render_map, timer};
use crate::engine::run::{schedule, start};
use crate::engine::state::{MAX_ITEMS, Wait};
use crate::model::scalar::{DurationText, Expr, Ident, TemplateText};
use crate::model::step::{LogLevel, SwitchCase};
use crate::store::db::params;

pub(super) fn set_vars(at: At<'_, '_>, vars: &BTreeMap<String, Json>) -> Result<Outcome, Step> {
    let At { ex, scope, .. } = at;
    Ok({
        let values = render_map(ex, vars, scope)?;
        for (k, v) in &values {
            ex.state.vars.insert(k.clone(), v.clone());
        }
        Outcome::Next(Json::Object(values.into_iter().collect()))
    })
}

pub(super) fn log(
    at: At<'_, '_>,
    message: &TemplateText,
    level: &Option<LogLevel>,
) -> Result<Outcome, Step> {
    let At {
        ex, scope, program, ..
    } = at;
    let exprs = &program.exprs;
    Ok({
        let message = exprs.render(message.as_str(), scope)?;
        let level = level
            .and_then(|l| serde_json::to_value(l).ok())
            .unwrap_or(json!("info"));
        tracing::info!(workflow = %program.id, execution = %ex.uid, %message, "workflow log");
        Outcome::Next(json!({"message": message, "level": level}))
    })
}

pub(super) fn if_step(
    at: At<'_, '_>,
    condition: &Expr,
    then: &Ident,
    otherwise: &Option<Ident>,
) -> Result<Outcome, Step> {
    let At {
        node,
        scope,
        program,
        ..
    } = at;
    let exprs = &program.exprs;
    Ok({
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
    })
}

pub(super) fn switch(
    at: At<'_, '_>,
    cases: &[SwitchCase],
    default: &Option<Ident>,
) -> Result<Outcome, Step> {
    let At {
        node,
        scope,
        program,
        ..
    } = at;
    let exprs = &program.exprs;
    Ok({
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
    })
}

pub(super) fn parallel(at: At<'_, '_>) -> Result<Outcome, Step> {
    let At {
        ex,
        fiber,
        node,
        program,
        ..
    } = at;
    let step = &program.nodes[node].step;
    Ok({
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
    })
}

pub(super) fn for_each(
    at: At<'_, '_>,
    items: &Expr,
    concurrency: &Option<u32>,
) -> Result<Outcome, Step> {
    let At {
        ex,
        fiber,
        node,
        scope,
        program,
        ..
    } = at;
    let step = &program.nodes[node].step;
    let exprs = &program.exprs;
    Ok({
        let value = crate::engine::expr::to_json(&exprs.eval(items.as_str(), scope)?);
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
    })
}

pub(super) fn loop_step(
    at: At<'_, '_>,
    to: &Ident,
    max_iterations: &u32,
    condition: &Option<Expr>,
) -> Result<Outcome, Step> {
    let At {
        ex,
        node,
        scope,
        program,
        ..
    } = at;
    let step = &program.nodes[node].step;
    let exprs = &program.exprs;
    Ok({
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
    })
}

pub(super) fn delay(at: At<'_, '_>, duration: &DurationText) -> Result<Outcome, Step> {
    let At { ctx, ex, fiber, .. } = at;
    let now = ctx.now;
    Ok({
        let ms = duration.millis().map_err(Outcome::Fail)?;
        timer(
            ctx,
            ex,
            fiber,
            now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX / 2)),
        )?
    })
}

pub(super) fn wait_until(at: At<'_, '_>, time: &TemplateText) -> Result<Outcome, Step> {
    let At {
        ctx,
        ex,
        fiber,
        scope,
        program,
        ..
    } = at;
    let exprs = &program.exprs;
    let now = ctx.now;
    Ok({
        let text = exprs.render(time.as_str(), scope)?;
        let until =
            parse_time(&text, ctx.engine.settings.timezone.as_deref()).map_err(Outcome::Fail)?;
        if until <= now {
            Outcome::Next(json!({"until": text, "waited": false}))
        } else {
            timer(ctx, ex, fiber, until)?
        }
    })
}

pub(super) fn wait_for_event(
    at: At<'_, '_>,
    event: &str,
    matches: &Option<Expr>,
    within: &DurationText,
) -> Result<Outcome, Step> {
    let At { ctx, ex, fiber, .. } = at;
    let now = ctx.now;
    Ok({
        let ms = within.millis().map_err(Outcome::Fail)?;
        let until = now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX / 2));
        let seq = ex.state.next_seq();
        ctx.conn
        .prepare_cached(
            "INSERT INTO event_waits (execution_id, fiber, seq, event, contact_id, match_expr, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(|e| Step::Engine(e.into()))?
        .execute(params![
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
                event: event.to_string(),
                until,
                seq,
            }),
            json!({"event": event, "until": until}),
        )
    })
}

pub(super) fn sub_workflow(
    at: At<'_, '_>,
    workflow: &Ident,
    input: &BTreeMap<String, Json>,
    wait: &Option<bool>,
) -> Result<Outcome, Step> {
    let At {
        ctx,
        ex,
        fiber,
        scope,
        program,
        ..
    } = at;
    let now = ctx.now;
    Ok({
        let Some(child) = ctx.engine.workflow(workflow.as_str()).cloned() else {
            return Ok(Outcome::Fail(format!(
                "no workflow `{}`",
                workflow.as_str()
            )));
        };
        if ctx.depth >= crate::engine::run::MAX_DEPTH {
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
                .and_then(|mut s| s.query_row(params![child_id], |r| r.get(0)))
                .map_err(|e| Step::Engine(e.into()))?;
            if crate::engine::run::is_final(&status) {
                ex.state.next_seq();
                let key = format!("child:{}:{child_id}", ex.id);
                crate::engine::run::schedule_wake(
                    ctx,
                    ex.id,
                    &key,
                    now,
                    &crate::engine::run::Wake::Child { fiber },
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
    })
}

pub(super) fn stop(at: At<'_, '_>) -> Result<Outcome, Step> {
    let _ = at;
    Ok(Outcome::Stop(json!({"stopped": true})))
}

pub(super) fn fail_execution(at: At<'_, '_>, message: &TemplateText) -> Result<Outcome, Step> {
    let At { scope, program, .. } = at;
    let exprs = &program.exprs;
    Ok(Outcome::FailExecution(
        exprs.render(message.as_str(), scope)?,
    ))
}
