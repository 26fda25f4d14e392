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

/// `${NAME}` references resolved in text a workflow file wrote, and the values
/// used, so that any text about the request can be cleaned of them.
#[derive(Debug, Default)]
pub struct Resolved {
    used: Vec<String>,
}

impl Resolved {
    /// Replaces every `${NAME}` with its value and `$$` with `$` (values that came
    /// from data were escaped that way when rendered, see
    /// [`escape_dollars`](super::expr::escape_dollars), so a `${NAME}` inside data
    /// stays text).
    pub fn expand(&mut self, text: &str, secrets: &Secrets) -> Result<String, CallError> {
        if !text.contains('$') {
            return Ok(text.to_string());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(tail) = after.strip_prefix('{') {
                let Some(end) = tail.find('}') else {
                    return Err(CallError::permanent("an unclosed `${` in the request"));
                };
                let name = &tail[..end];
                let value = secrets.get(name).ok_or_else(|| {
                    CallError::permanent(format!(
                        "the environment variable `{name}` is not set (the workflow refers to `${{{name}}}`)"
                    ))
                })?;
                if !value.is_empty() && !self.used.contains(&value) {
                    self.used.push(value.clone());
                }
                out.push_str(&value);
                rest = &tail[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Every string inside a JSON value expanded.
    pub fn expand_json(&mut self, value: &Json, secrets: &Secrets) -> Result<Json, CallError> {
        Ok(match value {
            Json::String(s) => Json::String(self.expand(s, secrets)?),
            Json::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|v| self.expand_json(v, secrets))
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.expand_json(v, secrets)?)))
                    .collect::<Result<_, CallError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// `text` with every secret value used so far replaced by `[secret]`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in &self.used {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), "[secret]");
            }
        }
        out
    }

    /// A JSON value with every secret value used so far replaced in its strings.
    fn redact_json(&self, value: Json) -> Json {
        if self.used.is_empty() {
            return value;
        }
        match value {
            Json::String(s) => Json::String(self.redact(&s)),
            Json::Array(items) => {
                Json::Array(items.into_iter().map(|v| self.redact_json(v)).collect())
            }
            Json::Object(map) => Json::Object(
                map.into_iter()
                    .map(|(k, v)| (self.redact(&k), self.redact_json(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// The names of the `${NAME}` references in text a workflow file wrote (after
/// `$$` escapes), for reporting secrets that are not set.
pub fn secret_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{')
            && let Some(end) = tail.find('}')
        {
            names.push(tail[..end].to_string());
            rest = &tail[end + 1..];
        } else {
            rest = after;
        }
    }
    names
}

/// The secrets a request refers to that have no value here.
pub fn unset_secrets(req: &Request, secrets: &Secrets) -> Vec<String> {
    let mut texts = vec![req.url.clone()];
    texts.extend(req.headers.values().cloned());
    if let Some(body) = &req.body {
        texts.push(body.to_string());
    }
    let mut names: Vec<String> = texts
        .iter()
        .flat_map(|t| secret_names(t))
        .filter(|n| secrets.get(n).is_none())
        .collect();
    names.sort();
    names.dedup();
    names
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

/// Why a call failed. A permanent failure (a secret not set, an address not
/// allowed, a malformed request) fails the step at once: retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    pub message: String,
    #[serde(default)]
    pub permanent: bool,
}

impl CallError {
    pub fn transient(message: impl Into<String>) -> CallError {
        CallError {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> CallError {
        CallError {
            message: message.into(),
            permanent: true,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// An HTTP client error and its causes, without the URL (which may carry a
/// secret): reqwest's own text ends with it.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// Sends a request (secrets resolved now) with its idempotency key. The URL is
/// checked against the egress policy before anything is sent; the client checks
/// every address a name resolves to and every redirect (see
/// [`Egress::client`](super::egress::Egress::client)).
pub async fn send(
    client: &reqwest::Client,
    egress: &super::egress::Egress,
    req: &Request,
    key: &str,
    secrets: &Secrets,
) -> Result<Response, CallError> {
    let mut resolved = Resolved::default();
    let shown = shown_url(&req.url);
    let outcome = send_resolved(client, egress, req, key, secrets, &mut resolved, &shown).await;
    // Nothing said about the call may carry a secret value: not the error (a
    // client error quoting the URL), not a response that echoes the request.
    match outcome {
        Ok(r) => Ok(Response {
            status: r.status,
            body: resolved.redact_json(r.body),
        }),
        Err(e) => Err(CallError {
            message: resolved.redact(&e.message),
            permanent: e.permanent,
        }),
    }
}

async fn send_resolved(
    client: &reqwest::Client,
    egress: &super::egress::Egress,
    req: &Request,
    key: &str,
    secrets: &Secrets,
    resolved: &mut Resolved,
    shown: &str,
) -> Result<Response, CallError> {
    let fail = |why: String| CallError::permanent(format!("{} {shown}: {why}", req.method));
    let url = resolved.expand(&req.url, secrets)?;
    let parsed = reqwest::Url::parse(&url).map_err(|e| fail(format!("not a URL ({e})")))?;
    egress.check_url(&parsed).map_err(fail)?;
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| fail(format!("unknown HTTP method `{}`", req.method)))?;
    let mut builder = client
        .request(method, parsed)
        .timeout(Duration::from_millis(req.timeout_ms))
        .header("Idempotency-Key", key)
        .header("User-Agent", concat!("funnel/", env!("CARGO_PKG_VERSION")));
    for (name, value) in &req.headers {
        builder = builder.header(name, resolved.expand(value, secrets)?);
    }
    if let Some(body) = &req.body {
        builder = builder.json(&resolved.expand_json(body, secrets)?);
    }
    let response = builder.send().await.map_err(|e| {
        let message = if e.is_timeout() {
            format!(
                "{} {shown}: no response within {} ms",
                req.method, req.timeout_ms
            )
        } else if e.is_connect() {
            format!("{} {shown}: cannot connect ({})", req.method, describe(e))
        } else if e.is_redirect() {
            return CallError::permanent(format!("{} {shown}: {}", req.method, describe(e)));
        } else {
            format!("{} {shown}: {}", req.method, describe(e))
        };
        CallError::transient(message)
    })?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|e| {
        CallError::transient(format!(
            "{} {shown}: reading the response: {}",
            req.method,
            describe(e)
        ))
    })?;
    let body = parse_body(&bytes);
    if !(200..300).contains(&status) && !req.accept.contains(&status) {
        let excerpt: String = resolved
            .redact(&body.to_string())
            .chars()
            .take(300)
            .collect();
        return Err(CallError::transient(format!(
            "{} {shown} answered {status}: {excerpt}",
            req.method
        )));
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
    fn secrets_resolve_from_the_environment_and_escaped_dollars_stay_text() {
        // PATH is set in every environment the tests run in.
        let path = std::env::var("PATH").unwrap_or_default();
        let secrets = Secrets::default().with("GIVEN", "g");
        let mut r = Resolved::default();
        assert_eq!(r.expand("a${PATH}b", &secrets), Ok(format!("a{path}b")));
        assert_eq!(r.expand("${GIVEN}/x", &secrets), Ok("g/x".to_string()));
        assert_eq!(
            r.expand("$${GIVEN} costs $5 or $$6", &secrets),
            Ok("${GIVEN} costs $5 or $6".to_string())
        );
        let unset = r
            .expand("${FUNNEL_SURELY_UNSET_VAR}", &secrets)
            .expect_err("unset");
        assert!(unset.permanent && unset.message.contains("FUNNEL_SURELY_UNSET_VAR"));
        assert_eq!(r.redact("url g/x"), "url [secret]/x");
        assert_eq!(secret_names("$${A} ${B} $$ ${C}"), ["B", "C"]);
        assert_eq!(parse_body(b"{\"ok\":true}"), json!({"ok": true}));
        assert_eq!(parse_body(b"plain"), json!("plain"));
    }
}
