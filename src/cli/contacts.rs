//! `funnel contacts …`: add, show, list, search, tag, untag, rm, score-explain,
//! over the local store. Each is a thin adapter over `crm`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use serde_json::{Value as Json, json};

use super::ColorChoice;
use super::loaded::{TableFormat, print_table, shown_time};
use super::segments::to_store;
use crate::crm::directory::{self, Summary};
use crate::crm::{attribution, contact, segment::Mode};
use crate::engine::Engine;
use crate::model::contacts::{Condition, ContactStatus, FieldCondition, Range};
use crate::store::db::params;
use crate::store::{NewContact, Store, UnixMs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long, global = true)]
    pub workspace: Option<PathBuf>,
}

/// Filters of `contacts list`; all given must hold.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Filters {
    /// Has this tag (repeatable).
    #[arg(long)]
    pub tag: Vec<String>,
    /// Is on this list (repeatable).
    #[arg(long)]
    pub list: Vec<String>,
    /// Is in this segment of contacts/segments.yaml.
    #[arg(long)]
    pub segment: Option<String>,
    /// Has this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// A custom field equals a value: `--field plan=pro` (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    pub field: Vec<String>,
    /// Came from this source (component, site or workflow).
    #[arg(long)]
    pub source: Option<String>,
    /// Score at least.
    #[arg(long)]
    pub min_score: Option<f64>,
    /// Score at most.
    #[arg(long)]
    pub max_score: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    Active,
    Unsubscribed,
    Bounced,
    Complained,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create a contact, or update the one with this email.
    Add {
        email: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        /// Tags to add (repeatable).
        #[arg(long)]
        tag: Vec<String>,
        /// A custom field: `--field plan=pro` (repeatable).
        #[arg(long, value_name = "NAME=VALUE")]
        field: Vec<String>,
        /// Lists to join (repeatable).
        #[arg(long)]
        list: Vec<String>,
    },
    /// Change a contact's name, phone, status, stage or fields.
    Edit {
        contact: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// Lifecycle stage (subscriber, lead, marketing_qualified, …).
        #[arg(long)]
        stage: Option<String>,
        /// A custom field: `--field plan=pro`; `--field plan=` removes it (repeatable).
        #[arg(long, value_name = "NAME=VALUE")]
        field: Vec<String>,
    },
    /// Record consent given or withdrawn (lifts a suppression when given).
    Consent {
        /// An email address (the person need not be a contact).
        email: String,
        /// What it is for, e.g. `newsletter`.
        #[arg(long)]
        purpose: String,
        /// Record a withdrawal instead.
        #[arg(long)]
        withdrawn: bool,
        /// Where it was given (a form, a call, an email).
        #[arg(long)]
        source: Option<String>,
        /// The text the person agreed to.
        #[arg(long)]
        wording: Option<String>,
    },
    /// A contact: fields, tags, lists, score and newest activities.
    Show {
        contact: String,
        /// How many activities of the timeline to show.
        #[arg(long, default_value_t = 10)]
        activities: usize,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Contacts, oldest first, filtered.
    List {
        #[command(flatten)]
        filters: Filters,
        /// At most this many.
        #[arg(long, default_value_t = 50, conflicts_with = "all")]
        limit: usize,
        /// Every match (streamed in pages).
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Search names, emails and company domains as you type.
    Search {
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Add tags to a contact.
    Tag { contact: String, tags: Vec<String> },
    /// Remove tags from a contact.
    Untag { contact: String, tags: Vec<String> },
    /// Delete a contact and its timeline.
    Rm { contact: String },
    /// Import contacts from CSV (one transaction; bad rows go to a reject file).
    Import {
        file: PathBuf,
        /// Map a column to a target: `--map "E-Mail Address=email"`; targets:
        /// email, name, first_name, last_name, phone, tags, lists, ignore, or a
        /// field of contacts/fields.yaml (repeatable).
        #[arg(long, value_name = "COLUMN=TARGET")]
        map: Vec<String>,
        /// What to do with rows whose email is already a contact.
        #[arg(long, value_enum, default_value_t = ExistingArg::Update)]
        existing: ExistingArg,
        /// The delimiter (default: sniffed from the header line).
        #[arg(long)]
        delimiter: Option<char>,
        /// A tag for every imported contact (repeatable).
        #[arg(long)]
        tag: Vec<String>,
        /// A list every imported contact joins.
        #[arg(long)]
        list: Option<String>,
        /// Where to write rejected rows (default: FILE.rejects.csv beside FILE).
        #[arg(long)]
        rejects: Option<PathBuf>,
        /// Start no workflow: the contacts' new tags, fields and creation are not
        /// fed to the workflows' triggers.
        #[arg(long)]
        no_workflows: bool,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Change every contact of a segment or filter at once, in one transaction.
    Bulk {
        #[command(flatten)]
        filters: Filters,
        /// Every contact (when no filter is given, this must be said).
        #[arg(long)]
        all_contacts: bool,
        /// Add this tag.
        #[arg(long, group = "action")]
        add_tag: Option<String>,
        /// Remove this tag.
        #[arg(long, group = "action")]
        remove_tag: Option<String>,
        /// Add to this list.
        #[arg(long, group = "action")]
        add_to_list: Option<String>,
        /// Remove from this list.
        #[arg(long, group = "action")]
        remove_from_list: Option<String>,
        /// Set a field: NAME=VALUE.
        #[arg(long, group = "action", value_name = "NAME=VALUE")]
        set_field: Option<String>,
        /// Delete the contacts.
        #[arg(long, group = "action")]
        delete: bool,
        /// Only say how many contacts would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Export contacts as CSV, in funnel's layout or HubSpot's or Mailchimp's.
    Export {
        #[command(flatten)]
        filters: Filters,
        #[arg(long, value_enum, default_value_t = LayoutArg::Funnel)]
        layout: LayoutArg,
        /// Write to this file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List likely duplicate pairs with scores (blocked, never all pairs).
    Dedupe {
        /// At most this many pairs.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Only pairs scoring at least this (0–1).
        #[arg(long, default_value_t = 0.0)]
        min_score: f64,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Merge contact B into contact A: A keeps both histories; B is logged.
    Merge { keep: String, other: String },
    /// Undo the latest merge into a contact (or the merge of OTHER into it).
    Unmerge {
        contact: String,
        /// The merged contact's email or id, when several were merged.
        other: Option<String>,
    },
    /// Erase a person everywhere (store, search index, outbox, .eml files) and
    /// suppress the address against re-import.
    Forget { contact: String },
    /// Everything held about a person, as JSON.
    ExportData { contact: String },
    /// Why a contact has its lead score.
    ScoreExplain {
        contact: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    Funnel,
    Hubspot,
    Mailchimp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExistingArg {
    /// Overwrite the columns the file has.
    Update,
    /// Leave existing contacts as they are.
    Skip,
}

/// Output of contact listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    Csv,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let engine = Arc::new(super::loaded::engine(&ws)?);
    let store = super::loaded::store(&ws)?;
    let now = crate::store::now_ms();
    refresh_scores(&store, &engine, now)?;
    let cx = Cx {
        ws: &ws,
        engine: &engine,
        store: &store,
        now,
        actor: super::loaded::actor(&ws.root),
    };
    match args.command {
        Cmd::Add {
            email,
            name,
            phone,
            tag,
            field,
            list,
        } => add(&cx, email, name, phone, tag, field, list),
        Cmd::Edit {
            contact: who,
            name,
            phone,
            status,
            stage,
            field,
        } => edit(&cx, who, name, phone, status, stage, field),
        Cmd::Consent {
            email,
            purpose,
            withdrawn,
            source,
            wording,
        } => consent(&cx, email, purpose, withdrawn, source, wording),
        Cmd::Show {
            contact: who,
            activities,
            format,
        } => show(&cx, who, activities, format),
        Cmd::List {
            filters,
            limit,
            all,
            format,
        } => list(&cx, filters, limit, all, format),
        Cmd::Search {
            query,
            limit,
            format,
        } => search(&cx, query, limit, format),
        Cmd::Tag { contact: who, tags } => tag(&cx, who, tags),
        Cmd::Untag { contact: who, tags } => untag(&cx, who, tags),
        Cmd::Rm { contact: who } => remove(&cx, who),
        Cmd::Import {
            file,
            map,
            existing,
            delimiter,
            tag,
            list,
            rejects,
            no_workflows,
            format,
        } => import(
            &cx,
            file,
            map,
            existing,
            delimiter,
            tag,
            list,
            rejects,
            no_workflows,
            format,
        ),
        Cmd::Bulk {
            filters,
            all_contacts,
            add_tag,
            remove_tag,
            add_to_list,
            remove_from_list,
            set_field,
            delete,
            dry_run,
        } => bulk(
            &cx,
            filters,
            all_contacts,
            add_tag,
            remove_tag,
            add_to_list,
            remove_from_list,
            set_field,
            delete,
            dry_run,
        ),
        Cmd::Export {
            filters,
            layout,
            out,
        } => export(&cx, filters, layout, out),
        Cmd::Dedupe {
            limit,
            min_score,
            format,
        } => dedupe(&cx, limit, min_score, format),
        Cmd::Merge { keep, other } => merge(&cx, keep, other),
        Cmd::Unmerge {
            contact: who,
            other,
        } => unmerge(&cx, who, other),
        Cmd::Forget { contact: who } => forget(&cx, who),
        Cmd::ExportData { contact: who } => export_person(&cx, who),
        Cmd::ScoreExplain {
            contact: who,
            format,
        } => score_explain(&cx, who, format),
    }
}

/// What every subcommand works with.
struct Cx<'a> {
    ws: &'a crate::workspace::Workspace,
    engine: &'a Arc<crate::engine::Engine>,
    store: &'a Store,
    now: crate::store::UnixMs,
    /// Who the audit log names (`FUNNEL_ACTOR`, else `git config user.email`).
    actor: String,
}

/// Records a change to a contact in the audit log, in the change's transaction.
fn audited(
    c: crate::store::db::Db<'_>,
    actor: &str,
    action: &str,
    id: i64,
    details: serde_json::Value,
    now: crate::store::UnixMs,
) -> Result<(), crate::store::StoreError> {
    let uid = directory::summary(c, id).map_err(to_store)?.uid;
    crate::audit::record(c, actor, action, "contact", Some(&uid), &details, now)
}

/// `funnel contacts add`.
fn add(
    cx: &Cx,
    email: String,
    name: Option<String>,
    phone: Option<String>,
    tag: Vec<String>,
    field: Vec<String>,
    list: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let (engine, store) = (cx.engine, cx.store);
    let fields = parse_fields(&field)?;
    let u = contact::Upsert {
        contact: NewContact {
            email,
            name,
            phone,
            ..Default::default()
        },
        fields,
        tags: tag,
        lists: list,
    };
    let actor = cx.actor.clone();
    let (id, created) = super::loaded::crm_change(store, engine.clone(), move |c, now| {
        let (id, events) = contact::upsert(c, &u, now)?;
        let created = events
            .iter()
            .any(|e| matches!(e, crate::crm::CrmEvent::ContactCreated { .. }));
        audited(
            c,
            &actor,
            if created { "create" } else { "update" },
            id,
            serde_json::json!({"email": u.contact.email}),
            now,
        )?;
        Ok(((id, created), events))
    })?;
    let s = store.read(move |c| directory::summary(c, id).map_err(to_store))?;
    println!(
        "{} contact {} ({})",
        if created { "created" } else { "updated" },
        s.email,
        s.uid
    );
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts edit`.
fn edit(
    cx: &Cx,
    who: String,
    name: Option<String>,
    phone: Option<String>,
    status: Option<StatusArg>,
    stage: Option<String>,
    field: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let (ws, engine, store) = (cx.ws, cx.engine, cx.store);
    let mut fields = parse_fields(&field)?;
    for (k, v) in fields.iter_mut() {
        if v.as_str() == Some("") {
            *v = Json::Null;
        }
        let known = ws
            .fields
            .as_ref()
            .is_some_and(|d| d.value.fields.contains_key(k));
        if !known {
            anyhow::bail!("`--field {k}`: no field `{k}` in contacts/fields.yaml");
        }
    }
    if let Some(s) = &stage {
        let valid: Result<crate::model::workflow::LifecycleStage, _> =
            serde_json::from_value(Json::String(s.clone()));
        if valid.is_err() {
            anyhow::bail!(
                "`--stage {s}`: use subscriber, lead, marketing_qualified, sales_qualified, opportunity, customer, evangelist or other"
            );
        }
    }
    let status = status.map(|s| match s {
        StatusArg::Active => "active",
        StatusArg::Unsubscribed => "unsubscribed",
        StatusArg::Bounced => "bounced",
        StatusArg::Complained => "complained",
    });
    let e = engine.clone();
    let actor = cx.actor.clone();
    let email = super::loaded::crm_change(store, engine.clone(), move |c, now| {
        let id = contact::resolve(c, &who)?;
        audited(
            c,
            &actor,
            "edit",
            id,
            serde_json::json!({"name": name, "phone": phone, "status": status, "stage": stage, "fields": fields}),
            now,
        )?;
        contact::edit(c, id, name.as_deref(), phone.as_deref(), status, now)?;
        let mut events = Vec::new();
        if let Some(s) = &stage {
            events.extend(contact::set_stage(c, id, s, now)?);
        }
        events.extend(contact::set_fields(c, id, &fields, now)?);
        events.extend(e.scoring.observe(c, id, now)?);
        Ok((directory::summary(c, id)?.email, events))
    })?;
    println!("updated {email}");
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts consent`.
fn consent(
    cx: &Cx,
    email: String,
    purpose: String,
    withdrawn: bool,
    source: Option<String>,
    wording: Option<String>,
) -> anyhow::Result<ExitCode> {
    let (store, now) = (cx.store, cx.now);
    if !crate::validate::values::is_email(&crate::store::ops::normalize_email(&email)) {
        anyhow::bail!("`{email}` is not an email address");
    }
    let shown = email.clone();
    store
        .write(move |c| {
            let id = contact::id_by_email(c, &email).map_err(to_store)?;
            crate::crm::privacy::record_consent(
                c,
                &crate::crm::privacy::Consent {
                    contact_id: id,
                    email: &email,
                    purpose: &purpose,
                    granted: !withdrawn,
                    source: source.as_deref(),
                    wording: wording.as_deref(),
                },
                now,
            )
            .map_err(to_store)
        })
        .wait()?;
    println!(
        "consent {} for {shown}",
        if withdrawn {
            "withdrawal recorded"
        } else {
            "recorded"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts show`.
fn show(cx: &Cx, who: String, activities: usize, format: TableFormat) -> anyhow::Result<ExitCode> {
    let (engine, store, now) = (cx.engine, cx.store, cx.now);
    let e = engine.clone();
    let (view, touches, timeline) = store.read(move |c| {
        let id = contact::resolve(c, &who).map_err(to_store)?;
        let view = contact::view(c, id, &e.scoring, now).map_err(to_store)?;
        let touches = attribution::touches(c, id).map_err(to_store)?;
        let t = directory::timeline(c, id, None, activities).map_err(to_store)?;
        Ok((view, touches, t))
    })?;
    match format {
        TableFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "contact": view,
                "first_touch": touches.0,
                "last_touch": touches.1,
                "timeline": timeline,
            }))?
        ),
        TableFormat::Table => print_contact(&view, &touches, &timeline),
    }
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts list`.
fn list(
    cx: &Cx,
    filters: Filters,
    limit: usize,
    all: bool,
    format: ListFormat,
) -> anyhow::Result<ExitCode> {
    let (engine, store, now) = (cx.engine, cx.store, cx.now);
    let cond = filters.condition()?;
    if let Some(seg) = &filters.segment
        && !engine.scoring.segments.contains_key(seg)
    {
        let ids: Vec<&str> = engine.scoring.segments.keys().map(String::as_str).collect();
        anyhow::bail!(
            "no segment `{seg}`; {}",
            crate::diagnostic::suggest(seg, &ids, "the segments are")
        );
    }
    let mut out = Output::new(format);
    let mut after = 0;
    let mut left = if all { usize::MAX } else { limit };
    while left > 0 {
        let page = left.min(1_000);
        let (e, cond) = (engine.clone(), cond.clone());
        let rows = store.read(move |c| {
            directory::list(c, &e.scoring, cond.as_ref(), now, after, page).map_err(to_store)
        })?;
        let n = rows.len();
        if let Some(last) = rows.last() {
            after = last.id;
        }
        out.rows(rows)?;
        left = left.saturating_sub(n);
        if n < page {
            break;
        }
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts search`.
fn search(cx: &Cx, query: String, limit: usize, format: ListFormat) -> anyhow::Result<ExitCode> {
    let (store,) = (cx.store,);
    let rows = store
        .write(move |c| {
            crate::store::search::reindex_contacts(c, usize::MAX)?;
            directory::search(c, &query, limit).map_err(to_store)
        })
        .wait()?;
    let mut out = Output::new(format);
    out.rows(rows)?;
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts tag`.
fn tag(cx: &Cx, who: String, tags: Vec<String>) -> anyhow::Result<ExitCode> {
    let (engine, store) = (cx.engine, cx.store);
    let e = engine.clone();
    let actor = cx.actor.clone();
    let added = super::loaded::crm_change(store, engine.clone(), move |c, now| {
        let id = contact::resolve(c, &who)?;
        audited(c, &actor, "tag", id, serde_json::json!({"tags": tags}), now)?;
        let mut events = contact::add_tags(c, id, &tags, now)?;
        let added = events.len();
        events.extend(e.scoring.observe(c, id, now)?);
        Ok((added, events))
    })?;
    println!("{added} tag(s) added");
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts untag`.
fn untag(cx: &Cx, who: String, tags: Vec<String>) -> anyhow::Result<ExitCode> {
    let (engine, store, now) = (cx.engine, cx.store, cx.now);
    let e = engine.clone();
    let actor = cx.actor.clone();
    let removed = store
        .write(move |c| {
            let id = contact::resolve(c, &who).map_err(to_store)?;
            audited(
                c,
                &actor,
                "untag",
                id,
                serde_json::json!({"tags": tags}),
                now,
            )?;
            let n = contact::remove_tags(c, id, &tags).map_err(to_store)?;
            e.scoring.observe(c, id, now).map_err(to_store)?;
            Ok(n)
        })
        .wait()?;
    println!("{removed} tag(s) removed");
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts rm`.
fn remove(cx: &Cx, who: String) -> anyhow::Result<ExitCode> {
    let (store, now) = (cx.store, cx.now);
    let actor = cx.actor.clone();
    let email = store
        .write(move |c| {
            let id = contact::resolve(c, &who).map_err(to_store)?;
            let s = directory::summary(c, id).map_err(to_store)?;
            // The uid only: a deleted contact's details do not stay in the log.
            crate::audit::record(
                c,
                &actor,
                "delete",
                "contact",
                Some(&s.uid),
                &serde_json::json!({}),
                now,
            )?;
            directory::remove(c, id).map_err(to_store)?;
            Ok(s.email)
        })
        .wait()?;
    println!("deleted {email}");
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts import`.
#[allow(clippy::too_many_arguments)] // the subcommand's flags, one each
fn import(
    cx: &Cx,
    file: PathBuf,
    map: Vec<String>,
    existing: ExistingArg,
    delimiter: Option<char>,
    tag: Vec<String>,
    list: Option<String>,
    rejects: Option<PathBuf>,
    no_workflows: bool,
    format: TableFormat,
) -> anyhow::Result<ExitCode> {
    let (ws, engine, store, now) = (cx.ws, cx.engine, cx.store, cx.now);
    let opts = crate::crm::import::Options {
        map: map
            .iter()
            .map(|m| {
                m.split_once('=')
                    .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "`--map {m}`: write COLUMN=TARGET, e.g. --map \"E-Mail=email\""
                        )
                    })
            })
            .collect::<anyhow::Result<_>>()?,
        existing: match existing {
            ExistingArg::Update => crate::crm::import::ExistingPolicy::Update,
            ExistingArg::Skip => crate::crm::import::ExistingPolicy::Skip,
        },
        delimiter: match delimiter {
            Some(c) if c.is_ascii() => Some(c as u8),
            Some(c) => {
                anyhow::bail!("`--delimiter {c}`: the delimiter must be one ASCII character")
            }
            None => None,
        },
        tags: tag,
        list,
        defer_indexes: false,
        bulk: false,
        source: Some(format!(
            "import:{}",
            file.file_name().map_or_else(
                || file.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        )),
        queue_events: Default::default(),
    };
    super::contacts_import::run(
        ws,
        store,
        engine,
        &file,
        opts,
        !no_workflows,
        rejects,
        format,
        now,
    )
}

/// `funnel contacts bulk`.
#[allow(clippy::too_many_arguments)] // the subcommand's flags, one each
fn bulk(
    cx: &Cx,
    filters: Filters,
    all_contacts: bool,
    add_tag: Option<String>,
    remove_tag: Option<String>,
    add_to_list: Option<String>,
    remove_from_list: Option<String>,
    set_field: Option<String>,
    delete: bool,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let (ws, engine, store, now) = (cx.ws, cx.engine, cx.store, cx.now);
    use crate::crm::bulk::Action;
    let action = if let Some(t) = add_tag {
        Action::Tag(vec![t])
    } else if let Some(t) = remove_tag {
        Action::Untag(vec![t])
    } else if let Some(l) = add_to_list.or(remove_from_list.clone()) {
        let known = ws
            .lists
            .as_ref()
            .is_some_and(|d| d.value.lists.contains_key(&l));
        if !known {
            anyhow::bail!("no list `{l}` in contacts/lists.yaml");
        }
        if remove_from_list.is_some() {
            Action::RemoveFromList(l)
        } else {
            Action::AddToList(l)
        }
    } else if let Some(pair) = set_field {
        let (name, value) = parse_fields(&[pair])?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("--set-field needs NAME=VALUE"))?;
        Action::SetField(name, value)
    } else if delete {
        Action::Delete
    } else {
        anyhow::bail!(
            "say what to do: --add-tag, --remove-tag, --add-to-list, --remove-from-list, --set-field or --delete"
        );
    };
    let cond = match (filters.condition()?, all_contacts) {
        (Some(c), _) => c,
        (None, true) => Condition::All(Vec::new()),
        (None, false) => anyhow::bail!(
            "no filter given: name the contacts (--segment, --tag, --list, --field, …) or say --all-contacts"
        ),
    };
    if dry_run {
        let e = engine.clone();
        let n = store.read(move |c| {
            let score = e.scoring.score_sql(c, now, Mode::Set).map_err(to_store)?;
            let scope = crate::crm::segment::Scope {
                segments: &e.scoring.segments,
                score: Some(&score),
                now,
                mode: Mode::Set,
            };
            crate::crm::segment::count(c, &cond, &scope).map_err(to_store)
        })?;
        println!("{n} contacts would change (dry run)");
        return Ok(ExitCode::SUCCESS);
    }
    let bar = super::contacts_import::progress_bar(u64::MAX);
    let (e, tick) = (engine.clone(), bar.clone());
    let n = store
        .write(move |c| {
            let mut progress = |n: u64| tick.set_position(n);
            crate::crm::bulk::apply(c, &e.scoring, &cond, &action, now, &mut progress)
                .map_err(to_store)
        })
        .wait()?;
    bar.finish_and_clear();
    println!("{n} contacts changed");
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts export`.
fn export(
    cx: &Cx,
    filters: Filters,
    layout: LayoutArg,
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let (ws, engine, store, now) = (cx.ws, cx.engine, cx.store, cx.now);
    let cond = filters.condition()?;
    let layout = match layout {
        LayoutArg::Funnel => crate::crm::export::Layout::Funnel,
        LayoutArg::Hubspot => crate::crm::export::Layout::Hubspot,
        LayoutArg::Mailchimp => crate::crm::export::Layout::Mailchimp,
    };
    let fields: Vec<String> = ws
        .fields
        .as_ref()
        .map(|d| d.value.fields.keys().cloned().collect())
        .unwrap_or_default();
    let e = engine.clone();
    let target = out.clone();
    let n = store.read(move |c| {
        let sink: Box<dyn std::io::Write> = match &target {
            Some(p) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(p).map_err(crate::store::StoreError::from)?,
            )),
            None => Box::new(std::io::BufWriter::new(std::io::stdout())),
        };
        crate::crm::export::write_csv(c, &e.scoring, cond.as_ref(), layout, &fields, sink, now)
            .map_err(to_store)
    })?;
    if let Some(p) = out {
        eprintln!("{n} contacts written to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts dedupe`.
fn dedupe(cx: &Cx, limit: usize, min_score: f64, format: TableFormat) -> anyhow::Result<ExitCode> {
    let (store,) = (cx.store,);
    let pairs = store.read(move |c| {
        let pairs = crate::crm::dedupe::candidates(c).map_err(to_store)?;
        let mut out = Vec::new();
        for p in pairs
            .into_iter()
            .filter(|p| p.score >= min_score)
            .take(limit)
        {
            let a = directory::summary(c, p.a).map_err(to_store)?;
            let b = directory::summary(c, p.b).map_err(to_store)?;
            out.push((p, a, b));
        }
        Ok(out)
    })?;
    match format {
        TableFormat::Json => {
            let rows: Vec<Json> = pairs
                .iter()
                .map(|(p, a, b)| json!({"score": p.score, "reason": p.reason, "a": a, "b": b}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        TableFormat::Table => print_table(
            &["SCORE", "A", "B", "WHY"],
            &pairs
                .iter()
                .map(|(p, a, b)| {
                    let who = |s: &Summary| match &s.name {
                        Some(n) => format!("{n} <{}>", s.email),
                        None => s.email.clone(),
                    };
                    vec![format!("{:.2}", p.score), who(a), who(b), p.reason.clone()]
                })
                .collect::<Vec<_>>(),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts merge`.
fn merge(cx: &Cx, keep: String, other: String) -> anyhow::Result<ExitCode> {
    let (store, now) = (cx.store, cx.now);
    let (a, b) = store
        .write(move |c| {
            let a = contact::resolve(c, &keep).map_err(to_store)?;
            let b = contact::resolve(c, &other).map_err(to_store)?;
            let (sa, sb) = (
                directory::summary(c, a).map_err(to_store)?,
                directory::summary(c, b).map_err(to_store)?,
            );
            crate::crm::merge::merge(c, a, b, now).map_err(to_store)?;
            Ok((sa.email, sb.email))
        })
        .wait()?;
    println!("merged {b} into {a} (undo with `funnel contacts unmerge {a}`)");
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts unmerge`.
fn unmerge(cx: &Cx, who: String, other: Option<String>) -> anyhow::Result<ExitCode> {
    let (store, now) = (cx.store, cx.now);
    let restored = store
        .write(move |c| {
            let a = contact::resolve(c, &who).map_err(to_store)?;
            let b = match &other {
                Some(o) if o.contains('@') => {
                    let merged: Option<i64> = c
                        .query_row(
                            "SELECT merged_id FROM contact_merges WHERE kept_id = ?1 AND undone_at IS NULL \
                             AND json_extract(snapshot, '$.contact.email') = lower(?2) ORDER BY id DESC LIMIT 1",
                            params![a, o.trim()],
                            |r| r.get(0),
                        )
                        .ok();
                    Some(merged.ok_or_else(|| {
                        crate::store::StoreError::NotFound(format!("no merge of {o} into this contact"))
                    })?)
                }
                Some(o) => Some(o.parse::<i64>().map_err(|_| {
                    crate::store::StoreError::Invalid(format!("`{o}`: give the merged contact's email"))
                })?),
                None => None,
            };
            let id = crate::crm::merge::unmerge(c, a, b, now).map_err(to_store)?;
            Ok(directory::summary(c, id).map_err(to_store)?.email)
        })
        .wait()?;
    println!("restored {restored}");
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts forget`.
fn forget(cx: &Cx, who: String) -> anyhow::Result<ExitCode> {
    let (engine, store, now) = (cx.engine, cx.store, cx.now);
    let gone = store
        .write(move |c| {
            let id = contact::resolve(c, &who).map_err(to_store)?;
            crate::crm::privacy::forget(c, id, now).map_err(to_store)
        })
        .wait()?;
    // Old copies of the pages live on in the WAL until it is truncated.
    store.scrub_old_versions()?;
    let files = crate::crm::privacy::scrub_outbox_dir(&engine.settings.outbox_dir, &gone.email)?;
    println!(
        "forgot {}: {} activities, {} executions, {} outbox emails ({} .eml files), {} other records; the address is suppressed",
        gone.email, gone.activities, gone.executions, gone.outbox, files, gone.other_rows
    );
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts export-data`.
fn export_person(cx: &Cx, who: String) -> anyhow::Result<ExitCode> {
    let (store,) = (cx.store,);
    let data = store.read(move |c| {
        let id = contact::resolve(c, &who).map_err(to_store)?;
        crate::crm::privacy::export_data(c, id).map_err(to_store)
    })?;
    println!("{}", serde_json::to_string_pretty(&data)?);
    Ok(ExitCode::SUCCESS)
}

/// `funnel contacts score-explain`.
fn score_explain(cx: &Cx, who: String, format: TableFormat) -> anyhow::Result<ExitCode> {
    let (engine, store, now) = (cx.engine, cx.store, cx.now);
    let e = engine.clone();
    let explained = store.read(move |c| {
        let id = contact::resolve(c, &who).map_err(to_store)?;
        e.scoring.explain(c, id, now).map_err(to_store)
    })?;
    match format {
        TableFormat::Json => println!("{}", serde_json::to_string_pretty(&explained)?),
        TableFormat::Table => print_score(&explained),
    }
    Ok(ExitCode::SUCCESS)
}

/// Recomputes stored engagement when scoring.yaml changed since (a no-op
/// otherwise), so that every score a command shows follows the current rules.
pub fn refresh_scores(store: &Store, engine: &Arc<Engine>, now: UnixMs) -> anyhow::Result<()> {
    let e = engine.clone();
    store
        .write(move |c| e.scoring.refresh(c, now, false).map_err(to_store))
        .wait()?;
    // The score SQL must compile against the segments before anything is listed.
    let e = engine.clone();
    store.read(move |c| {
        e.scoring
            .score_sql(c, now, Mode::Set)
            .map(|_| ())
            .map_err(to_store)
    })?;
    Ok(())
}

impl Filters {
    fn condition(&self) -> anyhow::Result<Option<Condition>> {
        let mut all = Vec::new();
        all.extend(self.tag.iter().map(|t| Condition::Tag(t.clone())));
        for l in &self.list {
            all.push(Condition::List(crate::model::scalar::Ident(l.clone())));
        }
        if let Some(s) = &self.segment {
            all.push(Condition::Segment(crate::model::scalar::Ident(s.clone())));
        }
        if let Some(s) = self.status {
            all.push(Condition::Status(match s {
                StatusArg::Active => ContactStatus::Active,
                StatusArg::Unsubscribed => ContactStatus::Unsubscribed,
                StatusArg::Bounced => ContactStatus::Bounced,
                StatusArg::Complained => ContactStatus::Complained,
            }));
        }
        for (name, value) in parse_fields(&self.field)? {
            all.push(Condition::Field(FieldCondition {
                name,
                eq: Some(value),
                ..FieldCondition::default()
            }));
        }
        if let Some(src) = &self.source {
            all.push(Condition::Any(
                ["source_component", "source_site", "source_workflow"]
                    .iter()
                    .map(|col| {
                        Condition::Field(FieldCondition {
                            name: (*col).to_string(),
                            eq: Some(Json::String(src.clone())),
                            ..FieldCondition::default()
                        })
                    })
                    .collect(),
            ));
        }
        if self.min_score.is_some() || self.max_score.is_some() {
            all.push(Condition::Score(Range {
                gte: self.min_score,
                lte: self.max_score,
                gt: None,
                lt: None,
            }));
        }
        Ok((!all.is_empty()).then_some(Condition::All(all)))
    }
}

/// `NAME=VALUE` pairs; values that read as numbers or booleans are typed.
fn parse_fields(pairs: &[String]) -> anyhow::Result<BTreeMap<String, Json>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            anyhow::bail!("`--field {pair}`: write NAME=VALUE, e.g. --field plan=pro");
        };
        let v = match value {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            _ => value
                .parse::<i64>()
                .map(Json::from)
                .or_else(|_| value.parse::<f64>().map(Json::from))
                .unwrap_or_else(|_| Json::String(value.to_string())),
        };
        out.insert(name.trim().to_string(), v);
    }
    Ok(out)
}

/// Listing output, streamed page by page.
struct Output {
    format: ListFormat,
    table: Vec<Summary>,
    json: Vec<Summary>,
    csv: Option<csv::Writer<std::io::Stdout>>,
}

impl Output {
    fn new(format: ListFormat) -> Output {
        let csv = (format == ListFormat::Csv).then(|| csv::Writer::from_writer(std::io::stdout()));
        Output {
            format,
            table: Vec::new(),
            json: Vec::new(),
            csv,
        }
    }

    fn rows(&mut self, rows: Vec<Summary>) -> anyhow::Result<()> {
        match self.format {
            ListFormat::Table => self.table.extend(rows),
            ListFormat::Json => self.json.extend(rows),
            ListFormat::Csv => {
                if let Some(w) = &mut self.csv {
                    for r in rows {
                        w.serialize(r)?;
                    }
                    w.flush()?;
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self.format {
            ListFormat::Table => print_contacts(&self.table),
            ListFormat::Json => println!("{}", serde_json::to_string_pretty(&self.json)?),
            ListFormat::Csv => {}
        }
        Ok(())
    }
}

/// Contacts as a table.
pub fn print_contacts(rows: &[Summary]) {
    print_table(
        &[
            "EMAIL",
            "NAME",
            "STATUS",
            "STAGE",
            "SOURCE",
            "CREATED (UTC)",
        ],
        &rows
            .iter()
            .map(|s| {
                vec![
                    s.email.clone(),
                    s.name.clone().unwrap_or_default(),
                    s.status.clone(),
                    s.stage.clone().unwrap_or_default(),
                    s.source.clone().unwrap_or_default(),
                    shown_time(s.created_at),
                ]
            })
            .collect::<Vec<_>>(),
    );
}

fn print_contact(
    view: &Json,
    touches: &(Option<attribution::Touch>, Option<attribution::Touch>),
    timeline: &[directory::TimelineEntry],
) {
    let text = |k: &str| view.get(k).and_then(Json::as_str).unwrap_or("").to_string();
    println!("{} <{}>", text("name"), text("email"));
    println!("id:      {}", text("id"));
    println!("status:  {}", text("status"));
    if let Some(stage) = view.get("stage").and_then(Json::as_str) {
        println!("stage:   {stage}");
    }
    if let Some(score) = view.get("score").and_then(Json::as_f64) {
        println!("score:   {:.1}", score);
    }
    let list = |k: &str| {
        view.get(k)
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    println!("tags:    {}", list("tags"));
    println!("lists:   {}", list("lists"));
    if let Some(fields) = view.get("fields").and_then(Json::as_object)
        && !fields.is_empty()
    {
        println!("fields:");
        for (k, v) in fields {
            let v = v.as_str().map_or_else(|| v.to_string(), String::from);
            println!("  {k}: {v}");
        }
    }
    for (label, touch) in [("first touch:", &touches.0), ("last touch: ", &touches.1)] {
        if let Some(t) = touch {
            let place = [t.site.as_deref(), t.page.as_deref(), t.component.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            println!("{label} {} via {} ({place})", shown_time(t.at), t.channel());
        }
    }
    if !timeline.is_empty() {
        println!("\nnewest activities:");
        print_table(
            &["AT (UTC)", "TYPE", "SUBJECT", "SOURCE"],
            &timeline
                .iter()
                .map(|t| {
                    vec![
                        shown_time(t.occurred_at),
                        t.kind.clone(),
                        t.subject.clone().unwrap_or_default(),
                        t.source.clone().unwrap_or_default(),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
}

fn print_score(e: &Json) {
    println!(
        "score {} ({})",
        e["score"],
        e["band"].as_str().unwrap_or("below every threshold")
    );
    for (part, rows) in [("fit", &e["fit"]), ("engagement", &e["engagement"])] {
        let rows = rows.as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            println!("{part}: none");
            continue;
        }
        println!("{part}:");
        for r in rows {
            let n = r.get("activities").map(|a| format!(" ({a} activities)"));
            println!(
                "  {:>8}  {}{}",
                r["points"].to_string(),
                r["rule"].as_str().unwrap_or(""),
                n.unwrap_or_default()
            );
        }
    }
    println!("adjustments: {}", e["adjustments"]);
}
