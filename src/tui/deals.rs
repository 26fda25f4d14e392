//! The deals view: each pipeline as a board of stage columns; a deal moves a
//! stage left or right with a key, as `funnel deals move` moves it.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::app::Action;
use crate::crm::deal::DealRow;
use crate::desk::{Change, DealColumn, Pipeline, Result, Source};

#[derive(Debug, Default)]
pub struct Deals {
    pub pipelines: Vec<Pipeline>,
    pub pipeline: usize,
    pub columns: Vec<DealColumn>,
    pub column: usize,
    pub card: Vec<usize>,
    /// The deal just moved: the board follows it to its new column.
    follow: Option<i64>,
}

impl Deals {
    pub fn current(&self) -> Option<&Pipeline> {
        self.pipelines.get(self.pipeline)
    }

    pub fn load(&mut self, source: &dyn Source) -> Result<()> {
        self.pipelines = source.info().pipelines.clone();
        let Some(p) = self.pipelines.get(self.pipeline).cloned() else {
            self.columns.clear();
            return Ok(());
        };
        let columns = source.board(&p.id)?;
        self.card.resize(columns.len(), 0);
        for (i, col) in columns.iter().enumerate() {
            self.card[i] = self.card[i].min(col.deals.len().saturating_sub(1));
        }
        if let Some(id) = self.follow.take() {
            for (i, col) in columns.iter().enumerate() {
                if let Some(at) = col.deals.iter().position(|d| d.id == id) {
                    self.column = i;
                    self.card[i] = at;
                }
            }
        }
        self.column = self.column.min(columns.len().saturating_sub(1));
        self.columns = columns;
        Ok(())
    }

    pub fn selected(&self) -> Option<&DealRow> {
        let col = self.columns.get(self.column)?;
        col.deals.get(*self.card.get(self.column)?)
    }

    pub fn key(&mut self, source: &dyn Source, key: KeyEvent) -> Action {
        let n = self.columns.len();
        match key.code {
            KeyCode::Left | KeyCode::Char('h') | KeyCode::BackTab => {
                self.column = self.column.saturating_sub(1)
            }
            KeyCode::Right | KeyCode::Char('l') | KeyCode::Tab => {
                self.column = (self.column + 1).min(n.saturating_sub(1))
            }
            KeyCode::Down | KeyCode::Char('j') => {
                if let (Some(c), Some(col)) = (
                    self.card.get_mut(self.column),
                    self.columns.get(self.column),
                ) {
                    *c = (*c + 1).min(col.deals.len().saturating_sub(1));
                }
            }
            KeyCode::Up | KeyCode::Char('k') => {
                if let Some(c) = self.card.get_mut(self.column) {
                    *c = c.saturating_sub(1);
                }
            }
            KeyCode::Char(']') | KeyCode::Char('[') => {
                let len = self.pipelines.len().max(1);
                self.pipeline = if key.code == KeyCode::Char(']') {
                    (self.pipeline + 1) % len
                } else {
                    (self.pipeline + len - 1) % len
                };
                self.column = 0;
                self.card.clear();
                if let Err(e) = self.load(source) {
                    return Action::Error(e.to_string());
                }
            }
            KeyCode::Char('H') | KeyCode::Char('<') | KeyCode::Char('L') | KeyCode::Char('>') => {
                let forward = matches!(key.code, KeyCode::Char('L') | KeyCode::Char('>'));
                return self.move_selected(forward);
            }
            KeyCode::Enter => {
                if let Some(d) = self.selected() {
                    return Action::OpenContact(d.contact.clone());
                }
            }
            _ => {}
        }
        Action::None
    }

    fn move_selected(&mut self, forward: bool) -> Action {
        let (Some(deal), Some(p)) = (self.selected(), self.current()) else {
            return Action::Error("no deal selected".into());
        };
        let to = if forward {
            self.column + 1
        } else {
            match self.column.checked_sub(1) {
                Some(c) => c,
                None => return Action::Error("the deal is in the first stage".into()),
            }
        };
        let Some(stage) = p.stages.get(to) else {
            return Action::Error("the deal is in the last stage".into());
        };
        let change = Change::MoveDeal {
            deal: deal.id,
            pipeline: p.id.clone(),
            stage: stage.id.clone(),
        };
        self.follow = Some(deal.id);
        Action::Apply(change)
    }
}
