//! What one contact is, as sync sees it, and how two views of it merge. Each
//! part merges by a rule that does not care about order or repetition (the
//! merge is commutative, associative and idempotent), so two stores that have
//! seen the same changes hold the same contact, whichever way and however
//! often the pages travelled:
//!
//! - a field (name, phone, status, stage, each custom field) is the value of
//!   its latest stamp ([`Stamp`]: hybrid logical clock, the node breaking ties);
//! - a tag's or a list's membership is the latest of its adds and removes;
//! - activities, consent records, score adjustments and suppressions are the
//!   union of both sides, each by its id;
//! - an erasure absorbs everything: an erased person stays erased, and a
//!   change from a store that had not heard of it yet is dropped, never merged
//!   back in.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::hlc::Stamp;

/// A value and the stamp of the change that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register<T> {
    pub value: T,
    pub stamp: Stamp,
}

impl<T: Clone + Serialize> Register<T> {
    /// The later of two writes. Equal stamps should be one write; should two
    /// differ anyway (a store restored from a backup reusing its node id), the
    /// value's JSON text decides, so both sides still pick the same.
    fn join(&self, other: &Register<T>) -> Register<T> {
        match other.stamp.cmp(&self.stamp) {
            std::cmp::Ordering::Greater => other.clone(),
            std::cmp::Ordering::Less => self.clone(),
            std::cmp::Ordering::Equal => {
                let text = |v: &T| serde_json::to_string(v).unwrap_or_default();
                if text(&other.value) > text(&self.value) {
                    other.clone()
                } else {
                    self.clone()
                }
            }
        }
    }
}

/// A JSON value, ordered by its text so registers of JSON compare fully.
pub type Value = Json;

/// One contact, keyed elsewhere by its normalized email.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactState {
    /// Built-in and custom fields.
    pub fields: BTreeMap<String, Register<Value>>,
    /// Tag → present (an add) or not (a remove).
    pub tags: BTreeMap<String, Register<bool>>,
    pub lists: BTreeMap<String, Register<bool>>,
    /// Activities, consent records, score adjustments, suppressions: by id.
    pub activities: BTreeSet<String>,
    pub consent: BTreeSet<String>,
    pub adjustments: BTreeSet<String>,
    pub suppressions: BTreeSet<String>,
    /// When the person was erased; then nothing else is kept.
    pub erased: Option<Stamp>,
}

fn join_map<T: Clone + Serialize>(
    a: &BTreeMap<String, Register<T>>,
    b: &BTreeMap<String, Register<T>>,
) -> BTreeMap<String, Register<T>> {
    let mut out = a.clone();
    for (k, r) in b {
        let joined = match out.get(k) {
            Some(mine) => mine.join(r),
            None => r.clone(),
        };
        out.insert(k.clone(), joined);
    }
    out
}

impl ContactState {
    /// An erased person: the tombstone alone.
    pub fn erased_at(stamp: Stamp) -> ContactState {
        ContactState {
            erased: Some(stamp),
            ..ContactState::default()
        }
    }

    /// Both views as one.
    pub fn join(&self, other: &ContactState) -> ContactState {
        // The earliest erasure is kept, so erasing twice is one erasure.
        match (&self.erased, &other.erased) {
            (Some(a), Some(b)) => return ContactState::erased_at(a.min(b).clone()),
            (Some(a), None) | (None, Some(a)) => return ContactState::erased_at(a.clone()),
            (None, None) => {}
        }
        ContactState {
            fields: join_map(&self.fields, &other.fields),
            tags: join_map(&self.tags, &other.tags),
            lists: join_map(&self.lists, &other.lists),
            activities: &self.activities | &other.activities,
            consent: &self.consent | &other.consent,
            adjustments: &self.adjustments | &other.adjustments,
            suppressions: &self.suppressions | &other.suppressions,
            erased: None,
        }
    }

    /// The tags the contact has now.
    pub fn tags_now(&self) -> Vec<&str> {
        self.tags
            .iter()
            .filter(|(_, r)| r.value)
            .map(|(t, _)| t.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::hlc::Clock;
    use super::*;
    use crate::rng::Rng;

    /// A store's copy of every contact, with its clock, and what it changed
    /// since it last sent.
    struct Replica {
        clock: Clock,
        contacts: BTreeMap<String, ContactState>,
        now: i64,
    }

    impl Replica {
        fn new(node: &str, skew: i64) -> Replica {
            Replica {
                clock: Clock::new(node),
                contacts: BTreeMap::new(),
                now: 1_000_000 + skew,
            }
        }

        /// One random local edit, as a delta of one contact.
        fn edit(&mut self, rng: &mut Rng) -> (String, ContactState) {
            self.now += i64::try_from(rng.below(3)).unwrap_or(0);
            let stamp = self.clock.tick(self.now);
            let email = format!("p{}@example.org", rng.below(4));
            let key = |rng: &mut Rng, what: &str| format!("{what}{}", rng.below(3));
            let mut d = ContactState::default();
            match rng.below(10) {
                0..=3 => {
                    let f = key(rng, "field");
                    d.fields.insert(
                        f,
                        Register {
                            value: Json::from(rng.below(100)),
                            stamp,
                        },
                    );
                }
                4 | 5 => {
                    d.tags.insert(
                        key(rng, "tag"),
                        Register {
                            value: rng.below(2) == 0,
                            stamp,
                        },
                    );
                }
                6 => {
                    d.lists.insert(
                        key(rng, "list"),
                        Register {
                            value: rng.below(2) == 0,
                            stamp,
                        },
                    );
                }
                7 | 8 => {
                    d.activities
                        .insert(format!("{}-{}", stamp.node, stamp.shown()));
                }
                _ => {
                    if rng.below(4) == 0 {
                        d = ContactState::erased_at(stamp);
                    } else {
                        d.suppressions.insert(format!("bounce-{}", rng.below(2)));
                    }
                }
            }
            let merged = self
                .contacts
                .get(&email)
                .cloned()
                .unwrap_or_default()
                .join(&d);
            self.contacts.insert(email.clone(), merged);
            (email, d)
        }

        fn receive(&mut self, changes: &[(String, ContactState)]) {
            for (email, d) in changes {
                for r in d.fields.values() {
                    self.clock.observe(&r.stamp, self.now);
                }
                let merged = self
                    .contacts
                    .get(email)
                    .cloned()
                    .unwrap_or_default()
                    .join(d);
                self.contacts.insert(email.clone(), merged);
            }
        }
    }

    #[test]
    fn two_stores_converge_whichever_way_the_changes_travel() {
        for seed in 0..200u64 {
            let mut rng = Rng::new(seed);
            // The laptop's clock runs 40 minutes slow.
            let mut laptop = Replica::new("laptop", -2_400_000);
            let mut hosted = Replica::new("hosted", 0);
            let mut from_laptop = Vec::new();
            let mut from_hosted = Vec::new();
            for _ in 0..rng.below(40) {
                if rng.below(2) == 0 {
                    from_laptop.push(laptop.edit(&mut rng));
                } else {
                    from_hosted.push(hosted.edit(&mut rng));
                }
            }
            // Either order, and a page sent twice (a resumed sync).
            if seed % 2 == 0 {
                hosted.receive(&from_laptop);
                laptop.receive(&from_hosted);
            } else {
                laptop.receive(&from_hosted);
                hosted.receive(&from_laptop);
                hosted.receive(&from_laptop[..from_laptop.len() / 2]);
            }
            assert_eq!(laptop.contacts, hosted.contacts, "seed {seed}");
        }
    }

    #[test]
    fn the_join_ignores_order_grouping_and_repetition() {
        let mut rng = Rng::new(7);
        let mut r = Replica::new("a", 0);
        let ds: Vec<ContactState> = (0..60).map(|_| r.edit(&mut rng).1).collect();
        for w in ds.windows(3) {
            let (a, b, c) = (&w[0], &w[1], &w[2]);
            assert_eq!(a.join(b), b.join(a));
            assert_eq!(a.join(b).join(c), a.join(&b.join(c)));
            assert_eq!(a.join(a), *a);
        }
    }

    #[test]
    fn an_erased_person_stays_erased() {
        let mut c = Clock::new("hosted");
        let gone = ContactState::erased_at(c.tick(10));
        // A laptop that had not heard of the erasure edits the person later.
        let mut late = ContactState::default();
        late.fields.insert(
            "name".into(),
            Register {
                value: Json::from("Ada"),
                stamp: Clock::new("laptop").tick(99),
            },
        );
        late.activities.insert("a1".into());
        assert_eq!(gone.join(&late), gone);
        assert_eq!(late.join(&gone), gone);
    }

    #[test]
    fn the_later_write_of_a_field_wins_and_ties_go_by_node() {
        let mut a = ContactState::default();
        let mut b = ContactState::default();
        a.fields.insert(
            "plan".into(),
            Register {
                value: Json::from("pro"),
                stamp: Clock::new("a").tick(5),
            },
        );
        b.fields.insert(
            "plan".into(),
            Register {
                value: Json::from("free"),
                stamp: Clock::new("b").tick(5),
            },
        );
        assert_eq!(a.join(&b).fields["plan"].value, "free");
        assert_eq!(b.join(&a).fields["plan"].value, "free");
    }
}
