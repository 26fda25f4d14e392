//! Where outgoing calls may go. A workflow's URL can be built from trigger data,
//! so a form field could aim an `http` step at the cloud metadata service, a
//! database on the private network or the daemon itself. Calls go only to public
//! addresses, unless funnel.yaml's `network.allow` names a host or a range.
//!
//! The check happens where connections are made: on the URL (IP literals in every
//! spelling the URL parser accepts, such as `2130706433` or `0x7f.1`), on every
//! address a name resolves to (the client's resolver, so a name cannot resolve to
//! a public address for the check and a private one for the connection), and on
//! every redirect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// The egress policy: public addresses, plus what funnel.yaml allows.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    hosts: Vec<String>,
    ranges: Vec<(IpAddr, u8)>,
}

/// An entry of `network.allow`: a host name (`hooks.internal`, `*.corp.example`),
/// an address (`127.0.0.1`, `::1`) or a range (`10.0.0.0/8`, `fd00::/8`).
pub fn parse_entry(entry: &str) -> Result<Allowed, String> {
    let e = entry.trim().to_ascii_lowercase();
    if e.is_empty() {
        return Err("an empty entry".into());
    }
    if let Some((addr, bits)) = e.split_once('/') {
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{entry}`: `{addr}` is not an IP address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits: u8 = bits
            .parse()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("`{entry}`: the prefix length must be 0 to {max}"))?;
        return Ok(Allowed::Range(ip, bits));
    }
    let bare = e.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        return Ok(Allowed::Range(ip, bits));
    }
    let name = e.strip_prefix("*.").unwrap_or(&e);
    let valid = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    if !valid {
        return Err(format!(
            "`{entry}` is not a host name, an IP address or a range like 10.0.0.0/8"
        ));
    }
    Ok(Allowed::Host(e))
}

/// An address (`10.0.0.5`) or a range (`10.0.0.0/8`), not a host name: what a
/// trusted proxy entry is.
pub fn parse_range(entry: &str) -> Result<(IpAddr, u8), String> {
    match parse_entry(entry)? {
        Allowed::Range(ip, bits) => Ok((ip, bits)),
        Allowed::Host(h) => Err(format!(
            "`{h}`: name an address or a range, not a host name"
        )),
    }
}

/// One parsed entry of `network.allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    Host(String),
    Range(IpAddr, u8),
}

impl Egress {
    /// The policy of funnel.yaml's `network.allow` entries.
    pub fn new(entries: &[String]) -> Result<Egress, String> {
        let mut egress = Egress::default();
        for entry in entries {
            match parse_entry(entry)? {
                Allowed::Host(h) => egress.hosts.push(h),
                Allowed::Range(ip, bits) => egress.ranges.push((ip, bits)),
            }
        }
        Ok(egress)
    }

    /// Whether funnel.yaml names this host.
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => *h == host,
        })
    }

    /// Why a connection to `ip` is refused, if it is.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        let ip = canonical(ip);
        let kind = private_kind(ip)?;
        if self
            .ranges
            .iter()
            .any(|(net, bits)| contains(*net, *bits, ip))
        {
            return None;
        }
        Some(format!(
            "{ip} is {kind}, which is not allowed; add it to `network.allow` in funnel.yaml if this workspace should reach it"
        ))
    }

    /// Checks a URL before it is sent (or a redirect before it is followed):
    /// http(s) only, and an IP literal must be allowed. Names are checked when
    /// they are resolved.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{}:` URLs are not allowed", url.scheme()));
        }
        match url.host() {
            None => Err("the URL has no host".into()),
            Some(url::Host::Ipv4(ip)) => self.refusal(IpAddr::V4(ip)).map_or(Ok(()), Err),
            Some(url::Host::Ipv6(ip)) => self.refusal(IpAddr::V6(ip)).map_or(Ok(()), Err),
            Some(url::Host::Domain(_)) => Ok(()),
        }
    }

    /// The addresses of `host` that may be connected to; an error when it has
    /// none (every address it resolves to is refused).
    pub fn filter(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
        if self.host_allowed(host) {
            return Ok(addrs);
        }
        let mut refused = None;
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match self.refusal(a.ip()) {
                Some(why) => {
                    refused.get_or_insert(why);
                    false
                }
                None => true,
            })
            .collect();
        match (allowed.is_empty(), refused) {
            (false, _) => Ok(allowed),
            (true, Some(why)) => Err(format!("`{host}` resolves to {why}")),
            (true, None) => Err(format!("`{host}` has no address")),
        }
    }

    /// An HTTP client that enforces this policy on every resolved address and
    /// every redirect (at most 5).
    pub fn client(&self, connect_timeout: std::time::Duration) -> reqwest::Result<reqwest::Client> {
        let policy = Arc::new(self.clone());
        let for_redirects = policy.clone();
        reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .dns_resolver(Arc::new(Resolver { policy }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    return attempt.error("more than 5 redirects");
                }
                match for_redirects.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(why) => {
                        let to = attempt.url().to_string();
                        attempt.error(format!("redirected to {to}: {why}"))
                    }
                }
            }))
            .build()
    }
}

/// The system resolver, with the policy applied to its answers.
struct Resolver {
    policy: Arc<Egress>,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = policy
                .filter(&host, found)
                .map_err(|why| -> Box<dyn std::error::Error + Send + Sync> { why.into() })?;
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// An IPv4 address written inside IPv6 (mapped, compatible, NAT64 or 6to4) as
/// the IPv4 address it reaches.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let embedded = |hi: u16, lo: u16| {
        IpAddr::V4(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        ))
    };
    // NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible form (::a.b.c.d).
    if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0])
        || (s[..6] == [0, 0, 0, 0, 0, 0] && (s[6] != 0 || s[7] > 1))
    {
        return embedded(s[6], s[7]);
    }
    // 6to4 (2002:a.b.c.d::/48).
    if s[0] == 0x2002 {
        return embedded(s[1], s[2]);
    }
    ip
}

/// What kind of non-public address this is, if it is one.
fn private_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => private_v6(v6),
    }
}

fn private_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "an address of this host (0.0.0.0/8)",
        (127, _, _) => "a loopback address",
        (10, _, _) | (192, 168, _) => "a private address",
        (172, 16..=31, _) => "a private address",
        (169, 254, _) => "a link-local address (cloud metadata lives here)",
        (100, 64..=127, _) => "a carrier-grade NAT address",
        (192, 0, 0) => "an IETF protocol address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved address",
        _ => return None,
    })
}

fn private_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_unspecified() {
        "an address of this host (::)"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "a private (unique local) address"
    } else if s[0] & 0xffc0 == 0xfe80 || s[0] & 0xffc0 == 0xfec0 {
        "a link-local address"
    } else if s[0] & 0xff00 == 0xff00 {
        "a multicast address"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "a documentation address"
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        "a discard-only address"
    } else {
        return None;
    })
}

/// Whether `ip` lies in `net/bits` (both of one family).
pub fn contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (canonical(net), ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits.min(32)))
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits.min(128)))
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(egress: &Egress, url: &str) -> bool {
        let url = reqwest::Url::parse(url).expect("url");
        egress.check_url(&url).is_err()
    }

    #[test]
    fn private_addresses_are_refused_in_every_spelling() {
        let strict = Egress::default();
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://017700000001/",
            "http://127.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:a9fe:a9fe::]/",
            "http://[::1]/",
            "http://0.0.0.0/",
            "http://0/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "file:///etc/passwd",
            "gopher://example.org/",
        ] {
            assert!(refused(&strict, url), "{url} was let through");
        }
        for url in [
            "https://hooks.slack.com/x",
            "http://93.184.216.34/",
            "http://[2606:4700::1]/",
        ] {
            assert!(!refused(&strict, url), "{url} was refused");
        }
    }

    #[test]
    fn funnel_yaml_allows_hosts_and_ranges() {
        let egress = Egress::new(&[
            "127.0.0.1".into(),
            "10.0.0.0/8".into(),
            "*.corp.example".into(),
        ])
        .expect("policy");
        assert!(!refused(&egress, "http://127.0.0.1:8080/"));
        assert!(
            !refused(&egress, "http://[::ffff:127.0.0.1]/"),
            "the same address"
        );
        assert!(
            refused(&egress, "http://127.0.0.2/"),
            "only the one address"
        );
        assert!(!refused(&egress, "http://10.9.8.7/"));
        let local: SocketAddr = "192.168.1.5:0".parse().expect("addr");
        assert!(egress.filter("db.corp.example", vec![local]).is_ok());
        assert!(egress.filter("corp.example.evil", vec![local]).is_err());
        let public: SocketAddr = "93.184.216.34:0".parse().expect("addr");
        assert_eq!(
            egress.filter("mixed.example", vec![local, public]),
            Ok(vec![public]),
            "a name's private addresses are dropped"
        );
        assert!(Egress::new(&["10.0.0.0/33".into()]).is_err());
        assert!(Egress::new(&["not a host!".into()]).is_err());
    }
}
