//! Lead scoring from `contacts/scoring.yaml`: fit rules over who the contact is,
//! engagement rules over what they did (decaying with a half-life, capped per day),
//! and the adjustments workflows record. Scores are exact at read time.
//!
//! Fit is computed when asked, by the segment compiler. Engagement would need a
//! contact's whole timeline at every read; instead each activity adds its points
//! to `contacts.engagement` weighted `2^((occurred_at - epoch) / half_life)`, so the
//! decayed sum at any moment is that column times `2^((epoch - now) / half_life)`:
//! one factor for every row, so a segment can compare a million scores in one scan.
//! The epoch moves forward (and the column is rescaled) long before the weights
//! could overflow; a change to the rules recomputes the column from the timelines.

type Sql = crate::store::db::Value<'static>;
use crate::store::db::{Db, OptionalRow, params};
use serde_json::{Value as Json, json};

use super::segment::{self, Mode, Predicate, Scope};
use super::{CrmError, CrmEvent, crossings};
use crate::model::contacts::{EngagementRule, FitRule, ScoringFile, SegmentDef};
use crate::store::UnixMs;
use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;
/// Weights stay below 2^REBASE_AFTER before the epoch moves (f64 holds 2^1023).
const REBASE_AFTER: f64 = 256.0;

/// A score's SQL as compiled for a mode and a moment (0 when no fit rule reads
/// the time), its first parameter (the decay) set at each use.
type CompiledScore = (Mode, UnixMs, Predicate);

/// How long an explained contact's engagement parts are shown again unread:
/// their points decay with time, by very little in a minute.
const EXPLAINED_FOR_MS: i64 = 60_000;
/// Contacts whose engagement parts are kept.
const EXPLAINED_KEPT: usize = 64;

/// One contact's engagement parts as last read from its timeline, with what
/// they were read at: the stored engagement and the last activity change
/// whenever an activity counts, so an equal pair means nothing new to read.
#[derive(Debug, Clone)]
struct Explained {
    id: i64,
    engagement: u64,
    last_activity: Option<UnixMs>,
    at: UnixMs,
    parts: Vec<Json>,
}

/// Compiled scoring rules.
#[derive(Debug, Clone, Default)]
pub struct Scoring {
    pub half_life_ms: f64,
    /// Named thresholds, ascending.
    pub thresholds: Vec<(String, f64)>,
    pub fit: Vec<FitRule>,
    pub engagement: Vec<EngagementRule>,
    /// The segments fit rules may refer to.
    pub segments: BTreeMap<String, SegmentDef>,
    /// A hash of the engagement rules and half-life, to know when the stored
    /// engagement was computed with other rules.
    pub rules_hash: String,
    /// The last score SQL compiled, by mode and moment: one transaction
    /// observes and shows a contact's score several times at the same moment,
    /// and compiling the fit rules costs more than running them. When no fit
    /// rule reads the time the moment is left out, so every form post's score
    /// reuses it.
    compiled: std::sync::Arc<std::sync::Mutex<Option<CompiledScore>>>,
    /// Whether the fit rules' SQL is the same at every moment, once known, by
    /// mode (`Mode::Set`, `Mode::One`).
    timeless: std::sync::Arc<[std::sync::OnceLock<bool>; 2]>,
    /// Engagement parts of the contacts explained lately: a detail pane shown
    /// again and again (the TUI re-reads it every half second) reads the
    /// contact's whole timeline only when something in it counts.
    explained: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Explained>>>,
}

impl Scoring {
    /// Compiles the scoring file (none: scores are the sum of adjustments).
    pub fn new(file: Option<&ScoringFile>, segments: BTreeMap<String, SegmentDef>) -> Scoring {
        let Some(f) = file else {
            return Scoring {
                half_life_ms: f64::INFINITY,
                segments,
                ..Scoring::default()
            };
        };
        let mut thresholds: Vec<(String, f64)> =
            f.thresholds.iter().map(|(k, v)| (k.clone(), *v)).collect();
        thresholds.sort_by(|a, b| a.1.total_cmp(&b.1));
        let half_life_ms = f.half_life.millis().map_or(f64::INFINITY, |ms| ms as f64);
        let rules = serde_json::to_string(&(&f.half_life, &f.engagement)).unwrap_or_default();
        Scoring {
            half_life_ms,
            thresholds,
            fit: f.fit.clone(),
            engagement: f.engagement.clone(),
            segments,
            rules_hash: crate::engine::program::content_hash(&rules),
            compiled: Default::default(),
            timeless: Default::default(),
            explained: Default::default(),
        }
    }

    /// The weight of an activity at `at` relative to the epoch.
    fn weight(&self, at: UnixMs, epoch: UnixMs) -> f64 {
        if self.half_life_ms.is_infinite() {
            1.0
        } else {
            ((at - epoch) as f64 / self.half_life_ms).exp2()
        }
    }

    /// The lead score of `contacts c` at `now`, as SQL with its parameters.
    pub fn score_sql(&self, conn: Db<'_>, now: UnixMs, mode: Mode) -> Result<Predicate, CrmError> {
        let epoch = epoch(conn)?;
        let decay = Sql::Real(1.0 / self.weight(now, epoch));
        let known = &self.timeless[usize::from(mode == Mode::One)];
        let timeless = match known.get() {
            Some(t) => *t,
            None => {
                // A rule that reads the time (`created_at` within 7 days) gives
                // other parameters a millisecond later.
                let t = self.compile_score(now, mode)? == self.compile_score(now + 1, mode)?;
                *known.get_or_init(|| t)
            }
        };
        let at = if timeless { 0 } else { now };
        if let Ok(last) = self.compiled.lock()
            && let Some((m, a, p)) = last.as_ref()
            && (*m, *a) == (mode, at)
        {
            let mut p = p.clone();
            p.params[0] = decay;
            return Ok(p);
        }
        let mut p = self.compile_score(now, mode)?;
        if let Ok(mut last) = self.compiled.lock() {
            *last = Some((mode, at, p.clone()));
        }
        p.params[0] = decay;
        Ok(p)
    }

    /// The score's SQL; its first parameter is the decay, set by the caller.
    fn compile_score(&self, now: UnixMs, mode: Mode) -> Result<Predicate, CrmError> {
        let mut p = Predicate {
            sql: "c.adjustments + c.engagement * ?".into(),
            params: vec![Sql::Real(1.0)],
        };
        let scope = Scope {
            segments: &self.segments,
            score: None,
            now,
            mode,
        };
        for rule in &self.fit {
            let pred = segment::compile(&rule.when, &scope)?;
            p.sql.push_str(&format!(
                " + (CASE WHEN {} THEN CAST(? AS DOUBLE PRECISION) ELSE 0 END)",
                pred.sql
            ));
            p.params.extend(pred.params);
            p.params.push(Sql::Real(rule.points));
        }
        Ok(p)
    }

    /// A contact's score now.
    /// The exact score (see [`shown`] for what people see).
    pub fn score(&self, conn: Db<'_>, id: i64, now: UnixMs) -> Result<f64, CrmError> {
        let p = self.score_sql(conn, now, Mode::One)?;
        let sql = format!("SELECT {} FROM contacts c WHERE c.id = ?", p.sql);
        let mut params = p.params;
        params.push(Sql::Int(id));
        conn.prepare_cached(&sql)?
            .query_row(&crate::store::db::refs(&params), |r| r.get(0))
            .optional()?
            .ok_or(CrmError::NoContact(id))
    }

    /// Compares the score now with the score last observed and returns a
    /// `ScoreCrossed` for each threshold between them; remembers the score.
    pub fn observe(&self, conn: Db<'_>, id: i64, now: UnixMs) -> Result<Vec<CrmEvent>, CrmError> {
        if self.thresholds.is_empty() {
            return Ok(Vec::new());
        }
        let seen: f64 = conn
            .prepare_cached("SELECT score_seen FROM contacts WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?
            .ok_or(CrmError::NoContact(id))?;
        let score = self.score(conn, id, now)?;
        if score == seen {
            return Ok(Vec::new());
        }
        conn.prepare_cached("UPDATE contacts SET score_seen = ?2 WHERE id = ?1")?
            .execute(params![id, score])?;
        let values: Vec<f64> = self.thresholds.iter().map(|t| t.1).collect();
        Ok(crossings(seen, score, &values)
            .into_iter()
            .map(|(threshold, up)| CrmEvent::ScoreCrossed {
                contact_id: id,
                threshold,
                score,
                previous_score: seen,
                up,
            })
            .collect())
    }

    /// Adds the engagement points of a new activity (after the daily caps) to the
    /// contact's engagement; returns the points awarded, undecayed.
    pub fn accrue(
        &self,
        conn: Db<'_>,
        id: i64,
        kind: &str,
        subject: Option<&str>,
        data: &Json,
        at: UnixMs,
    ) -> Result<f64, CrmError> {
        let epoch = epoch(conn)?;
        if (at - epoch) as f64 / self.half_life_ms > REBASE_AFTER {
            // The recomputation counts the new activity (already on the timeline).
            self.refresh(conn, at, true)?;
            return Ok(0.0);
        }
        let mut points = 0.0;
        for rule in self.engagement.iter().filter(|r| r.activity == kind) {
            if !rule_matches(rule, subject, data) {
                continue;
            }
            points += capped(conn, rule, id, at)?;
        }
        if points != 0.0 {
            let w = self.weight(at, epoch);
            conn.prepare_cached("UPDATE contacts SET engagement = engagement + ?2 WHERE id = ?1")?
                .execute(params![id, points * w])?;
        }
        Ok(points)
    }

    /// Why a contact has its score: each fit rule that holds, each engagement rule's
    /// decayed points, the adjustments, and the total.
    pub fn explain(&self, conn: Db<'_>, id: i64, now: UnixMs) -> Result<Json, CrmError> {
        let scope = Scope {
            segments: &self.segments,
            score: None,
            now,
            mode: Mode::One,
        };
        let mut fit = Vec::new();
        for rule in &self.fit {
            if segment::matches(conn, id, &rule.when, &scope)? {
                fit.push(json!({"rule": rule.name, "points": rule.points}));
            }
        }
        let (adjustments, stored, last_activity): (f64, f64, Option<UnixMs>) = conn
            .prepare_cached(
                "SELECT adjustments, engagement, last_activity FROM contacts WHERE id = ?1",
            )?
            .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?
            .ok_or(CrmError::NoContact(id))?;
        let key = (id, stored.to_bits(), last_activity);
        let kept = self.explained.lock().ok().and_then(|kept| {
            kept.iter()
                .find(|e| {
                    (e.id, e.engagement, e.last_activity) == key
                        && (0..EXPLAINED_FOR_MS).contains(&(now - e.at))
                })
                .map(|e| e.parts.clone())
        });
        let engagement = match kept {
            Some(parts) => parts,
            None => {
                let parts = self.engagement_parts(conn, id, now)?;
                if let Ok(mut kept) = self.explained.lock() {
                    kept.retain(|e| e.id != id);
                    if kept.len() >= EXPLAINED_KEPT {
                        kept.pop_front();
                    }
                    kept.push_back(Explained {
                        id,
                        engagement: key.1,
                        last_activity,
                        at: now,
                        parts: parts.clone(),
                    });
                }
                parts
            }
        };
        let score = self.score(conn, id, now)?;
        let band = self
            .thresholds
            .iter()
            .rev()
            .find(|t| score >= t.1)
            .map(|t| t.0.clone());
        Ok(json!({
            "score": shown(score),
            "band": band,
            "fit": fit,
            "engagement": engagement,
            "adjustments": adjustments,
            "half_life_days": self.half_life_ms / DAY_MS as f64,
        }))
    }

    /// Points per engagement rule from the contact's whole timeline, as the
    /// stored engagement sums them (daily caps, decay to `now`).
    fn engagement_parts(&self, conn: Db<'_>, id: i64, now: UnixMs) -> Result<Vec<Json>, CrmError> {
        let mut stmt = conn.prepare_cached(
            "SELECT type, subject, data, occurred_at FROM activities WHERE contact_id = ?1 \
             ORDER BY occurred_at, id",
        )?;
        let mut per_rule: BTreeMap<usize, (f64, u64)> = BTreeMap::new();
        let mut day_points: BTreeMap<(usize, i64), f64> = BTreeMap::new();
        let mut rows = stmt.query(params![id])?;
        while let Some(r) = rows.next()? {
            let (kind, subject, data, at): (String, Option<String>, String, i64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            let data: Json = serde_json::from_str(&data).unwrap_or(Json::Null);
            for (i, rule) in self.engagement.iter().enumerate() {
                if rule.activity != kind || !rule_matches(rule, subject.as_deref(), &data) {
                    continue;
                }
                let day = day_points.entry((i, at.div_euclid(DAY_MS))).or_insert(0.0);
                let award = cap(rule, *day);
                *day += award;
                let e = per_rule.entry(i).or_insert((0.0, 0));
                e.0 += award * self.weight(at, now);
                e.1 += 1;
            }
        }
        Ok(per_rule
            .into_iter()
            .map(|(i, (points, activities))| {
                json!({
                    "rule": self.engagement[i].name,
                    "activities": activities,
                    "points": shown(points),
                })
            })
            .collect())
    }

    /// Recomputes every contact's engagement from its timeline, when the rules
    /// changed since it was computed (or `force`). Returns whether it ran.
    pub fn refresh(&self, conn: Db<'_>, now: UnixMs, force: bool) -> Result<bool, CrmError> {
        let stored = state(conn, "scoring_rules")?;
        let epoch = epoch(conn)?;
        let stale = (now - epoch) as f64 / self.half_life_ms > REBASE_AFTER;
        if !force && !stale && stored.as_deref() == Some(self.rules_hash.as_str()) {
            return Ok(false);
        }
        let epoch = now;
        conn.execute(
            "UPDATE contacts SET engagement = 0 WHERE engagement <> 0",
            params![],
        )?;
        let mut day_points: BTreeMap<(i64, usize, i64), f64> = BTreeMap::new();
        let mut totals: BTreeMap<i64, f64> = BTreeMap::new();
        for (i, rule) in self.engagement.iter().enumerate() {
            let mut stmt = conn.prepare(
                "SELECT contact_id, subject, data, occurred_at FROM activities WHERE type = ?1 \
                 ORDER BY contact_id, occurred_at, id",
            )?;
            let mut rows = stmt.query(params![&rule.activity])?;
            while let Some(r) = rows.next()? {
                let (cid, subject, data, at): (i64, Option<String>, String, i64) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                let data: Json = serde_json::from_str(&data).unwrap_or(Json::Null);
                if !rule_matches(rule, subject.as_deref(), &data) {
                    continue;
                }
                let day = day_points
                    .entry((cid, i, at.div_euclid(DAY_MS)))
                    .or_insert(0.0);
                let award = cap(rule, *day);
                *day += award;
                *totals.entry(cid).or_insert(0.0) += award * self.weight(at, epoch);
            }
            day_points.clear();
        }
        let mut put = conn.prepare("UPDATE contacts SET engagement = ?2 WHERE id = ?1")?;
        for (id, total) in totals {
            put.execute(params![id, total])?;
        }
        set_state(conn, "scoring_epoch", &epoch.to_string())?;
        set_state(conn, "scoring_rules", &self.rules_hash)?;
        Ok(true)
    }

    /// Observes one page of the contacts with a score (ids above `after`, at most
    /// `limit`), so that scores that decayed below a threshold fire their
    /// downward crossing. Returns the events and where the next page starts, if
    /// there is one. The worker's periodic loop walks every page, one
    /// transaction each, so a large store never holds the writer for long.
    pub fn sweep(
        &self,
        conn: Db<'_>,
        now: UnixMs,
        after: i64,
        limit: usize,
    ) -> Result<(Vec<CrmEvent>, Option<i64>), CrmError> {
        let ids: Vec<i64> = {
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM contacts WHERE id > ?1 AND score_seen <> 0 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(
                params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )?;
            rows.collect::<Result<_, _>>()?
        };
        let mut events = Vec::new();
        for id in &ids {
            events.extend(self.observe(conn, *id, now)?);
        }
        let next = (ids.len() == limit).then(|| ids.last().copied()).flatten();
        Ok((events, next))
    }
}

/// Whether an activity meets a rule's `where:` (subject keys as in segments).
fn rule_matches(rule: &EngagementRule, subject: Option<&str>, data: &Json) -> bool {
    rule.filter.iter().all(|(key, want)| {
        let got = if segment::SUBJECT_KEYS.contains(&key.as_str()) {
            subject.map(|s| Json::String(s.to_string()))
        } else {
            data.get(key).cloned()
        };
        got.as_ref() == Some(want)
    })
}

/// The points a rule awards given what it awarded that day already.
fn cap(rule: &EngagementRule, awarded_today: f64) -> f64 {
    match rule.max_per_day {
        Some(max) if rule.points > 0.0 => rule.points.min((max - awarded_today).max(0.0)),
        _ => rule.points,
    }
}

/// What a rule awards a new activity, counting the matching activities of the same
/// UTC day already on the timeline (the new one is already inserted).
fn capped(conn: Db<'_>, rule: &EngagementRule, id: i64, at: UnixMs) -> Result<f64, CrmError> {
    let Some(_) = rule.max_per_day else {
        return Ok(rule.points);
    };
    let day = at.div_euclid(DAY_MS) * DAY_MS;
    let mut stmt = conn.prepare_cached(
        "SELECT subject, data FROM activities WHERE contact_id = ?1 AND type = ?2 \
         AND occurred_at >= ?3 AND occurred_at < ?4 ORDER BY occurred_at, id",
    )?;
    let mut rows = stmt.query(params![id, rule.activity, day, day + DAY_MS])?;
    let mut before = 0u32;
    while let Some(r) = rows.next()? {
        let subject: Option<String> = r.get(0)?;
        let data: Json = serde_json::from_str(&r.get::<String>(1)?).unwrap_or(Json::Null);
        if rule_matches(rule, subject.as_deref(), &data) {
            before += 1;
        }
    }
    let prior = before.saturating_sub(1);
    let mut awarded = 0.0;
    for _ in 0..prior {
        awarded += cap(rule, awarded);
    }
    Ok(cap(rule, awarded))
}

fn state(conn: Db<'_>, key: &str) -> Result<Option<String>, CrmError> {
    Ok(conn
        .prepare_cached("SELECT value FROM crm_state WHERE key = ?1")?
        .query_row(params![key], |r| r.get(0))
        .optional()?)
}

fn set_state(conn: Db<'_>, key: &str, value: &str) -> Result<(), CrmError> {
    conn.prepare_cached(
        "INSERT INTO crm_state (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

/// The epoch engagement weights are relative to, until a refresh moves it.
const DEFAULT_EPOCH: UnixMs = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn epoch(conn: Db<'_>) -> Result<UnixMs, CrmError> {
    Ok(state(conn, "scoring_epoch")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_EPOCH))
}

/// A score as people and expressions see it: to two decimals.
pub fn shown(score: f64) -> f64 {
    (score * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::analytics::fixture::{self, DAY};
    use crate::store::test_db::TestDb;

    fn scoring(when: Json) -> Scoring {
        let file: ScoringFile = serde_json::from_value(json!({
            "half_life": "1d",
            "fit": [{"name": "Rule", "when": when, "points": 30}],
        }))
        .expect("scoring file");
        Scoring::new(Some(&file), BTreeMap::new())
    }

    #[test]
    fn a_fit_rule_that_reads_the_time_is_scored_at_each_moment() {
        let t = TestDb::open();
        fixture::contacts(t.db(), 1).expect("contact");
        let at = DEFAULT_EPOCH + 10 * DAY;
        t.db()
            .execute(
                "INSERT INTO activities (contact_id, type, occurred_at) VALUES (1, 'page_view', ?1)",
                params![at],
            )
            .expect("activity");
        let s = scoring(json!({"activity": {"type": "page_view", "within": "1d"}}));
        assert_eq!(s.score(t.db(), 1, at + 1_000).expect("score"), 30.0);
        // Two days on the view is out of the window.
        assert_eq!(s.score(t.db(), 1, at + 2 * DAY).expect("score"), 0.0);
        assert_eq!(s.score(t.db(), 1, at + 2_000).expect("score"), 30.0);
        assert_eq!(s.timeless[1].get(), Some(&false));
    }

    #[test]
    fn a_timeless_fit_rule_is_compiled_once_and_the_decay_follows_the_moment() {
        let t = TestDb::open();
        fixture::contacts(t.db(), 1).expect("contact");
        t.db()
            .execute("UPDATE contacts SET engagement = 8 WHERE id = 1", params![])
            .expect("engagement");
        let s = scoring(json!({"not": {"stage": "customer"}}));
        assert_eq!(s.score(t.db(), 1, DEFAULT_EPOCH).expect("score"), 38.0);
        assert_eq!(s.timeless[1].get(), Some(&true));
        // The cached SQL with the decay of a day later: half the engagement.
        assert_eq!(
            s.score(t.db(), 1, DEFAULT_EPOCH + DAY).expect("score"),
            34.0
        );
        assert_eq!(
            s.score(t.db(), 1, DEFAULT_EPOCH + 2 * DAY).expect("score"),
            32.0
        );
    }
}
