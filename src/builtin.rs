//! The repository's `templates/` and `recipes/` folders, compiled into the
//! binary, so every workspace can use the built-in site templates, components,
//! email templates and workflow recipes without copying them. A workspace's own
//! `templates/` and `recipes/` add to these or override them by id (see
//! `workspace` and `suggest::recipes`).

/// Files compiled into the binary. Their paths are kept in one string apart from
/// their contents: finding or listing files reads the paths only, and a file's
/// pages are read when it is. (Paths stored among the contents made a daemon that
/// uses one site template keep all 1.2 MB of them resident.)
#[derive(Debug)]
pub struct Bundle {
    /// One path a line, in the order of `data`.
    paths: &'static str,
    data: &'static [&'static [u8]],
}

impl Bundle {
    /// Every file: its path (with `/` separators) and bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &'static [u8])> + use<> {
        self.paths.lines().zip(self.data.iter().copied())
    }

    /// The file at `path`.
    pub fn get(&self, path: &str) -> Option<&'static [u8]> {
        let at = self.paths.lines().position(|p| p == path)?;
        self.data.get(at).copied()
    }
}

/// Every built-in file, by its path under `templates/`.
pub static FILES: Bundle = Bundle {
    paths: include_str!(concat!(env!("OUT_DIR"), "/builtin_templates.paths")),
    data: include!(concat!(env!("OUT_DIR"), "/builtin_templates.rs")),
};

/// The built-in file at `path` (relative to `templates/`).
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES.get(path)
}

/// Every built-in recipe file, by its path under `recipes/` (`<id>/recipe.yaml`,
/// `<id>/workflow.yaml`, `<id>/test.yaml`).
pub static RECIPE_FILES: Bundle = Bundle {
    paths: include_str!(concat!(env!("OUT_DIR"), "/builtin_recipes.paths")),
    data: include!(concat!(env!("OUT_DIR"), "/builtin_recipes.rs")),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_finds_its_own_bytes() {
        let all: Vec<_> = FILES.iter().collect();
        assert!(all.len() > 100);
        for (path, bytes) in &all {
            assert_eq!(FILES.get(path), Some(*bytes), "{path}");
        }
        let (path, bytes) = all[all.len() / 2];
        let on_disk = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("templates")
                .join(path),
        )
        .expect("the file is in the repository");
        assert_eq!(bytes, on_disk.as_slice());
        assert_eq!(FILES.get("no/such/file"), None);
        assert!(RECIPE_FILES.iter().count() > 0);
    }
}
