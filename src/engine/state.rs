//! An execution's durable state: its variables, step outputs and fibers (the
//! threads of a `parallel` or `for_each`), stored as JSON in `executions.state` and
//! written in the same transaction as each step record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Largest step output kept; a larger one is replaced by a marker with a preview.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// Most items a `for_each` takes from its list.
pub const MAX_ITEMS: usize = 10_000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecState {
    #[serde(default)]
    pub vars: serde_json::Map<String, Json>,
    /// Outputs by step id (`steps.<id>`).
    #[serde(default)]
    pub steps: serde_json::Map<String, Json>,
    #[serde(default)]
    pub fibers: Vec<Fiber>,
    #[serde(default)]
    pub next_fiber: u32,
    /// Counts step runs; with the execution's uid it names each remote effect.
    #[serde(default)]
    pub seq: u64,
    /// Iterations used per `loop` step.
    #[serde(default)]
    pub loops: BTreeMap<String, u32>,
    /// The last handled failure, as `error` for an on-error `goto` target.
    #[serde(default)]
    pub error: Option<Json>,
    /// The execution that waits for this one (a sub-workflow), and its fiber.
    #[serde(default)]
    pub parent: Option<(i64, u32)>,
}

/// One thread of control.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fiber {
    pub id: u32,
    /// The step to run next; `None` once its list has ended.
    pub at: Option<String>,
    /// The attempt of the step at `at` (1 for the first).
    #[serde(default = "one")]
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Wait>,
    /// The fiber joined by this one's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u32>,
    /// `item` and `index` in a `for_each` body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locals: Option<Json>,
    /// The sequence number naming the current step's effect (its idempotency key),
    /// kept across retries so every attempt is the same request to the receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<u64>,
    /// The step record of a step that is waiting, finished when the wait ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
}

fn one() -> u32 {
    1
}

/// What a fiber waits for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Wait {
    /// A delay, a wait-until, or the backoff before a retry (`retry`).
    Timer {
        until: i64,
        #[serde(default)]
        retry: bool,
        seq: u64,
    },
    /// A named event about the contact, until a timeout.
    Event { event: String, until: i64, seq: u64 },
    /// Its children: `pending` still running; a `for_each` also has items to start.
    Join {
        step: String,
        pending: u32,
        #[serde(default)]
        items: Vec<Json>,
        #[serde(default)]
        next_item: usize,
        #[serde(default)]
        results: Vec<Json>,
    },
    /// A remote call in flight, named by its idempotency key.
    Remote {
        key: String,
        request: super::remote::Request,
        seq: u64,
    },
    /// A sub-workflow execution.
    Child { execution: i64 },
}

impl ExecState {
    /// A new fiber; returns its id.
    pub fn spawn(&mut self, at: Option<String>, parent: Option<u32>, locals: Option<Json>) -> u32 {
        let id = self.next_fiber;
        self.next_fiber += 1;
        self.fibers.push(Fiber {
            id,
            at,
            attempt: 1,
            wait: None,
            parent,
            locals,
            effect: None,
            run_id: None,
        });
        id
    }

    pub fn fiber(&mut self, id: u32) -> Option<&mut Fiber> {
        self.fibers.iter_mut().find(|f| f.id == id)
    }

    /// The sequence number of the effect of `fiber`'s current step: new on its first
    /// attempt, the same on retries.
    pub fn effect_seq(&mut self, fiber: u32) -> u64 {
        let existing = self
            .fibers
            .iter()
            .find(|f| f.id == fiber)
            .and_then(|f| f.effect);
        if let Some(seq) = existing {
            return seq;
        }
        let seq = self.next_seq();
        if let Some(f) = self.fiber(fiber) {
            f.effect = Some(seq);
        }
        seq
    }

    /// The next sequence number.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// Caps an output: past [`MAX_OUTPUT_BYTES`] it becomes a marker with a preview.
pub fn cap_output(v: Json) -> Json {
    let text = v.to_string();
    if text.len() <= MAX_OUTPUT_BYTES {
        return v;
    }
    let mut end = 1024;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    serde_json::json!({
        "truncated": true,
        "bytes": text.len(),
        "preview": &text[..end],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_outputs_are_capped_with_a_marker() {
        let big = Json::String("x".repeat(MAX_OUTPUT_BYTES + 10));
        let capped = cap_output(big);
        assert_eq!(capped["truncated"], Json::Bool(true));
        assert!(capped["preview"].as_str().is_some_and(|p| p.len() <= 1024));
        assert_eq!(cap_output(Json::from(3)), Json::from(3));
    }
}
