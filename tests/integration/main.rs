//! Integration tests: the real `funnel` binary on real files, one test binary.
#![allow(clippy::print_stderr)] // tests say why they skip

mod crash;
mod db_cli;
mod fixtures;
mod hostile;
mod init;
mod render;
mod schema;
mod store;
mod support;
mod templates;
mod validate_cli;
