//! Value formats: cron lines, time zones, durations, email addresses, URLs, colors,
//! ids, and secrets written where a `${ENV}` reference belongs.
//!
//! The structural walk calls [`check_format`] for every value whose schema names one
//! of the string newtypes in `model::scalar`, so each format is checked everywhere it
//! is used without listing the places. Free-form maps (headers, bodies, data) are
//! searched for secret-looking keys by [`check_secret_key`].

use std::path::Path;

use crate::diagnostic::{Code, Diagnostic};
use crate::model::scalar::parse_duration_ms;
use crate::workspace::Workspace;
use crate::yaml::Node;

/// Checks a string against the format its schema type names.
pub fn check_format(type_name: &str, node: &Node, file: &Path) -> Option<Diagnostic> {
    let text = node.as_str()?;
    let templated = text.contains("{{") || text.contains("{%");
    let err = |code: Code, message: String| Diagnostic::error(code, file, node.span, message);
    match type_name {
        "DurationText" => parse_duration_ms(text).err().map(|why| {
            err(
                Code::InvalidDuration,
                format!("`{text}` is not a duration: {why}"),
            )
            .with_help("write a number and a unit, e.g. `15m`, `2h`, `3d` or `1h30m`")
        }),
        "CronExpr" => check_cron(text).err().map(|why| {
            err(Code::InvalidCron, format!("`{text}` is not a valid cron expression: {why}"))
                .with_help("5 fields: minute hour day-of-month month day-of-week, e.g. `0 8 * * MON`")
        }),
        "TimeZoneName" => jiff::tz::TimeZone::get(text).err().map(|_| {
            err(
                Code::InvalidTimezone,
                format!("`{text}` is not a known IANA time zone"),
            )
            .with_help("use a name such as `Europe/Berlin`, `America/New_York` or `UTC`")
        }),
        "EmailAddress" if !templated => (!is_email_with_name(text)).then(|| {
            err(Code::InvalidEmail, format!("`{text}` is not an email address"))
                .with_help("write `name@example.com` or `Name <name@example.com>`")
        }),
        "Url" if !templated && !text.contains("${") => check_url(text).err().map(|why| {
            err(Code::InvalidUrl, format!("`{text}` is not a valid URL: {why}"))
                .with_help("write an absolute URL such as `https://example.com/path`")
        }),
        "Color" => (!is_color(text)).then(|| {
            err(Code::InvalidColor, format!("`{text}` is not a hex color"))
                .with_help("write `#rgb`, `#rrggbb` or `#rrggbbaa`, e.g. `#3b82f6`")
        }),
        "Secret" => (!is_env_reference(text)).then(|| {
            err(
                Code::PlaintextSecret,
                "a secret is written here in plain text".to_string(),
            )
            .with_help("put it in an environment variable and write `${VAR_NAME}`; rotate the exposed value")
        }),
        "Ident" => (!is_ident(text)).then(|| {
            err(Code::InvalidId, format!("`{text}` is not a valid id"))
                .with_help("ids use lowercase letters, digits, `-` and `_`, and start with a letter or digit")
        }),
        _ => None,
    }
}

/// Keys whose literal values are secrets.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "private_key",
    "access_key",
    "client_secret",
];

/// A literal value under a secret-looking key of a free-form map.
pub fn check_secret_key(key: &str, node: &Node, file: &Path) -> Option<Diagnostic> {
    let text = node.as_str()?;
    let lower = key.to_ascii_lowercase();
    let secret_key = SECRET_KEYS.iter().any(|k| lower.contains(k));
    let literal = !text.trim().is_empty() && !text.contains("${") && !text.contains("{{");
    (secret_key && literal).then(|| {
        Diagnostic::error(
            Code::PlaintextSecret,
            file,
            node.span,
            format!("`{key}` holds a secret in plain text"),
        )
        .with_help(
            "put it in an environment variable and write `${VAR_NAME}`; rotate the exposed value",
        )
    })
}

pub fn is_env_reference(text: &str) -> bool {
    let Some(name) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) else {
        return false;
    };
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn is_ident(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

pub fn is_color(text: &str) -> bool {
    text.strip_prefix('#').is_some_and(|hex| {
        matches!(hex.len(), 3 | 4 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// `local@domain.tld`, the pragmatic subset that mail systems accept.
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().all(char::is_alphabetic) && tld.len() >= 2);
    local_ok && domain_ok
}

/// An address, optionally as `Display Name <address>`.
pub fn is_email_with_name(text: &str) -> bool {
    let text = text.trim();
    match (text.rfind('<'), text.strip_suffix('>')) {
        (Some(open), Some(inner)) => is_email(&inner[open + 1..]),
        _ => is_email(text),
    }
}

/// An absolute http(s) URL with a host.
pub fn check_url(text: &str) -> Result<(), String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or("it must start with https:// or http://")?;
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host_port
        }
    });
    if host.is_empty() {
        return Err("it has no host".into());
    }
    if text.chars().any(char::is_whitespace) {
        return Err("it contains white space".into());
    }
    let host_ok = host
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if !host_ok {
        return Err(format!("`{host}` is not a host name"));
    }
    Ok(())
}

/// Parses a cron line (5 or 6 fields), returning the parser's reason on failure.
pub fn check_cron(text: &str) -> Result<croner::Cron, String> {
    let fields = text.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(format!(
            "it has {fields} fields; cron lines have 5 (or 6 with seconds)"
        ));
    }
    croner::parser::CronParser::new()
        .parse(text)
        .map_err(|e| e.to_string())
}

/// A name that expressions reach with dots (`contact.fields.plan`, `site.tagline`,
/// `config.title`): a `-` there would read as a minus.
pub fn is_field_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks the keys of a map against a naming rule, at the key.
fn keys<'a>(
    at: &crate::validate::Located,
    base: &[crate::yaml::Seg],
    names: impl Iterator<Item = &'a String>,
    field_names: bool,
    out: &mut Vec<Diagnostic>,
) {
    for name in names {
        let ok = if field_names {
            is_field_name(name)
        } else {
            is_ident(name)
        };
        if !ok {
            let path = crate::validate::join(base, [crate::yaml::Seg::from(name)]);
            let (message, help) = if field_names {
                (
                    format!("`{name}` is not a valid field name"),
                    "field names use lowercase letters, digits and `_`, and start with a letter; expressions reach them with dots",
                )
            } else {
                (
                    format!("`{name}` is not a valid id"),
                    "ids use lowercase letters, digits, `-` and `_`",
                )
            };
            out.push(
                Diagnostic::error(Code::InvalidId, at.file, at.key_span(&path), message)
                    .with_help(help),
            );
        }
    }
}

/// Checks that cut across files and are not about one value's format.
pub fn check(ws: &Workspace, out: &mut Vec<Diagnostic>) {
    use crate::validate::Located;
    if let Some(doc) = &ws.lists {
        keys(
            &Located::of(ws, doc),
            &crate::path!["lists"],
            doc.value.lists.keys(),
            false,
            out,
        );
    }
    if let Some(doc) = &ws.segments {
        let at = Located::of(ws, doc);
        keys(
            &at,
            &crate::path!["segments"],
            doc.value.segments.keys(),
            false,
            out,
        );
    }
    if let Some(doc) = &ws.pipelines {
        let at = Located::of(ws, doc);
        keys(
            &at,
            &crate::path!["pipelines"],
            doc.value.pipelines.keys(),
            false,
            out,
        );
    }
    if let Some(doc) = &ws.fields {
        keys(
            &Located::of(ws, doc),
            &crate::path!["fields"],
            doc.value.fields.keys(),
            true,
            out,
        );
    }
    for doc in ws.site_templates.values() {
        let at = Located::of(ws, doc);
        keys(
            &at,
            &crate::path!["variables"],
            doc.value.variables.keys(),
            true,
            out,
        );
    }
    for doc in ws.components.values() {
        let at = Located::of(ws, doc);
        keys(
            &at,
            &crate::path!["config"],
            doc.value.config.keys(),
            true,
            out,
        );
    }
    // Each `network.allow` entry is a host, an address or a range.
    if let Some(doc) = &ws.config
        && let Some(network) = &doc.value.network
    {
        let at = crate::validate::Located::of(ws, doc);
        for (i, entry) in network.allow.iter().enumerate() {
            if let Err(why) = crate::engine::egress::parse_entry(entry) {
                out.push(
                    at.error(Code::InvalidValue, &crate::path!["network", "allow", i], &why)
                        .with_help("write a host (hooks.internal, *.corp.example), an address (10.0.0.5) or a range (10.0.0.0/8)"),
                );
            }
        }
    }
    // Each trusted proxy is an address or a range.
    if let Some(doc) = &ws.config
        && let Some(daemon) = &doc.value.daemon
    {
        let at = crate::validate::Located::of(ws, doc);
        for (i, entry) in daemon.trusted_proxies.iter().enumerate() {
            if let Err(why) = crate::engine::egress::parse_range(entry) {
                out.push(
                    at.error(
                        Code::InvalidValue,
                        &crate::path!["daemon", "trusted_proxies", i],
                        &why,
                    )
                    .with_help("write an address (10.0.0.5) or a range (10.0.0.0/8)"),
                );
            }
        }
    }
    // TLS: an https ACME directory, and the authority's root file where named.
    if let Some(doc) = &ws.config
        && let Some(tls) = doc.value.daemon.as_ref().and_then(|d| d.tls.as_ref())
    {
        let at = crate::validate::Located::of(ws, doc);
        let directory = tls.acme_directory.as_str();
        if url::Url::parse(directory).map_or(true, |u| u.scheme() != "https" || u.host().is_none())
        {
            out.push(
                at.error(
                    Code::InvalidValue,
                    &crate::path!["daemon", "tls", "acme_directory"],
                    format!("`{directory}` is not an https URL"),
                )
                .with_help("write the authority's directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory"),
            );
        }
        // HTTP-01 proves a plain DNS name: no scheme, port, address or wildcard.
        for site in ws.sites.values() {
            if let Some(domain) = &site.value.domain
                && !is_dns_name(domain)
            {
                out.push(
                    crate::validate::Located::of(ws, site)
                        .error(
                            Code::InvalidValue,
                            &crate::path!["domain"],
                            format!("`{domain}` is not a domain name a certificate can be issued for"),
                        )
                        .with_help("write the bare host name, e.g. www.example.com: no scheme, port, IP address or wildcard (daemon.tls is on)"),
                );
            }
        }
        if let Some(file) = &tls.acme_ca_file
            && !ws.root.join(file).is_file()
        {
            out.push(
                at.error(
                    Code::InvalidValue,
                    &crate::path!["daemon", "tls", "acme_ca_file"],
                    format!("no file `{file}` in the workspace"),
                )
                .with_help("name a PEM file of the ACME server's root, relative to the workspace, or remove the key to trust the system's roots"),
            );
        }
    }
    // The language model's endpoint is an http(s) URL.
    if let Some(doc) = &ws.config
        && let Some(ai) = &doc.value.ai
    {
        let at = crate::validate::Located::of(ws, doc);
        let endpoint = ai.endpoint.as_str();
        if url::Url::parse(endpoint).map_or(true, |u| {
            !matches!(u.scheme(), "http" | "https") || u.host().is_none()
        }) {
            out.push(
                at.error(
                    Code::InvalidValue,
                    &crate::path!["ai", "endpoint"],
                    format!("`{endpoint}` is not an http(s) URL"),
                )
                .with_help("write the API's base URL, e.g. http://127.0.0.1:11434/v1 (Ollama) or https://api.openai.com/v1"),
            );
        }
    }
    // The cost of a send is a plain non-negative amount.
    if let Some(doc) = &ws.config
        && let Some(cost) = doc.value.email.as_ref().and_then(|e| e.cost_per_send)
        && !(cost.is_finite() && cost >= 0.0)
    {
        out.push(
            crate::validate::Located::of(ws, doc)
                .error(
                    Code::InvalidValue,
                    &crate::path!["email", "cost_per_send"],
                    format!("`{cost}` is not a cost"),
                )
                .with_help("write what one email costs, 0 or more, e.g. 0.001"),
        );
    }
    // Funnels: two steps at least, on sites and components that exist.
    if let Some(doc) = &ws.config
        && let Some(analytics) = &doc.value.analytics
    {
        use crate::model::config::FunnelStep;
        let at = crate::validate::Located::of(ws, doc);
        for (id, funnel) in &analytics.funnels {
            if funnel.steps.len() < 2 {
                out.push(
                    at.error(
                        Code::InvalidValue,
                        &crate::path!["analytics", "funnels", id.as_str(), "steps"],
                        format!("funnel `{id}` has {} step(s)", funnel.steps.len()),
                    )
                    .with_help("a funnel needs two steps or more, in order"),
                );
            }
            for (i, step) in funnel.steps.iter().enumerate() {
                let (site, component) = match step {
                    FunnelStep::PageView { site, .. } => (site, None),
                    FunnelStep::ComponentEvent {
                        site, component, ..
                    }
                    | FunnelStep::FormPost { site, component } => (site, Some(component)),
                    _ => continue,
                };
                let path = crate::path!["analytics", "funnels", id.as_str(), "steps", i];
                if !ws.sites.contains_key(site.as_str()) {
                    out.push(
                        at.error(Code::InvalidValue, &path, format!("no site `{site}`"))
                            .with_help("name a folder of sites/"),
                    );
                } else if let Some(c) = component
                    && crate::validate::sites::site_instances(ws, site.as_str())
                        .is_some_and(|list| !list.iter().any(|i| i.instance.id == *c))
                {
                    out.push(
                        at.error(
                            Code::InvalidValue,
                            &path,
                            format!("site `{site}` has no component instance `{c}`"),
                        )
                        .with_help("name an instance id of the site's pages"),
                    );
                }
            }
        }
    }
    // Postgres needs a URL; SQLite needs none.
    if let Some(doc) = &ws.config
        && let Some(store) = &doc.value.store
    {
        let at = crate::validate::Located::of(ws, doc);
        if store.backend == crate::model::config::StoreBackend::Postgres && store.url.is_none() {
            out.push(
                at.error(
                    Code::MissingKey,
                    &crate::path!["store"],
                    "the postgres backend needs `url`",
                )
                .with_help("add `url: ${DATABASE_URL}` and set that variable"),
            );
        }
    }
}

/// A host name of two labels or more, each 1 to 63 letters, digits or
/// hyphens (not at either end), the last not all digits (an address).
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_need_plain_dns_names() {
        for ok in [
            "www.example.com",
            "shop.example.",
            "a-b.example.co.uk",
            "xn--bcher-kva.example",
        ] {
            assert!(is_dns_name(ok), "{ok}");
        }
        for bad in [
            "https://www.example.com",
            "www.example.com:8443",
            "10.0.0.5",
            "*.example.com",
            "localhost",
            "-bad.example",
            "a..example",
            "",
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
    }

    #[test]
    fn accepts_and_rejects_emails() {
        assert!(is_email("ada@example.com"));
        assert!(is_email_with_name("Ada Lovelace <ada@example.com>"));
        assert!(!is_email("ada@example"));
        assert!(!is_email("ada.example.com"));
        assert!(!is_email("a..b@example.com"));
    }

    #[test]
    fn accepts_and_rejects_urls() {
        assert!(check_url("https://example.com/x?y=1").is_ok());
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        assert!(check_url("ftp://example.com").is_err());
        assert!(check_url("https:///path").is_err());
        assert!(check_url("https://exa mple.com").is_err());
    }

    #[test]
    fn accepts_and_rejects_cron_lines() {
        assert!(check_cron("0 8 * * 1").is_ok());
        assert!(check_cron("0 0 8 * * MON").is_ok());
        assert!(check_cron("61 8 * * 1").is_err());
        assert!(check_cron("every monday").is_err());
    }

    #[test]
    fn knows_env_references() {
        assert!(is_env_reference("${SMTP_PASSWORD}"));
        assert!(!is_env_reference("hunter2"));
        assert!(!is_env_reference("${1BAD}"));
    }
}
