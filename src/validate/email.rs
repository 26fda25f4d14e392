//! Checks of funnel.yaml's `email` settings that its schema cannot express: a
//! DKIM key named exactly once, plain SMTP only to this machine, and a signing
//! domain that matches the sender's (receivers align the two for DMARC).

use crate::diagnostic::{Code, Diagnostic};
use crate::model::config::SmtpTls;
use crate::validate::Located;
use crate::workspace::Workspace;

pub fn check(ws: &Workspace, out: &mut Vec<Diagnostic>) {
    let Some(doc) = &ws.config else {
        return;
    };
    let Some(email) = &doc.value.email else {
        return;
    };
    let at = Located::of(ws, doc);
    if let Some(smtp) = &email.smtp
        && smtp.tls == Some(SmtpTls::None)
        && !crate::email::smtp::is_loopback(&smtp.host)
    {
        out.push(
            at.error(
                Code::InvalidValue,
                &crate::path!["email", "smtp", "tls"],
                format!(
                    "`tls: none` sends passwords and mail in the clear to `{}`",
                    smtp.host
                ),
            )
            .with_help("use `starttls` (port 587) or `tls` (port 465); `none` is for a relay on this machine"),
        );
    }
    if let Some(dkim) = &email.dkim {
        if dkim.private_key.is_some() == dkim.private_key_file.is_some() {
            out.push(
                at.error(
                    Code::MissingKey,
                    &crate::path!["email", "dkim"],
                    "name the DKIM key with exactly one of `private_key` and `private_key_file`",
                )
                .with_help("`private_key: ${DKIM_PRIVATE_KEY}` reads it from the environment"),
            );
        }
        let from_domain = email
            .from
            .as_str()
            .rsplit('@')
            .next()
            .map(|d| d.trim_end_matches('>').to_ascii_lowercase())
            .unwrap_or_default();
        let signing = dkim.domain.to_ascii_lowercase();
        if !(from_domain == signing || from_domain.ends_with(&format!(".{signing}"))) {
            out.push(
                Diagnostic::warning(
                    Code::InvalidValue,
                    at.file,
                    at.span(&crate::path!["email", "dkim", "domain"]),
                    format!(
                        "DKIM signs for `{}` but mail comes from `{from_domain}`: receivers checking DMARC will not count the signature",
                        dkim.domain
                    ),
                )
                .with_help("sign with the From address's domain (or a parent of it)"),
            );
        }
    }
}
