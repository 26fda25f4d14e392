//! A real SMTP server on loopback for the email tests: aiosmtpd (from PyPI, which
//! `.ci/test` installs into `target/ci-venv`) running `tests/smtp_sink.py`, and
//! Python's own MIME parser (`tests/email_check.py`) reading what arrived.
//! Without that Python the tests skip with a message, except under CI.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::support::repo_root;

/// A Python that has aiosmtpd and dkimpy: `FUNNEL_TEST_PYTHON`, else the CI venv's.
pub fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("FUNNEL_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/ci-venv/bin/python"));
    let works = Command::new(&candidate)
        .args(["-c", "import aiosmtpd, dkim, nacl"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(candidate);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "no Python with aiosmtpd and dkimpy at {} (run .ci/test, which installs them)",
        candidate.display()
    );
    eprintln!(
        "skipped: no Python with aiosmtpd and dkimpy at {} (set FUNNEL_TEST_PYTHON or run .ci/test)",
        candidate.display()
    );
    None
}

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub folder: PathBuf,
    python: PathBuf,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    /// Starts the server, keeping messages in `folder`; `None` when skipped.
    pub fn start(folder: &Path) -> Option<SmtpSink> {
        let python = python()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(&python)
            .arg(repo_root().join("tests/smtp_sink.py"))
            .arg(port.to_string())
            .arg(folder)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the sink's first line");
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        Some(SmtpSink {
            child,
            port,
            folder: folder.to_path_buf(),
            python,
        })
    }

    /// The messages received so far, as Python's parser reads them.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let out = Command::new(&self.python)
            .arg(repo_root().join("tests/email_check.py"))
            .arg(&self.folder)
            .output()
            .expect("run email_check.py");
        assert!(
            out.status.success(),
            "email_check.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).expect("JSON")
    }

    /// Runs `tests/dkim_check.py` with these arguments; its JSON output.
    pub fn dkim_check(&self, args: &[&std::ffi::OsStr]) -> serde_json::Value {
        let out = Command::new(&self.python)
            .arg(repo_root().join("tests/dkim_check.py"))
            .args(args)
            .output()
            .expect("run dkim_check.py");
        assert!(
            out.status.success(),
            "dkim_check.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if out.stdout.is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    /// Waits up to `secs` for at least `n` messages.
    pub fn wait_for(&self, n: usize, secs: u64) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let count = std::fs::read_dir(&self.folder)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                        .count()
                })
                .unwrap_or(0);
            if count >= n || Instant::now() >= deadline {
                return self.messages();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Points the demo workspace at `d` to the sink: `email.smtp` on its port
/// (plain SMTP, loopback), `extra` lines added under `email:`, and no per-second
/// rate limit.
pub fn relay_to_sink(d: &Path, sink: &SmtpSink, extra: &str) {
    let config = std::fs::read_to_string(d.join("funnel.yaml")).expect("funnel.yaml");
    let changed = config
        .replace(
            "  outbox: .funnel/outbox\n",
            &format!(
                "  outbox: .funnel/outbox\n  smtp:\n    host: 127.0.0.1\n    port: {}\n    tls: none\n{extra}",
                sink.port
            ),
        )
        .replace("  rate_limit: 10\n", "");
    assert!(changed.contains("tls: none"), "funnel.yaml changed shape");
    std::fs::write(d.join("funnel.yaml"), changed).expect("write funnel.yaml");
}
