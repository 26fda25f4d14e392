//! `/api/proposals` and the workflow routes that make them: an editor's change to
//! workspace files becomes a validated commit on a branch, and goes live only
//! when an owner approves it (see [`crate::proposals`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

use super::{ApiError, ApiResult, actor, json_body, query};
use crate::access::Principal;
use crate::daemon::Daemon;
use crate::proposals::{self, Proposal, ProposalError};
use crate::store::StoreError;

/// One merge at a time: git's own locks would refuse a second anyway.
static MERGING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn proposal_error(e: ProposalError) -> Response {
    match e {
        ProposalError::BadPath(m) => {
            ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "files", m).into_response()
        }
        e @ ProposalError::BadComment => {
            ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "body", e.to_string()).into_response()
        }
        ProposalError::Invalid(diags) => {
            let list: Vec<Json> = diags
                .iter()
                .map(|d| {
                    json!({
                        "file": d.file.to_string_lossy(),
                        "line": d.line,
                        "column": d.column,
                        "message": d.message,
                        "help": d.help,
                    })
                })
                .collect();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({
                    "error": {
                        "code": "invalid_workspace",
                        "message": format!("the change does not validate ({} error(s)); nothing was committed", list.len()),
                        "field": "files",
                    },
                    "diagnostics": list,
                })),
            )
                .into_response()
        }
        ProposalError::NotFound(_) => ApiError::not_found(e.to_string()).into_response(),
        ProposalError::NotOpen(..)
        | ProposalError::Conflict(_)
        | ProposalError::NoRepository(_) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string()).into_response()
        }
        other => ApiError::internal(other).into_response(),
    }
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesBody {
    title: String,
    /// Each path's new content, or `null` to delete the file.
    files: BTreeMap<String, Option<String>>,
}

pub async fn create(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let b: FilesBody = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    propose(&d, &who, b.title, b.files).await
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowBody {
    /// The workflow's id (its file name) when creating one.
    #[serde(default)]
    id: Option<String>,
    /// The workflow as a document of `workflows/*.yaml`'s schema, in JSON.
    #[serde(default)]
    workflow: Option<Json>,
    /// Or its YAML text, as it would be written in the file.
    #[serde(default)]
    yaml: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

fn workflow_text(b: &WorkflowBody) -> Result<String, ApiError> {
    match (&b.workflow, &b.yaml) {
        // JSON is YAML: the document is written as it came, pretty-printed.
        (Some(doc @ Json::Object(_)), None) => serde_json::to_string_pretty(doc)
            .map(|t| format!("{t}\n"))
            .map_err(ApiError::internal),
        (None, Some(text)) => Ok(text.clone()),
        _ => Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "workflow",
            "give the workflow either as `workflow` (an object) or as `yaml` (text)",
        )),
    }
}

/// `POST /api/workflows`: a proposal adding `workflows/<id>.yaml`.
pub async fn create_workflow(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let b: WorkflowBody = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let Some(id) = b.id.clone() else {
        return ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "id",
            "`id` names the new workflow",
        )
        .into_response();
    };
    propose_workflow(&d, &who, &id, &b, true).await
}

/// `PUT /api/workflows/{id}`: a proposal replacing `workflows/<id>.yaml`.
pub async fn update_workflow(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let b: WorkflowBody = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    propose_workflow(&d, &who, &id, &b, false).await
}

/// A proposal writing `workflows/<id>.yaml`: a new file when `creating` (refused
/// if it exists), else a change of an existing one (404 if it does not).
async fn propose_workflow(
    d: &Arc<Daemon>,
    who: &Principal,
    id: &str,
    b: &WorkflowBody,
    creating: bool,
) -> Response {
    let path = format!("workflows/{id}.yaml");
    if let Err(e) = proposals::check_path(&path) {
        return proposal_error(e);
    }
    let exists = d.root.join(&path).is_file();
    if creating && exists {
        return ApiError::field(
            StatusCode::CONFLICT,
            "id",
            format!("workflow `{id}` exists; change it with PUT /api/workflows/{id}"),
        )
        .into_response();
    }
    if !creating && !exists {
        return ApiError::not_found(format!(
            "no workflow `{}`",
            id.chars().take(100).collect::<String>()
        ))
        .into_response();
    }
    let text = match workflow_text(b) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let title = b.title.clone().unwrap_or_else(|| {
        if creating {
            format!("Add workflow {id}")
        } else {
            format!("Change workflow {id}")
        }
    });
    propose(d, who, title, BTreeMap::from([(path, Some(text))])).await
}

pub(super) async fn propose(
    d: &Arc<Daemon>,
    who: &Principal,
    title: String,
    files: BTreeMap<String, Option<String>>,
) -> Response {
    let title: String = title.trim().chars().take(200).collect();
    if title.is_empty() {
        return ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "title",
            "`title` says what the change is",
        )
        .into_response();
    }
    if files.is_empty() || files.len() > proposals::MAX_FILES {
        return ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "files",
            "a proposal changes 1 to 50 files",
        )
        .into_response();
    }
    for (path, content) in &files {
        if let Err(e) = proposals::check_path(path) {
            return proposal_error(e);
        }
        if content
            .as_ref()
            .is_some_and(|c| c.len() > proposals::MAX_FILE_BYTES)
        {
            return ApiError::field(
                StatusCode::PAYLOAD_TOO_LARGE,
                "files",
                format!("`{path}` is over 256 KiB"),
            )
            .into_response();
        }
    }
    let root = d.root.clone();
    let author = actor(who);
    let now = d.worker().now();
    let id = crate::uid::new(now);
    let (fs, i, a, t) = (files.clone(), id.clone(), author.clone(), title.clone());
    let made = tokio::task::spawn_blocking(move || -> Result<(String, String), ProposalError> {
        let errors = proposals::validate_with(&root, &fs)?;
        if !errors.is_empty() {
            return Err(ProposalError::Invalid(errors));
        }
        proposals::commit_branch(&root, &i, &t, &a, &fs)
    })
    .await;
    let (branch, commit) = match made {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return proposal_error(e),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let p = Proposal {
        id,
        title,
        author: author.clone(),
        branch,
        commit,
        status: "open".into(),
        files: files.keys().cloned().collect(),
        created_at: now,
        decided_by: None,
        decided_at: None,
    };
    let stored = p.clone();
    let changes = json!(files);
    let saved = d
        .worker()
        .store()
        .write(move |db| {
            proposals::record(db, &stored, &changes)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            audit(
                db,
                &author,
                "propose",
                &stored.id,
                json!({"title": stored.title, "files": stored.files, "commit": stored.commit}),
                now,
            )
        })
        .await;
    if let Err(e) = saved {
        return ApiError::internal(e).into_response();
    }
    (StatusCode::CREATED, axum::Json(json!({ "proposal": p }))).into_response()
}

fn audit(
    db: crate::store::db::Db<'_>,
    actor: &str,
    action: &str,
    id: &str,
    details: Json,
    now: i64,
) -> Result<(), StoreError> {
    crate::audit::record(db, actor, action, "proposal", Some(id), &details, now)
}

#[derive(Debug, serde::Deserialize)]
pub struct ListQuery {
    all: Option<bool>,
    limit: Option<usize>,
}

pub async fn list(State(d): State<Arc<Daemon>>, uri: Uri) -> ApiResult {
    let q: ListQuery = query(&uri)?;
    let (all, limit) = (q.all.unwrap_or(false), q.limit.unwrap_or(50).min(500));
    let rows = d
        .worker()
        .store()
        .read_async(move |db| {
            proposals::list(db, all, limit).map_err(|e| StoreError::Invalid(e.to_string()))
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(json!({ "proposals": rows })).into_response())
}

pub async fn show(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Response {
    let found = d
        .worker()
        .store()
        .read_async(move |db| {
            Ok(proposals::get(db, &id).and_then(|p| Ok((p, proposals::comments(db, &id)?))))
        })
        .await;
    match found {
        Ok(Ok((p, comments))) => {
            axum::Json(json!({ "proposal": p, "comments": comments })).into_response()
        }
        Ok(Err(e)) => proposal_error(e),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// The comment's text (1 to 10,000 bytes).
    body: String,
}

/// `POST /api/proposals/{id}/comments`: a comment, by the token's person.
pub async fn add_comment(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let b: CommentBody = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let by = actor(&who);
    let made = d
        .worker()
        .store()
        .write(move |db| {
            let now = crate::store::now_ms();
            let made = proposals::comment(db, &id, &by, &b.body, now);
            if made.is_ok() {
                audit(db, &by, "comment", &id, json!({}), now)?;
            }
            Ok(made)
        })
        .await;
    match made {
        Ok(Ok(c)) => (StatusCode::CREATED, axum::Json(json!({ "comment": c }))).into_response(),
        Ok(Err(e)) => proposal_error(e),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

pub async fn approve(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let _one = MERGING.lock().await;
    let store = d.worker().store().clone();
    let key = id.clone();
    let p = match store
        .read_async(move |db| Ok(proposals::get(db, &key)))
        .await
    {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return proposal_error(e),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    if p.status != "open" {
        return proposal_error(ProposalError::NotOpen(p.id, p.status));
    }
    let (root, branch, by) = (d.root.clone(), p.branch.clone(), actor(&who));
    let approver = by.clone();
    let merged =
        tokio::task::spawn_blocking(move || proposals::merge_branch(&root, &branch, &approver))
            .await;
    let head = match merged {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return proposal_error(e),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let now = d.worker().now();
    let (pid, h) = (p.id.clone(), head.clone());
    let decided = store
        .write(move |db| {
            proposals::decide(db, &pid, "merged", &by, now)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            audit(db, &by, "approve", &pid, json!({"merged_as": h}), now)
        })
        .await;
    if let Err(e) = decided {
        return ApiError::internal(e).into_response();
    }
    // Live at once, whether or not the watcher runs.
    let live = match crate::daemon::reload::reload_once(&d).await {
        Ok(crate::daemon::reload::Outcome::Applied) => true,
        Ok(crate::daemon::reload::Outcome::Refused(text)) => {
            tracing::warn!("merged proposal {} did not reload:\n{text}", p.id);
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "reload after a merge failed");
            false
        }
    };
    axum::Json(json!({"merged": true, "commit": head, "live": live})).into_response()
}

pub async fn reject(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let by = actor(&who);
    let now = d.worker().now();
    let done = d
        .worker()
        .store()
        .write(move |db| {
            Ok(
                proposals::decide(db, &id, "rejected", &by, now).and_then(|()| {
                    audit(db, &by, "reject", &id, json!({}), now).map_err(ProposalError::from)
                }),
            )
        })
        .await;
    match done {
        Ok(Ok(())) => axum::Json(json!({"rejected": true})).into_response(),
        Ok(Err(e)) => proposal_error(e),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstantiateBody {
    /// The new site's folder name under `sites/`.
    site_id: String,
    /// The template's variables (`company_name`, `primary_color`, …).
    #[serde(default)]
    customizations: BTreeMap<String, Json>,
    /// The site's display name (default: `company_name`).
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain: Option<String>,
}

/// `POST /api/templates/{id}/instantiate`: a proposal adding
/// `sites/<site_id>/site.yaml` made from the template.
pub async fn instantiate(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(template): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use crate::catalog::InstantiateError as E;
    let b: InstantiateBody = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let mut sets = Vec::new();
    for (k, v) in &b.customizations {
        let text = match v {
            Json::String(s) => s.clone(),
            Json::Number(n) => n.to_string(),
            Json::Bool(x) => x.to_string(),
            _ => {
                return ApiError::field(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("customizations.{k}"),
                    "a customization is text, a number or a boolean",
                )
                .into_response();
            }
        };
        sets.push((k.clone(), text));
    }
    let ws = d.workspace();
    let made = crate::catalog::instantiate(
        &ws,
        &template,
        &b.site_id,
        b.name.as_deref(),
        b.domain.as_deref(),
        &sets,
    );
    let text = match made {
        Ok(t) => t,
        Err(E::NoTemplate(_)) => {
            return ApiError::not_found(format!(
                "no template `{}`",
                template.chars().take(100).collect::<String>()
            ))
            .into_response();
        }
        Err(e @ E::BadName(_)) => {
            return ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "site_id", e.to_string())
                .into_response();
        }
        Err(e) => {
            return ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "customizations",
                e.to_string(),
            )
            .into_response();
        }
    };
    if ws.sites.contains_key(&b.site_id) {
        return ApiError::field(
            StatusCode::CONFLICT,
            "site_id",
            format!("site `{}` exists", b.site_id),
        )
        .into_response();
    }
    let path = format!("sites/{}/site.yaml", b.site_id);
    let title = format!("Add site {} from template {template}", b.site_id);
    propose(&d, &who, title, BTreeMap::from([(path, Some(text))])).await
}
