//! Benchmark: `funnel validate` over a generated workspace of 1,000 workflows and
//! 100 sites (release build). Prints the seed, the workspace size and the median of
//! several full validations (load, parse, structure, references, graphs,
//! expressions).
//!
//! `cargo bench --bench validate_workspace` runs it; with `-- --write DIR` it only
//! writes the workspace, for timing the binary itself (`hyperfine 'funnel validate
//! DIR'`). Figures are recorded in docs/validate.md.

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use funnel::rng::Rng;

const WORKFLOWS: usize = 1_000;
const SITES: usize = 100;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn generate(root: &Path, seed: u64) {
    let mut rng = Rng::new(seed);
    write(
        root,
        "funnel.yaml",
        "name: Bench\npublic_url: https://go.example.com\ntimezone: Europe/Berlin\n",
    );
    write(
        root,
        "contacts/fields.yaml",
        "fields:\n  company: {type: string}\n  plan: {type: select, options: [free, pro]}\n",
    );
    write(
        root,
        "contacts/lists.yaml",
        "lists:\n  prospects: {name: Prospects}\n  newsletter: {name: Newsletter}\n",
    );
    for s in 0..SITES {
        write(
            root,
            &format!("sites/site-{s}/site.yaml"),
            &format!(
                "name: Site {s}\ntemplate: saas-launch\ncustomizations:\n  company_name: Company {s}\n  tagline: Tools for team {s}\n  primary_color: \"#2563eb\"\n  contact_email: hello{s}@example.com\n  signup_url: https://example.com/signup\nseo:\n  description: \"Company {s} helps teams ship.\"\n"
            ),
        );
    }
    for w in 0..WORKFLOWS {
        let site = rng.below(SITES as u64);
        let mut y = String::new();
        let _ = write!(
            y,
            "name: Follow-up {w}\ntrigger:\n  type: form_submission\n  site: site-{site}\n  component: contact-form\n  conditions:\n    - trigger.fields.email is defined\nvars:\n  channel: \"#sales-{w}\"\nsteps:\n"
        );
        let _ = write!(
            y,
            "  - id: save\n    type: upsert_contact\n    email: \"{{{{ trigger.fields.email }}}}\"\n    name: \"{{{{ trigger.fields.name }}}}\"\n    fields:\n      company: \"{{{{ trigger.fields.company }}}}\"\n    lists: [prospects]\n"
        );
        let _ = write!(
            y,
            "  - id: welcome\n    type: send_email\n    template: welcome\n    retry: {{attempts: 3, backoff: 30s}}\n"
        );
        let _ = write!(
            y,
            "  - id: wait\n    type: delay\n    duration: {}d\n",
            1 + rng.below(5)
        );
        let _ = write!(
            y,
            "  - id: check\n    type: if\n    condition: contact.score >= {} and contact.fields.plan == \"pro\"\n    then: notify\n",
            10 + rng.below(80)
        );
        let _ = write!(
            y,
            "  - id: tag\n    type: add_tag\n    tags: [warm]\n    next: end\n"
        );
        let _ = write!(
            y,
            "  - id: notify\n    type: http\n    method: POST\n    url: https://hooks.example.com/{w}\n    headers:\n      X-Channel: \"{{{{ vars.channel }}}}\"\n    body:\n      email: \"{{{{ contact.email }}}}\"\n      score: \"{{{{ contact.score }}}}\"\n      saved: \"{{{{ steps.save.id }}}}\"\n"
        );
        write(root, &format!("workflows/follow-up-{w}.yaml"), &y);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = std::env::var("FUNNEL_BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d);
    if let Some(i) = args.iter().position(|a| a == "--write") {
        let dir = args.get(i + 1).expect("--write DIR");
        generate(Path::new(dir), seed);
        println!("wrote {WORKFLOWS} workflows and {SITES} sites to {dir} (seed {seed})");
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs benches without `--bench`: a debug build
        // has nothing worth measuring.
        println!("run with `cargo bench --bench validate_workspace` to measure");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    generate(dir.path(), seed);
    println!("seed {seed}: {WORKFLOWS} workflows, {SITES} sites");
    let mut times = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let report =
            funnel::validate::validate_workspace(dir.path(), Path::new("")).expect("loads");
        let elapsed = start.elapsed();
        assert_eq!(
            report.errors(),
            0,
            "generated workspace must be valid: {:?}",
            report.diagnostics.first()
        );
        times.push(elapsed);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "validate: median {:.1} ms, min {:.1} ms, max {:.1} ms over {} runs",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
}
