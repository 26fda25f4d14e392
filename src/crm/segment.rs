//! Segments as code: a [`Condition`] tree compiled to one SQL predicate over
//! `contacts c`, so membership is live: computed by SQLite when asked, never by a
//! periodic rebuild. Counting, listing and explaining a segment, and the fit rules of
//! lead scoring, all run through the same compiler, so they cannot disagree.
//!
//! Every leaf that looks at another table becomes `c.id IN (subquery)`, which SQLite
//! evaluates once into a temporary index: "viewed /pricing twice in 7 days" reads the
//! activities of the last week through `activities_by_subject`, not a million
//! correlated counts. Column comparisons are null-safe (`IS`), so `not` of a leaf is
//! exactly its complement.

use std::collections::BTreeMap;

type Sql = crate::store::db::Value<'static>;
use crate::store::db::{Db, OptionalRow};
use serde_json::Value as Json;

use super::CrmError;
use crate::model::contacts::{
    ActivityCondition, Condition, EmailCondition, EmailEvent, FieldCondition, Range, SegmentDef,
};
use crate::store::UnixMs;

/// Columns of `contacts` that field conditions may name like custom fields.
const COLUMNS: &[&str] = &[
    "email",
    "name",
    "phone",
    "company_domain",
    "source_site",
    "source_component",
    "source_workflow",
    "status",
    "stage",
    "created_at",
    "updated_at",
    "last_activity",
];

/// `where:` keys of an activity condition that name the activity's indexed subject
/// (the page of a view, the component of a form submission, the template of an
/// email event); any other key is looked up in the activity's data.
pub(crate) const SUBJECT_KEYS: &[&str] = &["subject", "page", "url", "component", "template"];

/// Segments nest at most this deep (the validator refuses cycles; this bounds the
/// compiler whatever it is given).
const MAX_DEPTH: usize = 32;

/// A compiled predicate over `contacts c` and its positional parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub sql: String,
    pub params: Vec<Sql>,
}

/// What a compiled condition needs besides itself.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The segments `segment:` conditions may refer to.
    pub segments: &'a BTreeMap<String, SegmentDef>,
    /// The lead score of `c` as SQL, for `score:` conditions (see `crm::scoring`);
    /// none inside scoring rules themselves.
    pub score: Option<&'a Predicate>,
    /// "Now", for `within:` windows.
    pub now: UnixMs,
    /// Whether the predicate is for a scan of many contacts or for one.
    pub mode: Mode,
}

/// How leaves over other tables are written. Both mean the same; each is fast for
/// its use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `c.id IN (SELECT contact_id …)`: the subquery runs once, for counts and lists.
    Set,
    /// `EXISTS (… WHERE contact_id = c.id …)`: by index, for one contact.
    One,
}

/// "`c` has a row in `table` meeting `cond`", in the scope's mode.
fn member(mode: Mode, table: &str, cond: &str) -> String {
    let table = source(mode, table);
    match mode {
        Mode::Set => format!("c.id IN (SELECT contact_id FROM {table} WHERE {cond})"),
        Mode::One => format!("EXISTS (SELECT 1 FROM {table} WHERE contact_id = c.id AND {cond})"),
    }
}

/// "`c` has at least `n` rows in `table` meeting `cond`" (n ≥ 1).
fn at_least(mode: Mode, table: &str, cond: &str, n: u32) -> String {
    match (mode, n) {
        (_, 1) => member(mode, table, cond),
        (Mode::Set, _) => format!(
            "c.id IN (SELECT contact_id FROM {table} WHERE {cond} GROUP BY contact_id HAVING count(*) >= {n})"
        ),
        (Mode::One, _) => format!(
            "(SELECT count(*) FROM {} WHERE contact_id = c.id AND {cond}) >= {n}",
            source(mode, table)
        ),
    }
}

/// The table as a query over one contact reads it. For one contact its timeline
/// is the way in: without statistics SQLite otherwise picks the (type, subject,
/// time) index and reads every contact's matching activities for each contact.
fn source(mode: Mode, table: &str) -> &str {
    match (mode, table) {
        (Mode::One, "activities") => "activities INDEXED BY activities_timeline",
        _ => table,
    }
}

/// Why a condition does not compile.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("no segment `{0}` in contacts/segments.yaml")]
    Unknown(String),
    #[error("segments nest more than {MAX_DEPTH} deep (through `{0}`)")]
    TooDeep(String),
    #[error("{0}")]
    Invalid(String),
}

/// Compiles a condition to a predicate over `contacts c`.
pub fn compile(cond: &Condition, scope: &Scope<'_>) -> Result<Predicate, SegmentError> {
    let mut p = Predicate {
        sql: String::new(),
        params: Vec::new(),
    };
    emit(cond, scope, 0, &mut p)?;
    Ok(p)
}

fn emit(
    cond: &Condition,
    scope: &Scope<'_>,
    depth: usize,
    p: &mut Predicate,
) -> Result<(), SegmentError> {
    match cond {
        Condition::All(items) | Condition::Any(items) => {
            let (op, empty) = if matches!(cond, Condition::All(_)) {
                (" AND ", "(1 = 1)")
            } else {
                (" OR ", "(1 = 0)")
            };
            if items.is_empty() {
                p.sql.push_str(empty);
                return Ok(());
            }
            // In a scan, an `all` is driven by its most selective child (a recent
            // activity, typically a few percent of contacts) as a set; the other
            // children are then probed per candidate by primary key instead of
            // each being materialized whole (a quarter of a million "plan = pro"
            // ids, say).
            let driver = match (scope.mode, cond) {
                (Mode::Set, Condition::All(_)) => items.iter().position(selective),
                _ => None,
            };
            let one = Scope {
                mode: Mode::One,
                ..*scope
            };
            p.sql.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    p.sql.push_str(op);
                }
                let child = match driver {
                    Some(d) if d != i => &one,
                    _ => scope,
                };
                emit(item, child, depth, p)?;
            }
            p.sql.push(')');
        }
        Condition::Not(inner) => {
            p.sql.push_str("NOT (");
            emit(inner, scope, depth, p)?;
            p.sql.push(')');
        }
        Condition::Segment(id) => {
            let def = scope
                .segments
                .get(id.as_str())
                .ok_or_else(|| SegmentError::Unknown(id.to_string()))?;
            if depth >= MAX_DEPTH {
                return Err(SegmentError::TooDeep(id.to_string()));
            }
            emit(&def.matches, scope, depth + 1, p)?;
        }
        Condition::Tag(tag) => {
            p.sql
                .push_str(&member(scope.mode, "contact_tags", "tag = ?"));
            p.params.push(Sql::Text((tag.trim().to_string()).into()));
        }
        Condition::List(list) => {
            p.sql
                .push_str(&member(scope.mode, "list_members", "list_id = ?"));
            p.params.push(Sql::Text(list.to_string().into()));
        }
        Condition::Status(status) => {
            p.sql.push_str("c.status IS NOT DISTINCT FROM ?");
            p.params.push(Sql::Text((name_of(status)).into()));
        }
        Condition::Stage(stage) => {
            p.sql.push_str("c.stage IS NOT DISTINCT FROM ?");
            p.params.push(Sql::Text((name_of(stage)).into()));
        }
        Condition::Score(range) => {
            let score = scope.score.ok_or_else(|| {
                SegmentError::Invalid("a scoring rule cannot depend on the score".into())
            })?;
            range_sql(&score.sql, &score.params, range, p);
        }
        Condition::Field(f) => field_sql(f, scope.mode, p)?,
        Condition::Activity(a) => activity_sql(a, scope, p)?,
        Condition::Email(e) => {
            activity_sql(&email_activity(e), scope, p)?;
        }
    }
    Ok(())
}

/// Whether a condition selects few contacts by construction: activity within a
/// time window.
fn selective(c: &Condition) -> bool {
    match c {
        Condition::Activity(a) => a.within.is_some() && a.at_least.unwrap_or(1) > 0,
        Condition::Email(e) => e.within.is_some() && e.at_least.unwrap_or(1) > 0,
        _ => false,
    }
}

/// The serde name of a unit enum variant (`LifecycleStage::Customer` → "customer").
fn name_of<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Json::String(s)) => s,
        _ => String::new(),
    }
}

/// `expr` is repeated once per bound, with its parameters each time.
fn range_sql(expr: &str, expr_params: &[Sql], r: &Range, p: &mut Predicate) {
    let bounds: Vec<(&str, f64)> = [(">=", r.gte), (">", r.gt), ("<=", r.lte), ("<", r.lt)]
        .into_iter()
        .filter_map(|(op, v)| v.map(|v| (op, v)))
        .collect();
    if bounds.is_empty() {
        p.sql.push('1');
        return;
    }
    let sql: Vec<String> = bounds
        .iter()
        .map(|(op, _)| format!("({expr}) {op} ?"))
        .collect();
    p.sql.push_str(&format!("({})", sql.join(" AND ")));
    for (_, v) in bounds {
        p.params.extend(expr_params.iter().cloned());
        p.params.push(Sql::Real(v));
    }
}

/// A JSON comparison value as SQL: numbers compare with `value_num`, text with
/// `value_text`, booleans with both (stored as "true"/1).
fn sql_value(v: &Json) -> (&'static str, Sql) {
    match v {
        Json::Number(n) => ("value_num", Sql::Real(n.as_f64().unwrap_or(0.0))),
        Json::Bool(b) => ("value_num", Sql::Real(f64::from(u8::from(*b)))),
        Json::String(s) => ("value_text", Sql::Text(s.clone().into())),
        other => ("value_text", Sql::Text(other.to_string().into())),
    }
}

fn field_sql(f: &FieldCondition, mode: Mode, p: &mut Predicate) -> Result<(), SegmentError> {
    let column = COLUMNS.iter().find(|c| **c == f.name).copied();
    // One operator per condition (the validator insists); several are ANDed.
    let mut parts: Vec<Predicate> = Vec::new();
    let mut part = |sql: String, params: Vec<Sql>| parts.push(Predicate { sql, params });
    let on = |value_col: &str, cmp: &str| match column {
        Some(c) => format!("c.{c} {cmp}"),
        None => member(
            mode,
            "contact_fields",
            &format!("field = ? AND {value_col} {cmp}"),
        ),
    };
    let name = || match column {
        Some(_) => Vec::new(),
        None => vec![Sql::Text(f.name.clone().into())],
    };
    let with = |mut a: Vec<Sql>, b: Sql| {
        a.push(b);
        a
    };
    if let Some(v) = &f.eq {
        let (col, val) = sql_value(v);
        part(on(col, "= ?"), with(name(), val));
    }
    if let Some(v) = &f.ne {
        let (col, val) = sql_value(v);
        part(
            format!("NOT ({})", on(col, "IS NOT DISTINCT FROM ?")),
            with(name(), val),
        );
    }
    for (op, v) in [
        ("> ?", f.gt),
        (">= ?", f.gte),
        ("< ?", f.lt),
        ("<= ?", f.lte),
    ] {
        if let Some(v) = v {
            part(on("value_num", op), with(name(), Sql::Real(v)));
        }
    }
    if let Some(values) = &f.one_of {
        if values.is_empty() {
            part("(1 = 0)".into(), Vec::new());
        } else {
            // Text and numbers may be mixed in one list: each goes to its column.
            let mut alts = Vec::new();
            let mut params = Vec::new();
            for v in values {
                let (col, val) = sql_value(v);
                alts.push(match column {
                    Some(c) => format!("c.{c} = ?"),
                    None => format!("{col} = ?"),
                });
                params.push(val);
            }
            match column {
                Some(_) => part(format!("({})", alts.join(" OR ")), params),
                None => part(
                    member(
                        mode,
                        "contact_fields",
                        &format!("field = ? AND ({})", alts.join(" OR ")),
                    ),
                    name().into_iter().chain(params).collect(),
                ),
            }
        }
    }
    if let Some(needle) = &f.contains {
        // Case-blind on both backends (SQLite's LIKE is, PostgreSQL's is not).
        let cmp = "LIKE lower(?) ESCAPE '\\'";
        part(
            match column {
                Some(c) => format!("lower(c.{c}) {cmp}"),
                None => member(
                    mode,
                    "contact_fields",
                    &format!("field = ? AND lower(value_text) {cmp}"),
                ),
            },
            with(
                name(),
                Sql::Text((format!("%{}%", escape_like(needle))).into()),
            ),
        );
    }
    if let Some(exists) = f.exists {
        // A stored value is text or a number; each kind has its own (partial)
        // index, so "has the field" asks both.
        let (sql, params) = match column {
            Some(c) => (format!("c.{c} IS NOT NULL"), Vec::new()),
            None => (
                format!(
                    "({} OR {})",
                    member(
                        mode,
                        "contact_fields",
                        "field = ? AND value_text IS NOT NULL"
                    ),
                    member(
                        mode,
                        "contact_fields",
                        "field = ? AND value_num IS NOT NULL"
                    )
                ),
                name().into_iter().chain(name()).collect(),
            ),
        };
        let sql = if exists { sql } else { format!("NOT ({sql})") };
        part(sql, params);
    }
    if parts.is_empty() {
        return Err(SegmentError::Invalid(format!(
            "the condition on field `{}` has no operator",
            f.name
        )));
    }
    p.sql.push('(');
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            p.sql.push_str(" AND ");
        }
        p.sql.push_str(&part.sql);
        p.params.extend(part.params);
    }
    p.sql.push(')');
    Ok(())
}

/// `LIKE` is case-insensitive for ASCII in SQLite, as `contains` means to be; its
/// wildcards in the needle are escaped.
fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// An activity condition's filter (type, `where:`, window) as SQL over
/// `activities`, with its parameters.
fn activity_filter(a: &ActivityCondition, now: UnixMs) -> Result<(String, Vec<Sql>), SegmentError> {
    let mut cond = String::from("type = ?");
    let mut params = vec![Sql::Text(a.kind.clone().into())];
    for (key, value) in &a.filter {
        let (_, v) = sql_value(value);
        if SUBJECT_KEYS.contains(&key.as_str()) {
            cond.push_str(" AND subject = ?");
        } else {
            cond.push_str(" AND json_extract(data, ?) = ?");
            params.push(Sql::Text(
                (format!("$.\"{}\"", key.replace('"', ""))).into(),
            ));
        }
        params.push(v);
    }
    if let Some(within) = &a.within {
        let ms = within.millis().map_err(SegmentError::Invalid)?;
        cond.push_str(" AND occurred_at >= ?");
        params.push(Sql::Int(
            now.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX)),
        ));
    }
    Ok((cond, params))
}

/// An email condition as the activity condition it is (`email_opened`, …).
fn email_activity(e: &EmailCondition) -> ActivityCondition {
    let kind = match e.event {
        EmailEvent::Sent => "email_sent",
        EmailEvent::Opened => "email_opened",
        EmailEvent::Clicked => "email_clicked",
        EmailEvent::Bounced => "email_bounced",
        EmailEvent::Unsubscribed => "email_unsubscribed",
    };
    let mut filter = BTreeMap::new();
    if let Some(t) = &e.template {
        filter.insert("template".to_string(), Json::String(t.to_string()));
    }
    ActivityCondition {
        kind: kind.to_string(),
        filter,
        at_least: e.at_least,
        at_most: e.at_most,
        within: e.within.clone(),
    }
}

fn activity_sql(
    a: &ActivityCondition,
    scope: &Scope<'_>,
    p: &mut Predicate,
) -> Result<(), SegmentError> {
    let (cond, params) = activity_filter(a, scope.now)?;
    let least = a
        .at_least
        .unwrap_or(if a.at_most.is_some() { 0 } else { 1 });
    let mut parts = Vec::new();
    if least > 0 {
        parts.push(at_least(scope.mode, "activities", &cond, least));
    }
    if let Some(most) = a.at_most {
        parts.push(format!(
            "NOT ({})",
            at_least(scope.mode, "activities", &cond, most.saturating_add(1))
        ));
    }
    if parts.is_empty() {
        p.sql.push('1');
        return Ok(());
    }
    p.sql.push_str(&format!("({})", parts.join(" AND ")));
    for _ in 0..parts.len() {
        p.params.extend(params.iter().cloned());
    }
    Ok(())
}

/// How many contacts meet the condition.
pub fn count(conn: Db<'_>, cond: &Condition, scope: &Scope<'_>) -> Result<u64, CrmError> {
    if scope.mode == Mode::Set
        && let Condition::All(items) = cond
        && let Some(d) = items.iter().position(selective)
    {
        return count_driven(conn, items, d, scope);
    }
    let pred = compile(cond, scope).map_err(segment_error)?;
    let sql = format!("SELECT count(*) FROM contacts c WHERE {}", pred.sql);
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(&crate::store::db::refs(&pred.params), |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Counts an `all` driven by a recent-activity child: the child's activities are
/// read from the covering index and counted per contact in a hash map (SQLite's
/// `GROUP BY … HAVING` sorted them into a temporary B-tree, most of the time of a
/// count over a large store), and only the contacts that pass are probed for the
/// other children, in one statement.
fn count_driven(
    conn: Db<'_>,
    items: &[Condition],
    driver: usize,
    scope: &Scope<'_>,
) -> Result<u64, CrmError> {
    let activity = match &items[driver] {
        Condition::Activity(a) => a.clone(),
        Condition::Email(e) => email_activity(e),
        _ => {
            return Err(CrmError::Invalid(
                "a segment's driver is an activity".into(),
            ));
        }
    };
    let (cond, params) = activity_filter(&activity, scope.now)?;
    let least = activity.at_least.unwrap_or(1);
    let mut counts: std::collections::HashMap<i64, u32> = std::collections::HashMap::new();
    {
        let mut stmt =
            conn.prepare_cached(&format!("SELECT contact_id FROM activities WHERE {cond}"))?;
        let mut rows = stmt.query(&crate::store::db::refs(&params))?;
        while let Some(r) = rows.next()? {
            *counts.entry(r.get(0)?).or_insert(0) += 1;
        }
    }
    let mut ids: Vec<i64> = counts
        .into_iter()
        .filter(|(_, n)| *n >= least && activity.at_most.is_none_or(|m| *n <= m))
        .map(|(id, _)| id)
        .collect();
    // In id order, the probes walk the (contact_id, …) keys front to back.
    ids.sort_unstable();
    if ids.is_empty() {
        return Ok(0);
    }
    let rest: Vec<Condition> = items
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != driver)
        .map(|(_, c)| c.clone())
        .collect();
    let one = Scope {
        mode: Mode::One,
        ..*scope
    };
    let pred = compile(&Condition::All(rest), &one)?;
    // When the other children look only at other tables, the contact rows are not
    // read at all: the candidate ids stand in for `c`.
    let sql = if pred.sql.replace("c.id", "").contains("c.") {
        format!(
            "SELECT count(*) FROM contacts c WHERE c.id IN ({}) AND {}",
            crate::store::dialect::json_ids(conn),
            pred.sql
        )
    } else {
        format!(
            "SELECT count(*) FROM ({}) c WHERE {}",
            crate::store::dialect::json_ids(conn),
            pred.sql
        )
    };
    let list = serde_json::to_string(&ids).map_err(|e| CrmError::Invalid(e.to_string()))?;
    let mut all = vec![Sql::Text(list.into())];
    all.extend(pred.params);
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(&crate::store::db::refs(&all), |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// One page of members (ids above `after`, ascending), for listings and bulk
/// operations that walk a segment without holding it.
pub fn member_ids(
    conn: Db<'_>,
    cond: &Condition,
    scope: &Scope<'_>,
    after: i64,
    limit: usize,
) -> Result<Vec<i64>, CrmError> {
    let pred = compile(cond, scope).map_err(segment_error)?;
    let sql = format!(
        "SELECT c.id FROM contacts c WHERE c.id > ? AND ({}) ORDER BY c.id LIMIT ?",
        pred.sql
    );
    let mut params = vec![Sql::Int(after)];
    params.extend(pred.params);
    params.push(Sql::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(&crate::store::db::refs(&params), |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether one contact meets the condition.
pub fn matches(
    conn: Db<'_>,
    contact_id: i64,
    cond: &Condition,
    scope: &Scope<'_>,
) -> Result<bool, CrmError> {
    let one = Scope {
        mode: Mode::One,
        ..*scope
    };
    let pred = compile(cond, &one).map_err(segment_error)?;
    let sql = format!("SELECT 1 FROM contacts c WHERE c.id = ? AND ({})", pred.sql);
    let mut params = vec![Sql::Int(contact_id)];
    params.extend(pred.params);
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(&crate::store::db::refs(&params), |_| Ok(()))
        .optional()?
        .is_some())
}

/// Why a contact is or is not in a segment: every node of the condition with
/// whether it held for the contact.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Explained {
    pub label: String,
    pub matched: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Explained>,
}

/// Evaluates every node of the condition for one contact.
pub fn explain(
    conn: Db<'_>,
    contact_id: i64,
    cond: &Condition,
    scope: &Scope<'_>,
) -> Result<Explained, CrmError> {
    let matched = matches(conn, contact_id, cond, scope)?;
    let children = match cond {
        Condition::All(items) | Condition::Any(items) => items
            .iter()
            .map(|c| explain(conn, contact_id, c, scope))
            .collect::<Result<_, _>>()?,
        Condition::Not(inner) => vec![explain(conn, contact_id, inner, scope)?],
        Condition::Segment(id) => match scope.segments.get(id.as_str()) {
            Some(def) => vec![explain(conn, contact_id, &def.matches, scope)?],
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    Ok(Explained {
        label: label(cond),
        matched,
        children,
    })
}

/// A condition node in words, as `segments explain` prints it.
pub fn label(cond: &Condition) -> String {
    match cond {
        Condition::All(_) => "all of".into(),
        Condition::Any(_) => "any of".into(),
        Condition::Not(_) => "not".into(),
        Condition::Segment(id) => format!("segment {id}"),
        Condition::Tag(t) => format!("tag {t}"),
        Condition::List(l) => format!("list {l}"),
        Condition::Status(s) => format!("status {}", name_of(s)),
        Condition::Stage(s) => format!("stage {}", name_of(s)),
        Condition::Score(r) => format!("score {}", compact(r)),
        Condition::Field(f) => format!("field {}", compact(f)),
        Condition::Activity(a) => format!("activity {}", compact(a)),
        Condition::Email(e) => format!("email {}", compact(e)),
    }
}

/// A condition's options as one line of JSON, unset ones left out.
fn compact<T: serde::Serialize>(v: &T) -> String {
    let mut v = serde_json::to_value(v).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, v| !v.is_null() && v != &serde_json::json!({}));
    }
    v.to_string()
}

fn segment_error(e: SegmentError) -> CrmError {
    CrmError::Segment(e)
}

/// A segment's scope with the lead score from `scoring` (whose `segments` are the
/// ones `segment:` conditions refer to), built for `mode`.
fn scoped<T>(
    conn: Db<'_>,
    scoring: &super::scoring::Scoring,
    now: UnixMs,
    mode: Mode,
    f: impl FnOnce(&Scope<'_>) -> Result<T, CrmError>,
) -> Result<T, CrmError> {
    let score = scoring.score_sql(conn, now, mode)?;
    f(&Scope {
        segments: &scoring.segments,
        score: Some(&score),
        now,
        mode,
    })
}

/// A segment's predicate over `contacts c`, for statements that select its
/// members in bulk (a campaign freezing its recipients).
pub fn segment_predicate(
    conn: Db<'_>,
    scoring: &super::scoring::Scoring,
    def: &SegmentDef,
    now: UnixMs,
) -> Result<Predicate, CrmError> {
    scoped(conn, scoring, now, Mode::Set, |s| {
        compile(&def.matches, s).map_err(segment_error)
    })
}

/// How many contacts are in a segment now.
pub fn count_segment(
    conn: Db<'_>,
    scoring: &super::scoring::Scoring,
    def: &SegmentDef,
    now: UnixMs,
) -> Result<u64, CrmError> {
    scoped(conn, scoring, now, Mode::Set, |s| {
        count(conn, &def.matches, s)
    })
}

/// One page of a segment's members (ids above `after`, ascending).
pub fn segment_members(
    conn: Db<'_>,
    scoring: &super::scoring::Scoring,
    def: &SegmentDef,
    now: UnixMs,
    after: i64,
    limit: usize,
) -> Result<Vec<i64>, CrmError> {
    scoped(conn, scoring, now, Mode::Set, |s| {
        member_ids(conn, &def.matches, s, after, limit)
    })
}

/// Which of a segment's conditions hold for one contact.
pub fn explain_segment(
    conn: Db<'_>,
    scoring: &super::scoring::Scoring,
    def: &SegmentDef,
    contact_id: i64,
    now: UnixMs,
) -> Result<Explained, CrmError> {
    scoped(conn, scoring, now, Mode::One, |s| {
        explain(conn, contact_id, &def.matches, s)
    })
}
