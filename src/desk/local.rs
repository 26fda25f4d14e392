//! The TUI's [`Source`] on the workspace's own store: reads through the CRM,
//! engine and email modules' listing functions, changes through the engine's
//! worker exactly as the CLI and API make them, so a tag added here starts the
//! workflows it triggers and is written to the audit log with the actor's name.

use std::sync::Arc;

use serde_json::{Value as Json, json};

use super::{
    CampaignRow, Change, ConsentEntry, ContactDetail, Dashboard, DealColumn, DuplicatePair,
    ErrorKind, Info, Pipeline, Result, Source, SourceError, Stage, WorkflowCounts,
};
use crate::crm::deal;
use crate::crm::directory::{self, Cursor, Summary, TimelineEntry};
use crate::crm::{CrmEvent, contact};
use crate::email::campaign;
use crate::engine::manage::{self, ExecutionDetail, ExecutionRow};
use crate::engine::{Engine, EngineError, worker::Worker};
use crate::model::contacts::Condition;
use crate::store::db::{Db, params};
use crate::store::{Store, UnixMs};

const DAY: i64 = 86_400_000;
/// Deals a board column shows at most (the newest); its count covers all.
const COLUMN: usize = 200;
const HOUR: i64 = 3_600_000;

/// The workspace's store, read and changed in this process.
#[derive(Debug)]
pub struct Local {
    info: Info,
    store: Store,
    engine: Arc<Engine>,
    worker: Worker,
    rt: Runtime,
    clock: Option<UnixMs>,
}

/// Where a change's async work runs: a runtime of its own (the TUI), or the
/// daemon's, entered from one of its blocking threads.
#[derive(Debug)]
enum Runtime {
    Own(tokio::runtime::Runtime),
    Shared(tokio::runtime::Handle),
}

impl Runtime {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match self {
            Runtime::Own(rt) => rt.block_on(f),
            Runtime::Shared(h) => h.block_on(f),
        }
    }
}

impl Local {
    pub fn new(
        store: Store,
        engine: Arc<Engine>,
        location: String,
        actor: Option<String>,
    ) -> Result<Local> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| {
                SourceError::of(
                    ErrorKind::Unavailable,
                    format!("cannot start the runtime: {e}"),
                )
            })?;
        let worker = {
            let _guard = rt.enter();
            Worker::new(store.clone(), engine.clone())?
        };
        Ok(Local {
            info: info(&engine, location, actor),
            store,
            engine,
            worker,
            rt: Runtime::Own(rt),
            clock: None,
        })
    }

    /// The daemon's desk for one request: its worker (the store's one writer,
    /// running its current engine) on its runtime. Call the result from a
    /// blocking thread (`spawn_blocking`), never from a task.
    pub fn on_worker(
        worker: Worker,
        handle: tokio::runtime::Handle,
        location: String,
        actor: Option<String>,
    ) -> Local {
        let engine = worker.engine();
        Local {
            info: info(&engine, location, actor),
            store: worker.store().clone(),
            engine,
            worker,
            rt: Runtime::Shared(handle),
            clock: None,
        }
    }

    /// The custom fields of contacts/fields.yaml, which field changes must name.
    pub fn with_fields(mut self, fields: Vec<String>) -> Local {
        self.info.fields = fields;
        self
    }

    /// Refuses a change that names what the workspace does not have (a field,
    /// a list, a stage), saying what it has, before anything is written.
    fn check(&self, change: &Change) -> Result<()> {
        use crate::crm::bulk::Action;
        let known = |what: &str, name: &str, all: &[String]| -> Result<()> {
            if all.iter().any(|x| x == name) {
                return Ok(());
            }
            let ids: Vec<&str> = all.iter().map(String::as_str).collect();
            Err(SourceError::new(format!(
                "no {what} `{name}`; {}",
                crate::diagnostic::suggest(name, &ids, &format!("the {what}s are"))
            )))
        };
        let action = match change {
            Change::Bulk { action, .. } | Change::BulkFilter { action, .. } => Some(action),
            _ => None,
        };
        match (change, action) {
            (Change::SetField { name, .. }, _) | (_, Some(Action::SetField(name, _))) => {
                known("field", name, &self.info.fields)
            }
            (Change::AddToList { list, .. }, _) | (_, Some(Action::AddToList(list))) => {
                known("list", list, &self.info.lists)
            }
            (Change::SetStage { stage, .. }, _) => serde_json::from_value::<
                crate::model::workflow::LifecycleStage,
            >(Json::String(stage.clone()))
            .map(|_| ())
            .map_err(|_| {
                SourceError::new(format!(
                    "no stage `{stage}`; the stages are subscriber, lead, marketing_qualified, \
                         sales_qualified, opportunity, customer, evangelist, other"
                ))
            }),
            _ => Ok(()),
        }
    }

    /// Draws every screen as of `now` (tests and snapshots).
    pub fn at(mut self, now: UnixMs) -> Local {
        self.clock = Some(now);
        self.worker.set_time(now);
        self
    }

    fn actor(&self) -> Result<String> {
        self.info.actor.clone().ok_or_else(|| {
            SourceError::of(
                ErrorKind::Refused,
                "changes need a name for the audit log: set FUNNEL_ACTOR or `git config user.email`"
                    ,
            )
        })
    }

    /// A CRM change on the writer, audited in the same transaction; the
    /// workflows its events start run to their first wait.
    fn crm_change(
        &self,
        action: &'static str,
        contact_id: i64,
        details: Json,
        f: impl FnOnce(Db<'_>, UnixMs) -> std::result::Result<Vec<CrmEvent>, EngineError>
        + Send
        + 'static,
    ) -> Result<usize> {
        let actor = self.actor()?;
        // A contact that is not there is named as such, not left to a
        // constraint of the write.
        self.store
            .read(|db| directory::summary(db, contact_id).map_err(to_store))?;
        let worker = self.worker.clone();
        let (_, ingested) = self.rt.block_on(async move {
            let done = worker
                .crm_change(move |db, now| {
                    let events = f(db, now)?;
                    let uid = directory::summary(db, contact_id)?.uid;
                    crate::audit::record(db, &actor, action, "contact", Some(&uid), &details, now)?;
                    Ok(((), events))
                })
                .await?;
            worker.settle().await;
            worker.deliver_outbox().await?;
            Ok::<_, EngineError>(done)
        })?;
        Ok(ingested.started.len())
    }
}

/// What the screens need of the workspace: its segments, lists, pipelines and
/// workflows as the engine runs them.
fn info(engine: &Engine, location: String, actor: Option<String>) -> Info {
    Info {
        location,
        actor,
        segments: engine.scoring.segments.keys().cloned().collect(),
        lists: engine.lists.keys().cloned().collect(),
        fields: Vec::new(),
        pipelines: engine
            .pipelines
            .iter()
            .map(|(id, p)| Pipeline {
                id: id.clone(),
                name: p.name.clone(),
                stages: p
                    .stages
                    .iter()
                    .map(|s| Stage {
                        id: s.id.as_str().to_string(),
                        name: s.name.clone(),
                        probability: s.probability.unwrap_or(0.0),
                    })
                    .collect(),
            })
            .collect(),
        workflows: engine.workflows().map(|(id, _)| id.clone()).collect(),
    }
}

fn started(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => "; 1 workflow started".into(),
        n => format!("; {n} workflows started"),
    }
}

impl Source for Local {
    fn info(&self) -> &Info {
        &self.info
    }

    fn now(&self) -> UnixMs {
        self.clock.unwrap_or_else(crate::store::now_ms)
    }

    fn contacts(
        &self,
        filter: Option<&Condition>,
        cursor: Cursor,
        limit: usize,
    ) -> Result<Vec<Summary>> {
        let now = self.now();
        let scoring = &self.engine.scoring;
        Ok(self.store.read(|db| {
            directory::page(db, scoring, filter, now, cursor, limit).map_err(to_store)
        })?)
    }

    fn search(&self, query: &str, limit: usize) -> Result<Vec<Summary>> {
        // Contacts changed since the indexer last ran are indexed first (a small
        // write, skipped when nothing waits), so a search is never stale.
        let pending = self.store.read(crate::store::search::reindex_pending)?;
        if pending {
            self.store
                .write(|db| crate::store::search::reindex_contacts(db, usize::MAX))
                .wait()?;
        }
        Ok(self
            .store
            .read(|db| directory::search(db, query, limit).map_err(to_store))?)
    }

    fn count(&self, filter: Option<&Condition>) -> Result<u64> {
        let now = self.now();
        let scoring = &self.engine.scoring;
        Ok(self
            .store
            .read(|db| directory::count(db, scoring, filter, now).map_err(to_store))?)
    }

    fn contact(&self, id: i64) -> Result<ContactDetail> {
        let now = self.now();
        let scoring = &self.engine.scoring;
        Ok(self.store.read(|db| {
            (|| -> std::result::Result<ContactDetail, crate::crm::CrmError> {
                let summary = directory::summary(db, id)?;
                let view = contact::view(db, id, scoring, now)?;
                let score = scoring.explain(db, id, now)?;
                let deals = deal::of_contact(db, id, 20)?;
                let consent = consent(db, &summary.email)?;
                let timeline = timeline(db, id, &summary.uid)?;
                Ok(ContactDetail {
                    summary,
                    view,
                    score,
                    deals,
                    consent,
                    timeline,
                })
            })()
            .map_err(to_store)
        })?)
    }

    fn board(&self, pipeline: &str) -> Result<Vec<DealColumn>> {
        let stages: Vec<String> = self
            .info
            .pipelines
            .iter()
            .find(|p| p.id == pipeline)
            .map(|p| p.stages.iter().map(|s| s.id.clone()).collect())
            .unwrap_or_default();
        Ok(self.store.read(|db| {
            let totals = deal::by_stage(db, pipeline).map_err(to_store)?;
            stages
                .iter()
                .map(|stage| {
                    let (count, total) = totals
                        .iter()
                        .find(|(s, _, _)| s == stage)
                        .map_or((0, 0.0), |(_, n, v)| (*n, *v));
                    Ok(DealColumn {
                        stage: stage.clone(),
                        count: u64::try_from(count).unwrap_or(0),
                        total,
                        deals: deal::in_stage(db, pipeline, stage, COLUMN).map_err(to_store)?,
                    })
                })
                .collect()
        })?)
    }

    fn campaigns(&self) -> Result<Vec<CampaignRow>> {
        let now = self.now();
        let e = &self.engine;
        let mut rows = Vec::new();
        for (key, c) in &e.campaigns {
            let row = self.store.read(|db| {
                let state = campaign::state(db, key)?;
                let (plan, stats) = match &state {
                    None => (
                        campaign::plan(db, key, c, &e.scoring.segments, &e.scoring, now).ok(),
                        Vec::new(),
                    ),
                    Some(s) => (None, campaign::stats(db, s.id)?),
                };
                Ok(CampaignRow {
                    key: key.clone(),
                    name: c.name.clone(),
                    status: state.as_ref().map_or("draft".into(), |s| s.status.clone()),
                    recipients: state.as_ref().map(|s| s.recipients),
                    winner: state.and_then(|s| s.winner),
                    plan,
                    stats,
                })
            })?;
            rows.push(row);
        }
        Ok(rows)
    }

    fn workflow_counts(&self) -> Result<Vec<WorkflowCounts>> {
        let since = self.now() - 30 * DAY;
        let ids = self.info.workflows.clone();
        Ok(self.store.read(move |db| {
            let mut stmt = db.prepare_cached(
                "SELECT status, count(*) FROM executions \
                 WHERE workflow_id = ?1 AND started_at >= ?2 GROUP BY status",
            )?;
            let mut out = Vec::new();
            for id in ids {
                let mut w = WorkflowCounts {
                    workflow: id.clone(),
                    ..WorkflowCounts::default()
                };
                let rows = stmt.query_map(params![id, since], |r| {
                    Ok((r.get::<String>(0)?, r.get::<i64>(1)?))
                })?;
                for row in rows {
                    let (status, n) = row?;
                    let n = u64::try_from(n).unwrap_or(0);
                    match status.as_str() {
                        "running" | "queued" => w.running += n,
                        "waiting" => w.waiting += n,
                        "failed" => w.failed += n,
                        _ => w.completed += n,
                    }
                }
                out.push(w);
            }
            Ok(out)
        })?)
    }

    fn executions(
        &self,
        workflow: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<ExecutionRow>> {
        let f = manage::Filter {
            workflow: workflow.map(String::from),
            status: status.map(String::from),
            limit: 500,
        };
        Ok(self
            .store
            .read(|db| manage::list(db, &f).map_err(engine_to_store))?)
    }

    fn execution(&self, uid: &str) -> Result<ExecutionDetail> {
        Ok(self
            .store
            .read(|db| manage::show(db, uid).map_err(engine_to_store))?)
    }

    fn dashboard(&self) -> Result<Dashboard> {
        let now = self.now();
        let workflows = self.info.workflows.clone();
        Ok(self.store.read(move |db| dashboard(db, now, &workflows))?)
    }

    fn duplicates(&self, limit: usize) -> Result<Vec<DuplicatePair>> {
        Ok(self.store.read(|db| {
            (|| -> std::result::Result<Vec<DuplicatePair>, crate::crm::CrmError> {
                let pairs = crate::crm::dedupe::candidates(db)?;
                pairs
                    .into_iter()
                    .take(limit)
                    .map(|p| {
                        Ok(DuplicatePair {
                            a: directory::summary(db, p.a)?,
                            b: directory::summary(db, p.b)?,
                            score: p.score,
                            reason: p.reason,
                        })
                    })
                    .collect()
            })()
            .map_err(to_store)
        })?)
    }

    fn export_data(&self, id: i64) -> Result<Json> {
        Ok(self
            .store
            .read(|db| crate::crm::privacy::export_data(db, id).map_err(to_store))?)
    }

    fn apply(&self, change: Change) -> Result<String> {
        self.check(&change)?;
        let e = self.engine.clone();
        match change {
            Change::AddTags { contact: id, tags } => {
                let details = json!({"tags": tags});
                let n = tags.len();
                let s = self.crm_change("tag", id, details, move |db, now| {
                    let mut events = contact::add_tags(db, id, &tags, now)?;
                    events.extend(e.scoring.observe(db, id, now)?);
                    Ok(events)
                })?;
                Ok(format!("{n} tag(s) added{}", started(s)))
            }
            Change::RemoveTags { contact: id, tags } => {
                let details = json!({"tags": tags});
                self.crm_change("untag", id, details, move |db, now| {
                    contact::remove_tags(db, id, &tags)?;
                    Ok(e.scoring.observe(db, id, now)?)
                })?;
                Ok("tag(s) removed".into())
            }
            Change::AddToList { contact: id, list } => {
                let details = json!({"list": list});
                let s = self.crm_change("add_to_list", id, details, move |db, now| {
                    let added = contact::add_to_list(db, id, &list, now)?;
                    Ok(if added {
                        vec![CrmEvent::ListJoined {
                            contact_id: id,
                            list,
                        }]
                    } else {
                        Vec::new()
                    })
                })?;
                Ok(format!("added to the list{}", started(s)))
            }
            Change::RemoveFromList { contact: id, list } => {
                let details = json!({"list": list});
                self.crm_change("remove_from_list", id, details, move |db, _| {
                    contact::remove_from_list(db, id, &list)?;
                    Ok(Vec::new())
                })?;
                Ok("removed from the list".into())
            }
            Change::SetField {
                contact: id,
                name,
                value,
            } => {
                let details = json!({"field": name, "value": value});
                let s = self.crm_change("set_field", id, details, move |db, now| {
                    let fields = std::iter::once((name, value)).collect();
                    let mut events = contact::set_fields(db, id, &fields, now)?;
                    events.extend(e.scoring.observe(db, id, now)?);
                    Ok(events)
                })?;
                Ok(format!("field set{}", started(s)))
            }
            Change::SetStage { contact: id, stage } => {
                let details = json!({"stage": stage});
                let s = self.crm_change("set_stage", id, details, move |db, now| {
                    Ok(contact::set_stage(db, id, &stage, now)?)
                })?;
                Ok(format!("stage set{}", started(s)))
            }
            Change::MoveDeal {
                deal: deal_id,
                pipeline,
                stage,
            } => {
                let id: i64 = self.store.read(|db| {
                    db.query_row(
                        "SELECT contact_id FROM deals WHERE id = ?1",
                        params![deal_id],
                        |r| r.get(0),
                    )
                })?;
                let status = e.deal_status(&pipeline, &stage);
                let details = json!({"pipeline": pipeline, "stage": stage});
                let shown = stage.clone();
                let s = self.crm_change("move_deal", id, details, move |db, now| {
                    let (deal_id, events) =
                        deal::move_to_stage(db, id, &pipeline, &stage, None, Some("tui"), now)?;
                    deal::set_status(db, deal_id, status, now)?;
                    Ok(events)
                })?;
                Ok(format!("deal moved to {shown}{}", started(s)))
            }
            Change::Bulk { contacts, action } => {
                let actor = self.actor()?;
                let now = self.now();
                let what = action.describe();
                let n = self
                    .store
                    .write(move |db| {
                        let n =
                            crate::crm::bulk::apply_ids(db, &e.scoring, &contacts, &action, now)
                                .map_err(to_store)?;
                        crate::audit::record(
                            db,
                            &actor,
                            "bulk",
                            "contact",
                            None,
                            &json!({"change": action.describe(), "contacts": contacts}),
                            now,
                        )?;
                        Ok(n)
                    })
                    .wait()?;
                Ok(format!("{what}: {n} contact(s)"))
            }
            Change::BulkFilter {
                segment,
                filter: line,
                action,
            } => {
                let actor = self.actor()?;
                let now = self.now();
                let typed = crate::crm::filter::parse(&line)
                    .map_err(|err| SourceError::new(format!("filter {err}")))?;
                let parts: Vec<Condition> = segment
                    .iter()
                    .map(|s| Condition::Segment(crate::model::scalar::Ident(s.clone())))
                    .chain(typed)
                    .collect();
                if parts.is_empty() {
                    return Err(SourceError::new(
                        "choose a segment or type a filter first: a bulk change never covers every contact by accident",
                    ));
                }
                let filter = Condition::All(parts);
                let label = format!("{} {line}", segment.unwrap_or_default());
                let what = action.describe();
                let n = self
                    .store
                    .write(move |db| {
                        let n = crate::crm::bulk::apply(db, &e.scoring, &filter, &action, now, &mut |_| {})
                            .map_err(to_store)?;
                        crate::audit::record(
                            db,
                            &actor,
                            "bulk",
                            "contact",
                            None,
                            &json!({"change": action.describe(), "filter": label.trim(), "contacts": n}),
                            now,
                        )?;
                        Ok(n)
                    })
                    .wait()?;
                Ok(format!("{what}: {n} contact(s)"))
            }
            Change::Merge { keep, other } => self.merge_change(keep, other, true),
            Change::Unmerge { keep, other } => self.merge_change(keep, other, false),
            Change::Dismiss { a, b } => self.dismissal(a, b, true),
            Change::Undismiss { a, b } => self.dismissal(a, b, false),
            Change::Forget { contact: id } => {
                let actor = self.actor()?;
                let now = self.now();
                let gone = self
                    .store
                    .write(move |db| {
                        let uid = directory::summary(db, id).map_err(to_store)?.uid;
                        let gone = crate::crm::privacy::forget(db, id, now).map_err(to_store)?;
                        // The uid only: the log must not keep what was erased.
                        crate::audit::record(
                            db,
                            &actor,
                            "forget",
                            "contact",
                            Some(&uid),
                            &json!({}),
                            now,
                        )?;
                        Ok(gone)
                    })
                    .wait()?;
                self.store.scrub_old_versions()?;
                let files =
                    crate::crm::privacy::scrub_outbox_dir(&e.settings.outbox_dir, &gone.email)
                        .map_err(|err| {
                            SourceError::of(
                                ErrorKind::Unavailable,
                                format!("cannot scrub the outbox: {err}"),
                            )
                        })?;
                Ok(format!(
                    "forgot {}: {} activities, {} executions, {} emails ({files} files); the address is suppressed",
                    gone.email, gone.activities, gone.executions, gone.outbox
                ))
            }
            Change::CampaignSend { key } => {
                let actor = self.actor()?;
                let worker = self.worker.clone();
                let store = self.store.clone();
                let state = self.rt.block_on(async move {
                    let k = key.clone();
                    let before = store.read_async(move |db| campaign::state(db, &k)).await?;
                    let state = worker.start_campaign(&key).await?;
                    if before.is_none() {
                        let n = state.recipients;
                        store
                            .write(move |db| {
                                crate::audit::record(
                                    db,
                                    &actor,
                                    "campaign.send",
                                    "campaign",
                                    Some(&key),
                                    &json!({"recipients": n}),
                                    crate::store::now_ms(),
                                )
                            })
                            .await?;
                    }
                    Ok::<_, EngineError>(state)
                })?;
                Ok(format!(
                    "{} recipients frozen ({}); the daemon sends them",
                    state.recipients, state.status
                ))
            }
            Change::CampaignPause { key } => {
                self.campaign_transition(key, &["sending", "scheduled", "testing"], "paused")
            }
            Change::CampaignResume { key } => self.campaign_transition(key, &["paused"], "sending"),
            Change::RetryExecution { uid } => {
                let actor = self.actor()?;
                let worker = self.worker.clone();
                let now = self.now();
                let status = self.rt.block_on(async move {
                    let s = worker
                        .transact(now, move |ctx| manage::retry(ctx, &uid, &actor))
                        .await?;
                    worker.settle().await;
                    Ok::<_, EngineError>(s)
                })?;
                Ok(format!("retried: {status}"))
            }
            Change::CancelExecution { uid } => {
                let actor = self.actor()?;
                let worker = self.worker.clone();
                let now = self.now();
                let cancelled = self.rt.block_on(async move {
                    worker
                        .transact(now, move |ctx| manage::cancel(ctx, &uid, &actor))
                        .await
                })?;
                Ok(if cancelled {
                    "cancelled".into()
                } else {
                    "it had finished already; nothing to cancel".into()
                })
            }
        }
    }
}

impl Local {
    /// Merges `other` into `keep`, or undoes that merge; audited.
    fn merge_change(&self, keep: i64, other: i64, merge: bool) -> Result<String> {
        let actor = self.actor()?;
        let now = self.now();
        self.store
            .write(move |db| {
                let kept = directory::summary(db, keep).map_err(to_store)?;
                let text = if merge {
                    let gone = directory::summary(db, other).map_err(to_store)?;
                    crate::crm::merge::merge(db, keep, other, now).map_err(to_store)?;
                    format!("merged {} into {}", gone.email, kept.email)
                } else {
                    let back =
                        crate::crm::merge::unmerge(db, keep, Some(other), now).map_err(to_store)?;
                    let back = directory::summary(db, back).map_err(to_store)?;
                    format!("restored {} from {}", back.email, kept.email)
                };
                crate::audit::record(
                    db,
                    &actor,
                    if merge { "merge" } else { "unmerge" },
                    "contact",
                    Some(&kept.uid),
                    &json!({"other": other}),
                    now,
                )?;
                Ok(text)
            })
            .wait()
            .map_err(SourceError::from)
    }

    /// Records that two contacts are two people, or takes that back.
    fn dismissal(&self, a: i64, b: i64, dismiss: bool) -> Result<String> {
        let actor = self.actor()?;
        let now = self.now();
        self.store
            .write(move |db| {
                if dismiss {
                    crate::crm::dedupe::dismiss(db, a, b, &actor, now).map_err(to_store)?;
                } else {
                    crate::crm::dedupe::undismiss(db, a, b).map_err(to_store)?;
                }
                let uid = directory::summary(db, a.min(b)).map_err(to_store)?.uid;
                crate::audit::record(
                    db,
                    &actor,
                    if dismiss {
                        "dismiss_duplicate"
                    } else {
                        "undismiss_duplicate"
                    },
                    "contact",
                    Some(&uid),
                    &json!({"a": a.min(b), "b": a.max(b)}),
                    now,
                )?;
                Ok(if dismiss {
                    "not duplicates: the pair will not be offered again".to_string()
                } else {
                    "the pair is back in the queue".to_string()
                })
            })
            .wait()
            .map_err(SourceError::from)
    }

    fn campaign_transition(
        &self,
        key: String,
        from: &'static [&'static str],
        to: &'static str,
    ) -> Result<String> {
        let actor = self.actor()?;
        let k = key.clone();
        let changed = self
            .store
            .write(move |db| {
                let changed = campaign::transition(db, &k, from, to)?;
                if changed {
                    crate::audit::record(
                        db,
                        &actor,
                        &format!("campaign.{to}"),
                        "campaign",
                        Some(&k),
                        &json!({"status": to}),
                        crate::store::now_ms(),
                    )?;
                }
                Ok(changed)
            })
            .wait()?;
        if changed {
            Ok(format!("{key}: {to}"))
        } else {
            Err(SourceError::new(format!(
                "{key} is not in a state that can become {to}"
            )))
        }
    }
}

/// A CRM error inside a store closure, its kind kept (a missing contact stays
/// not found; the store's own failure stays the store's).
fn to_store(e: crate::crm::CrmError) -> crate::store::StoreError {
    use crate::crm::CrmError as C;
    use crate::store::StoreError as S;
    match e {
        C::Store(s) => s,
        C::NoContact(_) | C::NotFound(_) => S::NotFound(e.to_string()),
        other => S::Invalid(other.to_string()),
    }
}

fn engine_to_store(e: EngineError) -> crate::store::StoreError {
    use crate::store::StoreError as S;
    match e {
        EngineError::Store(s) => s,
        EngineError::UnknownExecution(_) => S::NotFound(e.to_string()),
        other => S::Invalid(other.to_string()),
    }
}

fn consent(
    db: Db<'_>,
    email: &str,
) -> std::result::Result<Vec<ConsentEntry>, crate::crm::CrmError> {
    let hash = crate::crm::privacy::email_hash(email);
    let mut stmt = db.prepare_cached(
        "SELECT purpose, granted, source, recorded_at FROM consent_ledger \
         WHERE email_hash = ?1 ORDER BY recorded_at DESC LIMIT 20",
    )?;
    let rows = stmt.query_map(params![hash], |r| {
        Ok(ConsentEntry {
            purpose: r.get(0)?,
            granted: r.get::<i64>(1)? != 0,
            source: r.get(2)?,
            recorded_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Entries a timeline shows at most.
const TIMELINE: usize = 50;

/// What the contact did (activities) and what was done to them (the audit
/// log's changes), newest first.
fn timeline(
    db: Db<'_>,
    id: i64,
    uid: &str,
) -> std::result::Result<Vec<TimelineEntry>, crate::crm::CrmError> {
    let mut all = directory::timeline(db, id, None, TIMELINE)?;
    for e in crate::audit::for_entity(db, "contact", uid, TIMELINE)? {
        let d = &e.details;
        let subject = match e.action.as_str() {
            "tag" | "untag" => d.get("tags").map(|t| match t {
                Json::Array(a) => a
                    .iter()
                    .filter_map(Json::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            }),
            "move_deal" => Some(format!(
                "{} → {}",
                d["pipeline"].as_str().unwrap_or("?"),
                d["stage"].as_str().unwrap_or("?")
            )),
            "add_to_list" | "remove_from_list" => d["list"].as_str().map(String::from),
            "set_stage" => d["stage"].as_str().map(String::from),
            "set_field" => Some(format!(
                "{} = {}",
                d["field"].as_str().unwrap_or("?"),
                d["value"]
            )),
            _ => None,
        };
        all.push(TimelineEntry {
            id: -e.id,
            kind: e.action,
            subject,
            data: e.details,
            source: Some(format!("by {}", e.actor)),
            occurred_at: e.recorded_at,
        });
    }
    all.sort_by(|a, b| b.occurred_at.cmp(&a.occurred_at).then(b.id.cmp(&a.id)));
    all.truncate(TIMELINE);
    Ok(all)
}

/// Counts per bucket of `width` ms over `buckets` buckets ending at `now`.
fn series(
    db: Db<'_>,
    sql: &str,
    extra: Option<&str>,
    now: UnixMs,
    width: i64,
    buckets: usize,
) -> std::result::Result<Vec<u64>, crate::store::StoreError> {
    let n = i64::try_from(buckets).unwrap_or(0);
    let start = (now / width - n + 1) * width;
    let mut out = vec![0u64; buckets];
    let mut stmt = db.prepare_cached(sql)?;
    let pair = |r: crate::store::db::Row<'_>| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?));
    let rows: Vec<(i64, i64)> = match extra {
        Some(x) => stmt
            .query_map(params![start, width, x], pair)?
            .collect::<std::result::Result<_, _>>()?,
        None => stmt
            .query_map(params![start, width], pair)?
            .collect::<std::result::Result<_, _>>()?,
    };
    for (bucket, count) in rows {
        if let Some(slot) = usize::try_from(bucket).ok().and_then(|b| out.get_mut(b)) {
            *slot += u64::try_from(count).unwrap_or(0);
        }
    }
    Ok(out)
}

fn dashboard(
    db: Db<'_>,
    now: UnixMs,
    workflows: &[String],
) -> std::result::Result<Dashboard, crate::store::StoreError> {
    let contacts: i64 = db.query_row("SELECT count(*) FROM contacts", params![], |r| r.get(0))?;
    let new_contacts = series(
        db,
        "SELECT (created_at - ?1) / ?2, count(*) FROM contacts WHERE created_at >= ?1 GROUP BY 1",
        None,
        now,
        DAY,
        14,
    )?;
    let mut executions = vec![0u64; 24];
    for w in workflows {
        let per = series(
            db,
            "SELECT (started_at - ?1) / ?2, count(*) FROM executions \
             WHERE workflow_id = ?3 AND started_at >= ?1 GROUP BY 1",
            Some(w),
            now,
            HOUR,
            24,
        )?;
        for (slot, n) in executions.iter_mut().zip(per) {
            *slot += n;
        }
    }
    let engagement = |kind: &str| {
        series(
            db,
            "SELECT (occurred_at - ?1) / ?2, count(*) FROM activities \
             WHERE type = ?3 AND occurred_at >= ?1 GROUP BY 1",
            Some(kind),
            now,
            DAY,
            14,
        )
    };
    let opens = engagement("email_opened")?;
    let clicks = engagement("email_clicked")?;
    let since = now - 30 * DAY;
    let mut stmt = db.prepare_cached(
        "SELECT coalesce(source, '-') || ' / ' || coalesce(subject, '-'), count(*) FROM activities \
         WHERE type = 'form_submit' AND occurred_at >= ?1 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 12",
    )?;
    let conversions = stmt
        .query_map(params![since], |r| {
            Ok((
                r.get::<String>(0)?,
                u64::try_from(r.get::<i64>(1)?).unwrap_or(0),
            ))
        })?
        .collect::<std::result::Result<_, _>>()?;
    Ok(Dashboard {
        contacts: u64::try_from(contacts).unwrap_or(0),
        new_contacts,
        conversions,
        executions,
        opens,
        clicks,
    })
}
