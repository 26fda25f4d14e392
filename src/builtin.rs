//! The repository's `templates/` folder, compiled into the binary, so every
//! workspace can use the built-in site templates, components and email templates
//! without copying them. A workspace's own `templates/` adds to these or overrides
//! them by id (see `workspace`).

/// Every built-in file: its path under `templates/` (with `/` separators) and bytes.
pub static FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/builtin_templates.rs"));

/// The built-in file at `path` (relative to `templates/`).
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}
