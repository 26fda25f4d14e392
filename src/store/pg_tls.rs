//! TLS to PostgreSQL, with rustls, by the URL's `sslmode` as libpq reads it:
//!
//! - `disable`: plain TCP.
//! - `prefer` (the default) and `require`: encrypted, the server's certificate not
//!   checked (`prefer` falls back to plain TCP when the server offers no TLS).
//! - `verify-full`: encrypted, the certificate checked against the CA of
//!   `sslrootcert` (a PEM file; else the system's roots) and the host name.
//!
//! `verify-ca` (a chain check without the host name) is refused with a hint:
//! verify-full is what a demanding user wants. tokio-postgres knows only the
//! first three modes, so the store reads `sslmode` and `sslrootcert` here and
//! passes the rest of the URL on.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::SslMode;

use super::StoreError;

/// What a URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    Disable,
    /// Encrypt; `required` refuses a server without TLS.
    Unverified {
        required: bool,
    },
    /// Encrypt and check the certificate and the host name.
    VerifyFull {
        root_cert: Option<String>,
    },
}

/// Splits the TLS settings from a URL (either form libpq takes: a
/// `postgres://` URL or `key=value` pairs); returns what tokio-postgres reads.
pub fn split(url: &str) -> Result<(String, Tls), StoreError> {
    let mut mode: Option<String> = None;
    let mut root: Option<String> = None;
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The other parameters stay exactly as written (re-encoding them would
        // turn `%20` into `+`, which tokio-postgres does not read as a space).
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let decoded = url::form_urlencoded::parse(pair.as_bytes()).next();
            match decoded {
                Some((k, v)) if k == "sslmode" => mode = Some(v.into_owned()),
                Some((k, v)) if k == "sslrootcert" => root = Some(v.into_owned()),
                _ => kept.push(pair),
            }
        }
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        url.split_whitespace()
            .filter(|pair| match pair.split_once('=') {
                Some(("sslmode", v)) => {
                    mode = Some(v.to_string());
                    false
                }
                Some(("sslrootcert", v)) => {
                    root = Some(v.to_string());
                    false
                }
                _ => true,
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let tls = match mode.as_deref().unwrap_or("prefer") {
        "disable" => Tls::Disable,
        "allow" | "prefer" => Tls::Unverified { required: false },
        "require" => Tls::Unverified { required: true },
        "verify-full" => Tls::VerifyFull { root_cert: root },
        "verify-ca" => {
            return Err(StoreError::Invalid(
                "sslmode=verify-ca is not supported: use verify-full (it checks the host name too)"
                    .into(),
            ));
        }
        other => {
            return Err(StoreError::Invalid(format!(
                "sslmode `{other}` is not one of disable, prefer, require, verify-full"
            )));
        }
    };
    Ok((rest, tls))
}

impl Tls {
    /// The mode tokio-postgres negotiates with.
    pub fn ssl_mode(&self) -> SslMode {
        match self {
            Tls::Disable => SslMode::Disable,
            Tls::Unverified { required: false } => SslMode::Prefer,
            Tls::Unverified { required: true } | Tls::VerifyFull { .. } => SslMode::Require,
        }
    }

    /// The rustls configuration, or `None` for plain TCP.
    pub fn client_config(&self) -> Result<Option<rustls::ClientConfig>, StoreError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Invalid(format!("TLS: {e}")))?;
        Ok(match self {
            Tls::Disable => None,
            Tls::Unverified { .. } => Some(
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                    .with_no_client_auth(),
            ),
            Tls::VerifyFull { root_cert } => {
                let mut roots = rustls::RootCertStore::empty();
                match root_cert {
                    Some(path) => {
                        let certs = CertificateDer::pem_file_iter(path)
                            .map_err(|e| StoreError::Invalid(format!("sslrootcert {path}: {e}")))?;
                        for cert in certs {
                            let cert = cert.map_err(|e| {
                                StoreError::Invalid(format!("sslrootcert {path}: {e}"))
                            })?;
                            roots.add(cert).map_err(|e| {
                                StoreError::Invalid(format!("sslrootcert {path}: {e}"))
                            })?;
                        }
                        if roots.is_empty() {
                            return Err(StoreError::Invalid(format!(
                                "sslrootcert {path} holds no certificate"
                            )));
                        }
                    }
                    None => {
                        return Err(StoreError::Invalid(
                            "sslmode=verify-full needs sslrootcert=<CA file>".into(),
                        ));
                    }
                }
                Some(builder.with_root_certificates(roots).with_no_client_auth())
            }
        })
    }
}

/// libpq's `require`: any certificate, signatures still checked so the session
/// is with whoever holds the key the certificate names.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_leave_the_url() {
        let (rest, tls) = split(
            "postgres://app@db.example.com/funnel?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        )
        .expect("split");
        assert_eq!(
            rest,
            "postgres://app@db.example.com/funnel?application_name=x"
        );
        assert_eq!(
            tls,
            Tls::VerifyFull {
                root_cert: Some("/etc/ca.pem".into())
            }
        );
        let (rest, tls) = split("host=db sslmode=disable dbname=f").expect("split");
        assert_eq!((rest.as_str(), tls), ("host=db dbname=f", Tls::Disable));
        let (_, tls) = split("postgres://root@127.0.0.1/test").expect("split");
        assert_eq!(tls, Tls::Unverified { required: false });
        assert!(split("postgres://h/d?sslmode=verify-ca").is_err());
        assert!(split("postgres://h/d?sslmode=sometimes").is_err());
    }
}
