//! Duplicates, merge and unmerge on a real SQLite store: the candidates found are
//! the expected pairs, and a merge undone leaves both contacts as they were.

use funnel::crm::contact::{self, Upsert};
use funnel::crm::{dedupe, merge, privacy};
use funnel::store::{NewActivity, NewContact, StoreError};
use serde_json::json;

use super::engine_support::{DAY, T0, harness};

fn to_store(e: funnel::crm::CrmError) -> StoreError {
    StoreError::Io(e.to_string())
}

fn add(h: &super::engine_support::Harness, email: &str, name: &str, phone: Option<&str>) -> i64 {
    let (email, name, phone) = (email.to_string(), name.to_string(), phone.map(String::from));
    h.store()
        .write(move |c| {
            let u = Upsert {
                contact: NewContact {
                    email,
                    name: Some(name),
                    phone,
                    ..Default::default()
                },
                ..Default::default()
            };
            Ok(contact::upsert(c, &u, T0).map_err(to_store)?.0)
        })
        .wait()
        .expect("add")
}

#[test]
fn dedupe_finds_exact_and_likely_pairs_within_blocks_only() {
    let h = harness(&[]);
    let ada = add(&h, "ada.lovelace@gmail.com", "Ada Lovelace", None);
    let ada2 = add(&h, "adalovelace+news@gmail.com", "A. Lovelace", None);
    let jon = add(&h, "jon@acme.example", "Jonathan Smith", None);
    let jon2 = add(&h, "j.smith@acme.example", "Jonathon Smith", None);
    let kim = add(&h, "kim@one.example", "Kim Park", Some("+49 30 1234 5678"));
    let kim2 = add(&h, "k.park@two.example", "Kim Parks", Some("030 12345678"));
    // Similar names on a free-mail domain, nothing else shared: not a pair.
    add(&h, "maria.garcia@gmail.com", "Maria Garcia", None);
    add(&h, "mgarcia77@gmail.com", "Maria García", None);
    // Same company, different people.
    add(&h, "ceo@acme.example", "Beatrice Olsen", None);
    let pairs = h
        .store()
        .read(|c| dedupe::candidates(c).map_err(to_store))
        .expect("dedupe");
    let got: Vec<(i64, i64)> = pairs.iter().map(|p| (p.a, p.b)).collect();
    assert_eq!(got.len(), 3, "{pairs:?}");
    assert_eq!(pairs[0].score, 1.0);
    assert_eq!(got[0], (ada, ada2));
    assert!(got.contains(&(jon, jon2)), "{pairs:?}");
    assert!(got.contains(&(kim, kim2)), "{pairs:?}");
}

/// Everything held about both contacts, minus what a merge round trip may touch
/// (the kept contact's updated_at).
fn state(h: &super::engine_support::Harness, ids: [i64; 2]) -> serde_json::Value {
    h.store()
        .read(move |c| {
            let mut out = Vec::new();
            for id in ids {
                let mut v = privacy::export_data(c, id).map_err(to_store)?;
                v["contact"][0]["updated_at"] = json!(null);
                let scores: (f64, f64) = c.query_row(
                    "SELECT engagement, adjustments FROM contacts WHERE id = ?1",
                    funnel::db_params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                v["scores"] = json!([scores.0, scores.1]);
                out.push(v);
            }
            Ok(json!(out))
        })
        .expect("state")
}

#[test]
fn merge_keeps_both_histories_and_unmerge_restores_both_contacts() {
    let h = harness(&[]);
    let engine = h.worker.engine().clone();
    let (a, b) = h
        .store()
        .write(move |c| {
            let mut ids = Vec::new();
            for (email, tag, size, list) in [
                ("ann@acme.example", "vip", 10, "prospects"),
                ("ann.b@acme.example", "beta", 20, "vip"),
            ] {
                let mut fields = std::collections::BTreeMap::new();
                fields.insert("size".to_string(), json!(size));
                if email.starts_with("ann.b") {
                    fields.insert("company".to_string(), json!("Acme"));
                }
                let u = Upsert {
                    contact: NewContact {
                        email: email.into(),
                        name: Some("Ann Berg".into()),
                        ..Default::default()
                    },
                    fields,
                    tags: vec![tag.into(), "shared".into()],
                    lists: vec![list.into()],
                };
                let (id, _) = contact::upsert(c, &u, T0).map_err(to_store)?;
                for k in 0..3 {
                    contact::add_activity(
                        c,
                        &NewActivity {
                            contact_id: id,
                            kind: "page_view".into(),
                            subject: Some(format!("/p{k}")),
                            data: json!({}),
                            source: None,
                            occurred_at: T0 + k * DAY,
                        },
                        &engine.scoring,
                    )
                    .map_err(to_store)?;
                }
                contact::adjust_score(c, id, 5.0, None, None, T0, &engine.scoring)
                    .map_err(to_store)?;
                ids.push(id);
            }
            Ok((ids[0], ids[1]))
        })
        .wait()
        .expect("seed");
    let before = state(&h, [a, b]);
    h.store()
        .write(move |c| merge::merge(c, a, b, T0 + 10 * DAY).map_err(to_store))
        .wait()
        .expect("merge");
    // One contact now, with both histories, tags, lists and the missing field.
    assert_eq!(h.count("SELECT count(*) FROM contacts"), 1);
    assert_eq!(
        h.count(&format!(
            "SELECT count(*) FROM activities WHERE contact_id = {a}"
        )),
        6
    );
    assert_eq!(
        h.column(&format!(
            "SELECT tag FROM contact_tags WHERE contact_id = {a} ORDER BY tag"
        )),
        ["beta", "shared", "vip"]
    );
    assert_eq!(
        h.column(&format!(
            "SELECT list_id FROM list_members WHERE contact_id = {a} ORDER BY 1"
        )),
        ["prospects", "vip"]
    );
    assert_eq!(
        h.one(&format!(
            "SELECT value_text FROM contact_fields WHERE contact_id = {a} AND field = 'company'"
        )),
        "Acme"
    );
    assert_eq!(
        h.one(&format!(
            "SELECT value_num FROM contact_fields WHERE contact_id = {a} AND field = 'size'"
        )),
        "10",
        "the kept contact's own values win"
    );
    assert_eq!(
        h.one(&format!("SELECT adjustments FROM contacts WHERE id = {a}")),
        "10"
    );
    assert_eq!(h.count("SELECT count(*) FROM contact_merges"), 1);

    let restored = h
        .store()
        .write(move |c| merge::unmerge(c, a, None, T0 + 11 * DAY).map_err(to_store))
        .wait()
        .expect("unmerge");
    assert_eq!(restored, b);
    assert_eq!(state(&h, [a, b]), before, "both contacts as they were");
    assert_eq!(
        h.one("SELECT undone_at IS NOT NULL FROM contact_merges"),
        "1",
        "the merge log says it was undone"
    );
    // Nothing left to undo.
    let again = h
        .store()
        .write(move |c| merge::unmerge(c, a, None, T0 + 12 * DAY).map_err(to_store))
        .wait();
    assert!(again.is_err());
}
