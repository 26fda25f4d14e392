//! Deals in pipelines: moving a contact's open deal to a stage, with its history.

use crate::store::db::{Db, OptionalRow, params};

use super::{CrmError, CrmEvent};
use crate::store::UnixMs;

/// Moves the contact's open deal in `pipeline` to `stage`, creating the deal if
/// there is none. Returns the deal id and a `DealStageChanged` when the stage changed.
pub fn move_to_stage(
    conn: Db<'_>,
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

/// A deal as listings show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DealRow {
    pub id: i64,
    pub uid: String,
    pub contact: String,
    pub pipeline: String,
    pub stage: String,
    pub value: Option<f64>,
    pub status: String,
    pub created_at: UnixMs,
    pub updated_at: UnixMs,
}

const DEAL_COLUMNS: &str = "d.id, d.uid, c.email, d.pipeline, d.stage, d.value, d.status, \
     d.created_at, d.updated_at";

fn deal_row(r: crate::store::db::Row<'_>) -> Result<DealRow, crate::store::StoreError> {
    Ok(DealRow {
        id: r.get(0)?,
        uid: r.get(1)?,
        contact: r.get(2)?,
        pipeline: r.get(3)?,
        stage: r.get(4)?,
        value: r.get(5)?,
        status: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

/// Deals, newest first, optionally of one pipeline, stage or status.
pub fn list(
    conn: Db<'_>,
    pipeline: Option<&str>,
    stage: Option<&str>,
    status: Option<&str>,
    limit: usize,
) -> Result<Vec<DealRow>, CrmError> {
    let sql = format!(
        "SELECT {DEAL_COLUMNS} FROM deals d JOIN contacts c ON c.id = d.contact_id \
         WHERE (CAST(?1 AS TEXT) IS NULL OR d.pipeline = ?1) AND (CAST(?2 AS TEXT) IS NULL OR d.stage = ?2) \
         AND (CAST(?3 AS TEXT) IS NULL OR d.status = ?3) ORDER BY d.id DESC LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            pipeline,
            stage,
            status,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        deal_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest deals of one stage of a pipeline, at most `limit` (a board's
/// column), by the (pipeline, stage) index.
pub fn in_stage(
    conn: Db<'_>,
    pipeline: &str,
    stage: &str,
    limit: usize,
) -> Result<Vec<DealRow>, CrmError> {
    let sql = format!(
        "SELECT {DEAL_COLUMNS} FROM deals d JOIN contacts c ON c.id = d.contact_id \
         WHERE d.pipeline = ?1 AND d.stage = ?2 ORDER BY d.id DESC LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![pipeline, stage, i64::try_from(limit).unwrap_or(i64::MAX)],
        deal_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A contact's deals, newest first, at most `limit`.
pub fn of_contact(conn: Db<'_>, contact_id: i64, limit: usize) -> Result<Vec<DealRow>, CrmError> {
    let sql = format!(
        "SELECT {DEAL_COLUMNS} FROM deals d JOIN contacts c ON c.id = d.contact_id \
         WHERE d.contact_id = ?1 ORDER BY d.id DESC LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![contact_id, i64::try_from(limit).unwrap_or(i64::MAX)],
        deal_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One stage change of a deal.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StageChange {
    pub from: Option<String>,
    pub to: String,
    pub source: Option<String>,
    pub at: UnixMs,
}

/// A deal by public id or row id, with its stage history, oldest first.
pub fn show(conn: Db<'_>, key: &str) -> Result<(DealRow, Vec<StageChange>), CrmError> {
    let sql = format!(
        "SELECT {DEAL_COLUMNS} FROM deals d JOIN contacts c ON c.id = d.contact_id \
         WHERE d.uid = ?1 OR d.id = ?2"
    );
    let deal = conn
        .prepare_cached(&sql)?
        .query_row(params![key, key.parse::<i64>().unwrap_or(-1)], deal_row)
        .optional()?
        .ok_or_else(|| CrmError::Invalid(format!("no deal `{key}`")))?;
    let mut stmt = conn.prepare_cached(
        "SELECT from_stage, to_stage, source, changed_at FROM deal_stage_history \
         WHERE deal_id = ?1 ORDER BY changed_at, id",
    )?;
    let history = stmt
        .query_map(params![deal.id], |r| {
            Ok(StageChange {
                from: r.get(0)?,
                to: r.get(1)?,
                source: r.get(2)?,
                at: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok((deal, history))
}

/// Marks a deal won, lost or open again (its stage says which).
pub fn set_status(conn: Db<'_>, deal_id: i64, status: &str, at: UnixMs) -> Result<(), CrmError> {
    conn.prepare_cached("UPDATE deals SET status = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![deal_id, status, at])?;
    Ok(())
}

/// Open deals per stage of a pipeline: (stage, count, total value).
pub fn by_stage(conn: Db<'_>, pipeline: &str) -> Result<Vec<(String, i64, f64)>, CrmError> {
    let mut stmt = conn.prepare_cached(
        "SELECT stage, count(*), coalesce(sum(value), 0) FROM deals \
         WHERE pipeline = ?1 GROUP BY stage",
    )?;
    let rows = stmt.query_map(params![pipeline], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
