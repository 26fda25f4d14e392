//! HTTPS for the sites' domains when funnel.yaml's `daemon.tls` is on: the
//! HTTPS listener's acceptor, what the plain listener answers for a domain
//! served over TLS (the ACME challenge, else a redirect), HSTS, and the loop
//! that obtains each domain's certificate and renews it before it expires.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::Daemon;
use crate::model::config::TlsConfig;
use crate::store::UnixMs;
use crate::tls::acme::{Acme, Challenges};
use crate::tls::{Certificate, Resolver, TlsError, certs};
use crate::workspace::Workspace;

/// The path HTTP-01 validation asks for (RFC 8555 §8.3).
const CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";
/// How often the certificates are looked at when none is due sooner: a site
/// given a domain by a reload gets its certificate within this.
const LOOK_EVERY: Duration = Duration::from_secs(60);
const FIRST_RETRY: Duration = Duration::from_secs(5);
/// The first wait after a domain's failed order; it doubles up to an hour
/// (Let's Encrypt allows five failed validations per name and hour).
const DOMAIN_FIRST_RETRY: Duration = Duration::from_secs(15 * 60);
const LAST_RETRY: Duration = Duration::from_secs(3600);
/// HSTS max-age when funnel.yaml names none: a year.
const HSTS_DEFAULT: u32 = 31_536_000;

/// The daemon's TLS state, there whether or not HTTPS is on.
#[derive(Debug, Default)]
pub struct Https {
    pub resolver: Arc<Resolver>,
    pub challenges: Arc<Challenges>,
    /// The HTTPS listener's port once it listens; 0 while there is none.
    port: AtomicU16,
}

impl Https {
    pub fn listening_on(&self, port: u16) {
        self.port.store(port, Ordering::Relaxed);
    }

    /// The answer of the plain listener for `path` on `host`, where TLS takes
    /// over: the challenge's key authorization (never a redirect: validators
    /// do not follow one to another port), else a redirect to HTTPS for a
    /// domain that has a certificate. None: the request goes on as usual.
    pub fn plain_answer(&self, host: Option<&str>, path_and_query: &str) -> Option<Response> {
        let port = self.port.load(Ordering::Relaxed);
        if port == 0 {
            // No HTTPS here: a site's own file at the challenge path stays its own.
            return None;
        }
        if let Some(token) = path_and_query.strip_prefix(CHALLENGE_PATH) {
            return Some(match self.challenges.answer(token) {
                Some(key_authorization) => (
                    [(header::CONTENT_TYPE, "application/octet-stream")],
                    key_authorization,
                )
                    .into_response(),
                None => crate::web::json_error(StatusCode::NOT_FOUND, "no such challenge"),
            });
        }
        let host = host?;
        // Only a domain with a certificate goes to HTTPS.
        self.resolver.serial(host)?;
        let authority = if port == 443 {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        Some(Redirect::permanent(&format!("https://{authority}{path_and_query}")).into_response())
    }
}

/// The HSTS header for answers over TLS.
pub fn hsts(config: &TlsConfig) -> HeaderValue {
    let age = config.hsts_max_age.unwrap_or(HSTS_DEFAULT);
    HeaderValue::from_str(&format!("max-age={age}"))
        .unwrap_or(HeaderValue::from_static("max-age=31536000"))
}

/// The TLS settings of the running workspace, if on.
pub fn config(ws: &Workspace) -> Option<&TlsConfig> {
    ws.config.as_ref()?.value.daemon.as_ref()?.tls.as_ref()
}

/// The domains that get certificates: every site's `domain`.
pub fn domains(ws: &Workspace) -> Vec<String> {
    let mut out: Vec<String> = ws
        .sites
        .values()
        .filter_map(|doc| doc.value.domain.as_deref())
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// When a domain whose order failed is tried again, and the wait after that.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    at: UnixMs,
    next_wait: Duration,
}

/// Serves the kept certificates, then obtains missing ones and renews due
/// ones, for as long as the daemon runs.
pub fn spawn_renewal(d: Arc<Daemon>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut acme: Option<(String, Acme)> = None;
        let mut failing: HashMap<String, Backoff> = HashMap::new();
        let mut retry = FIRST_RETRY;
        loop {
            let wait = match round(&d, &mut acme, &mut failing).await {
                Ok(next) => {
                    retry = FIRST_RETRY;
                    next
                }
                Err(e) => {
                    // The store or the account: nothing to do per domain.
                    tracing::warn!(error = %e, retry_in_s = retry.as_secs(), "certificates: a round failed");
                    let wait = retry;
                    retry = (retry * 2).min(LAST_RETRY);
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    })
}

/// One look at every domain: kept certificates served, missing and due ones
/// ordered. Returns how long to wait before the next look.
async fn round(
    d: &Arc<Daemon>,
    acme: &mut Option<(String, Acme)>,
    failing: &mut HashMap<String, Backoff>,
) -> Result<Duration, TlsError> {
    let ws = d.workspace();
    let Some(config) = config(&ws) else {
        // TLS turned off by a reload: nothing is served or redirected any more.
        d.https.resolver.retain(&[]);
        return Ok(LOOK_EVERY);
    };
    let wanted = domains(&ws);
    d.https.resolver.retain(&wanted);
    failing.retain(|domain, _| wanted.contains(domain));
    let store = d.worker().store().clone();
    let kept: HashMap<String, Certificate> = store
        .read_async(certs::all)
        .await?
        .into_iter()
        .map(|c| (c.domain.clone(), c))
        .collect();
    let https = &d.https;
    for cert in kept.values().filter(|c| wanted.contains(&c.domain)) {
        if https.resolver.serial(&cert.domain).as_deref() != Some(cert.serial.as_str()) {
            // Renewed by another daemon on the same store, or kept from before a restart.
            https.resolver.install(cert)?;
        }
    }
    let now = crate::store::now_ms();
    let mut next = now + i64::try_from(LOOK_EVERY.as_millis()).unwrap_or(60_000);
    for domain in wanted {
        if let Some(c) = kept.get(&domain)
            && c.renew_at() > now
        {
            next = next.min(c.renew_at());
            continue;
        }
        // A domain whose order failed waits its turn, so one domain not
        // pointed here yet neither holds up the others nor runs into the
        // authority's limit on failed validations.
        if let Some(b) = failing.get(&domain)
            && b.at > now
        {
            next = next.min(b.at);
            continue;
        }
        let directory = config.acme_directory.as_str();
        if acme.as_ref().is_none_or(|(dir, _)| dir != directory) {
            let opened = Acme::open(&store, config, &ws.root, https.challenges.clone()).await?;
            *acme = Some((directory.to_string(), opened));
        }
        let Some((_, client)) = acme.as_ref() else {
            continue;
        };
        match client.issue(&domain).await {
            Ok(cert) => {
                let saved = cert.clone();
                store.write(move |db| certs::save(db, &saved)).await?;
                https.resolver.install(&cert)?;
                tracing::info!(
                    domain,
                    serial = cert.serial,
                    not_after = cert.not_after,
                    "certificate issued"
                );
                next = next.min(cert.renew_at());
                failing.remove(&domain);
            }
            Err(e) => {
                let wait = failing
                    .get(&domain)
                    .map_or(DOMAIN_FIRST_RETRY, |b| b.next_wait);
                let at = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                tracing::warn!(domain, error = %e, retry_in_s = wait.as_secs(), "certificate not obtained");
                failing.insert(
                    domain,
                    Backoff {
                        at,
                        next_wait: (wait * 2).min(LAST_RETRY),
                    },
                );
                next = next.min(at);
            }
        }
    }
    let ms = u64::try_from((next - crate::store::now_ms()).max(1000)).unwrap_or(1000);
    Ok(Duration::from_millis(ms).min(LOOK_EVERY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_answers_challenges_and_redirects_only_served_domains() {
        let https = Https::default();
        // Without an HTTPS listener the plain listener answers as before.
        assert!(
            https
                .plain_answer(Some("shop.example"), "/.well-known/acme-challenge/x")
                .is_none()
        );
        https.listening_on(8443);
        let missing = https
            .plain_answer(Some("shop.example"), "/.well-known/acme-challenge/nope")
            .expect("challenge path is ours");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        // No certificate yet: the site stays on plain HTTP.
        assert!(
            https
                .plain_answer(Some("shop.example"), "/pricing")
                .is_none()
        );
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["shop.example".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let c = Certificate::from_pem("shop.example", &cert.pem(), &key.serialize_pem(), 0)
            .expect("parse");
        https.resolver.install(&c).expect("install");
        let r = https
            .plain_answer(Some("shop.example"), "/pricing?x=1")
            .expect("redirect");
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(
            r.headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok()),
            Some("https://shop.example:8443/pricing?x=1")
        );
        assert!(https.plain_answer(Some("other.example"), "/").is_none());
        // A domain no longer wanted is neither served nor redirected.
        https.resolver.retain(&[]);
        assert!(
            https
                .plain_answer(Some("shop.example"), "/pricing")
                .is_none()
        );
    }
}
