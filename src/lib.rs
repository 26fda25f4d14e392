//! funnel: a git repository as a marketing backend.
//!
//! # Module map
//!
//! Core (never prints, never imports the shells):
//! - [`yaml`]: YAML text to spanned node trees, with limits against hostile input.
//! - [`model`]: typed models of every workspace file; the single source of truth.
//! - [`schema`]: JSON Schema (draft-07) generated from the models.
//! - [`diagnostic`]: located problems (code, file, line, column, help) and their renderings.
//! - [`workspace`]: finds and loads a workspace's files, built-in templates included.
//! - [`builtin`]: the repository's `templates/`, compiled into the binary.
//! - [`validate`]: every check `funnel validate` runs, structural and semantic.
//! - [`scaffold`]: the files `funnel init` writes.
//! - [`store`]: run-time state in SQLite (one writer, group commit) or PostgreSQL,
//!   twin migrations, backup and restore.
//! - [`engine`]: durable workflow executions: triggers, steps, timers, the worker.
//! - [`crm`]: contacts, tags, fields, scores, stages, lists and deals, as changes
//!   inside a store transaction.
//! - [`email`]: messages from templates, the outbox, SMTP delivery, DKIM, signed
//!   links (unsubscribe, tracking, view), suppression, campaigns and A/B tests.
//! - [`analytics`]: site analytics without cookies: beacons, daily visitor hashes,
//!   rollups, contact tokens, the per-site report.
//! - [`catalog`]: the template catalog: list, show, instantiate; components and
//!   the workflows wired to them.
//! - [`publish`]: sites to static files: pages from templates and components,
//!   themed CSS, fingerprinted assets, sitemap, link checks.
//! - [`audit`]: the log of every change by any door: who, what, when, before and after.
//! - [`access`]: API tokens and their roles (viewer, editor, owner), stored hashed.
//! - [`proposals`]: changes through the API as validated commits on git branches, merged on approval.
//! - [`site_edit`]: a site's component instances added, configured or removed as
//!   edits of its `site.yaml` that keep every other line as written.
//! - [`desk`]: what the TUI reads and changes, on the local store or a remote
//!   daemon's API (the same trait, the same screens).
//! - [`remotes`]: the user's named remotes (a daemon's URL and a token) in
//!   their config folder.
//! - [`git`]: git plumbing that writes commits on branches without touching
//!   the working tree (proposals, deploys).
//! - [`deploy`]: a published site onto a git branch or into a folder swapped in
//!   atomically, with a log per site.
//! - [`optimize`]: advice from the figures (failing steps, weak subject
//!   lines, forms without submissions or workflows, funnel drop-offs).
//! - [`report`]: the self-contained HTML report of a period, its charts drawn
//!   as inline SVG.
//! - [`status`]: the backend's status over a window (the seed's 4-hourly
//!   block) from the daemon's per-minute rollups, beside the seed's targets.
//! - [`subscriptions`]: outbound webhook subscriptions (REST hooks): events queued
//!   in their own transaction, delivered signed with retries by the worker.
//! - [`sync`]: sync between a laptop's store and the team's: hybrid logical
//!   clocks, the join of two views of a contact, each store's change feed
//!   (stamps kept by triggers), applying another store's page, and the rounds
//!   of `funnel sync` / `POST /api/sync`.
//! - [`suggest`]: workflow suggestions from the recipe library, matched to a
//!   component, the site's industry and goals, and the workspace.
//! - [`tls`]: certificates for the sites' domains over ACME, kept in the
//!   store, chosen per handshake by server name and renewed in place.
//! - [`uid`]: time-ordered public ids for stored entities.
//! - [`rng`]: a seeded random source, so runs replay from a seed.
//!
//! Shells (call the core, print):
//! - [`cli`]: the `funnel` command line, one file per subcommand.
//! - [`web`]: sites over HTTP: files, form posts, tracking beacons, live reload.
//! - [`tui`]: `funnel tui`, the marketers' terminal UI over a store: contacts,
//!   deals, campaigns, executions, dashboard.
//! - [`daemon`]: the long-running process (`funnel up`, `funnel daemon`): every
//!   site by host, the worker, health and metrics, validated reloads.

#![forbid(unsafe_code)]

pub mod access;
pub mod analytics;
pub mod audit;
pub mod builtin;
pub mod catalog;
pub mod cli;
pub mod crm;
pub mod daemon;
pub mod deploy;
pub mod desk;
pub mod diagnostic;
pub mod email;
pub mod engine;
pub mod git;
pub mod model;
pub mod optimize;
pub mod proposals;
pub mod publish;
pub mod remotes;
pub mod report;
pub mod rng;
pub mod scaffold;
pub mod schema;
pub mod site_edit;
pub mod status;
pub mod store;
pub mod subscriptions;
pub mod suggest;
pub mod sync;
pub mod tls;
pub mod tui;
pub mod uid;
pub mod validate;
pub mod web;
pub mod workspace;
pub mod yaml;
