//! The workflow engine: durable executions of workflows from the store.
//!
//! - [`program`]: a workflow compiled for running, named by its content hash.
//! - [`expr`]: minijinja expressions and templates at run time.
//! - [`state`]: an execution's durable state (variables, outputs, fibers).
//! - [`run`]: the interpreter: starts executions and advances them step by step,
//!   each step's record, state and local effects (CRM, outbox) in one transaction.
//! - [`ingest`]: the one entry for events (forms, page events, custom events,
//!   webhooks, CRM and email events, schedules): matches triggers, starts
//!   executions, delivers awaited events.
//! - [`remote`]: HTTP-like effects, sent with an idempotency key.
//! - [`worker`]: claims due timers, runs remote calls, delivers the dev outbox,
//!   fires cron occurrences and prunes old executions.
//! - [`simulate`]: the same interpreter on an in-memory store with a virtual clock
//!   and mocked remote effects, for `funnel simulate` and `funnel test`.
//!
//! Everything here runs on a `rusqlite::Connection` inside a store transaction (the
//! SQLite writer's); it never prints.

pub mod backlog;
pub mod doi;
pub mod egress;
pub mod expr;
pub mod graph;
pub mod import;
pub mod ingest;
pub mod mail;
pub mod manage;
pub mod program;
pub mod remote;
pub mod run;
pub mod schedule;
pub mod simulate;
pub mod site_traffic;
pub mod state;
pub mod steps;
pub mod testing;
pub mod worker;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::store::db::{Db, OptionalRow, params};

use crate::model::email_template::EmailTemplate;
use crate::model::step::RetryPolicy;
use crate::model::workflow::TriggerKind;
use crate::store::{StoreError, UnixMs};
use crate::workspace::Workspace;
use program::{Program, ProgramError};

/// The workflows new executions start on (see [`Engine::active_set`]).
pub type ActiveSet = Arc<Vec<Arc<Program>>>;
/// Operators' overrides of `active:`, by workflow id.
pub type Overrides = Arc<HashMap<String, bool>>;
/// The event kinds outbound webhook subscriptions wait for.
pub type Subscribed = Arc<std::collections::HashSet<String>>;

/// What an event may start and who hears of it, as of one store revision.
#[derive(Debug, Clone)]
pub struct Starting {
    pub active: ActiveSet,
    pub overrides: Overrides,
    pub subscribed: Subscribed,
}

/// Why the engine could not do what was asked (step failures are not errors: they
/// are recorded on the execution).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("workflow `{id}`: {source}")]
    Program {
        id: String,
        #[source]
        source: ProgramError,
    },
    #[error("no workflow `{0}`")]
    UnknownWorkflow(String),
    #[error("no execution `{0}`")]
    UnknownExecution(String),
    #[error("workflow version {0} is not in the store")]
    UnknownVersion(String),
    #[error("stored execution state is unreadable: {0}")]
    BadState(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A CRM change that failed inside an engine transaction: the store's errors stay
/// store errors (a busy or full disk is retried); the rest are the data's fault.
impl From<crate::crm::CrmError> for EngineError {
    fn from(e: crate::crm::CrmError) -> Self {
        match e {
            crate::crm::CrmError::Store(s) => EngineError::Store(s),
            other => EngineError::Invalid(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        EngineError::Store(StoreError::from(e))
    }
}

/// Settings from funnel.yaml that executions use.
#[derive(Debug, Clone)]
pub struct Settings {
    pub workspace_name: String,
    pub public_url: String,
    pub from: String,
    pub reply_to: Option<String>,
    /// The sender's postal address (funnel.yaml's `email.postal_address`).
    pub postal_address: Option<String>,
    /// Where the dev outbox writes `.eml` files.
    pub outbox_dir: PathBuf,
    /// The SMTP relay; without one, mail goes to the dev outbox.
    pub smtp: Option<crate::model::config::SmtpConfig>,
    /// The address bounces go back to, tagged per send (funnel.yaml's
    /// `email.return_path`, else the From address).
    pub return_path: Option<String>,
    /// The providers whose bounce and complaint webhooks are accepted.
    pub email_events: Option<crate::model::config::EmailEventSources>,
    /// The workspace's root folder (files funnel.yaml names are relative to it).
    pub root: PathBuf,
    /// Relays tried in order after `smtp`.
    pub smtp_fallbacks: Vec<crate::model::config::SmtpConfig>,
    /// Most emails handed over per clock hour.
    pub email_hourly_limit: Option<u32>,
    /// Most emails handed to the relay per second.
    pub email_rate_limit: Option<u32>,
    /// The DKIM key every message is signed with, or why it could not be loaded
    /// (a send then fails, saying so, rather than going out unsigned).
    pub dkim: Option<Result<crate::email::dkim::Signer, String>>,
    /// Whether emails carry the open pixel, and their links the click redirect.
    pub track_opens: bool,
    pub track_clicks: bool,
    pub timezone: Option<String>,
    pub default_retry: Option<RetryPolicy>,
    pub step_timeout_ms: u64,
    /// Finished executions older than this are pruned by the worker.
    pub retention_ms: Option<u64>,
    /// Score thresholds whose crossing fires `score_crossed`.
    pub thresholds: Vec<f64>,
    /// The addresses of the workspace's sites (`https://<domain>` of each site
    /// with a domain, and `public_url`): links to them in emails carry the
    /// contact's token.
    pub site_origins: Vec<String>,
    /// funnel.yaml's `network.allow`: what outgoing calls may reach besides
    /// public addresses.
    pub network_allow: Vec<String>,
}

/// The workflows of a workspace, compiled, and every version met since.
#[derive(Debug)]
pub struct Engine {
    pub settings: Settings,
    current: BTreeMap<String, Arc<Program>>,
    versions: Mutex<HashMap<String, Arc<Program>>>,
    /// The store's active workflows as last read, under the revision read with them.
    /// The active set and the operators' overrides, as of a store revision.
    active: Mutex<Option<(String, Starting)>>,
    pub emails: BTreeMap<String, EmailTemplate>,
    /// The static lists of contacts/lists.yaml.
    pub lists: BTreeMap<String, crate::model::contacts::ListDef>,
    /// The email layouts of templates/emails/layouts/.
    pub email_layouts: BTreeMap<String, crate::model::email_layout::EmailLayout>,
    /// Lead scoring; its thresholds include those workflows' `score_crossed`
    /// triggers name by number.
    pub scoring: crate::crm::scoring::Scoring,
    /// The pipelines of contacts/pipelines.yaml (which stages close a deal).
    pub pipelines: BTreeMap<String, crate::model::contacts::PipelineDef>,
    /// The campaigns of campaigns/*.yaml, by id.
    pub campaigns: BTreeMap<String, crate::model::campaign::Campaign>,
}

impl Engine {
    /// The layout a template names, if it names one that exists.
    pub fn layout_for(
        &self,
        template: &EmailTemplate,
    ) -> Option<&crate::model::email_layout::EmailLayout> {
        template
            .layout
            .as_deref()
            .and_then(|l| self.email_layouts.get(l))
    }

    /// Compiles every workflow of a (validated) workspace.
    pub fn from_workspace(ws: &Workspace) -> Result<Engine, EngineError> {
        let config = ws.config.as_ref().map(|c| &c.value);
        let email = config.and_then(|c| c.email.as_ref());
        let defaults = config.and_then(|c| c.defaults.as_ref());
        let ms = |d: Option<&crate::model::scalar::DurationText>| d.and_then(|d| d.millis().ok());
        let mut thresholds: Vec<f64> = ws
            .scoring
            .as_ref()
            .map(|s| s.value.thresholds.values().copied().collect())
            .unwrap_or_default();
        let mut current = BTreeMap::new();
        let mut versions = HashMap::new();
        for (id, doc) in &ws.workflows {
            if let TriggerKind::ScoreCrossed { threshold, .. } = &doc.value.trigger.kind {
                thresholds.push(*threshold);
            }
            let p = Arc::new(Program::compile(id, doc.value.clone()).map_err(|source| {
                EngineError::Program {
                    id: id.clone(),
                    source,
                }
            })?);
            versions.insert(p.hash.clone(), p.clone());
            current.insert(id.clone(), p);
        }
        thresholds.sort_by(f64::total_cmp);
        thresholds.dedup();
        let outbox = email
            .and_then(|e| e.outbox.clone())
            .unwrap_or_else(|| ".funnel/outbox".to_string());
        let settings = Settings {
            workspace_name: config.map_or_else(|| "funnel".to_string(), |c| c.name.clone()),
            public_url: config.map_or_else(
                || "http://127.0.0.1".to_string(),
                |c| c.public_url.as_str().trim_end_matches('/').to_string(),
            ),
            from: email.map_or_else(
                || "funnel <noreply@localhost>".to_string(),
                |e| e.from.as_str().to_string(),
            ),
            reply_to: email.and_then(|e| e.reply_to.as_ref().map(|r| r.as_str().to_string())),
            postal_address: email.and_then(|e| e.postal_address.clone()),
            outbox_dir: ws.root.join(outbox),
            smtp: email.and_then(|e| e.smtp.clone()),
            email_events: email.and_then(|e| e.events.clone()),
            smtp_fallbacks: email.map(|e| e.smtp_fallbacks.clone()).unwrap_or_default(),
            email_hourly_limit: email.and_then(|e| e.hourly_limit),
            root: ws.root.clone(),
            return_path: email.and_then(|e| {
                let mailbox = e.return_path.as_ref().unwrap_or(&e.from).as_str();
                mailbox
                    .parse::<lettre::message::Mailbox>()
                    .ok()
                    .map(|m| m.email.to_string())
            }),
            email_rate_limit: email.and_then(|e| e.rate_limit),
            track_opens: email
                .and_then(|e| e.tracking.as_ref())
                .is_none_or(|t| t.opens),
            track_clicks: email
                .and_then(|e| e.tracking.as_ref())
                .is_none_or(|t| t.clicks),
            dkim: email.and_then(|e| e.dkim.as_ref()).map(|d| {
                crate::email::dkim::Signer::load(d, &ws.root, |name| std::env::var(name).ok())
                    .map_err(|e| e.to_string())
            }),
            timezone: config.and_then(|c| c.timezone.as_ref().map(|t| t.as_str().to_string())),
            default_retry: defaults.and_then(|d| d.retry.clone()),
            step_timeout_ms: ms(defaults.and_then(|d| d.step_timeout.as_ref()))
                .unwrap_or(remote::DEFAULT_TIMEOUT_MS),
            retention_ms: ms(defaults.and_then(|d| d.execution_retention.as_ref())),
            thresholds,
            site_origins: {
                let mut o: Vec<String> = ws
                    .sites
                    .values()
                    .filter_map(|s| s.value.domain.as_ref())
                    .flat_map(|d| [format!("https://{d}"), format!("http://{d}")])
                    .collect();
                if let Some(c) = config {
                    o.push(c.public_url.as_str().trim_end_matches('/').to_string());
                }
                o.sort();
                o.dedup();
                o
            },
            network_allow: config
                .and_then(|c| c.network.as_ref())
                .map(|n| n.allow.clone())
                .unwrap_or_default(),
        };
        let mut scoring = crate::crm::scoring::Scoring::new(
            ws.scoring.as_ref().map(|d| &d.value),
            ws.segments
                .as_ref()
                .map(|d| d.value.segments.clone())
                .unwrap_or_default(),
        );
        for t in &settings.thresholds {
            if !scoring.thresholds.iter().any(|(_, v)| v == t) {
                scoring.thresholds.push((t.to_string(), *t));
            }
        }
        scoring.thresholds.sort_by(|a, b| a.1.total_cmp(&b.1));
        let emails = ws
            .email_templates
            .iter()
            .map(|(id, d)| (id.clone(), d.value.clone()))
            .collect();
        Ok(Engine {
            settings,
            current,
            versions: Mutex::new(versions),
            active: Mutex::new(None),
            emails,
            lists: ws
                .lists
                .as_ref()
                .map(|d| d.value.lists.clone())
                .unwrap_or_default(),
            email_layouts: ws
                .email_layouts
                .iter()
                .map(|(id, d)| (id.clone(), d.value.clone()))
                .collect(),
            scoring,
            pipelines: ws
                .pipelines
                .as_ref()
                .map(|d| d.value.pipelines.clone())
                .unwrap_or_default(),
            campaigns: ws
                .campaigns
                .iter()
                .map(|(k, d)| (k.clone(), d.value.clone()))
                .collect(),
        })
    }

    /// What a deal's status becomes at a stage: "won" or "lost" at a closing
    /// stage, else "open".
    pub fn deal_status(&self, pipeline: &str, stage: &str) -> &'static str {
        use crate::model::contacts::DealOutcome;
        let closed = self
            .pipelines
            .get(pipeline)
            .and_then(|p| p.stages.iter().find(|s| s.id.as_str() == stage))
            .and_then(|s| s.closed);
        match closed {
            Some(DealOutcome::Won) => "won",
            Some(DealOutcome::Lost) => "lost",
            None => "open",
        }
    }

    /// The current version of a workflow.
    pub fn workflow(&self, id: &str) -> Option<&Arc<Program>> {
        self.current.get(id)
    }

    /// What the current workflows' triggers listen to, as [`CrmEvent::queue_key`]s
    /// (`tag_added:newsletter`, `field_changed:plan`, `contact_created`, …): the
    /// CRM events worth queueing for ingestion.
    ///
    /// [`CrmEvent::queue_key`]: crate::crm::CrmEvent::queue_key
    pub fn trigger_types(&self) -> std::collections::BTreeSet<String> {
        use crate::model::workflow::TriggerKind;
        self.current
            .values()
            .filter_map(|p| match &p.workflow.trigger.kind {
                TriggerKind::TagAdded { tag } => Some(format!("tag_added:{tag}")),
                TriggerKind::ListJoined { list } => Some(format!("list_joined:{list}")),
                TriggerKind::FieldChanged { field, .. } => Some(format!("field_changed:{field}")),
                other => serde_json::to_value(other)
                    .ok()?
                    .get("type")?
                    .as_str()
                    .map(String::from),
            })
            .collect()
    }

    /// Every workflow of this checkout, by id.
    pub fn workflows(&self) -> impl Iterator<Item = (&String, &Arc<Program>)> {
        self.current.iter()
    }

    /// The program of a version: from memory, else from the store's
    /// `workflow_versions`.
    pub fn version(
        &self,
        conn: Db<'_>,
        workflow: &str,
        hash: &str,
    ) -> Result<Arc<Program>, EngineError> {
        if let Some(p) = self.cached(hash) {
            return Ok(p);
        }
        let definition: Option<String> = conn
            .prepare_cached("SELECT definition FROM workflow_versions WHERE hash = ?1")?
            .query_row(params![hash], |r| r.get(0))
            .optional()?;
        let definition = definition.ok_or_else(|| EngineError::UnknownVersion(hash.to_string()))?;
        let p = Arc::new(
            Program::from_definition(workflow, &definition).map_err(|source| {
                EngineError::Program {
                    id: workflow.to_string(),
                    source,
                }
            })?,
        );
        // A definition re-serialized may hash differently; keep it under the stored hash.
        if let Ok(mut cache) = self.versions.lock() {
            cache.insert(hash.to_string(), p.clone());
        }
        Ok(p)
    }

    fn cached(&self, hash: &str) -> Option<Arc<Program>> {
        self.versions.lock().ok()?.get(hash).cloned()
    }

    /// The workflows new executions start on: the store's active set, which the
    /// last process to register its workspace made (every workflow of that
    /// checkout at its version, and none other), so every worker sharing the store
    /// starts the same workflows on the same versions whatever checkout it was
    /// started from. Read again only when the store's revision moved. A store no
    /// workspace was registered in yet runs this engine's own workflows.
    pub fn active_set(&self, conn: Db<'_>) -> Result<ActiveSet, EngineError> {
        Ok(self.starting(conn)?.active)
    }

    /// The active set with the operators' overrides (what an event may start)
    /// and the kinds webhook subscribers wait for. All are read again only when
    /// the store's revision moved (an override, a subscription and an
    /// unsubscription move it too), so an event costs one lookup, not scans of
    /// `workflows` and `hook_subscriptions`.
    pub fn starting(&self, conn: Db<'_>) -> Result<Starting, EngineError> {
        let revision: Option<String> = conn
            .prepare_cached("SELECT value FROM crm_state WHERE key = 'workflow_revision'")?
            .query_row(params![], |r| r.get(0))
            .optional()?;
        let Some(revision) = revision else {
            return Ok(Starting {
                active: Arc::new(self.current.values().cloned().collect()),
                overrides: Arc::new(Engine::overrides(conn)?),
                subscribed: Arc::new(crate::subscriptions::kinds(conn)?),
            });
        };
        if let Ok(cache) = self.active.lock()
            && let Some((seen, starting)) = cache.as_ref()
            && *seen == revision
        {
            return Ok(starting.clone());
        }
        let stored: Vec<(String, String)> = {
            let mut stmt = conn.prepare_cached(
                "SELECT id, current_hash FROM workflows WHERE current_hash IS NOT NULL ORDER BY id",
            )?;
            let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut set = Vec::with_capacity(stored.len());
        for (id, hash) in stored {
            set.push(self.version(conn, &id, &hash)?);
        }
        let starting = Starting {
            active: Arc::new(set),
            overrides: Arc::new(Engine::overrides(conn)?),
            subscribed: Arc::new(crate::subscriptions::kinds(conn)?),
        };
        if let Ok(mut cache) = self.active.lock() {
            *cache = Some((revision, starting.clone()));
        }
        Ok(starting)
    }

    /// The active version of one workflow, if it is in the store's active set.
    pub fn active_program(
        &self,
        conn: Db<'_>,
        id: &str,
    ) -> Result<Option<Arc<Program>>, EngineError> {
        Ok(self.active_set(conn)?.iter().find(|p| p.id == id).cloned())
    }

    /// Records every current workflow and its version in the store (idempotent),
    /// and makes this checkout's workflows the active set: starting a worker (or
    /// any command that runs the engine) from a checkout deploys it, workflows it
    /// no longer has included. A change moves the store's revision, which tells
    /// the other workers to read the set again.
    pub fn register(&self, conn: Db<'_>, now: UnixMs) -> Result<(), EngineError> {
        let mut version = conn.prepare_cached(
            "INSERT INTO workflow_versions (hash, workflow_id, definition, created_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (hash) DO NOTHING",
        )?;
        let mut workflow = conn.prepare_cached(
            "INSERT INTO workflows (id, name, current_hash, updated_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, current_hash = excluded.current_hash, \
             updated_at = excluded.updated_at WHERE workflows.current_hash IS DISTINCT FROM excluded.current_hash",
        )?;
        let mut changed = 0;
        for (id, p) in &self.current {
            version.execute(params![p.hash, id, p.definition, now])?;
            changed += workflow.execute(params![id, p.workflow.name, p.hash, now])?;
        }
        let stored: Vec<String> = {
            let mut stmt =
                conn.prepare_cached("SELECT id FROM workflows WHERE current_hash IS NOT NULL")?;
            let rows = stmt.query_map(params![], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut retire = conn.prepare_cached(
            "UPDATE workflows SET current_hash = NULL, updated_at = ?2 WHERE id = ?1",
        )?;
        for id in stored.iter().filter(|id| !self.current.contains_key(*id)) {
            changed += retire.execute(params![id, now])?;
        }
        let first = conn
            .prepare_cached("SELECT 1 FROM crm_state WHERE key = 'workflow_revision'")?
            .query_row(params![], |r| r.get::<i64>(0))
            .optional()?
            .is_none();
        if changed > 0 || first {
            conn.prepare_cached(
                "INSERT INTO crm_state (key, value) VALUES ('workflow_revision', ?1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![crate::uid::new(now)])?;
        }
        Ok(())
    }

    /// Workflows an operator disabled or enabled in this store, overriding `active:`.
    pub fn overrides(conn: Db<'_>) -> Result<HashMap<String, bool>, EngineError> {
        let mut stmt = conn.prepare_cached(
            "SELECT id, active_override FROM workflows WHERE active_override IS NOT NULL",
        )?;
        let rows = stmt.query_map(params![], |r| {
            Ok((r.get::<String>(0)?, r.get::<i64>(1)? != 0))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether a workflow of this checkout runs: the store's override, else its
    /// `active:`.
    pub fn is_active(&self, id: &str, overrides: &HashMap<String, bool>) -> bool {
        overrides
            .get(id)
            .copied()
            .unwrap_or_else(|| self.current.get(id).is_some_and(|p| p.workflow.active))
    }

    /// Whether a version of the active set runs: the store's override, else the
    /// version's own `active:`.
    pub fn runs(p: &Program, overrides: &HashMap<String, bool>) -> bool {
        overrides.get(&p.id).copied().unwrap_or(p.workflow.active)
    }

    /// Sets or clears an operator's override for a workflow.
    pub fn set_override(
        conn: Db<'_>,
        id: &str,
        active: Option<bool>,
        now: UnixMs,
    ) -> Result<(), EngineError> {
        conn.prepare_cached(
            "INSERT INTO workflows (id, name, active_override, updated_at) VALUES (?1, ?1, ?2, ?3) \
             ON CONFLICT (id) DO UPDATE SET active_override = excluded.active_override, \
             updated_at = excluded.updated_at",
        )?
        .execute(params![id, active.map(i64::from), now])?;
        // Every worker reads the overrides again with the active set.
        Engine::move_revision(conn, now)?;
        Ok(())
    }

    /// Moves the store's revision (where a checkout registered one), so every
    /// worker sharing the store reads what [`Engine::starting`] caches again.
    pub fn move_revision(conn: Db<'_>, now: UnixMs) -> Result<(), StoreError> {
        conn.prepare_cached("UPDATE crm_state SET value = ?1 WHERE key = 'workflow_revision'")?
            .execute(params![crate::uid::new(now)])?;
        Ok(())
    }
}

/// The `type:` name of a trigger kind.
pub fn trigger_type(kind: &TriggerKind) -> &'static str {
    match kind {
        TriggerKind::FormSubmission { .. } => "form_submission",
        TriggerKind::PageEvent { .. } => "page_event",
        TriggerKind::Schedule { .. } => "schedule",
        TriggerKind::CustomEvent { .. } => "custom_event",
        TriggerKind::Webhook { .. } => "webhook",
        TriggerKind::ContactCreated { .. } => "contact_created",
        TriggerKind::TagAdded { .. } => "tag_added",
        TriggerKind::ListJoined { .. } => "list_joined",
        TriggerKind::FieldChanged { .. } => "field_changed",
        TriggerKind::ScoreCrossed { .. } => "score_crossed",
        TriggerKind::StageChanged { .. } => "stage_changed",
        TriggerKind::DealStageChanged { .. } => "deal_stage_changed",
        TriggerKind::EmailOpened { .. } => "email_opened",
        TriggerKind::EmailClicked { .. } => "email_clicked",
        TriggerKind::EmailBounced { .. } => "email_bounced",
        TriggerKind::EmailUnsubscribed { .. } => "email_unsubscribed",
    }
}

impl From<crate::analytics::AnalyticsError> for EngineError {
    fn from(e: crate::analytics::AnalyticsError) -> Self {
        use crate::analytics::AnalyticsError as A;
        match e {
            A::Bad(m) => EngineError::Invalid(m),
            A::Sql(e) => EngineError::Store(e.into()),
            A::Store(e) => EngineError::Store(e),
        }
    }
}
