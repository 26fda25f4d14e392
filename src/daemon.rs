//! The daemon: one long-running process that makes a workspace live. It serves
//! every site by host name (`<site>.localhost` on loopback, each site's domain on
//! a server), runs the engine's worker beside them (timers, schedules, the
//! outbox), answers `/healthz`, `/readyz` and `/metrics`, and picks up changed
//! workspace files once they validate: a bad edit is logged with its diagnostics
//! and never replaces what runs. `funnel up` and `funnel daemon` start it.
//!
//! - [`hosts`]: the set of live sites, found by the request's host.
//! - [`api`]: the REST API under `/api`, its roles and its OpenAPI document.
//! - [`health`]: health, readiness and Prometheus metrics.
//! - [`hooks`]: inbound webhooks, signed and checked against replays.
//! - [`listen`]: the connections, with header and idle timeouts.
//! - [`systemd`]: systemd's readiness, watchdog and stopping messages.
//! - [`rollup`]: per-minute rollups of the metrics, kept in the store.
//! - [`reload`]: the file watcher and the validated swap of engine and sites.
//! - [`tls`]: HTTPS for the sites' domains: certificates over ACME, renewed in
//!   place, HTTP redirected, HSTS.

pub mod api;
pub mod health;
pub mod hooks;
pub mod hosts;
pub mod listen;
pub mod reload;
pub mod rollup;
pub mod systemd;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use tower::ServiceExt as _;

use crate::engine::worker::Worker;
use crate::engine::{Engine, EngineError};
use crate::publish::PublishError;
use crate::store::Store;
use crate::workspace::Workspace;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Config(String),
    #[error("watching the workspace: {0}")]
    Watch(#[from] notify::Error),
}

/// How sites are addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressing {
    /// Every site at `http://<site>.localhost:<port>` (`funnel up`).
    Local,
    /// Each site at its domain (`https://<domain>`), else at `<site>.localhost`.
    Domains,
    /// One site, at the listening address itself, whatever the host
    /// (`funnel preview SITE`).
    Only(String),
}

/// How the daemon serves its sites.
#[derive(Debug, Clone)]
pub struct Serving {
    pub addressing: Addressing,
    /// Pages get the live-reload script and reload when the site changes.
    pub live_reload: bool,
    /// Where one-line notices of form posts go, for a shell that shows them.
    pub notices: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl Serving {
    pub fn new(addressing: Addressing) -> Serving {
        Serving {
            addressing,
            live_reload: false,
            notices: None,
        }
    }
}

/// A running daemon's shared state.
#[derive(Debug)]
pub struct Daemon {
    pub root: PathBuf,
    /// The address it listens on.
    pub addr: SocketAddr,
    serving: Serving,
    worker: Worker,
    /// Client addresses and rate limits, kept across reloads (a reload does not
    /// reset anyone's rate).
    gate: Arc<crate::web::gate::Gate>,
    /// The running (validated) workspace, swapped whole on reload.
    ws: RwLock<Arc<Workspace>>,
    sites: RwLock<Arc<hosts::Sites>>,
    pub metrics: health::Metrics,
    /// Webhook signatures seen recently.
    replays: hooks::ReplayCache,
    started: Instant,
    /// Certificates served by domain and the ACME answers waiting.
    pub https: tls::Https,
}

impl Daemon {
    /// Builds every site of `ws` for a daemon listening on `addr`, with a worker on
    /// `store` running `engine`, and registers the workspace's workflows as the
    /// store's active set.
    pub async fn new(
        ws: Arc<Workspace>,
        store: Store,
        engine: Arc<Engine>,
        addr: SocketAddr,
        serving: Serving,
    ) -> Result<Arc<Daemon>, DaemonError> {
        let worker = Worker::new(store, engine)?;
        let gate = Arc::new(
            crate::web::gate::Gate::from_config(ws.config.as_ref().map(|c| &c.value))
                .map_err(|e| DaemonError::Config(format!("funnel.yaml daemon: {e}")))?,
        );
        let built = hosts::Sites::build(&ws, addr, &serving)?;
        let sites = hosts::Sites::assemble(built, &worker, &gate, &serving, None);
        worker.prepare(worker.now()).await?;
        Ok(Arc::new(Daemon {
            root: ws.root.clone(),
            addr,
            serving,
            worker,
            gate,
            ws: RwLock::new(ws),
            sites: RwLock::new(Arc::new(sites)),
            metrics: health::Metrics::default(),
            replays: hooks::ReplayCache::default(),
            started: Instant::now(),
            https: tls::Https::default(),
        }))
    }

    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// The workspace running now.
    pub fn workspace(&self) -> Arc<Workspace> {
        match self.ws.read() {
            Ok(w) => w.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The sites served now.
    pub fn sites(&self) -> Arc<hosts::Sites> {
        match self.sites.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes a changed (validated) workspace the running one: its sites rebuilt
    /// first, so a site that fails to build leaves everything as it was; then its
    /// engine, whose workflows become the store's active set. Executions in flight
    /// keep the versions they started on.
    pub async fn reload(&self, ws: Workspace) -> Result<(), DaemonError> {
        let engine = Arc::new(Engine::from_workspace(&ws)?);
        let built = hosts::Sites::build(&ws, self.addr, &self.serving)?;
        self.worker.replace_engine(engine).await?;
        // Only now, with every site built and the engine in place, do the
        // running sites change.
        let previous = self.sites();
        let sites = hosts::Sites::assemble(
            built,
            &self.worker,
            &self.gate,
            &self.serving,
            Some(&previous),
        );
        match self.sites.write() {
            Ok(mut s) => *s = Arc::new(sites),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(sites),
        }
        match self.ws.write() {
            Ok(mut w) => *w = Arc::new(ws),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ws),
        }
        Ok(())
    }

    /// The HTTP entry: a request for a site's host goes to that site's routes,
    /// anything else to the daemon's own (health, metrics, webhooks).
    pub fn router(self: &Arc<Self>) -> axum::Router {
        use axum::routing::{get, post};
        axum::Router::new()
            .route("/", get(health::index))
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .route("/metrics", get(health::metrics))
            .route("/hooks/{*path}", post(hooks::receive))
            .merge(crate::web::unsubscribe::routes())
            .merge(crate::web::tracking::routes())
            .merge(crate::web::email_events::routes())
            .merge(crate::web::preferences::routes())
            .merge(crate::web::preferences::confirm_routes())
            .merge(api::router(self))
            .fallback(unknown_route)
            .method_not_allowed_fallback(wrong_method)
            .layer(axum::extract::DefaultBodyLimit::max(
                crate::web::MAX_BODY_BYTES,
            ))
            .layer(axum::middleware::from_fn_with_state(self.clone(), front))
            .with_state(self.clone())
    }

    /// Runs the worker and serves `listener` until `shutdown` completes, then
    /// stops taking requests, lets those in flight finish and stops the worker
    /// after its current transaction.
    /// With `https`, that listener serves the sites' domains over TLS, and
    /// their certificates are obtained and renewed as funnel.yaml's
    /// `daemon.tls` says.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        https: Option<tokio::net::TcpListener>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), DaemonError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let background = {
            let worker = self.worker.clone();
            let mut rx = stop_rx.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|s| *s).await;
                };
                if let Err(e) = worker.run(stop).await {
                    tracing::error!(error = %e, "the worker stopped");
                }
            })
        };
        let rollups = rollup::spawn(&self);
        let notifier = systemd::Notifier::from_env();
        let watchdog = notifier.clone().and_then(|n| {
            let every = n.watchdog?;
            let d = self.clone();
            Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    // Alive means answering: a store that does not answer within
                    // the interval lets systemd restart the daemon.
                    let store = d.worker.store().clone();
                    let answered = tokio::time::timeout(
                        every,
                        store.read_async(|db| {
                            db.query_row("SELECT 1", crate::store::db::params![], |r| {
                                r.get::<i64>(0)
                            })
                        }),
                    )
                    .await;
                    if matches!(answered, Ok(Ok(_))) {
                        n.send("WATCHDOG=1");
                    } else {
                        tracing::warn!("the store did not answer: no watchdog ping");
                    }
                }
            }))
        });
        if let Some(n) = &notifier {
            n.send(&format!(
                "READY=1\nMAINPID={}\nSTATUS=serving on {}",
                std::process::id(),
                self.addr
            ));
        }
        let stopping = notifier.clone();
        let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            if let Some(n) = stopping {
                n.send("STOPPING=1\nSTATUS=draining");
            }
            let _ = stopped_tx.send(true);
        };
        let (secure, renewal) = match https {
            Some(l) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(
                    self.https
                        .resolver
                        .server_config()
                        .map_err(|e| DaemonError::Config(e.to_string()))?,
                );
                self.https.listening_on(l.local_addr()?.port());
                let router = self.router();
                let mut rx = stopped_rx.clone();
                let stop = async move {
                    let _ = rx.wait_for(|s| *s).await;
                };
                (
                    Some(tokio::spawn(listen::serve(l, router, Some(acceptor), stop))),
                    Some(tls::spawn_renewal(self.clone())),
                )
            }
            None => (None, None),
        };
        listen::serve(listener, self.router(), None, shutdown).await;
        if let Some(s) = secure {
            let _ = s.await;
        }
        if let Some(r) = renewal {
            r.abort();
        }
        if let Some(w) = watchdog {
            w.abort();
        }
        let _ = stop_tx.send(true);
        let _ = background.await;
        rollups.abort();
        if let Err(e) = rollup::flush(&self, true).await {
            tracing::warn!(error = %e, "the last minute's metrics were not stored");
        }
        Ok(())
    }
}

impl axum::extract::FromRef<Arc<Daemon>> for Worker {
    fn from_ref(d: &Arc<Daemon>) -> Worker {
        d.worker.clone()
    }
}

/// In front of every request: a site's host goes to the site, the rest on to
/// the daemon's routes; every answer gets the security headers and is counted.
async fn front(
    State(d): State<Arc<Daemon>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    let host = hosts::host_of(req.headers());
    let over_tls = req.extensions().get::<listen::Secure>().is_some();
    if !over_tls {
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        if let Some(mut response) = d.https.plain_answer(host.as_deref(), target) {
            secure(response.headers_mut());
            d.metrics
                .observe("acme", response.status(), started.elapsed());
            return response;
        }
    }
    let sites = d.sites();
    let site = host.map_or_else(|| sites.find(""), |h| sites.find(&h));
    // A page request may get the site's HTML 404; anything else a program sends
    // gets its errors as JSON, whichever layer made them.
    let page_request = (req.method() == axum::http::Method::GET
        || req.method() == axum::http::Method::HEAD)
        && site.is_some();
    let (route, answer) = match site {
        Some(site) => {
            let route = health::site_route(req.uri().path());
            let router = site.router();
            let answer = async move {
                match router.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            };
            (route, answer.boxed())
        }
        None => (health::own_route(req.uri().path()), next.run(req).boxed()),
    };
    // A request (its body included: a client that sends it slowly) has this long;
    // a streamed answer's body is not counted.
    let mut response = match tokio::time::timeout(REQUEST_TIMEOUT, answer).await {
        Ok(r) => r,
        Err(_) => crate::web::json_error(
            StatusCode::REQUEST_TIMEOUT,
            "the request took too long; send it again",
        ),
    };
    if !page_request {
        response = json_errors(response).await;
    }
    secure(response.headers_mut());
    if over_tls {
        let ws = d.workspace();
        // Only while funnel.yaml turns TLS on: HSTS outlives any answer.
        if let Some(config) = tls::config(&ws) {
            response
                .headers_mut()
                .insert(header::STRICT_TRANSPORT_SECURITY, tls::hsts(config));
        }
    }
    d.metrics
        .observe(route, response.status(), started.elapsed());
    response
}

/// An error answer that is not JSON (a body-size limit, a method the router does
/// not take) rewritten as the JSON error of its status, its text as the message.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut r = crate::web::json_error(status, message);
    if let Some(v) = retry_after {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

async fn unknown_route(uri: axum::http::Uri) -> Response {
    not_found(format!(
        "nothing at `{}` here; sites answer on their own host (see /)",
        uri.path().chars().take(100).collect::<String>()
    ))
}

async fn wrong_method(method: axum::http::Method) -> Response {
    crate::web::json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed here"),
    )
}

/// How long a request may take, from its head to the answer's head.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Headers every answer carries.
fn secure(h: &mut axum::http::HeaderMap) {
    let defaults = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
        (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
    ];
    for (name, value) in defaults {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
}

/// A JSON error of the daemon's own routes.
pub fn not_found(message: String) -> Response {
    crate::web::json_error(StatusCode::NOT_FOUND, message).into_response()
}
