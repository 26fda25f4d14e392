//! The worker's side of outbound webhook subscriptions: deliveries that are
//! due are claimed under a lease, sent signed under the egress policy (a
//! subscription's URL is data: nothing in it is expanded, and a private
//! address is refused unless funnel.yaml allows it), and each outcome is
//! recorded: delivered, retried with backoff, given up, or the subscription
//! ended by a 410.

use std::time::Duration;

use futures_util::StreamExt;

use super::{Worker, from_store};
use crate::engine::EngineError;
use crate::subscriptions::{self, Due, Outcome};

/// Deliveries in flight at once.
const CONCURRENCY: usize = 8;
/// A target has this long to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries claimed at once: sent within the lease even if every target
/// times out (32 / 8 × 10 s = 40 s < 60 s), and the worker's loop waits for at
/// most that long.
const BATCH: usize = 32;

impl Worker {
    /// Sends the webhook deliveries due now; how many were tried.
    pub async fn deliver_hooks(&self) -> Result<usize, EngineError> {
        let store = self.inner.store.clone();
        let now = self.now();
        if !store
            .read_async(move |db| subscriptions::any_due(db, now))
            .await
            .map_err(from_store)?
        {
            return Ok(0);
        }
        let due = store
            .write_background(move |db| subscriptions::claim(db, now, BATCH))
            .await
            .map_err(from_store)?;
        let outcomes: Vec<(Due, Outcome)> = futures_util::stream::iter(due)
            .map(|d| async move {
                let o = self.send_hook(&d).await;
                (d, o)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let n = outcomes.len();
        let now = self.now();
        store
            .write_background(move |db| {
                for (d, o) in &outcomes {
                    if let Outcome::Failed(why) | Outcome::Refused(why) = o {
                        tracing::warn!(delivery = %d.uid, event = %d.event, error = %why, "webhook delivery failed");
                    }
                    subscriptions::finish(db, d, o, now)?;
                }
                Ok(())
            })
            .await
            .map_err(from_store)?;
        Ok(n)
    }

    async fn send_hook(&self, d: &Due) -> Outcome {
        let url = match reqwest::Url::parse(&d.target_url) {
            Ok(u) => u,
            Err(e) => return Outcome::Refused(format!("not a URL ({e})")),
        };
        if let Err(why) = self.inner.egress.check_url(&url) {
            return Outcome::Refused(why);
        }
        let t = self.now().div_euclid(1000);
        let answer = self
            .inner
            .client
            .post(url)
            .timeout(TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                reqwest::header::USER_AGENT,
                concat!("funnel/", env!("CARGO_PKG_VERSION")),
            )
            .header("Funnel-Event", &d.event)
            .header("Funnel-Delivery", &d.uid)
            .header("Idempotency-Key", &d.uid)
            .header(
                "Funnel-Signature",
                subscriptions::signature(&d.secret, t, &d.payload),
            )
            .body(d.payload.clone())
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => Outcome::Delivered,
            Ok(r) if r.status() == reqwest::StatusCode::GONE => Outcome::Gone,
            Ok(r) => Outcome::Failed(format!("the target answered {}", r.status())),
            Err(e) if e.is_timeout() => {
                Outcome::Failed(format!("no answer within {} s", TIMEOUT.as_secs()))
            }
            Err(e) => {
                // The resolver refuses private addresses: say why, not "error
                // sending request".
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    why = s.to_string();
                    source = s.source();
                }
                Outcome::Failed(why)
            }
        }
    }
}
