//! Attribution: where a contact came from. A touch is one visit or form submission
//! with its site, page, component, UTM parameters and referrer; each contact keeps
//! its earliest touch (`first_touch`) and its latest one that says where the
//! visitor came from (`last_touch`: a form submission, or a page view arriving
//! with UTM parameters or from another site; moving between a site's own pages is
//! not a new source). Conversions (form submissions) are counted per component
//! from the timeline.

use crate::store::db::{Db, OptionalRow, params};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::CrmError;
use crate::store::UnixMs;

/// The UTM parameters funnel keeps, in their usual order.
pub const UTM_KEYS: [&str; 5] = ["source", "medium", "campaign", "term", "content"];

/// One touch, as stored in `contacts.first_touch` / `last_touch` (JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Touch {
    pub at: UnixMs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// `source`, `medium`, `campaign`, `term`, `content`, where given.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub utm: serde_json::Map<String, Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// `form_submit` or `page_view`.
    pub kind: String,
}

impl Touch {
    /// The touch of a form submission's or page event's trigger data (`site`,
    /// `page`, `component`, `utm` as an object or `utm_*` keys, `referrer`).
    pub fn from_event(kind: &str, data: &Json, at: UnixMs) -> Touch {
        let text = |k: &str| {
            data.get(k)
                .and_then(Json::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(500).collect::<String>())
        };
        let mut utm = serde_json::Map::new();
        for key in UTM_KEYS {
            let v = data
                .pointer(&format!("/utm/{key}"))
                .or_else(|| data.get(format!("utm_{key}").as_str()))
                .and_then(Json::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty());
            if let Some(v) = v {
                utm.insert(key.into(), Json::String(v.chars().take(200).collect()));
            }
        }
        Touch {
            at,
            site: text("site"),
            page: text("page"),
            component: text("component"),
            utm,
            referrer: text("referrer"),
            kind: kind.into(),
        }
    }

    /// Whether the touch names where the visitor came from (so it may be a last
    /// touch): a form submission, UTM parameters, or a referrer.
    pub fn has_source(&self) -> bool {
        self.kind == "form_submit" || !self.utm.is_empty() || self.referrer.is_some()
    }

    /// The channel a report groups by: the UTM source, else the referrer's host,
    /// else `direct`.
    pub fn channel(&self) -> String {
        if let Some(s) = self.utm.get("source").and_then(Json::as_str) {
            return s.to_lowercase();
        }
        if let Some(r) = &self.referrer {
            let host = r
                .split("://")
                .nth(1)
                .unwrap_or(r)
                .split(['/', '?', '#'])
                .next()
                .unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            let host = host.split(':').next().unwrap_or(host);
            let host = host.trim_start_matches("www.").to_lowercase();
            if !host.is_empty() {
                return host;
            }
        }
        "direct".into()
    }
}

/// Records a touch on a contact: it becomes the first touch when earlier than the
/// one held, and the last touch when it has a source and is not older than the
/// one held. Touches arrive out of order (a visitor's anonymous views are tied to
/// the contact when they submit a form), hence the comparisons by time.
pub fn record_touch(conn: Db<'_>, contact_id: i64, touch: &Touch) -> Result<(), CrmError> {
    let json = serde_json::to_string(touch).map_err(|e| CrmError::Invalid(e.to_string()))?;
    let mut stmt = conn.prepare_cached(
        "UPDATE contacts SET \
           first_touch = CASE WHEN first_touch IS NULL \
             OR coalesce(CAST(json_extract(first_touch, '$.at') AS BIGINT), 0) > ?3 THEN ?2 ELSE first_touch END, \
           last_touch = CASE WHEN ?4 AND (last_touch IS NULL \
             OR coalesce(CAST(json_extract(last_touch, '$.at') AS BIGINT), 0) <= ?3) THEN ?2 ELSE last_touch END \
         WHERE id = ?1",
    )?;
    stmt.execute(params![contact_id, json, touch.at, touch.has_source()])?;
    Ok(())
}

/// A contact's first and last touch.
pub fn touches(conn: Db<'_>, contact_id: i64) -> Result<(Option<Touch>, Option<Touch>), CrmError> {
    let (first, last): (Option<String>, Option<String>) = conn
        .prepare_cached("SELECT first_touch, last_touch FROM contacts WHERE id = ?1")?
        .query_row(params![contact_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(CrmError::NoContact(contact_id))?;
    let parse = |t: Option<String>| t.and_then(|t| serde_json::from_str::<Touch>(&t).ok());
    Ok((parse(first), parse(last)))
}

/// Form submissions of one component of a site.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversions {
    pub site: Option<String>,
    pub component: Option<String>,
    /// Submissions recorded on timelines.
    pub submissions: u64,
    /// Distinct contacts who submitted.
    pub contacts: u64,
    /// Contacts this component created (their source component).
    pub new_contacts: u64,
}

/// Conversions per component since `since`, most submissions first.
pub fn conversions_by_component(conn: Db<'_>, since: UnixMs) -> Result<Vec<Conversions>, CrmError> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.source, a.subject, count(*), count(DISTINCT a.contact_id), \
           (SELECT count(*) FROM contacts c WHERE c.source_site IS NOT DISTINCT FROM a.source \
              AND c.source_component IS NOT DISTINCT FROM a.subject AND c.created_at >= ?1) \
         FROM activities a WHERE a.type = 'form_submit' AND a.occurred_at >= ?1 \
         GROUP BY a.source, a.subject ORDER BY 3 DESC, 1, 2",
    )?;
    let rows = stmt.query_map(params![since], |r| {
        Ok(Conversions {
            site: r.get(0)?,
            component: r.get(1)?,
            submissions: r.get::<i64>(2)?.max(0) as u64,
            contacts: r.get::<i64>(3)?.max(0) as u64,
            new_contacts: r.get::<i64>(4)?.max(0) as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Contacts per channel of their first or last touch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Channel {
    pub channel: String,
    pub contacts: u64,
}

/// Which touch a channel report reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    FirstTouch,
    LastTouch,
}

/// Contacts created since `since` per channel of their first or last touch, most
/// contacts first. Streams the touches; memory grows with the channels only.
pub fn channels(conn: Db<'_>, model: Model, since: UnixMs) -> Result<Vec<Channel>, CrmError> {
    let column = match model {
        Model::FirstTouch => "first_touch",
        Model::LastTouch => "last_touch",
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {column} FROM contacts WHERE created_at >= ?1 AND {column} IS NOT NULL"
    ))?;
    let mut counts: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut rows = stmt.query(params![since])?;
    while let Some(row) = rows.next()? {
        let text: String = row.get(0)?;
        if let Ok(t) = serde_json::from_str::<Touch>(&text) {
            *counts.entry(t.channel()).or_default() += 1;
        }
    }
    let mut out: Vec<Channel> = counts
        .into_iter()
        .map(|(channel, contacts)| Channel { channel, contacts })
        .collect();
    out.sort_by(|a, b| b.contacts.cmp(&a.contacts).then(a.channel.cmp(&b.channel)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_touch_reads_utm_either_way_and_names_its_channel() {
        let t = Touch::from_event(
            "page_view",
            &json!({"site": "demo", "page": "/", "utm": {"source": "Newsletter", "medium": "email"}}),
            5,
        );
        assert_eq!(t.utm["medium"], "email");
        assert_eq!(t.channel(), "newsletter");
        assert!(t.has_source());
        let t = Touch::from_event("page_view", &json!({"utm_campaign": "spring"}), 5);
        assert_eq!(t.utm["campaign"], "spring");
        assert_eq!(t.channel(), "direct");
        let t = Touch::from_event(
            "page_view",
            &json!({"referrer": "https://user@www.Example.com:8443/a?b"}),
            5,
        );
        assert_eq!(t.channel(), "example.com");
        let internal = Touch::from_event("page_view", &json!({"page": "/pricing"}), 5);
        assert!(!internal.has_source());
        assert!(Touch::from_event("form_submit", &json!({}), 5).has_source());
    }

    #[test]
    fn first_touch_is_the_earliest_and_last_the_latest_with_a_source() {
        let store = crate::store::test_db::TestDb::open();
        let conn = store.db();
        conn.execute_batch(
            "INSERT INTO contacts (id, uid, email, created_at, updated_at) VALUES (1, 'a', 'a@example.org', 0, 0)",
        )
        .expect("insert");
        let touch = |kind: &str, data: Json, at| Touch::from_event(kind, &data, at);
        record_touch(
            conn,
            1,
            &touch("form_submit", json!({"component": "contact-form"}), 100),
        )
        .expect("touch");
        // An earlier anonymous visit from a campaign, tied to the contact later.
        record_touch(
            conn,
            1,
            &touch("page_view", json!({"utm": {"source": "ads"}}), 50),
        )
        .expect("touch");
        // A later internal page view is not a new source.
        record_touch(
            conn,
            1,
            &touch("page_view", json!({"page": "/pricing"}), 200),
        )
        .expect("touch");
        let (first, last) = touches(conn, 1).expect("touches");
        assert_eq!(first.map(|t| t.channel()), Some("ads".to_string()));
        let last = last.expect("last");
        assert_eq!(
            (last.kind.as_str(), last.component.as_deref()),
            ("form_submit", Some("contact-form"))
        );
        assert_eq!(
            channels(conn, Model::FirstTouch, 0).expect("channels"),
            [Channel {
                channel: "ads".into(),
                contacts: 1
            }]
        );
    }
}
