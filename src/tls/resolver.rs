//! rustls' choice of certificate per handshake: a map from server name to the
//! domain's current key, replaced in place when a certificate is renewed, so
//! the next connection gets the new one and no listener restarts.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{Certificate, TlsError};

/// The certificates served, by domain.
#[derive(Debug, Default)]
pub struct Resolver {
    keys: RwLock<HashMap<String, (String, Arc<CertifiedKey>)>>,
}

impl Resolver {
    /// Serves `cert` for its domain from the next handshake on.
    pub fn install(&self, cert: &Certificate) -> Result<(), TlsError> {
        let key = cert.certified_key()?;
        let mut keys = match self.keys.write() {
            Ok(k) => k,
            Err(poisoned) => poisoned.into_inner(),
        };
        keys.insert(cert.domain.clone(), (cert.serial.clone(), key));
        Ok(())
    }

    /// Stops serving every domain not in `domains` (removed from the sites,
    /// or TLS turned off by a reload).
    pub fn retain(&self, domains: &[String]) {
        let mut keys = match self.keys.write() {
            Ok(k) => k,
            Err(poisoned) => poisoned.into_inner(),
        };
        keys.retain(|d, _| domains.contains(d));
    }

    /// The serial served for `domain` (lowercase), if any.
    pub fn serial(&self, domain: &str) -> Option<String> {
        let keys = match self.keys.read() {
            Ok(k) => k,
            Err(poisoned) => poisoned.into_inner(),
        };
        keys.get(&domain.to_ascii_lowercase())
            .map(|(s, _)| s.clone())
    }

    /// A TLS server configuration that asks this resolver at every handshake.
    /// HTTP/1.1 only: the daemon's connections are HTTP/1.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(format!("TLS versions: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A handshake without SNI, or for a name we hold nothing for, fails:
        // there is no default certificate to leak another site's name.
        let name = hello.server_name()?.to_ascii_lowercase();
        let keys = match self.keys.read() {
            Ok(k) => k,
            Err(poisoned) => poisoned.into_inner(),
        };
        keys.get(&name).map(|(_, k)| k.clone())
    }
}
