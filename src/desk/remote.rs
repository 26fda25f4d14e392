//! The desk on a team's daemon: every read and change of [`Source`] as a request
//! to its `/api` with the person's token (`funnel tui --remote NAME`). The
//! daemon answers each with a desk of its own under the token's name, so roles
//! and the audit log hold; a failure comes back as the daemon's own words and
//! kind. Calls block (the TUI reads from its own threads), on a small runtime
//! this desk owns.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};

use super::{
    CampaignRow, Change, ContactDetail, Dashboard, DealColumn, DuplicatePair, ErrorKind, Info,
    Result, Source, SourceError, WorkflowCounts,
};
use crate::crm::directory::{Cursor, Summary};
use crate::engine::manage::{ExecutionDetail, ExecutionRow};
use crate::model::contacts::Condition;
use crate::remotes::Profile;
use crate::store::UnixMs;

/// A request that takes longer is reported, not waited on forever.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A team's daemon, spoken to with one person's token.
pub struct Remote {
    name: String,
    base: String,
    token: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
    info: Info,
    /// The token's role as the daemon says.
    pub role: String,
}

/// Never the token: a remote may end up in a log line or a panic.
impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("name", &self.name)
            .field("base", &self.base)
            .field("token", &"<secret>")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct Hello {
    role: String,
    info: Info,
}

impl Remote {
    /// Connects to the remote `name` and asks who the token is and what the
    /// workspace has; a wrong token or an unreachable daemon fails here.
    pub fn connect(name: &str, profile: &Profile) -> Result<Remote> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("funnel-remote")
            .enable_all()
            .build()
            .map_err(|e| {
                SourceError::of(
                    ErrorKind::Unavailable,
                    format!("cannot start the runtime: {e}"),
                )
            })?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(TIMEOUT)
            // A redirect could carry the token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("funnel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::of(ErrorKind::Unavailable, e.to_string()))?;
        let mut remote = Remote {
            name: name.to_string(),
            base: profile.url.trim_end_matches('/').to_string(),
            token: profile.token.clone(),
            client,
            rt,
            info: Info::default(),
            role: String::new(),
        };
        let hello: Hello = remote.call(Method::GET, "/api/workspace", None)?;
        remote.role = hello.role;
        remote.info = Info {
            location: format!("{name} ({})", remote.base),
            ..hello.info
        };
        Ok(remote)
    }

    /// One request and its JSON answer; an error answer becomes the daemon's
    /// message with the kind its status means.
    pub(crate) fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Json>,
    ) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .client
            .request(method, &url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let name = &self.name;
        let base = &self.base;
        self.rt.block_on(async move {
            let resp = req.send().await.map_err(|e| {
                let why = if e.is_timeout() {
                    format!("no answer within {} s", TIMEOUT.as_secs())
                } else if e.is_connect() {
                    "it does not answer (is the daemon running?)".to_string()
                } else {
                    e.to_string()
                };
                SourceError::of(
                    ErrorKind::Unavailable,
                    format!("remote {name} at {base}: {why}"),
                )
            })?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(|e| {
                SourceError::of(ErrorKind::Unavailable, format!("remote {name}: {e}"))
            })?;
            if status.is_success() {
                return serde_json::from_slice(&bytes).map_err(|e| {
                    SourceError::of(
                        ErrorKind::Unavailable,
                        format!(
                            "remote {name} answered what this funnel cannot read ({e}); are both the same version?"
                        ),
                    )
                });
            }
            Err(answer_error(name, base, status, &bytes))
        })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(Method::GET, path, None)
    }

    /// A field of a JSON object answer.
    fn field<T: DeserializeOwned>(&self, answer: Json, field: &str) -> Result<T> {
        let mut answer = answer;
        let value = answer.get_mut(field).map(Json::take).unwrap_or(Json::Null);
        serde_json::from_value(value).map_err(|e| {
            SourceError::of(
                ErrorKind::Unavailable,
                format!("remote {}: `{field}` unreadable: {e}", self.name),
            )
        })
    }
}

/// An error answer as the person should read it.
fn answer_error(name: &str, base: &str, status: StatusCode, body: &[u8]) -> SourceError {
    let message = serde_json::from_slice::<Json>(body)
        .ok()
        .and_then(|j| j["error"]["message"].as_str().map(String::from))
        .unwrap_or_else(|| format!("HTTP {status}"));
    match status {
        StatusCode::UNAUTHORIZED => SourceError::of(
            ErrorKind::Refused,
            format!(
                "remote {name} refused the token ({message}); log in again: `funnel login {name} --remote {base}`"
            ),
        ),
        StatusCode::FORBIDDEN => SourceError::of(ErrorKind::Refused, message),
        StatusCode::NOT_FOUND => SourceError::of(ErrorKind::NotFound, message),
        s if s.is_client_error() => SourceError::new(message),
        _ => SourceError::of(ErrorKind::Unavailable, format!("remote {name}: {message}")),
    }
}

/// A path segment or query value, percent-encoded.
fn enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl Source for Remote {
    fn info(&self) -> &Info {
        &self.info
    }

    fn now(&self) -> UnixMs {
        crate::store::now_ms()
    }

    fn contacts(
        &self,
        filter: Option<&Condition>,
        cursor: Cursor,
        limit: usize,
    ) -> Result<Vec<Summary>> {
        let a: Json = self.call(
            Method::POST,
            "/api/crm/contacts/page",
            Some(json!({"where": filter, "cursor": cursor, "limit": limit})),
        )?;
        self.field(a, "contacts")
    }

    fn search(&self, query: &str, limit: usize) -> Result<Vec<Summary>> {
        let a: Json = self.get(&format!(
            "/api/crm/contacts/search?q={}&limit={limit}",
            enc(query)
        ))?;
        self.field(a, "contacts")
    }

    fn count(&self, filter: Option<&Condition>) -> Result<u64> {
        let a: Json = self.call(
            Method::POST,
            "/api/crm/contacts/count",
            Some(json!({"where": filter})),
        )?;
        self.field(a, "count")
    }

    fn contact(&self, id: i64) -> Result<ContactDetail> {
        self.get(&format!("/api/crm/contacts/{id}/detail"))
    }

    fn board(&self, pipeline: &str) -> Result<Vec<DealColumn>> {
        let a: Json = self.get(&format!("/api/crm/pipelines/{}/board", enc(pipeline)))?;
        self.field(a, "columns")
    }

    fn campaigns(&self) -> Result<Vec<CampaignRow>> {
        let a: Json = self.get("/api/crm/campaigns/overview")?;
        self.field(a, "campaigns")
    }

    fn workflow_counts(&self) -> Result<Vec<WorkflowCounts>> {
        let a: Json = self.get("/api/automation/counts")?;
        self.field(a, "workflows")
    }

    fn executions(
        &self,
        workflow: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<ExecutionRow>> {
        let mut path = "/api/automation/executions?limit=500".to_string();
        if let Some(w) = workflow {
            path.push_str(&format!("&workflow={}", enc(w)));
        }
        if let Some(s) = status {
            path.push_str(&format!("&status={}", enc(s)));
        }
        let a: Json = self.get(&path)?;
        self.field(a, "executions")
    }

    fn execution(&self, uid: &str) -> Result<ExecutionDetail> {
        self.get(&format!("/api/automation/executions/{}", enc(uid)))
    }

    fn dashboard(&self) -> Result<Dashboard> {
        self.get("/api/analytics/dashboard")
    }

    fn duplicates(&self, limit: usize) -> Result<Vec<DuplicatePair>> {
        let a: Json = self.get(&format!("/api/crm/duplicates?limit={limit}"))?;
        self.field(a, "pairs")
    }

    fn export_data(&self, contact: i64) -> Result<Json> {
        self.get(&format!("/api/crm/contacts/{contact}/export"))
    }

    fn apply(&self, change: Change) -> Result<String> {
        let body = serde_json::to_value(&change)
            .map_err(|e| SourceError::new(format!("cannot send the change: {e}")))?;
        let a: Json = self.call(Method::POST, "/api/changes", Some(body))?;
        self.field(a, "message")
    }
}

/// `funnel sync` through the daemon: each round is one `POST /api/sync`.
impl crate::sync::session::Hub for Remote {
    fn exchange(
        &self,
        req: &crate::sync::session::Request,
    ) -> std::result::Result<crate::sync::session::Response, crate::sync::store::SyncError> {
        let body = serde_json::to_value(req)
            .map_err(|e| crate::sync::store::SyncError::Hub(e.to_string()))?;
        self.call(Method::POST, "/api/sync", Some(body))
            .map_err(|e| crate::sync::store::SyncError::Hub(e.to_string()))
    }

    /// Two rounds at a time: a hub on PostgreSQL applies them side by side,
    /// one on SQLite reads the next page's body while it applies the first.
    fn side_by_side(&self) -> usize {
        2
    }
}
