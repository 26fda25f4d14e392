//! The CRM's commands through the real binary on a copy of the demo workspace:
//! CSV import (messy input, policies, aborted runs), export, bulk changes, lists,
//! deals, edit, consent, forget and export-data.

use std::path::Path;
use std::process::Stdio;

use serde_json::Value as Json;

use super::support::{demo, fixtures, funnel_for, json_out, run};

fn emails(dir: &Path) -> Vec<String> {
    let list = json_out(&["contacts", "list", "--all", "--format", "json"], dir);
    let mut out: Vec<String> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["email"].as_str().unwrap_or_default().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn a_messy_csv_imports_exactly_the_distinct_valid_addresses() {
    let dir = demo();
    let csv = fixtures().join("csv/messy.csv");
    let csv = csv.to_str().expect("path");
    let rejects = dir.path().join("rejects.csv");
    let report = json_out(
        &[
            "contacts",
            "import",
            csv,
            "--rejects",
            rejects.to_str().expect("path"),
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(report["delimiter"], ";");
    assert_eq!(report["created"], 6, "{report}");
    assert_eq!(
        emails(dir.path()),
        [
            "chloe@example.org",
            "ingrid@example.org",
            "jose@example.org",
            "lena.fischer@fjord.example",
            "mia@example.org",
            "soren.k@kobenhavn.example",
        ]
    );
    let got: Vec<(u64, String)> = report["rejects"]
        .as_array()
        .expect("rejects")
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap_or(0),
                r["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let lines: Vec<u64> = got.iter().map(|g| g.0).collect();
    assert_eq!(lines, [3, 4, 8, 9, 12], "{got:?}");
    assert!(got[0].1.contains("duplicate of line 2"), "{got:?}");
    assert!(got[1].1.contains("not a valid email"), "{got:?}");
    assert!(got[2].1.contains("no email"), "{got:?}");
    assert!(got[3].1.contains("lots") && got[3].1.contains("whole number"));
    assert!(got[4].1.contains("a@@example.org"));
    // The reject file holds each bad row with its line and reason.
    let text = std::fs::read_to_string(&rejects).expect("reject file");
    assert_eq!(text.lines().count(), 6, "{text}");
    assert!(text.contains("9,column `Company Size`"), "{text}");
    // Non-ASCII names, quoted newlines and typed fields came through.
    let soren = json_out(
        &[
            "contacts",
            "show",
            "soren.k@kobenhavn.example",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(soren["contact"]["name"], "Søren Kierkegaard");
    assert_eq!(
        soren["contact"]["fields"]["company"],
        "Kierkegaard & Sønner\nKøbenhavn"
    );
    assert_eq!(soren["contact"]["fields"]["company_size"], 40);
    let lena = json_out(
        &[
            "contacts",
            "show",
            "LENA.FISCHER@fjord.example",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(
        lena["contact"]["tags"],
        serde_json::json!(["beta", "newsletter"])
    );

    // Again with --existing skip: nothing new, every valid row skipped.
    let again = json_out(
        &[
            "contacts",
            "import",
            csv,
            "--existing",
            "skip",
            "--rejects",
            rejects.to_str().expect("path"),
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(
        (again["created"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(6))
    );
}

fn index_names(dir: &Path) -> Vec<String> {
    let sql = if super::backend::is_postgres() {
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() \
         UNION ALL SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND NOT t.tgisinternal ORDER BY 1"
    } else {
        "SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger') ORDER BY name"
    };
    super::backend::column(dir, sql)
}

#[test]
fn an_import_that_fails_halfway_changes_nothing() {
    let dir = demo();
    assert!(
        run(&["contacts", "add", "first@example.org"], dir.path())
            .status
            .success()
    );
    let indexes = index_names(dir.path());
    // Large against the store, so the import drops and rebuilds the indexes: the
    // failure must bring them back as well.
    let mut text = String::from("email,name\n");
    for i in 0..20_000 {
        text.push_str(&format!("p{i}@example.org,Person {i}\n"));
    }
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"broken@example.org,\xff\xfe not UTF-8\n");
    bytes.extend_from_slice(b"late@example.org,Late\n");
    std::fs::write(dir.path().join("broken.csv"), &bytes).expect("csv");
    let out = run(&["contacts", "import", "broken.csv"], dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 20002"), "{err}");
    assert_eq!(
        emails(dir.path()),
        ["first@example.org"],
        "nothing of the 20,000 rows stays"
    );
    assert_eq!(index_names(dir.path()), indexes, "every index is back");
    // The same file without its bad line imports, and leaves the indexes as they were.
    let good: Vec<u8> = bytes[..bytes.len() - 54].to_vec();
    std::fs::write(dir.path().join("good.csv"), &good).expect("csv");
    let report = json_out(
        &["contacts", "import", "good.csv", "--format", "json"],
        dir.path(),
    );
    assert_eq!(report["created"], 20_000, "{report}");
    assert_eq!(index_names(dir.path()), indexes);
    assert!(run(&["db", "check"], dir.path()).status.success());
}

#[test]
fn a_large_import_keeps_search_current_for_the_contacts_it_updates() {
    let dir = demo();
    assert!(
        run(&["contacts", "add", "first@example.org"], dir.path())
            .status
            .success()
    );
    let before = index_names(dir.path());
    // Large against the store: indexes and the field triggers of the search queue
    // are rebuilt at the end, and the updated contact is queued by the import.
    let mut text = String::from("email,company\nfirst@example.org,Zebulon Widgets\n");
    for i in 0..20_000 {
        text.push_str(&format!("p{i}@example.org,Acme {i}\n"));
    }
    std::fs::write(dir.path().join("big.csv"), text).expect("csv");
    let report = json_out(
        &["contacts", "import", "big.csv", "--format", "json"],
        dir.path(),
    );
    assert_eq!(
        (report["created"].as_u64(), report["updated"].as_u64()),
        (Some(20_000), Some(1))
    );
    assert_eq!(
        index_names(dir.path()),
        before,
        "indexes and triggers are back"
    );
    let found = json_out(
        &["contacts", "search", "zebulon", "--format", "json"],
        dir.path(),
    );
    let emails: Vec<&str> = found
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["email"].as_str())
        .collect();
    assert_eq!(emails, ["first@example.org"], "found by a custom field");
    let found = json_out(
        &["contacts", "search", "p19999", "--format", "json"],
        dir.path(),
    );
    assert_eq!(
        found[0]["email"], "p19999@example.org",
        "new contacts are queued"
    );
}

#[test]
fn a_small_import_keeps_search_current_for_renamed_and_new_contacts() {
    let dir = demo();
    assert!(
        run(
            &[
                "contacts",
                "add",
                "first@example.org",
                "--name",
                "Olwen Rask"
            ],
            dir.path()
        )
        .status
        .success()
    );
    let emails = |query: &str| -> Vec<String> {
        json_out(
            &["contacts", "search", query, "--format", "json"],
            dir.path(),
        )
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["email"].as_str().map(String::from))
        .collect()
    };
    // Indexed before the import, so the rename must queue it again.
    assert_eq!(emails("olwen"), ["first@example.org"]);
    let before = index_names(dir.path());
    std::fs::write(
        dir.path().join("small.csv"),
        "email,name,company\nfirst@example.org,Zebediah Quux,\nnew@example.org,Ysolde Marr,Vantablack Ltd\n",
    )
    .expect("csv");
    let report = json_out(
        &["contacts", "import", "small.csv", "--format", "json"],
        dir.path(),
    );
    assert_eq!(
        (report["created"].as_u64(), report["updated"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(index_names(dir.path()), before, "triggers are back");
    assert_eq!(emails("zebediah"), ["first@example.org"], "renamed");
    assert!(emails("olwen").is_empty(), "the old name is gone");
    assert_eq!(emails("ysolde"), ["new@example.org"], "created");
    assert_eq!(emails("vantablack"), ["new@example.org"], "its field");
}

#[test]
fn an_import_killed_halfway_changes_nothing() {
    let dir = demo();
    // One contact before, which must be all that is there after.
    assert!(
        run(&["contacts", "add", "first@example.org"], dir.path())
            .status
            .success()
    );
    let mut text = String::from("email,first_name,last_name,plan\n");
    for i in 0..300_000 {
        text.push_str(&format!("k{i}@example.org,Kim,No {i},pro\n"));
    }
    std::fs::write(dir.path().join("big.csv"), text).expect("csv");
    let mut child = funnel_for(dir.path())
        .args(["contacts", "import", "big.csv"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the import was still running when killed"
    );
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert_eq!(emails(dir.path()), ["first@example.org"]);
    let check = run(&["db", "check"], dir.path());
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

/// Whether `needle` occurs in any file below `dir`, or, when `dir` is a
/// workspace's `.funnel` and the store is on PostgreSQL, in any of its rows.
pub fn found_in(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    if let (Some(".funnel"), Some(root)) = (dir.file_name().and_then(|n| n.to_str()), dir.parent())
    {
        hits.extend(super::backend::tables_containing(root, needle));
    }
    if !dir.exists() {
        return hits;
    }
    for path in super::support::files_below(dir) {
        let path = dir.join(path);
        let bytes = std::fs::read(&path).expect("read store file");
        if bytes
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
        {
            hits.push(path.display().to_string());
        }
    }
    hits
}

#[test]
fn forget_erases_a_person_from_the_store_its_wal_and_the_outbox() {
    let dir = demo();
    std::fs::write(
        dir.path().join("form.yaml"),
        "site: demo\ncomponent: newsletter\nfields:\n  email: Lea.Roy@Example.org\n  name: Leandra Royce\n",
    )
    .expect("form");
    let started = json_out(
        &["emit", "form_submission", "--data", "form.yaml", "--json"],
        dir.path(),
    );
    assert!(!started["started"].as_array().expect("started").is_empty());
    // Someone else stays.
    assert!(
        run(
            &[
                "contacts",
                "add",
                "other@example.org",
                "--name",
                "Otto Other"
            ],
            dir.path()
        )
        .status
        .success()
    );
    let store = dir.path().join(".funnel");
    assert!(
        !found_in(&store, b"lea.roy@example.org").is_empty(),
        "the person is there before"
    );
    let export = json_out(
        &["contacts", "export-data", "lea.roy@example.org"],
        dir.path(),
    );
    assert_eq!(export["contact"][0]["name"], "Leandra Royce");
    assert!(
        !export["activities"]
            .as_array()
            .expect("activities")
            .is_empty()
    );
    assert!(
        !export["executions"]
            .as_array()
            .expect("executions")
            .is_empty()
    );

    let out = run(&["contacts", "forget", "lea.roy@example.org"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [&b"lea.roy@example.org"[..], b"Leandra Royce", b"Leandra"] {
        let hits = found_in(&store, needle);
        assert!(
            hits.is_empty(),
            "{} still in {hits:?}",
            String::from_utf8_lossy(needle)
        );
    }
    assert_eq!(emails(dir.path()), ["other@example.org"]);
    // Neither the form again nor a re-import of the same row adds them back.
    let again = json_out(
        &["emit", "form_submission", "--data", "form.yaml", "--json"],
        dir.path(),
    );
    assert!(
        again["started"].as_array().expect("started").is_empty(),
        "{again}"
    );
    assert_eq!(emails(dir.path()), ["other@example.org"]);
    std::fs::write(
        dir.path().join("again.csv"),
        "email,name\nLea.Roy@example.org,Leandra Royce\n",
    )
    .expect("csv");
    let report = json_out(
        &["contacts", "import", "again.csv", "--format", "json"],
        dir.path(),
    );
    assert_eq!(report["created"], 0);
    assert!(
        report["rejects"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("suppressed"),
        "{report}"
    );
    // New consent lifts the suppression; the ledger keeps only the address's hash.
    let consent = run(
        &[
            "contacts",
            "consent",
            "Lea.Roy@example.org",
            "--purpose",
            "newsletter",
            "--source",
            "phone call",
        ],
        dir.path(),
    );
    assert!(
        consent.status.success(),
        "{}",
        String::from_utf8_lossy(&consent.stderr)
    );
    let report = json_out(
        &["contacts", "import", "again.csv", "--format", "json"],
        dir.path(),
    );
    assert_eq!(report["created"], 1, "{report}");
}

#[test]
fn edit_changes_name_status_stage_and_fields() {
    let dir = demo();
    assert!(
        run(
            &[
                "contacts",
                "add",
                "eve@example.org",
                "--name",
                "Eve",
                "--field",
                "plan=free"
            ],
            dir.path()
        )
        .status
        .success()
    );
    let out = run(
        &[
            "contacts",
            "edit",
            "eve@example.org",
            "--name",
            "Eve Adams",
            "--status",
            "unsubscribed",
            "--stage",
            "customer",
            "--field",
            "plan=pro",
            "--field",
            "company=Acme",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = json_out(
        &["contacts", "show", "eve@example.org", "--format", "json"],
        dir.path(),
    );
    let c = &shown["contact"];
    assert_eq!(
        (
            c["name"].as_str(),
            c["status"].as_str(),
            c["stage"].as_str()
        ),
        (Some("Eve Adams"), Some("unsubscribed"), Some("customer"))
    );
    assert_eq!(c["fields"]["plan"], "pro");
    assert_eq!(c["fields"]["company"], "Acme");
    assert!(
        run(
            &["contacts", "edit", "eve@example.org", "--field", "company="],
            dir.path()
        )
        .status
        .success()
    );
    let shown = json_out(
        &["contacts", "show", "eve@example.org", "--format", "json"],
        dir.path(),
    );
    assert!(
        shown["contact"]["fields"].get("company").is_none(),
        "an empty value removes the field"
    );
    let bad = run(
        &["contacts", "edit", "eve@example.org", "--stage", "boss"],
        dir.path(),
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn exports_round_trip_through_import_and_follow_each_layout() {
    let dir = demo();
    let csv = fixtures().join("csv/messy.csv");
    // The reject file goes to the test's folder, never beside the fixture.
    let rejects = dir.path().join("rejects.csv");
    assert!(
        run(
            &[
                "contacts",
                "import",
                csv.to_str().expect("path"),
                "--rejects",
                rejects.to_str().expect("path"),
            ],
            dir.path()
        )
        .status
        .success()
    );
    let out = run(&["contacts", "export"], dir.path());
    assert!(out.status.success());
    let first = String::from_utf8(out.stdout).expect("utf-8");
    let copy = demo();
    std::fs::write(copy.path().join("export.csv"), &first).expect("write");
    let imported = run(&["contacts", "import", "export.csv"], copy.path());
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let second =
        String::from_utf8(run(&["contacts", "export"], copy.path()).stdout).expect("utf-8");
    // Everything but the creation times survives the round trip.
    let strip = |text: &str| -> Vec<Vec<String>> {
        let mut r = csv_rows(text);
        for row in &mut r {
            row[10] = String::new();
        }
        r
    };
    assert_eq!(strip(&first), strip(&second));
    assert_eq!(csv_rows(&first).len(), 7);

    let hubspot = csv_rows(
        &String::from_utf8(run(&["contacts", "export", "--layout", "hubspot"], dir.path()).stdout)
            .expect("utf-8"),
    );
    assert_eq!(
        &hubspot[0][..6],
        [
            "Email",
            "First Name",
            "Last Name",
            "Phone Number",
            "Company Name",
            "Lifecycle Stage"
        ]
    );
    let mailchimp = csv_rows(
        &String::from_utf8(
            run(
                &[
                    "contacts",
                    "export",
                    "--layout",
                    "mailchimp",
                    "--tag",
                    "newsletter",
                ],
                dir.path(),
            )
            .stdout,
        )
        .expect("utf-8"),
    );
    assert_eq!(
        mailchimp,
        [
            vec![
                "Email Address",
                "First Name",
                "Last Name",
                "Phone Number",
                "Tags"
            ],
            vec![
                "lena.fischer@fjord.example",
                "Lena",
                "Fischer",
                "",
                "beta,newsletter"
            ],
        ]
    );
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("csv row").iter().map(String::from).collect())
        .collect()
}

#[test]
fn bulk_changes_and_lists_work_over_filters_and_segments() {
    let dir = demo();
    let csv = fixtures().join("csv/messy.csv");
    // The reject file goes to the test's folder, never beside the fixture.
    let rejects = dir.path().join("rejects.csv");
    assert!(
        run(
            &[
                "contacts",
                "import",
                csv.to_str().expect("path"),
                "--rejects",
                rejects.to_str().expect("path"),
            ],
            dir.path()
        )
        .status
        .success()
    );
    // No filter: refused unless every contact is meant.
    let refused = run(&["contacts", "bulk", "--add-tag", "x"], dir.path());
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--all-contacts"));
    let dry = run(
        &[
            "contacts",
            "bulk",
            "--tag",
            "newsletter",
            "--add-to-list",
            "customers",
            "--dry-run",
        ],
        dir.path(),
    );
    assert!(String::from_utf8_lossy(&dry.stdout).contains("1 contacts would change"));
    let lists = json_out(&["lists", "list", "--format", "json"], dir.path());
    let members = |lists: &Json, id: &str| {
        lists
            .as_array()
            .expect("lists")
            .iter()
            .find(|l| l["id"] == id)
            .map(|l| l["members"].clone())
    };
    assert_eq!(
        members(&lists, "customers"),
        Some(serde_json::json!(0)),
        "a dry run changes nothing"
    );
    assert!(
        run(
            &[
                "contacts",
                "bulk",
                "--tag",
                "newsletter",
                "--add-to-list",
                "customers"
            ],
            dir.path()
        )
        .status
        .success()
    );
    assert!(
        run(
            &[
                "contacts",
                "bulk",
                "--all-contacts",
                "--set-field",
                "plan=starter"
            ],
            dir.path()
        )
        .status
        .success()
    );
    assert!(
        run(
            &[
                "contacts",
                "bulk",
                "--list",
                "customers",
                "--set-field",
                "plan=pro"
            ],
            dir.path()
        )
        .status
        .success()
    );
    let lists = json_out(&["lists", "list", "--format", "json"], dir.path());
    assert_eq!(members(&lists, "customers"), Some(serde_json::json!(1)));
    let pro = json_out(
        &[
            "contacts", "list", "--field", "plan=pro", "--format", "json",
        ],
        dir.path(),
    );
    assert_eq!(pro.as_array().map(Vec::len), Some(1));
    assert_eq!(pro[0]["email"], "lena.fischer@fjord.example");
    let starters = json_out(
        &[
            "contacts",
            "list",
            "--field",
            "plan=starter",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(starters.as_array().map(Vec::len), Some(5));
    // Lists by hand.
    assert!(
        run(
            &[
                "lists",
                "add",
                "prospects",
                "chloe@example.org",
                "mia@example.org"
            ],
            dir.path()
        )
        .status
        .success()
    );
    assert!(
        run(
            &["lists", "remove", "prospects", "mia@example.org"],
            dir.path()
        )
        .status
        .success()
    );
    let shown = json_out(
        &["lists", "show", "prospects", "--format", "json"],
        dir.path(),
    );
    assert_eq!(shown[0]["email"], "chloe@example.org");
    assert_eq!(shown.as_array().map(Vec::len), Some(1));
    assert_eq!(
        run(&["lists", "add", "nope", "chloe@example.org"], dir.path())
            .status
            .code(),
        Some(2)
    );
    // Delete over a filter.
    assert!(
        run(
            &["contacts", "bulk", "--list", "prospects", "--delete"],
            dir.path()
        )
        .status
        .success()
    );
    assert!(!emails(dir.path()).contains(&"chloe@example.org".to_string()));
    assert_eq!(emails(dir.path()).len(), 5);
}

#[test]
fn deals_move_through_a_pipeline_with_history_and_totals() {
    let dir = demo();
    assert!(
        run(
            &[
                "contacts",
                "add",
                "buyer@example.org",
                "--name",
                "Bea Buyer"
            ],
            dir.path()
        )
        .status
        .success()
    );
    for (stage, value) in [("lead", "1000"), ("demo", "1200"), ("won", "1500")] {
        let out = run(
            &[
                "deals",
                "move",
                "buyer@example.org",
                stage,
                "--value",
                value,
            ],
            dir.path(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let deals = json_out(&["deals", "list", "--format", "json"], dir.path());
    assert_eq!(deals.as_array().map(Vec::len), Some(1));
    assert_eq!(deals[0]["stage"], "won");
    assert_eq!(deals[0]["status"], "won", "a closing stage closes the deal");
    assert_eq!(deals[0]["value"], 1500.0);
    let uid = deals[0]["uid"].as_str().expect("uid").to_string();
    let shown = json_out(&["deals", "show", &uid, "--format", "json"], dir.path());
    let path: Vec<(Json, Json)> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| (h["from"].clone(), h["to"].clone()))
        .collect();
    assert_eq!(
        path,
        [
            (Json::Null, "lead".into()),
            ("lead".into(), "demo".into()),
            ("demo".into(), "won".into())
        ]
    );
    // A closed deal stays closed: the next move opens a new one.
    assert!(
        run(
            &[
                "deals",
                "move",
                "buyer@example.org",
                "lead",
                "--value",
                "300"
            ],
            dir.path()
        )
        .status
        .success()
    );
    let totals = json_out(&["deals", "pipeline", "--format", "json"], dir.path());
    let stage = |id: &str| {
        totals
            .as_array()
            .expect("stages")
            .iter()
            .find(|s| s["stage"] == id)
            .cloned()
            .expect("stage")
    };
    assert_eq!(stage("won")["deals"], 1);
    assert_eq!(stage("lead")["deals"], 1);
    assert_eq!(stage("lead")["weighted"], 300.0 * 0.05);
    let bad = run(
        &["deals", "move", "buyer@example.org", "nowhere"],
        dir.path(),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no stage `nowhere`"));
}

#[test]
fn crm_changes_from_the_command_line_start_their_workflows() {
    let dir = demo();
    let d = dir.path();
    crate::support::drip_on_tag(d);
    let executions = |wf: &str| -> usize {
        json_out(
            &["executions", "list", "--workflow", wf, "--format", "json"],
            d,
        )
        .as_array()
        .map_or(0, Vec::len)
    };
    let added = run(&["contacts", "add", "ada@acme.test", "--name", "Ada"], d);
    assert!(added.status.success());
    assert_eq!(executions("welcome-drip"), 0, "no tag, no drip");
    let tagged = run(&["contacts", "tag", "ada@acme.test", "newsletter"], d);
    assert!(tagged.status.success());
    let said = String::from_utf8_lossy(&tagged.stdout);
    assert!(said.contains("1 workflow execution started"), "{said}");
    assert_eq!(executions("welcome-drip"), 1, "tag_added started the drip");
    // The same tag again adds nothing and starts nothing.
    assert!(
        run(&["contacts", "tag", "ada@acme.test", "newsletter"], d)
            .status
            .success()
    );
    assert_eq!(executions("welcome-drip"), 1);
    // Adding a contact with the tag starts it as well.
    let with_tag = run(
        &["contacts", "add", "bob@acme.test", "--tag", "newsletter"],
        d,
    );
    assert!(with_tag.status.success());
    assert_eq!(executions("welcome-drip"), 2);
}

#[test]
fn an_import_starts_workflows_keeps_its_source_and_a_reimport_writes_nothing() {
    let dir = demo();
    let d = dir.path();
    crate::support::drip_on_tag(d);
    let executions = |wf: &str| -> usize {
        json_out(
            &["executions", "list", "--workflow", wf, "--format", "json"],
            d,
        )
        .as_array()
        .map_or(0, Vec::len)
    };
    std::fs::write(
        d.join("people.csv"),
        "email,name,plan,tags\nmia@example.org,Mia Wong,pro,newsletter\ntom@example.org,Tom Berg,free,customer\n",
    )
    .expect("csv");
    let first = json_out(&["contacts", "import", "people.csv", "--format", "json"], d);
    assert_eq!(first["created"], 2, "{first}");
    // The newsletter tag starts the welcome drip, as a tag added by hand does.
    assert_eq!(first["workflows_started"], 1, "{first}");
    assert_eq!(executions("welcome-drip"), 1);
    let mia = json_out(
        &["contacts", "show", "mia@example.org", "--format", "json"],
        d,
    );
    assert_eq!(mia["contact"]["source"], "import:people.csv", "{mia}");

    // The same file again: nothing changed, nothing written, nothing started.
    let stamp = |email: &str| -> i64 {
        crate::backend::scalar(
            d,
            "SELECT updated_at FROM contacts WHERE email = ?1",
            funnel::db_params![email],
        )
    };
    let before = stamp("mia@example.org");
    std::thread::sleep(std::time::Duration::from_millis(5));
    let again = json_out(&["contacts", "import", "people.csv", "--format", "json"], d);
    assert_eq!(
        (
            again["created"].as_u64(),
            again["updated"].as_u64(),
            again["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(2)),
        "{again}"
    );
    assert_eq!(
        stamp("mia@example.org"),
        before,
        "an unchanged row writes nothing"
    );
    assert_eq!(executions("welcome-drip"), 1);

    // An import can opt out of workflows; a bad row goes to a valid CSV reject file.
    std::fs::write(
        d.join("more.csv"),
        "email,name,tags\nzoe@example.org,\"Zoë, Q.\",newsletter\nnot-an-address,\"Bad, Row\",x\n",
    )
    .expect("csv");
    let quiet = json_out(
        &[
            "contacts",
            "import",
            "more.csv",
            "--no-workflows",
            "--format",
            "json",
        ],
        d,
    );
    assert_eq!(quiet["created"], 1, "{quiet}");
    assert_eq!(quiet["workflows_started"], 0, "{quiet}");
    assert_eq!(executions("welcome-drip"), 1);
    let rejects = std::fs::read_to_string(d.join("more.csv.rejects.csv")).expect("rejects");
    let rows = csv_rows(&rejects);
    assert_eq!(rows.len(), 2, "{rejects}");
    assert_eq!(rows[0], ["line", "reason", "row"]);
    assert_eq!(rows[1][0], "3");
    assert_eq!(
        rows[1][2], "not-an-address,\"Bad, Row\",x",
        "the original row, as one field"
    );
}
