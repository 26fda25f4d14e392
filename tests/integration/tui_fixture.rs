//! A populated workspace for the TUI's tests: the demo workspace with contacts
//! (fields, tags, lists, stages, timelines), deals across the sales pipeline,
//! executions of the demo's workflows, all written at fixed times so screens
//! render the same on every run and on both backends.

use std::path::Path;
use std::sync::Arc;

use funnel::crm::{contact, deal};
use funnel::desk::Source;
use funnel::desk::local::Local;
use funnel::engine::Engine;
use funnel::engine::ingest::Event;
use funnel::engine::worker::Worker;
use funnel::store::{NewActivity, NewContact, Store};
use serde_json::json;

use super::backend;

/// Tuesday 2026-12-01 12:00:00 UTC: the fixture's "now".
pub const NOW: i64 = 1_796_126_400_000;
pub const HOUR: i64 = 3_600_000;
pub const ACTOR: &str = "mira@northwind.example";

const PEOPLE: &[(&str, &str, &str)] = &[
    (
        "Ada Lovelace",
        "ada@analytical.example",
        "Analytical Engines",
    ),
    ("Grace Hopper", "grace@cobol.example", "Compiler Works"),
    ("Alan Turing", "alan@bletchley.example", "Bletchley Park"),
    ("Katherine Johnson", "katherine@nasa.example", "Langley"),
    (
        "Edsger Dijkstra",
        "edsger@structured.example",
        "Structured Ltd",
    ),
    ("Barbara Liskov", "barbara@clu.example", "CLU Systems"),
    ("Donald Knuth", "don@tex.example", "TeX Users"),
    ("Frances Allen", "fran@ibm.example", "Optimizing Co"),
    ("John Backus", "john@fortran.example", "Formula Translation"),
    ("Radia Perlman", "radia@spanning.example", "Spanning Tree"),
    ("Ken Thompson", "ken@unix.example", "Bell Labs"),
    (
        "Margaret Hamilton",
        "margaret@apollo.example",
        "Apollo Guidance",
    ),
    ("Tony Hoare", "tony@quicksort.example", "Quicksort"),
    ("Hedy Lamarr", "hedy@frequency.example", "Frequency Hopping"),
    (
        "Claude Shannon",
        "claude@entropy.example",
        "Information Theory",
    ),
    ("Sophie Wilson", "sophie@arm.example", "Acorn"),
    ("Leslie Lamport", "leslie@paxos.example", "Paxos"),
    ("Annie Easley", "annie@centaur.example", "Centaur"),
    ("Niklaus Wirth", "niklaus@pascal.example", "Pascal AG"),
    ("Adele Goldberg", "adele@smalltalk.example", "ParcPlace"),
    ("Dennis Ritchie", "dennis@c.example", "C Language"),
    ("Evelyn Boyd", "evelyn@orbits.example", "Orbits"),
    ("Guido Rossum", "guido@python.example", "Python"),
    ("Jean Sammet", "jean@cobol-lang.example", "Sammet Inc"),
];

/// (contact index, stage, value)
const DEALS: &[(usize, &str, f64)] = &[
    (0, "proposal", 12_000.0),
    (1, "demo", 8_500.0),
    (2, "qualified", 4_000.0),
    (3, "lead", 1_500.0),
    (4, "lead", 2_500.0),
    (5, "qualified", 6_000.0),
    (6, "demo", 9_900.0),
    (7, "won", 15_000.0),
];

/// The demo workspace in a temporary folder with its store seeded.
pub fn seeded() -> (tempfile::TempDir, Arc<Engine>, Store) {
    let dir = super::support::demo();
    // A broadcast without a schedule or a test, sent below.
    std::fs::write(
        dir.path().join("campaigns/november-news.yaml"),
        "name: November News\naudience:\n  list: newsletter\ntemplate: case-study\n\
         subject: Northwind in November\n",
    )
    .expect("campaign");
    let ws = funnel::workspace::load(dir.path(), Path::new(".")).expect("load the demo");
    let engine = Arc::new(Engine::from_workspace(&ws).expect("engine"));
    let store = backend::open(dir.path());
    let scoring = engine.scoring.clone();
    store
        .write(move |db| {
            for (i, (name, email, company)) in PEOPLE.iter().enumerate() {
                let i64i = i64::try_from(i).unwrap_or(0);
                let at = NOW - (24 - i64i) * 6 * HOUR;
                let mut tags = vec![];
                if i % 3 == 0 {
                    tags.push("vip".to_string());
                }
                if i % 4 == 1 {
                    tags.push("trial".to_string());
                }
                let u = contact::Upsert {
                    contact: NewContact {
                        email: (*email).to_string(),
                        name: Some((*name).to_string()),
                        source_site: Some("demo".into()),
                        source_component: Some(if i % 2 == 0 {
                            "contact-form".into()
                        } else {
                            "newsletter".into()
                        }),
                        ..NewContact::default()
                    },
                    fields: [
                        ("company".to_string(), json!(company)),
                        (
                            "plan".to_string(),
                            json!(if i % 2 == 0 { "pro" } else { "free" }),
                        ),
                    ]
                    .into_iter()
                    .collect(),
                    tags,
                    lists: if i % 2 == 1 {
                        vec!["newsletter".into()]
                    } else {
                        vec![]
                    },
                };
                let (id, _) = contact::upsert(db, &u, at).map_err(to_store)?;
                let kinds = ["page_view", "form_submit", "email_opened", "email_clicked"];
                for k in 0..(i % 5 + 1) {
                    let kind = kinds[k % kinds.len()];
                    let subject = match kind {
                        "page_view" => "/pricing",
                        "form_submit" => "contact-form",
                        _ => "december-dispatch",
                    };
                    contact::add_activity(
                        db,
                        &NewActivity {
                            contact_id: id,
                            kind: kind.into(),
                            subject: Some(subject.into()),
                            data: json!({"page": "/pricing"}),
                            source: Some("demo".into()),
                            occurred_at: at + i64::try_from(k).unwrap_or(0) * 2 * HOUR,
                        },
                        &scoring,
                    )
                    .map_err(to_store)?;
                }
                if let Some((_, stage, value)) = DEALS.iter().find(|(c, _, _)| *c == i) {
                    let (deal_id, _) = deal::move_to_stage(
                        db,
                        id,
                        "sales",
                        stage,
                        Some(*value),
                        Some("fixture"),
                        at + HOUR,
                    )
                    .map_err(to_store)?;
                    let status = if *stage == "won" { "won" } else { "open" };
                    deal::set_status(db, deal_id, status, at + HOUR).map_err(to_store)?;
                }
            }
            // Ada again, through a newsletter form with a tagged address: the
            // duplicates queue's pair.
            let u = contact::Upsert {
                contact: NewContact {
                    email: "ada+news@analytical.example".into(),
                    name: Some("Ada Lovelace".into()),
                    source_site: Some("demo".into()),
                    source_component: Some("newsletter".into()),
                    ..NewContact::default()
                },
                ..contact::Upsert::default()
            };
            contact::upsert(db, &u, NOW - 3 * 24 * HOUR).map_err(to_store)?;
            Ok(())
        })
        .wait()
        .expect("seed contacts");
    // Executions of the demo's workflows, started by form posts two hours ago.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    {
        let _guard = rt.enter();
        let worker = Worker::new(store.clone(), engine.clone()).expect("worker");
        let at = NOW - 2 * HOUR;
        worker.set_time(at);
        for (component, email, name) in [
            ("contact-form", "lin@example.org", "Lin Chen"),
            ("newsletter", "kai@example.org", "Kai Berg"),
            ("contact-form", "ola@example.org", "Ola Nordmann"),
        ] {
            let ev = Event {
                kind: "form_submission".into(),
                data: json!({
                    "site": "demo",
                    "component": component,
                    "page": "/",
                    "fields": {"email": email, "name": name, "team_size": "11-50"},
                }),
                ..Event::default()
            };
            rt.block_on(worker.ingest_at(ev, at)).expect("ingest");
            rt.block_on(worker.settle());
        }
        // The broadcast, an hour ago, into the dev outbox.
        worker.set_time(NOW - HOUR);
        rt.block_on(async {
            worker.start_campaign("november-news").await?;
            worker.campaigns_tick().await?;
            worker.deliver_outbox().await?;
            worker.campaigns_tick().await?;
            Ok::<_, funnel::engine::EngineError>(())
        })
        .expect("send the campaign");
    }
    (dir, engine, store)
}

fn to_store(e: funnel::crm::CrmError) -> funnel::store::StoreError {
    funnel::store::StoreError::Invalid(e.to_string())
}

/// The TUI's source on the fixture, drawn as of [`NOW`].
pub fn source(engine: Arc<Engine>, store: Store) -> Arc<dyn Source> {
    let demo = super::support::repo_root();
    let ws = funnel::workspace::load(&demo, Path::new(".")).expect("the demo workspace");
    let fields = ws
        .fields
        .as_ref()
        .map(|d| d.value.fields.keys().cloned().collect())
        .unwrap_or_default();
    Arc::new(
        Local::new(
            store,
            engine,
            ".funnel/funnel.db".into(),
            Some(ACTOR.into()),
        )
        .expect("source")
        .with_fields(fields)
        .at(NOW),
    )
}

/// The email of the fixture's `i`th person.
pub fn email(i: usize) -> String {
    PEOPLE[i].1.to_string()
}
