//! `funnel up` for real: the binary on an ephemeral port serving the demo site on
//! `demo.localhost`, a form post through to the contact, the workflow and the dev
//! outbox, health and metrics, a workflow edit live without a restart, a broken
//! edit refused while the old version keeps running, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::http_client::{header, http};
use crate::support::{demo, funnel_for, json_out};

pub struct Up {
    pub child: Child,
    /// The daemon's address (127.0.0.1:port).
    pub addr: String,
    /// The demo site's URL as printed.
    pub site: String,
    stderr: Receiver<String>,
}

impl Up {
    /// Waits up to `secs` for a line on stderr containing `what`.
    fn said(&self, what: &str, secs: u64) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(l) if l.contains(what) => return Some(l),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// A request to the demo site: its host name, the daemon's address.
    pub fn to_site(
        &self,
        method: &str,
        path: &str,
        extra: &str,
        body: &str,
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let host = self
            .site
            .trim_start_matches("http://")
            .trim_end_matches('/');
        http(
            &self.addr,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
                body.len()
            ),
            body.as_bytes(),
        )
    }

    pub fn own(&self, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        http(
            &self.addr,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.addr
            ),
            b"",
        )
    }

    pub fn post_form(&self, email: &str) -> u16 {
        let body = format!(
            "name=Test&email={}&company=Acme&message=Hi&_hp=",
            email.replace('@', "%40")
        );
        self.to_site(
            "POST",
            "/f/demo/contact-form",
            "Content-Type: application/x-www-form-urlencoded\r\n",
            &body,
        )
        .0
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn up(dir: &std::path::Path) -> Up {
    up_with_env(dir, &[])
}

pub fn up_with_env(dir: &std::path::Path, env: &[(&str, &str)]) -> Up {
    let mut child = funnel_for(dir)
        .args(["up", "--port", "0"])
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("funnel up starts");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut banner = Vec::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).expect("banner") == 0 {
            panic!("funnel up ended before it listened: {banner:?}");
        }
        let done = line.contains("Ctrl-C stops");
        banner.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || for _ in out.lines().map_while(Result::ok) {});
    let (tx, stderr) = std::sync::mpsc::channel();
    let err = BufReader::new(child.stderr.take().expect("stderr"));
    std::thread::spawn(move || {
        for l in err.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let find = |prefix: &str| {
        banner
            .iter()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no `{prefix}` line in {banner:?}"))
            .to_string()
    };
    let site = find("site demo");
    let addr = find("daemon")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    Up {
        child,
        addr,
        site,
        stderr,
    }
}

/// A contact's tags, read from the store (the CLI refuses a broken workspace).
fn tags_of(d: &std::path::Path, email: &str) -> Vec<String> {
    crate::backend::column(
        d,
        &format!(
            "SELECT t.tag FROM contact_tags t JOIN contacts c ON c.id = t.contact_id \
             WHERE c.email = '{email}' ORDER BY t.tag"
        ),
    )
}

/// Polls `f` for up to 10 s.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn up_serves_every_site_by_host_and_reloads_validated_edits() {
    let dir = demo();
    let d = dir.path();
    let u = up(d);
    let port = u.addr.rsplit(':').next().expect("port");
    assert_eq!(u.site, format!("http://demo.localhost:{port}/"));

    // The site on its host; forms on its pages post back to that host.
    let (status, h, body) = u.to_site("GET", "/", "", "");
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-content-type-options"), Some("nosniff"));
    let html = String::from_utf8_lossy(&body);
    assert!(
        html.contains(&format!(
            "action=\"http://demo.localhost:{port}/f/demo/contact-form\""
        )),
        "forms post to the site's host"
    );
    // The daemon's own host lists the sites and answers health and metrics.
    let (status, _, body) = u.own("/");
    assert_eq!(status, 200);
    let index: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(index["sites"][0]["url"], u.site.as_str(), "{index}");
    assert_eq!(u.own("/healthz").0, 200);
    assert_eq!(u.own("/readyz").0, 200);
    let (status, _, body) = u.own("/nothing");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("\"error\""));
    // An unknown host is not a site.
    let (status, _, _) = http(
        &u.addr,
        "GET /pricing HTTP/1.1\r\nHost: other.localhost\r\nConnection: close\r\n\r\n",
        b"",
    );
    assert_eq!(status, 404);

    // A form post: the contact, its workflow, the email in the dev outbox.
    assert_eq!(u.post_form("first@example.org"), 303);
    assert!(eventually(
        || tags_of(d, "first@example.org").contains(&"contact-form".to_string())
    ));
    let runs = json_out(
        &[
            "executions",
            "list",
            "--workflow",
            "contact-form-follow-up",
            "--format",
            "json",
        ],
        d,
    );
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    assert!(
        eventually(|| std::fs::read_dir(d.join(".funnel/outbox")).is_ok_and(|r| r.count() > 0)),
        "the welcome email reaches the dev outbox"
    );
    let metrics = String::from_utf8_lossy(&u.own("/metrics").2).to_string();
    assert!(
        metrics.contains("funnel_http_requests_total{route=\"form\",status=\"303\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("funnel_emails_pending"), "{metrics}");

    // An edit on disk is live without a restart.
    let path = d.join("workflows/contact-form-follow-up.yaml");
    let original = std::fs::read_to_string(&path).expect("read");
    let edited = original.replace(
        "tags: [contact-form, inbound]",
        "tags: [contact-form, inbound, reloaded]",
    );
    assert_ne!(edited, original);
    std::fs::write(&path, &edited).expect("edit");
    assert!(u.said("reloaded:", 20).is_some(), "the edit is picked up");
    assert_eq!(u.post_form("second@example.org"), 303);
    assert!(eventually(
        || tags_of(d, "second@example.org").contains(&"reloaded".to_string())
    ));

    // A broken edit is refused with its diagnostics; the last good version runs.
    std::fs::write(
        &path,
        edited.replace("type: upsert_contact", "type: upsert_contacts"),
    )
    .expect("break");
    assert!(
        u.said("not reloaded", 20).is_some(),
        "the broken edit is refused"
    );
    assert_eq!(u.post_form("third@example.org"), 303);
    assert!(eventually(
        || tags_of(d, "third@example.org").contains(&"reloaded".to_string())
    ));

    // SIGTERM stops it cleanly.
    let pid = u.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let mut u = u;
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = u.child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // It stored the last minute's request counts as it stopped.
    let forms: Vec<i64> = crate::backend::column(
        d,
        "SELECT requests FROM metrics_minutes WHERE route = 'form'",
    );
    assert_eq!(forms.iter().sum::<i64>(), 3, "{forms:?}");
    let gauges: Vec<String> =
        crate::backend::column(d, "SELECT DISTINCT gauge FROM gauges_minutes ORDER BY 1");
    assert!(gauges.contains(&"emails_pending".to_string()), "{gauges:?}");
}
