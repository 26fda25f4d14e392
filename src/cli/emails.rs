//! `funnel emails preview|send-test`: an email template as a recipient would get
//! it, composed exactly as the sender composes it (footer, list headers, DKIM),
//! for a stored contact or a sample one; and one test copy of it sent now,
//! through the relay of funnel.yaml (or into the dev outbox folder), with
//! `[Test]` before its subject. Neither stores anything.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Value as Json, json};

use super::ColorChoice;
use crate::email::smtp::{Delivery, Relay};
use crate::engine::Engine;
use crate::engine::mail::{Compose, compose};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long, global = true)]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Subject, preheader and the text part.
    Text,
    /// The HTML part.
    Html,
    /// The whole message as sent (RFC 5322).
    Eml,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Render a template for a contact (email, uid or id) or a sample one.
    Preview {
        template: String,
        #[arg(long)]
        contact: Option<String>,
        /// Values for the template's `data` (a JSON or YAML file).
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Part::Text)]
        part: Part,
    },
    /// Send one test copy of a template to an address now.
    SendTest {
        template: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        contact: Option<String>,
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

/// The contact a preview is rendered for: a stored one, or a sample.
fn contact_view(
    store: &crate::store::Store,
    engine: &std::sync::Arc<Engine>,
    key: Option<String>,
    to: &str,
) -> anyhow::Result<Json> {
    let Some(key) = key else {
        return Ok(json!({
            "id": "sample", "email": to, "name": "Ada Lovelace", "first_name": "Ada",
            "last_name": "Lovelace", "status": "active", "tags": [], "lists": [],
            "fields": {}, "score": 0,
        }));
    };
    let e = engine.clone();
    let now = crate::store::now_ms();
    Ok(store.read(move |db| {
        let id = crate::crm::contact::resolve(db, &key).map_err(super::segments::to_store)?;
        crate::crm::contact::view(db, id, &e.scoring, now).map_err(super::segments::to_store)
    })?)
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let engine = std::sync::Arc::new(super::loaded::engine(&ws)?);
    let store = super::loaded::store(&ws)?;
    let (template_id, contact, data, to) = match &args.command {
        Cmd::Preview {
            template,
            contact,
            data,
            ..
        } => (template, contact, data, None),
        Cmd::SendTest {
            template,
            to,
            contact,
            data,
        } => (template, contact, data, Some(to.clone())),
    };
    let Some(template) = engine.emails.get(template_id.as_str()) else {
        let ids: Vec<&str> = engine.emails.keys().map(String::as_str).collect();
        anyhow::bail!(
            "no email template `{template_id}`; {}",
            crate::diagnostic::suggest(template_id, &ids, "the templates are")
        );
    };
    let data = match data {
        Some(path) => super::loaded::read_data(path)?,
        None => json!({}),
    };
    let sample_to = to.clone().unwrap_or_else(|| "ada@example.org".into());
    let view = contact_view(&store, &engine, contact.clone(), &sample_to)?;
    let recipient = to.clone().unwrap_or_else(|| {
        view["email"]
            .as_str()
            .unwrap_or("ada@example.org")
            .to_string()
    });
    let now = crate::store::now_ms();
    let uid = crate::uid::new(now);
    let key = format!("test:{uid}");
    let signing_key = store
        .read(crate::analytics::token::stored_key)?
        .unwrap_or_default();
    let (mut rendered, _) = compose(
        &engine.settings,
        &signing_key,
        &Compose {
            template_id,
            template,
            layout: engine.layout_for(template),
            contact: &view,
            data,
            extra: json!({}),
            subject: None,
            subject_template: None,
            to: &recipient,
            send_uid: &uid,
            key: &key,
            opens: false,
            clicks: false,
        },
        now,
    )
    .map_err(|e| anyhow::anyhow!("template `{template_id}` does not render: {e}"))?;
    match args.command {
        Cmd::Preview { part, .. } => {
            match part {
                Part::Text => {
                    println!("Subject: {}", rendered.subject);
                    if let Some(p) = &rendered.preheader {
                        println!("Preheader: {p}");
                    }
                    println!("\n{}", rendered.text);
                }
                Part::Html => println!("{}", rendered.html),
                Part::Eml => {
                    let signer = match &engine.settings.dkim {
                        Some(Ok(s)) => Some(s),
                        Some(Err(e)) => anyhow::bail!("{e}"),
                        None => None,
                    };
                    print!("{}", crate::email::to_eml(&rendered, &key, now, signer)?);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::SendTest { to, .. } => {
            rendered.subject = format!("[Test] {}", rendered.subject);
            let signer = match &engine.settings.dkim {
                Some(Ok(s)) => Some(s),
                Some(Err(e)) => anyhow::bail!("{e}"),
                None => None,
            };
            let eml = crate::email::to_eml(&rendered, &key, now, signer)?;
            let Some(cfg) = &engine.settings.smtp else {
                let path =
                    crate::email::outbox::write_eml(&engine.settings.outbox_dir, &key, &eml)?;
                println!(
                    "no SMTP relay in funnel.yaml: written to {}",
                    path.display()
                );
                return Ok(ExitCode::SUCCESS);
            };
            let rt = super::loaded::runtime()?;
            let outcome = rt.block_on(async {
                let relay = Relay::new(cfg, &engine.settings.from, |n| std::env::var(n).ok())?;
                anyhow::Ok(relay.send(&to, None, eml.as_bytes()).await)
            })?;
            match outcome {
                Delivery::Sent => {
                    println!("sent to {to}: {}", rendered.subject);
                    Ok(ExitCode::SUCCESS)
                }
                Delivery::Transient(e) => {
                    anyhow::bail!("the relay did not take it (try again later): {e}")
                }
                Delivery::Permanent(e) => anyhow::bail!("the relay refused it: {e}"),
            }
        }
    }
}
