//! The `funnel` command line: argument parsing and dispatch to one file per
//! subcommand. Each subcommand is a thin adapter over library functions; this is
//! where output is printed and exit codes are decided.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod activity;
mod analytics;
mod audit;
mod bounces;
mod campaigns;
mod companies;
mod completions;
mod components;
mod contacts;
mod contacts_import;
mod daemon;
mod db;
mod deals;
mod deploy;
mod emails;
mod emit;
mod executions;
mod graph;
mod import;
mod init;
mod lists;
mod loaded;
mod login;
mod new;
mod optimize;
mod preview;
mod proposals;
mod publish;
mod report;
mod run;
mod schema;
mod segments;
mod service;
mod simulate;
mod status;
mod suggest;
mod sync;
mod templates;
mod test;
mod tokens;
mod tui;
mod up;
mod users;
mod validate;
mod worker;
mod workflows;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// funnel: a git repository as a marketing backend.
#[derive(Debug, Parser)]
#[command(name = "funnel", version, about, long_about = None)]
pub struct Cli {
    /// When to color output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    fn enabled(self, stream: &impl std::io::IsTerminal) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stream.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make the workspace live on this machine: every site at <site>.localhost,
    /// forms, workflows, timers and the dev outbox, edits picked up as they validate.
    Up(up::Args),
    /// The same process as `up`, for servers: bind address, sites on their domains.
    Daemon(daemon::Args),
    /// API tokens for the daemon's /api, each with a role (owner, editor, viewer).
    Tokens(tokens::Args),
    /// The people of the workspace, each with a role and their own tokens.
    Users(users::Args),
    /// Changes proposed through the API: list, show, comment, approve, reject.
    Proposals(proposals::Args),
    /// The terminal UI: contacts, segments, deals, campaigns, executions, dashboard.
    Tui(tui::Args),
    /// Keep a team's daemon as a named remote, with your token.
    Login(login::Args),
    /// Forget a remote and its token.
    Logout(login::LogoutArgs),
    /// Exchange contacts with a team's daemon, both ways (`status`: what waits).
    Sync(sync::Args),
    /// Workflows from the recipe library for a component or a site's components.
    Suggest(suggest::Args),
    /// The backend's status block: executions, API and store time, email, adoption.
    Status(status::Args),
    /// Advice from the figures: failing steps, weak subject lines, forms, funnels.
    Optimize(optimize::Args),
    /// A self-contained HTML report of a period: traffic, heat maps, paths,
    /// funnels, workflows, ROI, forecasts and advice.
    Report(report::Args),
    /// The log of changes: who, what, when, before and after.
    Audit(audit::Args),
    /// Check every file of a workspace and report all problems found.
    Validate(validate::Args),
    /// Write JSON Schema (draft-07) for the workspace file kinds.
    Schema(schema::Args),
    /// Create a new workspace with a starter site and workflow.
    Init(init::Args),
    /// Manage the run-time store: migrate, status, vacuum, check.
    Db(db::Args),
    /// Write a consistent copy of the store while it is in use.
    Backup(db::BackupArgs),
    /// Replace the store with a backup.
    Restore(db::RestoreArgs),
    /// Run a workflow in memory with mocked effects and a virtual clock.
    Simulate(simulate::Args),
    /// Run the workflow test cases in workflows/tests/.
    Test(test::Args),
    /// Run one workflow for real on the local store and print its trace.
    Run(run::Args),
    /// Run due executions, timers, remote calls, the outbox and schedules.
    Worker(worker::Args),
    /// Send an event (a custom event or any trigger type) into the engine.
    Emit(emit::Args),
    /// List, show, retry and cancel executions.
    Executions(executions::Args),
    /// List workflows, enable or disable them, show their statistics.
    Workflows(workflows::Args),
    /// Print a workflow's node graph as Mermaid, DOT or JSON.
    Graph(graph::Args),
    /// Turn a workflow in the seed's JSON shape into a YAML workflow file.
    Import(import::Args),
    /// Add, show, list, search, tag and delete contacts; explain scores.
    Contacts(contacts::Args),
    /// List segments, count them live, explain a contact's membership.
    Segments(segments::Args),
    /// Static lists: members, add, remove.
    Lists(lists::Args),
    /// Email broadcasts from campaigns/*.yaml: plan, send, pause, resume, cancel, stats.
    Campaigns(campaigns::Args),
    /// Email templates as recipients get them: preview, send a test copy.
    Emails(emails::Args),
    /// Bounce notices and spam complaints from a mailbox: import.
    Bounces(bounces::Args),
    /// Deals in pipelines: list, show, move, pipeline totals.
    Deals(deals::Args),
    /// Site templates: list (by category, search) and show.
    Templates(templates::Args),
    /// The component library: list, show (with the workflows wired to each).
    Components(components::Args),
    /// Create a site from a template.
    New(new::Args),
    /// Serve a site on 127.0.0.1 with live reload; forms and tracking reach the store.
    Preview(preview::Args),
    /// Build sites to static folders: pages, CSS, assets, sitemap; links checked.
    Publish(publish::Args),
    /// Put a published site live: a commit on a branch, or a folder swapped in whole.
    Deploy(deploy::Args),
    /// Companies: contacts grouped by email domain, with their open deals.
    Companies(companies::Args),
    /// Reports: first- and last-touch attribution, conversions by component.
    Analytics(analytics::Args),
    /// Print the completion script for a shell (bash, zsh, fish, …).
    Completions(completions::Args),
    /// Run the daemon as a systemd service: `service install` writes its unit.
    Service(service::Args),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Validate(args) => validate::run(args, cli.color),
        Command::Schema(args) => schema::run(args),
        Command::Init(args) => init::run(args),
        Command::Db(args) => db::run(args),
        Command::Backup(args) => db::backup(args),
        Command::Restore(args) => db::restore_cmd(args),
        Command::Simulate(args) => simulate::run(args, cli.color),
        Command::Test(args) => test::run(args, cli.color),
        Command::Run(args) => run::run(args, cli.color),
        Command::Worker(args) => worker::run(args, cli.color),
        Command::Emit(args) => emit::run(args, cli.color),
        Command::Executions(args) => executions::run(args, cli.color),
        Command::Workflows(args) => workflows::run(args, cli.color),
        Command::Graph(args) => graph::run(args, cli.color),
        Command::Import(args) => import::run(args, cli.color),
        Command::Contacts(args) => contacts::run(args, cli.color),
        Command::Segments(args) => segments::run(args, cli.color),
        Command::Campaigns(args) => campaigns::run(args, cli.color),
        Command::Emails(args) => emails::run(args, cli.color),
        Command::Bounces(args) => bounces::run(args, cli.color),
        Command::Lists(args) => lists::run(args, cli.color),
        Command::Deals(args) => deals::run(args, cli.color),
        Command::Companies(args) => companies::run(args, cli.color),
        Command::Publish(args) => publish::run(args, cli.color),
        Command::Deploy(args) => deploy::run(args, cli.color),
        Command::Preview(args) => preview::run(args, cli.color),
        Command::Up(args) => up::run(args, cli.color),
        Command::Daemon(args) => daemon::run(args, cli.color),
        Command::Tokens(args) => tokens::run(args, cli.color),
        Command::Users(args) => users::run(args, cli.color),
        Command::Proposals(args) => proposals::run(args, cli.color),
        Command::Tui(args) => tui::run(args, cli.color),
        Command::Login(args) => login::run(args),
        Command::Logout(args) => login::logout(args),
        Command::Sync(args) => sync::run(args, cli.color),
        Command::Suggest(args) => suggest::run(args, cli.color),
        Command::Status(args) => status::run(args, cli.color),
        Command::Optimize(args) => optimize::run(args, cli.color),
        Command::Report(args) => report::run(args, cli.color),
        Command::Audit(args) => audit::run(args, cli.color),
        Command::Templates(args) => templates::run(args, cli.color),
        Command::Components(args) => components::run(args, cli.color),
        Command::New(args) => new::run(args, cli.color),
        Command::Analytics(args) => analytics::run(args, cli.color),
        Command::Completions(args) => completions::run(args),
        Command::Service(args) => service::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FUNNEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
