//! `funnel simulate WORKFLOW --trigger FILE [--contact FILE] [--at TIME] [--until DUR]`:
//! runs one workflow in memory, effects mocked, on a virtual clock, and prints the
//! path taken, the emails, the HTTP requests and the CRM changes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::ColorChoice;
use super::loaded::TextFormat;
use crate::engine::simulate::{DEFAULT_UNTIL_MS, Scenario, Trace, parse_start, simulate};
use crate::model::workflow_test::TestContact;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workflow id (its file name under workflows/ without .yaml).
    pub workflow: String,
    /// The trigger's data, as a JSON or YAML file (what the workflow sees as `trigger`).
    #[arg(long)]
    pub trigger: Option<PathBuf>,
    /// A contact that exists before the trigger (JSON or YAML: email, name, tags,
    /// fields, score); repeat for several.
    #[arg(long)]
    pub contact: Vec<PathBuf>,
    /// The virtual clock's start (RFC 3339). Default: 2026-01-05T09:00:00Z.
    #[arg(long)]
    pub at: Option<String>,
    /// How far the clock may run, e.g. `30d`. Default: 90d.
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long, value_enum, default_value_t = TextFormat::Human)]
    pub format: TextFormat,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let mut args = args;
    args.workflow = super::loaded::workflow_id(&args.workflow);
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let engine = super::loaded::engine(&ws)?;
    if engine.workflow(&args.workflow).is_none() {
        let known: Vec<&str> = engine.workflows().map(|(id, _)| id.as_str()).collect();
        anyhow::bail!(
            "no workflow `{}`; {}",
            args.workflow,
            crate::diagnostic::suggest(&args.workflow, &known, "the workflows are")
        );
    }
    let trigger = match &args.trigger {
        Some(p) => super::loaded::read_data(p)?,
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    let mut contacts = Vec::new();
    for p in &args.contact {
        let value = super::loaded::read_data(p)?;
        let c: TestContact = serde_json::from_value(value).with_context(|| {
            format!(
                "{}: not a contact (email, name, tags, fields, score)",
                p.display()
            )
        })?;
        contacts.push(c);
    }
    let until_ms = match &args.until {
        Some(d) => crate::model::scalar::parse_duration_ms(d)
            .map_err(|e| anyhow::anyhow!("--until {d}: {e}"))?,
        None => DEFAULT_UNTIL_MS,
    };
    let scenario = Scenario {
        workflow: args.workflow.clone(),
        trigger,
        at: parse_start(args.at.as_deref())?,
        until_ms,
        contacts,
        http: Vec::new(),
        events: Vec::new(),
    };
    let trace = simulate(&engine, &scenario)?;
    match args.format {
        TextFormat::Json => println!("{}", serde_json::to_string_pretty(&trace)?),
        TextFormat::Human => print!("{}", human(&trace)),
    }
    Ok(if trace.status == "failed" {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn offset(ms: i64) -> String {
    let (d, rest) = (ms / 86_400_000, ms % 86_400_000);
    let (h, rest) = (rest / 3_600_000, rest % 3_600_000);
    let (m, s) = (rest / 60_000, (rest % 60_000) / 1000);
    format!("+{d}d {h:02}:{m:02}:{s:02}")
}

/// The trace as text.
pub fn human(t: &Trace) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "workflow {}: {}", t.workflow, t.status);
    if let Some(e) = &t.error {
        let _ = writeln!(out, "  error: {e}");
    }
    let _ = writeln!(out, "\npath:");
    for s in &t.path {
        let wf = if s.workflow == t.workflow {
            String::new()
        } else {
            format!(" [{}]", s.workflow)
        };
        let attempt = if s.attempt > 1 {
            format!(" (attempt {})", s.attempt)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {}  {}{wf}  {}{attempt}",
            offset(s.at),
            s.step,
            s.status
        );
        if let Some(e) = &s.error {
            let _ = writeln!(out, "      error: {e}");
        }
    }
    let _ = writeln!(out, "\nemails ({}):", t.emails.len());
    for e in &t.emails {
        let _ = writeln!(
            out,
            "  {}  {} → {}: {}",
            offset(e.at),
            e.template,
            e.to,
            e.subject
        );
    }
    let _ = writeln!(out, "\nhttp ({}):", t.http.len());
    for r in &t.http {
        let unset = if r.unset_secrets.is_empty() {
            String::new()
        } else {
            format!(
                " (but {} not set here: a real run fails this step)",
                r.unset_secrets
                    .iter()
                    .map(|n| format!("{n} is"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let _ = writeln!(
            out,
            "  {}  {} {} → {}{unset}",
            offset(r.at),
            r.method,
            r.url,
            r.status
        );
    }
    let _ = writeln!(out, "\ncrm changes ({}):", t.crm.len());
    for c in &t.crm {
        let _ = writeln!(out, "  {c}");
    }
    if !t.also_started.is_empty() {
        let _ = writeln!(out, "\nalso started: {}", t.also_started.join(", "));
    }
    out
}
