//! The ACME client: one account per directory, made once and kept in the store,
//! and one order per domain answered over HTTP-01. The answers wait in
//! [`Challenges`], which the daemon's plain HTTP listener serves at
//! `/.well-known/acme-challenge/{token}` while the authority validates.
//!
//! Requests go through reqwest (the daemon's one HTTP client stack) rather than
//! instant-acme's own hyper client. The directory is the operator's choice in
//! funnel.yaml, so it is not held to the private-address policy of outgoing
//! workflow calls (a private authority on the office network is legitimate);
//! `acme_ca_file` makes that authority's root the only one trusted.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Request;
use bytes::Bytes;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType,
    HttpClient, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};

use super::{Certificate, TlsError};
use crate::model::config::TlsConfig;
use crate::store::Store;

/// HTTP-01 answers waiting for the authority: token → key authorization.
#[derive(Debug, Default)]
pub struct Challenges {
    answers: Mutex<HashMap<String, String>>,
}

impl Challenges {
    /// The key authorization for `token`, while its order is open.
    pub fn answer(&self, token: &str) -> Option<String> {
        self.lock().get(token).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        match self.answers.lock() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Takes an order's answers down again on every path out of it.
struct Published<'a> {
    challenges: &'a Challenges,
    tokens: Vec<String>,
}

impl Published<'_> {
    fn add(&mut self, token: String, key_authorization: String) {
        self.challenges
            .lock()
            .insert(token.clone(), key_authorization);
        self.tokens.push(token);
    }
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        let mut answers = self.challenges.lock();
        for t in &self.tokens {
            answers.remove(t);
        }
    }
}

/// An ACME account ready to order certificates.
pub struct Acme {
    account: Account,
    challenges: Arc<Challenges>,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme")
            .field("account", &self.account.id())
            .finish_non_exhaustive()
    }
}

impl Acme {
    /// The account kept for the configured directory, or a new one (kept at
    /// once, so a daemon that restarts mid-order does not make another).
    pub async fn open(
        store: &Store,
        config: &TlsConfig,
        root: &Path,
        challenges: Arc<Challenges>,
    ) -> Result<Acme, TlsError> {
        let directory = config.acme_directory.as_str().to_string();
        let http = client(config, root)?;
        let dir = directory.clone();
        let kept = store
            .read_async(move |db| super::certs::account(db, &dir))
            .await?;
        if let Some(json) = kept {
            let credentials: AccountCredentials = serde_json::from_str(&json)
                .map_err(|e| TlsError::Acme(format!("the kept account is unreadable: {e}")))?;
            let account = Account::builder_with_http(Box::new(http))
                .from_credentials(credentials)
                .await?;
            return Ok(Acme {
                account,
                challenges,
            });
        }
        let contact = config
            .contact
            .as_ref()
            .map(|c| format!("mailto:{}", bare_address(c.as_str())));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = Account::builder_with_http(Box::new(http))
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                directory.clone(),
                None,
            )
            .await?;
        let json = serde_json::to_string(&credentials)
            .map_err(|e| TlsError::Acme(format!("the account cannot be kept: {e}")))?;
        store
            .write(move |db| {
                super::certs::save_account(db, &directory, &json, crate::store::now_ms())
            })
            .await?;
        Ok(Acme {
            account,
            challenges,
        })
    }

    /// Orders a certificate for `domain`, answering its HTTP-01 challenge.
    pub async fn issue(&self, domain: &str) -> Result<Certificate, TlsError> {
        let ids = [Identifier::Dns(domain.to_string())];
        let mut order = self.account.new_order(&NewOrder::new(&ids)).await?;
        let mut published = Published {
            challenges: &self.challenges,
            tokens: Vec::new(),
        };
        {
            let mut authorizations = order.authorizations();
            while let Some(next) = authorizations.next().await {
                let mut authz = next?;
                match authz.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    other => {
                        return Err(TlsError::Acme(format!(
                            "the authorization for {domain} is {other:?}"
                        )));
                    }
                }
                let mut challenge = authz.challenge(ChallengeType::Http01).ok_or_else(|| {
                    TlsError::Acme(format!("the authority offers no HTTP-01 for {domain}"))
                })?;
                published.add(
                    challenge.token.clone(),
                    challenge.key_authorization().as_str().to_string(),
                );
                challenge.set_ready().await?;
            }
        }
        let status = order.poll_ready(&RetryPolicy::default()).await?;
        if status != OrderStatus::Ready {
            let why = order
                .state()
                .error
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_else(|| format!("{status:?}"));
            return Err(TlsError::Acme(format!(
                "the order for {domain} was not validated: {why}"
            )));
        }
        drop(published);
        let key_pem = order.finalize().await?;
        let chain_pem = order.poll_certificate(&RetryPolicy::default()).await?;
        Certificate::from_pem(domain, &chain_pem, &key_pem, crate::store::now_ms())
    }
}

/// `Ops <ops@x.example>` → `ops@x.example`.
fn bare_address(text: &str) -> &str {
    match (text.rfind('<'), text.rfind('>')) {
        (Some(a), Some(b)) if a < b => &text[a + 1..b],
        _ => text.trim(),
    }
}

fn client(config: &TlsConfig, root: &Path) -> Result<Reqwest, TlsError> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("funnel/", env!("CARGO_PKG_VERSION")));
    if let Some(file) = &config.acme_ca_file {
        let path = root.join(file);
        let pem = std::fs::read(&path).map_err(|e| {
            TlsError::Config(format!("daemon.tls.acme_ca_file {}: {e}", path.display()))
        })?;
        let ca = reqwest::Certificate::from_pem(&pem).map_err(|e| {
            TlsError::Config(format!(
                "daemon.tls.acme_ca_file {} is not a PEM certificate: {e}",
                path.display()
            ))
        })?;
        builder = builder.tls_certs_only([ca]);
    }
    let client = builder
        .build()
        .map_err(|e| TlsError::Config(format!("the ACME client: {e}")))?;
    Ok(Reqwest(client))
}

/// instant-acme's requests sent with reqwest.
struct Reqwest(reqwest::Client);

impl HttpClient for Reqwest {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            let other = |e: reqwest::Error| instant_acme::Error::Other(Box::new(e));
            let (parts, body) = req.into_parts();
            let body = match http_body_util::BodyExt::collect(body).await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let answer = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(other)?;
            let mut response = axum::http::Response::builder().status(answer.status());
            if let Some(h) = response.headers_mut() {
                *h = answer.headers().clone();
            }
            let bytes = answer.bytes().await.map_err(other)?;
            let (parts, ()) = response.body(())?.into_parts();
            Ok(BytesResponse {
                parts,
                body: Box::new(bytes),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_taken_down_when_the_order_ends() {
        let challenges = Challenges::default();
        {
            let mut p = Published {
                challenges: &challenges,
                tokens: Vec::new(),
            };
            p.add("tok".into(), "tok.thumb".into());
            assert_eq!(challenges.answer("tok").as_deref(), Some("tok.thumb"));
        }
        assert_eq!(challenges.answer("tok"), None);
    }

    #[test]
    fn contact_is_the_bare_address() {
        assert_eq!(bare_address("Ops <ops@x.example>"), "ops@x.example");
        assert_eq!(bare_address(" ops@x.example "), "ops@x.example");
    }
}
