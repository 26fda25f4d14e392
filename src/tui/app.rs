//! The TUI's state and its input handling, with no terminal: keys, mouse and
//! ticks change an [`App`]; [`App::render`] draws it into any ratatui frame.
//! That split is what lets the tests drive every screen with keys and snapshot
//! it from a `TestBackend`.

use std::sync::Arc;

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};

use super::counts::Counter;
use super::theme::Theme;
use super::{campaigns, contacts, dashboard, deals, executions};
use crate::desk::{Change, Source};

/// The views, in the order of the tab bar and of the keys `1`–`5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewId {
    Contacts,
    Deals,
    Campaigns,
    Executions,
    Dashboard,
}

impl ViewId {
    pub const ALL: [ViewId; 5] = [
        ViewId::Contacts,
        ViewId::Deals,
        ViewId::Campaigns,
        ViewId::Executions,
        ViewId::Dashboard,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ViewId::Contacts => "contacts",
            ViewId::Deals => "deals",
            ViewId::Campaigns => "campaigns",
            ViewId::Executions => "executions",
            ViewId::Dashboard => "dashboard",
        }
    }

    /// A view named in full or by a prefix (`:exec`).
    pub fn parse(name: &str) -> Option<ViewId> {
        let name = name.trim().to_lowercase();
        if name.is_empty() {
            return None;
        }
        ViewId::ALL
            .into_iter()
            .find(|v| v.name().starts_with(&name))
    }
}

/// What a prompt at the bottom line is asking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Search,
    Filter,
    Command,
    AddTag,
    RemoveTag,
    AddToList,
    RemoveFromList,
    SetField,
    SetStage,
    Bulk,
    BulkFilter,
}

impl Ask {
    pub fn label(self) -> &'static str {
        match self {
            Ask::Search => "/",
            Ask::Filter => "filter: ",
            Ask::Command => ":",
            Ask::AddTag => "add tag: ",
            Ask::RemoveTag => "remove tag: ",
            Ask::AddToList => "add to list: ",
            Ask::RemoveFromList => "remove from list: ",
            Ask::SetField => "set field (name=value): ",
            Ask::SetStage => "set stage: ",
            Ask::Bulk => "change the marked (tag X, untag X, list L, unlist L, field n=v): ",
            Ask::BulkFilter => "change all of the filter (tag X, list L, field n=v …): ",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    Prompt { ask: Ask, text: String },
    Confirm { question: String, change: Change },
}

/// What a view asks the app to do after a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    None,
    Prompt(Ask, String),
    Confirm(String, Change),
    Apply(Change),
    Error(String),
    Info(String),
    /// Show this contact (by email) in the contacts view.
    OpenContact(String),
    /// Open the duplicates queue (found in the background).
    OpenDuplicates,
    /// Write everything held about this contact to a JSON file.
    ExportData(i64),
}

/// A line for the person at the keyboard, until the next key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub error: bool,
}

/// The whole TUI.
pub struct App {
    pub source: Arc<dyn Source>,
    pub theme: Theme,
    pub view: ViewId,
    pub mode: Mode,
    pub help: bool,
    pub message: Option<Message>,
    pub quit: bool,
    pub size: (u16, u16),
    pub contacts: contacts::Contacts,
    pub deals: deals::Deals,
    pub campaigns: campaigns::Campaigns,
    pub executions: executions::Executions,
    pub dashboard: dashboard::Dashboard,
    pub counter: Counter,
    /// Where `E` writes a person's data (the workspace's `.funnel/exports/`).
    pub export_dir: std::path::PathBuf,
    ticks: u64,
    next_refresh: u64,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("view", &self.view)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Ticks between reloads of the open view (a tick is 250 ms in the terminal).
const REFRESH_TICKS: u64 = 2;
/// Ticks between reloads of the views whose reads cost the store's size.
const SLOW_REFRESH_TICKS: u64 = 60;
/// Ticks between recounts of the segments.
const RECOUNT_TICKS: u64 = 120;

impl App {
    /// The app on its first screen, the contacts, sized `width`×`height`. The
    /// segment counts start in the background; the first page does not wait.
    pub fn new(source: Arc<dyn Source>, theme: Theme, width: u16, height: u16) -> App {
        let counter = Counter::start(source.clone());
        let mut app = App {
            contacts: contacts::Contacts::new(source.info()),
            deals: deals::Deals::default(),
            campaigns: campaigns::Campaigns::default(),
            executions: executions::Executions::default(),
            dashboard: dashboard::Dashboard::default(),
            source,
            theme,
            view: ViewId::Contacts,
            mode: Mode::Normal,
            help: false,
            message: None,
            quit: false,
            size: (width, height),
            counter,
            export_dir: std::path::PathBuf::from("."),
            ticks: 0,
            next_refresh: REFRESH_TICKS,
        };
        app.contacts.resize(width, height);
        app.contacts.request_counts(&mut app.counter);
        app.load();
        app
    }

    /// Loads the open view's data afresh.
    pub fn load(&mut self) {
        let source = self.source.clone();
        let result = match self.view {
            ViewId::Contacts => self.contacts.load(&*source),
            ViewId::Deals => self.deals.load(&*source),
            ViewId::Campaigns => {
                self.campaigns.load(source.clone());
                Ok(())
            }
            ViewId::Executions => self.executions.load(&*source),
            ViewId::Dashboard => {
                self.dashboard.load(source);
                Ok(())
            }
        };
        if let Err(e) = result {
            self.set_error(e.to_string());
        }
    }

    /// Re-reads what is on screen in place (another process may have changed
    /// it), without moving the selection.
    pub fn refresh(&mut self) {
        let source = self.source.clone();
        let result = match self.view {
            ViewId::Contacts => self.contacts.refresh(&*source),
            ViewId::Deals | ViewId::Executions if self.ticks.is_multiple_of(2 * REFRESH_TICKS) => {
                self.load();
                Ok(())
            }
            ViewId::Deals | ViewId::Executions => Ok(()),
            // A plan counts its audience; the dashboard counts the store.
            ViewId::Campaigns | ViewId::Dashboard
                if self.ticks.is_multiple_of(SLOW_REFRESH_TICKS) =>
            {
                self.load();
                Ok(())
            }
            ViewId::Campaigns | ViewId::Dashboard => Ok(()),
        };
        if let Err(e) = result {
            self.set_error(e.to_string());
        }
    }

    /// Every 250 ms: what the background finished is shown; the open view is
    /// re-read every half second (campaigns and the dashboard every 15 s), the
    /// segments recounted every half minute.
    pub fn tick(&mut self) {
        self.ticks += 1;
        self.take_counts();
        // Recounts only once the last ones are in: slow counts never pile up.
        if self.ticks.is_multiple_of(RECOUNT_TICKS) && self.counter.is_idle() {
            self.contacts.request_counts(&mut self.counter);
        }
        if self.ticks >= self.next_refresh && matches!(self.mode, Mode::Normal) {
            let started = std::time::Instant::now();
            self.refresh();
            // A re-read that costs more than a tenth of its interval (a sparse
            // filter on a large store) is done less often.
            let cost = started.elapsed().as_millis();
            let every = (u64::try_from(cost).unwrap_or(u64::MAX) / 25).max(REFRESH_TICKS);
            self.next_refresh = self.ticks + every;
        }
    }

    /// Shows every count the background counter has finished, and the
    /// duplicates queue once found.
    pub fn take_counts(&mut self) {
        for (key, result) in self.counter.finished() {
            self.contacts.set_count(&key, result);
        }
        if let Err(e) = self.dashboard.poll() {
            self.set_error(e.to_string());
        }
        if let Err(e) = self.campaigns.poll() {
            self.set_error(e.to_string());
        }
        if let Some(d) = &mut self.contacts.dupes {
            let was = d.loading;
            let polled = d.poll();
            if d.again && !d.loading {
                d.reload(self.source.clone());
            }
            match polled {
                Ok(()) if was && !d.loading => {
                    let n = d.pairs.len();
                    self.set_info(format!("{n} likely duplicate pair(s)"));
                }
                Ok(()) => {}
                Err(e) => self.set_error(e.to_string()),
            }
        }
    }

    /// Waits until every read under way in the background is in: counts, the
    /// duplicates queue, the dashboard (tests, benchmarks).
    pub fn wait_for_background(&mut self) {
        if let Err(e) = self.dashboard.wait() {
            self.set_error(e.to_string());
        }
        if let Err(e) = self.campaigns.wait() {
            self.set_error(e.to_string());
        }
        for (key, result) in self.counter.wait_idle() {
            self.contacts.set_count(&key, result);
        }
        if let Some(d) = &mut self.contacts.dupes
            && let Err(e) = d.wait()
        {
            self.set_error(e.to_string());
        }
    }

    pub fn resize(&mut self, width: u16, height: u16) {
        self.size = (width, height);
        if self.contacts.resize(width, height) && self.view == ViewId::Contacts {
            self.refresh();
        }
    }

    pub fn set_error(&mut self, text: String) {
        self.message = Some(Message { text, error: true });
    }

    fn set_info(&mut self, text: String) {
        self.message = Some(Message { text, error: false });
    }

    pub fn switch(&mut self, view: ViewId) {
        if self.view != view {
            self.view = view;
            self.load();
        }
    }

    pub fn mouse(&mut self, ev: MouseEvent) {
        let code = match ev.kind {
            MouseEventKind::ScrollDown => KeyCode::Down,
            MouseEventKind::ScrollUp => KeyCode::Up,
            _ => return,
        };
        if matches!(self.mode, Mode::Normal) && !self.help {
            self.view_key(KeyEvent::new(code, KeyModifiers::NONE));
        }
    }

    pub fn key(&mut self, key: KeyEvent) {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Prompt { ask, text } => self.prompt_key(ask, text, key),
            Mode::Confirm { question, change } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => self.apply(change),
                KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => {
                    self.set_info("cancelled".into());
                }
                _ => self.mode = Mode::Confirm { question, change },
            },
            Mode::Normal => self.normal_key(key),
        }
    }

    fn normal_key(&mut self, key: KeyEvent) {
        self.message = None;
        if self.help {
            if matches!(
                key.code,
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
            ) {
                self.help = false;
            }
            return;
        }
        match key.code {
            KeyCode::Char('q') if !self.view_is_nested() => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char(':') => {
                self.mode = Mode::Prompt {
                    ask: Ask::Command,
                    text: String::new(),
                }
            }
            KeyCode::Char(c @ '1'..='5') => {
                let i = usize::from(c as u8 - b'1');
                self.switch(ViewId::ALL[i]);
            }
            _ => self.view_key(key),
        }
    }

    /// Whether `q` means "back" here (a drilled-in detail) rather than quit.
    fn view_is_nested(&self) -> bool {
        match self.view {
            ViewId::Contacts => self.contacts.detail_open || self.contacts.dupes.is_some(),
            ViewId::Executions => self.executions.detail.is_some(),
            _ => false,
        }
    }

    fn view_key(&mut self, key: KeyEvent) {
        let source = self.source.clone();
        let action = self.view_action(&*source, key);
        if self.contacts.needs_count {
            self.contacts.request_filter_count(&mut self.counter);
        }
        self.act(action);
    }

    fn view_action(&mut self, source: &dyn Source, key: KeyEvent) -> Action {
        match self.view {
            ViewId::Contacts => self.contacts.key(source, key),
            ViewId::Deals => self.deals.key(source, key),
            ViewId::Campaigns => self.campaigns.key(source, key),
            ViewId::Executions => self.executions.key(source, key),
            ViewId::Dashboard => self.dashboard.key(source, key),
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::None => {}
            Action::Prompt(ask, text) => self.mode = Mode::Prompt { ask, text },
            Action::Confirm(question, change) => self.mode = Mode::Confirm { question, change },
            Action::Apply(change) => self.apply(change),
            Action::Error(e) => self.set_error(e),
            Action::Info(i) => self.set_info(i),
            Action::ExportData(id) => {
                let source = self.source.clone();
                match export(&*source, id, &self.export_dir) {
                    Ok(path) => self.set_info(format!("wrote {path}")),
                    Err(e) => self.set_error(e),
                }
            }
            Action::OpenDuplicates => {
                self.contacts.dupes = Some(super::dupes::Dupes::start(self.source.clone()));
                self.set_info("looking for duplicates…".into());
            }
            Action::OpenContact(email) => {
                self.view = ViewId::Contacts;
                let source = self.source.clone();
                if let Err(e) = self.contacts.open(&*source, &email) {
                    self.set_error(e.to_string());
                }
            }
        }
    }

    fn prompt_key(&mut self, ask: Ask, mut text: String, key: KeyEvent) {
        match key.code {
            KeyCode::Esc => {
                if ask == Ask::Search {
                    let source = self.source.clone();
                    if let Err(e) = self.contacts.search(&*source, "") {
                        self.set_error(e.to_string());
                    }
                }
                return;
            }
            KeyCode::Enter => return self.submit(ask, text),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => text.clear(),
            KeyCode::Char('w') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                let keep = text.trim_end().rfind(' ').map_or(0, |i| i + 1);
                text.truncate(keep);
            }
            KeyCode::Char(c) if text.chars().count() < 200 => text.push(c),
            _ => {}
        }
        if ask == Ask::Search {
            // Search as you type: every keystroke is one ranked query.
            let source = self.source.clone();
            if let Err(e) = self.contacts.search(&*source, &text) {
                self.set_error(e.to_string());
            }
        }
        self.mode = Mode::Prompt { ask, text };
    }

    fn submit(&mut self, ask: Ask, text: String) {
        match ask {
            Ask::Command => self.command(&text),
            Ask::Search => self.contacts.pane = contacts::Pane::List,
            _ => {
                let source = self.source.clone();
                let action = match self.view {
                    ViewId::Contacts => {
                        self.contacts
                            .submit(&*source, &mut self.counter, ask, &text)
                    }
                    _ => Action::None,
                };
                self.act(action);
            }
        }
    }

    fn command(&mut self, text: &str) {
        let word = text.trim();
        match word {
            "q" | "quit" => self.quit = true,
            "help" => self.help = true,
            _ => match ViewId::parse(word) {
                Some(v) => self.switch(v),
                None => self.set_error(format!(
                    "no view `{word}`; the views are contacts, deals, campaigns, executions, dashboard"
                )),
            },
        }
    }

    /// Makes a change through the source, then re-reads what it touched.
    pub fn apply(&mut self, change: Change) {
        let source = self.source.clone();
        match source.apply(change.clone()) {
            Ok(text) => {
                self.set_info(text);
                if let Some(d) = &mut self.contacts.dupes {
                    d.applied(&change, source.clone());
                }
                if self.view == ViewId::Contacts {
                    self.refresh();
                    self.contacts.request_counts(&mut self.counter);
                } else {
                    self.load();
                }
            }
            Err(e) => {
                self.set_error(e.to_string());
                // An undo that failed stays undoable.
                if let Some(d) = &mut self.contacts.dupes
                    && matches!(change, Change::Unmerge { .. } | Change::Undismiss { .. })
                {
                    d.undo.push(change);
                }
            }
        }
    }

    pub fn render(&mut self, f: &mut Frame<'_>) {
        super::render::frame(self, f);
    }
}

/// Writes a person's data to `<dir>/<uid>.json`.
fn export(source: &dyn Source, id: i64, dir: &std::path::Path) -> Result<String, String> {
    let data = source.export_data(id).map_err(|e| e.to_string())?;
    let uid = data
        .pointer("/contact/0/uid")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("contact")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<String>();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{uid}.json"));
    let text = serde_json::to_string_pretty(&data).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path.display().to_string())
}
