//! Workflow drafts from a language model: any OpenAI-compatible chat
//! completions API named in funnel.yaml (`ai:`). The model gets the component,
//! the site's industry and goals, what the workspace has (email templates,
//! lists, fields) and the best-fitting recipe as an example; its answer is
//! parsed as a workflow and validated in a scratch copy of the workspace. A
//! draft that does not validate goes back once with the diagnostics; if the
//! repair fails too, the draft is rejected. Nothing the model writes reaches
//! the workspace unvalidated.
//!
//! The endpoint is held to funnel.yaml's `network` policy like every
//! outgoing call (a local llama.cpp or Ollama server must be allowed there),
//! and the key, a `${ENV}` reference, is read only when the request is sent.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value as Json, json};

use super::SuggestError;
use super::rank::{Facts, Query};
use crate::model::config::AiConfig;
use crate::workspace::Workspace;

/// How long an answer may take unless funnel.yaml says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The most of an answer read: a workflow is a few kilobytes.
const MAX_ANSWER: usize = 256 * 1024;

/// A validated draft.
#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    pub workflow_id: String,
    /// The workflow's YAML, as validated.
    pub yaml: String,
    /// Whether the first answer needed the repair round.
    pub repaired: bool,
}

/// What the draft is for.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub site: &'a str,
    pub instance: &'a str,
    pub workflow_id: &'a str,
}

/// Asks the model for a workflow, validates it, repairs it once.
pub async fn draft(
    ws: &Workspace,
    config: &AiConfig,
    query: &Query,
    facts: &Facts,
    target: &Target<'_>,
    example: Option<&str>,
) -> Result<Draft, SuggestError> {
    let client = Client::new(ws, config)?;
    let path = format!("workflows/{}.yaml", target.workflow_id);
    let mut messages = vec![
        json!({"role": "system", "content": SYSTEM}),
        json!({"role": "user", "content": request_text(ws, query, facts, target, example)}),
    ];
    let mut repaired = false;
    for round in 0..2 {
        let answer = client.ask(&messages).await?;
        let yaml = extract_yaml(&answer);
        let mut problems = check(&ws.root, &path, &yaml)?;
        if problems.is_empty() {
            problems = step_kinds_outside(&yaml);
        }
        if problems.is_empty() {
            return Ok(Draft {
                workflow_id: target.workflow_id.to_string(),
                yaml,
                repaired,
            });
        }
        if round == 1 {
            return Err(SuggestError::Model(format!(
                "the model's workflow still does not validate after one repair:\n{problems}"
            )));
        }
        repaired = true;
        messages.push(json!({"role": "assistant", "content": answer}));
        messages.push(json!({"role": "user", "content": format!(
            "funnel validate found these problems in that workflow:\n{problems}\n\
             Answer with the whole corrected workflow, one YAML document in a ```yaml block."
        )}));
    }
    Err(SuggestError::Model("no answer".into()))
}

/// The step types a draft may use: the CRM, email, waits and logic. Outgoing
/// calls (`http`, `slack`, `discord`, `social_post`) and sub-workflows are
/// left to people: the prompt carries site text, which could steer a model.
const ALLOWED_STEPS: &[&str] = &[
    "upsert_contact",
    "update_contact",
    "add_tag",
    "remove_tag",
    "adjust_score",
    "set_stage",
    "add_activity",
    "add_to_list",
    "remove_from_list",
    "send_email",
    "delay",
    "wait_until",
    "wait_for_event",
    "if",
    "switch",
    "set_vars",
    "log",
    "stop",
];

/// A problem line for each step type a draft may not use.
fn step_kinds_outside(yaml: &str) -> String {
    let Some(root) = crate::yaml::parse(yaml).root else {
        return String::new();
    };
    let mut kinds = Vec::new();
    collect_types(&root.to_json()["steps"], &mut kinds);
    kinds
        .into_iter()
        .filter(|k| !ALLOWED_STEPS.contains(&k.as_str()))
        .map(|k| {
            format!(
                "- step type `{k}` is not allowed in a draft; use only: {}",
                ALLOWED_STEPS.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn collect_types(node: &Json, out: &mut Vec<String>) {
    match node {
        Json::Array(items) => items.iter().for_each(|i| collect_types(i, out)),
        Json::Object(map) => {
            if let Some(t) = map.get("type").and_then(Json::as_str) {
                out.push(t.to_string());
            }
            for (k, v) in map {
                if k != "type" {
                    collect_types(v, out);
                }
            }
        }
        _ => {}
    }
}

/// The validator's errors for the workspace with `yaml` at `path`, one per line.
fn check(root: &Path, path: &str, yaml: &str) -> Result<String, SuggestError> {
    let files = BTreeMap::from([(path.to_string(), Some(yaml.to_string()))]);
    let errors = crate::proposals::validate_with(root, &files)
        .map_err(|e| SuggestError::Input(e.to_string()))?;
    Ok(errors
        .iter()
        .map(|d| {
            format!(
                "- {}:{}:{}: {}{}",
                d.file.display(),
                d.line,
                d.column,
                d.message,
                d.help
                    .as_ref()
                    .map(|h| format!(" (hint: {h})"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The YAML of an answer: the first fenced block if there is one, else all of it.
pub fn extract_yaml(answer: &str) -> String {
    for fence in ["```yaml", "```yml", "```"] {
        if let Some(start) = answer.find(fence) {
            let rest = &answer[start + fence.len()..];
            let rest = rest.strip_prefix('\n').unwrap_or(rest);
            if let Some(end) = rest.find("```") {
                return rest[..end].trim_end().to_string() + "\n";
            }
        }
    }
    answer.trim().to_string() + "\n"
}

const SYSTEM: &str = "You write workflows for funnel, a marketing automation tool whose \
workflows are YAML files. A workflow has `name`, `description`, `trigger` and `steps`. \
Steps have a unique snake_case `id` and a `type` (upsert_contact, update_contact, add_tag, \
remove_tag, adjust_score, set_stage, add_activity, add_to_list, remove_from_list, send_email, \
delay, wait_until, wait_for_event, if, switch, set_vars, log, stop; no other). Expressions \
use minijinja: `{{ trigger.fields.email }}`, `contact.tags`, `contact.stage`. Use only the \
email templates, lists and fields the request names. Answer with one YAML document in a ```yaml block and nothing else.";

fn request_text(
    ws: &Workspace,
    query: &Query,
    facts: &Facts,
    target: &Target<'_>,
    example: Option<&str>,
) -> String {
    let events: Vec<&str> = facts
        .events
        .iter()
        .map(|e| match e {
            crate::model::component::ComponentEvent::View => "view",
            crate::model::component::ComponentEvent::Click => "click",
            crate::model::component::ComponentEvent::Submit => "submit",
        })
        .collect();
    let trigger = if events.contains(&"submit") {
        json!({"type": "form_submission", "site": target.site, "component": target.instance})
    } else {
        json!({"type": "page_event", "site": target.site, "component": target.instance,
               "event": events.iter().find(|e| **e == "click").copied().unwrap_or("view")})
    };
    let context = json!({
        "component": {
            "type": query.component,
            "instance": target.instance,
            "site": target.site,
            "events": events,
            "form_fields": facts.fields,
            "config": query.config,
        },
        "industry": query.industry,
        "goals": query.goals,
        "trigger_to_use": trigger,
        "email_templates": ws.email_templates.keys().collect::<Vec<_>>(),
        "lists": facts.lists,
        "contact_fields": ws.fields.as_ref().map(|f| f.value.fields.keys().collect::<Vec<_>>()),
    });
    let mut text = format!(
        "Write a workflow for this component that serves the site's goals.\n{}\n",
        serde_json::to_string_pretty(&context).unwrap_or_default()
    );
    if let Some(e) = example {
        text.push_str("\nA workflow of this workspace that fits (write a better or different one):\n```yaml\n");
        text.push_str(e);
        text.push_str("```\n");
    }
    text
}

struct Client {
    http: reqwest::Client,
    url: reqwest::Url,
    model: String,
    key: Option<String>,
    timeout: Duration,
}

impl Client {
    fn new(ws: &Workspace, config: &AiConfig) -> Result<Client, SuggestError> {
        let base = config.endpoint.as_str().trim_end_matches('/');
        let url = reqwest::Url::parse(&format!("{base}/chat/completions"))
            .map_err(|e| SuggestError::Input(format!("ai.endpoint `{base}` is not a URL: {e}")))?;
        let allow = ws
            .config
            .as_ref()
            .and_then(|c| c.value.network.as_ref())
            .map(|n| n.allow.clone())
            .unwrap_or_default();
        let egress = crate::engine::egress::Egress::new(&allow)
            .map_err(|e| SuggestError::Input(format!("network.allow: {e}")))?;
        egress.check_url(&url).map_err(|why| {
            SuggestError::Model(format!(
                "ai.endpoint is not allowed: {why} (add its host to `network.allow`)"
            ))
        })?;
        let http = egress
            .client(Duration::from_secs(10))
            .map_err(|e| SuggestError::Model(e.to_string()))?;
        let key = match &config.api_key {
            Some(secret) => Some(crate::store::resolve_env(secret.as_str()).map_err(|_| {
                SuggestError::Input(format!(
                    "ai.api_key: the environment has no {}",
                    secret
                        .as_str()
                        .trim_start_matches("${")
                        .trim_end_matches('}')
                ))
            })?),
            None => None,
        };
        let timeout = match &config.timeout {
            Some(t) => Duration::from_millis(t.millis().map_err(SuggestError::Input)?),
            None => DEFAULT_TIMEOUT,
        };
        Ok(Client {
            http,
            url,
            model: config.model.clone(),
            key,
            timeout,
        })
    }

    async fn ask(&self, messages: &[Json]) -> Result<String, SuggestError> {
        let mut req = self
            .http
            .post(self.url.clone())
            .timeout(self.timeout)
            .json(&json!({"model": self.model, "messages": messages, "temperature": 0.2}));
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        let failed = |e: reqwest::Error| {
            SuggestError::Model(format!("the model did not answer: {}", e.without_url()))
        };
        let resp = req.send().await.map_err(failed)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(failed)?;
        if body.len() > MAX_ANSWER {
            return Err(SuggestError::Model(format!(
                "the model's answer is larger than {} KiB",
                MAX_ANSWER / 1024
            )));
        }
        if !status.is_success() {
            // The body may echo the request; only its error message is shown.
            let message = serde_json::from_slice::<Json>(&body)
                .ok()
                .and_then(|j| {
                    j.pointer("/error/message")
                        .and_then(Json::as_str)
                        .map(String::from)
                })
                .unwrap_or_default();
            return Err(SuggestError::Model(format!(
                "the model's endpoint answered {status} {}",
                message.chars().take(200).collect::<String>()
            )));
        }
        let parsed: Json = serde_json::from_slice(&body)
            .map_err(|e| SuggestError::Model(format!("the model's answer is not JSON: {e}")))?;
        parsed
            .pointer("/choices/0/message/content")
            .and_then(Json::as_str)
            .map(String::from)
            .ok_or_else(|| {
                SuggestError::Model("the model's answer has no choices[0].message.content".into())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_calls_are_not_allowed_in_drafts() {
        let ok = "steps:\n  - id: a\n    type: add_tag\n  - id: b\n    type: if\n    condition: x\n    then:\n      - id: c\n        type: log\n";
        assert_eq!(step_kinds_outside(ok), "");
        let bad = "steps:\n  - id: a\n    type: if\n    condition: x\n    then:\n      - id: c\n        type: http\n";
        assert!(step_kinds_outside(bad).contains("`http`"));
    }

    #[test]
    fn the_yaml_is_taken_from_the_first_fenced_block() {
        let answer = "Here it is:\n```yaml\nname: A\nsteps: []\n```\nEnjoy.";
        assert_eq!(extract_yaml(answer), "name: A\nsteps: []\n");
        assert_eq!(extract_yaml("name: B\n"), "name: B\n");
        assert_eq!(extract_yaml("```\nname: C\n```"), "name: C\n");
    }
}
