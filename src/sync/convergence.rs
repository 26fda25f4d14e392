//! Two real stores (both SQLite, or both PostgreSQL under
//! `FUNNEL_TEST_BACKEND=postgres`) edited through the CRM's own functions,
//! their feeds exchanged in random pages, in random order, some pages applied
//! twice: both end with the same contacts.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::store::{self, Cursor};
use crate::crm::contact;
use crate::crm::privacy;
use crate::crm::scoring::Scoring;
use crate::rng::Rng;
use crate::store::db::{Db, params};
use crate::store::ops::{NewActivity, NewContact};
use crate::store::test_db::TestDb;

/// One store and where its feed was read up to for the other.
struct Side {
    db: TestDb,
    sent: Cursor,
}

impl Side {
    fn new() -> Side {
        let db = TestDb::open();
        db.transaction(store::enable).expect("sync on");
        Side {
            db,
            sent: Cursor::default(),
        }
    }

    fn node(&self) -> String {
        store::node(self.db.db()).expect("node")
    }
}

/// Sends one page of `from`'s feed to `to` (twice when `again`); whether more
/// is waiting.
fn send(from: &mut Side, to: &Side, limit: usize, again: bool) -> bool {
    let except = to.node();
    let page = store::feed(from.db.db(), from.sent, Some(&except), limit).expect("feed");
    let peer = from.node();
    for _ in 0..if again { 2 } else { 1 } {
        to.db
            .transaction(|db| {
                store::apply(
                    db,
                    &peer,
                    &page.changes,
                    crate::store::now_ms(),
                    Some(&scoring()),
                )
            })
            .expect("apply");
    }
    from.sent = Cursor::parse(&page.cursor).expect("cursor");
    page.more
}

fn scoring() -> Scoring {
    Scoring::new(None, BTreeMap::new())
}

fn id_of(db: Db<'_>, email: &str) -> Option<i64> {
    contact::id_by_email(db, email).expect("lookup")
}

/// One random edit through the CRM's functions, as the engine, the CLI and
/// the API make them.
fn edit(side: &Side, rng: &mut Rng, emails: &[String]) {
    let email = &emails[rng.below(emails.len() as u64) as usize];
    let now = crate::store::now_ms();
    let scoring = scoring();
    side.db
        .transaction(|db| -> Result<(), crate::crm::CrmError> {
            if privacy::is_forgotten(db, email)? {
                // As a form does: a forgotten person is not re-added.
                return Ok(());
            }
            let id = match id_of(db, email) {
                Some(id) => id,
                None => {
                    let u = contact::Upsert {
                        contact: NewContact {
                            email: email.clone(),
                            name: Some(format!("first {}", rng.below(5))),
                            ..NewContact::default()
                        },
                        fields: BTreeMap::new(),
                        tags: Vec::new(),
                        lists: Vec::new(),
                    };
                    contact::upsert(db, &u, now)?.0
                }
            };
            let pick = |rng: &mut Rng, what: &str| format!("{what}{}", rng.below(3));
            match rng.below(12) {
                0 | 1 => {
                    let name = format!("name {}", rng.below(50));
                    contact::edit(db, id, Some(&name), None, None, now)?;
                }
                2 => {
                    let phone = format!("+1555{}", rng.below(1000));
                    contact::edit(db, id, None, Some(&phone), None, now)?;
                }
                3 | 4 => {
                    let mut f = BTreeMap::new();
                    let value = match rng.below(4) {
                        0 => Json::Null,
                        1 => json!(rng.below(100)),
                        2 => json!(rng.below(2) == 0),
                        _ => json!(format!("text {}", rng.below(9))),
                    };
                    f.insert(pick(rng, "field"), value);
                    contact::set_fields(db, id, &f, now)?;
                }
                5 => {
                    contact::add_tags(db, id, &[pick(rng, "tag")], now)?;
                }
                6 => {
                    contact::remove_tags(db, id, &[pick(rng, "tag")])?;
                }
                7 => {
                    let list = pick(rng, "list");
                    if rng.below(2) == 0 {
                        contact::add_to_list(db, id, &list, now)?;
                    } else {
                        contact::remove_from_list(db, id, &list)?;
                    }
                }
                8 => {
                    let a = NewActivity {
                        contact_id: id,
                        kind: "page_view".into(),
                        subject: Some(format!("/p{}", rng.below(4))),
                        data: json!({"n": rng.below(9)}),
                        source: None,
                        occurred_at: now,
                    };
                    contact::add_activity(db, &a, &scoring)?;
                }
                9 => {
                    let points = rng.below(10) as f64;
                    contact::adjust_score(db, id, points, Some("test"), None, now, &scoring)?;
                }
                10 => {
                    contact::set_stage(db, id, &pick(rng, "stage"), now)?;
                }
                _ => {
                    if rng.below(3) == 0 {
                        privacy::forget(db, id, now)?;
                    } else {
                        db.prepare_cached(
                            "INSERT INTO suppressions (email_hash, reason, created_at) VALUES (?1, 'bounced', ?2) \
                             ON CONFLICT (email_hash) DO NOTHING",
                        )?
                        .execute(params![privacy::email_hash(email), now])?;
                    }
                }
            }
            Ok(())
        })
        .expect("edit");
}

/// Everything sync carries about `emails`, comparable across stores.
fn dump(db: Db<'_>, emails: &[String]) -> Json {
    let mut out = serde_json::Map::new();
    for email in emails {
        let hash = privacy::email_hash(email);
        let suppression: Option<String> = db
            .prepare("SELECT reason FROM suppressions WHERE email_hash = ?1")
            .and_then(|mut s| s.query_map(params![hash], |r| r.get(0))?.next().transpose())
            .expect("suppression");
        let Some(id) = id_of(db, email) else {
            out.insert(email.clone(), json!({"suppression": suppression}));
            continue;
        };
        let row: Vec<Option<String>> = db
            .query_row(
                "SELECT name, phone, company_domain, status, stage FROM contacts WHERE id = ?1",
                params![id],
                |r| Ok(vec![r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]),
            )
            .expect("contact");
        let lists: Vec<String> = db
            .prepare("SELECT list_id FROM list_members WHERE contact_id = ?1 ORDER BY list_id")
            .and_then(|mut s| s.query_map(params![id], |r| r.get(0))?.collect())
            .expect("lists");
        let mut activities: Vec<String> = db
            .prepare(
                "SELECT type, subject, data, occurred_at FROM activities WHERE contact_id = ?1",
            )
            .and_then(|mut s| {
                s.query_map(params![id], |r| {
                    Ok(format!(
                        "{}|{}|{}|{}",
                        r.get::<String>(0)?,
                        r.get::<Option<String>>(1)?.unwrap_or_default(),
                        r.get::<String>(2)?,
                        r.get::<i64>(3)?
                    ))
                })?
                .collect()
            })
            .expect("activities");
        activities.sort();
        let mut points: Vec<String> = db
            .prepare("SELECT points, created_at FROM score_adjustments WHERE contact_id = ?1")
            .and_then(|mut s| {
                s.query_map(params![id], |r| {
                    Ok(format!("{}@{}", r.get::<f64>(0)?, r.get::<i64>(1)?))
                })?
                .collect()
            })
            .expect("adjustments");
        points.sort();
        let mut tags = contact::tags(db, id).expect("tags");
        tags.sort();
        out.insert(
            email.clone(),
            json!({
                "contact": row,
                "fields": contact::fields(db, id).expect("fields"),
                "tags": tags,
                "lists": lists,
                "activities": activities,
                "adjustments": points,
                "suppression": suppression,
            }),
        );
    }
    Json::Object(out)
}

#[test]
fn two_real_stores_converge_whichever_way_and_however_often_pages_travel() {
    let mut laptop = Side::new();
    let mut hosted = Side::new();
    let seeds = if crate::store::test_db::is_postgres() {
        12
    } else {
        40
    };
    let mut synced = 0;
    for seed in 0..seeds {
        let mut rng = Rng::new(seed);
        let emails: Vec<String> = (0..4).map(|i| format!("s{seed}p{i}@example.org")).collect();
        for _ in 0..rng.below(40) + 5 {
            match rng.below(10) {
                0..=3 => edit(&laptop, &mut rng, &emails),
                4..=7 => edit(&hosted, &mut rng, &emails),
                // A page on the way, either way, sometimes applied twice.
                8 => {
                    send(&mut laptop, &hosted, 3, rng.below(3) == 0);
                }
                _ => {
                    send(&mut hosted, &laptop, 3, rng.below(3) == 0);
                }
            }
        }
        // Then everything, in an order the seed picks.
        for _ in 0..2 {
            if seed % 2 == 0 {
                while send(&mut laptop, &hosted, 7, false) {}
                while send(&mut hosted, &laptop, 7, false) {}
            } else {
                while send(&mut hosted, &laptop, 7, false) {}
                while send(&mut laptop, &hosted, 7, false) {}
            }
        }
        let (here, there) = (dump(laptop.db.db(), &emails), dump(hosted.db.db(), &emails));
        assert_eq!(here, there, "seed {seed}");
        synced += emails
            .iter()
            .filter(|e| here[e.as_str()].get("contact").is_some())
            .count();
    }
    // Not vacuous: most people exist on both sides at the end.
    assert!(synced > seeds as usize, "only {synced} contacts synced");
}

#[test]
fn an_erased_person_stays_erased_on_both_sides() {
    let mut laptop = Side::new();
    let mut hosted = Side::new();
    let email = "gone@example.org".to_string();
    let mut rng = Rng::new(7);
    for _ in 0..5 {
        edit(&laptop, &mut rng, std::slice::from_ref(&email));
    }
    while send(&mut laptop, &hosted, 100, false) {}
    assert!(id_of(hosted.db.db(), &email).is_some());
    // The hosted store erases them while the laptop, offline, edits them.
    let id = id_of(hosted.db.db(), &email).expect("synced");
    hosted
        .db
        .transaction(|db| privacy::forget(db, id, crate::store::now_ms()))
        .expect("forget");
    let lid = id_of(laptop.db.db(), &email).expect("local");
    laptop
        .db
        .transaction(|db| contact::add_tags(db, lid, &["late".into()], crate::store::now_ms()))
        .expect("tag");
    while send(&mut laptop, &hosted, 100, false) {}
    while send(&mut hosted, &laptop, 100, false) {}
    while send(&mut laptop, &hosted, 100, false) {}
    for side in [&laptop, &hosted] {
        let db = side.db.db();
        assert_eq!(id_of(db, &email), None);
        assert!(privacy::is_forgotten(db, &email).expect("suppression"));
    }
    // A page from before the erasure, sent again, re-creates nobody.
    let stale = store::feed(laptop.db.db(), Cursor::default(), None, 100).expect("feed");
    let page = vec![store::Change {
        email: Some(email.clone()),
        item: "t:vip".into(),
        wall: crate::store::now_ms() + 3_600_000,
        node: "zzz".into(),
        value: json!(true),
    }];
    for changes in [stale.changes, page] {
        hosted
            .db
            .transaction(|db| store::apply(db, "other", &changes, crate::store::now_ms(), None))
            .expect("apply");
    }
    assert_eq!(id_of(hosted.db.db(), &email), None);
}

#[test]
fn a_bad_change_refuses_the_whole_page() {
    let hosted = Side::new();
    let good = store::Change {
        email: Some("a@example.org".into()),
        item: "t:vip".into(),
        wall: 1,
        node: "n1".into(),
        value: json!(true),
    };
    for (bad, why) in [
        (
            store::Change {
                item: "f:email".into(),
                value: json!("x@example.org"),
                ..good.clone()
            },
            "not a synced contact column",
        ),
        (
            store::Change {
                value: json!("yes"),
                ..good.clone()
            },
            "true or false",
        ),
        (
            store::Change {
                email: Some("not an address".into()),
                ..good.clone()
            },
            "not an email address",
        ),
        (
            store::Change {
                item: "s:abc".into(),
                email: None,
                ..good.clone()
            },
            "SHA-256",
        ),
        (
            store::Change {
                item: "x:1".into(),
                ..good.clone()
            },
            "unknown item kind",
        ),
    ] {
        let err = hosted
            .db
            .transaction(|db| store::apply(db, "n1", &[good.clone(), bad], 1, None))
            .expect_err("refused");
        assert!(err.to_string().contains("change 1"), "{err}");
        assert!(err.to_string().contains(why), "{err}");
        assert_eq!(id_of(hosted.db.db(), "a@example.org"), None);
    }
}

#[test]
fn a_cursor_is_two_numbers_or_nothing() {
    assert_eq!(Cursor::parse("").expect("start"), Cursor::default());
    let c = Cursor::parse("6.7").expect("cursor");
    assert_eq!(c.shown(), "6.7");
    for bad in ["1", "a.b", "1.2.3", ".3", "1."] {
        assert!(Cursor::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_change_after_an_erasure_is_still_ahead_of_the_cursor() {
    let side = Side::new();
    let now = crate::store::now_ms();
    let ids: Vec<i64> = ["first@example.org", "last@example.org"]
        .iter()
        .map(|email| {
            side.db
                .transaction(|db| {
                    let u = contact::Upsert {
                        contact: NewContact {
                            email: (*email).to_string(),
                            ..NewContact::default()
                        },
                        fields: BTreeMap::new(),
                        tags: vec!["lead".into()],
                        lists: Vec::new(),
                    };
                    contact::upsert(db, &u, now).map(|(id, _)| id)
                })
                .expect("upsert")
        })
        .collect();
    let read = store::feed(side.db.db(), Cursor::default(), None, 100).expect("feed");
    let cursor = Cursor::parse(&read.cursor).expect("cursor");
    // Erasing the person with the feed's last stamps, then a change: the
    // change comes after the cursor, not in a place it has passed.
    side.db
        .transaction(|db| privacy::forget(db, ids[1], now))
        .expect("forget");
    side.db
        .transaction(|db| contact::add_tags(db, ids[0], &["vip".into()], now))
        .expect("tag");
    let next = store::feed(side.db.db(), cursor, None, 100).expect("feed");
    let items: Vec<&str> = next.changes.iter().map(|c| c.item.as_str()).collect();
    assert!(items.contains(&"t:vip"), "{items:?}");
    assert!(items.iter().any(|i| i.starts_with("s:")), "{items:?}");
}

#[test]
fn an_erasure_travels_on_through_a_store_that_had_suppressed_the_address() {
    // laptop A → hub → laptop B; the hub and B had a bounce for the address.
    let mut a = Side::new();
    let mut hub = Side::new();
    let b = Side::new();
    let email = "relay@example.org".to_string();
    let mut rng = Rng::new(3);
    edit(&a, &mut rng, std::slice::from_ref(&email));
    while send(&mut a, &hub, 50, false) {}
    while send(&mut hub, &b, 50, false) {}
    assert!(id_of(b.db.db(), &email).is_some(), "B has the person");
    // A erases them offline; later the hub records a bounce for the address
    // and passes it to B: the hub's suppression stamp is the later one.
    let id = id_of(a.db.db(), &email).expect("A has them");
    a.db.transaction(|db| privacy::forget(db, id, crate::store::now_ms()))
        .expect("forget");
    std::thread::sleep(std::time::Duration::from_millis(5));
    let hash = privacy::email_hash(&email);
    hub.db
        .transaction(|db| {
            db.execute(
                "INSERT INTO suppressions (email_hash, reason, created_at) VALUES (?1, 'bounced', ?2)",
                params![hash, crate::store::now_ms()],
            )
        })
        .expect("bounce");
    while send(&mut hub, &b, 50, false) {}
    while send(&mut a, &hub, 50, false) {}
    while send(&mut hub, &b, 50, false) {}
    for side in [&a, &hub, &b] {
        assert_eq!(id_of(side.db.db(), &email), None);
        assert!(privacy::is_forgotten(side.db.db(), &email).expect("suppression"));
    }
}

#[test]
fn a_local_edit_sorts_after_a_stamp_from_a_faster_clock_and_a_far_future_is_refused() {
    let mut laptop = Side::new();
    let mut hosted = Side::new();
    let now = crate::store::now_ms();
    let ahead = store::Change {
        email: Some("clock@example.org".into()),
        item: "f:name".into(),
        wall: now + 3_600_000,
        node: "fast".into(),
        value: json!("from a clock an hour fast"),
    };
    for side in [&laptop, &hosted] {
        side.db
            .transaction(|db| store::apply(db, "fast", std::slice::from_ref(&ahead), now, None))
            .expect("apply");
    }
    // An edit made after seeing it wins everywhere, though the local clock
    // is an hour behind the stamp.
    let id = id_of(laptop.db.db(), "clock@example.org").expect("made");
    laptop
        .db
        .transaction(|db| contact::edit(db, id, Some("edited later"), None, None, now))
        .expect("edit");
    while send(&mut laptop, &hosted, 50, false) {}
    while send(&mut hosted, &laptop, 50, false) {}
    for side in [&laptop, &hosted] {
        let name: Option<String> = side
            .db
            .db()
            .query_row(
                "SELECT name FROM contacts WHERE email = 'clock@example.org'",
                params![],
                |r| r.get(0),
            )
            .expect("name");
        assert_eq!(name.as_deref(), Some("edited later"));
    }
    // A stamp days ahead would win over every edit: the page is refused.
    let far = store::Change {
        wall: now + 3 * 86_400_000,
        ..ahead
    };
    let err = hosted
        .db
        .transaction(|db| store::apply(db, "fast", &[far], now, None))
        .expect_err("refused");
    assert!(err.to_string().contains("ahead"), "{err}");
}

#[test]
fn a_store_stamps_nothing_until_it_syncs_then_everything_it_held() {
    let db = TestDb::open();
    let now = crate::store::now_ms();
    let stamps = |db: &TestDb| -> i64 {
        db.db()
            .query_row("SELECT count(*) FROM sync_stamps", params![], |r| r.get(0))
            .expect("count")
    };
    let id = db
        .transaction(|db| {
            let u = contact::Upsert {
                contact: NewContact {
                    email: "early@example.org".into(),
                    name: Some("Early".into()),
                    ..NewContact::default()
                },
                fields: BTreeMap::from([("plan".to_string(), json!("pro"))]),
                tags: vec!["first".into()],
                lists: vec!["news".into()],
            };
            contact::upsert(db, &u, now).map(|(id, _)| id)
        })
        .expect("upsert");
    assert_eq!(stamps(&db), 0, "a store that never synced writes no stamps");
    assert!(db.transaction(store::enable).expect("enable"));
    assert!(!db.transaction(store::enable).expect("again"), "once");
    let page = store::feed(db.db(), Cursor::default(), None, 100).expect("feed");
    let mut items: Vec<&str> = page.changes.iter().map(|c| c.item.as_str()).collect();
    items.sort_unstable();
    for want in ["c:plan", "f:name", "f:status", "l:news", "t:first"] {
        assert!(items.contains(&want), "{want} in {items:?}");
    }
    // From now on every change is stamped as it happens.
    db.transaction(|db| contact::add_tags(db, id, &["later".into()], now))
        .expect("tag");
    let after = store::feed(
        db.db(),
        Cursor::parse(&page.cursor).expect("cursor"),
        None,
        100,
    )
    .expect("feed");
    assert_eq!(
        after
            .changes
            .iter()
            .map(|c| c.item.as_str())
            .collect::<Vec<_>>(),
        ["t:later"]
    );
}
