//! Running as a service: `funnel service install` writes a unit that
//! `systemd-analyze verify` passes; the daemon's readiness, watchdog pings and
//! stopping reach the `NOTIFY_SOCKET` it is given; and a daemon killed with
//! SIGKILL, started again, finishes the timers that fell due while it was down.

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::support::{demo, funnel_for, run};

fn count(d: &std::path::Path, sql: &str) -> i64 {
    super::backend::scalar(d, sql, funnel::db_params![])
}

#[test]
fn the_written_unit_passes_systemd_analyze_verify() {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "systemd-analyze is missing: .ci/test installs Debian's systemd"
        );
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let dir = demo();
    let d = dir.path();
    let unit = d.join("out/funnel-demo.service");
    let me = String::from_utf8_lossy(&Command::new("id").arg("-un").output().expect("id").stdout)
        .trim()
        .to_string();
    let install = |bind: &str, force: bool| {
        let mut args = vec![
            "service", "install", "--bind", bind, "--run-as", &me, "--output",
        ];
        let path = unit.to_string_lossy().to_string();
        args.push(&path);
        if force {
            args.push("--force");
        }
        run(&args, d)
    };
    let out = install("127.0.0.1:7878", false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&unit).expect("the unit");
    for line in [
        "Type=notify",
        "Restart=on-failure",
        "WatchdogSec=30",
        "StandardError=journal",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}:\n{text}");
    }
    let verify = Command::new("systemd-analyze")
        .args(["verify"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        verify.status.success() && said.trim().is_empty(),
        "{said}\n{text}"
    );
    // Another unit is not written over without --force; the same one is.
    assert!(install("127.0.0.1:7878", false).status.success());
    let out = install("127.0.0.1:9999", false);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert!(install("127.0.0.1:9999", true).status.success());
    assert!(
        std::fs::read_to_string(&unit)
            .expect("unit")
            .contains("--bind 127.0.0.1:9999")
    );
}

/// Waits up to `secs` for a datagram holding `what`.
fn heard(sock: &UnixDatagram, what: &str, secs: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 512];
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout");
        match sock.recv(&mut buf) {
            Ok(n) if String::from_utf8_lossy(&buf[..n]).contains(what) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

fn daemon(d: &std::path::Path, env: &[(&str, String)]) -> Child {
    funnel_for(d)
        .args(["daemon", "--bind", "127.0.0.1:0", "--no-watch"])
        .current_dir(d)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("funnel daemon")
}

#[test]
fn readiness_watchdog_and_stopping_reach_the_notify_socket() {
    let dir = demo();
    let d = dir.path();
    let sockets = tempfile::tempdir().expect("dir");
    let path = sockets.path().join("notify");
    let sock = UnixDatagram::bind(&path).expect("bind");
    let mut child = daemon(
        d,
        &[
            ("NOTIFY_SOCKET", path.to_string_lossy().to_string()),
            ("WATCHDOG_USEC", "400000".to_string()),
        ],
    );
    assert!(heard(&sock, "READY=1", 60), "no READY=1");
    // Pinged on half the interval: several within two seconds.
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_secs(2) {
        if heard(&sock, "WATCHDOG=1", 1) {
            pings += 1;
        }
    }
    assert!(pings >= 4, "{pings} watchdog pings in 2 s");
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    assert!(heard(&sock, "STOPPING=1", 10), "no STOPPING=1");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_daemon_killed_and_started_again_finishes_the_timers_due_meanwhile() {
    let dir = demo();
    let d = dir.path();
    std::fs::write(
        d.join("workflows/quick-follow-up.yaml"),
        "name: Quick follow-up\ntrigger:\n  type: form_submission\n  site: demo\n  component: contact-form\n\
         steps:\n  - id: save\n    type: upsert_contact\n    email: \"{{ trigger.fields.email }}\"\n\
         \x20 - id: wait\n    type: delay\n    duration: 3s\n  - id: mark\n    type: add_tag\n    tags: [followed-up]\n",
    )
    .expect("workflow");
    let up = super::daemon::up(d);
    for i in 0..5 {
        assert_eq!(up.post_form(&format!("lead{i}@example.org")), 303);
    }
    let waiting = "SELECT count(*) FROM executions WHERE workflow_id = 'quick-follow-up' AND status = 'waiting'";
    let until = Instant::now() + Duration::from_secs(10);
    while count(d, waiting) < 5 {
        assert!(
            Instant::now() < until,
            "the executions never waited on their timer"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(up); // SIGKILL
    std::thread::sleep(Duration::from_secs(4));
    let done = "SELECT count(*) FROM executions WHERE workflow_id = 'quick-follow-up' AND status = 'completed'";
    assert_eq!(count(d, done), 0, "nothing ran while the daemon was down");
    let _again = super::daemon::up(d);
    let until = Instant::now() + Duration::from_secs(20);
    while count(d, done) < 5 {
        assert!(
            Instant::now() < until,
            "{} of 5 finished after the restart",
            count(d, done)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let tagged = count(
        d,
        "SELECT count(*) FROM contact_tags WHERE tag = 'followed-up'",
    );
    assert_eq!(tagged, 5, "each timer fired once");
}
