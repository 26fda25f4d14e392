//! Internal links of a build: every `href` and `src` that points into the site
//! (a path starting with `/`) must name a page or file of the build, and its
//! `#fragment` an element id on that page.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::Build;

/// A link that leads nowhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    /// The page (URL path) the link is on.
    pub page: String,
    pub link: String,
    pub why: String,
}

/// One line per broken link.
pub fn describe(links: &[BrokenLink]) -> String {
    links
        .iter()
        .map(|l| format!("  {}: {} ({})", l.page, l.link, l.why))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks every page of the build.
pub fn check(build: &Build) -> Vec<BrokenLink> {
    let mut ids: HashMap<&str, HashSet<String>> = HashMap::new();
    let mut pages: HashMap<String, &str> = HashMap::new();
    for (path, file) in &build.pages {
        let html = build
            .files
            .get(file)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        ids.insert(
            file.as_str(),
            attribute_values(&html, "id").into_iter().collect(),
        );
        let key = path.trim_end_matches('/').to_string();
        pages.insert(if key.is_empty() { "/".into() } else { key }, file);
    }
    let mut broken = Vec::new();
    for (path, file) in &build.pages {
        let html = build
            .files
            .get(file)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let mut links = attribute_values(&html, "href");
        links.extend(attribute_values(&html, "src"));
        for link in links {
            if !link.starts_with('/') && !link.starts_with('#') || link.starts_with("//") {
                continue;
            }
            if link.starts_with("/__funnel/") {
                continue;
            }
            let (target, fragment) = match link.split_once('#') {
                Some((t, f)) => (t, Some(f)),
                None => (link.as_str(), None),
            };
            let target = target.split('?').next().unwrap_or("");
            let target_file = if target.is_empty() {
                Some(file.as_str())
            } else {
                let key = target.trim_end_matches('/');
                let key = if key.is_empty() { "/" } else { key };
                pages.get(key).copied().or_else(|| {
                    let rel = target.trim_start_matches('/');
                    build.files.contains_key(rel).then_some(rel)
                })
            };
            let Some(target_file) = target_file else {
                broken.push(BrokenLink {
                    page: path.clone(),
                    link: link.clone(),
                    why: "no such page or file".into(),
                });
                continue;
            };
            if let Some(fragment) = fragment.filter(|f| !f.is_empty())
                && !ids
                    .get(target_file)
                    .is_some_and(|set| set.contains(fragment))
            {
                broken.push(BrokenLink {
                    page: path.clone(),
                    link: link.clone(),
                    why: format!("no element with id `{fragment}` there"),
                });
            }
        }
    }
    broken.sort_by(|a, b| (&a.page, &a.link).cmp(&(&b.page, &b.link)));
    broken.dedup();
    broken
}

/// The values of `name="…"` attributes in markup this crate wrote (double quotes,
/// `&amp;`, `&quot;`, `&#x27;`, `&lt;`, `&gt;` escapes).
fn attribute_values(html: &str, name: &str) -> Vec<String> {
    let needle = format!(" {name}=\"");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&needle) {
        rest = &rest[i + needle.len()..];
        let Some(end) = rest.find('"') else { break };
        out.push(
            rest[..end]
                .replace("&quot;", "\"")
                .replace("&#x27;", "'")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&#x2f;", "/")
                .replace("&amp;", "&"),
        );
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(pages: &[(&str, &str, &str)]) -> Build {
        let mut b = Build::default();
        for (path, file, html) in pages {
            b.files.insert((*file).into(), html.as_bytes().to_vec());
            b.pages.push(((*path).into(), (*file).into()));
        }
        b.files.insert("assets/a.css".into(), Vec::new());
        b
    }

    #[test]
    fn links_must_name_pages_files_and_ids() {
        let b = build(&[
            (
                "/",
                "index.html",
                r##"<a href="/pricing">p</a> <a href="/#contact">c</a> <section id="contact"></section> <link href="/assets/a.css"> <a href="https://example.org/x">x</a> <a href="#top">t</a>"##,
            ),
            (
                "/pricing",
                "pricing/index.html",
                r#"<a href="/pricing/#plans">p</a> <a href="/nope">n</a> <img src="/assets/b.png"> <a href="/#contact">c</a> <a href="/?utm_source=x&amp;a=b">q</a>"#,
            ),
        ]);
        let found: Vec<(String, String)> =
            check(&b).into_iter().map(|l| (l.page, l.link)).collect();
        assert_eq!(
            found,
            [
                ("/".to_string(), "#top".to_string()),
                ("/pricing".to_string(), "/assets/b.png".to_string()),
                ("/pricing".to_string(), "/nope".to_string()),
                ("/pricing".to_string(), "/pricing/#plans".to_string()),
            ]
        );
    }
}
