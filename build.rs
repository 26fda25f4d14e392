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
    embed(&templates, "builtin_templates.rs");
    embed(&root.join("recipes"), "builtin_recipes.rs");
}

/// Writes `OUT_DIR/<name>`: a slice of (path under `dir`, bytes) for every file
/// below `dir`, included at compile time.
fn embed(dir: &Path, name: &str) {
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let rel = file
            .strip_prefix(dir)
            .expect("collected under the folder")
            .to_string_lossy()
            .replace('\\', "/");
        let _ = writeln!(
            out,
            "    ({rel:?}, include_bytes!({:?}).as_slice()),",
            file.display().to_string()
        );
    }
    out.push_str("]\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets this")).join(name);
    std::fs::write(dest, out).expect("OUT_DIR is writable");
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
