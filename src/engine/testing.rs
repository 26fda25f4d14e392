//! `funnel test`: runs the cases in `workflows/tests/` on the simulator and checks
//! the path, emails, HTTP calls and contact each case expects.

use serde::Serialize;
use serde_json::Value as Json;

use super::simulate::{DEFAULT_UNTIL_MS, Scenario, Trace, parse_start, simulate};
use super::{Engine, EngineError};
use crate::model::workflow_test::{Expectation, ExpectedStatus, TestCase};

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub workflow: String,
    pub name: String,
    /// What did not hold; empty when the case passed.
    pub failures: Vec<String>,
    pub elapsed_ms: u128,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs one case of `workflow`.
pub fn run_case(engine: &Engine, workflow: &str, case: &TestCase) -> CaseResult {
    let started = std::time::Instant::now();
    let failures = match scenario(workflow, case).and_then(|sc| simulate(engine, &sc)) {
        Ok(trace) => check(&trace, &case.expect),
        Err(e) => vec![format!("could not run: {e}")],
    };
    CaseResult {
        workflow: workflow.to_string(),
        name: case.name.clone(),
        failures,
        elapsed_ms: started.elapsed().as_millis(),
    }
}

fn scenario(workflow: &str, case: &TestCase) -> Result<Scenario, EngineError> {
    let until_ms = match &case.until {
        Some(d) => d.millis().map_err(EngineError::Invalid)?,
        None => DEFAULT_UNTIL_MS,
    };
    Ok(Scenario {
        workflow: workflow.to_string(),
        trigger: case.trigger.clone(),
        at: parse_start(case.at.as_deref())?,
        until_ms,
        contacts: case.contacts.clone(),
        http: case.http.clone(),
        events: case.events.clone(),
    })
}

/// Everything in `expect` that the trace does not show.
pub fn check(trace: &Trace, expect: &Expectation) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(status) = expect.status {
        let want = match status {
            ExpectedStatus::Completed => "completed",
            ExpectedStatus::Failed => "failed",
            ExpectedStatus::Waiting => "waiting",
            ExpectedStatus::Skipped => "skipped",
        };
        if trace.status != want {
            let why = trace
                .error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            out.push(format!(
                "status: expected {want}, got {}{why}",
                trace.status
            ));
        }
    }
    if let Some(path) = &expect.path {
        let want: Vec<String> = path.iter().map(|p| p.to_string()).collect();
        let got = trace.step_ids();
        if want != got {
            out.push(format!(
                "path: expected [{}], got [{}]",
                want.join(", "),
                got.join(", ")
            ));
        }
    }
    if let Some(emails) = &expect.emails {
        let got: Vec<_> = trace
            .emails
            .iter()
            .filter(|e| e.workflow == trace.workflow)
            .collect();
        if got.len() != emails.len() {
            out.push(format!(
                "emails: expected {}, got {} ({})",
                emails.len(),
                got.len(),
                got.iter()
                    .map(|e| e.template.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (i, (want, got)) in emails.iter().zip(&got).enumerate() {
            if want.template.as_str() != got.template {
                out.push(format!(
                    "email {}: expected template {}, got {}",
                    i + 1,
                    want.template.as_str(),
                    got.template
                ));
            }
            if let Some(to) = &want.to
                && !to.eq_ignore_ascii_case(&got.to)
            {
                out.push(format!("email {}: expected to {to}, got {}", i + 1, got.to));
            }
            if let Some(part) = &want.subject_contains
                && !got.subject.contains(part.as_str())
            {
                out.push(format!(
                    "email {}: subject {:?} does not contain {part:?}",
                    i + 1,
                    got.subject
                ));
            }
            if let Some(after) = &want.after {
                let ms = after
                    .millis()
                    .map_or(-1, |m| i64::try_from(m).unwrap_or(-1));
                if ms != got.at {
                    out.push(format!(
                        "email {}: expected after {}, sent after {}",
                        i + 1,
                        after.as_str(),
                        shown_ms(got.at)
                    ));
                }
            }
        }
    }
    if let Some(http) = &expect.http {
        let got: Vec<_> = trace
            .http
            .iter()
            .filter(|r| r.workflow == trace.workflow && r.kind == "http")
            .collect();
        if got.len() != http.len() {
            out.push(format!(
                "http: expected {} requests, got {} ({})",
                http.len(),
                got.len(),
                got.iter()
                    .map(|r| format!("{} {}", r.method, r.url))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (i, (want, got)) in http.iter().zip(&got).enumerate() {
            if let Some(m) = want.method
                && serde_json::to_value(m)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    != Some(got.method.clone())
            {
                out.push(format!(
                    "request {}: expected method {m:?}, got {}",
                    i + 1,
                    got.method
                ));
            }
            let url_ok = match want.url.strip_suffix('*') {
                Some(prefix) => got.url.starts_with(prefix),
                None => want.url == got.url,
            };
            if !url_ok {
                out.push(format!(
                    "request {}: expected url {}, got {}",
                    i + 1,
                    want.url,
                    got.url
                ));
            }
            if let Some(body) = &want.body
                && let Err(why) = contains(got.body.as_ref().unwrap_or(&Json::Null), body, "body")
            {
                out.push(format!("request {}: {why}", i + 1));
            }
        }
    }
    if let Some(c) = &expect.contact {
        let contact = trace.contact.clone().unwrap_or(Json::Null);
        if let Some(email) = &c.email
            && contact.get("email").and_then(Json::as_str) != Some(&email.to_lowercase())
        {
            out.push(format!(
                "contact: expected email {email}, got {}",
                contact["email"]
            ));
        }
        if let Some(tags) = &c.tags {
            let mut want: Vec<&str> = tags.iter().map(String::as_str).collect();
            let mut got: Vec<&str> = contact["tags"]
                .as_array()
                .map(|a| a.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            want.sort_unstable();
            got.sort_unstable();
            if want != got {
                out.push(format!(
                    "contact: expected tags [{}], got [{}]",
                    want.join(", "),
                    got.join(", ")
                ));
            }
        }
        if let Some(fields) = &c.fields {
            for (k, v) in fields {
                if let Err(why) = contains(&contact["fields"][k], v, &format!("fields.{k}")) {
                    out.push(format!("contact: {why}"));
                }
            }
        }
        if let Some(score) = c.score {
            let got = contact["score"].as_f64().unwrap_or(f64::NAN);
            if (got - score).abs() > 1e-9 {
                out.push(format!("contact: expected score {score}, got {got}"));
            }
        }
        if let Some(stage) = &c.stage {
            let got = contact["stage"].as_str().unwrap_or("none");
            if got != stage {
                out.push(format!("contact: expected stage {stage}, got {got}"));
            }
        }
        if let Some(lists) = &c.lists {
            let mut want: Vec<&str> = lists.iter().map(|l| l.as_str()).collect();
            let mut got: Vec<&str> = contact["lists"]
                .as_array()
                .map(|a| a.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            want.sort_unstable();
            got.sort_unstable();
            if want != got {
                out.push(format!(
                    "contact: expected lists [{}], got [{}]",
                    want.join(", "),
                    got.join(", ")
                ));
            }
        }
    }
    out
}

/// Whether `got` holds everything in `want` (objects by key, recursively; other
/// values equal, numbers by value).
fn contains(got: &Json, want: &Json, at: &str) -> Result<(), String> {
    match (got, want) {
        (Json::Object(g), Json::Object(w)) => {
            for (k, v) in w {
                contains(g.get(k).unwrap_or(&Json::Null), v, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        (Json::Number(a), Json::Number(b)) if a.as_f64() == b.as_f64() => Ok(()),
        (g, w) if g == w => Ok(()),
        (g, w) => Err(format!("{at}: expected {w}, got {g}")),
    }
}

fn shown_ms(ms: i64) -> String {
    const UNITS: &[(i64, &str)] = &[
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    for (unit, name) in UNITS {
        if ms != 0 && ms % unit == 0 {
            return format!("{}{name}", ms / unit);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_match_by_subset() {
        let got = json!({"a": 1, "b": {"c": "x", "d": 2.0}});
        assert!(contains(&got, &json!({"b": {"d": 2}}), "body").is_ok());
        let err = contains(&got, &json!({"b": {"c": "y"}}), "body").expect_err("differs");
        assert_eq!(err, "body.b.c: expected \"y\", got \"x\"");
        assert_eq!(shown_ms(2 * 86_400_000), "2d");
        assert_eq!(shown_ms(90_000), "90s");
    }
}
