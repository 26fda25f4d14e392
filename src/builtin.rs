//! The repository's `templates/` and `recipes/` folders, compiled into the
//! binary, so every workspace can use the built-in site templates, components,
//! email templates and workflow recipes without copying them. A workspace's own
//! `templates/` and `recipes/` add to these or override them by id (see
//! `workspace` and `suggest::recipes`).

/// Every built-in file: its path under `templates/` (with `/` separators) and bytes.
pub static FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/builtin_templates.rs"));

/// The built-in file at `path` (relative to `templates/`).
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

/// Every built-in recipe file: its path under `recipes/` (`<id>/recipe.yaml`,
/// `<id>/workflow.yaml`, `<id>/test.yaml`) and bytes.
pub static RECIPE_FILES: &[(&str, &[u8])] =
    include!(concat!(env!("OUT_DIR"), "/builtin_recipes.rs"));
