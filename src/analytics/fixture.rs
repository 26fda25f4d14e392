//! Rows for the analytics modules' tests: contacts, workflow runs, campaign
//! and workflow emails, won deals and site events, written straight into a
//! test store so each test reads as its scenario.

use crate::store::StoreError;
use crate::store::db::{Db, params};

pub const DAY: i64 = 86_400_000;

/// Contacts `1..=n`.
pub fn contacts(db: Db<'_>, n: i64) -> Result<(), StoreError> {
    for c in 1..=n {
        db.execute(
            "INSERT INTO contacts (id, uid, email, status, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 'active', 0, 0)",
            params![c, format!("u{c}"), format!("p{c}@example.org")],
        )?;
    }
    Ok(())
}

/// A run of `workflow` for `contact` that started at `at` and finished 1 s
/// later with `status`. Returns the execution's id.
pub fn run(
    db: Db<'_>,
    workflow: &str,
    contact: Option<i64>,
    at: i64,
    status: &str,
) -> Result<i64, StoreError> {
    db.execute(
        "INSERT INTO workflow_versions (hash, workflow_id, definition, created_at) \
         VALUES ('h', 'w', '{}', 0) ON CONFLICT (hash) DO NOTHING",
        params![],
    )?;
    let done = (status != "waiting" && status != "running").then_some(at + 1000);
    let uid = crate::uid::new(at);
    db.query_row(
        "INSERT INTO executions (uid, workflow_id, version_hash, contact_id, status, started_at, \
         updated_at, completed_at) VALUES (?1, ?2, 'h', ?3, ?4, ?5, ?5, ?6) RETURNING id",
        params![uid, workflow, contact, status, at, done],
        |r| r.get(0),
    )
}

/// Campaign `key`; returns its row id.
pub fn campaign(db: Db<'_>, key: &str) -> Result<i64, StoreError> {
    db.query_row(
        "INSERT INTO email_campaigns (uid, name, kind, status, created_at, campaign_key) \
         VALUES (?1, ?2, 'broadcast', 'sent', 0, ?2) RETURNING id",
        params![format!("c-{key}"), key],
        |r| r.get(0),
    )
}

/// An email sent at `at`, of a campaign or of a workflow run.
pub fn send(
    db: Db<'_>,
    campaign: Option<i64>,
    execution: Option<i64>,
    contact: i64,
    at: i64,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO email_sends (uid, campaign_id, contact_id, execution_id, template_id, status, \
         sent_at, created_at) VALUES (?1, ?2, ?3, ?4, 't', 'sent', ?5, ?5)",
        params![crate::uid::new(at), campaign, contact, execution, at],
    )?;
    Ok(())
}

/// A deal of `contact` that reached `stage` at `at` with `status` (`won`,
/// `lost`, `open`), after an earlier stage a day before.
pub fn deal(
    db: Db<'_>,
    contact: i64,
    value: f64,
    stage: &str,
    status: &str,
    at: i64,
) -> Result<i64, StoreError> {
    let id: i64 = db.query_row(
        "INSERT INTO deals (uid, contact_id, pipeline, stage, value, status, created_at, updated_at) \
         VALUES (?1, ?2, 'sales', ?3, ?4, ?5, ?6, ?7) RETURNING id",
        params![crate::uid::new(at), contact, stage, value, status, at - DAY, at],
        |r| r.get(0),
    )?;
    db.execute(
        "INSERT INTO deal_stage_history (deal_id, from_stage, to_stage, changed_at) \
         VALUES (?1, NULL, 'proposal', ?2), (?1, 'proposal', ?3, ?4)",
        params![id, at - DAY, stage, at],
    )?;
    Ok(id)
}

/// A site event of `demo` by `visitor`.
#[allow(clippy::too_many_arguments)]
pub fn event(
    db: Db<'_>,
    visitor: &str,
    contact: Option<i64>,
    page: &str,
    component: Option<&str>,
    kind: &str,
    data: &str,
    at: i64,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO analytics_events (site_id, page, component_id, type, visitor, contact_id, data, occurred_at) \
         VALUES ('demo', ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![page, component, kind, visitor, contact, data, at],
    )?;
    Ok(())
}
