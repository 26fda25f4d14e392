//! The TUI on a real terminal: raw mode and the alternate screen (restored on
//! every way out, a panic included), mouse capture, and the loop of events and
//! 250 ms ticks.

use std::io::Stdout;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

use super::app::App;

const TICK: Duration = Duration::from_millis(250);

/// Restores the terminal when dropped.
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(std::io::stdout(), LeaveAlternateScreen, DisableMouseCapture);
}

/// Runs `make` sized to the terminal, until the person quits.
pub fn run(make: impl FnOnce(u16, u16) -> App) -> std::io::Result<()> {
    enable_raw_mode()?;
    let _guard = Guard;
    execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    // A panic of the drawing thread restores the terminal before its message
    // is printed; one of a background thread (counts, the dashboard) leaves it
    // alone, as the loop goes on drawing.
    let main = std::thread::current().id();
    let hook = std::sync::Arc::new(std::panic::take_hook());
    let chained = hook.clone();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == main {
            restore();
        }
        chained(info);
    }));
    let result = run_loop(make);
    // The previous hook again (the process may go on after the TUI).
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| hook(info)));
    result
}

fn run_loop(make: impl FnOnce(u16, u16) -> App) -> std::io::Result<()> {
    let mut terminal: Terminal<CrosstermBackend<Stdout>> =
        Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let size = terminal.size()?;
    let mut app = make(size.width, size.height);
    let mut next_tick = Instant::now() + TICK;
    while !app.quit {
        terminal.draw(|f| app.render(f))?;
        let wait = next_tick.saturating_duration_since(Instant::now());
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => app.key(k),
                Event::Mouse(m) => app.mouse(m),
                Event::Resize(w, h) => app.resize(w, h),
                _ => {}
            }
        }
        if Instant::now() >= next_tick {
            app.tick();
            next_tick = Instant::now() + TICK;
        }
    }
    Ok(())
}
