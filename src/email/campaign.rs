//! Broadcasts in the store: a campaign's audience counted (the plan), frozen
//! into one send row per recipient in one statement (so that a contact who joins
//! the segment mid-send gets nothing, and a crash resumes from the same list),
//! its state moved by send, pause, resume and cancel, and its results read per
//! variant. Rendering and queueing the frozen sends is the engine's
//! (`engine::worker::campaigns`).

use serde::Serialize;

use crate::crm::CrmError;
use crate::crm::scoring::Scoring;
use crate::model::campaign::Campaign;
use crate::model::contacts::SegmentDef;
use crate::store::db::{Db, OptionalRow, Value, params, refs};
use crate::store::{StoreError, UnixMs};

use super::abtest::{BUCKET_SQL, seed};

type Sql = Value<'static>;

/// A campaign's state, as `campaigns list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct State {
    pub id: i64,
    pub key: String,
    pub status: String,
    pub recipients: i64,
    pub winner: Option<String>,
    pub test_ends_at: Option<UnixMs>,
}

/// The audience's SQL over `contacts c` and its parameters.
fn audience(
    conn: Db<'_>,
    c: &Campaign,
    segments: &std::collections::BTreeMap<String, SegmentDef>,
    scoring: &Scoring,
    now: UnixMs,
) -> Result<(String, Vec<Sql>), CrmError> {
    let mut parts = Vec::new();
    let mut params = Vec::new();
    if let Some(s) = &c.audience.segment {
        let def = segments
            .get(s.as_str())
            .ok_or_else(|| CrmError::NotFound(format!("segment `{}`", s.as_str())))?;
        let pred = crate::crm::segment::segment_predicate(conn, scoring, def, now)?;
        parts.push(format!("({})", pred.sql));
        params.extend(pred.params);
    }
    if let Some(l) = &c.audience.list {
        parts.push("c.id IN (SELECT contact_id FROM list_members WHERE list_id = ?)".into());
        params.push(Value::Text(l.as_str().to_string().into()));
    }
    if parts.is_empty() {
        return Err(CrmError::Invalid(
            "the campaign's audience names no segment and no list".into(),
        ));
    }
    Ok((parts.join(" AND "), params))
}

/// The variant of a bucket as SQL (`NULL` for the part that waits for the
/// winner), with its parameters; `None` without an A/B test.
fn variant_case(c: &Campaign, key: &str) -> Option<(String, Vec<Sql>, i64)> {
    let test = c.ab_test.as_ref()?;
    let seed = seed(key);
    let mut sql = String::from("CASE");
    let mut params = Vec::new();
    let mut upto: i64 = 0;
    for v in &test.variants {
        upto += i64::from(v.split);
        sql.push_str(&format!(" WHEN {BUCKET_SQL} < ? THEN ?"));
        params.push(Value::Int(seed));
        params.push(Value::Int(upto));
        params.push(Value::Text(v.id.as_str().to_string().into()));
    }
    sql.push_str(" ELSE NULL END");
    Some((sql, params, upto))
}

/// What sending would do now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Plan {
    /// Active contacts in the audience: each gets one email.
    pub recipients: u64,
    /// Contacts in the audience who get nothing (unsubscribed, bounced, complained).
    pub suppressed: u64,
    /// Recipients per A/B variant; `""` is the part that gets the winner.
    pub variants: Vec<(String, u64)>,
}

/// Counts the audience now, as [`freeze`] would split it.
pub fn plan(
    conn: Db<'_>,
    key: &str,
    c: &Campaign,
    segments: &std::collections::BTreeMap<String, SegmentDef>,
    scoring: &Scoring,
    now: UnixMs,
) -> Result<Plan, CrmError> {
    let (who, who_params) = audience(conn, c, segments, scoring, now)?;
    let sql = format!(
        "SELECT sum(CASE WHEN c.status = 'active' THEN 1 ELSE 0 END), count(*) FROM contacts c WHERE {who}"
    );
    let (active, all): (Option<i64>, i64) = conn
        .prepare(&sql)?
        .query_row(&refs(&who_params), |r| Ok((r.get(0)?, r.get(1)?)))?;
    let active = active.unwrap_or(0);
    let mut plan = Plan {
        recipients: u64::try_from(active).unwrap_or(0),
        suppressed: u64::try_from(all - active).unwrap_or(0),
        variants: Vec::new(),
    };
    if let Some((case, mut params, _)) = variant_case(c, key) {
        let sql = format!(
            "SELECT coalesce({case}, ''), count(*) FROM contacts c WHERE c.status = 'active' AND {who} GROUP BY 1 ORDER BY 1"
        );
        params.extend(who_params);
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(&refs(&params), |r| {
            Ok((
                r.get::<String>(0)?,
                u64::try_from(r.get::<i64>(1)?).unwrap_or(0),
            ))
        })?;
        plan.variants = rows.collect::<Result<_, _>>()?;
    }
    Ok(plan)
}

/// The first active contact of the audience (the sample `plan` renders for).
pub fn first_recipient(
    conn: Db<'_>,
    c: &Campaign,
    segments: &std::collections::BTreeMap<String, SegmentDef>,
    scoring: &Scoring,
    now: UnixMs,
) -> Result<Option<i64>, CrmError> {
    let (who, params) = audience(conn, c, segments, scoring, now)?;
    let sql = format!(
        "SELECT c.id FROM contacts c WHERE c.status = 'active' AND {who} ORDER BY c.id LIMIT 1"
    );
    Ok(conn
        .prepare(&sql)?
        .query_row(&refs(&params), |r| r.get(0))
        .optional()?)
}

/// The campaign row of `key`, if it was frozen.
pub fn state(conn: Db<'_>, key: &str) -> Result<Option<State>, StoreError> {
    conn.prepare_cached(
        "SELECT id, campaign_key, status, recipients_count, winner, test_ends_at \
         FROM email_campaigns WHERE campaign_key = ?1",
    )?
    .query_row(params![key], |r| {
        Ok(State {
            id: r.get(0)?,
            key: r.get(1)?,
            status: r.get(2)?,
            recipients: r.get(3)?,
            winner: r.get(4)?,
            test_ends_at: r.get(5)?,
        })
    })
    .optional()
}

/// Freezes the audience of campaign `key`: one send per active member, with its
/// A/B variant (or held for the winner), all in the caller's transaction; the
/// campaign starts sending. A campaign frozen already is returned as it is.
pub fn freeze(
    conn: Db<'_>,
    key: &str,
    c: &Campaign,
    segments: &std::collections::BTreeMap<String, SegmentDef>,
    scoring: &Scoring,
    now: UnixMs,
) -> Result<State, CrmError> {
    if let Some(s) = state(conn, key)? {
        return Ok(s);
    }
    let definition = serde_json::to_string(c).map_err(|e| CrmError::Invalid(e.to_string()))?;
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO email_campaigns (uid, name, kind, subject, template_id, status, scheduled_at, \
             created_at, campaign_key, definition) VALUES (?1, ?2, 'broadcast', ?3, ?4, 'sending', NULL, ?5, ?6, ?7) \
             RETURNING id",
        )?
        .query_row(
            params![
                crate::uid::new(now),
                c.name,
                c.subject.as_ref().map(|s| s.as_str().to_string()),
                c.template.as_str(),
                now,
                key,
                definition
            ],
            |r| r.get(0),
        )?;
    let (who, who_params) = audience(conn, c, segments, scoring, now)?;
    let mut params: Vec<Sql> = vec![
        Value::Int(id),
        Value::Text(c.template.as_str().to_string().into()),
    ];
    let (variant, status) = match variant_case(c, key) {
        Some((case, case_params, total)) => {
            params.extend(case_params);
            params.push(Value::Int(seed(key)));
            params.push(Value::Int(total));
            (
                case,
                format!("CASE WHEN {BUCKET_SQL} < ? THEN 'planned' ELSE 'held' END"),
            )
        }
        None => ("NULL".to_string(), "'planned'".to_string()),
    };
    params.push(Value::Int(now));
    params.extend(who_params);
    let sql = format!(
        "INSERT INTO email_sends (uid, campaign_id, contact_id, template_id, variant, status, created_at) \
         SELECT lower(hex(randomblob(16))), ?, c.id, ?, {variant}, {status}, ? \
         FROM contacts c WHERE c.status = 'active' AND {who} ORDER BY c.id"
    );
    let n = conn.prepare(&sql)?.execute(&refs(&params))?;
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let status = if c.ab_test.is_some() {
        "testing"
    } else {
        "sending"
    };
    conn.prepare_cached(
        "UPDATE email_campaigns SET recipients_count = ?2, status = ?3 WHERE id = ?1",
    )?
    .execute(params![id, n, status])?;
    Ok(State {
        id,
        key: key.to_string(),
        status: status.to_string(),
        recipients: n,
        winner: None,
        test_ends_at: None,
    })
}

/// Moves a campaign from one of `from` to `to`; false when it was in none of them.
pub fn transition(conn: Db<'_>, key: &str, from: &[&str], to: &str) -> Result<bool, StoreError> {
    let Some(s) = state(conn, key)? else {
        return Ok(false);
    };
    if !from.contains(&s.status.as_str()) {
        return Ok(false);
    }
    conn.prepare_cached("UPDATE email_campaigns SET status = ?2 WHERE id = ?1")?
        .execute(params![s.id, to])?;
    if to == "cancelled" {
        // Nothing frozen goes out any more; what is queued is dropped too.
        conn.prepare_cached(
            "UPDATE outbox SET status = 'cancelled' WHERE status = 'pending' AND send_id IN \
             (SELECT id FROM email_sends WHERE campaign_id = ?1 AND status = 'queued')",
        )?
        .execute(params![s.id])?;
        conn.prepare_cached(
            "UPDATE email_sends SET status = 'cancelled' WHERE campaign_id = ?1 \
             AND status IN ('planned', 'held', 'queued')",
        )?
        .execute(params![s.id])?;
    }
    Ok(true)
}

/// One variant's numbers (`""`: a campaign without a test, or its winner's share).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct VariantStats {
    pub variant: String,
    pub recipients: u64,
    pub waiting: u64,
    pub queued: u64,
    pub sent: u64,
    pub delivered: u64,
    pub bounced: u64,
    pub suppressed: u64,
    pub failed: u64,
    pub unique_opens: u64,
    pub unique_clicks: u64,
    pub unsubscribes: u64,
    pub complaints: u64,
}

/// A campaign's numbers per variant.
pub fn stats(conn: Db<'_>, campaign_id: i64) -> Result<Vec<VariantStats>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT coalesce(variant, ''), count(*), \
         sum(CASE WHEN status IN ('planned', 'held') THEN 1 ELSE 0 END), \
         sum(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), \
         sum(CASE WHEN status IN ('sent', 'bounced') THEN 1 ELSE 0 END), \
         sum(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), \
         sum(CASE WHEN status = 'bounced' THEN 1 ELSE 0 END), \
         sum(CASE WHEN status = 'suppressed' THEN 1 ELSE 0 END), \
         sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), \
         sum(CASE WHEN opened_at IS NOT NULL THEN 1 ELSE 0 END), \
         sum(CASE WHEN clicked_at IS NOT NULL THEN 1 ELSE 0 END), \
         sum(CASE WHEN unsubscribed_at IS NOT NULL THEN 1 ELSE 0 END), \
         sum(CASE WHEN complained_at IS NOT NULL THEN 1 ELSE 0 END) \
         FROM email_sends WHERE campaign_id = ?1 GROUP BY 1 ORDER BY 1",
    )?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let rows = stmt.query_map(params![campaign_id], |r| {
        Ok(VariantStats {
            variant: r.get(0)?,
            recipients: n(r.get(1)?),
            waiting: n(r.get(2)?),
            queued: n(r.get(3)?),
            sent: n(r.get(4)?),
            delivered: n(r.get(5)?),
            bounced: n(r.get(6)?),
            suppressed: n(r.get(7)?),
            failed: n(r.get(8)?),
            unique_opens: n(r.get(9)?),
            unique_clicks: n(r.get(10)?),
            unsubscribes: n(r.get(11)?),
            complaints: n(r.get(12)?),
        })
    })?;
    rows.collect()
}

/// The frozen definition of a campaign (what it was when sending began).
pub fn definition(conn: Db<'_>, campaign_id: i64) -> Result<Option<Campaign>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT definition FROM email_campaigns WHERE id = ?1")?
        .query_row(params![campaign_id], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}
