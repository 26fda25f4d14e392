//! The REST API under `/api` on the daemon's own host: the seed's route groups
//! (templates, components, workflows, crm, automation, analytics, ai), each
//! route with the role it needs. [`routes`] is the one table: the router is
//! built from it and so is the OpenAPI 3.1 document at `/api/openapi.json`, so a
//! route cannot exist undocumented.
//!
//! Every answer is JSON; errors are `{"error": {"code", "message", "field"?}}`.
//! A request names its token as `Authorization: Bearer <secret>`: none or an
//! unknown one is 401, a role too small 403.

mod automation;
mod campaigns;
mod catalog;
mod crm;
mod desk;
mod insight;
pub mod openapi;
mod people;
mod proposals;
mod publishing;
mod reports;
mod site_components;
mod subscriptions;
mod sync;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use serde::de::DeserializeOwned;

use super::Daemon;
use crate::access::{self, Principal, Role};
use crate::web::{field_error, json_error};

/// One route of the API.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    /// The path, with `{name}` parameters (axum's and OpenAPI's syntax alike).
    pub path: &'static str,
    /// The role it needs; `None` for the few public ones.
    pub role: Option<Role>,
    /// The seed's route group (`crm`, `automation`, …).
    pub group: &'static str,
    pub summary: &'static str,
    /// The JSON Schema of the body it reads, if it reads one.
    pub body: Option<fn() -> serde_json::Value>,
}

type Handler = MethodRouter<Arc<Daemon>>;

fn route(
    method: Method,
    path: &'static str,
    role: Option<Role>,
    group: &'static str,
    summary: &'static str,
    handler: Handler,
) -> (Route, Handler) {
    (
        Route {
            method,
            path,
            role,
            group,
            summary,
            body: None,
        },
        handler,
    )
}

/// A route that reads a JSON body of type `T`: the document shows its schema.
fn with_body<T: schemars::JsonSchema>((mut r, h): (Route, Handler)) -> (Route, Handler) {
    r.body = Some(body_schema::<T>);
    (r, h)
}

/// `T`'s JSON Schema (2020-12, as OpenAPI 3.1 uses), every part inline.
fn body_schema<T: schemars::JsonSchema>() -> serde_json::Value {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    if let Some(o) = schema.as_object_mut() {
        o.remove("$schema");
    }
    schema
}

/// Every route of the API with its handler.
pub fn routes() -> Vec<(Route, Handler)> {
    use axum::routing::{get, post};
    use {Method as M, Role as R};
    vec![
        route(
            M::GET,
            "/api/openapi.json",
            None,
            "meta",
            "This document",
            get(openapi::serve),
        ),
        route(
            M::GET,
            "/api/templates",
            Some(R::Viewer),
            "templates",
            "Site templates, filtered by category or search, at most `limit`",
            get(catalog::templates),
        ),
        route(
            M::GET,
            "/api/templates/{id}",
            Some(R::Viewer),
            "templates",
            "One template: its variables, pages and components",
            get(catalog::template),
        ),
        route(
            M::GET,
            "/api/templates/{id}/components",
            Some(R::Viewer),
            "templates",
            "The component instances of a template's pages",
            get(catalog::template_components),
        ),
        with_body::<proposals::InstantiateBody>(route(
            M::POST,
            "/api/templates/{id}/instantiate",
            Some(R::Editor),
            "templates",
            "Propose a new site from a template (`site_id`, `customizations`, `name`, `domain`)",
            post(proposals::instantiate),
        )),
        route(
            M::GET,
            "/api/components",
            Some(R::Viewer),
            "components",
            "The component library",
            get(catalog::components),
        ),
        route(
            M::GET,
            "/api/components/{id}/workflows",
            Some(R::Viewer),
            "components",
            "The workflows wired to a component's events",
            get(catalog::component_workflows),
        ),
        route(
            M::GET,
            "/api/sites/{site}/components",
            Some(R::Viewer),
            "components",
            "A site's component instances: page, config, override and the workflows wired to each",
            get(site_components::list),
        ),
        with_body::<site_components::AddBody>(route(
            M::POST,
            "/api/sites/{site}/components",
            Some(R::Editor),
            "components",
            "Propose a new instance on one of the site's pages (`page`, `id`, `component`, `config`)",
            post(site_components::add),
        )),
        with_body::<site_components::ConfigBody>(route(
            M::PUT,
            "/api/sites/{site}/components/{id}",
            Some(R::Editor),
            "components",
            "Propose an instance's new `config` (a template's instance gets an override)",
            axum::routing::put(site_components::configure),
        )),
        route(
            M::DELETE,
            "/api/sites/{site}/components/{id}",
            Some(R::Editor),
            "components",
            "Propose removing an instance from its page (a template's: its override)",
            axum::routing::delete(site_components::remove),
        ),
        route(
            M::GET,
            "/api/workflows",
            Some(R::Viewer),
            "workflows",
            "The running workflows and their triggers",
            get(automation::workflows),
        ),
        with_body::<proposals::WorkflowBody>(route(
            M::POST,
            "/api/workflows",
            Some(R::Editor),
            "workflows",
            "Propose a new workflow (`id` and `workflow` or `yaml`): a validated commit on a branch, live once an owner approves",
            post(proposals::create_workflow),
        )),
        with_body::<proposals::WorkflowBody>(route(
            M::PUT,
            "/api/workflows/{id}",
            Some(R::Editor),
            "workflows",
            "Propose a change to a workflow (`workflow` or `yaml`)",
            axum::routing::put(proposals::update_workflow),
        )),
        route(
            M::GET,
            "/api/workflows/{id}/analytics",
            Some(R::Viewer),
            "workflows",
            "A workflow's execution statistics",
            get(automation::workflow_analytics),
        ),
        with_body::<automation::Execute>(route(
            M::POST,
            "/api/workflows/{id}/execute",
            Some(R::Editor),
            "workflows",
            "Start a workflow with `trigger_data`",
            post(automation::execute),
        )),
        route(
            M::GET,
            "/api/automation/stream",
            Some(R::Viewer),
            "automation",
            "Server-sent events: each execution that ends (`finished`) and each step that fails (`step_failed`)",
            get(automation::stream),
        ),
        route(
            M::GET,
            "/api/automation/executions",
            Some(R::Viewer),
            "automation",
            "The newest executions, by workflow and status",
            get(automation::executions),
        ),
        route(
            M::GET,
            "/api/automation/executions/{id}",
            Some(R::Viewer),
            "automation",
            "One execution with its steps",
            get(automation::execution),
        ),
        route(
            M::POST,
            "/api/automation/executions/{id}/retry",
            Some(R::Editor),
            "automation",
            "Retry a failed execution from its failed step",
            post(automation::retry),
        ),
        route(
            M::POST,
            "/api/automation/executions/{id}/cancel",
            Some(R::Editor),
            "automation",
            "Cancel a waiting or running execution",
            post(automation::cancel),
        ),
        route(
            M::GET,
            "/api/crm/contacts",
            Some(R::Viewer),
            "crm",
            "Contacts, optionally of one `segment`, in pages (`after`, `limit`)",
            get(crm::contacts),
        ),
        with_body::<crm::NewContactBody>(route(
            M::POST,
            "/api/crm/contacts",
            Some(R::Editor),
            "crm",
            "Create or update a contact by email",
            post(crm::upsert),
        )),
        route(
            M::GET,
            "/api/crm/contacts/{id}",
            Some(R::Viewer),
            "crm",
            "One contact with fields, tags, lists, score and timeline",
            get(crm::contact),
        ),
        with_body::<crm::ActivityBody>(route(
            M::POST,
            "/api/crm/contacts/{id}/activities",
            Some(R::Editor),
            "crm",
            "Record an activity on a contact's timeline",
            post(crm::activity),
        )),
        route(
            M::GET,
            "/api/workspace",
            Some(R::Viewer),
            "desk",
            "Who the token is (`role`, and `info.actor` when it may change things) and what the workspace has: segments, lists, fields, pipelines, workflows",
            get(desk::workspace),
        ),
        with_body::<desk::PageBody>(route(
            M::POST,
            "/api/crm/contacts/page",
            Some(R::Viewer),
            "crm",
            "A keyset page of contacts meeting a condition (`where`, `cursor`, `limit`), newest first",
            post(desk::page),
        )),
        with_body::<desk::CountBody>(route(
            M::POST,
            "/api/crm/contacts/count",
            Some(R::Viewer),
            "crm",
            "How many contacts meet a condition (`where`)",
            post(desk::count),
        )),
        route(
            M::GET,
            "/api/crm/contacts/search",
            Some(R::Viewer),
            "crm",
            "Contacts matching every word of `q`, best first, at most `limit`",
            get(desk::search),
        ),
        route(
            M::GET,
            "/api/crm/contacts/{id}/detail",
            Some(R::Viewer),
            "crm",
            "A contact with its score's parts, deals, consent and timeline (activities and audited changes)",
            get(desk::detail),
        ),
        route(
            M::GET,
            "/api/crm/contacts/{id}/export",
            Some(R::Editor),
            "crm",
            "Everything held about a person (a data subject's export)",
            get(desk::export),
        ),
        route(
            M::GET,
            "/api/crm/pipelines/{id}/board",
            Some(R::Viewer),
            "crm",
            "A pipeline's board: per stage its count, weighted total and newest deals",
            get(desk::board),
        ),
        route(
            M::GET,
            "/api/crm/duplicates",
            Some(R::Viewer),
            "crm",
            "Likely duplicate pairs, best first, at most `limit` (dismissed pairs never)",
            get(desk::duplicates),
        ),
        route(
            M::GET,
            "/api/crm/campaigns/overview",
            Some(R::Viewer),
            "crm",
            "Each campaign's state with its plan (before sending) or numbers per variant (after)",
            get(desk::campaigns),
        ),
        route(
            M::GET,
            "/api/automation/counts",
            Some(R::Viewer),
            "automation",
            "Executions per workflow by status, the last 30 days",
            get(desk::counts),
        ),
        route(
            M::GET,
            "/api/analytics/dashboard",
            Some(R::Viewer),
            "analytics",
            "Contacts, new contacts per day, conversions per site and component, executions per hour, opens and clicks per day",
            get(desk::dashboard),
        ),
        with_body::<crate::desk::Change>(route(
            M::POST,
            "/api/changes",
            Some(R::Editor),
            "desk",
            "One change as `funnel tui` makes it (`change`: add_tags, set_field, move_deal, bulk, merge, dismiss, forget, campaign_send, …), audited as the token; erasing needs an owner",
            post(desk::change),
        )),
        route(
            M::GET,
            "/api/crm/campaigns",
            Some(R::Viewer),
            "crm",
            "Every campaign with its state and recipients",
            get(campaigns::list),
        ),
        with_body::<campaigns::CampaignBody>(route(
            M::POST,
            "/api/crm/campaigns",
            Some(R::Editor),
            "crm",
            "Propose a campaign: a broadcast as campaigns/<id>.yaml, a drip (emails with delay_hours) as a workflow",
            post(campaigns::create),
        )),
        route(
            M::GET,
            "/api/crm/campaigns/{id}/analytics",
            Some(R::Viewer),
            "crm",
            "A campaign's sent, delivered, bounced, unique opens and clicks and unsubscribes, per variant, with rates",
            get(campaigns::analytics),
        ),
        route(
            M::GET,
            "/api/analytics/sites/{site}",
            Some(R::Viewer),
            "analytics",
            "A site's visitors, views, conversions and components",
            get(insight::site),
        ),
        route(
            M::GET,
            "/api/analytics/sites/{site}/heatmap",
            Some(R::Viewer),
            "analytics",
            "Where a site's clicks land on each page, per component (`days`, `page`)",
            get(reports::heatmap),
        ),
        route(
            M::GET,
            "/api/analytics/sites/{site}/paths",
            Some(R::Viewer),
            "analytics",
            "The most common paths of pages and clicks to a form post, and the pages visits end on without one (`days`)",
            get(reports::paths),
        ),
        route(
            M::GET,
            "/api/analytics/roi",
            Some(R::Viewer),
            "analytics",
            "The value of deals won credited to workflows and campaigns, last touch and linear, against the cost of their sends (`days`)",
            get(reports::roi),
        ),
        route(
            M::GET,
            "/api/analytics/forecast",
            Some(R::Viewer),
            "analytics",
            "Each workflow's runs and conversions per week, the next four weeks and the method's past error (`workflow`)",
            get(reports::forecast),
        ),
        route(
            M::GET,
            "/api/analytics/requests",
            Some(R::Viewer),
            "analytics",
            "The daemon's requests, errors and latency per minute and route (`since` in Unix ms, default the last hour)",
            get(insight::minutes),
        ),
        route(
            M::GET,
            "/api/publishing/sites/{site}",
            Some(R::Viewer),
            "publishing",
            "A site's live address and last publish",
            get(publishing::status),
        ),
        route(
            M::POST,
            "/api/publishing/sites/{site}/publish",
            Some(R::Editor),
            "publishing",
            "Publish a site to static files (public/<site>/), links checked",
            post(publishing::publish),
        ),
        route(
            M::GET,
            "/api/ai/optimize",
            Some(R::Viewer),
            "ai",
            "Advice from the figures (`target`: a workflow, template or site; `days`, default 30): failing steps, weak subject lines, forms, funnel drop-offs",
            get(insight::optimize),
        ),
        with_body::<insight::SuggestBody>(route(
            M::POST,
            "/api/ai/suggest-workflows",
            Some(R::Editor),
            "ai",
            "Workflow suggestions for a component: ranked recipes with confidence, reasons and the workflow",
            post(insight::suggest),
        )),
        route(
            M::GET,
            "/api/proposals",
            Some(R::Viewer),
            "proposals",
            "Open proposals (`all=true`: decided ones too)",
            get(proposals::list),
        ),
        with_body::<proposals::FilesBody>(route(
            M::POST,
            "/api/proposals",
            Some(R::Editor),
            "proposals",
            "Propose changes to workspace files (`title`, `files`: path to content or null)",
            post(proposals::create),
        )),
        route(
            M::GET,
            "/api/proposals/{id}",
            Some(R::Viewer),
            "proposals",
            "One proposal",
            get(proposals::show),
        ),
        route(
            M::POST,
            "/api/proposals/{id}/approve",
            Some(R::Owner),
            "proposals",
            "Merge a proposal's branch; the change goes live",
            post(proposals::approve),
        ),
        route(
            M::POST,
            "/api/proposals/{id}/reject",
            Some(R::Owner),
            "proposals",
            "Reject a proposal",
            post(proposals::reject),
        ),
        with_body::<crate::sync::session::Request>(route(
            M::POST,
            "/api/sync",
            Some(R::Editor),
            "sync",
            "One round of `funnel sync`: applies the store's page of `changes` (node, item, stamp, value), answers the next page of this store's feed after `since` (never the asker's own changes); `status: true` only counts what waits",
            // A round carries a page of changes: more than a form's 64 KiB.
            post(sync::exchange).layer(axum::extract::DefaultBodyLimit::max(sync::MAX_BODY_BYTES)),
        )),
        with_body::<subscriptions::SubscribeBody>(route(
            M::POST,
            "/api/hooks/subscriptions",
            Some(R::Editor),
            "hooks",
            "Subscribe a URL to an event (`event`, `target_url`): each one posted signed with the secret this answers once, retried with backoff; a 410 answer unsubscribes",
            post(subscriptions::subscribe),
        )),
        route(
            M::GET,
            "/api/hooks/subscriptions",
            Some(R::Editor),
            "hooks",
            "The webhook subscriptions with their pending and failed deliveries (never a secret)",
            get(subscriptions::list),
        ),
        route(
            M::DELETE,
            "/api/hooks/subscriptions/{id}",
            Some(R::Editor),
            "hooks",
            "Unsubscribe: no more deliveries, waiting ones dropped (`unsubscribed`: whether it was there)",
            axum::routing::delete(subscriptions::unsubscribe),
        ),
        with_body::<proposals::CommentBody>(route(
            M::POST,
            "/api/proposals/{id}/comments",
            Some(R::Editor),
            "proposals",
            "Comment on a proposal (`body`), as the token's person",
            post(proposals::add_comment),
        )),
        route(
            M::GET,
            "/api/users",
            Some(R::Owner),
            "access",
            "The people of the workspace with their roles and live tokens",
            get(people::list),
        ),
        with_body::<people::UserBody>(route(
            M::POST,
            "/api/users",
            Some(R::Owner),
            "access",
            "Add a person (`email`, `name`, `role`); their first token's secret is answered once",
            post(people::add),
        )),
        route(
            M::DELETE,
            "/api/users/{email}",
            Some(R::Owner),
            "access",
            "Remove a person: their tokens open nothing from now on",
            axum::routing::delete(people::remove),
        ),
        route(
            M::GET,
            "/api/audit",
            Some(R::Owner),
            "access",
            "The log of changes, newest first (`since` in Unix ms, `actor`, `limit`)",
            get(crm::audit),
        ),
        route(
            M::GET,
            "/api/tokens",
            Some(R::Owner),
            "access",
            "The API tokens (never their secrets)",
            get(crm::tokens),
        ),
    ]
}

/// The `/api` routes, each behind its role check.
pub fn router(d: &Arc<Daemon>) -> axum::Router<Arc<Daemon>> {
    let mut r = axum::Router::new();
    for (meta, handler) in routes() {
        let guarded = handler.route_layer(axum::middleware::from_fn_with_state(
            (d.clone(), meta.role),
            require,
        ));
        r = r.route(meta.path, guarded);
    }
    r
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

async fn require(
    State((d, role)): State<(Arc<Daemon>, Option<Role>)>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(needed) = role else {
        return next.run(req).await;
    };
    let Some(token) = bearer(req.headers()) else {
        return unauthorized("this needs a token: `Authorization: Bearer <secret>`");
    };
    let found = d
        .worker()
        .store()
        .read_async(move |db| {
            access::authenticate(db, &token)
                .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))
        })
        .await;
    let principal = match found {
        Ok(Some(p)) => p,
        Ok(None) => return unauthorized("the token is unknown or revoked"),
        Err(e) => {
            tracing::error!(error = %e, "token check failed");
            return json_error(StatusCode::SERVICE_UNAVAILABLE, "the store does not answer");
        }
    };
    if principal.role < needed {
        return json_error(
            StatusCode::FORBIDDEN,
            format!(
                "this needs the {needed} role; token `{}` is a {}",
                principal.name, principal.role
            ),
        );
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

fn unauthorized(message: &str) -> Response {
    let mut r = json_error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// An API error: a status, a message and optionally the field at fault.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: None,
        }
    }

    pub fn field(status: StatusCode, field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: Some(field.to_string()),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// A store or engine failure: logged in full, answered without details.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "API request failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the request could not be completed; try again",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self.field {
            Some(f) => field_error(self.status, self.message, f),
            None => json_error(self.status, self.message),
        }
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// A JSON body of type `T`: `application/json`, no Content-Encoding, valid
/// UTF-8 and JSON, the right shape; else a 4xx naming what is wrong.
pub fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    if let Some(enc) = headers.get(header::CONTENT_ENCODING)
        && !enc.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body without Content-Encoding",
        ));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body is application/json",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let status = if inner.is_syntax() || inner.is_eof() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        // serde names a missing or unknown field in its message, at the parent's path.
        let message = inner.to_string();
        let named = ["missing field `", "unknown field `"]
            .iter()
            .find_map(|p| message.strip_prefix(p)?.split('`').next());
        if let Some(field) = named {
            let full = if path == "." {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            ApiError::field(status, &full, format!("the body: {message}"))
        } else if path == "." {
            ApiError::new(status, format!("the body: {inner}"))
        } else {
            ApiError::field(status, &path, format!("`{path}`: {inner}"))
        }
    })
}

/// A query string as `T`, or a 400 naming the problem.
/// A 404 unless `site` is a site of the daemon's workspace.
fn known_site(d: &crate::daemon::Daemon, site: &str) -> Result<(), ApiError> {
    if d.workspace().sites.contains_key(site) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no site `{}`",
            site.chars().take(100).collect::<String>()
        )))
    }
}

pub fn query<T: DeserializeOwned>(uri: &axum::http::Uri) -> Result<T, ApiError> {
    serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the query string: {e}")))
}

/// The actor a change is recorded under: the person, else the token.
pub fn actor(p: &Principal) -> String {
    p.actor()
}
