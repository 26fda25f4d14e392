//! The live sites and the host names they answer on: `<site>.localhost` (browsers
//! resolve every `*.localhost` name to loopback), and on a server each site's
//! `domain` from site.yaml. Each site is built once per workspace revision and
//! served by the same routes `funnel preview` uses.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, header};

use super::{Addressing, Serving};
use crate::engine::worker::Worker;
use crate::publish::{self, Options, PublishError};
use crate::web::SiteServer;
use crate::web::gate::Gate;
use crate::workspace::Workspace;

/// One live site.
#[derive(Debug)]
pub struct Site {
    pub name: String,
    /// Where it is reached (forms on its pages post there).
    pub url: String,
    pub server: Arc<SiteServer>,
    router: axum::Router,
}

impl Site {
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }
}

/// A site built and not yet in service.
#[derive(Debug)]
pub struct Built {
    name: String,
    url: String,
    domain: Option<String>,
    build: crate::publish::Build,
}

/// Every live site, by host name.
#[derive(Debug, Default)]
pub struct Sites {
    list: Vec<Site>,
    by_host: HashMap<String, usize>,
    /// One site answers every host (the preview).
    only: bool,
}

impl Sites {
    /// Builds every site of `ws` (or the one `Addressing::Only` names) for a
    /// daemon on `addr`, touching nothing that serves: the first site that does
    /// not build stops it, and nothing changed.
    pub fn build(
        ws: &Workspace,
        addr: std::net::SocketAddr,
        serving: &Serving,
    ) -> Result<Vec<Built>, PublishError> {
        let mut out = Vec::new();
        for (name, doc) in &ws.sites {
            if let Addressing::Only(one) = &serving.addressing
                && one != name
            {
                continue;
            }
            let local = format!("http://{name}.localhost:{}", addr.port());
            let domain = doc
                .value
                .domain
                .as_deref()
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase());
            let url = match (&domain, &serving.addressing) {
                (Some(d), Addressing::Domains) => format!("https://{d}"),
                (_, Addressing::Only(_)) => format!("http://{addr}"),
                _ => local,
            };
            let opts = Options {
                public_url: url.clone(),
                base_url: Some(url.clone()),
            };
            let build = publish::build(ws, name, &opts)?;
            out.push(Built {
                name: name.clone(),
                url,
                domain,
                build,
            });
        }
        Ok(out)
    }

    /// Puts built sites in service. A site `previous` serves keeps its server,
    /// with the new build swapped in, so pages waiting for a live reload see it.
    pub fn assemble(
        built: Vec<Built>,
        worker: &Worker,
        gate: &Arc<Gate>,
        serving: &Serving,
        previous: Option<&Sites>,
    ) -> Sites {
        let mut sites = Sites {
            only: matches!(serving.addressing, Addressing::Only(_)),
            ..Sites::default()
        };
        for Built {
            name,
            url,
            domain,
            build,
        } in built
        {
            let kept = previous.and_then(|p| p.list.iter().find(|s| s.name == name));
            let (server, router) = match kept {
                Some(old) => {
                    old.server.replace(build);
                    (old.server.clone(), old.router.clone())
                }
                None => {
                    let server = Arc::new(SiteServer {
                        site: name.clone(),
                        build: RwLock::new(Arc::new(build)),
                        worker: worker.clone(),
                        version: tokio::sync::watch::channel(0).0,
                        live_reload: serving.live_reload,
                        notices: serving.notices.clone(),
                        gate: gate.clone(),
                    });
                    let router = crate::web::router(server.clone());
                    (server, router)
                }
            };
            let index = sites.list.len();
            sites.by_host.insert(format!("{name}.localhost"), index);
            if let Some(d) = domain {
                sites.by_host.insert(d, index);
            }
            sites.list.push(Site {
                name,
                url,
                router,
                server,
            });
        }
        sites
    }

    /// The site answering on `host` (lowercase, without port).
    pub fn find(&self, host: &str) -> Option<&Site> {
        if self.only {
            return self.list.first();
        }
        self.by_host.get(host).map(|i| &self.list[*i])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Site> {
        self.list.iter()
    }
}

/// The request's host name: its `Host` header without the port or a trailing
/// dot, lowercased; `None` when absent or not text.
pub fn host_of(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::HOST)?.to_str().ok()?.trim();
    let name = if let Some(rest) = raw.strip_prefix('[') {
        // An IPv6 literal: `[::1]:7878`.
        rest.split(']').next()?
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                raw
            }
        })
    };
    Some(name.trim_end_matches('.').to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(v: &str) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, v.parse().expect("header"));
        host_of(&h)
    }

    #[test]
    fn hosts_lose_port_case_and_trailing_dot() {
        assert_eq!(
            host("Demo.LocalHost:7878").as_deref(),
            Some("demo.localhost")
        );
        assert_eq!(
            host("www.acme.example.").as_deref(),
            Some("www.acme.example")
        );
        assert_eq!(host("[::1]:7878").as_deref(), Some("::1"));
        assert_eq!(host("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of(&HeaderMap::new()), None);
    }
}
