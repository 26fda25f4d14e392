//! Workflow graphs: duplicate step ids, jumps to unknown steps, unreachable steps and
//! cycles that do not pass through a `loop` step.
//!
//! Each step list (the top level, each `parallel` branch, each `for_each` body) is
//! its own graph: jumps stay within their list. Steps flow to the next one in the
//! list unless they jump; `loop` steps are the only legal way back.

use std::collections::{BTreeMap, HashMap};

use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::model::step::{OnError, OnErrorHandler, Step, StepKind};
use crate::model::workflow::Workflow;
use crate::validate::{Located, join};
use crate::workspace::Workspace;
use crate::yaml::Seg;

/// The id that ends a branch when used as a jump target.
pub const END: &str = "end";

/// One step with where it stands.
#[derive(Debug, Clone)]
pub struct StepRef<'a> {
    pub step: &'a Step,
    /// Path of the step in its file.
    pub path: Vec<Seg>,
    /// Which step list it belongs to (0 is the top level).
    pub list: usize,
    /// Position within its list.
    pub index: usize,
    /// Ids of the `for_each` steps it is nested in.
    pub in_for_each: bool,
}

/// Every step of a workflow in document order, nested ones included.
pub fn flatten(wf: &Workflow) -> Vec<StepRef<'_>> {
    let mut out = Vec::new();
    let mut lists = 0usize;
    walk(
        &wf.steps,
        vec![Seg::from("steps")],
        &mut lists,
        false,
        &mut out,
    );
    out
}

fn walk<'a>(
    steps: &'a [Step],
    base: Vec<Seg>,
    lists: &mut usize,
    in_for_each: bool,
    out: &mut Vec<StepRef<'a>>,
) {
    let list = *lists;
    *lists += 1;
    for (index, step) in steps.iter().enumerate() {
        let path = join(&base, [Seg::Index(index)]);
        out.push(StepRef {
            step,
            path: path.clone(),
            list,
            index,
            in_for_each,
        });
        match &step.kind {
            StepKind::Parallel { branches } => {
                for (name, branch) in branches {
                    let p = join(&path, [Seg::from("branches"), Seg::from(name)]);
                    walk(branch, p, lists, in_for_each, out);
                }
            }
            StepKind::ForEach { steps, .. } => {
                walk(steps, join(&path, [Seg::from("steps")]), lists, true, out);
            }
            _ => {}
        }
    }
}

/// A jump out of a step: the target and the key it is written under.
#[derive(Debug, Clone)]
pub struct Jump<'a> {
    pub target: &'a str,
    pub path: Vec<Seg>,
    /// A `loop` step's jump back: the one legal way to close a cycle.
    pub is_loop: bool,
}

/// The explicit jumps a step makes.
pub fn jumps<'a>(step: &'a Step, path: &[Seg]) -> Vec<Jump<'a>> {
    let mut out = Vec::new();
    let mut push = |target: &'a str, sub: Vec<Seg>, is_loop: bool| {
        out.push(Jump {
            target,
            path: join(path, sub),
            is_loop,
        });
    };
    if let Some(next) = &step.next {
        push(next.as_str(), vec![Seg::from("next")], false);
    }
    if let Some(OnError::Handler(OnErrorHandler::Goto(target))) = &step.on_error {
        push(
            target.as_str(),
            vec![Seg::from("on_error"), Seg::from("goto")],
            false,
        );
    }
    match &step.kind {
        StepKind::If {
            then, otherwise, ..
        } => {
            push(then.as_str(), vec![Seg::from("then")], false);
            if let Some(e) = otherwise {
                push(e.as_str(), vec![Seg::from("else")], false);
            }
        }
        StepKind::Switch { cases, default } => {
            for (i, case) in cases.iter().enumerate() {
                push(
                    case.next.as_str(),
                    vec![Seg::from("cases"), Seg::Index(i), Seg::from("next")],
                    false,
                );
            }
            if let Some(d) = default {
                push(d.as_str(), vec![Seg::from("default")], false);
            }
        }
        StepKind::WaitForEvent {
            on_timeout: Some(t),
            ..
        } => push(t.as_str(), vec![Seg::from("on_timeout")], false),
        StepKind::Loop { to, .. } => push(to.as_str(), vec![Seg::from("to")], true),
        _ => {}
    }
    out
}

/// Whether control can fall through to the next step in the list.
fn falls_through(step: &Step) -> bool {
    if step.next.is_some() {
        return false;
    }
    // A step whose `when` does not hold is skipped, and the flow goes on below it,
    // whatever the step would have done.
    if step.when.is_some() {
        return true;
    }
    match &step.kind {
        StepKind::Stop {} | StepKind::Fail { .. } => false,
        StepKind::If { otherwise, .. } => otherwise.is_none(),
        StepKind::Switch { default, .. } => default.is_none(),
        _ => true,
    }
}

pub fn check(ws: &Workspace, out: &mut Vec<Diagnostic>) {
    for doc in ws.workflows.values() {
        let at = Located::of(ws, doc);
        check_workflow(&doc.value, &at, out);
    }
}

fn check_workflow(wf: &Workflow, at: &Located, out: &mut Vec<Diagnostic>) {
    let steps = flatten(wf);
    let mut by_id: HashMap<&str, &StepRef> = HashMap::new();
    for s in &steps {
        let id = s.step.id.as_str();
        if id == END {
            out.push(
                at.error(
                    Code::InvalidId,
                    &join(&s.path, [Seg::from("id")]),
                    "`end` is reserved: it ends a branch when used as a jump target",
                )
                .with_help("choose another id"),
            );
            continue;
        }
        match by_id.get(id) {
            Some(first) => out.push(
                at.error(
                    Code::DuplicateStepId,
                    &join(&s.path, [Seg::from("id")]),
                    format!("step id `{id}` is used twice"),
                )
                .with_help(format!(
                    "the first is on line {}; step ids are unique within a workflow, nested steps included",
                    at.span(&first.path).start.line
                )),
            ),
            None => {
                by_id.insert(id, s);
            }
        }
    }

    // Group steps by list, in order.
    let mut lists: BTreeMap<usize, Vec<&StepRef>> = BTreeMap::new();
    for s in &steps {
        lists.entry(s.list).or_default().push(s);
    }

    for members in lists.values() {
        let local: HashMap<&str, usize> = members
            .iter()
            .enumerate()
            .map(|(i, s)| (s.step.id.as_str(), i))
            .collect();
        // Edges within the list; `loop_edge` marks a loop step's jump back.
        let mut edges: Vec<Vec<(usize, bool, Vec<Seg>)>> = vec![Vec::new(); members.len()];
        for (i, s) in members.iter().enumerate() {
            if falls_through(s.step) && i + 1 < members.len() {
                edges[i].push((i + 1, false, join(&s.path, [Seg::from("id")])));
            }
            for jump in jumps(s.step, &s.path) {
                if jump.target == END {
                    continue;
                }
                match local.get(jump.target) {
                    Some(&j) if jump.is_loop && j >= i => out.push(
                        at.error(
                            Code::InvalidReference,
                            &jump.path,
                            format!(
                                "a loop jumps back, but `{}` does not come before it",
                                jump.target
                            ),
                        )
                        .with_help("point `to` at the first step of the part to repeat"),
                    ),
                    Some(&j) => edges[i].push((j, jump.is_loop, jump.path.clone())),
                    None if by_id.contains_key(jump.target) => out.push(
                        at.error(
                            Code::InvalidReference,
                            &jump.path,
                            format!(
                                "step `{}` is in another branch; jumps stay within their own step list",
                                jump.target
                            ),
                        )
                        .with_help("move the step, or end this branch with `next: end`"),
                    ),
                    None => out.push(
                        at.error(
                            Code::UnknownStep,
                            &jump.path,
                            format!("no step `{}` in this workflow", jump.target),
                        )
                        .maybe_help(
                            did_you_mean(jump.target, local.keys().copied())
                                .or_else(|| Some("use `end` to finish the branch".into())),
                        ),
                    ),
                }
            }
        }

        // Reachability from the first step of the list.
        let mut seen = vec![false; members.len()];
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            if i >= members.len() || seen[i] {
                continue;
            }
            seen[i] = true;
            stack.extend(edges[i].iter().map(|(j, _, _)| *j));
        }
        for (i, s) in members.iter().enumerate() {
            if !seen[i] {
                out.push(
                    at.error(
                        Code::UnreachableStep,
                        &join(&s.path, [Seg::from("id")]),
                        format!("step `{}` can never run", s.step.id),
                    )
                    .with_help("no step falls through or jumps to it; jump to it, or remove it"),
                );
            }
        }

        // Cycles not broken by a loop step: a DFS over non-loop edges.
        let mut state = vec![0u8; members.len()];
        for start in 0..members.len() {
            cycle_dfs(start, &edges, &mut state, members, at, out);
        }
    }
}

fn cycle_dfs(
    node: usize,
    edges: &[Vec<(usize, bool, Vec<Seg>)>],
    state: &mut [u8],
    members: &[&StepRef],
    at: &Located,
    out: &mut Vec<Diagnostic>,
) {
    // Iterative, so a long chain of steps cannot overflow the stack.
    if state[node] != 0 {
        return;
    }
    let mut stack: Vec<(usize, usize)> = vec![(node, 0)];
    state[node] = 1;
    while let Some((n, next_edge)) = stack.pop() {
        if let Some((target, is_loop, path)) = edges[n].get(next_edge) {
            stack.push((n, next_edge + 1));
            if *is_loop {
                continue;
            }
            match state[*target] {
                0 => {
                    state[*target] = 1;
                    stack.push((*target, 0));
                }
                1 => out.push(
                    at.error(
                        Code::IllegalCycle,
                        path,
                        format!(
                            "this jump back to `{}` makes a cycle without a loop step",
                            members[*target].step.id
                        ),
                    )
                    .with_help(
                        "repeat steps with a `loop` step (`to:` and `max_iterations:`), which bounds the cycle",
                    ),
                ),
                _ => {}
            }
        } else {
            state[n] = 2;
        }
    }
}
