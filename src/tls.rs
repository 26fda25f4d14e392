//! HTTPS for the sites' custom domains: certificates obtained and renewed over
//! ACME (HTTP-01), kept in the store, and chosen per handshake by server name,
//! so that a renewed certificate is served from the next connection on without
//! a restart. The daemon runs the renewal loop and the HTTPS listener; this
//! module owns the certificates, the ACME client and the resolver.
//!
//! - [`certs`]: a certificate parsed from PEM (serial, validity), when it is
//!   due for renewal, and its rows in the store.
//! - [`resolver`]: rustls' certificate choice by SNI, swapped in place.
//! - [`acme`]: the ACME account (kept in the store) and one order per domain,
//!   its HTTP-01 answers published for the daemon's plain listener.

pub mod acme;
pub mod certs;
pub mod resolver;

pub use certs::Certificate;
pub use resolver::Resolver;

/// What can go wrong obtaining, keeping or serving a certificate.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("ACME: {0}")]
    Acme(String),
    #[error("certificate for {domain}: {why}")]
    Certificate { domain: String, why: String },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl From<instant_acme::Error> for TlsError {
    fn from(e: instant_acme::Error) -> Self {
        TlsError::Acme(e.to_string())
    }
}
