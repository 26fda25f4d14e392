//! Broadcasts end to end through `funnel campaigns` and a real SMTP server: the
//! plan counts recipients and suppressed contacts and renders a sample; `send`
//! freezes the audience (a contact who joins the list afterwards gets nothing),
//! sends each recipient one message and no suppressed contact any; pause holds
//! it, resume goes on, cancel stops it; an A/B test sends its variants to their
//! shares and the rest the default when no variant won. Stats count it all.

use crate::smtp_sink::SmtpSink;
use crate::support::{demo, run};

fn contacts_csv(n: usize) -> String {
    let mut csv = String::from("email,name,lists\n");
    for i in 0..n {
        csv.push_str(&format!("reader{i}@example.org,Reader {i},newsletter\n"));
    }
    csv.push_str("outsider@example.org,Not Subscribed,\n");
    csv
}

const LAUNCH: &str = "name: Launch news
audience:
  list: newsletter
template: onboarding-tips
subject: \"Launch news for {{ contact.name | default('you') }}\"
";

const TESTED: &str = "name: Subject test
audience:
  list: newsletter
template: onboarding-tips
ab_test:
  window: 1s
  min_sample: 5
  variants:
    - id: plain
      split: 20
      subject: Our launch
    - id: bold
      split: 20
      subject: The biggest launch of the year
";

fn setup(campaign: &str, body: &str) -> Option<(tempfile::TempDir, SmtpSink)> {
    let dir = demo();
    let d = dir.path();
    let sink = SmtpSink::start(&d.join("received"))?;
    crate::smtp_sink::relay_to_sink(d, &sink, "");
    std::fs::write(d.join(format!("campaigns/{campaign}.yaml")), body).expect("campaign");
    std::fs::write(d.join("people.csv"), contacts_csv(30)).expect("csv");
    let out = run(&["contacts", "import", "people.csv"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for who in ["reader3@example.org", "reader7@example.org"] {
        let out = run(&["contacts", "edit", who, "--status", "unsubscribed"], d);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some((dir, sink))
}

fn json_of(args: &[&str], d: &std::path::Path) -> serde_json::Value {
    let out = run(args, d);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The https form of a message's `List-Unsubscribe` (the one RFC 8058's POST
/// goes to; a `mailto:` form follows it).
pub fn https_unsubscribe(m: &serde_json::Value) -> String {
    m["headers"]["list-unsubscribe"][0]
        .as_str()
        .unwrap_or_default()
        .split(", ")
        .map(|f| f.trim_matches(['<', '>']))
        .find(|f| f.starts_with("https://"))
        .unwrap_or_default()
        .to_string()
}

fn recipients(sink: &SmtpSink) -> Vec<String> {
    let mut to: Vec<String> = sink
        .messages()
        .iter()
        .filter_map(|m| m["headers"]["to"][0].as_str().map(String::from))
        .collect();
    to.sort();
    to
}

#[test]
fn a_broadcast_reaches_its_frozen_audience_once_and_skips_the_suppressed() {
    let Some((dir, sink)) = setup("launch", LAUNCH) else {
        return;
    };
    let d = dir.path();
    let plan = json_of(&["campaigns", "plan", "launch", "--format", "json"], d);
    assert_eq!(plan["recipients"], 28, "{plan:#}");
    assert_eq!(plan["suppressed"], 2);
    let subject = plan["samples"][0]["subject"].as_str().unwrap_or_default();
    assert!(subject.starts_with("Launch news for Reader"), "{plan:#}");
    assert!(sink.messages().is_empty(), "a plan sends nothing");

    // Frozen, then paused before anything went out.
    let out = run(&["campaigns", "send", "launch", "--detach"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["campaigns", "pause", "launch"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A reader who joins after the freeze is not part of this campaign.
    std::fs::write(
        d.join("late.csv"),
        "email,lists\nlate@example.org,newsletter\n",
    )
    .expect("csv");
    assert!(run(&["contacts", "import", "late.csv"], d).status.success());
    let out = run(&["campaigns", "send", "launch"], d);
    assert!(out.status.success());
    assert!(sink.messages().is_empty(), "paused: nothing sent");
    let stats = json_of(&["campaigns", "stats", "launch", "--format", "json"], d);
    assert_eq!(stats["status"], "paused");
    assert_eq!(stats["variants"][0]["waiting"], 28, "{stats:#}");

    assert!(run(&["campaigns", "resume", "launch"], d).status.success());
    let out = run(&["campaigns", "send", "launch"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = recipients(&sink);
    assert_eq!(got.len(), 28, "{got:?}");
    let mut unique = got.clone();
    unique.dedup();
    assert_eq!(unique.len(), 28, "each recipient once");
    for absent in [
        "reader3@example.org",
        "reader7@example.org",
        "outsider@example.org",
        "late@example.org",
    ] {
        assert!(!got.iter().any(|t| t == absent), "{absent} got mail");
    }
    for m in sink.messages() {
        assert_eq!(
            m["headers"]["list-unsubscribe-post"][0],
            "List-Unsubscribe=One-Click"
        );
    }
    let stats = json_of(&["campaigns", "stats", "launch", "--format", "json"], d);
    assert_eq!(stats["status"], "sent", "{stats:#}");
    assert_eq!(stats["variants"][0]["delivered"], 28);
    // Sent is sent: a second send changes nothing.
    assert!(run(&["campaigns", "send", "launch"], d).status.success());
    assert_eq!(sink.messages().len(), 28);
    assert!(
        !run(&["campaigns", "cancel", "launch"], d).status.success(),
        "a sent campaign cannot be cancelled"
    );
    let audit = crate::backend::scalar::<i64>(
        d,
        "SELECT count(*) FROM audit_log WHERE entity = 'campaign'",
        funnel::db_params![],
    );
    assert_eq!(audit, 3, "the freeze, the pause and the resume");
}

#[test]
fn an_ab_test_sends_each_variant_its_share_then_the_default_to_the_rest() {
    let Some((dir, sink)) = setup("tested", TESTED) else {
        return;
    };
    let d = dir.path();
    let plan = json_of(&["campaigns", "plan", "tested", "--format", "json"], d);
    let shares: Vec<i64> = plan["variants"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v["recipients"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(shares.iter().sum::<i64>(), 28, "{plan:#}");
    let out = run(&["campaigns", "send", "tested"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(recipients(&sink).len(), 28);
    let stats = json_of(&["campaigns", "stats", "tested", "--format", "json"], d);
    assert_eq!(stats["status"], "sent", "{stats:#}");
    // Nobody clicked: no winner is significant, the first variant goes to the rest.
    assert_eq!(stats["winner"], "plain");
    let subjects: Vec<String> = sink
        .messages()
        .iter()
        .filter_map(|m| m["headers"]["subject"][0].as_str().map(String::from))
        .collect();
    let bold = subjects.iter().filter(|s| s.contains("biggest")).count();
    let plain = subjects.iter().filter(|s| *s == "Our launch").count();
    assert_eq!(bold + plain, 28, "{subjects:?}");
    let bold_share = plan["variants"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["variant"] == "bold"))
        .and_then(|v| v["recipients"].as_i64())
        .unwrap_or(-1);
    assert_eq!(
        bold as i64, bold_share,
        "only the test share got the bold subject"
    );
}

/// The acceptance path on a running daemon: `campaigns send --detach` only
/// freezes the audience; the daemon's worker sends the broadcast to the real
/// SMTP server. One recipient's mail client posts the one-click unsubscribe to
/// the `List-Unsubscribe` URL, which suppresses them at once: the next broadcast
/// to the same list skips them. Another recipient's open and click land on
/// their contact's timeline.
#[test]
fn a_broadcast_through_the_daemon_is_sent_unsubscribed_from_tracked_and_the_next_skips_them() {
    let Some((dir, sink)) = setup("launch", LAUNCH) else {
        return;
    };
    let d = dir.path();
    std::fs::write(
        d.join("campaigns/follow-up.yaml"),
        LAUNCH.replace("Launch news", "Follow-up"),
    )
    .expect("second campaign");
    let u = crate::daemon::up(d);
    let out = run(&["campaigns", "send", "launch", "--detach"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = sink.wait_for(28, 60);
    assert_eq!(got.len(), 28, "the daemon sent the broadcast");

    let by = |who: &str| {
        got.iter()
            .find(|m| m["headers"]["to"][0] == who)
            .unwrap_or_else(|| panic!("no message to {who}"))
            .clone()
    };
    let leaver = by("reader5@example.org");
    let url = https_unsubscribe(&leaver);
    let path = url
        .strip_prefix("https://go.northwind.example")
        .unwrap_or_else(|| panic!("unsubscribe under public_url: {url}"))
        .to_string();
    let body = "List-Unsubscribe=One-Click";
    let (status, _, reply) = crate::http_client::http(
        &u.addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            u.addr,
            body.len()
        ),
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    let status: String = crate::backend::scalar(
        d,
        "SELECT status FROM contacts WHERE email = ?1",
        funnel::db_params!["reader5@example.org"],
    );
    assert_eq!(status, "unsubscribed", "effective at once");

    // A reader opens and clicks: both on their timeline.
    let reader = by("reader9@example.org");
    let html = reader["html"].as_str().unwrap_or_default().to_string();
    let link = |attr: &str, part: &str| {
        html.split(attr)
            .filter_map(|s| s.split('"').next())
            .find(|s| s.contains(part))
            .map(|s| {
                s.replace("&amp;", "&")
                    .trim_start_matches("https://go.northwind.example")
                    .to_string()
            })
            .unwrap_or_else(|| panic!("no {part} link in {html}"))
    };
    assert_eq!(u.own(&link("src=\"", "/o/")).0, 200);
    assert_eq!(u.own(&link("href=\"", "/c/")).0, 302);
    let timeline: i64 = crate::backend::scalar(
        d,
        "SELECT count(*) FROM activities a JOIN contacts c ON c.id = a.contact_id \
         WHERE c.email = ?1 AND a.type IN ('email_opened', 'email_clicked')",
        funnel::db_params!["reader9@example.org"],
    );
    assert_eq!(timeline, 2, "an open and a click on the contact");
    let stats = json_of(&["campaigns", "stats", "launch", "--format", "json"], d);
    assert_eq!(stats["variants"][0]["unique_opens"], 1, "{stats:#}");
    assert_eq!(stats["variants"][0]["unique_clicks"], 1, "{stats:#}");
    assert_eq!(stats["variants"][0]["unsubscribes"], 1, "{stats:#}");

    // The next broadcast to the same list skips the one who left.
    let out = run(&["campaigns", "send", "follow-up", "--detach"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = sink.wait_for(28 + 27, 60);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let all_later = sink.messages();
    assert_eq!(all.len(), 55, "27 follow-ups");
    assert_eq!(all_later.len(), 55, "and no more");
    let follow_ups: Vec<&serde_json::Value> = all_later
        .iter()
        .filter(|m| {
            m["headers"]["subject"][0]
                .as_str()
                .is_some_and(|s| s.starts_with("Follow-up"))
        })
        .collect();
    assert_eq!(follow_ups.len(), 27);
    assert!(
        !follow_ups
            .iter()
            .any(|m| m["headers"]["to"][0] == "reader5@example.org"),
        "the unsubscribed reader got the next broadcast"
    );
    drop(u);
}

/// A relay that does not answer is passed over for the next in
/// `email.smtp_fallbacks`, and `email.hourly_limit` holds the broadcast at the
/// hour's quota, counted in the store: the rest waits for the next hour.
#[test]
fn a_dead_relay_fails_over_and_the_hourly_limit_holds_the_rest() {
    let Some((dir, sink)) = setup("launch", LAUNCH) else {
        return;
    };
    let d = dir.path();
    // A port with nothing listening: bound, then closed.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = std::fs::read_to_string(d.join("funnel.yaml")).expect("funnel.yaml");
    let config = config.replace(
        &format!("    port: {}\n    tls: none\n", sink.port),
        &format!(
            "    port: {dead}\n    tls: none\n  smtp_fallbacks:\n    - host: 127.0.0.1\n      port: {}\n      tls: none\n  hourly_limit: 10\n",
            sink.port
        ),
    );
    assert!(
        config.contains("smtp_fallbacks"),
        "funnel.yaml changed shape"
    );
    std::fs::write(d.join("funnel.yaml"), config).expect("write");
    let u = crate::daemon::up(d);
    let out = run(&["campaigns", "send", "launch", "--detach"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = sink.wait_for(10, 30);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(got.len(), 10, "the fallback relay took them");
    assert_eq!(
        sink.messages().len(),
        10,
        "and no more than the hour's quota"
    );
    let counted: i64 = crate::backend::scalar(
        d,
        "SELECT sum(sent) FROM email_hourly",
        funnel::db_params![],
    );
    assert_eq!(counted, 10);
    let stats = json_of(&["campaigns", "stats", "launch", "--format", "json"], d);
    assert_eq!(stats["variants"][0]["delivered"], 10, "{stats:#}");
    assert_eq!(
        stats["variants"][0]["waiting"].as_i64().unwrap_or(0)
            + stats["variants"][0]["queued"].as_i64().unwrap_or(0),
        18,
        "{stats:#}"
    );
    drop(u);
}

/// The preference page behind every email's signed token (`/p/TOKEN`): a GET
/// shows marketing email on and the lists the reader is on or may join; each
/// POST saves exactly what was ticked, with its consent: leaving a list, joining
/// it again, switching marketing off (an unsubscribe) and on again.
#[test]
fn the_preference_page_saves_lists_and_marketing_with_their_consent() {
    let Some((dir, sink)) = setup("launch", LAUNCH) else {
        return;
    };
    let d = dir.path();
    let out = run(&["campaigns", "send", "launch"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages = sink.wait_for(28, 30);
    let reader = messages
        .iter()
        .find(|m| m["headers"]["to"][0] == "reader1@example.org")
        .unwrap_or_else(|| panic!("no message to reader1"));
    let unsubscribe = https_unsubscribe(reader);
    let page = unsubscribe
        .trim_start_matches("https://go.northwind.example")
        .replacen("/u/", "/p/", 1);
    let u = crate::daemon::up(d);
    let (status, _, body) = u.own(&page);
    let shown = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{shown}");
    assert!(
        shown.contains("name=\"marketing\" value=\"yes\" checked")
            && shown.contains("value=\"newsletter\" checked")
            && shown.contains("Northwind Dispatch"),
        "{shown}"
    );
    assert!(
        !shown.contains("value=\"customers\""),
        "a list that is not public and not theirs is not offered: {shown}"
    );
    let post = |body: &str| {
        crate::http_client::http(
            &u.addr,
            &format!(
                "POST {page} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                u.addr,
                body.len()
            ),
            body.as_bytes(),
        )
        .0
    };
    let on_list = || -> i64 {
        crate::backend::scalar(
            d,
            "SELECT count(*) FROM list_members m JOIN contacts c ON c.id = m.contact_id \
             WHERE c.email = 'reader1@example.org' AND m.list_id = 'newsletter'",
            funnel::db_params![],
        )
    };
    let status_of = || -> String {
        crate::backend::scalar(
            d,
            "SELECT status FROM contacts WHERE email = 'reader1@example.org'",
            funnel::db_params![],
        )
    };
    let consents = |purpose: &str, granted: i64| -> i64 {
        crate::backend::scalar(
            d,
            "SELECT count(*) FROM consent_ledger WHERE purpose = ?1 AND granted = ?2",
            funnel::db_params![purpose, granted],
        )
    };

    assert_eq!(post("marketing=yes"), 200);
    assert_eq!(on_list(), 0, "unticked: left the list");
    assert_eq!(consents("list:newsletter", 0), 1);
    assert_eq!(post("marketing=yes&list=newsletter"), 200);
    assert_eq!(on_list(), 1, "ticked: joined again");
    assert_eq!(consents("list:newsletter", 1), 1);
    assert_eq!(post("marketing=yes&list=newsletter"), 200);
    assert_eq!(
        consents("list:newsletter", 1),
        1,
        "no change, nothing recorded"
    );

    assert_eq!(post("list=newsletter"), 200);
    assert_eq!(
        status_of(),
        "unsubscribed",
        "marketing off is an unsubscribe"
    );
    let (_, _, body) = u.own(&page);
    assert!(
        String::from_utf8_lossy(&body).contains("name=\"marketing\" value=\"yes\">"),
        "shown off"
    );
    assert_eq!(post("marketing=yes&list=newsletter"), 200);
    assert_eq!(status_of(), "active", "on again, by the reader's own hand");
    assert_eq!(consents("email_marketing", 1), 1);
    let suppressed: i64 = crate::backend::scalar(
        d,
        "SELECT count(*) FROM suppressions WHERE reason = 'unsubscribed'",
        funnel::db_params![],
    );
    assert_eq!(suppressed, 0, "the reader's unsubscribe is lifted");

    let forged = format!("{}0", page.trim_end_matches(char::is_alphanumeric));
    assert_eq!(u.own(&forged).0, 404);
    drop(u);
}

/// An A/B test decided by real clicks: the daemon sends each variant its share,
/// every reader of `bold` clicks through its tracked link within the window
/// and nobody clicks `plain`; after the window, `bold` wins (p < 0.05 by the
/// two-proportion z-test, each arm at its minimum sample) and the rest of the
/// audience gets `bold`.
#[test]
fn an_ab_test_picks_the_variant_that_earned_significantly_more_clicks() {
    let tested = TESTED
        .replace("window: 1s", "window: 10s")
        .replace("min_sample: 5", "min_sample: 4")
        .replace("split: 20", "split: 35");
    let Some((dir, sink)) = setup("tested", &tested) else {
        return;
    };
    let d = dir.path();
    let plan = json_of(&["campaigns", "plan", "tested", "--format", "json"], d);
    let share = |id: &str| {
        plan["variants"]
            .as_array()
            .and_then(|a| a.iter().find(|v| v["variant"] == id))
            .and_then(|v| v["recipients"].as_u64())
            .unwrap_or(0) as usize
    };
    let (bold, plain) = (share("bold"), share("plain"));
    assert!(
        bold >= 4 && plain >= 4,
        "each arm reaches min_sample: {plan:#}"
    );
    let u = crate::daemon::up(d);
    assert!(
        run(&["campaigns", "send", "tested", "--detach"], d)
            .status
            .success()
    );
    let tests = sink.wait_for(bold + plain, 30);
    assert_eq!(tests.len(), bold + plain, "the test shares first");
    let mut clicked = 0;
    for m in tests
        .iter()
        .filter(|m| m["headers"]["subject"][0] == "The biggest launch of the year")
    {
        let html = m["html"].as_str().unwrap_or_default();
        let link = html
            .split("href=\"")
            .filter_map(|s| s.split('"').next())
            .find(|s| s.contains("/c/"))
            .map(|s| {
                s.replace("&amp;", "&")
                    .trim_start_matches("https://go.northwind.example")
                    .to_string()
            })
            .unwrap_or_else(|| panic!("no tracked link in {html}"));
        assert_eq!(u.own(&link).0, 302);
        clicked += 1;
    }
    assert_eq!(clicked, bold);
    let all = sink.wait_for(28, 60);
    assert_eq!(all.len(), 28, "the rest after the window");
    let stats = json_of(&["campaigns", "stats", "tested", "--format", "json"], d);
    assert_eq!(stats["winner"], "bold", "{stats:#}");
    let bold_subjects = sink
        .messages()
        .iter()
        .filter(|m| m["headers"]["subject"][0] == "The biggest launch of the year")
        .count();
    assert_eq!(
        bold_subjects,
        28 - plain,
        "everyone but the plain arm got bold"
    );
    drop(u);
}
