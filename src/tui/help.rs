//! Every key of every view, in one table: the help overlay (`?`) and the
//! footer's hints read it, so a key cannot work without being listed.

use super::app::ViewId;

/// Keys that work in every view.
pub const GLOBAL: &[(&str, &str)] = &[
    ("1-5", "switch view"),
    (":", "jump to a view by name (:deals)"),
    ("?", "this help"),
    ("q", "quit (back, in a detail)"),
    ("Ctrl-c", "quit"),
];

/// The keys of one view, most used first.
pub fn keys(view: ViewId) -> &'static [(&'static str, &'static str)] {
    match view {
        ViewId::Contacts => &[
            ("j/k ↓/↑", "move"),
            ("/", "search as you type"),
            ("f", "filter: tag:vip status:active score>=50 …"),
            ("Tab", "next pane (segments, list, detail)"),
            ("Enter", "open the contact / apply the segment"),
            ("PgDn/PgUp", "page down / up"),
            ("g/G", "first / last page"),
            ("t / T", "add / remove tags"),
            ("L / R", "add to / remove from a list"),
            ("e", "set a field (name=value)"),
            ("s", "set the lifecycle stage"),
            ("Space", "mark for a bulk change"),
            ("a", "tag every marked contact"),
            ("Esc", "back, clear search, marks, filter"),
        ],
        ViewId::Deals => &[
            ("h/l ←/→", "stage column"),
            ("j/k ↓/↑", "deal"),
            ("H / L", "move the deal a stage back / on"),
            ("Enter", "open the deal's contact"),
            ("[ / ]", "pipeline: previous / next"),
        ],
        ViewId::Campaigns => &[
            ("j/k ↓/↑", "campaign"),
            ("s", "send (freeze the audience)"),
            ("p", "pause"),
            ("r", "resume"),
        ],
        ViewId::Executions => &[
            ("j/k ↓/↑", "move"),
            ("Tab", "workflows / executions"),
            ("f", "status: all, running, waiting, failed, completed"),
            ("Enter", "open the step timeline"),
            ("r", "retry from the failed step"),
            ("c", "cancel"),
            ("Esc", "back"),
        ],
        ViewId::Dashboard => &[],
    }
}
