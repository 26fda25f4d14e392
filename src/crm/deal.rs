//! Deals in pipelines: moving a contact's open deal to a stage, with its history.

use rusqlite::{Connection, OptionalExtension, params};

use super::{CrmError, CrmEvent};
use crate::store::UnixMs;

/// Moves the contact's open deal in `pipeline` to `stage`, creating the deal if
/// there is none. Returns the deal id and a `DealStageChanged` when the stage changed.
pub fn move_to_stage(
    conn: &Connection,
    contact_id: i64,
    pipeline: &str,
    stage: &str,
    value: Option<f64>,
    source: Option<&str>,
    at: UnixMs,
) -> Result<(i64, Vec<CrmEvent>), CrmError> {
    let open: Option<(i64, String, Option<f64>)> = conn
        .prepare_cached(
            "SELECT id, stage, value FROM deals WHERE contact_id = ?1 AND pipeline = ?2 \
             AND status = 'open' ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![contact_id, pipeline], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let (deal_id, from, value) = match open {
        Some((id, from, old_value)) => {
            if from == stage && value.is_none() {
                return Ok((id, Vec::new()));
            }
            let value = value.or(old_value);
            conn.prepare_cached(
                "UPDATE deals SET stage = ?2, value = ?3, updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![id, stage, value, at])?;
            if from == stage {
                return Ok((id, Vec::new()));
            }
            (id, Some(from), value)
        }
        None => {
            let id: i64 = conn
                .prepare_cached(
                    "INSERT INTO deals (uid, contact_id, pipeline, stage, value, status, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?6) RETURNING id",
                )?
                .query_row(
                    params![crate::uid::new(at), contact_id, pipeline, stage, value, at],
                    |r| r.get(0),
                )?;
            (id, None, value)
        }
    };
    conn.prepare_cached(
        "INSERT INTO deal_stage_history (deal_id, from_stage, to_stage, source, changed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![deal_id, from, stage, source, at])?;
    Ok((
        deal_id,
        vec![CrmEvent::DealStageChanged {
            contact_id,
            deal_id,
            pipeline: pipeline.to_string(),
            stage: stage.to_string(),
            from_stage: from,
            value,
        }],
    ))
}
