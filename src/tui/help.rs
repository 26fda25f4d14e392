//! Every key of every view, in one table: the help overlay (`?`) and the
//! footer's hints read it, so a key cannot work without being listed.

use super::app::ViewId;

/// Keys that work in every view.
pub const GLOBAL: &[(&str, &str)] = &[
    ("1-5", "switch view"),
    (":", "jump to a view (:deals)"),
    ("?", "this help"),
    ("q", "quit (back, in a detail)"),
    ("Ctrl-c", "quit"),
];

/// The keys of the duplicates queue (inside the contacts view).
pub const DUPLICATES: &[(&str, &str)] = &[
    ("j/k ↓/↑", "pair"),
    ("m", "merge: keep the left contact"),
    ("M", "merge: keep the right contact"),
    ("x", "not duplicates (never offered again)"),
    ("u", "undo the last merge or dismissal"),
    ("Esc", "back to the list"),
];

/// The keys of one view, most used first.
pub fn keys(view: ViewId) -> &'static [(&'static str, &'static str)] {
    match view {
        ViewId::Contacts => &[
            ("j/k ↓/↑", "move"),
            ("/", "search as you type"),
            ("f", "filter (tag:vip plan=pro score>=50 …)"),
            ("Tab", "next pane"),
            ("Enter", "open / apply the segment"),
            ("PgDn/PgUp", "page down / up"),
            ("g/G", "first / last page"),
            ("t / T", "add / remove tags"),
            ("L / R", "add to / remove from list"),
            ("e", "set a field (name=value)"),
            ("s", "set the lifecycle stage"),
            ("Space", "mark for a bulk change"),
            ("a", "change the marked (tag, list, field)"),
            ("A", "change all of the filter"),
            ("D", "the duplicates queue"),
            ("X", "forget (erase everywhere)"),
            ("E", "export the data (JSON)"),
            ("Esc", "back / clear"),
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
            ("f", "status filter (cycles)"),
            ("Enter", "open the step timeline"),
            ("r", "retry from the failed step"),
            ("c", "cancel"),
            ("Esc", "back"),
        ],
        ViewId::Dashboard => &[],
    }
}
