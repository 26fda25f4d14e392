//! Benchmark: the history-growth check of `tests/integration/history_growth.rs`
//! at the size of a busy production store: 1,000,000 contacts and 10,000,000
//! tracking events (plus a tenth as many timeline activities and finished
//! executions), against the same operations on a store with a tenth of that
//! history. Each hot path (form post, beacon, event with its steps, import rows,
//! timeline page) must scan no table and run at most 1.2× the SQLite VM steps.
//!
//! `cargo bench --bench history_growth` (`-- --events N --contacts N`).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark reports

#[path = "../tests/integration/history_growth.rs"]
mod history;

use std::time::Instant;

fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench history_growth` to measure");
        return;
    }
    let events: i64 = flag(&args, "--events").unwrap_or(10_000_000);
    let contacts: i64 = flag(&args, "--contacts").unwrap_or(1_000_000);
    let mut bench = history::Bench::new();
    bench.hot_paths();
    let t = Instant::now();
    bench.add_contacts(contacts / 10);
    bench.grow(events / 10);
    println!(
        "store with {} contacts, {} events: grown in {:.1} s",
        contacts / 10,
        events / 10,
        t.elapsed().as_secs_f64()
    );
    let small = bench.hot_paths();
    let t = Instant::now();
    bench.add_contacts(contacts - contacts / 10);
    bench.grow(events - events / 10);
    println!(
        "store with {contacts} contacts, {events} events: grown in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let large = bench.hot_paths();
    for ((name, a), (_, b)) in small.iter().zip(&large) {
        println!(
            "{name:24} {:>8} VM steps at a tenth of the history, {:>8} at all of it; full-scan steps {}",
            a.vm_steps, b.vm_steps, b.fullscan_steps
        );
    }
    let problems = history::check(&small, &large);
    if problems.is_empty() {
        println!("ok: no hot path costs more with ten times the history");
    } else {
        println!("costs grew with history:\n{}", problems.join("\n"));
        std::process::exit(1);
    }
}
