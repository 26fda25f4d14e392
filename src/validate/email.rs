//! Checks of email settings that their schemas cannot express: in funnel.yaml a
//! DKIM key named exactly once, plain SMTP only to this machine, and a signing
//! domain that matches the sender's (receivers align the two for DMARC), the SES
//! signing certificate readable; in each
//! campaign an audience, a schedule that is a time, A/B variants that add up, and
//! the sender's postal address that the law asks every broadcast to carry.

use crate::diagnostic::{Code, Diagnostic};
use crate::model::config::SmtpTls;
use crate::validate::Located;
use crate::workspace::Workspace;

pub fn check(ws: &Workspace, out: &mut Vec<Diagnostic>) {
    campaigns(ws, out);
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
    if let Some(ses) = email.events.as_ref().and_then(|e| e.ses.as_ref()) {
        let path = ws.root.join(&ses.certificate_file);
        let readable = std::fs::read(&path).ok().is_some_and(|pem| {
            use rustls::pki_types::pem::PemObject as _;
            rustls::pki_types::CertificateDer::from_pem_slice(&pem).is_ok()
        });
        if !readable {
            out.push(
                at.error(
                    Code::MissingFile,
                    &crate::path!["email", "events", "ses", "certificate_file"],
                    format!(
                        "`{}` is not a readable PEM certificate: SES notifications could not be verified",
                        ses.certificate_file
                    ),
                )
                .with_help("save the certificate at a notification's `SigningCertURL` there"),
            );
        }
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

fn campaigns(ws: &Workspace, out: &mut Vec<Diagnostic>) {
    let postal = ws
        .config
        .as_ref()
        .and_then(|c| c.value.email.as_ref())
        .and_then(|e| e.postal_address.as_deref())
        .is_some_and(|a| !a.trim().is_empty());
    for doc in ws.campaigns.values() {
        let at = Located::of(ws, doc);
        let c = &doc.value;
        if !postal {
            out.push(
                at.error(
                    Code::MissingKey,
                    &crate::path!["name"],
                    "a campaign needs the sender's postal address, and funnel.yaml has no `email.postal_address`",
                )
                .with_help("CAN-SPAM and similar laws ask every marketing email to name where the sender is; add `email.postal_address` to funnel.yaml"),
            );
        }
        if c.audience.segment.is_none() && c.audience.list.is_none() {
            out.push(
                at.error(
                    Code::MissingKey,
                    &crate::path!["audience"],
                    "the audience names neither a `segment` nor a `list`",
                )
                .with_help(
                    "a campaign to everyone is a segment that says so: `matches: {status: active}`",
                ),
            );
        }
        if let Some(when) = &c.schedule
            && when.parse::<jiff::Timestamp>().is_err()
        {
            out.push(
                at.error(
                    Code::InvalidValue,
                    &crate::path!["schedule"],
                    format!("`{when}` is not a time with its offset"),
                )
                .with_help("write it as RFC 3339, e.g. `2026-12-10T09:00:00+01:00`"),
            );
        }
        let Some(test) = &c.ab_test else {
            continue;
        };
        if test.variants.len() < 2 {
            out.push(at.error(
                Code::InvalidValue,
                &crate::path!["ab_test", "variants"],
                "an A/B test needs two variants or more",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut total: u32 = 0;
        for (i, v) in test.variants.iter().enumerate() {
            if !seen.insert(v.id.as_str()) {
                out.push(at.error(
                    Code::InvalidValue,
                    &crate::path!["ab_test", "variants", i, "id"],
                    format!("two variants are called `{}`", v.id.as_str()),
                ));
            }
            if v.split == 0 {
                out.push(at.error(
                    Code::InvalidValue,
                    &crate::path!["ab_test", "variants", i, "split"],
                    "a variant's split is a percentage above 0",
                ));
            }
            total += u32::from(v.split);
        }
        if total > 100 {
            out.push(
                at.error(
                    Code::InvalidValue,
                    &crate::path!["ab_test", "variants"],
                    format!("the variants' splits add up to {total}%, more than the audience"),
                )
                .with_help("the splits are the test's shares; the rest of the audience (100% minus their sum) gets the winner"),
            );
        }
        if test.window.millis().is_err() {
            out.push(at.error(
                Code::InvalidValue,
                &crate::path!["ab_test", "window"],
                "the window is not a duration such as `4h`",
            ));
        }
    }
}
