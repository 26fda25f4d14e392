//! The executions view: running, waiting and failed executions per workflow,
//! the newest first; an execution's step timeline with its inputs, outputs and
//! errors; retry and cancel, each confirmed first.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::app::Action;
use crate::desk::{Change, Result, Source, WorkflowCounts};
use crate::engine::manage::{ExecutionDetail, ExecutionRow};

/// The status filter, cycled with `f`.
pub const STATUSES: [Option<&str>; 5] = [
    None,
    Some("running"),
    Some("waiting"),
    Some("failed"),
    Some("completed"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pane {
    Workflows,
    #[default]
    List,
}

#[derive(Debug, Default)]
pub struct Executions {
    pub pane: Pane,
    /// Index 0 is every workflow.
    pub workflows: Vec<WorkflowCounts>,
    pub workflow: usize,
    pub status: usize,
    pub rows: Vec<ExecutionRow>,
    pub selected: usize,
    pub detail: Option<ExecutionDetail>,
    pub detail_scroll: u16,
}

impl Executions {
    pub fn workflow_filter(&self) -> Option<&str> {
        match self.workflow {
            0 => None,
            i => self.workflows.get(i).map(|w| w.workflow.as_str()),
        }
    }

    pub fn load(&mut self, source: &dyn Source) -> Result<()> {
        let mut all = WorkflowCounts {
            workflow: "all workflows".into(),
            ..WorkflowCounts::default()
        };
        let per = source.workflow_counts()?;
        for w in &per {
            all.running += w.running;
            all.waiting += w.waiting;
            all.failed += w.failed;
            all.completed += w.completed;
        }
        self.workflows = std::iter::once(all).chain(per).collect();
        self.workflow = self.workflow.min(self.workflows.len().saturating_sub(1));
        let wf = self.workflow_filter().map(String::from);
        self.rows = source.executions(wf.as_deref(), STATUSES[self.status])?;
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        if let Some(uid) = self.detail.as_ref().map(|d| d.execution.id.clone()) {
            self.detail = Some(source.execution(&uid)?);
        }
        Ok(())
    }

    pub fn key(&mut self, source: &dyn Source, key: KeyEvent) -> Action {
        match self.key_inner(source, key) {
            Ok(a) => a,
            Err(e) => Action::Error(e.to_string()),
        }
    }

    fn key_inner(&mut self, source: &dyn Source, key: KeyEvent) -> Result<Action> {
        if self.detail.is_some() {
            match key.code {
                KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('h') | KeyCode::Left => {
                    self.detail = None
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    self.detail_scroll = self.detail_scroll.saturating_add(1)
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    self.detail_scroll = self.detail_scroll.saturating_sub(1)
                }
                KeyCode::Char('r') | KeyCode::Char('c') => return Ok(self.manage(key.code)),
                _ => {}
            }
            return Ok(Action::None);
        }
        match key.code {
            KeyCode::Tab | KeyCode::BackTab => {
                self.pane = match self.pane {
                    Pane::Workflows => Pane::List,
                    Pane::List => Pane::Workflows,
                }
            }
            KeyCode::Char('f') => {
                self.status = (self.status + 1) % STATUSES.len();
                self.selected = 0;
                self.load(source)?;
            }
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Up | KeyCode::Char('k') => {
                let down = matches!(key.code, KeyCode::Down | KeyCode::Char('j'));
                match self.pane {
                    Pane::Workflows => {
                        let last = self.workflows.len().saturating_sub(1);
                        self.workflow = if down {
                            (self.workflow + 1).min(last)
                        } else {
                            self.workflow.saturating_sub(1)
                        };
                        self.selected = 0;
                        self.load(source)?;
                    }
                    Pane::List => {
                        let last = self.rows.len().saturating_sub(1);
                        self.selected = if down {
                            (self.selected + 1).min(last)
                        } else {
                            self.selected.saturating_sub(1)
                        };
                    }
                }
            }
            KeyCode::Enter | KeyCode::Char('l') | KeyCode::Right => {
                if self.pane == Pane::Workflows {
                    self.pane = Pane::List;
                } else if let Some(r) = self.rows.get(self.selected) {
                    self.detail = Some(source.execution(&r.id)?);
                    self.detail_scroll = 0;
                }
            }
            KeyCode::Char('r') | KeyCode::Char('c') => return Ok(self.manage(key.code)),
            _ => {}
        }
        Ok(Action::None)
    }

    fn manage(&self, code: KeyCode) -> Action {
        let row = match &self.detail {
            Some(d) => Some((&d.execution.id, &d.execution.workflow)),
            None => self.rows.get(self.selected).map(|r| (&r.id, &r.workflow)),
        };
        let Some((uid, workflow)) = row else {
            return Action::Error("no execution selected".into());
        };
        if code == KeyCode::Char('r') {
            Action::Confirm(
                format!("retry the {workflow} execution {uid} from its failed step?"),
                Change::RetryExecution { uid: uid.clone() },
            )
        } else {
            Action::Confirm(
                format!("cancel the {workflow} execution {uid}?"),
                Change::CancelExecution { uid: uid.clone() },
            )
        }
    }
}
