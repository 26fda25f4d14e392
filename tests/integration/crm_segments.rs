//! Segments and lead scoring on a real SQLite store: membership counted in SQL
//! equals a reference evaluation in Rust, `explain` names the failing condition,
//! scores decay exactly, and crossings fire up on arrival and down from the sweep.

use funnel::crm::contact::{self, Upsert};
use funnel::crm::segment::{count_segment, explain_segment, segment_members};
use funnel::store::{NewActivity, NewContact};
use serde_json::{Value as Json, json};

use super::engine_support::{DAY, HOUR, T0, harness};

const SEGMENTS: &str = r#"segments:
  pricing-pros:
    name: Pro readers eyeing pricing
    match:
      all:
        - field: { name: plan, eq: pro }
        - tag: newsletter
        - activity: { type: page_view, where: { page: /pricing }, at_least: 2, within: 7d }
  not-customers:
    name: Not customers
    match:
      not: { stage: customer }
  big-or-vip:
    name: Big companies or VIPs
    match:
      any:
        - field: { name: size, gte: 500 }
        - list: vip
        - segment: pricing-pros
  quiet:
    name: At most one view this week
    match:
      activity: { type: page_view, at_most: 1, within: 7d }
  sized-no-company:
    name: Has a size, no company
    match:
      all:
        - field: { name: size, exists: true }
        - field: { name: size, gte: 100 }
        - not: { field: { name: company, exists: true } }
  recent-non-customers:
    name: Viewed this week, not customers
    match:
      all:
        - not: { stage: customer }
        - activity: { type: page_view, within: 7d }
  warm:
    name: Warm
    match:
      score: { gte: 35 }
"#;

const SCORING: &str = r#"half_life: 1d
thresholds:
  warm: 35
fit:
  - name: Big company
    when: { field: { name: size, gte: 500 } }
    points: 20
engagement:
  - name: Pricing views
    activity: page_view
    where: { page: /pricing }
    points: 10
    max_per_day: 20
"#;

/// A contact: email, plan, size, tags, lists, stage, and pricing views (ms ago).
struct Person {
    email: &'static str,
    plan: &'static str,
    size: i64,
    tags: &'static [&'static str],
    lists: &'static [&'static str],
    stage: Option<&'static str>,
    views_ago: &'static [i64],
}

const PEOPLE: &[Person] = &[
    // In pricing-pros: pro, newsletter, two views this week.
    Person {
        email: "ada@example.org",
        plan: "pro",
        size: 10,
        tags: &["newsletter"],
        lists: &[],
        stage: None,
        views_ago: &[HOUR, 2 * DAY],
    },
    // One view only.
    Person {
        email: "bob@example.org",
        plan: "pro",
        size: 10,
        tags: &["newsletter"],
        lists: &[],
        stage: Some("customer"),
        views_ago: &[HOUR],
    },
    // Two views, one outside the window.
    Person {
        email: "cy@example.org",
        plan: "pro",
        size: 900,
        tags: &["newsletter"],
        lists: &[],
        stage: None,
        views_ago: &[HOUR, 10 * DAY],
    },
    // Not pro.
    Person {
        email: "di@example.org",
        plan: "free",
        size: 10,
        tags: &["newsletter"],
        lists: &["vip"],
        stage: Some("lead"),
        views_ago: &[HOUR, 2 * HOUR, 3 * HOUR],
    },
    // No newsletter tag.
    Person {
        email: "ed@example.org",
        plan: "pro",
        size: 10,
        tags: &[],
        lists: &[],
        stage: None,
        views_ago: &[HOUR, 2 * HOUR],
    },
];

/// The reference: each segment's members by evaluating the rules in Rust.
fn reference(p: &Person) -> [bool; 6] {
    let week = p.views_ago.iter().filter(|a| **a <= 7 * DAY).count();
    let pricing_pro = p.plan == "pro" && p.tags.contains(&"newsletter") && week >= 2;
    [
        pricing_pro,
        p.stage != Some("customer"),
        p.size >= 500 || p.lists.contains(&"vip") || pricing_pro,
        week <= 1,
        p.size >= 100,
        week >= 1 && p.stage != Some("customer"),
    ]
}

fn seed(h: &super::engine_support::Harness, now: i64) {
    let engine = h.worker.engine().clone();
    h.store()
        .write(move |c| {
            for p in PEOPLE {
                let mut fields = std::collections::BTreeMap::new();
                fields.insert("plan".to_string(), json!(p.plan));
                fields.insert("size".to_string(), json!(p.size));
                let u = Upsert {
                    contact: NewContact {
                        email: p.email.into(),
                        ..Default::default()
                    },
                    fields,
                    tags: p.tags.iter().map(|t| t.to_string()).collect(),
                    lists: p.lists.iter().map(|t| t.to_string()).collect(),
                };
                let (id, _) = contact::upsert(c, &u, now - 30 * DAY).map_err(to_store)?;
                if let Some(stage) = p.stage {
                    contact::set_stage(c, id, stage, now - 30 * DAY).map_err(to_store)?;
                }
                for ago in p.views_ago {
                    let a = NewActivity {
                        contact_id: id,
                        kind: "page_view".into(),
                        subject: Some("/pricing".into()),
                        data: json!({"page": "/pricing"}),
                        source: Some("demo".into()),
                        occurred_at: now - ago,
                    };
                    contact::add_activity(c, &a, &engine.scoring).map_err(to_store)?;
                }
            }
            Ok(())
        })
        .wait()
        .expect("seed");
}

fn to_store(e: funnel::crm::CrmError) -> funnel::store::StoreError {
    funnel::store::StoreError::Io(e.to_string())
}

fn id_of(h: &super::engine_support::Harness, email: &str) -> i64 {
    h.count(&format!("SELECT id FROM contacts WHERE email = '{email}'"))
}

#[test]
fn segment_membership_matches_a_reference_evaluation() {
    let h = harness(&[
        ("contacts/segments.yaml", SEGMENTS),
        ("contacts/scoring.yaml", SCORING),
    ]);
    let now = T0 + 40 * DAY;
    seed(&h, now);
    let engine = h.worker.engine().clone();
    let ws_segments = engine.scoring.segments.clone();
    let names = [
        "pricing-pros",
        "not-customers",
        "big-or-vip",
        "quiet",
        "sized-no-company",
    ];
    for (i, name) in names.iter().enumerate() {
        let def = ws_segments[*name].clone();
        let engine = engine.clone();
        let (count, members) = h
            .store()
            .read(move |c| {
                let n = count_segment(c, &engine.scoring, &def, now).map_err(to_store)?;
                let m = segment_members(c, &engine.scoring, &def, now, 0, 100).map_err(to_store)?;
                Ok((n, m))
            })
            .expect("count");
        let want: Vec<i64> = PEOPLE
            .iter()
            .filter(|p| reference(p)[i])
            .map(|p| id_of(&h, p.email))
            .collect();
        assert_eq!(count, want.len() as u64, "count of {name}");
        assert_eq!(members, want, "members of {name}");
    }
}

#[test]
fn explain_names_the_condition_that_failed() {
    let h = harness(&[
        ("contacts/segments.yaml", SEGMENTS),
        ("contacts/scoring.yaml", SCORING),
    ]);
    let now = T0 + 40 * DAY;
    seed(&h, now);
    let engine = h.worker.engine().clone();
    let bob = id_of(&h, "bob@example.org");
    let def = engine.scoring.segments["pricing-pros"].clone();
    let e = h
        .store()
        .read(move |c| explain_segment(c, &engine.scoring, &def, bob, now).map_err(to_store))
        .expect("explain");
    assert!(!e.matched);
    let held: Vec<(String, bool)> = e
        .children
        .iter()
        .map(|c| (c.label.clone(), c.matched))
        .collect();
    assert_eq!(held.len(), 3);
    assert!(held[0].0.starts_with("field ") && held[0].1, "{held:?}");
    assert_eq!(held[1], ("tag newsletter".to_string(), true));
    assert!(held[2].0.starts_with("activity ") && !held[2].1, "{held:?}");
}

fn score(h: &super::engine_support::Harness, email: &str, at: i64) -> f64 {
    let engine = h.worker.engine().clone();
    let id = id_of(h, email);
    h.store()
        .read(move |c| engine.scoring.score(c, id, at).map_err(to_store))
        .expect("score")
}

#[test]
fn scores_combine_fit_capped_engagement_and_adjustments_and_decay_exactly() {
    let h = harness(&[
        ("contacts/segments.yaml", SEGMENTS),
        ("contacts/scoring.yaml", SCORING),
    ]);
    let now = T0 + 40 * DAY;
    seed(&h, now);
    // cy: size 900 (fit 20), one view an hour ago (10, decayed over an hour) and
    // one 10 days ago (10 × 2^-10 at the time of the seed, plus an hour).
    let at = now;
    let engagement = 10.0 * (-(HOUR as f64) / DAY as f64).exp2()
        + 10.0 * (-(10.0 * DAY as f64) / DAY as f64).exp2();
    assert!((score(&h, "cy@example.org", at) - (20.0 + engagement)).abs() < 1e-9);
    // A workflow's adjustment adds to it, undecayed.
    let engine = h.worker.engine().clone();
    let cy = id_of(&h, "cy@example.org");
    h.store()
        .write(move |c| {
            contact::adjust_score(c, cy, 10.0, Some("test"), None, at, &engine.scoring)
                .map_err(to_store)
        })
        .wait()
        .expect("adjust");
    assert!((score(&h, "cy@example.org", at) - (30.0 + engagement)).abs() < 1e-9);
    assert!((score(&h, "cy@example.org", at + DAY) - (30.0 + engagement / 2.0)).abs() < 1e-9);
    // di: three views within the same day earn 20, not 30 (max_per_day).
    let di = 10.0
        * [HOUR, 2 * HOUR, 3 * HOUR]
            .iter()
            .map(|a| (-(*a as f64) / DAY as f64).exp2())
            .sum::<f64>();
    let got = score(&h, "di@example.org", at);
    assert!(
        got < di - 1.0,
        "the daily cap applies: {got} vs uncapped {di}"
    );
    // One day later every engagement point is worth exactly half.
    let later = score(&h, "di@example.org", at + DAY);
    assert!((later - got / 2.0).abs() < 1e-9, "{later} vs {got}");
    // The score segment counts with the same expression.
    let engine = h.worker.engine().clone();
    let def = engine.scoring.segments["warm"].clone();
    let warm = h
        .store()
        .read(move |c| count_segment(c, &engine.scoring, &def, at).map_err(to_store))
        .expect("count");
    let expected = PEOPLE
        .iter()
        .filter(|p| score(&h, p.email, at) >= 35.0)
        .count();
    assert_eq!(warm, expected as u64);
    assert!(warm >= 1, "cy is warm");
}

/// `score-explain`'s parts for one contact at `at`.
fn explained(h: &super::engine_support::Harness, email: &str, at: i64) -> Json {
    let engine = h.worker.engine().clone();
    let id = id_of(h, email);
    h.store()
        .read(move |c| engine.scoring.explain(c, id, at).map_err(to_store))
        .expect("explain")
}

#[test]
fn an_explanation_shown_again_follows_each_new_activity_and_older_ones_too() {
    let h = harness(&[
        ("contacts/segments.yaml", SEGMENTS),
        ("contacts/scoring.yaml", SCORING),
    ]);
    let now = T0 + 40 * DAY;
    seed(&h, now);
    let first = explained(&h, "cy@example.org", now);
    assert_eq!(first["engagement"][0]["activities"], 2, "{first}");
    // Shown again unchanged: the same parts.
    assert_eq!(explained(&h, "cy@example.org", now), first);
    // A new view counts at once, and so does one backdated before the last
    // (the detail pane re-reads the explanation every half second).
    let engine = h.worker.engine().clone();
    let cy = id_of(&h, "cy@example.org");
    for (n, ago) in [(3, 0), (4, 5 * DAY)] {
        let scoring = engine.scoring.clone();
        h.store()
            .write(move |c| {
                let a = NewActivity {
                    contact_id: cy,
                    kind: "page_view".into(),
                    subject: Some("/pricing".into()),
                    data: json!({"page": "/pricing"}),
                    source: Some("demo".into()),
                    occurred_at: now - ago,
                };
                contact::add_activity(c, &a, &scoring).map_err(to_store)
            })
            .wait()
            .expect("view");
        let e = explained(&h, "cy@example.org", now);
        assert_eq!(e["engagement"][0]["activities"], n, "{e}");
        assert!(
            (e["score"].as_f64().unwrap_or(0.0) - score(&h, "cy@example.org", now).round()).abs()
                <= 1.0,
            "{e}"
        );
    }
    // A day later its points are read again, decayed.
    let later = explained(&h, "cy@example.org", now + DAY);
    let (a, b) = (
        explained(&h, "cy@example.org", now)["engagement"][0]["points"].as_f64(),
        later["engagement"][0]["points"].as_f64(),
    );
    assert!(b < a, "{a:?} then {b:?}");
}

#[test]
fn crossings_fire_up_when_activity_arrives_and_down_from_the_sweep() {
    let on = |id: &str, dir: &str| {
        format!(
            "name: {id}\ntrigger:\n  type: score_crossed\n  threshold: 35\n  direction: {dir}\nsteps:\n  - id: note\n    type: log\n    message: crossed\n"
        )
    };
    let h = harness(&[
        ("contacts/segments.yaml", SEGMENTS),
        ("contacts/scoring.yaml", SCORING),
        ("workflows/warmed.yaml", &on("warmed", "up")),
        ("workflows/cooled.yaml", &on("cooled", "down")),
        (
            "workflows/track.yaml",
            "name: track\ntrigger: {type: custom_event, event: viewed}\nsteps:\n  - id: who\n    type: upsert_contact\n    email: \"{{ trigger.payload.email }}\"\n    fields: { size: 900 }\n  - id: view\n    type: add_activity\n    activity: page_view\n    data: { page: /pricing }\n",
        ),
    ]);
    let view = |at: i64| {
        h.emit_at(
            at,
            "custom_event",
            json!({"event": "viewed", "payload": {"email": "fay@example.org"}}),
        );
    };
    view(T0);
    // Fit 20 + 10 = 30: below 35.
    assert!(h.statuses("warmed").is_empty());
    view(T0 + HOUR);
    // 20 + 10 + 10·2^(-1/24) ≈ 39.7: crossed up, on arrival.
    assert_eq!(h.statuses("warmed"), ["completed"]);
    let data: Json = serde_json::from_str(
        &h.one("SELECT trigger_data FROM executions WHERE workflow_id = 'warmed'"),
    )
    .expect("json");
    assert_eq!(data["threshold"], json!(35.0));
    // Nothing fires downward until the sweep, a day later.
    assert!(h.statuses("cooled").is_empty());
    // 1,200 more contacts in fay's state: the sweep walks them in pages (one
    // transaction each) and finds every one.
    h.store()
        .write(|db| {
            db.execute_batch(
                "INSERT INTO contacts (uid, email, created_at, updated_at, engagement, adjustments, score_seen) \
                 SELECT 'copy' || n.i, 'copy' || n.i || '@example.org', f.created_at, f.updated_at, \
                   f.engagement, f.adjustments, f.score_seen \
                 FROM (WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 1200) \
                   SELECT i FROM k) n, contacts f WHERE f.email = 'fay@example.org'; \
                 INSERT INTO contact_fields (contact_id, field, value_text, value_num) \
                 SELECT c.id, f.field, f.value_text, f.value_num FROM contacts c, contact_fields f \
                 WHERE c.email LIKE 'copy%' AND f.contact_id = (SELECT id FROM contacts WHERE email = 'fay@example.org');",
            )
        })
        .wait()
        .expect("copies");
    let crossed =
        h.rt.block_on(h.worker.sweep_scores(T0 + 2 * DAY))
            .expect("sweep");
    h.settle();
    assert_eq!(crossed, 1201);
    assert_eq!(
        h.count("SELECT count(*) FROM executions WHERE workflow_id = 'cooled'"),
        1201
    );
    // A second sweep finds nothing new.
    let again =
        h.rt.block_on(h.worker.sweep_scores(T0 + 3 * DAY))
            .expect("sweep");
    assert_eq!(again, 0);
}
