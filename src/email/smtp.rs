//! SMTP delivery: funnel.yaml's `email.smtp` relay through lettre's pooled async
//! transport (STARTTLS by default, implicit TLS, or plain on loopback only), and
//! what became of each message: sent, worth another try later (a 4xx reply, a
//! connection that failed), or refused for good (a 5xx reply: a bounce).

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

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

/// A configured relay; cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    envelope_from: Address,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("envelope_from", &self.envelope_from)
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
    /// `secret` resolves the `${NAME}` references of its credentials. Built inside
    /// a Tokio runtime: its pool's housekeeping runs there.
    pub fn new(
        cfg: &SmtpConfig,
        from: &str,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Result<Relay, EmailError> {
        let tls = cfg.tls.unwrap_or(SmtpTls::Starttls);
        let smtp_error = |e: lettre::transport::smtp::Error| EmailError::Build(e.to_string());
        let mut builder = match tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)
                .map_err(smtp_error)?,
            SmtpTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host).map_err(smtp_error)?
            }
            SmtpTls::None => {
                if !is_loopback(&cfg.host) {
                    return Err(EmailError::Build(format!(
                        "`email.smtp.tls: none` sends passwords and mail in the clear; it is only allowed for a relay on this machine, not `{}`",
                        cfg.host
                    )));
                }
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            }
        };
        if let Some(port) = cfg.port {
            builder = builder.port(port);
        }
        let resolve = |s: &crate::model::scalar::Secret| -> Result<String, EmailError> {
            let name = s.as_str().trim_start_matches("${").trim_end_matches('}');
            secret(name).ok_or_else(|| {
                EmailError::Build(format!(
                    "environment variable {name} is not set (email.smtp refers to it)"
                ))
            })
        };
        match (&cfg.username, &cfg.password) {
            (Some(u), Some(p)) => {
                builder = builder.credentials(Credentials::new(resolve(u)?, resolve(p)?));
            }
            (None, None) => {}
            _ => {
                return Err(EmailError::Build(
                    "email.smtp needs both `username` and `password`, or neither".into(),
                ));
            }
        }
        let envelope_from = from
            .parse::<lettre::message::Mailbox>()
            .map_err(|_| EmailError::Address(from.to_string()))?
            .email;
        Ok(Relay {
            transport: builder
                .timeout(Some(std::time::Duration::from_secs(30)))
                .build(),
            envelope_from,
        })
    }

    /// Hands one message (RFC 5322 text) for `to` to the relay.
    pub async fn send(&self, to: &str, message: &[u8]) -> Delivery {
        let Ok(rcpt) = to.parse::<Address>() else {
            return Delivery::Permanent(format!("`{to}` is not an email address"));
        };
        let envelope = match Envelope::new(Some(self.envelope_from.clone()), vec![rcpt]) {
            Ok(e) => e,
            Err(e) => return Delivery::Permanent(e.to_string()),
        };
        match self.transport.send_raw(&envelope, message).await {
            Ok(_) => Delivery::Sent,
            Err(e) if e.is_permanent() => Delivery::Permanent(e.to_string()),
            Err(e) => Delivery::Transient(e.to_string()),
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
