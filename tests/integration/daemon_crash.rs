//! The daemon killed with SIGKILL in the middle of form load: every post that got
//! its 303 to the thank-you page is in the store after a restart, and its workflow
//! runs to the end exactly once. A backup taken during the load restores to a
//! consistent store.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::daemon::{Up, up};
use crate::support::{demo, run};

/// One browser-style form post; the email when the answer was the 303 to the
/// thank-you page, `None` on any failure (refused, cut off).
fn post(addr: &str, host: &str, email: &str) -> Option<String> {
    let body = format!(
        "name=Load&email={}&company=Acme&message=Hi",
        email.replace('@', "%40")
    );
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request = format!(
        "POST /f/demo/contact-form HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let head = String::from_utf8_lossy(&raw);
    let acked = head.starts_with("HTTP/1.1 303")
        && head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("location: /thank-you"));
    acked.then(|| email.to_string())
}

fn count(d: &std::path::Path, sql: &str) -> i64 {
    crate::backend::scalar(d, sql, funnel::db_params![])
}

#[test]
fn posts_acknowledged_before_a_sigkill_survive_and_run_once() {
    let dir = demo();
    let d = dir.path();
    let config = d.join("funnel.yaml");
    let text = std::fs::read_to_string(&config).expect("funnel.yaml");
    std::fs::write(&config, format!("{text}daemon:\n  form_rate_limit: 0\n")).expect("write");
    let mut u: Up = up(d);
    let host = u
        .site
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (addr, host) = (u.addr.clone(), host.clone());
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    if let Some(e) = post(&addr, &host, &format!("t{t}-{i}@load.example"))
                        && let Ok(mut a) = acked.lock()
                    {
                        a.push(e);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    // Let the load run, take a backup in the middle of it, then kill.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().map(|a| a.len()).unwrap_or(0) < 150 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let backup = d.join("during-load.backup");
    let out = run(&["backup", "--out", &backup.to_string_lossy()], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    while acked.lock().map(|a| a.len()).unwrap_or(0) < 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    u.child.kill().expect("SIGKILL");
    let _ = u.child.wait();
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        let _ = s.join();
    }
    let acked: Vec<String> = acked.lock().map(|a| a.clone()).unwrap_or_default();
    assert!(
        acked.len() >= 100,
        "only {} posts acknowledged",
        acked.len()
    );

    // Every acknowledged post is stored, with its execution.
    let stored = |email: &str| {
        count(
            d,
            &format!("SELECT count(*) FROM contacts WHERE email = '{email}'"),
        )
    };
    let missing: Vec<&String> = acked.iter().filter(|e| stored(e) != 1).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );

    // Restarted, the daemon finishes every execution, once each.
    let u2 = up(d);
    let all_done = (0..300).any(|_| {
        let open = count(
            d,
            "SELECT count(*) FROM executions WHERE workflow_id = 'contact-form-follow-up' AND status NOT IN ('completed', 'failed')",
        );
        if open > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        open == 0
    });
    assert!(all_done, "executions left unfinished after the restart");
    let twice = count(
        d,
        "SELECT count(*) FROM (SELECT contact_id FROM executions WHERE workflow_id = 'contact-form-follow-up' \
         GROUP BY contact_id HAVING count(*) > 1) x",
    );
    assert_eq!(twice, 0, "a post's workflow ran twice");
    let without = acked
        .iter()
        .filter(|e| {
            count(
                d,
                &format!(
                    "SELECT count(*) FROM executions x JOIN contacts c ON c.id = x.contact_id \
                     WHERE c.email = '{e}' AND x.workflow_id = 'contact-form-follow-up' AND x.status = 'completed'"
                ),
            ) != 1
        })
        .count();
    assert_eq!(
        without, 0,
        "acknowledged posts whose workflow did not complete once"
    );
    assert_eq!(u2.own("/healthz").0, 200);
    drop(u2);

    // The backup taken under load restores to a consistent store: each contact
    // the form made has its form activity and its execution.
    let restored = tempfile::tempdir().expect("tempdir");
    crate::support::copy_tree(d, restored.path());
    let r = restored.path();
    let out = run(&["restore", &backup.to_string_lossy()], r);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let contacts = count(r, "SELECT count(*) FROM contacts");
    assert!(contacts > 0, "the backup holds the posts before it");
    assert!(contacts < acked.len() as i64 + 1, "and not those after it");
    let torn = count(
        r,
        "SELECT count(*) FROM contacts c WHERE NOT EXISTS (SELECT 1 FROM activities a WHERE a.contact_id = c.id) \
         OR NOT EXISTS (SELECT 1 FROM executions x WHERE x.contact_id = c.id)",
    );
    assert_eq!(torn, 0, "a contact without its activity or execution");
}
