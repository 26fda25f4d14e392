//! A workflow as a node graph (the seed's `workflow_nodes`: id, type, config,
//! position, connections) for diagrams and visual editors, in JSON, Mermaid or DOT.
//! Positions come from the workflow's `ui.positions`, else from a deterministic
//! layout: lists go down, nested branches step to the right.

use serde::Serialize;
use serde_json::{Value as Json, json};

use super::program::Program;
use super::trigger_type;
use crate::model::step::{OnError, OnErrorHandler, StepKind};

/// The id of the trigger's node.
pub const TRIGGER: &str = "trigger";

const COLUMN: f64 = 280.0;
const ROW: f64 = 110.0;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Position {
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GraphNode {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub config: Json,
    pub position: Position,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Connection {
    pub from: String,
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Graph {
    pub workflow: String,
    pub name: String,
    pub nodes: Vec<GraphNode>,
    pub connections: Vec<Connection>,
}

/// The graph of a compiled workflow.
pub fn graph(p: &Program) -> Graph {
    let mut nodes = Vec::new();
    let mut connections = Vec::new();
    let ui = p.workflow.ui.as_ref().map(|u| &u.positions);
    let place = |id: &str, x: f64, y: f64| {
        ui.and_then(|u| u.get(id))
            .map_or(Position { x, y }, |pos| Position { x: pos.x, y: pos.y })
    };
    let mut trigger_config = serde_json::to_value(&p.workflow.trigger).unwrap_or(Json::Null);
    if let Some(obj) = trigger_config.as_object_mut() {
        obj.remove("type");
    }
    nodes.push(GraphNode {
        id: TRIGGER.into(),
        kind: trigger_type(&p.workflow.trigger.kind).into(),
        title: Some(p.workflow.name.clone()),
        config: trigger_config,
        position: place(TRIGGER, 0.0, 0.0),
    });
    // Positions: walk each list from its first node, nested lists to the right.
    let mut positions = vec![(0.0, 0.0); p.nodes.len()];
    lay_out(p, 0, 0.0, ROW, &mut positions);
    let id = |i: usize| p.nodes[i].step.id.to_string();
    let to = |next: Option<usize>| next.map_or_else(|| "end".to_string(), id);
    if let Some(first) = p.lists[0].first {
        connections.push(edge(TRIGGER, &id(first), None));
    }
    let mut uses_end = false;
    for (i, node) in p.nodes.iter().enumerate() {
        let step = &node.step;
        let mut config = serde_json::to_value(&step.kind).unwrap_or(Json::Null);
        if let Some(obj) = config.as_object_mut() {
            obj.remove("type");
            obj.remove("branches");
            obj.remove("steps");
        }
        let (x, y) = positions[i];
        nodes.push(GraphNode {
            id: id(i),
            kind: step.kind.type_name().into(),
            title: step.title.clone(),
            config,
            position: place(step.id.as_str(), x, y),
        });
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        let target = |name: &str| {
            p.target(i, name)
                .ok()
                .flatten()
                .map_or_else(|| "end".to_string(), id)
        };
        match &step.kind {
            StepKind::If {
                then, otherwise, ..
            } => {
                out.push((target(then.as_str()), Some("then".into())));
                let other = otherwise
                    .as_ref()
                    .map_or_else(|| to(node.next), |o| target(o.as_str()));
                out.push((other, Some("else".into())));
            }
            StepKind::Switch { cases, default } => {
                for (k, c) in cases.iter().enumerate() {
                    out.push((target(c.next.as_str()), Some(format!("case {}", k + 1))));
                }
                let d = default
                    .as_ref()
                    .map_or_else(|| to(node.next), |d| target(d.as_str()));
                out.push((d, Some("default".into())));
            }
            StepKind::Loop { to: back, .. } => {
                out.push((target(back.as_str()), Some("repeat".into())));
                out.push((to(node.next), Some("done".into())));
            }
            StepKind::WaitForEvent { on_timeout, .. } => {
                out.push((to(node.next), Some("event".into())));
                if let Some(t) = on_timeout {
                    out.push((target(t.as_str()), Some("timeout".into())));
                }
            }
            StepKind::Parallel { .. } => {
                for (name, list) in p.branches.get(&i).into_iter().flatten() {
                    if let Some(first) = p.lists[*list].first {
                        out.push((id(first), Some(name.clone())));
                    }
                }
                out.push((to(node.next), Some("joined".into())));
            }
            StepKind::ForEach { .. } => {
                if let Some(first) = p.bodies.get(&i).and_then(|l| p.lists[*l].first) {
                    out.push((id(first), Some("each".into())));
                }
                out.push((to(node.next), Some("done".into())));
            }
            StepKind::Stop {} | StepKind::Fail { .. } => {}
            _ => {
                // The last step of a nested list returns to its owner: no edge.
                if node.next.is_some() || node.list == 0 {
                    out.push((to(node.next), None));
                }
            }
        }
        if let Some(OnError::Handler(OnErrorHandler::Goto(t))) = &step.on_error {
            out.push((target(t.as_str()), Some("on error".into())));
        }
        for (dest, label) in out {
            uses_end |= dest == "end";
            connections.push(edge(&id(i), &dest, label));
        }
    }
    if uses_end {
        let bottom = positions.iter().map(|(_, y)| *y).fold(0.0, f64::max) + ROW;
        nodes.push(GraphNode {
            id: "end".into(),
            kind: "end".into(),
            title: None,
            config: json!({}),
            position: place("end", 0.0, bottom),
        });
    }
    Graph {
        workflow: p.id.clone(),
        name: p.workflow.name.clone(),
        nodes,
        connections,
    }
}

fn edge(from: &str, to: &str, label: Option<String>) -> Connection {
    Connection {
        from: from.to_string(),
        to: to.to_string(),
        label,
    }
}

/// Places the steps of `list` in a column at `x` from `y` down; returns the next
/// free row.
fn lay_out(p: &Program, list: usize, x: f64, mut y: f64, out: &mut [(f64, f64)]) -> f64 {
    let members: Vec<usize> = (0..p.nodes.len())
        .filter(|&i| p.nodes[i].list == list)
        .collect();
    for i in members {
        out[i] = (x, y);
        let mut bottom = y + ROW;
        if let Some(branches) = p.branches.get(&i) {
            for (k, (_, l)) in branches.iter().enumerate() {
                let end = lay_out(p, *l, x + COLUMN * (k as f64 + 1.0), y + ROW, out);
                bottom = bottom.max(end);
            }
        }
        if let Some(l) = p.bodies.get(&i) {
            bottom = bottom.max(lay_out(p, *l, x + COLUMN, y + ROW, out));
        }
        y = bottom;
    }
    y
}

fn label_text(n: &GraphNode) -> String {
    let title = n.title.as_deref().unwrap_or(&n.id);
    format!("{title}\n({})", n.kind)
}

/// Mermaid flowchart text.
pub fn mermaid(g: &Graph) -> String {
    let esc = |s: &str| s.replace('"', "#quot;").replace('\n', "<br/>");
    let mut out = String::from("flowchart TD\n");
    for n in &g.nodes {
        let text = esc(&label_text(n));
        let shape = match n.kind.as_str() {
            "if" | "switch" => format!("{{\"{text}\"}}"),
            "end" => "((\"end\"))".to_string(),
            _ if n.id == TRIGGER => format!("([\"{text}\"])"),
            _ => format!("[\"{text}\"]"),
        };
        out.push_str(&format!("    {}{shape}\n", mermaid_id(&n.id)));
    }
    for c in &g.connections {
        let label = c
            .label
            .as_ref()
            .map(|l| format!("|\"{}\"|", esc(l)))
            .unwrap_or_default();
        out.push_str(&format!(
            "    {} -->{label} {}\n",
            mermaid_id(&c.from),
            mermaid_id(&c.to)
        ));
    }
    out
}

/// Mermaid ids may not contain `-`; step ids may.
fn mermaid_id(id: &str) -> String {
    format!("n_{}", id.replace('-', "_"))
}

/// Graphviz DOT text.
pub fn dot(g: &Graph) -> String {
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut out = format!("digraph \"{}\" {{\n    rankdir=TB;\n", esc(&g.workflow));
    for n in &g.nodes {
        let shape = match n.kind.as_str() {
            "if" | "switch" => "diamond",
            "end" => "doublecircle",
            _ if n.id == TRIGGER => "oval",
            _ => "box",
        };
        out.push_str(&format!(
            "    \"{}\" [label=\"{}\", shape={shape}];\n",
            esc(&n.id),
            esc(&label_text(n))
        ));
    }
    for c in &g.connections {
        let label = c
            .label
            .as_ref()
            .map(|l| format!(" [label=\"{}\"]", esc(l)))
            .unwrap_or_default();
        out.push_str(&format!(
            "    \"{}\" -> \"{}\"{label};\n",
            esc(&c.from),
            esc(&c.to)
        ));
    }
    out.push_str("}\n");
    out
}
