//! Remote effects: HTTP requests, Slack and Discord webhooks and social posts, built
//! from a step, sent with an `Idempotency-Key`, and their responses as step outputs.
//!
//! A request is stored with the waiting fiber before it is sent, secrets still as
//! `${ENV}` references (resolved only when sending), so that a worker that dies
//! mid-call re-sends the very same request under the same key.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

/// Longest wait for a response unless the step sets `timeout`.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// Longest response body kept in the output.
const MAX_BODY: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The step type that made it: `http`, `slack`, `discord` or `social_post`.
    #[serde(default)]
    pub kind: String,
    pub method: String,
    /// May hold a `${ENV}` reference (a webhook URL is a secret).
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<Json>,
    pub timeout_ms: u64,
    /// Status codes accepted besides 2xx.
    #[serde(default)]
    pub accept: Vec<u16>,
}

/// A response, as a step's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub status: u16,
    pub body: Json,
}

impl Response {
    pub fn output(&self) -> Json {
        json!({"status": self.status, "body": self.body})
    }
}

/// Where `${NAME}` references find their values: the process environment, unless
/// a value was given here (a daemon's secret file, a test's local server).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    given: BTreeMap<String, String>,
}

impl Secrets {
    /// Gives `name` a value that wins over the environment.
    pub fn with(mut self, name: &str, value: &str) -> Secrets {
        self.given.insert(name.to_string(), value.to_string());
        self
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.given
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    }
}

/// Replaces every `${NAME}` with its value.
pub fn resolve_secrets(text: &str, secrets: &Secrets) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unclosed `${{` in `{text}`"));
        };
        let name = &after[..end];
        let value = secrets
            .get(name)
            .ok_or_else(|| format!("environment variable `{name}` is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The URL with secrets hidden, for logs and traces.
pub fn shown_url(url: &str) -> String {
    if url.contains("${") {
        url.to_string()
    } else {
        match url.split_once('?') {
            Some((base, _)) => format!("{base}?…"),
            None => url.to_string(),
        }
    }
}

/// Why a call failed; retried by the step's policy.
pub type CallError = String;

/// Sends a request (secrets resolved now) with its idempotency key.
pub async fn send(
    client: &reqwest::Client,
    req: &Request,
    key: &str,
    secrets: &Secrets,
) -> Result<Response, CallError> {
    let url = resolve_secrets(&req.url, secrets)?;
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| format!("unknown HTTP method `{}`", req.method))?;
    let mut builder = client
        .request(method, &url)
        .timeout(Duration::from_millis(req.timeout_ms))
        .header("Idempotency-Key", key)
        .header("User-Agent", concat!("funnel/", env!("CARGO_PKG_VERSION")));
    for (name, value) in &req.headers {
        builder = builder.header(name, resolve_secrets(value, secrets)?);
    }
    if let Some(body) = &req.body {
        builder = builder.json(body);
    }
    let shown = shown_url(&req.url);
    let response = builder.send().await.map_err(|e| {
        if e.is_timeout() {
            format!(
                "{} {shown}: no response within {} ms",
                req.method, req.timeout_ms
            )
        } else if e.is_connect() {
            format!("{} {shown}: cannot connect ({e})", req.method)
        } else {
            format!("{} {shown}: {e}", req.method)
        }
    })?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("{} {shown}: reading the response: {e}", req.method))?;
    let body = parse_body(&bytes);
    if !(200..300).contains(&status) && !req.accept.contains(&status) {
        let excerpt: String = body.to_string().chars().take(300).collect();
        return Err(format!(
            "{} {shown} answered {status}: {excerpt}",
            req.method
        ));
    }
    Ok(Response { status, body })
}

/// A body as JSON when it is JSON, else as text (cut at [`MAX_BODY`]).
pub fn parse_body(bytes: &[u8]) -> Json {
    if bytes.is_empty() {
        return Json::Null;
    }
    if let Ok(v) = serde_json::from_slice::<Json>(bytes) {
        return v;
    }
    let cut = &bytes[..bytes.len().min(MAX_BODY)];
    Json::String(String::from_utf8_lossy(cut).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_resolve_from_the_environment() {
        // PATH is set in every environment the tests run in.
        let path = std::env::var("PATH").unwrap_or_default();
        let secrets = Secrets::default().with("GIVEN", "g");
        assert_eq!(
            resolve_secrets("a${PATH}b", &secrets),
            Ok(format!("a{path}b"))
        );
        assert_eq!(
            resolve_secrets("${GIVEN}/x", &secrets),
            Ok("g/x".to_string())
        );
        assert!(
            resolve_secrets("${FUNNEL_SURELY_UNSET_VAR}", &secrets)
                .expect_err("unset")
                .contains("FUNNEL_SURELY_UNSET_VAR")
        );
        assert_eq!(parse_body(b"{\"ok\":true}"), json!({"ok": true}));
        assert_eq!(parse_body(b"plain"), json!("plain"));
    }
}
