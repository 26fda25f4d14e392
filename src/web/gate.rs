//! What a public endpoint checks before it reads a body: who the client is (the
//! socket's address, or the one a trusted proxy forwarded), whether that address
//! is over its rate, and whether a browser's post comes from the site itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::{HeaderMap, header};

use crate::engine::egress::{contains, parse_range};

/// Posts per address and minute when funnel.yaml says nothing.
pub const DEFAULT_PER_MINUTE: u32 = 30;

/// The checks shared by every site of one process.
#[derive(Debug)]
pub struct Gate {
    proxies: Vec<(IpAddr, u8)>,
    limiter: Option<RateLimiter>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            proxies: Vec::new(),
            limiter: Some(RateLimiter::new(DEFAULT_PER_MINUTE)),
        }
    }
}

impl Gate {
    /// `trusted_proxies`: addresses and ranges (`10.0.0.0/8`) whose
    /// `X-Forwarded-For` is believed. `per_minute`: posts per client address and
    /// minute (0 turns the limit off).
    pub fn new(trusted_proxies: &[String], per_minute: u32) -> Result<Gate, String> {
        let mut proxies = Vec::new();
        for entry in trusted_proxies {
            proxies.push(parse_range(entry).map_err(|e| format!("trusted proxy {e}"))?);
        }
        Ok(Gate {
            proxies,
            limiter: (per_minute > 0).then(|| RateLimiter::new(per_minute)),
        })
    }

    /// The gate funnel.yaml's `daemon` section describes (validated already).
    pub fn from_config(
        config: Option<&crate::model::config::WorkspaceConfig>,
    ) -> Result<Gate, String> {
        let daemon = config.and_then(|c| c.daemon.clone()).unwrap_or_default();
        Gate::new(
            &daemon.trusted_proxies,
            daemon.form_rate_limit.unwrap_or(DEFAULT_PER_MINUTE),
        )
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|(n, b)| contains(*n, *b, ip))
    }

    /// The client's address: the socket's, unless the socket is a trusted proxy;
    /// then the right-most address of `X-Forwarded-For` that is not a trusted
    /// proxy itself (the left part is whatever the client chose to send).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted(peer) {
            return peer;
        }
        let mut client = peer;
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return peer;
            };
            for hop in text.split(',').rev() {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) if self.trusted(ip) => client = ip,
                    Ok(ip) => return ip,
                    Err(_) => return client,
                }
            }
        }
        client
    }

    /// Counts one post from `ip`; when over the rate, the seconds to wait.
    pub fn admit(&self, ip: IpAddr) -> Result<(), u64> {
        match &self.limiter {
            Some(l) => l.admit(ip, Instant::now()),
            None => Ok(()),
        }
    }
}

/// Whether a browser's request comes from the host it is sent to: its `Origin`
/// (or, without one, its `Referer`) names the request's own host. A request with
/// neither is not a browser's form post and passes; `Origin: null` (a sandboxed
/// frame, a `data:` page) does not.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .map(|v| v.to_str().unwrap_or("null"));
    let Some(from) = from else {
        return true;
    };
    let Some((scheme, rest)) = from.split_once("://") else {
        return false;
    };
    if scheme != "http" && scheme != "https" {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.eq_ignore_ascii_case(host)
}

/// A token bucket per address: `per_minute` posts in a burst, refilled evenly.
/// Addresses whose bucket is full again are forgotten each time the table has
/// doubled since the last sweep (so a sweep costs O(1) a post), and the
/// table's memory is given back when it holds far fewer: it follows the
/// addresses of the last seconds, not of the busiest minute ever.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    by_address: HashMap<IpAddr, (f64, Instant)>,
    /// Entries at which the next sweep runs.
    sweep_at: usize,
    /// When the last sweep ran: a minute later the next runs anyway.
    swept: Option<Instant>,
}

/// Entries below which the table is swept only by time.
const SWEEP_MIN: usize = 4096;
/// Time after which the table is swept whatever its size.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::new(Buckets {
                by_address: HashMap::new(),
                sweep_at: SWEEP_MIN,
                swept: None,
            }),
        }
    }

    fn refill(&self, tokens: f64, since: Instant, now: Instant) -> f64 {
        let per_sec = self.per_minute / 60.0;
        (tokens + now.saturating_duration_since(since).as_secs_f64() * per_sec).min(self.per_minute)
    }

    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let Ok(mut guard) = self.buckets.lock() else {
            return Ok(());
        };
        let state = &mut *guard;
        let buckets = &mut state.by_address;
        let stale = state
            .swept
            .is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_EVERY);
        if buckets.len() >= state.sweep_at || stale {
            state.swept = Some(now);
            let cap = self.per_minute;
            buckets.retain(|_, (t, at)| self.refill(*t, *at, now) < cap);
            state.sweep_at = (buckets.len() * 2).max(SWEEP_MIN);
            if buckets.capacity() > 4 * state.sweep_at {
                buckets.shrink_to(state.sweep_at);
            }
        }
        let (tokens, at) = buckets.entry(ip).or_insert((self.per_minute, now));
        let available = self.refill(*tokens, *at, now);
        if available >= 1.0 {
            *tokens = available - 1.0;
            *at = now;
            Ok(())
        } else {
            let wait = (1.0 - available) / (self.per_minute / 60.0);
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let gate = Gate::new(&["10.0.0.0/8".into()], 0).expect("gate");
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.1.1")]);
        assert_eq!(gate.client_ip(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        // The same header from an untrusted peer is the peer's own choice.
        assert_eq!(gate.client_ip(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        // Garbage in the chain stops at the last trusted hop.
        let h = headers(&[("x-forwarded-for", "nonsense, 10.1.1.1")]);
        assert_eq!(gate.client_ip(ip("10.0.0.2"), &h), ip("10.1.1.1"));
        assert!(Gate::new(&["proxy.internal".into()], 0).is_err());
    }

    #[test]
    fn a_burst_then_an_even_rate_and_a_wait_to_retry() {
        let l = RateLimiter::new(6);
        let t0 = Instant::now();
        let a = ip("203.0.113.1");
        for _ in 0..6 {
            assert!(l.admit(a, t0).is_ok());
        }
        assert_eq!(l.admit(a, t0), Err(10), "one post per 10 s after the burst");
        assert!(l.admit(ip("203.0.113.2"), t0).is_ok(), "per address");
        assert!(l.admit(a, t0 + Duration::from_secs(10)).is_ok());
        assert!(l.admit(a, t0 + Duration::from_secs(11)).is_err());
    }

    #[test]
    fn full_buckets_are_forgotten_and_their_memory_given_back() {
        let l = RateLimiter::new(6);
        let t0 = Instant::now();
        let limited = ip("198.51.100.7");
        for _ in 0..6 {
            assert!(l.admit(limited, t0).is_ok());
        }
        let v4 = |base: u32, i: u32| IpAddr::from(std::net::Ipv4Addr::from(base + i));
        for i in 0..100_000 {
            assert!(l.admit(v4(0x0a00_0000, i), t0).is_ok());
        }
        assert!(
            l.admit(limited, t0).is_err(),
            "the sweeps on the way kept the buckets not yet full"
        );
        // Two minutes on, every bucket is full again: the next post sweeps them.
        let later = t0 + Duration::from_secs(120);
        for i in 0..5_000 {
            assert!(l.admit(v4(0x0b00_0000, i), later).is_ok());
        }
        let b = l.buckets.lock().expect("lock");
        assert_eq!(b.by_address.len(), 5_000, "only the last addresses");
        assert!(
            b.by_address.capacity() < 20_000,
            "capacity {} after a burst of 100,000",
            b.by_address.capacity()
        );
    }

    #[test]
    fn browsers_post_from_the_site_itself() {
        let h = |o: &str| headers(&[("host", "demo.localhost:7878"), ("origin", o)]);
        assert!(same_origin(&h("http://demo.localhost:7878")));
        assert!(!same_origin(&h("https://evil.example")));
        assert!(!same_origin(&h("http://demo.localhost:7878.evil.example")));
        assert!(!same_origin(&h("null")));
        let referer = headers(&[
            ("host", "demo.localhost:7878"),
            ("referer", "http://demo.localhost:7878/pricing?x=1"),
        ]);
        assert!(same_origin(&referer));
        assert!(
            same_origin(&headers(&[("host", "demo.localhost")])),
            "no browser"
        );
    }
}
