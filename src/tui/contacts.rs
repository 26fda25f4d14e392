//! The contacts view: a segment sidebar with counts that fill in in the
//! background, a list paged by keyset (a page never reads the rows before it,
//! the end is one reverse query), search as you type, filters, a detail pane,
//! marks for bulk changes, and the edits a marketer makes on one contact.

use std::collections::{BTreeMap, BTreeSet};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::widgets::TableState;

use super::app::{Action, Ask};
use super::counts::Counter;
use crate::crm::directory::{Cursor, Summary};
use crate::desk::{Change, ContactDetail, Info, Result, Source, SourceError};
use crate::model::contacts::Condition;
use crate::model::scalar::Ident;

/// Ranked search results kept at most.
const SEARCH_LIMIT: usize = 200;
/// From this width the detail pane sits beside the list.
pub const WIDE: u16 = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Segments,
    List,
    Detail,
}

/// One line of the sidebar: all contacts, or a segment, with its count once known.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEntry {
    pub id: Option<String>,
    pub count: Option<std::result::Result<u64, String>>,
}

impl SegmentEntry {
    fn key(&self) -> String {
        match &self.id {
            Some(id) => format!("segment:{id}"),
            None => "all".into(),
        }
    }

    pub fn label(&self) -> &str {
        self.id.as_deref().unwrap_or("all contacts")
    }
}

#[derive(Debug)]
pub struct Contacts {
    pub pane: Pane,
    pub segments: Vec<SegmentEntry>,
    pub segment: usize,
    pub segment_cursor: usize,
    pub filter_text: String,
    filter: Option<Condition>,
    /// How many contacts the current filter matches, once counted.
    pub matching: Option<u64>,
    /// Bumped at each change of filter: a count of an older one is dropped.
    generation: u64,
    /// The filter changed and its count was not asked for yet.
    pub needs_count: bool,
    /// Non-empty: the list shows ranked search results.
    pub query: String,
    pub rows: Vec<Summary>,
    pub table: TableState,
    /// The list's rows on screen: the size of a page.
    pub page: usize,
    pub marked: BTreeSet<i64>,
    pub detail: Option<ContactDetail>,
    pub detail_open: bool,
    pub detail_scroll: u16,
    pub wide: bool,
    pub pipelines: Vec<String>,
    /// The page starts at the newest contact: a re-read shows new arrivals.
    first_is_newest: bool,
    /// The duplicates queue, when open.
    pub dupes: Option<super::dupes::Dupes>,
}

impl Contacts {
    pub fn new(info: &Info) -> Contacts {
        let mut segments = vec![SegmentEntry {
            id: None,
            count: None,
        }];
        segments.extend(info.segments.iter().map(|s| SegmentEntry {
            id: Some(s.clone()),
            count: None,
        }));
        Contacts {
            pane: Pane::List,
            segments,
            segment: 0,
            segment_cursor: 0,
            filter_text: String::new(),
            filter: None,
            matching: None,
            generation: 0,
            needs_count: false,
            query: String::new(),
            rows: Vec::new(),
            table: TableState::default(),
            page: 20,
            marked: BTreeSet::new(),
            detail: None,
            detail_open: false,
            detail_scroll: 0,
            wide: false,
            pipelines: info.pipelines.iter().map(|p| p.id.clone()).collect(),
            first_is_newest: true,
            dupes: None,
        }
    }

    /// Fits the page to the screen; whether the page size changed.
    pub fn resize(&mut self, width: u16, height: u16) -> bool {
        self.wide = width >= WIDE;
        // Header, footer, the list's borders and its header row.
        let page = usize::from(height.saturating_sub(5)).max(1);
        let changed = page != self.page;
        self.page = page;
        changed
    }

    /// Counts of every segment and of the current filter, in the background.
    pub fn request_counts(&self, counter: &mut Counter) {
        for s in &self.segments {
            let filter =
                s.id.as_ref()
                    .map(|id| Condition::Segment(Ident(id.clone())));
            counter.request(s.key(), filter);
        }
        counter.request(format!("filter:{}", self.generation), self.filter.clone());
    }

    /// The current filter's count alone (after the filter changed).
    pub fn request_filter_count(&mut self, counter: &mut Counter) {
        self.needs_count = false;
        counter.request(format!("filter:{}", self.generation), self.filter.clone());
    }

    pub fn set_count(&mut self, key: &str, result: Result<u64>) {
        if let Some(generation) = key.strip_prefix("filter:") {
            if generation == self.generation.to_string() {
                self.matching = result.ok();
            }
            return;
        }
        if let Some(s) = self.segments.iter_mut().find(|s| s.key() == key) {
            s.count = Some(result.map_err(|e| e.message));
        }
    }

    pub fn selected(&self) -> Option<&Summary> {
        self.table.selected().and_then(|i| self.rows.get(i))
    }

    /// The first page of the current filter (or the search results).
    pub fn load(&mut self, source: &dyn Source) -> Result<()> {
        if !self.query.is_empty() {
            let q = self.query.clone();
            return self.search(source, &q);
        }
        let rows = source.contacts(self.filter.as_ref(), Cursor::First, self.page)?;
        self.first_is_newest = true;
        self.set_rows(rows, 0);
        self.load_detail(source)
    }

    /// The page on screen re-read from its first row, selection kept.
    pub fn refresh(&mut self, source: &dyn Source) -> Result<()> {
        if !self.query.is_empty() {
            let keep = self.table.selected().unwrap_or(0);
            let id = self.selected().map(|s| s.id);
            let rows = source.search(&self.query, SEARCH_LIMIT)?;
            // The selection follows its contact, wherever the ranking puts it.
            let at = id
                .and_then(|id| rows.iter().position(|r| r.id == id))
                .unwrap_or(keep);
            self.set_rows(rows, at);
            return self.load_detail(source);
        }
        let at_top = self.table.offset() == 0 && self.first_is_newest;
        let cursor = match self.rows.first() {
            Some(first) if !at_top => Cursor::AtOrBelow(first.id),
            _ => Cursor::First,
        };
        let keep = self.table.selected().unwrap_or(0);
        let id = self.selected().map(|s| s.id);
        let rows = source.contacts(self.filter.as_ref(), cursor, self.page)?;
        // The selection follows its contact when new ones arrive above it.
        let at = id
            .and_then(|id| rows.iter().position(|r| r.id == id))
            .unwrap_or(keep);
        self.set_rows(rows, at);
        self.load_detail(source)
    }

    fn set_rows(&mut self, rows: Vec<Summary>, selected: usize) {
        self.rows = rows;
        if self.rows.is_empty() {
            self.table.select(None);
        } else {
            self.table.select(Some(selected.min(self.rows.len() - 1)));
        }
    }

    fn load_detail(&mut self, source: &dyn Source) -> Result<()> {
        let id = self.selected().map(|s| s.id);
        if !(self.wide || self.detail_open) {
            self.detail = None;
            return Ok(());
        }
        let changed = self.detail.as_ref().map(|d| d.summary.id) != id;
        self.detail = match id {
            Some(id) => Some(source.contact(id)?),
            None => None,
        };
        if changed {
            self.detail_scroll = 0;
        }
        Ok(())
    }

    /// Shows the contacts matching `query` (every word a prefix), or the list
    /// again for an empty one.
    pub fn search(&mut self, source: &dyn Source, query: &str) -> Result<()> {
        self.query = query.trim().to_string();
        if self.query.is_empty() {
            let rows = source.contacts(self.filter.as_ref(), Cursor::First, self.page)?;
            self.first_is_newest = true;
            self.set_rows(rows, 0);
        } else {
            let rows = source.search(&self.query, SEARCH_LIMIT)?;
            self.set_rows(rows, 0);
        }
        *self.table.offset_mut() = 0;
        self.load_detail(source)
    }

    /// Shows one contact (found by its email) with its detail open.
    pub fn open(&mut self, source: &dyn Source, email: &str) -> Result<()> {
        self.search(source, email)?;
        match self.rows.iter().position(|r| r.email == email) {
            Some(at) => self.table.select(Some(at)),
            None => {
                // Not among the ranked matches (a common address): by its
                // address exactly.
                let exact = Condition::Field(crate::model::contacts::FieldCondition {
                    name: "email".into(),
                    eq: Some(serde_json::Value::String(email.to_string())),
                    ..Default::default()
                });
                let rows = source.contacts(Some(&exact), Cursor::First, 1)?;
                if rows.is_empty() {
                    return Err(SourceError::new(format!("no contact {email}")));
                }
                self.set_rows(rows, 0);
            }
        }
        self.detail_open = !self.wide;
        self.pane = Pane::Detail;
        self.load_detail(source)
    }

    fn move_by(&mut self, source: &dyn Source, down: bool, n: usize) -> Result<()> {
        let Some(at) = self.table.selected() else {
            return Ok(());
        };
        if !self.query.is_empty() {
            let to = if down {
                (at + n).min(self.rows.len().saturating_sub(1))
            } else {
                at.saturating_sub(n)
            };
            self.table.select(Some(to));
            return self.load_detail(source);
        }
        if down {
            if at + n < self.rows.len() {
                self.table.select(Some(at + n));
            } else if let Some(last) = self.rows.last() {
                // Past the page: the next rows by keyset, the oldest dropped.
                let more = source.contacts(self.filter.as_ref(), Cursor::Below(last.id), n)?;
                let got = more.len();
                if got == 0 {
                    self.table.select(Some(self.rows.len() - 1));
                } else {
                    self.rows.extend(more);
                    let drop = self.rows.len().saturating_sub(self.page);
                    self.rows.drain(..drop);
                    self.first_is_newest = false;
                    self.table
                        .select(Some((at + n).saturating_sub(drop).min(self.rows.len() - 1)));
                }
            }
        } else if at >= n {
            self.table.select(Some(at - n));
        } else if let Some(first) = self.rows.first() {
            let more = source.contacts(self.filter.as_ref(), Cursor::Above(first.id), n)?;
            let got = more.len();
            // Fewer than asked for: the page now starts at the newest.
            if got < n {
                self.first_is_newest = true;
            }
            if got == 0 {
                self.first_is_newest = true;
                self.table.select(Some(0));
            } else {
                let mut rows = more;
                rows.append(&mut self.rows);
                rows.truncate(self.page);
                self.rows = rows;
                self.table.select(Some((at + got).saturating_sub(n)));
            }
        }
        *self.table.offset_mut() = 0;
        self.load_detail(source)
    }

    fn jump(&mut self, source: &dyn Source, end: bool) -> Result<()> {
        if !self.query.is_empty() {
            let to = if end {
                self.rows.len().saturating_sub(1)
            } else {
                0
            };
            self.table.select(Some(to));
            return self.load_detail(source);
        }
        let cursor = if end { Cursor::Last } else { Cursor::First };
        let rows = source.contacts(self.filter.as_ref(), cursor, self.page)?;
        let at = if end { rows.len().saturating_sub(1) } else { 0 };
        self.first_is_newest = !end;
        self.set_rows(rows, at);
        *self.table.offset_mut() = 0;
        self.load_detail(source)
    }

    fn apply_filter(&mut self, source: &dyn Source) -> Result<()> {
        let typed = crate::crm::filter::parse(&self.filter_text)
            .map_err(|e| SourceError::new(format!("filter {e}")))?;
        let segment = self.segments[self.segment]
            .id
            .as_ref()
            .map(|id| Condition::Segment(Ident(id.clone())));
        self.filter = match (segment, typed) {
            (None, t) => t,
            (Some(s), None) => Some(s),
            (Some(s), Some(t)) => Some(Condition::All(vec![s, t])),
        };
        self.matching = None;
        self.generation += 1;
        self.needs_count = true;
        self.first_is_newest = true;
        self.marked.clear();
        self.load(source)
    }

    pub fn key(&mut self, source: &dyn Source, key: KeyEvent) -> Action {
        match self.key_inner(source, key) {
            Ok(a) => a,
            Err(e) => Action::Error(e.to_string()),
        }
    }

    fn key_inner(&mut self, source: &dyn Source, key: KeyEvent) -> Result<Action> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if let Some(d) = &mut self.dupes {
            if matches!(key.code, KeyCode::Esc | KeyCode::Char('q')) {
                self.dupes = None;
                return Ok(Action::None);
            }
            return Ok(d.key(key));
        }
        match key.code {
            KeyCode::Tab => {
                self.pane = match self.pane {
                    Pane::Segments => Pane::List,
                    Pane::List if self.wide || self.detail_open => Pane::Detail,
                    Pane::List | Pane::Detail => Pane::Segments,
                };
                if self.pane == Pane::Segments {
                    self.detail_open = false;
                }
                return Ok(Action::None);
            }
            KeyCode::BackTab => {
                self.pane = match self.pane {
                    Pane::Segments if self.wide => Pane::Detail,
                    Pane::Segments | Pane::Detail => Pane::List,
                    Pane::List => Pane::Segments,
                };
                return Ok(Action::None);
            }
            KeyCode::Char('/') => return Ok(Action::Prompt(Ask::Search, self.query.clone())),
            KeyCode::Char('f') => return Ok(Action::Prompt(Ask::Filter, self.filter_text.clone())),
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('h') | KeyCode::Left
                if self.detail_open =>
            {
                self.detail_open = false;
                self.pane = Pane::List;
                return Ok(Action::None);
            }
            KeyCode::Esc if !self.query.is_empty() => {
                self.search(source, "")?;
                return Ok(Action::Info("search cleared".into()));
            }
            KeyCode::Esc if !self.marked.is_empty() => {
                self.marked.clear();
                return Ok(Action::Info("marks cleared".into()));
            }
            KeyCode::Esc if !self.filter_text.is_empty() || self.segment != 0 => {
                self.filter_text.clear();
                self.segment = 0;
                self.apply_filter(source)?;
                return Ok(Action::Info("filter cleared".into()));
            }
            _ => {}
        }
        match self.pane {
            Pane::Segments => self.segments_key(source, key),
            Pane::Detail => {
                match key.code {
                    KeyCode::Down | KeyCode::Char('j') => {
                        self.detail_scroll = self.detail_scroll.saturating_add(1)
                    }
                    KeyCode::Up | KeyCode::Char('k') => {
                        self.detail_scroll = self.detail_scroll.saturating_sub(1)
                    }
                    KeyCode::PageDown => self.detail_scroll = self.detail_scroll.saturating_add(10),
                    KeyCode::PageUp => self.detail_scroll = self.detail_scroll.saturating_sub(10),
                    KeyCode::Char('g') | KeyCode::Home => self.detail_scroll = 0,
                    _ => return self.contact_key(key),
                }
                Ok(Action::None)
            }
            Pane::List => {
                let page = self.page.max(1);
                match key.code {
                    KeyCode::Down | KeyCode::Char('j') => self.move_by(source, true, 1)?,
                    KeyCode::Up | KeyCode::Char('k') => self.move_by(source, false, 1)?,
                    KeyCode::PageDown => self.move_by(source, true, page)?,
                    KeyCode::PageUp => self.move_by(source, false, page)?,
                    KeyCode::Char('d') if ctrl => self.move_by(source, true, page / 2)?,
                    KeyCode::Char('u') if ctrl => self.move_by(source, false, page / 2)?,
                    KeyCode::Home | KeyCode::Char('g') => self.jump(source, false)?,
                    KeyCode::End | KeyCode::Char('G') => self.jump(source, true)?,
                    KeyCode::Enter | KeyCode::Char('l') | KeyCode::Right => {
                        if self.selected().is_some() {
                            self.detail_open = !self.wide;
                            self.pane = Pane::Detail;
                            self.load_detail(source)?;
                        }
                    }
                    KeyCode::Char(' ') => {
                        if let Some(id) = self.selected().map(|s| s.id) {
                            if !self.marked.remove(&id) {
                                self.marked.insert(id);
                            }
                            self.move_by(source, true, 1)?;
                        }
                    }
                    KeyCode::Char('D') => return Ok(Action::OpenDuplicates),
                    KeyCode::Char('A') => {
                        if self.filter_text.is_empty() && self.segment == 0 {
                            return Ok(Action::Error(
                                "choose a segment or a filter (f) first, then press A to change all of it"
                                    .into(),
                            ));
                        }
                        return Ok(Action::Prompt(Ask::BulkFilter, String::new()));
                    }
                    KeyCode::Char('a') => {
                        if self.marked.is_empty() {
                            return Ok(Action::Error(
                                "mark contacts with Space first, then press a to change them"
                                    .into(),
                            ));
                        }
                        return Ok(Action::Prompt(Ask::Bulk, String::new()));
                    }
                    _ => return self.contact_key(key),
                }
                Ok(Action::None)
            }
        }
    }

    fn segments_key(&mut self, source: &dyn Source, key: KeyEvent) -> Result<Action> {
        let last = self.segments.len().saturating_sub(1);
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => {
                self.segment_cursor = (self.segment_cursor + 1).min(last)
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.segment_cursor = self.segment_cursor.saturating_sub(1)
            }
            KeyCode::Home | KeyCode::Char('g') => self.segment_cursor = 0,
            KeyCode::End | KeyCode::Char('G') => self.segment_cursor = last,
            KeyCode::Enter | KeyCode::Char('l') | KeyCode::Right => {
                self.segment = self.segment_cursor;
                self.query.clear();
                self.apply_filter(source)?;
                self.pane = Pane::List;
            }
            _ => {}
        }
        Ok(Action::None)
    }

    /// Keys that change the selected contact.
    fn contact_key(&mut self, key: KeyEvent) -> Result<Action> {
        if matches!(key.code, KeyCode::Char('X') | KeyCode::Char('E')) {
            let Some(s) = self.selected() else {
                return Ok(Action::Error("no contact selected".into()));
            };
            if key.code == KeyCode::Char('X') {
                return Ok(Action::Confirm(
                    format!(
                        "forget {} everywhere (activities, executions, emails) and suppress the address? This cannot be undone",
                        s.email
                    ),
                    Change::Forget { contact: s.id },
                ));
            }
            return Ok(Action::ExportData(s.id));
        }
        let ask = match key.code {
            KeyCode::Char('t') => Ask::AddTag,
            KeyCode::Char('T') => Ask::RemoveTag,
            KeyCode::Char('L') => Ask::AddToList,
            KeyCode::Char('R') => Ask::RemoveFromList,
            KeyCode::Char('e') => Ask::SetField,
            KeyCode::Char('s') => Ask::SetStage,
            _ => return Ok(Action::None),
        };
        if self.selected().is_none() {
            return Ok(Action::Error("no contact selected".into()));
        }
        Ok(Action::Prompt(ask, String::new()))
    }

    /// A prompt of this view answered.
    pub fn submit(
        &mut self,
        source: &dyn Source,
        counter: &mut Counter,
        ask: Ask,
        text: &str,
    ) -> Action {
        let text = text.trim();
        if ask == Ask::Filter {
            self.filter_text = text.to_string();
            self.query.clear();
            return match self.apply_filter(source) {
                Ok(()) => {
                    self.request_filter_count(counter);
                    Action::None
                }
                Err(e) => Action::Error(e.to_string()),
            };
        }
        if text.is_empty() {
            return Action::None;
        }
        if matches!(ask, Ask::Bulk | Ask::BulkFilter) {
            let action = match crate::crm::bulk::Action::parse(text) {
                Ok(a) => a,
                Err(e) => return Action::Error(e),
            };
            let what = action.describe();
            if ask == Ask::Bulk {
                let contacts: Vec<i64> = self.marked.iter().copied().collect();
                return Action::Confirm(
                    format!("{what} for {} marked contact(s)?", contacts.len()),
                    Change::Bulk { contacts, action },
                );
            }
            let segment = self.segments[self.segment].id.clone();
            let of = match (&segment, self.filter_text.is_empty()) {
                (Some(s), true) => format!("segment {s}"),
                (Some(s), false) => format!("segment {s} and `{}`", self.filter_text),
                (None, _) => format!("`{}`", self.filter_text),
            };
            let n = self
                .matching
                .map_or("every".to_string(), |n| format!("all {n}"));
            return Action::Confirm(
                format!("{what} for {n} contact(s) of {of}?"),
                Change::BulkFilter {
                    segment,
                    filter: self.filter_text.clone(),
                    action,
                },
            );
        }
        let Some(id) = self.selected().map(|s| s.id) else {
            return Action::Error("no contact selected".into());
        };
        let words = || -> Vec<String> {
            text.split([',', ' '])
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect()
        };
        let change = match ask {
            Ask::AddTag => Change::AddTags {
                contact: id,
                tags: words(),
            },
            Ask::RemoveTag => Change::RemoveTags {
                contact: id,
                tags: words(),
            },
            Ask::AddToList => Change::AddToList {
                contact: id,
                list: text.to_string(),
            },
            Ask::RemoveFromList => Change::RemoveFromList {
                contact: id,
                list: text.to_string(),
            },
            Ask::SetStage => Change::SetStage {
                contact: id,
                stage: text.to_string(),
            },
            Ask::SetField => {
                let Some((name, value)) = text.split_once('=') else {
                    return Action::Error("write the field as name=value".into());
                };
                let value = value.trim();
                let value = serde_json::from_str(value)
                    .ok()
                    .filter(|v: &serde_json::Value| !v.is_object() && !v.is_array())
                    .unwrap_or_else(|| serde_json::Value::String(value.to_string()));
                Change::SetField {
                    contact: id,
                    name: name.trim().to_string(),
                    value,
                }
            }
            _ => return Action::None,
        };
        Action::Apply(change)
    }

    /// Counts per segment key, for the sidebar (tests).
    pub fn counts(&self) -> BTreeMap<String, Option<u64>> {
        self.segments
            .iter()
            .map(|s| {
                (
                    s.label().to_string(),
                    s.count.as_ref().and_then(|c| c.as_ref().ok().copied()),
                )
            })
            .collect()
    }
}
