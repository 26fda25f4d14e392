//! Sync between a laptop's store and the team's hosted one: the rules, as
//! code that can be tested by itself before any store or network is involved.
//!
//! - [`hlc`]: hybrid logical clocks, so laptops whose clocks drift still order
//!   their changes after what they have seen.
//! - [`merge`]: one contact as sync sees it, and the join of two views of it:
//!   fields and memberships by latest stamp (the node breaking ties), histories
//!   as unions, an erasure absorbing everything. Commutative, associative and
//!   idempotent, so stores converge whatever the order and however often a
//!   page is sent again.
//!
//! - [`store`]: each store's change feed (stamps kept by triggers) and
//!   applying another store's page by those rules.
//! - [`session`]: rounds of one page each way between a store and a hub (the
//!   team's daemon, `POST /api/sync`), resumable and idempotent.
//!
//! docs/sync.md writes the rules down.

mod bulk;
#[cfg(test)]
mod convergence;
pub mod hlc;
pub mod merge;
pub mod session;
pub mod store;
