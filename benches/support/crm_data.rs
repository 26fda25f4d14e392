//! The generated CRM store the benchmarks share: people with fields and tags,
//! and ten activities each (one contact with 10,000), interleaved in time as
//! they arrive in life. Included by `crm_store` and `tui_screens`.

use std::path::Path;

use funnel::rng::Rng;
use rusqlite::{Connection, params};

pub const FIRST: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dmitri", "Elena", "Farah", "Gustav", "Hana", "Ivan", "Jonas", "Kim",
    "Lena", "Marco", "Nora", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Ulla", "Vera",
    "Wei", "Ximena", "Yusuf", "Zoë", "Amara", "Bruno", "Carla", "Dario", "Emil", "Freya",
];
pub const LAST: &[&str] = &[
    "Fischer",
    "Okafor",
    "Ramírez",
    "Lindqvist",
    "Nakamura",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Jensen",
    "Novak",
    "Schmidt",
    "García",
    "Müller",
    "Silva",
    "Kim",
    "Nguyen",
    "Andersen",
    "Bianchi",
    "Costa",
    "Horvat",
    "Ivanova",
    "Jansen",
    "Keller",
    "Laine",
    "Moreau",
    "Nielsen",
    "Olsen",
    "Petrov",
    "Quinn",
    "Richter",
    "Sato",
    "Tanaka",
    "Urban",
    "Vogel",
    "Weber",
    "Young",
];
pub const FREE: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "web.de",
    "icloud.com",
];
pub const PAGES: &[&str] = &[
    "/",
    "/features",
    "/blog/retention",
    "/docs",
    "/about",
    "/customers",
];
pub const DAY: i64 = 86_400_000;

pub fn person(rng: &mut Rng, i: u64) -> (String, String, String, Option<String>, String) {
    let first = FIRST[rng.below(FIRST.len() as u64) as usize];
    let last = LAST[rng.below(LAST.len() as u64) as usize];
    let company_no = rng.below(50_000);
    let company = format!("Company {company_no}");
    let domain = if rng.unit() < 0.4 {
        FREE[rng.below(FREE.len() as u64) as usize].to_string()
    } else {
        format!("co{company_no}.example")
    };
    let local: String = format!("{}.{}{i}", first, last)
        .to_lowercase()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let phone = (rng.unit() < 0.3).then(|| format!("+49 30 {:08}", rng.below(100_000_000)));
    (
        first.into(),
        last.into(),
        format!("{local}@{domain}"),
        phone,
        company,
    )
}

/// Writes the store directly (one transaction, no fsync): contacts with plan and
/// tag, a cohort (12%) that viewed /pricing two to four times this week, contact 1
/// with 10,000 activities, and the rest spread over 90 days, 10% of them /pricing.
pub fn generate(path: &Path, seed: u64, n: u64, now: i64, clustered: bool) {
    let mut conn = Connection::open(path).expect("open");
    funnel::store::migrations::sqlite_migrate(&mut conn).expect("migrate");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000;",
    )
    .expect("pragmas");
    if !clustered {
        // Each contact's activities are staged here, then written in time order.
        conn.execute_batch(
            "CREATE TEMP TABLE staged (contact_id INTEGER, type TEXT, subject TEXT, at INTEGER)",
        )
        .expect("staging table");
    }
    let tx = conn.transaction().expect("tx");
    {
        let mut rng = Rng::new(seed ^ 0x5eed);
        let mut contact = tx
            .prepare(
                "INSERT INTO contacts (id, uid, email, name, phone, company_domain, created_at, updated_at, last_activity) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
            )
            .expect("prepare");
        let mut field = tx
            .prepare(
                "INSERT INTO contact_fields (contact_id, field, value_text) VALUES (?1, ?2, ?3)",
            )
            .expect("prepare");
        let mut tag = tx
            .prepare("INSERT INTO contact_tags (contact_id, tag, added_at) VALUES (?1, 'newsletter', ?2)")
            .expect("prepare");
        let mut activity = tx
            .prepare(if clustered {
                "INSERT INTO activities (contact_id, type, subject, data, source, occurred_at) \
                 VALUES (?1, ?2, ?3, '{}', 'demo', ?4)"
            } else {
                "INSERT INTO temp.staged (contact_id, type, subject, at) VALUES (?1, ?2, ?3, ?4)"
            })
            .expect("prepare");
        for i in 1..=n as i64 {
            let (first, last, email, phone, company) = person(&mut rng, i as u64);
            let domain = email.rsplit_once('@').map(|(_, d)| d.to_string());
            let created = now - 200 * DAY + rng.below(100) as i64 * DAY;
            contact
                .execute(params![
                    i,
                    format!("g{i}"),
                    email,
                    format!("{first} {last}"),
                    phone,
                    domain,
                    created,
                    now
                ])
                .expect("contact");
            let plan = if rng.unit() < 0.25 {
                "pro"
            } else {
                ["free", "starter", "enterprise"][rng.below(3) as usize]
            };
            field.execute(params![i, "plan", plan]).expect("field");
            field
                .execute(params![i, "company", company])
                .expect("field");
            if rng.unit() < 0.4 {
                tag.execute(params![i, created]).expect("tag");
            }
            // Contact 1: a long timeline. The cohort: recent pricing views.
            let mut own: Vec<(&str, &str, i64)> = Vec::new();
            let mut count: u64 = if i == 1 { 10_000 } else { 10 };
            if i != 1 && rng.unit() < 0.12 {
                let views = 2 + rng.below(3);
                for _ in 0..views {
                    own.push((
                        "page_view",
                        "/pricing",
                        now - rng.below(7 * DAY as u64) as i64,
                    ));
                }
                count = count.saturating_sub(views);
            }
            for _ in 0..count {
                let at = now - rng.below(90 * DAY as u64) as i64;
                let r = rng.unit();
                let (kind, subject) = if r < 0.07 {
                    ("page_view", "/pricing")
                } else if r < 0.75 {
                    ("page_view", PAGES[rng.below(PAGES.len() as u64) as usize])
                } else if r < 0.9 {
                    ("email_opened", "welcome")
                } else if r < 0.97 {
                    ("email_clicked", "welcome")
                } else {
                    ("form_submit", "contact-form")
                };
                own.push((kind, subject, at));
            }
            own.sort_by_key(|a| a.2);
            for (kind, subject, at) in &own {
                activity
                    .execute(params![i, kind, subject, at])
                    .expect("activity");
            }
        }
    }
    if !clustered {
        // As in life: everyone's activities interleaved in time.
        tx.execute_batch(
            "INSERT INTO activities (contact_id, type, subject, data, source, occurred_at) \
             SELECT contact_id, type, subject, '{}', 'demo', at FROM temp.staged ORDER BY at; \
             DROP TABLE temp.staged;",
        )
        .expect("activities in time order");
    }
    // The search index in one pass instead of a million queued entries.
    tx.execute_batch(
        "DELETE FROM contacts_fts_queue; \
         INSERT INTO contacts_fts (rowid, email, name, company_domain, fields) \
         SELECT c.id, c.email, c.name, c.company_domain, \
           (SELECT group_concat(f.value_text, ' ') FROM contact_fields f \
            WHERE f.contact_id = c.id AND f.value_text IS NOT NULL) \
         FROM contacts c;",
    )
    .expect("index");
    tx.commit().expect("commit");
    // No ANALYZE: the figures are for a store as funnel leaves it.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    let activities: i64 = conn
        .query_row("SELECT count(*) FROM activities", [], |r| r.get(0))
        .expect("count");
    println!("generated {n} contacts, {activities} activities");
}
