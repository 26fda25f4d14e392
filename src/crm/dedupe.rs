//! Finding likely duplicate contacts without comparing all pairs. Exact matches
//! share a canonical email (case, `+tags`, Gmail's dots). Likely matches have
//! similar names (Jaro-Winkler) and the same phone or company domain; they are
//! looked for only within blocks: contacts with the same phone, the same company
//! domain (free-mail domains excluded, they say nothing), or the same name key.
//! A block is sorted by name and each contact compared with its next
//! [`WINDOW`] neighbours (sorted neighbourhood), so a block of 50,000 colleagues
//! costs 50,000 × WINDOW comparisons, not 50,000².

use std::collections::HashMap;

use crate::store::db::Db;
use serde::Serialize;

use super::CrmError;
use crate::store::UnixMs;
use crate::store::db::params;

/// Neighbours each contact is compared with inside a block.
pub const WINDOW: usize = 12;
/// Name similarity from which a pair with a shared phone or domain is likely.
pub const LIKELY: f64 = 0.88;

/// Address domains many unrelated people share.
pub(crate) const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "proton.me",
    "protonmail.com",
    "mail.com",
    "yandex.ru",
    "t-online.de",
    "orange.fr",
    "free.fr",
    "qq.com",
    "163.com",
];

/// A candidate pair, `a < b`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pair {
    pub a: i64,
    pub b: i64,
    pub score: f64,
    pub reason: String,
}

struct Row {
    id: i64,
    email: String,
    name: String,
    phone: Option<String>,
    domain: Option<String>,
}

/// The address with case, `+tag` and (for Gmail) dots removed.
pub fn canonical_email(email: &str) -> String {
    let email = email.trim().to_lowercase();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return email;
    };
    let local = local.split('+').next().unwrap_or(local);
    let local = if domain == "gmail.com" || domain == "googlemail.com" {
        local.replace('.', "")
    } else {
        local.to_string()
    };
    let domain = if domain == "googlemail.com" {
        "gmail.com"
    } else {
        domain
    };
    format!("{local}@{domain}")
}

/// A name reduced for comparison: lowercase letters and single spaces, accents
/// kept (Jaro-Winkler works on characters).
fn norm_name(name: &str) -> String {
    name.to_lowercase()
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The name key block: the last word's first four letters and the first
/// word's initial ("lovelace ada" and "ada lovelace" both give "love.a").
fn name_key(name: &str) -> Option<String> {
    let words: Vec<&str> = name.split(' ').filter(|w| !w.is_empty()).collect();
    let (first, last) = (words.first()?, words.last()?);
    let mut a: Vec<&str> = vec![first, last];
    a.sort();
    let long = a[1].chars().take(4).collect::<String>();
    let short = a[0].chars().next()?;
    Some(format!("{long}.{short}"))
}

/// The phone's last eight digits (country prefixes written differently still meet).
fn phone_key(phone: &str) -> Option<String> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 7).then(|| digits[digits.len().saturating_sub(8)..].to_string())
}

/// Every candidate pair in the store, best first.
pub fn candidates(conn: Db<'_>) -> Result<Vec<Pair>, CrmError> {
    let mut rows = Vec::new();
    let mut stmt = conn.prepare("SELECT id, email, name, phone, company_domain FROM contacts")?;
    let mut q = stmt.query(params![])?;
    while let Some(r) = q.next()? {
        let domain: Option<String> = r.get(4)?;
        rows.push(Row {
            id: r.get(0)?,
            email: r.get(1)?,
            name: norm_name(&r.get::<Option<String>>(2)?.unwrap_or_default()),
            phone: r.get::<Option<String>>(3)?.as_deref().and_then(phone_key),
            domain: domain.filter(|d| !FREE_MAIL.contains(&d.as_str())),
        });
    }
    let mut found: HashMap<(i64, i64), Pair> = HashMap::new();
    let mut keep = |p: Pair| {
        let e = found.entry((p.a, p.b)).or_insert_with(|| p.clone());
        if p.score > e.score {
            *e = p;
        }
    };
    // Exact: one canonical address.
    let mut by_email: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_email
            .entry(canonical_email(&r.email))
            .or_default()
            .push(i);
    }
    for group in by_email.values().filter(|g| g.len() > 1) {
        for (x, &i) in group.iter().enumerate() {
            for &j in &group[x + 1..] {
                keep(pair(&rows[i], &rows[j], 1.0, "same address".into()));
            }
        }
    }
    drop(by_email);
    // Likely: blocks by phone, company domain and name key.
    let mut blocks: HashMap<(u8, String), Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if r.name.is_empty() {
            continue;
        }
        if let Some(p) = &r.phone {
            blocks.entry((0, p.clone())).or_default().push(i);
        }
        if let Some(d) = &r.domain {
            blocks.entry((1, d.clone())).or_default().push(i);
        }
        if let Some(k) = name_key(&r.name) {
            blocks.entry((2, k)).or_default().push(i);
        }
    }
    for (_, mut members) in blocks {
        if members.len() < 2 {
            continue;
        }
        members.sort_by(|a, b| rows[*a].name.cmp(&rows[*b].name));
        for (x, &i) in members.iter().enumerate() {
            for &j in members.iter().skip(x + 1).take(WINDOW) {
                let (ra, rb) = (&rows[i], &rows[j]);
                let same_phone = ra.phone.is_some() && ra.phone == rb.phone;
                let same_domain = ra.domain.is_some() && ra.domain == rb.domain;
                if !same_phone && !same_domain {
                    continue;
                }
                let sim = strsim::jaro_winkler(&ra.name, &rb.name);
                if sim < LIKELY {
                    continue;
                }
                let why = match (same_phone, same_domain) {
                    (true, true) => "similar name, same phone and company",
                    (true, false) => "similar name, same phone",
                    _ => "similar name, same company domain",
                };
                // Shared evidence raises a good name match a little.
                let bonus = if same_phone && same_domain { 0.05 } else { 0.0 };
                let score = ((sim * 0.95 + bonus) * 1000.0).round() / 1000.0;
                keep(pair(ra, rb, score.min(0.99), why.into()));
            }
        }
    }
    // Pairs someone dismissed stay dismissed.
    let dismissed = dismissed(conn)?;
    let mut out: Vec<Pair> = found
        .into_values()
        .filter(|p| !dismissed.contains(&(p.a, p.b)))
        .collect();
    out.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    Ok(out)
}

fn dismissed(conn: Db<'_>) -> Result<std::collections::HashSet<(i64, i64)>, CrmError> {
    let mut stmt = conn.prepare_cached("SELECT a_id, b_id FROM duplicate_dismissals")?;
    let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records that `a` and `b` are two people: the pair is never offered again.
pub fn dismiss(conn: Db<'_>, a: i64, b: i64, by: &str, at: UnixMs) -> Result<(), CrmError> {
    let (a, b) = (a.min(b), a.max(b));
    conn.prepare_cached(
        "INSERT INTO duplicate_dismissals (a_id, b_id, dismissed_by, dismissed_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (a_id, b_id) DO NOTHING",
    )?
    .execute(params![a, b, by, at])?;
    Ok(())
}

/// Takes a dismissal back (an undo).
pub fn undismiss(conn: Db<'_>, a: i64, b: i64) -> Result<bool, CrmError> {
    let (a, b) = (a.min(b), a.max(b));
    Ok(conn
        .prepare_cached("DELETE FROM duplicate_dismissals WHERE a_id = ?1 AND b_id = ?2")?
        .execute(params![a, b])?
        > 0)
}

fn pair(a: &Row, b: &Row, score: f64, reason: String) -> Pair {
    let (a, b) = if a.id < b.id {
        (a.id, b.id)
    } else {
        (b.id, a.id)
    };
    Pair {
        a,
        b,
        score,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_addresses_drop_case_tags_and_gmail_dots() {
        assert_eq!(
            canonical_email("Ada.L+news@GoogleMail.com"),
            "adal@gmail.com"
        );
        assert_eq!(canonical_email("a.b+x@example.org"), "a.b@example.org");
    }

    #[test]
    fn a_dismissed_pair_is_never_offered_again_until_undone() {
        let store = crate::store::test_db::TestDb::open();
        let db = store.db();
        db.execute_batch(
            "INSERT INTO contacts (id, uid, email, name, created_at, updated_at) VALUES
               (1, 'a', 'ada.l@gmail.com', 'Ada Lovelace', 0, 0),
               (2, 'b', 'adal+news@gmail.com', 'Ada Lovelace', 0, 0);",
        )
        .expect("insert");
        let pairs = |db| candidates(db).expect("candidates");
        assert_eq!(pairs(db).len(), 1, "one address, canonically");
        dismiss(db, 2, 1, "mira", 5).expect("dismiss");
        assert!(pairs(db).is_empty());
        dismiss(db, 1, 2, "mira", 6).expect("a second dismissal is no error");
        assert!(undismiss(db, 2, 1).expect("undo"));
        assert_eq!(pairs(db).len(), 1);
        assert!(!undismiss(db, 1, 2).expect("nothing to undo"));
    }

    #[test]
    fn name_keys_ignore_word_order() {
        assert_eq!(name_key("ada lovelace"), name_key("lovelace ada"));
        assert_eq!(phone_key("+49 (30) 1234-5678"), phone_key("030 12345678"));
    }
}
