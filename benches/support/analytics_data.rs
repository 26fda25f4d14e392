//! Generated site traffic and its marketing aftermath for the analytics
//! benchmark and the HTML report's browser test, in a SQLite store: visits to
//! the demo site (`sites/demo`: pages `/`, `/pricing`, `/about`,
//! `/thank-you` and their component instances), each a run of page views,
//! component views, clicks with coordinates, scroll depth and time on page;
//! form posts that create contacts (the visit's events tied to them); the
//! follow-up workflows' runs and emails with opens and clicks; a monthly
//! broadcast of the `december-dispatch` campaign; deals, some won. Traffic
//! grows over the period and dips at weekends, so trends have a slope.
//! Finally the rollups the daemon keeps as events arrive are written (the
//! ones it makes when a day closes are left to the caller).
//!
//! Everything is drawn from a seeded [`Rng`]: the same seed gives the same store.
#![allow(dead_code)] // each user of this file takes part of it

use funnel::rng::Rng;
use rusqlite::{Connection, params};

pub const DAY: i64 = 86_400_000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Site events, about (the generator stops at the first visit past it).
    pub events: u64,
    /// Days of history, the last of them today (up to `now`).
    pub days: i64,
    pub now: i64,
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct Made {
    pub events: u64,
    pub visits: u64,
    pub contacts: i64,
    pub runs: u64,
    pub sends: u64,
    pub won: u64,
}

struct Page {
    path: &'static str,
    components: &'static [&'static str],
    /// Where a visitor goes next: (page index or None to leave, weight).
    next: &'static [(Option<usize>, u32)],
}

const PAGES: [Page; 4] = [
    Page {
        path: "/",
        components: &[
            "nav",
            "hero",
            "features",
            "testimonials",
            "cta",
            "contact-form",
            "newsletter",
            "footer",
        ],
        next: &[(Some(1), 40), (Some(2), 15), (None, 45)],
    },
    Page {
        path: "/pricing",
        components: &[
            "pricing-nav",
            "pricing-hero",
            "pricing-table",
            "pricing-faq",
            "pricing-cta",
        ],
        next: &[(Some(0), 35), (Some(2), 5), (None, 60)],
    },
    Page {
        path: "/about",
        components: &[
            "about-nav",
            "about-hero",
            "about-values",
            "about-cta",
            "about-footer",
        ],
        next: &[(Some(0), 30), (Some(1), 20), (None, 50)],
    },
    Page {
        path: "/thank-you",
        components: &["thanks-nav", "thanks-hero", "thanks-footer"],
        next: &[(Some(0), 10), (None, 90)],
    },
];

const SOURCES: [&str; 5] = ["google", "newsletter", "linkedin", "twitter", "partner"];

fn pick(rng: &mut Rng, weights: &[(Option<usize>, u32)]) -> Option<usize> {
    let total: u32 = weights.iter().map(|w| w.1).sum();
    let mut r = rng.below(u64::from(total)) as u32;
    for (choice, w) in weights {
        if r < *w {
            return *choice;
        }
        r -= w;
    }
    None
}

struct Event {
    page: &'static str,
    component: Option<&'static str>,
    kind: &'static str,
    data: String,
    at: i64,
}

/// Fills the store at `conn` (migrated already) and returns what it made.
pub fn generate(conn: &mut Connection, spec: &Spec) -> Made {
    let mut rng = Rng::new(spec.seed);
    let mut made = Made::default();
    // The last day is today, up to `now`: reports read closed days from the
    // rollups and today's from the raw events, as on a live store.
    let end = spec.now;
    let start = (spec.now.div_euclid(DAY) - spec.days + 1) * DAY;
    // Weight of each day: growth over the period, quieter weekends.
    let weights: Vec<f64> = (0..spec.days)
        .map(|d| {
            let weekday = (start / DAY + d + 4).rem_euclid(7); // 0 = Sunday
            let weekend = if weekday == 0 || weekday == 6 {
                0.6
            } else {
                1.0
            };
            (1.0 + 0.8 * d as f64 / spec.days as f64) * weekend
        })
        .collect();
    let total_weight: f64 = weights.iter().sum();
    let tx = conn.transaction().expect("transaction");
    tx.execute(
        "INSERT INTO workflow_versions (hash, workflow_id, definition, created_at) \
         VALUES ('generated', 'generated', '{}', 0) ON CONFLICT (hash) DO NOTHING",
        [],
    )
    .expect("version");
    let campaign: i64 = tx
        .query_row(
            "INSERT INTO email_campaigns (uid, name, kind, subject, template_id, status, created_at, campaign_key) \
             VALUES ('gen-december-dispatch', 'December dispatch', 'broadcast', 'What is new', \
             'december-dispatch', 'sent', ?1, 'december-dispatch') RETURNING id",
            params![start],
            |r| r.get(0),
        )
        .expect("campaign");
    {
        let mut event = tx
            .prepare(
                "INSERT INTO analytics_events (site_id, page, component_id, type, visitor, contact_id, data, occurred_at) \
                 VALUES ('demo', ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .expect("prepare");
        let mut contact = tx
            .prepare(
                "INSERT INTO contacts (id, uid, email, name, status, source_site, source_component, \
                 created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'active', 'demo', ?5, ?6, ?6)",
            )
            .expect("prepare");
        let mut run = tx
            .prepare(
                "INSERT INTO executions (uid, workflow_id, version_hash, contact_id, status, started_at, \
                 updated_at, completed_at) VALUES (?1, ?2, 'generated', ?3, ?4, ?5, ?6, ?6) RETURNING id",
            )
            .expect("prepare");
        let mut send = tx
            .prepare(
                "INSERT INTO email_sends (uid, campaign_id, contact_id, execution_id, template_id, status, \
                 sent_at, opened_at, clicked_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'sent', ?6, ?7, ?8, ?6)",
            )
            .expect("prepare");
        let mut deal = tx
            .prepare(
                "INSERT INTO deals (uid, contact_id, pipeline, stage, value, status, created_at, updated_at) \
                 VALUES (?1, ?2, 'sales', ?3, ?4, ?5, ?6, ?7) RETURNING id",
            )
            .expect("prepare");
        let mut stage = tx
            .prepare(
                "INSERT INTO deal_stage_history (deal_id, from_stage, to_stage, source, changed_at) \
                 VALUES (?1, ?2, ?3, 'generated', ?4)",
            )
            .expect("prepare");
        let mut uid = 0u64;
        let mut next_uid = |prefix: &str| {
            uid += 1;
            format!("{prefix}{uid:012}")
        };
        #[allow(clippy::too_many_arguments)]
        fn email(
            send: &mut rusqlite::Statement<'_>,
            uid: String,
            contact: i64,
            run_id: Option<i64>,
            template: &str,
            at: i64,
            end: i64,
            rng: &mut Rng,
            made: &mut Made,
        ) {
            if at >= end {
                return;
            }
            let opened = (rng.below(100) < 45).then(|| at + 60_000 + rng.below(DAY as u64) as i64);
            let clicked = opened.filter(|_| rng.below(100) < 25).map(|o| o + 30_000);
            send.execute(params![
                uid,
                None::<i64>,
                contact,
                run_id,
                template,
                at,
                opened,
                clicked
            ])
            .expect("send");
            made.sends += 1;
        }
        // Emails wait here until their day, so every table fills in time order.
        let mut contacts_so_far: Vec<i64> = Vec::new();
        for d in 0..spec.days {
            let day_start = start + d * DAY;
            let share = weights[d as usize] / total_weight;
            // Visits start at least an hour before the day's (or now's) end.
            let span = (end - day_start).min(DAY) - 3_600_000;
            if span <= 0 {
                continue;
            }
            let day_events =
                (spec.events as f64 * share * span as f64 / (DAY - 3_600_000) as f64) as u64;
            let mut day_made = 0u64;
            // Visits of the day in time order.
            let mut times: Vec<i64> = Vec::new();
            while (times.len() as u64) * 25 < day_events * 2 {
                times.push(day_start + rng.below(span as u64) as i64);
            }
            times.sort_unstable();
            for t0 in times {
                made.visits += 1;
                let visitor = format!("{:016x}", rng.next_u64());
                let mut at = t0;
                let mut events: Vec<Event> = Vec::new();
                let mut page = if rng.below(100) < 65 {
                    0
                } else if rng.below(2) == 0 {
                    1
                } else {
                    2
                };
                let utm = if rng.below(3) == 0 {
                    format!(
                        r#","utm":{{"source":"{}","campaign":"launch"}}"#,
                        SOURCES[rng.below(SOURCES.len() as u64) as usize]
                    )
                } else {
                    String::new()
                };
                let width = [375, 390, 768, 1280, 1440, 1920][rng.below(6) as usize];
                let mut converted: Option<&'static str> = None;
                let mut saw_pricing = false;
                for hop in 0..6 {
                    let p = &PAGES[page];
                    saw_pricing |= page == 1;
                    events.push(Event {
                        page: p.path,
                        component: None,
                        kind: "view",
                        data: format!(
                            r#"{{"w":{width}{}}}"#,
                            if hop == 0 { utm.as_str() } else { "" }
                        ),
                        at,
                    });
                    let seen = (2 + rng.below(3) as usize).min(p.components.len());
                    for c in p.components.iter().take(seen) {
                        at += 500 + rng.below(4000) as i64;
                        events.push(Event {
                            page: p.path,
                            component: Some(c),
                            kind: "view",
                            data: "{}".into(),
                            at,
                        });
                    }
                    if rng.below(100) < 45 {
                        let c = p.components[rng.below(seen as u64) as usize];
                        at += 1000 + rng.below(20_000) as i64;
                        let slot = p.components.iter().position(|x| x == &c).unwrap_or(0) as i64;
                        let x =
                            (width as i64 * (2 + rng.below(7) as i64)) / 10 + rng.below(40) as i64;
                        let y = slot * 600 + 80 + rng.below(400) as i64;
                        events.push(Event {
                            page: p.path,
                            component: Some(c),
                            kind: "click",
                            data: format!(
                                r#"{{"element":"a {} {}","x":{x},"y":{y},"w":{width}}}"#,
                                p.path, c
                            ),
                            at,
                        });
                    }
                    // A form post: more likely after the pricing page.
                    if page == 0 && converted.is_none() {
                        let chance = if saw_pricing { 9 } else { 2 };
                        if rng.below(100) < chance {
                            let form = if rng.below(3) == 0 {
                                "newsletter"
                            } else {
                                "contact-form"
                            };
                            at += 20_000 + rng.below(60_000) as i64;
                            events.push(Event {
                                page: "/",
                                component: Some(form),
                                kind: "submit",
                                data: "{}".into(),
                                at,
                            });
                            converted = Some(form);
                            page = 3;
                            at += 1500;
                            continue;
                        }
                    }
                    at += 5_000 + rng.below(120_000) as i64;
                    events.push(Event {
                        page: p.path,
                        component: None,
                        kind: "scroll_depth",
                        data: format!(r#"{{"value":{}}}"#, 10 + rng.below(91)),
                        at,
                    });
                    events.push(Event {
                        page: p.path,
                        component: None,
                        kind: "time_on_page",
                        data: format!(r#"{{"value":{}}}"#, 3 + rng.below(240)),
                        at,
                    });
                    match pick(&mut rng, p.next) {
                        Some(n) if hop < 5 => page = n,
                        _ => break,
                    }
                    at += 500;
                }
                let contact_id = converted.map(|form| {
                    made.contacts += 1;
                    let id = made.contacts;
                    contact
                        .execute(params![
                            id,
                            next_uid("c"),
                            format!("person{id}@example.org"),
                            format!("Person {id}"),
                            form,
                            at
                        ])
                        .expect("contact");
                    contacts_so_far.push(id);
                    id
                });
                for e in &events {
                    event
                        .execute(params![
                            e.page,
                            e.component,
                            e.kind,
                            visitor,
                            contact_id,
                            e.data,
                            e.at
                        ])
                        .expect("event");
                }
                day_made += events.len() as u64;
                made.events += events.len() as u64;
                let (Some(id), Some(form)) = (contact_id, converted) else {
                    continue;
                };
                // The follow-up, the drip and maybe a deal; only what happened before `now`.
                let workflow = if form == "contact-form" {
                    "contact-form-follow-up"
                } else {
                    "newsletter-signup"
                };
                let failed = rng.below(100) < 3;
                let r: i64 = run
                    .query_row(
                        params![
                            next_uid("e"),
                            workflow,
                            id,
                            if failed { "failed" } else { "completed" },
                            at + 1000,
                            at + 1800 + rng.below(4000) as i64
                        ],
                        |r| r.get(0),
                    )
                    .expect("run");
                made.runs += 1;
                email(
                    &mut send,
                    next_uid("s"),
                    id,
                    Some(r),
                    "welcome",
                    at + 60_000,
                    end,
                    &mut rng,
                    &mut made,
                );
                if at + 3_600_000 < end {
                    let drip: i64 = run
                        .query_row(
                            params![
                                next_uid("e"),
                                "welcome-drip",
                                id,
                                "completed",
                                at + 3_600_000,
                                at + 8 * DAY
                            ],
                            |r| r.get(0),
                        )
                        .expect("drip");
                    made.runs += 1;
                    for (k, template) in ["welcome-day-2", "welcome-day-5", "welcome-day-8"]
                        .iter()
                        .enumerate()
                    {
                        email(
                            &mut send,
                            next_uid("s"),
                            id,
                            Some(drip),
                            template,
                            at + (2 + 3 * k as i64) * DAY,
                            end,
                            &mut rng,
                            &mut made,
                        );
                    }
                }
                if form == "contact-form" && rng.below(100) < 35 {
                    let opened_at = at + (2 + rng.below(8) as i64) * DAY;
                    let closed_at = opened_at + (3 + rng.below(25) as i64) * DAY;
                    let won = rng.below(100) < 45;
                    let value = (5 + rng.below(60)) as f64 * 100.0;
                    if opened_at < end {
                        let (stage_now, status, updated) = if closed_at < end {
                            (
                                if won { "won" } else { "lost" },
                                if won { "won" } else { "lost" },
                                closed_at,
                            )
                        } else {
                            ("proposal", "open", opened_at)
                        };
                        let deal_id: i64 = deal
                            .query_row(
                                params![
                                    next_uid("d"),
                                    id,
                                    stage_now,
                                    value,
                                    status,
                                    opened_at,
                                    updated
                                ],
                                |r| r.get(0),
                            )
                            .expect("deal");
                        stage
                            .execute(params![deal_id, None::<String>, "proposal", opened_at])
                            .expect("stage");
                        if closed_at < end {
                            stage
                                .execute(params![deal_id, "proposal", stage_now, closed_at])
                                .expect("stage");
                            made.won += u64::from(won);
                        }
                    }
                }
            }
            // The monthly broadcast, to everyone known by then.
            if d % 30 == 15 {
                let at = day_start + 10 * 3_600_000;
                for &id in &contacts_so_far {
                    let opened = (rng.below(100) < 30).then(|| at + rng.below(DAY as u64) as i64);
                    let clicked = opened.filter(|_| rng.below(100) < 20).map(|o| o + 45_000);
                    send.execute(params![
                        next_uid("s"),
                        campaign,
                        id,
                        None::<i64>,
                        "december-dispatch",
                        at,
                        opened,
                        clicked
                    ])
                    .expect("broadcast");
                    made.sends += 1;
                }
            }
            let _ = day_made;
        }
    }
    // The daily rollups the daemon keeps as events arrive.
    tx.execute_batch(
        "INSERT INTO site_analytics (site_id, day, page_views, conversions) \
           SELECT site_id, occurred_at / 86400000, \
             sum(CASE WHEN type = 'view' AND component_id IS NULL THEN 1 ELSE 0 END), \
             sum(CASE WHEN type = 'submit' THEN 1 ELSE 0 END) \
           FROM analytics_events GROUP BY site_id, occurred_at / 86400000; \
         INSERT INTO component_analytics (site_id, component_id, day, views, interactions, conversions) \
           SELECT site_id, component_id, occurred_at / 86400000, \
             sum(CASE WHEN type = 'view' THEN 1 ELSE 0 END), \
             sum(CASE WHEN type = 'click' THEN 1 ELSE 0 END), \
             sum(CASE WHEN type = 'submit' THEN 1 ELSE 0 END) \
           FROM analytics_events WHERE component_id IS NOT NULL \
           GROUP BY site_id, component_id, occurred_at / 86400000;",
    )
    .expect("rollups");
    tx.commit().expect("commit");
    made
}
