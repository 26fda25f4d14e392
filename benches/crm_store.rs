//! Benchmark: the CRM over a generated store of 1,000,000 contacts and 10,000,000
//! activities (release build). Measures the CSV import of 1,000,000 contacts (time
//! and peak memory), the count of the segment "plan = pro AND tag newsletter AND
//! viewed /pricing at least twice in 7 days" (checked equal to a naive reference
//! query), a search-as-you-type prefix query, a timeline page (50 newest of 10,000
//! activities) and `contacts dedupe` over the whole store.
//!
//! Activities are stored interleaved in time across contacts, as they arrive in
//! life (`--clustered` writes each contact's next to each other instead, the
//! layout earlier figures were taken on).
//!
//! `cargo bench --bench crm_store` (`-- --contacts N --seed S --keep FILE
//! --import-only --clustered`); the
//! generator prints its seed. The store uses the repository's own `contacts/*.yaml`
//! (the demo workspace). Figures are in docs/crm.md.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::path::Path;
use std::time::Instant;

use funnel::crm::{dedupe, directory, import, segment};
use funnel::model::config::Synchronous;
use funnel::rng::Rng;
use funnel::store::SqliteStore;
use rusqlite::{Connection, params};

const FIRST: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dmitri", "Elena", "Farah", "Gustav", "Hana", "Ivan", "Jonas", "Kim",
    "Lena", "Marco", "Nora", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Ulla", "Vera",
    "Wei", "Ximena", "Yusuf", "Zoë", "Amara", "Bruno", "Carla", "Dario", "Emil", "Freya",
];
const LAST: &[&str] = &[
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
const FREE: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "web.de",
    "icloud.com",
];
const PAGES: &[&str] = &[
    "/",
    "/features",
    "/blog/retention",
    "/docs",
    "/about",
    "/customers",
];
const DAY: i64 = 86_400_000;

fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

/// Starts a new peak for `VmHWM` (Linux: writing 5 to clear_refs).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A person: (first, last, email, phone, company).
fn person(rng: &mut Rng, i: u64) -> (String, String, String, Option<String>, String) {
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench crm_store` to measure");
        return;
    }
    if let Some(path) = flag::<String>(&args, "--dedupe") {
        let store = SqliteStore::open(Path::new(&path), Synchronous::Full).expect("store");
        let t = Instant::now();
        let pairs = store
            .read(|c| Ok(dedupe::candidates(c).expect("dedupe")))
            .expect("read");
        println!(
            "dedupe: {} candidate pairs in {:.1} s; peak resident memory {} MiB",
            pairs.len(),
            t.elapsed().as_secs_f64(),
            peak_rss_mib()
        );
        return;
    }
    let n: u64 = flag(&args, "--contacts").unwrap_or(1_000_000);
    let seed: u64 = flag(&args, "--seed").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    println!(
        "seed {seed} (rerun with --seed {seed}); {n} contacts, {} activities",
        n * 10
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ws = funnel::workspace::load(repo, repo).expect("demo workspace");
    let engine = funnel::engine::Engine::from_workspace(&ws).expect("engine");
    let fields = ws
        .fields
        .as_ref()
        .map(|d| d.value.fields.clone())
        .unwrap_or_default();
    let lists: std::collections::BTreeSet<String> = ws
        .lists
        .as_ref()
        .map(|d| d.value.lists.keys().cloned().collect())
        .unwrap_or_default();
    let dir = tempfile::tempdir().expect("tempdir");

    // 1. CSV import of n contacts into a fresh store, as `contacts import` runs it.
    if !args.iter().any(|a| a == "--skip-import") {
        import_bench(seed, n, &fields, &lists, dir.path());
    }
    if args.iter().any(|a| a == "--import-only") {
        return;
    }

    // 2. The generated store: contacts, fields, tags, and 10 activities per contact.
    let path = dir.path().join("crm.db");
    let now = 1_767_225_600_000i64 + 120 * DAY;
    let t = Instant::now();
    let clustered = args.iter().any(|a| a == "--clustered");
    generate(&path, seed, n, now, clustered);
    println!("generated in {:.1} s", t.elapsed().as_secs_f64());
    let store = SqliteStore::open(&path, Synchronous::Full).expect("store");

    // 3. The segment, and the naive reference.
    let def = engine.scoring.segments["pro-newsletter-pricing"].clone();
    let scoring = engine.scoring.clone();
    let runs = |label: &str, times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        println!(
            "{label}: median {:.1} ms, best {:.1} ms, worst {:.1} ms ({} runs)",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
            times.len()
        );
    };
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..7 {
        let (d, s) = (def.clone(), scoring.clone());
        let t = Instant::now();
        count = store
            .read(move |c| Ok(segment::count_segment(c, &s, &d, now).expect("count")))
            .expect("read");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let naive: i64 = store
        .read(move |c| {
            c.query_row(
                "SELECT count(*) FROM contacts c WHERE \
                 EXISTS (SELECT 1 FROM contact_fields f WHERE f.contact_id = c.id AND f.field = 'plan' AND f.value_text = 'pro') \
                 AND EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact_id = c.id AND t.tag = 'newsletter') \
                 AND (SELECT count(*) FROM activities a INDEXED BY activities_timeline \
                      WHERE a.contact_id = c.id AND a.type = 'page_view' \
                      AND a.subject = '/pricing' AND a.occurred_at >= ?1) >= 2",
                funnel::db_params![now - 7 * DAY],
                |r| r.get(0),
            )
        })
        .expect("naive");
    assert_eq!(
        count as i64, naive,
        "segment count equals the naive reference"
    );
    println!(
        "segment pro-newsletter-pricing: {count} contacts ({:.2}% of the store; naive reference agrees)",
        count as f64 * 100.0 / n as f64
    );
    runs("segment count", &mut times);

    // 4. Search as you type: the first letters of a name, then of a second word.
    let mut times = Vec::new();
    for q in [
        "le",
        "lena",
        "lena fi",
        "fisch",
        "okafor ch",
        "ramí",
        "co4",
        "zo",
    ] {
        let t = Instant::now();
        let hits = store
            .read(move |c| Ok(directory::search(c, q, 20).expect("search")))
            .expect("read");
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        println!("  search {q:?}: {} hits in {ms:.1} ms", hits.len());
        times.push(ms);
        assert!(!hits.is_empty() || q == "co4", "no hits for {q}");
    }
    runs("prefix search (20 hits)", &mut times);

    // 5. A timeline page: contact 1 has 10,000 activities.
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let page = store
            .read(|c| Ok(directory::timeline(c, 1, None, 50).expect("timeline")))
            .expect("read");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(page.len(), 50);
    }
    runs("timeline page (50 newest of 10,000)", &mut times);

    // 6. Dedupe over the whole store, in a process of its own so that its peak
    // memory is its own (the generator's page cache stays resident here).
    drop(store);
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--bench", "--dedupe"])
        .arg(&path)
        .output()
        .expect("dedupe process");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if let Some(keep) = flag::<String>(&args, "--keep") {
        std::fs::copy(&path, &keep).expect("keep the store");
        println!("store kept at {keep}");
    }
}

/// Writes a CSV of `n` people and imports it into a fresh store as `contacts
/// import` does; prints the time and the peak memory of the import.
fn import_bench(
    seed: u64,
    n: u64,
    fields: &std::collections::BTreeMap<String, funnel::model::contacts::FieldDef>,
    lists: &std::collections::BTreeSet<String>,
    dir: &Path,
) {
    let csv_path = dir.join("contacts.csv");
    {
        let mut rng = Rng::new(seed);
        let mut w = csv::Writer::from_path(&csv_path).expect("csv");
        w.write_record([
            "email",
            "first_name",
            "last_name",
            "phone",
            "company",
            "plan",
            "tags",
        ])
        .expect("header");
        for i in 0..n {
            let (first, last, email, phone, company) = person(&mut rng, i);
            let plan = ["free", "starter", "pro", "enterprise"][rng.below(4) as usize];
            let tags = if rng.unit() < 0.4 { "newsletter" } else { "" };
            w.write_record([
                &email,
                &first,
                &last,
                &phone.unwrap_or_default(),
                &company,
                plan,
                tags,
            ])
            .expect("row");
        }
        w.flush().expect("flush");
    }
    reset_peak_rss();
    let rss_before = peak_rss_mib();
    let store = SqliteStore::open(&dir.join("import.db"), Synchronous::Full).expect("store");
    let file = std::fs::File::open(&csv_path).expect("open csv");
    let (fields, lists) = (fields.clone(), lists.clone());
    let t = Instant::now();
    let report = store
        .write(move |c| {
            import::import(
                c,
                file,
                &fields,
                &lists,
                &import::Options {
                    defer_indexes: true,
                    bulk: true,
                    ..import::Options::default()
                },
                0,
                &mut |_| {},
            )
            .map_err(|e| funnel::store::StoreError::Invalid(e.to_string()))
        })
        .wait()
        .expect("import");
    let import_s = t.elapsed().as_secs_f64();
    println!(
        "import: {} rows, {} created, {} rejected in {import_s:.1} s ({:.0} rows/s); peak resident memory {} MiB (before: {rss_before} MiB)",
        report.rows,
        report.created,
        report.rejects.len(),
        report.rows as f64 / import_s,
        peak_rss_mib()
    );
}

/// Writes the store directly (one transaction, no fsync): contacts with plan and
/// tag, a cohort (12%) that viewed /pricing two to four times this week, contact 1
/// with 10,000 activities, and the rest spread over 90 days, 10% of them /pricing.
fn generate(path: &Path, seed: u64, n: u64, now: i64, clustered: bool) {
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
