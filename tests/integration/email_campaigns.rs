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
    let config = std::fs::read_to_string(d.join("funnel.yaml")).expect("funnel.yaml");
    let config = config.replace(
        "  outbox: .funnel/outbox\n",
        &format!(
            "  outbox: .funnel/outbox\n  smtp:\n    host: 127.0.0.1\n    port: {}\n    tls: none\n",
            sink.port
        ),
    )
    .replace("  rate_limit: 10\n", "");
    std::fs::write(d.join("funnel.yaml"), config).expect("write");
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
