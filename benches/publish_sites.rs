//! Cold publish of one site per template: `cargo bench --bench publish_sites`
//! (`-- --runs N`). A workspace copy of the repository gets a site per built-in
//! template (instantiated with sample values for the required variables); each
//! run builds every site in memory (render, CSS, assets, link check) and writes it
//! into an empty folder. Prints the total and the time per page.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::Path;
use std::time::Instant;

use funnel::publish::{self, Options};

fn sample(kind: funnel::model::variable::ValueType) -> &'static str {
    use funnel::model::variable::ValueType as T;
    match kind {
        T::Email => "hello@example.org",
        T::Url => "https://example.org/start",
        T::Color => "#1f2937",
        T::Integer | T::Number => "3",
        T::Boolean => "true",
        _ => "Example Company",
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read").flatten() {
        let t = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).expect("copy");
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench publish_sites` to measure");
        return;
    }
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let ws_dir = dir.path().join("ws");
    for part in ["workflows", "templates", "sites", "contacts"] {
        copy_tree(&repo.join(part), &ws_dir.join(part));
    }
    std::fs::copy(repo.join("funnel.yaml"), ws_dir.join("funnel.yaml")).expect("config");
    let ws = funnel::workspace::load(&ws_dir, &ws_dir).expect("workspace");
    let templates: Vec<String> = ws.site_templates.keys().cloned().collect();
    for id in &templates {
        let spec = &ws.site_templates[id].value.variables;
        let sets: Vec<(String, String)> = spec
            .iter()
            .filter(|(_, s)| s.default.is_none())
            .map(|(k, s)| (k.clone(), sample(s.kind).to_string()))
            .collect();
        let text = funnel::catalog::instantiate(&ws, id, &format!("t-{id}"), None, None, &sets)
            .expect("instantiate");
        let site = ws_dir.join("sites").join(format!("t-{id}"));
        std::fs::create_dir_all(&site).expect("mkdir");
        std::fs::write(site.join("site.yaml"), text).expect("write");
    }
    let ws = funnel::workspace::load(&ws_dir, &ws_dir).expect("workspace");
    let sites: Vec<String> = templates.iter().map(|t| format!("t-{t}")).collect();
    let opts = Options {
        public_url: "https://go.example.org".into(),
        base_url: None,
    };
    let mut totals = Vec::new();
    let mut pages = 0;
    for run in 0..runs {
        let out = dir.path().join(format!("out-{run}"));
        let t = Instant::now();
        pages = 0;
        for site in &sites {
            let build = publish::build(&ws, site, &opts).expect("build");
            publish::output::write(&build, &out.join(site)).expect("write");
            pages += build.pages.len();
        }
        totals.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    totals.sort_by(f64::total_cmp);
    let median = totals[totals.len() / 2];
    println!(
        "cold publish of {} sites (one per template), {pages} pages: median {median:.1} ms, best {:.1} ms, worst {:.1} ms ({runs} runs); {:.2} ms per page",
        sites.len(),
        totals[0],
        totals[totals.len() - 1],
        median / pages as f64
    );
}
