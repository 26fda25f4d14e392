//! Contacts inside a write transaction: upsert, the view expressions see, tags,
//! typed custom fields, score adjustments, stage, lists and activities.

use std::collections::BTreeMap;

use crate::store::db::{Db, OptionalRow, params};
use serde_json::{Value as Json, json};

use super::scoring::Scoring;
use super::{CrmError, CrmEvent};
use crate::store::ops::{domain_of, normalize_email, upsert_contact};
use crate::store::{NewActivity, NewContact, UnixMs};

/// A contact to create or update, with what comes along with it.
#[derive(Debug, Clone, Default)]
pub struct Upsert {
    pub contact: NewContact,
    pub fields: BTreeMap<String, Json>,
    pub tags: Vec<String>,
    pub lists: Vec<String>,
}

/// Creates or updates a contact by normalized email. Returns its id and the events.
pub fn upsert(conn: Db<'_>, u: &Upsert, at: UnixMs) -> Result<(i64, Vec<CrmEvent>), CrmError> {
    let email = normalize_email(&u.contact.email);
    if !crate::validate::values::is_email(&email) {
        return Err(CrmError::BadEmail(u.contact.email.clone()));
    }
    let uid = crate::uid::new(at);
    let (id, created) = upsert_contact(conn, &u.contact, &email, &uid, at)?;
    let mut events = Vec::new();
    if created {
        let source = u
            .contact
            .source_component
            .clone()
            .or_else(|| u.contact.source_site.clone())
            .or_else(|| u.contact.source_workflow.clone())
            .or_else(|| u.contact.source_import.clone());
        events.push(CrmEvent::ContactCreated {
            contact_id: id,
            source,
        });
    }
    if created {
        // Nothing to compare with or to touch: the row was written at `at`.
        events.extend(insert_fields(conn, id, &u.fields)?);
    } else {
        events.extend(set_fields(conn, id, &u.fields, at)?);
    }
    events.extend(add_tags(conn, id, &u.tags, at)?);
    for list in &u.lists {
        if add_to_list(conn, id, list, at)? {
            events.push(CrmEvent::ListJoined {
                contact_id: id,
                list: list.clone(),
            });
        }
    }
    Ok((id, events))
}

/// Creates a contact the caller knows is new (its `email`, normalized, was
/// looked up in this transaction), with its fields, tags and lists; returns its id.
/// Plain single-row statements, for bulk writers: unlike [`upsert`]'s
/// `ON CONFLICT … RETURNING`, they let SQLite skip the statement journal, which
/// inside a long transaction costs a copy of every page touched. No events are
/// built: the caller knows what they are (created; every field set; every tag,
/// which must be distinct).
pub(crate) fn insert_new(
    conn: Db<'_>,
    c: &NewContact,
    fields: &BTreeMap<String, Json>,
    tags: &[String],
    lists: &[String],
    at: UnixMs,
) -> Result<i64, CrmError> {
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO contacts (uid, email, name, phone, company_domain, source_site, \
             source_component, source_workflow, source_import, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) RETURNING id",
        )?
        .query_row(
            params![
                crate::uid::new(at),
                c.email,
                c.name,
                c.phone,
                domain_of(&c.email),
                c.source_site,
                c.source_component,
                c.source_workflow,
                c.source_import,
                at
            ],
            |r| r.get(0),
        )?;
    put_new_fields(conn, id, fields)?;
    let mut tag = conn.prepare_cached(
        "INSERT INTO contact_tags (contact_id, tag, added_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT DO NOTHING",
    )?;
    for t in tags {
        tag.execute(params![id, t, at])?;
    }
    for list in lists {
        add_to_list(conn, id, list, at)?;
    }
    Ok(id)
}

/// The id of the contact with this email, if any.
pub fn id_by_email(conn: Db<'_>, email: &str) -> Result<Option<i64>, CrmError> {
    let mut stmt = conn.prepare_cached("SELECT id FROM contacts WHERE email = ?1")?;
    Ok(stmt
        .query_row(params![normalize_email(email)], |r| r.get(0))
        .optional()?)
}

/// The contact a user named: by email, public id, or row id.
pub fn resolve(conn: Db<'_>, key: &str) -> Result<i64, CrmError> {
    let key = key.trim();
    let found = if key.contains('@') {
        id_by_email(conn, key)?
    } else {
        let mut stmt = conn.prepare_cached("SELECT id FROM contacts WHERE uid = ?1 OR id = ?2")?;
        stmt.query_row(params![key, key.parse::<i64>().unwrap_or(-1)], |r| r.get(0))
            .optional()?
    };
    found.ok_or_else(|| CrmError::NotFound(key.to_string()))
}

/// The contact as expressions see it: `contact.email`, `.first_name`, `.tags`,
/// `.fields.<name>`, `.score`, `.stage`, `.status`, `.lists`.
pub fn view(conn: Db<'_>, id: i64, scoring: &Scoring, now: UnixMs) -> Result<Json, CrmError> {
    let mut stmt = conn.prepare_cached(
        "SELECT uid, email, name, phone, status, stage, source_site, source_component, \
         source_workflow, created_at, last_activity, company_domain, source_import \
         FROM contacts WHERE id = ?1",
    )?;
    let row = stmt
        .query_row(params![id], |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<String>(1)?,
                r.get::<Option<String>>(2)?,
                r.get::<Option<String>>(3)?,
                r.get::<String>(4)?,
                r.get::<Option<String>>(5)?,
                [
                    r.get::<Option<String>>(6)?,
                    r.get::<Option<String>>(7)?,
                    r.get::<Option<String>>(8)?,
                ],
                r.get::<i64>(9)?,
                r.get::<Option<i64>>(10)?,
                r.get::<Option<String>>(11)?,
                r.get::<Option<String>>(12)?,
            ))
        })
        .optional()?
        .ok_or(CrmError::NoContact(id))?;
    let (
        uid,
        email,
        name,
        phone,
        status,
        stage,
        sources,
        created_at,
        last_activity,
        domain,
        import,
    ) = row;
    let (first, last) = split_name(name.as_deref());
    let source = sources.iter().rev().flatten().next().cloned().or(import);
    // Missing values are left out rather than null, so that templates'
    // `default("there")` applies to them.
    let mut view = json!({
        "id": uid,
        "email": email,
        "name": name,
        "first_name": first,
        "last_name": last,
        "phone": phone,
        "status": status,
        "stage": stage,
        "source": source,
        "company_domain": domain,
        "created_at": created_at,
        "last_activity": last_activity,
        "tags": tags(conn, id)?,
        "fields": fields(conn, id)?,
        "lists": lists(conn, id)?,
        // Rounded: a decayed score is a sum of exponentials (19.999999999999996).
        "score": super::scoring::shown(scoring.score(conn, id, now)?),
    });
    // `stage` stays, null when unset, so that `contact.stage is none` holds for a
    // contact without one.
    if let Some(map) = view.as_object_mut() {
        map.retain(|k, v| !v.is_null() || k == "stage");
    }
    Ok(view)
}

fn split_name(name: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return (None, None);
    };
    match name.split_once(' ') {
        Some((first, rest)) => (Some(first.to_string()), Some(rest.trim().to_string())),
        None => (Some(name.to_string()), None),
    }
}

/// The contact's tags, in the order added.
pub fn tags(conn: Db<'_>, id: i64) -> Result<Vec<String>, CrmError> {
    let mut stmt = conn.prepare_cached(
        "SELECT tag FROM contact_tags WHERE contact_id = ?1 ORDER BY added_at, tag",
    )?;
    let rows = stmt.query_map(params![id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn lists(conn: Db<'_>, id: i64) -> Result<Vec<String>, CrmError> {
    let mut stmt = conn.prepare_cached(
        "SELECT list_id FROM list_members WHERE contact_id = ?1 ORDER BY list_id",
    )?;
    let rows = stmt.query_map(params![id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Custom fields as JSON: text, numbers and booleans come back as they went in.
pub fn fields(conn: Db<'_>, id: i64) -> Result<serde_json::Map<String, Json>, CrmError> {
    let mut stmt = conn.prepare_cached(
        "SELECT field, value_text, value_num FROM contact_fields WHERE contact_id = ?1",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        Ok((
            r.get::<String>(0)?,
            r.get::<Option<String>>(1)?,
            r.get::<Option<f64>>(2)?,
        ))
    })?;
    let mut out = serde_json::Map::new();
    for row in rows {
        let (field, text, num) = row?;
        out.insert(field, from_columns(text, num));
    }
    Ok(out)
}

/// How a JSON value is stored: text in `value_text`, numbers in `value_num`, booleans
/// in both (so they read back as booleans and compare as 0/1).
pub(crate) fn to_columns(v: &Json) -> (Option<String>, Option<f64>) {
    match v {
        Json::String(s) => (Some(s.clone()), None),
        Json::Number(n) => (None, n.as_f64()),
        Json::Bool(b) => (Some(b.to_string()), Some(f64::from(u8::from(*b)))),
        Json::Null => (None, None),
        other => (Some(other.to_string()), None),
    }
}

pub(crate) fn from_columns(text: Option<String>, num: Option<f64>) -> Json {
    match (text, num) {
        (Some(t), Some(_)) if t == "true" || t == "false" => Json::Bool(t == "true"),
        (Some(t), _) => Json::String(t),
        (None, Some(n)) => {
            if n.fract() == 0.0 && n.abs() < 9e15 {
                json!(n as i64)
            } else {
                json!(n)
            }
        }
        (None, None) => Json::Null,
    }
}

/// The fields of a contact created just now: each one a change from nothing.
fn insert_fields(
    conn: Db<'_>,
    id: i64,
    values: &BTreeMap<String, Json>,
) -> Result<Vec<CrmEvent>, CrmError> {
    put_new_fields(conn, id, values)?;
    Ok(values
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(field, value)| CrmEvent::FieldChanged {
            contact_id: id,
            field: field.clone(),
            from: Json::Null,
            to: value.clone(),
        })
        .collect())
}

/// Writes the fields of a contact that has none yet (nulls are skipped).
fn put_new_fields(conn: Db<'_>, id: i64, values: &BTreeMap<String, Json>) -> Result<(), CrmError> {
    let mut put = conn.prepare_cached(
        "INSERT INTO contact_fields (contact_id, field, value_text, value_num) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (field, value) in values.iter().filter(|(_, v)| !v.is_null()) {
        let (text, num) = to_columns(value);
        put.execute(params![id, field, text, num])?;
    }
    Ok(())
}

/// Sets custom fields (null removes one). Returns a `FieldChanged` per real change.
///
/// The contact's fields are read in one statement (a contact has few), and each
/// change is a plain single-row INSERT, UPDATE or DELETE rather than an upsert:
/// inside a long transaction (an import), SQLite copies every page an upsert
/// touches into a statement journal first.
pub fn set_fields(
    conn: Db<'_>,
    id: i64,
    values: &BTreeMap<String, Json>,
    at: UnixMs,
) -> Result<Vec<CrmEvent>, CrmError> {
    let mut events = Vec::new();
    if values.is_empty() {
        return Ok(events);
    }
    let current: BTreeMap<String, Json> = {
        let mut get = conn.prepare_cached(
            "SELECT field, value_text, value_num FROM contact_fields WHERE contact_id = ?1",
        )?;
        let rows = get.query_map(params![id], |r| {
            Ok((r.get::<String>(0)?, from_columns(r.get(1)?, r.get(2)?)))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO contact_fields (contact_id, field, value_text, value_num) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut update = conn.prepare_cached(
        "UPDATE contact_fields SET value_text = ?3, value_num = ?4 WHERE contact_id = ?1 AND field = ?2",
    )?;
    let mut del =
        conn.prepare_cached("DELETE FROM contact_fields WHERE contact_id = ?1 AND field = ?2")?;
    for (field, value) in values {
        let before = current.get(field).cloned().unwrap_or(Json::Null);
        if &before == value {
            continue;
        }
        if value.is_null() {
            del.execute(params![id, field])?;
        } else {
            let (text, num) = to_columns(value);
            let stmt = if before.is_null() {
                &mut insert
            } else {
                &mut update
            };
            stmt.execute(params![id, field, text, num])?;
        }
        events.push(CrmEvent::FieldChanged {
            contact_id: id,
            field: field.clone(),
            from: before,
            to: value.clone(),
        });
    }
    // Only a real change touches the contact: an unchanged import row writes
    // nothing.
    if !events.is_empty() {
        touch(conn, id, at)?;
    }
    Ok(events)
}

fn touch(conn: Db<'_>, id: i64, at: UnixMs) -> Result<(), CrmError> {
    conn.prepare_cached("UPDATE contacts SET updated_at = max(updated_at, ?2) WHERE id = ?1")?
        .execute(params![id, at])?;
    Ok(())
}

/// Adds tags; a `TagAdded` for each tag the contact did not have.
pub fn add_tags(
    conn: Db<'_>,
    id: i64,
    tags: &[String],
    at: UnixMs,
) -> Result<Vec<CrmEvent>, CrmError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO contact_tags (contact_id, tag, added_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT DO NOTHING",
    )?;
    let mut events = Vec::new();
    for tag in tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if stmt.execute(params![id, tag, at])? > 0 {
            events.push(CrmEvent::TagAdded {
                contact_id: id,
                tag: tag.to_string(),
            });
        }
    }
    Ok(events)
}

/// Removes tags; returns how many the contact had.
pub fn remove_tags(conn: Db<'_>, id: i64, tags: &[String]) -> Result<usize, CrmError> {
    let mut stmt =
        conn.prepare_cached("DELETE FROM contact_tags WHERE contact_id = ?1 AND tag = ?2")?;
    let mut n = 0;
    for tag in tags {
        n += stmt.execute(params![id, tag.trim()])?;
    }
    Ok(n)
}

/// Records a score adjustment; returns the score and a `ScoreCrossed` per
/// threshold crossed.
pub fn adjust_score(
    conn: Db<'_>,
    id: i64,
    points: f64,
    reason: Option<&str>,
    execution_id: Option<i64>,
    at: UnixMs,
    scoring: &Scoring,
) -> Result<(f64, Vec<CrmEvent>), CrmError> {
    conn.prepare_cached(
        "INSERT INTO score_adjustments (contact_id, points, reason, execution_id, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, points, reason, execution_id, at])?;
    conn.prepare_cached("UPDATE contacts SET adjustments = adjustments + ?2 WHERE id = ?1")?
        .execute(params![id, points])?;
    let events = scoring.observe(conn, id, at)?;
    Ok((scoring.score(conn, id, at)?, events))
}

/// Changes a contact's name, phone or status (`None` leaves one as it is).
pub fn edit(
    conn: Db<'_>,
    id: i64,
    name: Option<&str>,
    phone: Option<&str>,
    status: Option<&str>,
    at: UnixMs,
) -> Result<(), CrmError> {
    let n = conn
        .prepare_cached(
            "UPDATE contacts SET name = coalesce(?2, name), phone = coalesce(?3, phone), \
             status = coalesce(?4, status), updated_at = max(updated_at, ?5) WHERE id = ?1",
        )?
        .execute(params![id, name, phone, status, at])?;
    if n == 0 {
        return Err(CrmError::NoContact(id));
    }
    Ok(())
}

/// Sets the lifecycle stage; a `StageChanged` when it changed.
pub fn set_stage(
    conn: Db<'_>,
    id: i64,
    stage: &str,
    at: UnixMs,
) -> Result<Vec<CrmEvent>, CrmError> {
    let before: Option<String> = conn
        .prepare_cached("SELECT stage FROM contacts WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()?
        .ok_or(CrmError::NoContact(id))?;
    if before.as_deref() == Some(stage) {
        return Ok(Vec::new());
    }
    conn.prepare_cached(
        "UPDATE contacts SET stage = ?2, updated_at = max(updated_at, ?3) WHERE id = ?1",
    )?
    .execute(params![id, stage, at])?;
    Ok(vec![CrmEvent::StageChanged {
        contact_id: id,
        from: before,
        to: stage.to_string(),
    }])
}

/// Adds the contact to a static list; false if it was a member already.
pub fn add_to_list(conn: Db<'_>, id: i64, list: &str, at: UnixMs) -> Result<bool, CrmError> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO list_members (list_id, contact_id, added_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![list, id, at])?
        > 0)
}

/// Removes the contact from a static list; false if it was not a member.
pub fn remove_from_list(conn: Db<'_>, id: i64, list: &str) -> Result<bool, CrmError> {
    Ok(conn
        .prepare_cached("DELETE FROM list_members WHERE list_id = ?1 AND contact_id = ?2")?
        .execute(params![list, id])?
        > 0)
}

/// Appends an activity to the timeline and scores it; an upward threshold
/// crossing fires here, when the activity arrives.
pub fn add_activity(
    conn: Db<'_>,
    a: &NewActivity,
    scoring: &Scoring,
) -> Result<(i64, Vec<CrmEvent>), CrmError> {
    let id = crate::store::ops::add_activity(conn, a)?;
    let points = scoring.accrue(
        conn,
        a.contact_id,
        &a.kind,
        a.subject.as_deref(),
        &a.data,
        a.occurred_at,
    )?;
    let events = if points != 0.0 {
        scoring.observe(conn, a.contact_id, a.occurred_at)?
    } else {
        Vec::new()
    };
    Ok((id, events))
}

/// The company domain of an email, as the CRM groups contacts.
pub fn company_domain(email: &str) -> Option<String> {
    domain_of(&normalize_email(email))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_values_round_trip_through_their_columns() {
        for v in [
            json!("Acme"),
            json!(42),
            json!(2.5),
            json!(true),
            json!(false),
        ] {
            let (t, n) = to_columns(&v);
            assert_eq!(from_columns(t, n), v);
        }
    }

    #[test]
    fn names_split_into_first_and_last() {
        assert_eq!(
            split_name(Some("Ada King Lovelace")),
            (Some("Ada".into()), Some("King Lovelace".into()))
        );
        assert_eq!(split_name(Some("  ")), (None, None));
    }
}
