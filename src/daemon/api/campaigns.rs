//! `/api/crm/campaigns`: the seed's campaign API. `POST` proposes a campaign as
//! a file (a broadcast as `campaigns/<id>.yaml`; a drip, the seed's `emails` with
//! their `delay_hours`, as the workflow `workflows/<id>.yaml` that the engine
//! runs), so it is validated, reviewed and live only once an owner approves it.
//! `GET` lists campaigns with their state; `…/{id}/analytics` gives a campaign's
//! numbers per variant, with its rates.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

use super::proposals::propose;
use super::{ApiError, ApiResult, json_body};
use crate::access::Principal;
use crate::daemon::Daemon;
use crate::email::campaign;

/// One email of a drip, as the seed writes it.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DripEmail {
    pub subject: Option<String>,
    pub template_id: String,
    /// Hours after the previous email (after the trigger for the first).
    #[serde(default)]
    pub delay_hours: u32,
}

/// The audience of a broadcast.
#[derive(Debug, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceBody {
    #[serde(default)]
    pub segment: Option<String>,
    #[serde(default)]
    pub list: Option<String>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    /// The file id; derived from the name when absent.
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// `broadcast` (one email to an audience) or `drip` (emails over time,
    /// started by the trigger of `trigger_workflow_id`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A drip's emails, in order.
    #[serde(default)]
    pub emails: Vec<DripEmail>,
    /// A drip starts on the same event as this workflow.
    #[serde(default)]
    pub trigger_workflow_id: Option<String>,
    /// A broadcast's audience, template, subject and time (RFC 3339).
    #[serde(default)]
    pub audience: Option<AudienceBody>,
    #[serde(default)]
    pub template_id: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub scheduled_at: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

fn unprocessable(field: &str, message: impl Into<String>) -> Response {
    ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, message).into_response()
}

/// `POST /api/crm/campaigns`: a proposal adding the campaign's file.
pub async fn create(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let b: CampaignBody = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let id =
        b.id.clone()
            .unwrap_or_else(|| crate::engine::import::slug(&b.name));
    if !crate::validate::values::is_ident(&id) {
        return unprocessable("id", "an id uses lowercase letters, digits, `-` and `_`");
    }
    let (path, doc) = match b.kind.as_str() {
        "broadcast" => {
            let Some(template) = &b.template_id else {
                return unprocessable("template_id", "a broadcast names its email template");
            };
            let mut doc = json!({
                "name": b.name,
                "audience": b.audience,
                "template": template,
            });
            if let Some(s) = &b.subject {
                doc["subject"] = json!(s);
            }
            if let Some(at) = &b.scheduled_at {
                doc["schedule"] = json!(at);
            }
            (format!("campaigns/{id}.yaml"), doc)
        }
        "drip" => match drip_workflow(&d, &b) {
            Ok(doc) => (format!("workflows/{id}.yaml"), doc),
            Err(e) => return e.into_response(),
        },
        _ => return unprocessable("type", "`type` is `broadcast` or `drip`"),
    };
    if d.root.join(&path).is_file() {
        return ApiError::field(
            StatusCode::CONFLICT,
            "id",
            format!("{path} exists; choose another id"),
        )
        .into_response();
    }
    let text = format!(
        "# Proposed through POST /api/crm/campaigns.\n{}",
        crate::yaml::emit(&doc, 0)
    );
    let title = b
        .title
        .clone()
        .unwrap_or_else(|| format!("Add {} campaign {id}", b.kind));
    propose(&d, &who, title, BTreeMap::from([(path, Some(text))])).await
}

/// A drip as a workflow: the trigger of `trigger_workflow_id`, a contact, then
/// for each email a wait of its `delay_hours` and the email.
fn drip_workflow(d: &Arc<Daemon>, b: &CampaignBody) -> Result<Json, ApiError> {
    let field = |f: &str, m: String| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, f, m);
    if b.emails.is_empty() {
        return Err(field("emails", "a drip has one email or more".into()));
    }
    let Some(source) = &b.trigger_workflow_id else {
        return Err(field(
            "trigger_workflow_id",
            "a drip starts on the trigger of the workflow it names".into(),
        ));
    };
    let engine = d.worker().engine();
    let Some(program) = engine.workflow(source) else {
        return Err(field(
            "trigger_workflow_id",
            format!(
                "no workflow `{}`",
                source.chars().take(100).collect::<String>()
            ),
        ));
    };
    let trigger = serde_json::to_value(&program.workflow.trigger).map_err(ApiError::internal)?;
    let mut steps = Vec::new();
    for (i, e) in b.emails.iter().enumerate() {
        if e.delay_hours > 0 {
            steps.push(json!({"id": format!("wait_{}", i + 1), "type": "delay", "duration": format!("{}h", e.delay_hours)}));
        }
        let mut step = json!({"id": format!("email_{}", i + 1), "type": "send_email", "template": e.template_id});
        if let Some(s) = &e.subject {
            step["subject"] = json!(s);
        }
        steps.push(step);
    }
    Ok(json!({
        "name": b.name,
        "description": format!("A drip of {} emails, started like `{source}`.", b.emails.len()),
        "trigger": trigger,
        "steps": steps,
    }))
}

/// `GET /api/crm/campaigns`: every campaign of the workspace with its state.
pub async fn list(State(d): State<Arc<Daemon>>) -> ApiResult {
    let engine = d.worker().engine();
    let keys: Vec<(String, String)> = engine
        .campaigns
        .iter()
        .map(|(k, c)| (k.clone(), c.name.clone()))
        .collect();
    let rows = d
        .worker()
        .store()
        .read_async(move |db| {
            let mut out = Vec::new();
            for (key, name) in keys {
                let s = campaign::state(db, &key)?;
                out.push(json!({
                    "id": key,
                    "name": name,
                    "status": s.as_ref().map_or("draft", |s| s.status.as_str()),
                    "recipients_count": s.as_ref().map_or(0, |s| s.recipients),
                    "winner": s.and_then(|s| s.winner),
                }));
            }
            Ok(out)
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(json!({ "campaigns": rows })).into_response())
}

/// `GET /api/crm/campaigns/{id}/analytics`: sent, delivered, bounced, unique
/// opens and clicks, unsubscribes, per variant and in total, with rates.
pub async fn analytics(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> ApiResult {
    let engine = d.worker().engine();
    if !engine.campaigns.contains_key(&id) {
        return Err(ApiError::not_found(format!(
            "no campaign `{}`",
            id.chars().take(100).collect::<String>()
        )));
    }
    let key = id.clone();
    let found = d
        .worker()
        .store()
        .read_async(move |db| {
            let Some(s) = campaign::state(db, &key)? else {
                return Ok(None);
            };
            Ok(Some((s.clone(), campaign::stats(db, s.id)?)))
        })
        .await
        .map_err(ApiError::internal)?;
    let Some((state, variants)) = found else {
        return Ok(
            axum::Json(json!({"id": id, "status": "draft", "variants": []})).into_response(),
        );
    };
    let rate = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let sum = |f: fn(&campaign::VariantStats) -> u64| variants.iter().map(f).sum::<u64>();
    let delivered = sum(|v| v.delivered);
    let total = json!({
        "recipients": state.recipients,
        "sent": sum(|v| v.sent),
        "delivered": delivered,
        "bounced": sum(|v| v.bounced),
        "suppressed": sum(|v| v.suppressed),
        "unique_opens": sum(|v| v.unique_opens),
        "unique_clicks": sum(|v| v.unique_clicks),
        "unsubscribes": sum(|v| v.unsubscribes),
        "complaints": sum(|v| v.complaints),
        "open_rate": rate(sum(|v| v.unique_opens), delivered),
        "click_rate": rate(sum(|v| v.unique_clicks), delivered),
    });
    Ok(axum::Json(json!({
        "id": id,
        "status": state.status,
        "winner": state.winner,
        "recipients_count": state.recipients,
        "opens_count": total["unique_opens"],
        "clicks_count": total["unique_clicks"],
        "total": total,
        "variants": variants,
    }))
    .into_response())
}
