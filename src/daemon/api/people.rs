//! `/api/users`: the people of the workspace (owners only): list, add (with a
//! first token, its secret answered once) and remove (their tokens stop
//! opening anything).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, ApiResult, actor, json_body};
use crate::access::{self, AccessError, Principal, Role};
use crate::daemon::Daemon;

fn access_error(e: AccessError) -> ApiError {
    match e {
        AccessError::BadEmail(_) => {
            ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "email", e.to_string())
        }
        AccessError::BadUserName => {
            ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "name", e.to_string())
        }
        AccessError::UserTaken(_) | AccessError::NameTaken(_) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        AccessError::NoSuchUser(_) | AccessError::NoSuchToken(_) => {
            ApiError::not_found(e.to_string())
        }
        other => ApiError::internal(other),
    }
}

pub async fn list(State(d): State<Arc<Daemon>>) -> ApiResult {
    let users = d
        .worker()
        .store()
        .read_async(|db| Ok(access::users(db)))
        .await
        .map_err(ApiError::internal)?
        .map_err(access_error)?;
    Ok(axum::Json(json!({ "users": users })).into_response())
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    email: String,
    name: String,
    /// `viewer`, `editor` or `owner`.
    role: Role,
}

pub async fn add(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let b: UserBody = json_body(&headers, &body)?;
    let by = actor(&who);
    let (email, role) = (b.email.trim().to_lowercase(), b.role);
    let e = email.clone();
    let made = d
        .worker()
        .store()
        .write(move |db| {
            let now = crate::store::now_ms();
            let made = access::add_user(db, &e, &b.name, role, &by, now);
            if made.is_ok() {
                crate::audit::record(
                    db,
                    &by,
                    "add_user",
                    "user",
                    Some(&e),
                    &json!({"name": b.name, "role": role.as_str()}),
                    now,
                )?;
            }
            Ok(made)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(access_error)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "email": email, "role": role, "token": made })),
    )
        .into_response())
}

pub async fn remove(
    State(d): State<Arc<Daemon>>,
    Extension(who): Extension<Principal>,
    Path(email): Path<String>,
) -> ApiResult {
    let by = actor(&who);
    let e = email.trim().to_lowercase();
    let key = e.clone();
    d.worker()
        .store()
        .write(move |db| {
            let now = crate::store::now_ms();
            let done = access::remove_user(db, &key, now);
            if done.is_ok() {
                crate::audit::record(db, &by, "remove_user", "user", Some(&key), &json!({}), now)?;
            }
            Ok(done)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(access_error)?;
    Ok(axum::Json(json!({ "email": e, "removed": true })).into_response())
}
