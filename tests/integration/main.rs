//! Integration tests: the real `funnel` binary on real files, one test binary.
#![allow(clippy::print_stderr)] // tests say why they skip

mod backend;
mod crash;
mod crm_attribution;
mod crm_cli;
mod crm_merge;
mod crm_segments;
mod daemon;
mod daemon_forms;
mod daemon_hooks;
mod db_cli;
mod engine_actions;
mod engine_cli;
mod engine_crash;
mod engine_durable;
mod engine_logic;
mod engine_secrets;
mod engine_support;
mod engine_triggers;
mod fixtures;
mod history_growth;
mod hostile;
mod http_client;
mod http_server;
mod init;
mod new_user;
mod pg_tls;
mod preview;
mod publish;
mod render;
mod schema;
mod store;
mod support;
mod templates;
mod validate_cli;
mod workers;
