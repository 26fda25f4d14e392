//! CSS for mail clients: a layout's and a template's stylesheets written into
//! each element's `style` attribute (Gmail and Outlook ignore much of
//! `<style>`), with `@media` rules kept in a `<style>` element for the clients
//! that read them. Nothing is fetched: remote stylesheets are not loaded.

use css_inline::CSSInliner;

/// `html` with `css` (and its own `<style>` elements) inlined. A fragment (no
/// `<html>`) stays a fragment.
pub fn inline(html: &str, css: &str) -> Result<String, String> {
    let head = html.trim_start();
    let head = head
        .get(..head.len().min(32))
        .unwrap_or(head)
        .to_ascii_lowercase();
    let document = head.starts_with("<!doctype") || head.starts_with("<html");
    let inliner = CSSInliner::options()
        .load_remote_stylesheets(false)
        .keep_at_rules(true)
        .extra_css((!css.trim().is_empty()).then(|| css.to_string().into()))
        .build();
    if document {
        return inliner
            .inline(html)
            .map_err(|e| format!("cannot inline the CSS: {e}"));
    }
    let body = inliner
        .inline_fragment(html, css)
        .map_err(|e| format!("cannot inline the CSS: {e}"))?;
    // A fragment has no head to keep `@media` rules in: they go first, in a
    // `<style>` element of their own.
    let media = at_rules(css);
    Ok(if media.is_empty() {
        body
    } else {
        format!("<style>{media}</style>\n{body}")
    })
}

/// The `@media` blocks of a stylesheet, braces matched.
fn at_rules(css: &str) -> String {
    let mut out = String::new();
    let mut rest = css;
    while let Some(start) = rest.find("@media") {
        let block = &rest[start..];
        let mut depth = 0usize;
        let mut end = None;
        for (i, c) in block.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            break;
        };
        out.push_str(&block[..end]);
        rest = &block[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::inline;

    #[test]
    fn rules_become_style_attributes_and_media_queries_stay() {
        let out = inline(
            "<div class=\"card\"><p>Hi</p></div>",
            ".card { padding: 8px } p { color: #123456 } @media (max-width: 600px) { p { font-size: 18px } }",
        )
        .expect("inlined");
        assert!(out.contains("style=\"padding: 8px"), "{out}");
        assert!(out.contains("color: #123456"), "{out}");
        assert!(
            out.starts_with("<style>@media (max-width: 600px) { p { font-size: 18px } }</style>"),
            "{out}"
        );
        assert!(!out.contains("<html"), "a fragment stays one: {out}");
    }

    #[test]
    fn a_document_keeps_its_shape() {
        let out = inline(
            "<!doctype html><html><head><style>h1{margin:0}</style></head><body><h1>T</h1></body></html>",
            "",
        )
        .expect("inlined");
        assert!(out.contains("<h1 style=\"margin: 0"), "{out}");
        assert!(out.contains("<body>"), "{out}");
    }
}
