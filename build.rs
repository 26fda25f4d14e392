//! Compiles the repository's `templates/` and `recipes/` into the binary (see
//! `src/builtin.rs`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let templates = root.join("templates");
    println!("cargo:rerun-if-changed=templates");
    println!("cargo:rerun-if-changed=recipes");
    // refinery embeds these at compile time.
    println!("cargo:rerun-if-changed=migrations");
    embed(&templates, "builtin_templates");
    embed(&root.join("recipes"), "builtin_recipes");
    latest_migration(&root.join("migrations").join("sqlite"));
}

/// Writes `OUT_DIR/latest_migration.rs`: the highest version among the
/// `V<n>__<name>.sql` files of `dir` (both sets share their versions), so that
/// opening an up-to-date store need not build refinery's runner.
fn latest_migration(dir: &Path) {
    let latest = std::fs::read_dir(dir)
        .expect("migrations/sqlite exists")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_prefix('V')?
                .split("__")
                .next()?
                .parse::<i64>()
                .ok()
        })
        .max()
        .expect("at least one migration");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets this"))
        .join("latest_migration.rs");
    std::fs::write(dest, format!("{latest}\n")).expect("OUT_DIR is writable");
}

/// Writes `OUT_DIR/<name>.paths`, the paths under `dir` of every file below it,
/// one a line, and `OUT_DIR/<name>.rs`, a slice of their bytes in the same order,
/// included at compile time. The paths stay apart from the contents so that
/// finding a file reads a few kilobytes, not every page of contents (src/builtin.rs).
fn embed(dir: &Path, name: &str) {
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.sort();
    let mut paths = String::new();
    let mut out = String::from("&[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let rel = file
            .strip_prefix(dir)
            .expect("collected under the folder")
            .to_string_lossy()
            .replace('\\', "/");
        assert!(
            !rel.contains('\n'),
            "a file name with a line break: {rel:?}"
        );
        paths.push_str(&rel);
        paths.push('\n');
        let _ = writeln!(
            out,
            "    include_bytes!({:?}).as_slice(),",
            file.display().to_string()
        );
    }
    out.push_str("]\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets this"));
    std::fs::write(out_dir.join(format!("{name}.rs")), out).expect("OUT_DIR is writable");
    std::fs::write(out_dir.join(format!("{name}.paths")), paths).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
