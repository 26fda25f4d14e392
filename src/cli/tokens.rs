//! `funnel tokens create|list|revoke`: the API tokens of the daemon's `/api`. A
//! new token's secret is printed once, on stdout alone (so it can be piped into a
//! secret store); only its hash is kept.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::ColorChoice;
use super::loaded::{TableFormat, print_table, shown_time};
use crate::access::{self, Role};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long, global = true)]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Owner,
    Editor,
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Owner => Role::Owner,
            RoleArg::Editor => Role::Editor,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Make a token; its secret is printed once.
    Create {
        /// A name to know it by (a person, a CI job).
        #[arg(long)]
        name: String,
        /// viewer reads; editor also writes contacts and proposes changes; owner
        /// also approves proposals and manages tokens.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// The tokens, newest first.
    List {
        /// Revoked tokens too.
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Revoke a token by name: it opens nothing from now on.
    Revoke { name: String },
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let store = super::loaded::store(&ws)?;
    let now = crate::store::now_ms();
    let actor = super::loaded::actor(&ws.root);
    match args.command {
        Cmd::Create { name, role } => {
            let role = Role::from(role);
            let (n, a) = (name.clone(), actor.clone());
            let secret = store
                .write(move |db| {
                    let secret = access::create(db, &n, role, &a, now)
                        .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))?;
                    audit(db, &a, "create", &n, json!({"role": role.as_str()}), now)?;
                    Ok(secret)
                })
                .wait()?;
            println!("{secret}");
            eprintln!(
                "token `{name}` ({role}) created; this is the only time its secret is shown. \
                 Send it as `Authorization: Bearer <secret>`."
            );
        }
        Cmd::List { all, format } => {
            let tokens = store.read(|db| {
                access::list(db, all).map_err(|e| crate::store::StoreError::Invalid(e.to_string()))
            })?;
            match format {
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&tokens)?),
                TableFormat::Table => {
                    let rows: Vec<Vec<String>> = tokens
                        .iter()
                        .map(|t| {
                            vec![
                                t.name.clone(),
                                t.role.to_string(),
                                format!("{}…", t.prefix),
                                t.created_by.clone(),
                                shown_time(t.created_at),
                                t.revoked_at.map(shown_time).unwrap_or_default(),
                            ]
                        })
                        .collect();
                    print_table(
                        &["NAME", "ROLE", "SECRET", "CREATED BY", "CREATED", "REVOKED"],
                        &rows,
                    );
                }
            }
        }
        Cmd::Revoke { name } => {
            let n = name.clone();
            store
                .write(move |db| {
                    access::revoke(db, &n, now)
                        .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))?;
                    audit(db, &actor, "revoke", &n, json!({}), now)
                })
                .wait()?;
            eprintln!("token `{name}` revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn audit(
    db: crate::store::db::Db<'_>,
    actor: &str,
    action: &str,
    name: &str,
    details: serde_json::Value,
    now: i64,
) -> Result<(), crate::store::StoreError> {
    crate::audit::record(db, actor, action, "token", Some(name), &details, now)
}
