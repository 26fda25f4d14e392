//! A workflow compiled for running: steps by id with their static successors, the
//! lists they belong to, the content hash that names this version, and every
//! expression compiled once.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::expr::{Compiled, ExprError};
use crate::model::step::{OnError, Step, StepKind};
use crate::model::workflow::Workflow;

/// The jump target that ends a branch.
pub const END: &str = "end";

/// One step of a program.
#[derive(Debug)]
pub struct Node {
    pub step: Step,
    /// The list it belongs to (0 is the top level).
    pub list: usize,
    /// Where the flow goes after it: an explicit `next:`, else the following step of
    /// its list; `None` ends the list.
    pub next: Option<usize>,
}

/// A step list: the top level, a `parallel` branch or a `for_each` body.
#[derive(Debug)]
pub struct List {
    pub first: Option<usize>,
}

/// A compiled workflow version.
#[derive(Debug)]
pub struct Program {
    pub id: String,
    pub hash: String,
    pub workflow: Workflow,
    /// The definition as stored with the version (JSON).
    pub definition: String,
    pub nodes: Vec<Node>,
    pub lists: Vec<List>,
    index: HashMap<String, usize>,
    /// The first list of each `parallel` branch, by (step, branch name).
    pub branches: HashMap<usize, Vec<(String, usize)>>,
    /// The body list of each `for_each`.
    pub bodies: HashMap<usize, usize>,
    /// Whether a node reads the execution's scope (an expression, a template, or the
    /// contact); the others run without building it.
    pub needs_scope: Vec<bool>,
    /// The scope's top-level names each node mentions; only those are built.
    pub roots: Vec<Vec<&'static str>>,
    /// Whether the trigger's conditions mention the contact: only then is its
    /// view (fields, tags, lists, score) built to check them.
    pub conditions_read_contact: bool,
    pub exprs: Compiled,
}

/// Why a workflow could not be compiled (`funnel validate` reports these earlier,
/// with positions; here they guard against an unvalidated file).
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    #[error("step `{0}` is defined twice")]
    DuplicateStep(String),
    #[error("step `{from}` jumps to unknown step `{to}`")]
    UnknownStep { from: String, to: String },
    #[error(transparent)]
    Expr(#[from] ExprError),
    #[error("cannot serialize the workflow: {0}")]
    Serialize(String),
}

/// The content hash of a definition: the first 128 bits of its SHA-256, in hex.
pub fn content_hash(definition: &str) -> String {
    let digest = Sha256::digest(definition.as_bytes());
    hex::encode(&digest[..16])
}

impl Program {
    /// Compiles `wf` (id `id`).
    pub fn compile(id: &str, wf: Workflow) -> Result<Program, ProgramError> {
        let definition =
            serde_json::to_string(&wf).map_err(|e| ProgramError::Serialize(e.to_string()))?;
        Program::from_parts(id, wf, definition)
    }

    /// Compiles a stored version from its JSON definition.
    pub fn from_definition(id: &str, definition: &str) -> Result<Program, ProgramError> {
        let wf: Workflow =
            serde_json::from_str(definition).map_err(|e| ProgramError::Serialize(e.to_string()))?;
        Program::from_parts(id, wf, definition.to_string())
    }

    fn from_parts(id: &str, wf: Workflow, definition: String) -> Result<Program, ProgramError> {
        let mut p = Program {
            id: id.to_string(),
            hash: content_hash(&definition),
            definition,
            nodes: Vec::new(),
            lists: Vec::new(),
            index: HashMap::new(),
            branches: HashMap::new(),
            bodies: HashMap::new(),
            needs_scope: Vec::new(),
            roots: Vec::new(),
            conditions_read_contact: false,
            exprs: Compiled::default(),
            workflow: wf.clone(),
        };
        // Lists first (nodes numbered in document order), then the jumps.
        let mut explicit: Vec<(usize, Option<String>)> = Vec::new();
        p.add_list(&wf.steps, &mut explicit)?;
        for (node, next) in explicit {
            if let Some(target) = next {
                p.nodes[node].next = p.target(node, &target)?;
            }
        }
        for i in 0..p.nodes.len() {
            let step = p.nodes[i].step.clone();
            p.check_jumps(i, &step)?;
            p.prepare(&step)?;
        }
        for c in &wf.trigger.conditions {
            p.exprs.prepare(c.as_str())?;
            p.conditions_read_contact |= mentions(c.as_str(), "contact");
        }
        p.needs_scope = p.nodes.iter().map(|n| reads_scope(&n.step)).collect();
        p.roots = p.nodes.iter().map(|n| roots_of(&n.step)).collect();
        Ok(p)
    }

    fn add_list(
        &mut self,
        steps: &[Step],
        explicit: &mut Vec<(usize, Option<String>)>,
    ) -> Result<usize, ProgramError> {
        let list = self.lists.len();
        self.lists.push(List { first: None });
        let start = self.nodes.len();
        for step in steps {
            let i = self.nodes.len();
            if self.index.insert(step.id.to_string(), i).is_some() {
                return Err(ProgramError::DuplicateStep(step.id.to_string()));
            }
            self.nodes.push(Node {
                step: step.clone(),
                list,
                next: None,
            });
        }
        // Default successors: the next step of the same list.
        let ids: Vec<usize> = (start..self.nodes.len()).collect();
        for (k, &i) in ids.iter().enumerate() {
            self.nodes[i].next = ids.get(k + 1).copied();
            explicit.push((i, steps[k].next.as_ref().map(|n| n.to_string())));
        }
        self.lists[list].first = ids.first().copied();
        for (k, &i) in ids.iter().enumerate() {
            match &steps[k].kind {
                StepKind::Parallel { branches } => {
                    let mut firsts = Vec::new();
                    for (name, branch) in branches {
                        let l = self.add_list(branch, explicit)?;
                        firsts.push((name.clone(), l));
                    }
                    self.branches.insert(i, firsts);
                }
                StepKind::ForEach { steps, .. } => {
                    let l = self.add_list(steps, explicit)?;
                    self.bodies.insert(i, l);
                }
                _ => {}
            }
        }
        Ok(list)
    }

    /// Resolves a jump from `from` to `to` (`end` ends the list).
    pub fn target(&self, from: usize, to: &str) -> Result<Option<usize>, ProgramError> {
        if to == END {
            return Ok(None);
        }
        self.index
            .get(to)
            .copied()
            .map(Some)
            .ok_or_else(|| ProgramError::UnknownStep {
                from: self.nodes[from].step.id.to_string(),
                to: to.to_string(),
            })
    }

    fn check_jumps(&self, i: usize, step: &Step) -> Result<(), ProgramError> {
        let mut targets: Vec<&str> = Vec::new();
        match &step.kind {
            StepKind::If {
                then, otherwise, ..
            } => {
                targets.push(then.as_str());
                targets.extend(otherwise.as_ref().map(|o| o.as_str()));
            }
            StepKind::Switch { cases, default } => {
                targets.extend(cases.iter().map(|c| c.next.as_str()));
                targets.extend(default.as_ref().map(|o| o.as_str()));
            }
            StepKind::Loop { to, .. } => targets.push(to.as_str()),
            StepKind::WaitForEvent { on_timeout, .. } => {
                targets.extend(on_timeout.as_ref().map(|o| o.as_str()));
            }
            _ => {}
        }
        if let Some(OnError::Handler(crate::model::step::OnErrorHandler::Goto(t))) = &step.on_error
        {
            targets.push(t.as_str());
        }
        for t in targets {
            self.target(i, t)?;
        }
        Ok(())
    }

    /// Compiles the expressions of one step ahead of time.
    fn prepare(&mut self, step: &Step) -> Result<(), ProgramError> {
        if let Some(w) = &step.when {
            self.exprs.prepare(w.as_str())?;
        }
        let mut templates: Vec<&str> = Vec::new();
        match &step.kind {
            StepKind::If { condition, .. } => self.exprs.prepare(condition.as_str())?,
            StepKind::Switch { cases, .. } => {
                for c in cases {
                    self.exprs.prepare(c.when.as_str())?;
                }
            }
            StepKind::ForEach { items, .. } => self.exprs.prepare(items.as_str())?,
            StepKind::Loop {
                condition: Some(c), ..
            } => self.exprs.prepare(c.as_str())?,
            StepKind::WaitForEvent {
                matches: Some(m), ..
            } => self.exprs.prepare(m.as_str())?,
            StepKind::UpsertContact {
                email, name, phone, ..
            } => {
                templates.push(email.as_str());
                templates.extend(name.iter().map(|n| n.as_str()));
                templates.extend(phone.iter().map(|n| n.as_str()));
            }
            StepKind::AddTag { tags } | StepKind::RemoveTag { tags } => {
                templates.extend(tags.iter().map(|t| t.as_str()));
            }
            StepKind::Http { url, .. } => templates.push(url.as_str()),
            StepKind::Log { message, .. } => templates.push(message.as_str()),
            _ => {}
        }
        for t in templates {
            self.exprs.prepare_template(t)?;
        }
        Ok(())
    }

    /// The node of a step id.
    pub fn node(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }
}

/// Whether running `step` reads the scope: a condition, a template anywhere in
/// its values, or a kind that renders with the contact.
fn reads_scope(step: &Step) -> bool {
    if step.when.is_some() {
        return true;
    }
    match &step.kind {
        StepKind::If { .. }
        | StepKind::Switch { .. }
        | StepKind::ForEach { .. }
        | StepKind::SendEmail { .. }
        | StepKind::SubWorkflow { .. } => true,
        StepKind::Loop { condition, .. } => condition.is_some(),
        kind => serde_json::to_string(kind).map_or(true, |text| super::expr::is_template(&text)),
    }
}

/// The names a scope may hold.
pub const ROOTS: &[&str] = &[
    "trigger",
    "contact",
    "steps",
    "vars",
    "workflow",
    "execution",
    "now",
    "error",
];

/// Which scope names a step's text mentions as whole words (`contact.email`, not
/// `upsert_contact`). Steps that render email always get the contact.
fn roots_of(step: &Step) -> Vec<&'static str> {
    let text = serde_json::to_string(step).unwrap_or_default();
    let mut out: Vec<&'static str> = ROOTS
        .iter()
        .copied()
        .filter(|root| mentions(&text, root))
        .collect();
    if matches!(
        step.kind,
        StepKind::SendEmail { .. } | StepKind::SubWorkflow { .. }
    ) && !out.contains(&"contact")
    {
        out.push("contact");
    }
    out
}

fn mentions(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wf(yaml_steps: serde_json::Value) -> Workflow {
        serde_json::from_value(serde_json::json!({
            "name": "t",
            "trigger": {"type": "custom_event", "event": "go"},
            "steps": yaml_steps,
        }))
        .expect("workflow")
    }

    #[test]
    fn successors_jumps_and_nested_lists() {
        let p = Program::compile(
            "t",
            wf(serde_json::json!([
                {"id": "a", "type": "log", "message": "a"},
                {"id": "p", "type": "parallel", "branches": {
                    "x": [{"id": "x1", "type": "log", "message": "x"}],
                    "y": [{"id": "y1", "type": "log", "message": "y", "next": "end"}]
                }},
                {"id": "b", "type": "log", "message": "b", "next": "a"},
            ])),
        )
        .expect("compiles");
        let a = p.node("a").expect("a");
        let par = p.node("p").expect("p");
        let b = p.node("b").expect("b");
        assert_eq!(p.nodes[a].next, Some(par));
        assert_eq!(p.nodes[par].next, Some(b));
        assert_eq!(p.nodes[b].next, Some(a));
        assert_eq!(p.branches[&par].len(), 2);
        assert_eq!(p.nodes[p.node("y1").expect("y1")].next, None);
        assert_eq!(p.hash.len(), 32);
    }

    #[test]
    fn roots_are_whole_words() {
        assert!(mentions("{{ contact.email }}", "contact"));
        assert!(!mentions("\"type\":\"upsert_contact\"", "contact"));
        assert!(mentions("vars.n > 1", "vars"));
        assert!(!mentions("my_vars.n", "vars"));
    }

    #[test]
    fn unknown_jump_is_an_error() {
        let err = Program::compile(
            "t",
            wf(serde_json::json!([{"id": "a", "type": "log", "message": "a", "next": "nowhere"}])),
        )
        .expect_err("unknown");
        assert!(err.to_string().contains("nowhere"));
    }
}
