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

#[path = "support/crm_data.rs"]
mod crm_data;
use crm_data::{DAY, generate, person};

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
