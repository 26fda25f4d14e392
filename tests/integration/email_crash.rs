//! The broadcast crash test: a 20,000-recipient campaign through a real SMTP
//! server, its sender (`funnel campaigns send`) killed with SIGKILL at random
//! moments (at least 5 times, seed printed; `FUNNEL_CRASH_SEED` replays) and
//! started again each time. In the end every recipient received the message at
//! least once; a second copy only for messages in flight at a kill (at most the
//! sender's concurrency per kill, with the same Message-ID as the first);
//! suppressed contacts and a reader who joined the list mid-send got nothing.

use std::collections::HashMap;
use std::io::BufRead;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::smtp_sink::SmtpSink;
use crate::support::{demo, funnel_for, run};

const RECIPIENTS: usize = 20_000;
const SUPPRESSED: usize = 50;
const KILLS: usize = 5;
/// Messages the sender hands to the relay at once (engine::worker::email).
const IN_FLIGHT: usize = 8;

/// Each received message's recipient and Message-ID.
fn received(folder: &std::path::Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(folder) else {
        return out;
    };
    for e in dir.filter_map(Result::ok) {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "eml") {
            continue;
        }
        let Ok(f) = std::fs::File::open(&path) else {
            continue;
        };
        let (mut to, mut id) = (String::new(), String::new());
        for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("To: ") {
                to = v.trim().to_string();
            }
            if let Some(v) = line.strip_prefix("Message-ID: ") {
                id = v.trim().to_string();
            }
        }
        out.push((to, id));
    }
    out
}

#[test]
fn a_broadcast_survives_sigkills_of_its_sender_with_duplicates_only_in_flight() {
    let dir = demo();
    let d = dir.path();
    let Some(sink) = SmtpSink::start(&d.join("received")) else {
        return;
    };
    crate::smtp_sink::relay_to_sink(
        d,
        &sink,
        "  tracking:\n    opens: false\n    clicks: false\n",
    );
    std::fs::write(
        d.join("campaigns/big.yaml"),
        "name: Big\naudience:\n  list: newsletter\ntemplate: onboarding-tips\n",
    )
    .expect("campaign");
    let mut csv = String::from("email,name,lists\n");
    for i in 0..RECIPIENTS {
        csv.push_str(&format!("r{i}@example.org,Reader {i},newsletter\n"));
    }
    std::fs::write(d.join("people.csv"), csv).expect("csv");
    assert!(
        run(&["contacts", "import", "people.csv"], d)
            .status
            .success()
    );
    // Suppressed readers: on the list, but unsubscribed.
    let ids: Vec<String> = (0..SUPPRESSED)
        .map(|i| format!("r{}@example.org", i * 397))
        .collect();
    for who in &ids {
        let out = run(&["contacts", "edit", who, "--status", "unsubscribed"], d);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let expected = RECIPIENTS - SUPPRESSED;

    // The audience is frozen first, so that the reader added after the first
    // kill joins a list whose campaign is already frozen (a kill during the
    // freeze itself would roll it back, and they would rightly be included).
    let out = run(&["campaigns", "send", "big", "--detach"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seed = crate::support::crash_seed("broadcast crash test");
    let mut rng = funnel::rng::Rng::new(seed);
    let started = Instant::now();
    let mut kills = 0;
    let mut late_added = false;
    while kills < KILLS {
        let mut child = funnel_for(d)
            .args(["campaigns", "send", "big"])
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sender");
        std::thread::sleep(Duration::from_millis(800 + rng.below(2_500)));
        if child.try_wait().ok().flatten().is_some() {
            panic!(
                "the sender finished before kill {} (seed {seed})",
                kills + 1
            );
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        kills += 1;
        eprintln!(
            "kill {kills}: {} messages received",
            received(&sink.folder).len()
        );
        if !late_added {
            // A reader who joins the list mid-send is not in the frozen audience.
            std::fs::write(
                d.join("late.csv"),
                "email,lists\nlate@example.org,newsletter\n",
            )
            .expect("csv");
            assert!(run(&["contacts", "import", "late.csv"], d).status.success());
            late_added = true;
        }
    }
    // The last run goes to the end (messages a killed sender had claimed come
    // back when their lease runs out).
    let out = run(&["campaigns", "send", "big"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{expected} recipients, {kills} kills, in {:?} (seed {seed})",
        started.elapsed()
    );

    let got = received(&sink.folder);
    let mut by_rcpt: HashMap<&str, Vec<&str>> = HashMap::new();
    for (to, id) in &got {
        by_rcpt.entry(to.as_str()).or_default().push(id.as_str());
    }
    assert_eq!(
        by_rcpt.len(),
        expected,
        "every recipient, once at least (seed {seed})"
    );
    for who in ids.iter().map(String::as_str).chain(["late@example.org"]) {
        assert!(!by_rcpt.contains_key(who), "{who} got mail (seed {seed})");
    }
    let duplicates = got.len() - by_rcpt.len();
    eprintln!("{duplicates} duplicates over {kills} kills");
    assert!(
        duplicates <= kills * IN_FLIGHT,
        "{duplicates} duplicates for {kills} kills (seed {seed})"
    );
    for (to, ids) in &by_rcpt {
        assert!(
            ids.iter().all(|i| *i == ids[0] && !i.is_empty()),
            "{to}: {ids:?}"
        );
    }
    let stats = run(&["campaigns", "stats", "big", "--format", "json"], d);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("JSON");
    assert_eq!(stats["status"], "sent");
    assert_eq!(stats["variants"][0]["delivered"], expected as u64);
}
