//! Several SMTP relays with failover: funnel.yaml's `email.smtp` first, then
//! each of `email.smtp_fallbacks` in order. A relay that cannot take a message
//! (unreachable, timed out, a 4xx) is passed over for a minute, and the message
//! goes to the next one at once; a 5xx is the recipient's bounce wherever it
//! came from, and is not tried elsewhere. When every relay is down the message
//! waits for its retry like any transient failure.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::EmailError;
use super::smtp::{Delivery, Relay};
use crate::model::config::SmtpConfig;

/// How long a relay that failed is passed over.
const PASS_OVER: Duration = Duration::from_secs(60);

/// The relays in order of preference; cheap to clone.
#[derive(Clone, Debug)]
pub struct Relays {
    relays: Arc<[Relay]>,
    /// Until when each relay is passed over.
    down: Arc<Mutex<Vec<Option<Instant>>>>,
}

impl Relays {
    /// The primary relay and its fallbacks, sending as `from`.
    pub fn new(
        primary: &SmtpConfig,
        fallbacks: &[SmtpConfig],
        from: &str,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Result<Relays, EmailError> {
        let relays = std::iter::once(primary)
            .chain(fallbacks)
            .map(|c| Relay::new(c, from, &secret))
            .collect::<Result<Vec<_>, _>>()?;
        let n = relays.len();
        Ok(Relays {
            relays: relays.into(),
            down: Arc::new(Mutex::new(vec![None; n])),
        })
    }

    /// The order to try the relays in now: those up first, in preference
    /// order, then those passed over (one may have come back).
    fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        let (up, passed): (Vec<usize>, Vec<usize>) =
            (0..self.relays.len()).partition(|i| down[*i].is_none_or(|t| t <= now));
        up.into_iter().chain(passed).collect()
    }

    fn mark(&self, i: usize, failed: bool) {
        let mut down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        down[i] = failed.then(|| Instant::now() + PASS_OVER);
    }

    /// Hands one message to the first relay that takes it.
    pub async fn send(&self, to: &str, return_path: Option<&str>, message: &[u8]) -> Delivery {
        let mut last = Delivery::Transient("no SMTP relay is configured".into());
        for i in self.order() {
            match self.relays[i].send(to, return_path, message).await {
                Delivery::Transient(e) => {
                    if self.relays.len() > 1 {
                        tracing::warn!(relay = i, error = %e, "SMTP relay failed; trying the next");
                    }
                    self.mark(i, true);
                    last = Delivery::Transient(e);
                }
                done => {
                    self.mark(i, false);
                    return done;
                }
            }
        }
        last
    }
}
