//! `funnel tui`: the marketers' home. Contacts with segments, search and
//! filters; deals as boards; campaigns; executions; a dashboard. State and
//! input live in [`app`] with no terminal; [`render`] draws any frame;
//! [`term`] runs it on a real terminal. Data comes from a
//! [`crate::desk::Source`]: the workspace's store or a team's daemon.
//!
//! Every change goes through the same library functions as the CLI and the
//! API (the engine's worker), so it starts workflows and is written to the
//! audit log with the person's name.

pub mod app;
pub mod background;
pub mod campaigns;
pub mod contacts;
pub mod counts;
pub mod dashboard;
pub mod deals;
pub mod dupes;
pub mod executions;
pub mod help;
pub mod render;
pub mod term;
pub mod theme;

pub use app::App;
