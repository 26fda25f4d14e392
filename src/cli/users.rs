//! `funnel users add|list|remove|token`: the people of the workspace, each with
//! a role and their own API tokens, so the audit log names the person behind
//! every change made through the API or a remote TUI. A new token's secret is
//! printed once, on stdout alone, for the person's `funnel login`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::ColorChoice;
use super::loaded::{TableFormat, print_table, shown_time};
use super::tokens::RoleArg;
use crate::access::{self, Role};
use crate::store::StoreError;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
    /// The workspace folder (default: the one containing the current folder).
    #[arg(long, global = true)]
    workspace: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Add a person with a role; their first token's secret is printed once.
    Add {
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// The people, by email.
    List {
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Remove a person: every token of theirs stops opening anything.
    Remove { email: String },
    /// Another token for a person (another laptop); its secret is printed once.
    Token {
        email: String,
        /// The token's name (letters, digits, `-`, `_`, `.`, `@`).
        #[arg(long)]
        name: String,
    },
}

fn invalid(e: access::AccessError) -> StoreError {
    StoreError::Invalid(e.to_string())
}

pub fn run(args: Args, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Some(ws) = super::loaded::valid_workspace(args.workspace.as_deref(), color)? else {
        return Ok(ExitCode::from(1));
    };
    let store = super::loaded::store(&ws)?;
    let now = crate::store::now_ms();
    let actor = super::loaded::actor(&ws.root);
    match args.command {
        Cmd::Add { email, name, role } => {
            let role = Role::from(role);
            let (e, a) = (email.clone(), actor.clone());
            let secret = store
                .write(move |db| {
                    let secret = access::add_user(db, &e, &name, role, &a, now).map_err(invalid)?;
                    crate::audit::record(
                        db,
                        &a,
                        "add_user",
                        "user",
                        Some(&e.trim().to_lowercase()),
                        &json!({"name": name, "role": role.as_str()}),
                        now,
                    )?;
                    Ok(secret)
                })
                .wait()?;
            println!("{secret}");
            eprintln!(
                "{email} added as {role}; give them this token, once, for `funnel login NAME --remote URL`"
            );
        }
        Cmd::List { format } => {
            let users = store.read(|db| access::users(db).map_err(invalid))?;
            match format {
                TableFormat::Json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&json!({ "users": users }))?
                    );
                }
                TableFormat::Table => {
                    let rows: Vec<Vec<String>> = users
                        .iter()
                        .map(|u| {
                            vec![
                                u.email.clone(),
                                u.name.clone(),
                                u.role.to_string(),
                                u.tokens.to_string(),
                                u.created_by.clone(),
                                shown_time(u.created_at),
                            ]
                        })
                        .collect();
                    print_table(
                        &["EMAIL", "NAME", "ROLE", "TOKENS", "ADDED BY", "ADDED"],
                        &rows,
                    );
                }
            }
        }
        Cmd::Remove { email } => {
            let e = email.clone();
            store
                .write(move |db| {
                    access::remove_user(db, &e, now).map_err(invalid)?;
                    crate::audit::record(
                        db,
                        &actor,
                        "remove_user",
                        "user",
                        Some(&e.trim().to_lowercase()),
                        &json!({}),
                        now,
                    )
                })
                .wait()?;
            eprintln!("{email} removed; their tokens open nothing from now on");
        }
        Cmd::Token { email, name } => {
            let (e, n) = (email.clone(), name.clone());
            let secret = store
                .write(move |db| {
                    let secret =
                        access::add_user_token(db, &e, &n, &actor, now).map_err(invalid)?;
                    crate::audit::record(
                        db,
                        &actor,
                        "create",
                        "token",
                        Some(&n),
                        &json!({"user": e}),
                        now,
                    )?;
                    Ok(secret)
                })
                .wait()?;
            println!("{secret}");
            eprintln!(
                "token `{name}` for {email} created; this is the only time its secret is shown"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
