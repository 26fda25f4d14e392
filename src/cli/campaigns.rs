//! `funnel campaigns list|plan|send|pause|resume|cancel|stats`: broadcasts from
//! campaigns/*.yaml. `plan` counts and renders before anything is sent; `send`
//! freezes the recipients, then sends with a progress bar until done (run again
//! after a crash, it goes on from the frozen list); the others change its state,
//! each recorded in the audit log.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use serde_json::json;

use super::ColorChoice;
use super::loaded::{TableFormat, print_table};
use crate::email::campaign;
use crate::engine::Engine;
use crate::engine::worker::Worker;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long, global = true)]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Every campaign with its state.
    List {
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Who would receive it now, who is suppressed, and a sample message per
    /// variant, rendered for the first recipient; nothing is sent.
    Plan {
        name: String,
        /// Also write each sample message as `<variant>.eml` into this folder.
        #[arg(long)]
        samples: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Freeze the recipients and send, showing progress, until done, paused or
    /// cancelled (run again after an interruption to go on).
    Send {
        name: String,
        /// Freeze and return; the daemon (or `funnel worker`) sends.
        #[arg(long)]
        detach: bool,
    },
    /// Stop queueing more of it (what is queued already still goes).
    Pause { name: String },
    /// Go on after a pause.
    Resume { name: String },
    /// Send nothing more of it, queued messages included.
    Cancel { name: String },
    /// Sent, delivered, bounced, unique opens and clicks, unsubscribes and
    /// complaints, per variant.
    Stats {
        name: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let engine = Arc::new(super::loaded::engine(&ws)?);
    let store = super::loaded::store(&ws)?;
    let actor = super::loaded::actor(&ws.root);
    let known = |name: &str| -> anyhow::Result<()> {
        if engine.campaigns.contains_key(name) {
            return Ok(());
        }
        let ids: Vec<&str> = engine.campaigns.keys().map(String::as_str).collect();
        anyhow::bail!(
            "no campaign `{name}`; {}",
            crate::diagnostic::suggest(name, &ids, "the campaigns are")
        )
    };
    match args.command {
        Cmd::List { format } => list(&store, &engine, format),
        Cmd::Plan {
            name,
            samples,
            format,
        } => {
            known(&name)?;
            plan(&store, &engine, &name, samples, format)
        }
        Cmd::Send { name, detach } => {
            known(&name)?;
            send(store, engine, &name, detach, &actor)
        }
        Cmd::Pause { name } => change(&store, &name, &["sending", "testing"], "paused", &actor),
        Cmd::Resume { name } => change(&store, &name, &["paused"], "sending", &actor),
        Cmd::Cancel { name } => change(
            &store,
            &name,
            &["sending", "testing", "paused"],
            "cancelled",
            &actor,
        ),
        Cmd::Stats { name, format } => stats(&store, &name, format),
    }
}

fn list(store: &Store, engine: &Engine, format: TableFormat) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    for (key, c) in &engine.campaigns {
        let k = key.clone();
        let state = store.read(move |db| campaign::state(db, &k))?;
        rows.push(json!({
            "id": key,
            "name": c.name,
            "status": state.as_ref().map_or("draft", |s| s.status.as_str()),
            "recipients": state.as_ref().map(|s| s.recipients),
            "schedule": c.schedule,
            "ab_test": c.ab_test.is_some(),
        }));
    }
    match format {
        TableFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        TableFormat::Table => print_table(
            &["CAMPAIGN", "NAME", "STATUS", "RECIPIENTS", "SCHEDULE"],
            &rows
                .iter()
                .map(|r| {
                    let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
                    vec![
                        s("id"),
                        s("name"),
                        s("status"),
                        r["recipients"]
                            .as_i64()
                            .map_or("-".into(), |n| n.to_string()),
                        s("schedule"),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn plan(
    store: &Store,
    engine: &Arc<Engine>,
    name: &str,
    samples: Option<PathBuf>,
    format: TableFormat,
) -> anyhow::Result<ExitCode> {
    let now = crate::store::now_ms();
    let e = engine.clone();
    let key = name.to_string();
    // The sample messages are composed as the sender would, for the first
    // recipient of each variant, without storing anything.
    let (plan, rendered) = store.read(move |db| {
        let c = &e.campaigns[&key];
        let plan = campaign::plan(db, &key, c, &e.scoring.segments, &e.scoring, now)
            .map_err(super::segments::to_store)?;
        let signing_key = crate::analytics::token::stored_key(db)?.unwrap_or_default();
        let variants: Vec<Option<&crate::model::campaign::Variant>> = match &c.ab_test {
            Some(t) => t.variants.iter().map(Some).collect(),
            None => vec![None],
        };
        let first = campaign::first_recipient(db, c, &e.scoring.segments, &e.scoring, now)
            .map_err(super::segments::to_store)?;
        let mut out = Vec::new();
        if let Some(cid) = first {
            let contact =
                crate::crm::contact::view(db, cid, &e.scoring, now).map_err(super::segments::to_store)?;
            let to = contact["email"].as_str().unwrap_or_default().to_string();
            for v in variants {
                let template_id = v
                    .and_then(|v| v.template.as_ref())
                    .unwrap_or(&c.template)
                    .as_str();
                let Some(template) = e.emails.get(template_id) else {
                    continue;
                };
                let subject = v
                    .and_then(|v| v.subject.as_ref())
                    .or(c.subject.as_ref())
                    .map(|s| s.as_str());
                let uid = crate::uid::new(now);
                let composed = crate::engine::mail::compose(
                    &e.settings,
                    &signing_key,
                    &crate::engine::mail::Compose {
                        template_id,
                        template,
                        layout: e.layout_for(template),
                        contact: &contact,
                        data: json!({}),
                        extra: json!({"campaign": {"name": c.name, "variant": v.map(|v| v.id.as_str())}}),
                        subject: None,
                        subject_template: subject,
                        to: &to,
                        send_uid: &uid,
                        key: &format!("plan:{uid}"),
                        opens: false,
                        clicks: false,
                    },
                    now,
                );
                let id = v.map_or("default", |v| v.id.as_str()).to_string();
                out.push((id, composed));
            }
        }
        Ok((plan, out))
    })?;
    if let Some(dir) = &samples {
        std::fs::create_dir_all(dir)?;
        for (id, c) in &rendered {
            if let Ok((_, eml)) = c {
                std::fs::write(dir.join(format!("{id}.eml")), eml)?;
            }
        }
    }
    match format {
        TableFormat::Json => {
            let samples: Vec<_> = rendered
                .iter()
                .map(|(id, c)| match c {
                    Ok((r, _)) => {
                        json!({"variant": id, "to": r.to, "subject": r.subject, "text": r.text})
                    }
                    Err(e) => json!({"variant": id, "error": e}),
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "campaign": name,
                    "recipients": plan.recipients,
                    "suppressed": plan.suppressed,
                    "variants": plan.variants.iter().map(|(v, n)| json!({"variant": if v.is_empty() { "winner" } else { v }, "recipients": n})).collect::<Vec<_>>(),
                    "samples": samples,
                }))?
            );
        }
        TableFormat::Table => {
            println!(
                "{name}: {} recipients, {} suppressed (unsubscribed, bounced or complained)",
                plan.recipients, plan.suppressed
            );
            for (v, n) in &plan.variants {
                let v = if v.is_empty() { "(the winner)" } else { v };
                println!("  {v}: {n}");
            }
            for (id, c) in &rendered {
                match c {
                    Ok((r, _)) => println!("sample {id}: to {} · subject: {}", r.to, r.subject),
                    Err(e) => println!("sample {id}: does not render: {e}"),
                }
            }
        }
    }
    Ok(if rendered.iter().any(|(_, c)| c.is_err()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn send(
    store: Store,
    engine: Arc<Engine>,
    name: &str,
    detach: bool,
    actor: &str,
) -> anyhow::Result<ExitCode> {
    let rt = super::loaded::runtime()?;
    let key = name.to_string();
    let actor = actor.to_string();
    rt.block_on(async move {
        let worker = Worker::new(store.clone(), engine)?;
        let k = key.clone();
        let frozen_before = store
            .read_async(move |db| campaign::state(db, &k))
            .await?
            .is_some();
        let state = worker.start_campaign(&key).await?;
        let (k, a, n) = (key.clone(), actor.clone(), state.recipients);
        // Recorded when the audience is frozen, not at every resumption.
        if !frozen_before {
            store
                .write(move |db| {
                    crate::audit::record(
                        db,
                        &a,
                        "campaign.send",
                        "campaign",
                        Some(&k),
                        &json!({"recipients": n}),
                        crate::store::now_ms(),
                    )
                })
                .await?;
        }
        eprintln!(
            "{key}: {} recipients frozen ({})",
            state.recipients, state.status
        );
        if detach {
            return anyhow::Ok(ExitCode::SUCCESS);
        }
        let bar = indicatif::ProgressBar::new(u64::try_from(state.recipients).unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} sent {wide_bar} {elapsed_precise} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let id = state.id;
        loop {
            worker.campaigns_tick().await?;
            worker.deliver_outbox().await?;
            let (status, done): (String, i64) = store
                .read_async(move |db| {
                    let status: String = db
                        .prepare_cached("SELECT status FROM email_campaigns WHERE id = ?1")?
                        .query_row(crate::store::db::params![id], |r| r.get(0))?;
                    let done: i64 = db
                        .prepare_cached(
                            "SELECT count(*) FROM email_sends WHERE campaign_id = ?1 \
                             AND status IN ('sent', 'bounced', 'suppressed', 'failed')",
                        )?
                        .query_row(crate::store::db::params![id], |r| r.get(0))?;
                    Ok((status, done))
                })
                .await?;
            bar.set_position(u64::try_from(done).unwrap_or(0));
            bar.set_message(status.clone());
            match status.as_str() {
                "sent" | "cancelled" | "paused" => {
                    bar.finish();
                    eprintln!("{key}: {status}");
                    return anyhow::Ok(ExitCode::SUCCESS);
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
}

fn change(
    store: &Store,
    name: &str,
    from: &[&'static str],
    to: &'static str,
    actor: &str,
) -> anyhow::Result<ExitCode> {
    let (key, a, from) = (name.to_string(), actor.to_string(), from.to_vec());
    let changed = store
        .write(move |db| {
            let changed = campaign::transition(db, &key, &from, to)?;
            if changed {
                crate::audit::record(
                    db,
                    &a,
                    &format!("campaign.{to}"),
                    "campaign",
                    Some(&key),
                    &json!({"status": to}),
                    crate::store::now_ms(),
                )?;
            }
            Ok(changed)
        })
        .wait()?;
    if !changed {
        anyhow::bail!(
            "campaign `{name}` is not in a state that can become {to} (see `funnel campaigns list`)"
        );
    }
    println!("{name}: {to}");
    Ok(ExitCode::SUCCESS)
}

fn stats(store: &Store, name: &str, format: TableFormat) -> anyhow::Result<ExitCode> {
    let key = name.to_string();
    let found = store.read(move |db| {
        let Some(s) = campaign::state(db, &key)? else {
            return Ok(None);
        };
        Ok(Some((s.clone(), campaign::stats(db, s.id)?)))
    })?;
    let Some((state, rows)) = found else {
        anyhow::bail!("campaign `{name}` has not been sent (see `funnel campaigns plan {name}`)");
    };
    match format {
        TableFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "campaign": name,
                "status": state.status,
                "winner": state.winner,
                "variants": rows,
            }))?
        ),
        TableFormat::Table => {
            println!(
                "{name}: {} · {} recipients{}",
                state.status,
                state.recipients,
                state
                    .winner
                    .map_or(String::new(), |w| format!(" · winner {w}"))
            );
            print_table(
                &[
                    "VARIANT",
                    "SENT",
                    "DELIVERED",
                    "BOUNCED",
                    "OPENS",
                    "CLICKS",
                    "UNSUBS",
                    "COMPLAINTS",
                    "SUPPRESSED",
                    "WAITING",
                ],
                &rows
                    .iter()
                    .map(|r| {
                        vec![
                            if r.variant.is_empty() {
                                "-".into()
                            } else {
                                r.variant.clone()
                            },
                            r.sent.to_string(),
                            r.delivered.to_string(),
                            r.bounced.to_string(),
                            r.unique_opens.to_string(),
                            r.unique_clicks.to_string(),
                            r.unsubscribes.to_string(),
                            r.complaints.to_string(),
                            r.suppressed.to_string(),
                            (r.waiting + r.queued).to_string(),
                        ]
                    })
                    .collect::<Vec<_>>(),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
