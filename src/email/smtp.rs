//! SMTP delivery: funnel.yaml's `email.smtp` relay over lettre's SMTP client,
//! on connections kept open between messages (STARTTLS by default, implicit TLS,
//! or plain on loopback only), and what became of each message: sent, worth another try later (a 4xx reply, a
//! connection that failed), or refused for good (a 5xx reply: a bounce).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use super::EmailError;
use crate::model::config::{SmtpConfig, SmtpTls};

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Try again later: the server said so (4xx) or could not be reached.
    Transient(String),
    /// The server refused the message for good (5xx): a hard bounce.
    Permanent(String),
}

/// How long one connection attempt or one message exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// An idle connection older than this is checked with a NOOP before reuse.
const STALE_AFTER: Duration = Duration::from_secs(20);

/// Connections kept open between messages.
const MAX_IDLE: usize = 16;

/// A configured relay; cheap to clone (its connections are shared).
///
/// The connections are funnel's own rather than lettre's pool: they set
/// TCP_NODELAY. lettre writes a message's closing `<CRLF>.<CRLF>` as a segment of
/// its own, which Nagle's algorithm holds back until the server acknowledges the
/// body, and a server that delays its acknowledgement (40 ms on Linux) caps each
/// connection near 25 messages a second.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<RelayInner>,
}

struct RelayInner {
    host: String,
    port: u16,
    tls: SmtpTls,
    credentials: Option<Credentials>,
    envelope_from: Address,
    hello: ClientId,
    idle: std::sync::Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("host", &self.inner.host)
            .field("port", &self.inner.port)
            .field("envelope_from", &self.inner.envelope_from)
            .finish_non_exhaustive()
    }
}

/// Whether `host` names this machine, where plain SMTP exposes nothing.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Relay {
    /// The relay of `cfg`, sending as `from` (a mailbox such as `Acme <hi@acme.example>`);
    /// `secret` resolves the `${NAME}` references of its credentials.
    pub fn new(
        cfg: &SmtpConfig,
        from: &str,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Result<Relay, EmailError> {
        let tls = cfg.tls.unwrap_or(SmtpTls::Starttls);
        if tls == SmtpTls::None && !is_loopback(&cfg.host) {
            return Err(EmailError::Build(format!(
                "`email.smtp.tls: none` sends passwords and mail in the clear; it is only allowed for a relay on this machine, not `{}`",
                cfg.host
            )));
        }
        let resolve = |s: &crate::model::scalar::Secret| -> Result<String, EmailError> {
            let name = s.as_str().trim_start_matches("${").trim_end_matches('}');
            secret(name).ok_or_else(|| {
                EmailError::Build(format!(
                    "environment variable {name} is not set (email.smtp refers to it)"
                ))
            })
        };
        let credentials = match (&cfg.username, &cfg.password) {
            (Some(u), Some(p)) => Some(Credentials::new(resolve(u)?, resolve(p)?)),
            (None, None) => None,
            _ => {
                return Err(EmailError::Build(
                    "email.smtp needs both `username` and `password`, or neither".into(),
                ));
            }
        };
        let envelope_from = from
            .parse::<lettre::message::Mailbox>()
            .map_err(|_| EmailError::Address(from.to_string()))?
            .email;
        let port = cfg.port.unwrap_or(match tls {
            SmtpTls::Tls => 465,
            SmtpTls::Starttls => 587,
            SmtpTls::None => 25,
        });
        Ok(Relay {
            inner: Arc::new(RelayInner {
                host: cfg.host.clone(),
                port,
                tls,
                credentials,
                envelope_from,
                hello: ClientId::default(),
                idle: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, String> {
        let r = &self.inner;
        let tls = || TlsParameters::new(r.host.clone()).map_err(|e| e.to_string());
        let mut conn = if r.tls == SmtpTls::Tls {
            AsyncSmtpConnection::connect_tokio1(
                (r.host.as_str(), r.port),
                Some(EXCHANGE_TIMEOUT),
                &r.hello,
                Some(tls()?),
                None,
            )
            .await
            .map_err(|e| e.to_string())?
        } else {
            let stream = tokio::time::timeout(
                EXCHANGE_TIMEOUT,
                tokio::net::TcpStream::connect((r.host.as_str(), r.port)),
            )
            .await
            .map_err(|_| format!("connecting to {}:{} timed out", r.host, r.port))?
            .map_err(|e| format!("cannot connect to {}:{}: {e}", r.host, r.port))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &r.hello)
                .await
                .map_err(|e| e.to_string())?;
            if r.tls == SmtpTls::Starttls {
                conn.starttls(tls()?, &r.hello)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            conn
        };
        if let Some(c) = &r.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c)
                .await
                .map_err(|e| format!("the relay refused the credentials: {e}"))?;
        }
        Ok(conn)
    }

    /// An open connection: an idle one (checked first if it idled long), or a new one.
    async fn connection(&self) -> Result<AsyncSmtpConnection, String> {
        loop {
            let idle = self
                .inner
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            let Some((mut conn, since)) = idle else {
                return self.connect().await;
            };
            if conn.has_broken() {
                continue;
            }
            if since.elapsed() < STALE_AFTER || conn.test_connected().await {
                return Ok(conn);
            }
        }
    }

    /// Hands one message (RFC 5322 text) for `to` to the relay, from the
    /// envelope sender `return_path` (the send's own, for bounces) or the
    /// From address.
    pub async fn send(&self, to: &str, return_path: Option<&str>, message: &[u8]) -> Delivery {
        let Ok(rcpt) = to.parse::<Address>() else {
            return Delivery::Permanent(format!("`{to}` is not an email address"));
        };
        let from = return_path
            .and_then(|r| r.parse::<Address>().ok())
            .unwrap_or_else(|| self.inner.envelope_from.clone());
        let envelope = match Envelope::new(Some(from), vec![rcpt]) {
            Ok(e) => e,
            Err(e) => return Delivery::Permanent(e.to_string()),
        };
        let mut conn = match self.connection().await {
            Ok(c) => c,
            Err(e) => return Delivery::Transient(e),
        };
        match tokio::time::timeout(EXCHANGE_TIMEOUT, conn.send(&envelope, message)).await {
            Ok(Ok(_)) => {
                let mut idle = self
                    .inner
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if idle.len() < MAX_IDLE {
                    idle.push((conn, Instant::now()));
                }
                Delivery::Sent
            }
            // A refused recipient leaves the connection usable; anything else
            // may have left it mid-exchange, so it is closed.
            Ok(Err(e)) if e.is_permanent() => Delivery::Permanent(e.to_string()),
            Ok(Err(e)) => Delivery::Transient(e.to_string()),
            Err(_) => Delivery::Transient("the relay did not answer in time".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(host: &str, tls: SmtpTls) -> SmtpConfig {
        serde_json::from_value(serde_json::json!({
            "host": host, "port": 2525,
            "tls": serde_json::to_value(tls).expect("tls"),
        }))
        .expect("config")
    }

    /// The relay's pool runs its housekeeping on the Tokio runtime it is built in.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn plain_smtp_is_refused_off_this_machine() {
        let rt = runtime();
        let _in = rt.enter();
        let e = Relay::new(
            &cfg("smtp.example.org", SmtpTls::None),
            "a@b.example",
            |_| None,
        )
        .expect_err("refused");
        assert!(
            e.to_string()
                .contains("only allowed for a relay on this machine"),
            "{e}"
        );
        for host in ["127.0.0.1", "localhost", "::1"] {
            Relay::new(&cfg(host, SmtpTls::None), "a@b.example", |_| None).expect(host);
        }
    }

    #[test]
    fn credentials_come_from_the_environment_and_must_be_set() {
        let rt = runtime();
        let _in = rt.enter();
        let mut c = cfg("127.0.0.1", SmtpTls::None);
        c.username = serde_json::from_value(serde_json::json!("${SMTP_USER}")).ok();
        c.password = serde_json::from_value(serde_json::json!("${SMTP_PASS}")).ok();
        let e = Relay::new(&c, "a@b.example", |n| {
            (n == "SMTP_USER").then(|| "u".into())
        })
        .expect_err("missing");
        assert!(e.to_string().contains("SMTP_PASS is not set"), "{e}");
        Relay::new(&c, "a@b.example", |_| Some("x".into())).expect("both set");
    }
}
