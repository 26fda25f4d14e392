//! `funnel import`: the seed's JSON workflow shape (a trigger and a list of actions,
//! each with a `delay` in minutes) becomes a YAML workflow file.
//!
//! ```json
//! {"name": "Contact Form Follow-up", "site_id": "demo",
//!  "trigger": {"type": "form_submission", "component_id": "contact-form", "conditions": []},
//!  "actions": [{"type": "send_email", "template_id": "welcome", "delay": 0},
//!              {"type": "add_to_crm", "list_id": "prospects", "delay": 60}]}
//! ```

use serde_json::{Map, Value as Json, json};

/// Why an import was refused: where in the JSON, and what was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct ImportError {
    pub at: String,
    pub message: String,
}

fn err(at: impl Into<String>, message: impl Into<String>) -> ImportError {
    ImportError {
        at: at.into(),
        message: message.into(),
    }
}

fn text<'a>(v: &'a Json, key: &str, at: &str) -> Result<&'a str, ImportError> {
    v.get(key)
        .and_then(Json::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| err(format!("{at}.{key}"), "a non-empty string is required"))
}

/// A workflow id from a name: lowercase words joined by `-`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Converts the seed's JSON to a workflow document (as JSON, in funnel's shape).
/// `default_site` names the site of a form trigger that has no `site_id`.
pub fn convert(seed: &Json, default_site: Option<&str>) -> Result<Json, ImportError> {
    let name = text(seed, "name", "$")?;
    let trigger = seed
        .get("trigger")
        .filter(|t| t.is_object())
        .ok_or_else(|| err("$.trigger", "an object with `type` is required"))?;
    let kind = text(trigger, "type", "$.trigger")?;
    let mut t = Map::new();
    match kind {
        "form_submission" => {
            let site = seed
                .get("site_id")
                .and_then(Json::as_str)
                .or(default_site)
                .ok_or_else(|| err("$.site_id", "a form trigger needs the site (give `--site`)"))?;
            t.insert("type".into(), json!("form_submission"));
            t.insert("site".into(), json!(site));
            t.insert(
                "component".into(),
                json!(text(trigger, "component_id", "$.trigger")?),
            );
        }
        "custom_event" | "event" => {
            t.insert("type".into(), json!("custom_event"));
            t.insert("event".into(), json!(text(trigger, "event", "$.trigger")?));
        }
        "tag_added" => {
            t.insert("type".into(), json!("tag_added"));
            t.insert("tag".into(), json!(text(trigger, "tag", "$.trigger")?));
        }
        "contact_created" => {
            t.insert("type".into(), json!("contact_created"));
        }
        "schedule" => {
            t.insert("type".into(), json!("schedule"));
            t.insert("cron".into(), json!(text(trigger, "cron", "$.trigger")?));
        }
        other => {
            return Err(err(
                "$.trigger.type",
                format!(
                    "`{other}` is not a trigger funnel imports (form_submission, custom_event, tag_added, contact_created, schedule)"
                ),
            ));
        }
    }
    if let Some(conditions) = trigger.get("conditions").and_then(Json::as_array)
        && !conditions.is_empty()
    {
        let mut out = Vec::new();
        for (i, c) in conditions.iter().enumerate() {
            match c.as_str() {
                Some(expr) => out.push(json!(expr)),
                None => {
                    return Err(err(
                        format!("$.trigger.conditions[{i}]"),
                        "conditions are imported as expressions (strings)",
                    ));
                }
            }
        }
        t.insert("conditions".into(), Json::Array(out));
    }
    let actions = seed
        .get("actions")
        .and_then(Json::as_array)
        .ok_or_else(|| err("$.actions", "a list of actions is required"))?;
    let mut steps = Vec::new();
    let mut has_contact = false;
    for (i, a) in actions.iter().enumerate() {
        let at = format!("$.actions[{i}]");
        let delay = a.get("delay").and_then(Json::as_f64).unwrap_or(0.0);
        if delay < 0.0 {
            return Err(err(format!("{at}.delay"), "a delay is minutes from 0 up"));
        }
        if delay > 0.0 {
            steps.push(json!({
                "id": format!("wait_{}", i + 1),
                "type": "delay",
                "duration": format!("{}m", delay.round() as u64),
            }));
        }
        let kind = text(a, "type", &at)?;
        let id = format!("{}_{}", kind.replace('-', "_"), i + 1);
        let step = match kind {
            "send_email" => {
                json!({"id": id, "type": "send_email", "template": text(a, "template_id", &at)?})
            }
            "add_to_crm" | "add_to_list" => {
                if !has_contact {
                    has_contact = true;
                    steps.push(json!({
                        "id": format!("save_contact_{}", i + 1),
                        "type": "upsert_contact",
                        "email": "{{ trigger.fields.email }}",
                        "name": "{{ trigger.fields.name }}",
                    }));
                }
                match a.get("list_id").and_then(Json::as_str) {
                    Some(list) => json!({"id": id, "type": "add_to_list", "list": list}),
                    None => continue,
                }
            }
            "add_tag" => json!({"id": id, "type": "add_tag", "tags": [text(a, "tag", &at)?]}),
            "webhook" | "http" => json!({
                "id": id, "type": "http", "method": "POST", "url": text(a, "url", &at)?,
                "body": {"trigger": "{{ trigger }}"},
            }),
            "notify_slack" | "slack" => json!({
                "id": id, "type": "slack",
                "webhook_url": a.get("webhook_url").and_then(Json::as_str).unwrap_or("${SLACK_WEBHOOK_URL}"),
                "text": a.get("text").and_then(Json::as_str).unwrap_or("New activity in {{ workflow.name }}"),
            }),
            other => {
                return Err(err(
                    format!("{at}.type"),
                    format!(
                        "`{other}` is not an action funnel imports (send_email, add_to_crm, add_to_list, add_tag, webhook, notify_slack)"
                    ),
                ));
            }
        };
        steps.push(step);
    }
    if steps.is_empty() {
        return Err(err("$.actions", "no actions to import"));
    }
    let mut doc = Map::new();
    doc.insert("name".into(), json!(name));
    if let Some(d) = seed.get("description").and_then(Json::as_str) {
        doc.insert("description".into(), json!(d));
    }
    if let Some(active) = seed.get("active").and_then(Json::as_bool) {
        doc.insert("active".into(), json!(active));
    }
    doc.insert("trigger".into(), Json::Object(t));
    doc.insert("steps".into(), Json::Array(steps));
    Ok(Json::Object(doc))
}

/// JSON as block-style YAML (see [`crate::yaml::emit`]).
pub fn to_yaml(v: &Json) -> String {
    crate::yaml::emit(v, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_example_becomes_a_workflow() {
        let seed = json!({
            "site_id": "demo",
            "name": "Contact Form Follow-up",
            "trigger": {"type": "form_submission", "component_id": "contact-form", "conditions": []},
            "actions": [
                {"type": "send_email", "template_id": "welcome", "delay": 0},
                {"type": "add_to_crm", "list_id": "prospects", "delay": 90}
            ]
        });
        let doc = convert(&seed, None).expect("converts");
        let ids: Vec<&str> = doc["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter_map(|s| s["id"].as_str())
            .collect();
        assert_eq!(
            ids,
            ["send_email_1", "wait_2", "save_contact_2", "add_to_crm_2"]
        );
        assert_eq!(doc["steps"][1]["duration"], "90m");
        assert_eq!(slug("Contact Form Follow-up"), "contact-form-follow-up");
        let yaml = to_yaml(&doc);
        let parsed = crate::yaml::parse(&yaml);
        assert!(parsed.problems.is_empty(), "{yaml}");
        assert_eq!(parsed.root.map(|r| r.to_json()), Some(doc));
    }

    #[test]
    fn bad_input_says_where() {
        let e = convert(&json!({"name": "x", "trigger": {"type": "form_submission", "component_id": "c"}, "actions": [{"type": "teleport"}]}), Some("demo"))
            .expect_err("unknown action");
        assert_eq!(e.at, "$.actions[0].type");
        let e = convert(
            &json!({"name": "x", "trigger": {"type": "form_submission"}}),
            None,
        )
        .expect_err("no site");
        assert_eq!(e.at, "$.site_id");
    }
}
