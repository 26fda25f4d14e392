//! Bounce and complaint reports reaching the engine, from a provider's webhook
//! or `funnel bounces import`: each applied to the store (`email::bounces`) and,
//! when it changed something, put on the contact's timeline and fed to the
//! workflows that start on `email_bounced` or `email_complained`.

use serde_json::json;

use super::Worker;
use super::email::contact_email_event;
use crate::email::bounces::{self, Applied};
use crate::email::reports::{Report, ReportKind};
use crate::engine::EngineError;

/// Reports applied per transaction.
const CHUNK: usize = 500;

/// What a batch of reports did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReportTally {
    pub bounces: usize,
    pub complaints: usize,
    pub unsubscribes: usize,
    /// Reports of what was recorded already.
    pub known: usize,
    /// Reports naming no address.
    pub unmatched: usize,
}

impl Worker {
    /// Applies reports, a chunk per transaction; a crash loses no applied
    /// chunk, and a re-run of the same reports changes nothing.
    pub async fn record_reports(&self, reports: Vec<Report>) -> Result<ReportTally, EngineError> {
        let mut tally = ReportTally::default();
        for chunk in reports.chunks(CHUNK) {
            let chunk = chunk.to_vec();
            let t = self
                .background_retrying(self.now(), move |ctx| {
                    let key = crate::analytics::token::key(ctx.conn)
                        .map_err(|e| EngineError::Invalid(e.to_string()))?;
                    let mut t = ReportTally::default();
                    for r in &chunk {
                        let applied = bounces::apply(ctx.conn, &key, r, ctx.now)?;
                        tracing::debug!(
                            kind = ?r.kind,
                            recipient = ?r.recipient,
                            return_paths = ?r.return_paths,
                            message_id = ?r.message_id,
                            ?applied,
                            "bounce report"
                        );
                        match applied {
                            Applied::Recorded {
                                send, contact_id, ..
                            } => {
                                match r.kind {
                                    ReportKind::Bounce => t.bounces += 1,
                                    ReportKind::Complaint => t.complaints += 1,
                                    ReportKind::Unsubscribe => t.unsubscribes += 1,
                                }
                                contact_email_event(
                                    ctx,
                                    send.as_ref(),
                                    contact_id,
                                    r.kind.event(),
                                    json!({"detail": r.detail, "source": r.source}),
                                )?;
                            }
                            Applied::Known => t.known += 1,
                            Applied::Unmatched => t.unmatched += 1,
                        }
                    }
                    Ok(t)
                })
                .await?;
            tally.bounces += t.bounces;
            tally.complaints += t.complaints;
            tally.unsubscribes += t.unsubscribes;
            tally.known += t.known;
            tally.unmatched += t.unmatched;
        }
        Ok(tally)
    }
}
