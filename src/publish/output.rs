//! Writing a build to a folder (only the files whose bytes changed; files of an
//! earlier build that this one no longer has are removed), and the files made for
//! hosts and crawlers: sitemap.xml and robots.txt.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::resolve::ResolvedSite;
use super::{Build, PublishError};

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Written {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
}

/// Writes `build` into `dir` (created when missing). A file is rewritten only
/// when its bytes differ; files left from an earlier build are removed.
pub fn write(build: &Build, dir: &Path) -> Result<Written, PublishError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PublishError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut report = Written::default();
    for (rel, bytes) in &build.files {
        let path = dir.join(rel);
        if std::fs::read(&path).is_ok_and(|old| &old == bytes) {
            report.unchanged += 1;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        // Written beside and renamed: a host serving the folder never sees half a file.
        let tmp = path.with_extension("funnel-tmp");
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        report.written += 1;
    }
    let mut existing = Vec::new();
    list(dir, dir, &mut existing);
    for (rel, path) in existing {
        if !build.files.contains_key(&rel) {
            std::fs::remove_file(&path).map_err(io(&path))?;
            report.removed += 1;
        }
    }
    remove_empty_dirs(dir);
    Ok(report)
}

fn list(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            list(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push((rel, path));
        }
    }
}

fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                remove_empty_dirs(&path);
                // Fails, as it should, when the folder is not empty.
                let _ = std::fs::remove_dir(&path);
            }
        }
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The indexable pages (not `noindex`, not 404 or thank-you pages marked so).
pub fn sitemap(site: &ResolvedSite, base: &str) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for page in site.pages.iter().filter(|p| !p.noindex && p.path != "/404") {
        out.push_str(&format!(
            "  <url><loc>{}</loc></url>\n",
            xml_escape(&format!("{base}{}", page.path))
        ));
    }
    out.push_str("</urlset>\n");
    out
}

/// Allows crawling and names the sitemap (pages marked `noindex` say so in their
/// own meta tag, which a crawler must be allowed to read); a site marked `noindex`
/// as a whole disallows everything.
pub fn robots(site: &ResolvedSite, base: &str) -> String {
    if site.seo.as_ref().is_some_and(|s| s.noindex) {
        return "User-agent: *\nDisallow: /\n".into();
    }
    format!("User-agent: *\nAllow: /\n\nSitemap: {base}/sitemap.xml\n")
}
